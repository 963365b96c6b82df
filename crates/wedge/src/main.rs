//! The `wedge` command: argument parsing, dispatch and exit codes only.
//!
//! Exit status: 0 nothing wedged, 1 something wedged, 2 error.

mod args;
mod cmd_core;
mod cmd_log;
mod cmd_vmcore;
mod user_stacks;

use args::{Cli, Command};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

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

/// Adds log findings; one about a task already found stuck lends its
/// evidence to that finding instead of repeating it.
fn merge(findings: &mut Vec<wedge_analysis::Finding>, from_log: Vec<wedge_analysis::Finding>) {
    for f in from_log {
        let same = findings.iter_mut().find(|g| {
            f.id == "kernel.hung_task" && g.is_wedged() && g.pids.first() == f.pids.first()
        });
        match same {
            Some(g) => {
                g.evidence.extend(f.evidence);
                g.blocked_on.extend(f.blocked_on);
            }
            None => findings.push(f),
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.cmp(&a.confidence))
    });
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
            let analysis = s.spawn(|| wedge_analysis::analyze(snap).iter().any(|f| f.is_wedged()));
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
    let wedged = wedge_analysis::analyze(snap).iter().any(|f| f.is_wedged());
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

fn run(cli: Cli) -> Result<ExitCode, String> {
    let opts = cli.scan_options()?;
    match cli.command {
        None => {
            let mut snap = wedge_procfs::scan(&opts)?;
            let mut findings = wedge_analysis::analyze(&snap);
            // The kernel log of this boot: what dead processes left behind
            // and the kernel's own hang reports.
            match cmd_log::live_events() {
                Ok(events) => merge(&mut findings, wedge_analysis::analyze_log(&snap, &events)),
                Err(e) => snap.limitations.push(wedge_model::Limitation {
                    what: "the kernel log".into(),
                    why: e,
                }),
            }
            let wedged = findings.iter().any(|f| f.is_wedged());
            if cli.json {
                #[derive(serde::Serialize)]
                struct Verdict<'a> {
                    schema_version: u32,
                    wedged: bool,
                    findings: &'a [wedge_analysis::Finding],
                    limitations: &'a [wedge_model::Limitation],
                    stats: &'a wedge_model::ScanStats,
                }
                emit(&json(&Verdict {
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
            let snap = wedge_procfs::scan(&opts)?;
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
            let snap = wedge_procfs::scan(&opts)?;
            let graph = wedge_analysis::graph::build(&snap);
            let findings = wedge_analysis::analyze_with(&snap, &graph);
            let (proc_, _) = match snap.process(why.pid) {
                Some(p) => (p, None::<i32>),
                None => match snap.thread(why.pid) {
                    Some((p, _)) => (p, Some(why.pid)),
                    None => {
                        return Err(format!(
                            "no process or thread {} (it may have exited)",
                            why.pid
                        ))
                    }
                },
            };
            let wedged = findings
                .iter()
                .any(|f| f.is_wedged() && f.pids.contains(&proc_.pid));
            let stacks = why.user_stacks.then(|| {
                user_stacks::read(
                    &snap,
                    proc_,
                    opts.deadline.max(std::time::Duration::from_secs(1)),
                )
            });
            if cli.json {
                #[derive(serde::Serialize)]
                struct Why<'a> {
                    schema_version: u32,
                    #[serde(flatten)]
                    report: wedge_render::why::WhyReport<'a>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    user_stacks: Option<&'a user_stacks::UserStacks>,
                }
                emit(&json(&Why {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    report: wedge_render::why::report(&snap, proc_, &findings, &graph),
                    user_stacks: stacks.as_ref(),
                })?)?;
            } else {
                let mut text = wedge_render::why::render(&snap, proc_, &findings, &graph);
                if let Some(u) = &stacks {
                    text.push_str(&user_stacks::render(u));
                }
                emit(&text)?;
            }
            Ok(code(wedged))
        }
    }
}
