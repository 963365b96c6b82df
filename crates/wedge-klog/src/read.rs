//! `wedge log`'s reading: the live /dev/kmsg or files (through the one
//! opener of user-given input, `wedge-input`), filtered as they stream by
//! and handed to a [`LogSink`] (a view), with what could not be compared
//! or read said, never dropped silently.

use crate::event::{BootClock, Decision, Event, Filter, Since, SinceUncompared};
use crate::parser::{Parser, Summary};
use crate::sniff::NotText;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wedge_model::{Limitation, LogEvent, TaskNow};

/// What to read and which events to keep.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// Log files, `-` for standard input; none: the live /dev/kmsg.
    pub files: Vec<PathBuf>,
    /// Keep reading /dev/kmsg for the records that come.
    pub follow: bool,
    /// The predicates.
    pub filter: Filter,
    /// `--since` as given, to name it when events cannot be compared.
    pub since: Option<String>,
}

impl LogRequest {
    /// A request from `wedge log`'s arguments; an unreadable `--since` is
    /// an error.
    pub fn new(
        files: Vec<PathBuf>,
        follow: bool,
        kinds: Vec<String>,
        since: Option<String>,
        pid: Option<u32>,
        task: Option<String>,
    ) -> Result<LogRequest, String> {
        let filter = Filter {
            kinds,
            since: since.as_deref().map(Since::parse).transpose()?,
            pid,
            task,
        };
        Ok(LogRequest {
            files,
            follow,
            filter,
            since,
        })
    }

    /// Reads the running kernel's log, not files.
    pub fn is_live(&self) -> bool {
        self.files.is_empty()
    }
}

/// Where the events a [`LogRequest`] keeps go: a view.
pub trait LogSink {
    /// One event that passed the filter.
    fn event(&mut self, e: Event) -> Result<(), String>;
    /// Something the user must know about the reading (stderr).
    fn warn(&mut self, message: &str);
    /// Pids whose state now the view would show (live log only).
    fn live_pids(&self) -> Vec<u32>;
    /// The end of the log: what could not be used, and the live state of
    /// the tasks of [`LogSink::live_pids`].
    fn finish(&mut self, summary: &Summary, live: &HashMap<u32, TaskNow>) -> Result<(), String>;
}

/// Reads what `req` names into `sink`; returns whether a kept event is
/// serious (a panic, oops, hung task, lockup or stall: exit status 1).
pub fn read_log(req: &LogRequest, sink: &mut dyn LogSink) -> Result<bool, String> {
    let proc_root = Path::new("/proc");
    let live = req.is_live();
    // The live boot's clock maps `--since DATE` onto /dev/kmsg's since-boot
    // stamps; files teach their own clock as they go (syslog lines carrying
    // both stamps).
    let mut clock = match live.then(|| wedge_procfs::boot_time(proc_root)) {
        Some(Some(btime)) => BootClock::known(btime),
        _ => BootClock::default(),
    };
    let mut unknown = SinceUncompared::default();
    let mut serious = false;
    let mut summary = Summary::default();
    {
        let mut keep = |e: Event, sink: &mut dyn LogSink| -> Result<(), String> {
            match req.filter.decide(&e, &mut clock) {
                Decision::Keep => {
                    serious |= e.is_serious();
                    sink.event(e)
                }
                Decision::Drop => Ok(()),
                Decision::SinceUnknown => {
                    unknown.count(&e);
                    Ok(())
                }
            }
        };
        if live {
            let mut parser = Parser::new();
            let lost = crate::kmsg::read_kmsg(req.follow, &mut parser, |e| keep(e, &mut *sink))?;
            summary = parser.summary().clone();
            if lost > 0 {
                sink.warn(&format!("/dev/kmsg overran {lost} time(s): older records were lost before they could be read"));
            }
        }
        for path in &req.files {
            let name = path.display();
            let mut stream = crate::parse_reader(open(path)?).text_only();
            let mut stopped = None;
            for ev in stream.by_ref() {
                match ev {
                    Ok(e) => keep(e, &mut *sink)?,
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
                sink.warn(&format!(
                    "{name}: reading stopped after {} byte(s) of log text (line {}): {err}; the events before that point are shown",
                    stream.bytes_read(),
                    stream.summary().lines
                ));
            }
            summary.merge(stream.summary());
        }
    }
    if let (Some(when), Some(since)) = (req.since.as_deref(), req.filter.since) {
        if let Some(w) = unknown.explain(when, since) {
            sink.warn(&w);
        }
    }
    // Events of this boot name tasks that may still exist: what they are
    // doing now, read through procfs's own bounded reads (stat and wchan,
    // which take no mmap_lock).
    let tasks = if live {
        wedge_procfs::tasks_now(proc_root, sink.live_pids())
    } else {
        HashMap::new()
    };
    sink.finish(&summary, &tasks)?;
    Ok(serious)
}

/// Opens a log file (or standard input for `-`) through the shared
/// opener: non-blocking, FIFOs and devices refused, every read bounded,
/// gzip, zstd, xz or lz4 undone by magic and streamed, size capped.
fn open(path: &Path) -> Result<Box<dyn std::io::Read + Send>, String> {
    let input =
        wedge_input::open(path, &wedge_input::Limits::default()).map_err(|e| e.to_string())?;
    let (stream, _) = input.stream().map_err(|e| e.to_string())?;
    Ok(stream)
}

/// This boot's kernel log in the model's vocabulary, for the diagnosis;
/// when it cannot be read (no root, `kernel.dmesg_restrict`) that is a
/// limitation of the view, not an error.
pub fn live_log_events(limitations: &mut Vec<Limitation>) -> Vec<LogEvent> {
    match crate::kmsg::live_events() {
        Ok(events) => crate::model::to_log_events(&events),
        Err(e) => {
            limitations.push(kernel_log_limitation(e));
            Vec::new()
        }
    }
}

/// The limitation of a view whose kernel log could not be read.
pub fn kernel_log_limitation(why: String) -> Limitation {
    Limitation {
        what: "the kernel log".into(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what it is given, as a view would.
    #[derive(Default)]
    struct Keep {
        kinds: Vec<&'static str>,
        warnings: Vec<String>,
        lines: u64,
    }

    impl LogSink for Keep {
        fn event(&mut self, e: Event) -> Result<(), String> {
            self.kinds.push(e.kind());
            Ok(())
        }
        fn warn(&mut self, message: &str) {
            self.warnings.push(message.to_string());
        }
        fn live_pids(&self) -> Vec<u32> {
            Vec::new()
        }
        fn finish(&mut self, summary: &Summary, _: &HashMap<u32, TaskNow>) -> Result<(), String> {
            self.lines = summary.lines;
            Ok(())
        }
    }

    fn corpus(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../corpus/kernel-logs")
            .join(name)
    }

    #[test]
    fn a_file_is_read_filtered_and_summed_up() {
        let file = corpus("hung_task-012.log");
        let req = LogRequest::new(vec![file.clone()], false, vec![], None, None, None);
        let mut sink = Keep::default();
        let serious = read_log(&req.unwrap_or_default(), &mut sink);
        assert_eq!(serious, Ok(true));
        assert_eq!(sink.kinds, ["hung_task", "hung_task"]);
        assert_eq!(sink.lines, 69);
        // A kind filter keeps none of them: nothing serious kept.
        let req = LogRequest::new(vec![file], false, vec!["oom_kill".into()], None, None, None);
        let mut sink = Keep::default();
        assert_eq!(read_log(&req.unwrap_or_default(), &mut sink), Ok(false));
        assert!(sink.kinds.is_empty());
    }

    #[test]
    fn since_a_date_on_unstamped_lines_is_said() {
        let req = LogRequest::new(
            vec![corpus("hung_task-012.log")],
            false,
            vec![],
            Some("2024-05-22".into()),
            None,
            None,
        );
        let mut sink = Keep::default();
        assert_eq!(read_log(&req.unwrap_or_default(), &mut sink), Ok(false));
        assert!(sink.kinds.is_empty());
        assert_eq!(sink.warnings.len(), 1, "{:?}", sink.warnings);
        assert!(
            sink.warnings[0].contains("2024-05-22"),
            "{:?}",
            sink.warnings
        );
    }

    #[test]
    fn bad_requests_and_inputs_are_errors_naming_them() {
        let e = LogRequest::new(vec![], false, vec![], Some("yesterday".into()), None, None);
        assert!(e.is_err_and(|e| e.contains("yesterday")));
        let missing = PathBuf::from("/nonexistent/kern.log");
        let req = LogRequest::new(vec![missing], false, vec![], None, None, None);
        let e = read_log(&req.unwrap_or_default(), &mut Keep::default());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.contains("/nonexistent/kern.log")),
            "{e:?}"
        );
    }

    #[test]
    fn kinds_are_checked_against_the_table() {
        assert_eq!(crate::parse_kind("hung_task"), Ok("hung_task".into()));
        assert_eq!(crate::parse_kind("lustre_*"), Ok("lustre_*".into()));
        let e = crate::parse_kind("hung_tsak").unwrap_err();
        assert!(e.contains("hung_task"), "{e}");
        assert!(crate::kind_help().contains("gpf_trap"));
    }
}
