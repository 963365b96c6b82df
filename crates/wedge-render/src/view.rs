//! The views of a snapshot whatever its source — the verdict, `ps`, `why`
//! — as one flow for the live machine and a crash dump, drawn from the
//! snapshot and its [`Diagnosis`]. What only a dump adds (its header and
//! panic, the lock waits read from memory, how much of it could be read,
//! the `why` command of the footer) comes in as a [`Dump`]; the dump-only
//! views (`tasks`, `log`) are its methods. Each view writes its text or
//! its one-line JSON document and says what it found ([`Status`]); the
//! binary turns that into the exit status.

use crate::output::{self, lock_text, lock_waits, LockWaitView};
use crate::ps::PsOptions;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use wedge_analysis::Diagnosis;
use wedge_model::{DumpFacts, Limitation, Process, Snapshot, SCHEMA_VERSION};

/// What a view found, for the exit status (the numbers are the binary's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing found in a view of the whole.
    Clear,
    /// Something wedged, a panic recorded, a serious kernel-log event.
    Found,
    /// Nothing found, but the view is partial (a dump cut short): what was
    /// not read may hold what matters, so this is no all-clear.
    Partial,
}

impl Status {
    /// The rule: a finding wins; without one a partial view is not clear.
    pub fn of(found: bool, partial: bool) -> Status {
        match (found, partial) {
            (true, _) => Status::Found,
            (false, true) => Status::Partial,
            (false, false) => Status::Clear,
        }
    }
}

/// Writes a view; a closed pipe (`wedge ps | head`) is not an error.
pub fn write_out(out: &mut dyn Write, text: &str) -> Result<(), String> {
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing output: {e}")),
    }
}

/// Every `--json` output is compact, one document a line (`wedge log`: one
/// event a line): a snapshot of 10,000 threads is megabytes, and
/// pretty-printing it cost a third of the scan; `jq .` pretty-prints.
pub fn json_line<T: Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| format!("encoding JSON: {e}"))
}

/// A crash dump's own parts of its views: its facts, and how much of the
/// machine it shows (`C`: the dump reader's completeness, written as is in
/// the verdict's JSON, so this crate needs no dump reader).
pub struct Dump<'a, C: Serialize> {
    pub facts: &'a DumpFacts,
    pub completeness: &'a C,
}

impl<C: Serialize> Dump<'_, C> {
    fn partial(&self) -> Option<&str> {
        self.facts.partial.as_deref()
    }

    /// Says on stderr that the view is partial, before any view, so a
    /// partial view is never taken for the whole.
    pub fn warn_partial(&self) {
        if let Some(p) = self.partial() {
            eprintln!("wedge: {}: partial view: {p}", self.facts.path);
        }
    }

    /// The verdict's limitation when the printk buffer could not be read.
    pub fn log_limitation(&self) -> Option<Limitation> {
        let e = self.facts.log.as_ref().err()?;
        Some(wedge_klog::kernel_log_limitation(e.clone()))
    }

    /// The last line of every text view of a partial dump.
    fn note(&self, text: &mut String) {
        if let Some(p) = self.partial() {
            text.push_str(&format!("note: partial view: {p}\n"));
        }
    }

    /// `wedge vmcore DUMP tasks`: every task with its state and stack, as
    /// the dump reader lists them (`rows`, and `text` for people).
    pub fn tasks<T: Serialize>(
        &self,
        rows: Vec<T>,
        text: impl FnOnce(&[T]) -> String,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<Status, String> {
        let doc = if json {
            json_line(&output::DumpTasks {
                schema_version: SCHEMA_VERSION,
                dump: &self.facts.path,
                partial: self.partial(),
                task_errors: &self.facts.task_errors,
                tasks: rows,
            })?
        } else {
            let mut s = text(&rows);
            for e in &self.facts.task_errors {
                s.push_str(&format!("note: {e}\n"));
            }
            self.note(&mut s);
            s
        };
        write_out(out, &doc)?;
        Ok(Status::of(false, self.partial().is_some()))
    }

    /// `wedge vmcore DUMP log`: the printk records through `wedge log`'s
    /// parser and view (typed events, and the same exit status: a panic,
    /// oops, hung task, lockup or stall is found), or as dmesg prints them.
    pub fn log(&self, raw: bool, json: bool, out: &mut dyn Write) -> Result<Status, String> {
        let (records, text) = match &self.facts.log {
            Ok((n, text)) => (*n, text),
            Err(e) => return Err(format!("{}: {e}", self.facts.path)),
        };
        let parsed = wedge_klog::parse_str(text);
        let serious = parsed.events.iter().any(wedge_klog::Event::is_serious);
        let doc = if json {
            json_line(&output::DumpLog {
                schema_version: SCHEMA_VERSION,
                dump: &self.facts.path,
                partial: self.partial(),
                records,
                events: &parsed.events,
            })?
        } else {
            let mut s = if raw {
                text.clone()
            } else {
                crate::log::render(&parsed.events, &parsed.summary, &HashMap::new())
            };
            self.note(&mut s);
            s
        };
        write_out(out, &doc)?;
        Ok(Status::of(serious, self.partial().is_some()))
    }

    /// [`verdict`] of the dump.
    pub fn verdict(
        &self,
        snap: &Snapshot,
        d: &Diagnosis,
        verbose: bool,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<Status, String> {
        verdict(snap, d, verbose, json, Some(self), out)
    }

    /// [`ps`] of the dump.
    pub fn ps(
        &self,
        snap: &Snapshot,
        opts: PsOptions,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<Status, String> {
        ps(snap, opts, json, Some(self), out)
    }

    /// [`why`] of the dump (no user stacks: user memory is not read).
    pub fn why(
        &self,
        snap: &Snapshot,
        d: &Diagnosis,
        pid: i32,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<Status, String> {
        why(snap, d, pid, json, Some(self), no_user_stacks, out)
    }

    /// The verdict's head: what the dump is, its panic, its lock waits.
    fn header(&self, waits: &[LockWaitView]) -> String {
        let f = self.facts;
        let mut s = format!(
            "{}: {} dump of Linux {}, {} tasks\n",
            f.path,
            f.format,
            f.kernel_release.as_deref().unwrap_or("?"),
            f.tasks
        );
        let c = &f.crash;
        if let Some(m) = &c.message {
            s.push_str(&format!(
                "Kernel panic on CPU {}: {m}\n  crashing task: {} ({})\n",
                c.cpu.map_or("?".into(), |c| c.to_string()),
                c.pid.map_or("?".into(), |p| p.to_string()),
                c.comm.as_deref().unwrap_or("?")
            ));
            if !c.stack.is_empty() {
                s.push_str(&format!("  stack: {}\n", c.stack.join(" ← ")));
            }
        }
        if !waits.is_empty() {
            s.push_str(&format!("Lock waits (from memory):\n{}", lock_text(waits)));
        }
        s
    }
}

/// How long a live lock wait lasts before the verdict's text lists it.
const LASTING_LOCK_WAIT_MS: f64 = 1_000.0;

/// The dump of a view, if any, is partial.
fn partial<C: Serialize>(dump: Option<&Dump<'_, C>>) -> bool {
    dump.is_some_and(|d| d.partial().is_some())
}

/// The whole-machine verdict. A dump adds its header and panic (a panic
/// is found), and its footer names `wedge vmcore DUMP why`; the dump's own
/// kernel log is listed as `log_events`, not merged into the findings.
pub fn verdict<C: Serialize>(
    snap: &Snapshot,
    d: &Diagnosis,
    verbose: bool,
    json: bool,
    dump: Option<&Dump<'_, C>>,
    out: &mut dyn Write,
) -> Result<Status, String> {
    let findings = &d.findings;
    let crashed = dump.is_some_and(|x| x.facts.crash.message.is_some());
    let wedged = d.wedged() || crashed;
    // A dump's lock waits and the live kernel's (BPF) are the same facts.
    let waits = lock_waits(snap);
    // The recorder's history is the live machine's: a dump's tasks are not
    // the ones it saw.
    let recall = crate::history::Recall::of(snap, d).filter(|_| dump.is_none());
    let doc = match (json, dump) {
        (true, None) => json_line(&output::Verdict {
            schema_version: SCHEMA_VERSION,
            wedged,
            findings: crate::history::finding_views(snap, findings, recall.as_ref()),
            lock_waits: &waits,
            limitations: &snap.limitations,
            stats: &snap.stats,
        })?,
        (true, Some(x)) => {
            let text = x.facts.log.as_ref().map_or("", |(_, t)| t.as_str());
            json_line(&output::DumpVerdict {
                schema_version: SCHEMA_VERSION,
                dump: x.facts.path.clone(),
                format: &x.facts.format,
                kernel_release: x.facts.kernel_release.as_deref(),
                crash: &x.facts.crash,
                wedged,
                partial: x.partial(),
                completeness: x.completeness,
                findings,
                lock_waits: &waits,
                log_events: &wedge_klog::parse_str(text).events,
                limitations: &snap.limitations,
            })?
        }
        (false, None) => {
            // A live mutex wait of a few microseconds is ordinary: the
            // text lists the waits that have lasted (JSON has every one).
            let lasting: Vec<LockWaitView> = waits
                .iter()
                .filter(|w| {
                    snap.thread(w.waiter)
                        .and_then(|(_, t)| snap.off_cpu_ms(t))
                        .is_some_and(|ms| ms >= LASTING_LOCK_WAIT_MS)
                })
                .cloned()
                .collect();
            let head = if lasting.is_empty() {
                String::new()
            } else {
                format!(
                    "Lock waits (the live kernel, through BPF):\n{}",
                    lock_text(&lasting)
                )
            };
            // After the verdict's first line (what was scanned), before
            // the findings.
            let body = crate::verdict::render_recalled(
                snap,
                findings,
                verbose,
                "wedge why",
                recall.as_ref(),
            );
            match body.split_once('\n') {
                Some((first, rest)) if !head.is_empty() => format!("{first}\n{head}{rest}"),
                _ => head + &body,
            }
        }
        (false, Some(x)) => {
            let why = format!("wedge vmcore {} why", shell_word(&x.facts.path));
            x.header(&waits) + &crate::verdict::render_with(snap, findings, verbose, &why)
        }
    };
    write_out(out, &doc)?;
    Ok(Status::of(wedged, partial(dump)))
}

/// `ps`: the table, or the whole snapshot as JSON. Only the exit status
/// needs the diagnosis, so it is made here, alongside the JSON writing
/// (megabytes for 10,000 threads), not before it.
pub fn ps<C: Serialize>(
    snap: &Snapshot,
    opts: PsOptions,
    json: bool,
    dump: Option<&Dump<'_, C>>,
    out: &mut dyn Write,
) -> Result<Status, String> {
    if json {
        let (wedged, written) = std::thread::scope(|s| {
            let analysis = s.spawn(|| wedge_analysis::diagnose(snap, &[]).wedged());
            let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
            let written = crate::json::write_snapshot(snap, &mut out).and_then(|_| {
                out.write_all(b"\n")?;
                out.flush()
            });
            (analysis.join().unwrap_or(false), written)
        });
        return match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(format!("writing output: {e}"))
            }
            _ => Ok(Status::of(wedged, partial(dump))),
        };
    }
    let wedged = wedge_analysis::diagnose(snap, &[]).wedged();
    let (mut text, _) = crate::ps::render(snap, opts);
    for b in &snap.blocked_reads {
        text.push_str(&format!(
            "note: reading {} blocked > {} ms ({})\n",
            b.location(&snap.source),
            b.blocked_ms(),
            b.blocks_on
        ));
    }
    if let Some(x) = dump {
        text.push_str("note: COMMAND is the command line read from each process's memory in the dump (its task name where that memory is not in the dump); [brackets] mark kernel threads\n");
        x.note(&mut text);
    }
    write_out(out, &text)?;
    Ok(Status::of(wedged, partial(dump)))
}

/// `why PID`: the process the pid names (a thread's process for a tid),
/// what it waits for and whether it is wedged. `user_stacks` adds what a
/// live process's user-space stacks show (a document and its text); a
/// dump adds the lock waits its memory records.
pub fn why<C: Serialize, U: Serialize>(
    snap: &Snapshot,
    d: &Diagnosis,
    pid: i32,
    json: bool,
    dump: Option<&Dump<'_, C>>,
    user_stacks: impl FnOnce(&Process) -> Option<(U, String)>,
    out: &mut dyn Write,
) -> Result<Status, String> {
    let p = snap
        .process(pid)
        .or_else(|| snap.thread(pid).map(|(p, _)| p))
        .ok_or_else(|| match dump.map(|x| x.partial()) {
            None => format!("no process or thread {pid} (it may have exited)"),
            Some(Some(part)) => {
                format!("no process or thread {pid} in what could be read of the dump ({part})")
            }
            Some(None) => format!("no process or thread {pid} in the dump"),
        })?;
    let stacks = user_stacks(p);
    // The lock waits were read from memory (a dump) or from the live
    // kernel's task->blocker (BPF) into the snapshot.
    let waits: Vec<_> = lock_waits(snap)
        .into_iter()
        .filter(|w| {
            p.threads
                .iter()
                .any(|t| t.tid == w.waiter || Some(t.tid) == w.owner)
        })
        .collect();
    let recall = crate::history::Recall::of(snap, d).filter(|_| dump.is_none());
    let report = || crate::why::report_with(snap, p, &d.findings, &d.graph, recall.as_ref());
    let doc = match (json, dump) {
        (true, None) => json_line(&output::Why {
            schema_version: SCHEMA_VERSION,
            report: report(),
            user_stacks: stacks.as_ref().map(|(u, _)| u),
            lock_waits: &waits,
        })?,
        (true, Some(x)) => json_line(&output::DumpWhy {
            schema_version: SCHEMA_VERSION,
            report: report(),
            lock_waits: &waits,
            partial: x.partial(),
            limitations: &snap.limitations,
        })?,
        (false, _) => {
            let mut text = crate::why::render_with(snap, p, &d.findings, &d.graph, recall.as_ref());
            if let Some((_, t)) = &stacks {
                text.push_str(t);
            }
            if !waits.is_empty() {
                let from = if dump.is_some() {
                    "from memory"
                } else {
                    "the live kernel, through BPF"
                };
                text.push_str(&format!("Locks ({from}):\n{}", lock_text(&waits)));
            }
            if let Some(x) = dump {
                x.note(&mut text);
            }
            text
        }
    };
    write_out(out, &doc)?;
    Ok(Status::of(d.wedged_pid(p.pid), partial(dump)))
}

/// `why`'s `user_stacks` where there are none to read.
fn no_user_stacks(_: &Process) -> Option<((), String)> {
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_model::{Crash, Source};

    #[test]
    fn found_wins_and_partial_is_no_all_clear() {
        assert_eq!(Status::of(true, true), Status::Found);
        assert_eq!(Status::of(true, false), Status::Found);
        assert_eq!(Status::of(false, true), Status::Partial);
        assert_eq!(Status::of(false, false), Status::Clear);
    }

    #[test]
    fn shell_words_read_back() {
        assert_eq!(shell_word("/tmp/a.dump"), "/tmp/a.dump");
        assert_eq!(shell_word("my dump"), "'my dump'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    fn facts(partial: Option<&str>, log: Result<(usize, String), String>) -> DumpFacts {
        DumpFacts {
            path: "my dump".into(),
            format: "ELF".into(),
            kernel_release: Some("6.1.0-test".into()),
            tasks: 3,
            crash: Crash {
                cpu: Some(1),
                pid: Some(42),
                comm: Some("bash".into()),
                message: Some("sysrq triggered crash".into()),
                stack: vec![],
            },
            partial: partial.map(str::to_string),
            task_errors: vec!["task list cut".into()],
            log,
        }
    }

    fn written(f: impl FnOnce(&mut Vec<u8>) -> Result<Status, String>) -> (Status, String) {
        let mut out = Vec::new();
        let status = f(&mut out).unwrap_or_else(|e| panic!("{e}"));
        (status, String::from_utf8(out).unwrap_or_default())
    }

    /// A dump's verdict: its header and panic before the live verdict's
    /// text, its footer naming the dump (quoted for the shell), and a panic
    /// is something found.
    #[test]
    fn dump_verdict_adds_header_panic_and_footer() {
        let mut snap = Snapshot::new(Source::Vmcore {
            path: "my dump".into(),
        });
        let f = facts(None, Err("the printk buffer: gone".into()));
        let dump = Dump {
            facts: &f,
            completeness: &(),
        };
        snap.limitations.extend(dump.log_limitation());
        let d = wedge_analysis::diagnose(&snap, &[]);
        let (status, text) = written(|o| verdict(&snap, &d, false, false, Some(&dump), o));
        assert_eq!(status, Status::Found);
        assert!(
            text.starts_with("my dump: ELF dump of Linux 6.1.0-test, 3 tasks\nKernel panic on CPU 1: sysrq triggered crash\n  crashing task: 42 (bash)\n"),
            "{text}"
        );
        assert!(
            text.contains("(cannot see the kernel log: the printk buffer: gone)"),
            "{text}"
        );
        let (_, live) = written(|o| verdict::<()>(&snap, &d, false, false, None, o));
        assert!(text.ends_with(&live), "{text}\n---\n{live}");
        let (_, json) = written(|o| verdict(&snap, &d, false, true, Some(&dump), o));
        assert!(json.contains(r#""wedged":true"#), "{json}");
        assert!(json.contains(r#""completeness":null"#), "{json}");
        assert!(json.ends_with("}\n") && json.lines().count() == 1, "{json}");
    }

    /// The dump-only views: a partial dump says so last and is no
    /// all-clear; an unreadable printk buffer is an error naming the dump.
    #[test]
    fn dump_tasks_and_log_of_a_partial_dump() {
        let part = "dump truncated: 1 of 2 MB present";
        let f = facts(
            Some(part),
            Ok((
                1,
                "[    1.000000] Kernel panic - not syncing: test\n".into(),
            )),
        );
        let dump = Dump {
            facts: &f,
            completeness: &(),
        };
        let (status, text) = written(|o| dump.tasks(vec![1, 2], |r| format!("{r:?}\n"), false, o));
        assert_eq!(status, Status::Partial);
        assert_eq!(
            text,
            format!("[1, 2]\nnote: task list cut\nnote: partial view: {part}\n")
        );
        let (status, text) = written(|o| dump.log(true, false, o));
        assert_eq!(status, Status::Found, "a panic is serious: {text}");
        assert!(text.ends_with(&format!("note: partial view: {part}\n")));
        let f = facts(None, Err("the printk buffer: gone".into()));
        let dump = Dump {
            facts: &f,
            completeness: &(),
        };
        let e = dump.log(false, false, &mut Vec::new());
        assert_eq!(e, Err("my dump: the printk buffer: gone".into()));
    }

    #[test]
    fn why_of_a_missing_pid_names_the_source() {
        let snap = Snapshot::new(Source::Vmcore {
            path: "my dump".into(),
        });
        let d = wedge_analysis::diagnose(&snap, &[]);
        let none = no_user_stacks;
        let e = why::<(), ()>(&snap, &d, 7, false, None, none, &mut Vec::new());
        assert_eq!(e, Err("no process or thread 7 (it may have exited)".into()));
        let f = facts(Some("half"), Ok((0, String::new())));
        let dump = Dump {
            facts: &f,
            completeness: &(),
        };
        let e = why(&snap, &d, 7, true, Some(&dump), none, &mut Vec::new());
        assert_eq!(
            e,
            Err("no process or thread 7 in what could be read of the dump (half)".into())
        );
    }
}
