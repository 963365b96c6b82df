//! `wedge vmcore DUMP [ps|why PID|log|tasks]`: a kernel crash dump read with
//! no debuginfo (BTF, kallsyms and ORC from the dump), through the same
//! analysis and views as the live machine.
//!
//! Exit status: 0 nothing wedged, 1 something wedged (or the dump records a
//! panic; for `log`: a serious event in it), 2 the dump could not be read,
//! 3 nothing found but the view is partial (a truncated dump: what was not
//! read may hold what matters, so it is no all-clear).

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use wedge_model::SnapshotSource;
use wedge_vmcore::{Options, Vmcore};

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 nothing wedged; 1 something wedged, a panic recorded (for `log`: a panic, oops, hung task, lockup or stall); 2 the dump cannot be read; 3 nothing found, but the dump is truncated or its task list could not be read whole (a partial view)."
)]
pub struct VmcoreArgs {
    /// A kernel crash dump (ELF vmcore or kdump-compressed, flattened or not).
    pub dump: PathBuf,
    /// Use this System.map for symbols instead of the dump's kallsyms.
    #[arg(long, value_name = "FILE", global = true)]
    pub system_map: Option<PathBuf>,
    /// Use this raw BTF file instead of the dump's own.
    #[arg(long, value_name = "FILE", global = true)]
    pub btf: Option<PathBuf>,
    #[command(subcommand)]
    pub view: Option<VmcoreView>,
}

#[derive(Subcommand, Debug)]
pub enum VmcoreView {
    /// The tasks that matter (with --all, every task).
    Ps(crate::args::PsArgs),
    /// Everything about one process, and what it waits for.
    Why(crate::args::WhyArgs),
    /// The kernel log from the dump's printk buffer, as typed events.
    Log(LogView),
    /// Every task with its state and full kernel stack.
    Tasks,
    /// Evaluates a C expression over the dump's memory (types from its BTF):
    /// `init_task.comm`, `per_cpu(runqueues, 0).curr->pid`.
    Eval {
        /// One argument: quote it (`'task(1)->comm'`).
        #[arg(allow_hyphen_values = true)]
        expr: String,
    },
    /// The layout of a type or of an expression's type, with offsets and sizes.
    Ptype {
        /// One argument: quote it (`'struct task_struct'`).
        what: String,
    },
}

#[derive(Args, Debug)]
pub struct LogView {
    /// The records as dmesg prints them, not typed events.
    #[arg(long)]
    pub raw: bool,
}

fn open(args: &VmcoreArgs) -> Result<Vmcore, String> {
    let opts = Options {
        system_map: args.system_map.clone(),
        btf: args.btf.clone(),
    };
    Vmcore::open(&args.dump, &opts).map_err(|e| {
        // An error opening the file already names it; the others say only
        // what inside the dump was wrong.
        let (path, e) = (args.dump.display().to_string(), e.to_string());
        if e.starts_with(&path) {
            e
        } else {
            format!("{path}: {e}")
        }
    })
}

/// A word of a command line as a shell reads it back.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The exit status of a view: 1 when it found something, 3 when it found
/// nothing in a partial dump, 0 otherwise.
fn status(found: bool, partial: bool) -> ExitCode {
    if found {
        ExitCode::from(1)
    } else if partial {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn crash(v: &Vmcore, log: &[wedge_vmcore::printk::Record]) -> wedge_render::output::Crash {
    let t = v.crashing_task();
    wedge_render::output::Crash {
        cpu: v.panic_cpu,
        pid: t.map(|t| t.pid),
        comm: t.map(|t| t.comm.clone()),
        message: wedge_vmcore::printk::panic_message(log),
    }
}

pub fn run(json: bool, verbose: bool, args: &VmcoreArgs) -> Result<ExitCode, String> {
    let v = open(args)?;
    let dump = args.dump.display().to_string();
    // How much of the machine the dump shows: every view says it when part
    // is missing, on stderr as well, so a partial view is never taken for
    // the whole.
    let completeness = v.completeness();
    let partial = completeness.summary();
    if let Some(p) = &partial {
        eprintln!("wedge: {dump}: partial view: {p}");
    }
    let note = |text: &mut String| {
        if let Some(p) = &partial {
            text.push_str(&format!("note: partial view: {p}\n"));
        }
    };
    let (log, log_error) = match wedge_vmcore::printk::read(&v.kernel) {
        Ok(l) => (l, None),
        Err(e) => (Vec::new(), Some(format!("the printk buffer: {e}"))),
    };
    match &args.view {
        // Typed memory and expressions: one wedge-kmem call each.
        Some(VmcoreView::Eval { expr }) => {
            crate::emit(&wedge_kmem::cmd::eval(&v, expr, json)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(VmcoreView::Ptype { what }) => {
            crate::emit(&wedge_kmem::cmd::ptype(&v, what)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(VmcoreView::Tasks) => {
            let rows = wedge_vmcore::listing::rows(&v);
            let mut text = if json {
                String::new()
            } else {
                wedge_vmcore::listing::text(&rows)
            };
            if json {
                crate::emit(&crate::json(&wedge_render::output::DumpTasks {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    dump: &dump,
                    partial: partial.as_deref(),
                    task_errors: &v.task_errors,
                    tasks: rows,
                })?)?;
            } else {
                for e in &v.task_errors {
                    text.push_str(&format!("note: {e}\n"));
                }
                note(&mut text);
                crate::emit(&text)?;
            }
            Ok(status(false, partial.is_some()))
        }
        Some(VmcoreView::Log(view)) => {
            if let Some(e) = log_error {
                return Err(format!("{dump}: {e}"));
            }
            let text = wedge_vmcore::printk::to_dmesg(&log);
            // The records through `wedge log`'s parser and renderer: typed
            // events, and the same exit status (1 for a panic, oops, hung
            // task, lockup or stall).
            let parsed = wedge_klog::parse_str(&text);
            let serious = parsed.events.iter().any(wedge_klog::Event::is_serious);
            if json {
                crate::emit(&crate::json(&wedge_render::output::DumpLog {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    dump: &dump,
                    partial: partial.as_deref(),
                    records: log.len(),
                    events: &parsed.events,
                })?)?;
            } else {
                let mut out = if view.raw {
                    text
                } else {
                    wedge_render::log::render(
                        &parsed.events,
                        &parsed.summary,
                        &std::collections::HashMap::new(),
                    )
                };
                note(&mut out);
                crate::emit(&out)?;
            }
            Ok(status(serious, partial.is_some()))
        }
        Some(VmcoreView::Ps(ps)) => {
            let snap = v.snapshot()?;
            let code = crate::print_ps(&snap, ps, json)?;
            if !json {
                let mut text = String::from(
                    "note: COMMAND is the task name: a dump has no command lines (user memory is not read); [brackets] mark kernel threads\n",
                );
                note(&mut text);
                crate::emit(&text)?;
            }
            Ok(if code == ExitCode::SUCCESS {
                status(false, partial.is_some())
            } else {
                code
            })
        }
        Some(VmcoreView::Why(why)) => {
            let snap = v.snapshot()?;
            let (proc_, wedge_analysis::Diagnosis { findings, graph }, wedged) =
                crate::why_of(&snap, why.pid, || match &partial {
                    Some(p) => format!(
                        "no process or thread {} in what could be read of the dump ({p})",
                        why.pid
                    ),
                    None => format!("no process or thread {} in the dump", why.pid),
                })?;
            // The lock waits were read from memory into the snapshot.
            let waits: Vec<_> = wedge_render::output::lock_waits(&snap)
                .into_iter()
                .filter(|w| {
                    proc_
                        .threads
                        .iter()
                        .any(|t| t.tid == w.waiter || Some(t.tid) == w.owner)
                })
                .collect();
            if json {
                crate::emit(&crate::json(&wedge_render::output::DumpWhy {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    report: wedge_render::why::report(&snap, proc_, &findings, &graph),
                    lock_waits: &waits,
                    partial: partial.as_deref(),
                    limitations: &snap.limitations,
                })?)?;
            } else {
                let mut text = wedge_render::why::render(&snap, proc_, &findings, &graph);
                if !waits.is_empty() {
                    text.push_str(&format!(
                        "Locks (from memory):\n{}",
                        wedge_render::output::lock_text(&waits)
                    ));
                }
                note(&mut text);
                crate::emit(&text)?;
            }
            Ok(status(wedged, partial.is_some()))
        }
        None => {
            let mut snap = v.snapshot()?;
            if let Some(e) = &log_error {
                snap.limitations.push(wedge_model::Limitation {
                    what: "the kernel log".into(),
                    why: e.clone(),
                });
            }
            // The dump's log is listed as `log_events`, not merged into the
            // findings (as before the diagnosis layer).
            let findings = wedge_analysis::diagnose(&snap, &[]).findings;
            let c = crash(&v, &log);
            let waits = wedge_render::output::lock_waits(&snap);
            let events = wedge_klog::parse_str(&wedge_vmcore::printk::to_dmesg(&log)).events;
            let wedged = findings.iter().any(|f| f.is_wedged()) || c.message.is_some();
            if json {
                crate::emit(&crate::json(&wedge_render::output::DumpVerdict {
                    schema_version: wedge_model::SCHEMA_VERSION,
                    dump: dump.clone(),
                    format: &v.kernel.mem.dump.format,
                    kernel_release: v.kernel.release.as_deref(),
                    crash: &c,
                    wedged,
                    partial: partial.as_deref(),
                    completeness: &completeness,
                    findings: &findings,
                    lock_waits: &waits,
                    log_events: &events,
                    limitations: &snap.limitations,
                })?)?;
            } else {
                let mut s = format!(
                    "{dump}: {} dump of Linux {}, {} tasks\n",
                    v.kernel.mem.dump.format,
                    v.kernel.release.as_deref().unwrap_or("?"),
                    v.tasks.len()
                );
                if let Some(m) = &c.message {
                    s.push_str(&format!(
                        "Kernel panic on CPU {}: {m}\n  crashing task: {} ({})\n",
                        c.cpu.map_or("?".into(), |c| c.to_string()),
                        c.pid.map_or("?".into(), |p| p.to_string()),
                        c.comm.as_deref().unwrap_or("?")
                    ));
                }
                if !waits.is_empty() {
                    s.push_str(&format!(
                        "Lock waits (from memory):\n{}",
                        wedge_render::output::lock_text(&waits)
                    ));
                }
                let why = format!("wedge vmcore {} why", shell_word(&dump));
                s.push_str(&wedge_render::verdict::render_with(
                    &snap, &findings, verbose, &why,
                ));
                crate::emit(&s)?;
            }
            Ok(status(wedged, partial.is_some()))
        }
    }
}
