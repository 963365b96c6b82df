//! Hung tasks: `INFO: task COMM:PID blocked for more than N seconds.`
//! (kernel/hung_task.c, khungtaskd) and its 6.14+ blocker lines
//! (`task X:P is blocked on a mutex likely owned by task Y:Q`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::Detail;
use crate::event::Event;
use crate::parser::{finalize, finish_trace, new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, lead_u64, split_comm_pid};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &["INFO: "];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "hung_task",
        text: "[63002.025613] INFO: task jbd2/dm-2-8:22274 blocked for more than 120 seconds.",
    },
    Sample {
        kind: "hung_task",
        text: "Apr  2 10:00:01 host kernel: [  364.324540] INFO: task NIO-ELT-0-#3:1640 blocked for more than 120 seconds.",
    },
];

// ---- event types ----

/// Who a hung task is waiting for (`is blocked on a mutex likely owned by
/// task COMM:PID`, CONFIG_DETECT_HUNG_TASK_BLOCKER, 6.14+ for mutexes, 6.16+
/// for semaphores and rw-semaphores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// `mutex`, `semaphore` or `rw-semaphore`.
    pub kind: String,
    /// Owner (or last holder, for semaphores) task name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_task: Option<String>,
    /// Owner pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<u32>,
    /// The kernel said the owner is not found.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub owner_not_found: bool,
    /// For rw-semaphores: whether the hung task waits as `reader` or `writer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter_role: Option<String>,
    /// For rw-semaphores: whether the owner holds it as `reader` or `writer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_role: Option<String>,
}

/// `INFO: task COMM:PID blocked for more than N seconds.` (kernel/hung_task.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HungTask {
    /// Seconds the task has been in D state (rounded down to the check period).
    pub blocked_seconds: u64,
    /// Scheduler state letter from the task dump (`D`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Parent pid from the task dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Lock owner, when the kernel named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocker: Option<Blocker>,
    /// `Blocked by coredump.` (6.x): the task waits for a core dump to finish.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked_by_coredump: bool,
    /// `Future hung task reports are suppressed`: hung_task_warnings hit 0,
    /// so later hangs are not in the log.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub future_reports_suppressed: bool,
}

/// Lines of a hung-task report besides the shared trace lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HungLine {
    /// `INFO: task COMM:PID blocked for more than N seconds.`: opens a report.
    Header { task: String, pid: u32, secs: u64 },
    /// The 6.14+ blocker line: joins the open (or just finished) report of
    /// the same pid.
    Blocker { pid: u32, blocker: Blocker },
    /// `Future hung task reports are suppressed`: hung_task_warnings hit 0.
    Suppressed,
    /// `Blocked by coredump.`
    BlockedByCoredump,
}

// ---- line recognisers (called from `classify`) ----

pub(crate) fn hung_or_blocker(r: &str) -> Option<Line> {
    if let Some((who, rest)) = r.split_once(" blocked for more than ") {
        let (task, pid) = split_comm_pid(who)?;
        let (secs, _) = lead_u64(rest)?;
        return Some(Line::report(HungLine::Header {
            task: bounded(task, 64),
            pid,
            secs,
        }));
    }
    // Blocker lines (kernel/hung_task.c debug_show_blocker, 6.14+):
    //   COMM:PID is blocked on a mutex likely owned by task COMM:PID.
    //   COMM:PID is blocked on a mutex, but the owner is not found.
    //   COMM:PID blocked on a semaphore likely last held by task COMM:PID
    //   COMM:PID is blocked on a semaphore, but the last holder is not found.
    //   COMM:PID <reader> blocked on an rw-semaphore likely owned by task COMM:PID <writer>
    let (who, rest) = r
        .split_once(" is blocked on ")
        .or_else(|| r.split_once(" blocked on "))?;
    let mut who = who.trim();
    let mut waiter_role = None;
    if let Some((w, role)) = who.rsplit_once(" <") {
        waiter_role = role.strip_suffix('>').map(|x| x.to_string());
        who = w;
    }
    let (_task, pid) = split_comm_pid(who)?;
    let rest = rest.trim_start_matches("a ").trim_start_matches("an ");
    let (kind_tok, tail) = rest
        .split_once([' ', ','])
        .unwrap_or((rest.trim_end_matches('.'), ""));
    let kind = match kind_tok {
        "mutex" => "mutex",
        "semaphore" => "semaphore",
        "rw-semaphore" | "rwsem" => "rw-semaphore",
        other => other,
    };
    let mut blocker = Blocker {
        kind: bounded(kind, 32),
        owner_task: None,
        owner_pid: None,
        owner_not_found: tail.contains("not found"),
        waiter_role,
        owner_role: None,
    };
    if let Some(owner) = after(tail, " by task ").or_else(|| tail.strip_prefix("by task ")) {
        let mut owner = owner.trim().trim_end_matches('.');
        if let Some((o, role)) = owner.rsplit_once(" <") {
            blocker.owner_role = role.strip_suffix('>').map(|x| x.to_string());
            owner = o;
        }
        if let Some((t, p)) = split_comm_pid(owner) {
            blocker.owner_task = Some(bounded(t, 64));
            blocker.owner_pid = Some(p);
        }
    }
    Some(Line::report(HungLine::Blocker { pid, blocker }))
}

// ---- meanings ----

/// The one-line explanation of a `hung_task` event.
pub(crate) fn meaning_hung_task(ev: &Event, h: &HungTask, who: &str) -> String {
    let mut s = format!(
        "{who} has been in uninterruptible sleep (D state) for more than {} s",
        h.blocked_seconds
    );
    if let Some(site) = ev.site() {
        s.push_str(&format!(", waiting in {site}"));
        if let Some(p) = ev.wait_primitive() {
            s.push_str(&format!(" (in {p})"));
        }
    }
    if let Some(b) = &h.blocker {
        match (&b.owner_task, b.owner_pid) {
            (Some(t), Some(p)) => {
                s.push_str(&format!(
                    "; the {} it waits for is likely held by {t} (pid {p})",
                    b.kind
                ));
            }
            _ => s.push_str(&format!(
                "; it waits for a {} whose owner is unknown",
                b.kind
            )),
        }
    }
    if h.blocked_by_coredump {
        s.push_str("; blocked by a core dump in progress");
    }
    s
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for HungLine {
    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            HungLine::Header { task, pid, secs } => {
                ps.close_cur(caller);
                let mut ev = new_event(
                    Detail::HungTask(HungTask {
                        blocked_seconds: secs,
                        state: None,
                        ppid: None,
                        blocker: None,
                        blocked_by_coredump: false,
                        future_reports_suppressed: false,
                    }),
                    p,
                    ln,
                );
                ev.task = Some(task);
                ev.pid = Some(pid);
                ps.open_event(ev, p, 10);
            }
            HungLine::Blocker { pid, blocker } => {
                let label = match (&blocker.owner_task, blocker.owner_pid) {
                    (Some(t), Some(op)) => Some(format!("task {t}:{op}")),
                    _ => None,
                };
                if let Some(i) = ps.open.iter().rposition(|o| {
                    matches!(o.ev.detail, Detail::HungTask(_)) && o.ev.pid == Some(pid)
                }) {
                    if let Some(o) = ps.touch(i) {
                        finish_trace(o);
                        if let Detail::HungTask(h) = &mut o.ev.detail {
                            h.blocker = Some(blocker);
                        }
                        o.pending_label = label;
                    }
                } else if let Some(r) =
                    ps.ready.iter_mut().rev().find(|r| {
                        matches!(r.ev.detail, Detail::HungTask(_)) && r.ev.pid == Some(pid)
                    })
                {
                    if let Detail::HungTask(h) = &mut r.ev.detail {
                        h.blocker = Some(blocker);
                    }
                    finalize(&mut r.ev, ps.linux_version.as_ref());
                } else {
                    ps.fragment("hung-task blocker line without its report");
                }
            }
            HungLine::Suppressed => {
                let mut done = false;
                if let Some(i) = ps
                    .open
                    .iter()
                    .rposition(|o| matches!(o.ev.detail, Detail::HungTask(_)))
                {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::HungTask(h) = &mut o.ev.detail {
                            h.future_reports_suppressed = true;
                            done = true;
                        }
                    }
                }
                if !done {
                    if let Some(r) = ps
                        .ready
                        .iter_mut()
                        .rev()
                        .find(|r| matches!(r.ev.detail, Detail::HungTask(_)))
                    {
                        if let Detail::HungTask(h) = &mut r.ev.detail {
                            h.future_reports_suppressed = true;
                        }
                        finalize(&mut r.ev, ps.linux_version.as_ref());
                    }
                }
            }
            HungLine::BlockedByCoredump => {
                if let Some(i) = ps.cur(caller) {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::HungTask(h) = &mut o.ev.detail {
                            h.blocked_by_coredump = true;
                        }
                    }
                }
            }
        }
    }
}
