//! The `wedge` command: argument parsing, dispatch and exit codes only.
//!
//! Exit status: 0 nothing wedged, 1 something wedged, 2 error.

mod args;
mod cmd_core;
mod cmd_log;
mod cmd_vmcore;

use args::{Cli, Command};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use wedge_model::SnapshotSource;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wedge: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes to stdout; a closed pipe (`wedge ps | head`) is not an error.
fn emit(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing output: {e}")),
    }
}

/// Every `--json` output is compact, one document a line (`wedge log`: one
/// event a line): a snapshot of 10,000 threads is megabytes, and
/// pretty-printing it cost a third of the scan; `jq .` pretty-prints.
fn json<T: serde::Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| format!("encoding JSON: {e}"))
}

fn code(wedged: bool) -> ExitCode {
    if wedged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `ps` of a snapshot, live or from a dump: the table, or the whole
/// snapshot as JSON; the exit status says whether anything is wedged.
pub(crate) fn print_ps(
    snap: &wedge_model::Snapshot,
    ps: &args::PsArgs,
    json: bool,
) -> Result<ExitCode, String> {
    if json {
        // Compact, as every --json (see `json`), and streamed. The analysis
        // (only the exit status needs it) runs meanwhile.
        let (wedged, written) = std::thread::scope(|s| {
            let analysis = s.spawn(|| wedge_analysis::diagnose(snap, &[]).wedged());
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = wedge_render::json::write_snapshot(snap, &mut out).and_then(|_| {
                out.write_all(b"\n")?;
                out.flush()
            });
            (analysis.join().unwrap_or(false), written)
        });
        return match written {
            Ok(()) => Ok(code(wedged)),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code(wedged)),
            Err(e) => Err(format!("writing output: {e}")),
        };
    }
    let wedged = wedge_analysis::diagnose(snap, &[]).wedged();
    let (text, _) = wedge_render::ps::render(
        snap,
        wedge_render::ps::PsOptions {
            all: ps.all,
            tree: ps.tree,
            wide: ps.wide,
        },
    );
    emit(&text)?;
    for b in &snap.blocked_reads {
        emit(&format!(
            "note: reading /proc/{}/{} blocked > {} ms ({})\n",
            b.pid,
            b.what,
            b.blocked_ms(),
            b.blocks_on
        ))?;
    }
    Ok(code(wedged))
}

/// `why PID` of a snapshot from any source: the process the pid names (a
/// thread's process for a tid), the diagnosis, and whether that process is
/// wedged.
pub(crate) fn why_of(
    snap: &wedge_model::Snapshot,
    pid: i32,
    not_found: impl FnOnce() -> String,
) -> Result<(&wedge_model::Process, wedge_analysis::Diagnosis, bool), String> {
    let proc_ = snap
        .process(pid)
        .or_else(|| snap.thread(pid).map(|(p, _)| p))
        .ok_or_else(not_found)?;
    let diagnosis = wedge_analysis::diagnose(snap, &[]);
    let wedged = diagnosis.wedged_pid(proc_.pid);
    Ok((proc_, diagnosis, wedged))
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let opts = cli.scan_options()?;
    let live = wedge_procfs::LiveSource(opts.clone());
    match cli.command {
        None => {
            let mut snap = live.snapshot()?;
            // The kernel log of this boot: what dead processes left behind
            // and the kernel's own hang reports.
            let events = match cmd_log::live_events() {
                Ok(events) => wedge_klog::to_log_events(&events),
                Err(e) => {
                    snap.limitations.push(wedge_model::Limitation {
                        what: "the kernel log".into(),
                        why: e,
                    });
                    Vec::new()
                }
            };
            let diagnosis = wedge_analysis::diagnose(&snap, &events);
            let findings = diagnosis.findings;
            let wedged = findings.iter().any(|f| f.is_wedged());
            if cli.json {
                emit(&json(&wedge_render::output::Verdict {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    wedged,
                    findings: &findings,
                    limitations: &snap.limitations,
                    stats: &snap.stats,
                })?)?;
            } else {
                emit(&wedge_render::verdict::render(
                    &snap,
                    &findings,
                    cli.verbose,
                ))?;
            }
            Ok(code(wedged))
        }
        Some(Command::Ps(ps)) => {
            let snap = live.snapshot()?;
            let status = print_ps(&snap, &ps, cli.json);
            // The process ends here: freeing 10,000 threads' worth of
            // records one by one would only delay the exit.
            std::mem::forget(snap);
            status
        }
        Some(Command::Log(a)) => cmd_log::run(cli.json, &a),
        Some(Command::Core(a)) => cmd_core::run(cli.json, &a),
        Some(Command::Vmcore(a)) => cmd_vmcore::run(cli.json, cli.verbose, &a),
        Some(Command::Why(why)) => {
            let snap = live.snapshot()?;
            let (proc_, wedge_analysis::Diagnosis { findings, graph }, wedged) =
                why_of(&snap, why.pid, || {
                    format!("no process or thread {} (it may have exited)", why.pid)
                })?;
            let stacks = why.user_stacks.then(|| {
                wedge_coredump::user_stacks::read(
                    &snap,
                    proc_,
                    opts.deadline.max(std::time::Duration::from_secs(1)),
                    wedge_analysis::user_stacks_refusal(&snap, proc_),
                )
            });
            if cli.json {
                emit(&json(&wedge_render::output::Why {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    report: wedge_render::why::report(&snap, proc_, &findings, &graph),
                    user_stacks: stacks.as_ref(),
                })?)?;
            } else {
                let mut text = wedge_render::why::render(&snap, proc_, &findings, &graph);
                if let Some(u) = &stacks {
                    text.push_str(&wedge_coredump::user_stacks::render(u));
                }
                emit(&text)?;
            }
            Ok(code(wedged))
        }
    }
}
