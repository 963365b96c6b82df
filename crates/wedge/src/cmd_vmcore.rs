//! `wedge vmcore DUMP [ps|why PID|log|tasks]`: a kernel crash dump read with
//! no debuginfo (BTF, kallsyms and ORC from the dump), through the same
//! analysis and views as the live machine.
//!
//! Exit status: 0 nothing wedged, 1 something wedged (or the dump records a
//! panic), 2 the dump could not be read.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use wedge_vmcore::{Options, Vmcore};

#[derive(Args, Debug)]
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
    Log,
    /// Every task with its state and full kernel stack.
    Tasks,
}

fn open(args: &VmcoreArgs) -> Result<Vmcore, String> {
    let opts = Options {
        system_map: args.system_map.clone(),
        btf: args.btf.clone(),
    };
    Vmcore::open(&args.dump, &opts).map_err(|e| format!("{}: {e}", args.dump.display()))
}

#[derive(serde::Serialize)]
struct Crash {
    cpu: Option<u32>,
    pid: Option<i32>,
    comm: Option<String>,
    message: Option<String>,
}

fn crash(v: &Vmcore, log: &[wedge_vmcore::printk::Record]) -> Crash {
    let t = v.crashing_task();
    Crash {
        cpu: v.panic_cpu,
        pid: t.map(|t| t.pid),
        comm: t.map(|t| t.comm.clone()),
        message: wedge_vmcore::printk::panic_message(log),
    }
}

fn lock_text(waits: &[wedge_vmcore::locks::LockWait]) -> String {
    let mut s = String::new();
    for w in waits {
        let what = match w.kind {
            wedge_vmcore::locks::LockKind::Mutex => "mutex",
            wedge_vmcore::locks::LockKind::RwSemaphore => "rw-semaphore",
        };
        let name = w.symbol.clone().unwrap_or_else(|| format!("{:#x}", w.lock));
        let owner = match (w.owner, w.reader_owned) {
            (Some(o), _) => format!("held by {o}"),
            (None, true) => "held by readers".into(),
            (None, false) => "owner unknown".into(),
        };
        s.push_str(&format!(
            "  {} waits for {what} {name}, {owner}; queue: {:?}\n",
            w.waiter, w.waiters
        ));
    }
    s
}

pub fn run(json: bool, args: &VmcoreArgs) -> Result<ExitCode, String> {
    let v = open(args)?;
    let log = wedge_vmcore::printk::read(&v.kernel).unwrap_or_default();
    let code = |wedged: bool| {
        if wedged {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    };
    match &args.view {
        Some(VmcoreView::Tasks) => {
            #[derive(serde::Serialize)]
            struct T<'a> {
                task: &'a wedge_vmcore::tasks::Task,
                stack: Option<wedge_vmcore::stack::Stack>,
                stack_error: Option<String>,
            }
            let mut rows = Vec::new();
            let mut text = String::new();
            for t in &v.tasks {
                let st = v.stack(t);
                if !json {
                    let sleep = t.sleep.map(|s| format!(" ({s:?})")).unwrap_or_default();
                    text.push_str(&format!("{} {} {}{sleep}\n", t.pid, t.comm, t.state.code()));
                    match &st {
                        Ok(s) => {
                            for f in &s.frames {
                                match &f.function {
                                    Some(n) => text.push_str(&format!(
                                        "    {n}+{:#x}/{:#x}\n",
                                        f.offset, f.size
                                    )),
                                    None => text.push_str(&format!("    {:#x}\n", f.addr)),
                                }
                            }
                            if let Some(e) = &s.error {
                                text.push_str(&format!("    (stack ends: {e})\n"));
                            }
                        }
                        Err(e) => text.push_str(&format!("    (no stack: {e})\n")),
                    }
                }
                let (stack, stack_error) = match st {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                rows.push(T {
                    task: t,
                    stack,
                    stack_error,
                });
            }
            if json {
                crate::emit(&crate::json(&rows)?)?;
            } else {
                crate::emit(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(VmcoreView::Log) => {
            let text = wedge_vmcore::printk::to_dmesg(&log);
            let parsed = wedge_klog::parse_str(&text);
            if json {
                crate::emit(&crate::json(&parsed.events)?)?;
            } else {
                crate::emit(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(VmcoreView::Ps(ps)) => {
            let snap = wedge_vmcore::snapshot::build(&v, true);
            crate::print_ps(&snap, ps, json)
        }
        Some(VmcoreView::Why(why)) => {
            let snap = wedge_vmcore::snapshot::build(&v, true);
            let graph = wedge_analysis::graph::build(&snap);
            let findings = wedge_analysis::analyze_with(&snap, &graph);
            let proc_ = snap
                .process(why.pid)
                .or_else(|| snap.thread(why.pid).map(|(p, _)| p))
                .ok_or_else(|| format!("no process or thread {} in the dump", why.pid))?;
            let wedged = findings
                .iter()
                .any(|f| f.is_wedged() && f.pids.contains(&proc_.pid));
            let waits: Vec<_> = wedge_vmcore::locks::lock_waits(&v)
                .into_iter()
                .filter(|w| {
                    proc_
                        .threads
                        .iter()
                        .any(|t| t.tid == w.waiter || Some(t.tid) == w.owner)
                })
                .collect();
            if json {
                #[derive(serde::Serialize)]
                struct Why<'a> {
                    #[serde(flatten)]
                    report: wedge_render::why::WhyReport<'a>,
                    lock_waits: &'a [wedge_vmcore::locks::LockWait],
                }
                crate::emit(&crate::json(&Why {
                    report: wedge_render::why::report(&snap, proc_, &findings, &graph),
                    lock_waits: &waits,
                })?)?;
            } else {
                crate::emit(&wedge_render::why::render(&snap, proc_, &findings, &graph))?;
                if !waits.is_empty() {
                    crate::emit(&format!("Locks (from memory):\n{}", lock_text(&waits)))?;
                }
            }
            Ok(code(wedged))
        }
        None => {
            let snap = wedge_vmcore::snapshot::build(&v, true);
            let findings = wedge_analysis::analyze(&snap);
            let c = crash(&v, &log);
            let waits = wedge_vmcore::locks::lock_waits(&v);
            let events = wedge_klog::parse_str(&wedge_vmcore::printk::to_dmesg(&log)).events;
            let wedged = findings.iter().any(|f| f.is_wedged()) || c.message.is_some();
            if json {
                #[derive(serde::Serialize)]
                struct Verdict<'a> {
                    dump: String,
                    format: &'a str,
                    kernel_release: Option<&'a str>,
                    crash: &'a Crash,
                    wedged: bool,
                    findings: &'a [wedge_analysis::Finding],
                    lock_waits: &'a [wedge_vmcore::locks::LockWait],
                    log_events: &'a [wedge_klog::Event],
                    limitations: &'a [wedge_model::Limitation],
                }
                crate::emit(&crate::json(&Verdict {
                    dump: args.dump.display().to_string(),
                    format: &v.kernel.mem.dump.format,
                    kernel_release: v.kernel.release.as_deref(),
                    crash: &c,
                    wedged,
                    findings: &findings,
                    lock_waits: &waits,
                    log_events: &events,
                    limitations: &snap.limitations,
                })?)?;
            } else {
                let mut s = format!(
                    "{}: {} dump of Linux {}, {} tasks\n",
                    args.dump.display(),
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
                    s.push_str(&format!("Lock waits (from memory):\n{}", lock_text(&waits)));
                }
                s.push_str(&wedge_render::verdict::render(&snap, &findings, false));
                crate::emit(&s)?;
            }
            Ok(code(wedged))
        }
    }
}
