//! `wedge log [FILE…]`: kernel logs as typed events.
//!
//! Without a file it reads the running kernel's buffer from /dev/kmsg (and
//! links hung-task events to the live tasks); files may be plain text or
//! gzip, zstd, xz or lz4 compressed, and `-` is standard input.

use clap::Args;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::ExitCode;
use wedge_klog::{BootClock, Decision, NotText};
use wedge_klog::{Event, Filter, Parser, Since};

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Log files (dmesg, syslog, journalctl, console captures, pasted
    /// reports; .gz, .zst, .xz and .lz4 read directly). `-` is standard input.
    /// Without any, the live kernel log (/dev/kmsg).
    pub files: Vec<std::path::PathBuf>,
    /// Keep reading /dev/kmsg and print events as they complete.
    #[arg(long, short)]
    pub follow: bool,
    /// Only these kinds (repeatable; `lustre_*` matches a prefix).
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind, help = kind_help())]
    pub kinds: Vec<String>,
    /// Only events at or after this time: seconds since boot (`3600`) or a
    /// UTC date (`2024-05-22` or `2024-05-22T19:04:47`). A date is compared
    /// with since-boot stamps through the boot time (the live log's
    /// /proc/stat btime, or syslog/journal lines carrying both clocks);
    /// events that cannot be compared (other clock with no boot time, or no
    /// stamp) are not shown, and stderr says how many.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events about this pid.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only events about this task name (comm).
    #[arg(long)]
    pub task: Option<String>,
}

/// `--kind` help: the kinds come from the parser's own table.
fn kind_help() -> String {
    format!(
        "Only these kinds (repeatable; `lustre_*` matches a prefix). Kinds: {}",
        wedge_klog::KINDS.join(", ")
    )
}

/// Rejects a `--kind` no event can have, so a typo is not `0 event(s)`.
fn parse_kind(s: &str) -> Result<String, String> {
    if wedge_klog::is_known_kind(s) {
        return Ok(s.to_string());
    }
    Err(format!(
        "no event has this kind; valid kinds (or a prefix followed by `*`): {}",
        wedge_klog::KINDS.join(", ")
    ))
}

/// Opens a log file (or standard input for `-`) through the shared
/// opener: non-blocking, FIFOs and devices refused, every read bounded,
/// gzip, zstd, xz or lz4 undone by magic and streamed, size capped.
fn open(path: &std::path::Path) -> Result<Box<dyn Read + Send>, String> {
    let input =
        wedge_input::open(path, &wedge_input::Limits::default()).map_err(|e| e.to_string())?;
    let (stream, _) = input.stream().map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Every event of the running boot's kernel log, read without waiting.
pub fn live_events() -> Result<Vec<Event>, String> {
    wedge_klog::live_events()
}

/// The state and wait channel now of tasks named by events from this boot.
fn live_tasks(pids: impl Iterator<Item = u32>) -> HashMap<u32, wedge_render::log::LiveTask> {
    let root = std::path::Path::new("/proc");
    pids.filter_map(|pid| {
        let t = wedge_procfs::task_now(root, pid)?;
        Some((
            pid,
            wedge_render::log::LiveTask {
                state: t.state,
                wchan: t.wchan,
                comm: t.comm,
            },
        ))
    })
    .collect()
}

/// The live boot's clock: `btime` of /proc/stat (a read that never
/// blocks), so `--since DATE` maps onto /dev/kmsg's since-boot stamps.
fn live_clock() -> BootClock {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| wedge_procfs::parse::btime(&s))
        .map_or_else(BootClock::default, BootClock::known)
}

pub fn run(json: bool, args: &LogArgs) -> Result<ExitCode, String> {
    let filter = Filter {
        kinds: args.kinds.clone(),
        since: args.since.as_deref().map(Since::parse).transpose()?,
        pid: args.pid,
        task: args.task.clone(),
    };
    let live = args.files.is_empty();
    let mut clock = if live {
        live_clock()
    } else {
        BootClock::default()
    };
    let mut unknown = wedge_klog::SinceUncompared::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The text view aggregates as events stream by: memory does not grow
    // with the log (a 210 MB file of hung-task reports is one group).
    let mut view = wedge_render::log::LogView::new();
    let mut any_serious = false;
    let mut broken_pipe = false;
    let mut sink = |e: Event| -> Result<(), String> {
        match filter.decide(&e, &mut clock) {
            Decision::Keep => {}
            Decision::Drop => return Ok(()),
            Decision::SinceUnknown => {
                unknown.count(&e);
                return Ok(());
            }
        }
        any_serious |= e.is_serious();
        if json {
            let line = serde_json::to_string(&wedge_model::Versioned::new(&e))
                .map_err(|e| format!("encoding JSON: {e}"))?;
            if !broken_pipe {
                if let Err(err) =
                    writeln!(out, "{line}")
                        .and_then(|_| if args.follow { out.flush() } else { Ok(()) })
                {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        broken_pipe = true;
                    } else {
                        return Err(format!("writing output: {err}"));
                    }
                }
            }
        } else if args.follow {
            let text = wedge_render::log::render(
                std::slice::from_ref(&e),
                &Default::default(),
                &HashMap::new(),
            );
            let _ = write!(out, "{text}");
            let _ = out.flush();
        } else {
            view.add(e);
        }
        Ok(())
    };
    let mut summary = wedge_klog::Summary::default();
    if live {
        let mut parser = Parser::new();
        let lost = wedge_klog::read_kmsg(args.follow, &mut parser, &mut sink)?;
        summary = parser.summary().clone();
        if lost > 0 {
            eprintln!("wedge: /dev/kmsg overran {lost} time(s): older records were lost before they could be read");
        }
    } else {
        for path in &args.files {
            let name = path.display();
            let mut stream = wedge_klog::parse_reader(open(path)?).text_only();
            let mut stopped = None;
            for ev in stream.by_ref() {
                match ev {
                    Ok(e) => sink(e)?,
                    Err(err) => {
                        if let Some(nt) = err.get_ref().and_then(|x| x.downcast_ref::<NotText>()) {
                            return Err(format!("{name}: {nt}"));
                        }
                        // A truncated .gz/.zst/.xz (a rotated log still
                        // being written): the events already decoded follow
                        // from the stream and are kept.
                        stopped = Some(err);
                    }
                }
            }
            if let Some(err) = stopped {
                eprintln!(
                    "wedge: {name}: reading stopped after {} byte(s) of log text (line {}): {err}; the events before that point are shown",
                    stream.bytes_read(),
                    stream.summary().lines
                );
            }
            summary.merge(stream.summary());
        }
    }
    if let (Some(when), Some(since)) = (args.since.as_deref(), filter.since) {
        if let Some(w) = unknown.explain(when, since) {
            eprintln!("wedge: {w}");
        }
    }
    if !json && !args.follow {
        // Events of this boot name tasks that may still exist: say what
        // they are doing now.
        let tasks = if live {
            live_tasks(view.hung_task_pids())
        } else {
            HashMap::new()
        };
        let text = view.render(&summary, &tasks);
        match out.write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(format!("writing output: {e}"))
            }
            _ => {}
        }
    }
    let _ = out.flush();
    Ok(if any_serious {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
