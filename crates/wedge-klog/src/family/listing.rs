//! Pasted listings: `/proc/PID/stack`, `/proc/PID/status`, `ps` rows (the
//! table logic is in `ps.rs`) and SysRq task dumps (`task:COMM state:D`,
//! `Show Blocked State`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::event::Detail;
use crate::event::Event;
use crate::parser::{finish_trace, new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, is_hex, lead_u32, token};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &[
    "Show Blocked State",
    "Show State",
    "task:",
    "Name:",
    "PID",
    "/proc/",
    " ps ",
    "ps -",
    "ps a",
];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "proc_stack",
        text: "PID = 301\n\
               [<ffffffffc04d6bcd>] write_all_supers+0x95d/0xaf0 [btrfs]\n\
               [<ffffffffc04dde48>] btrfs_commit_transaction+0x5d8/0x8f0 [btrfs]\n\
               [<ffffffffc04d8758>] transaction_kthread+0x188/0x1b0 [btrfs]\n\
               [<ffffffffb50abea3>] kthread+0x113/0x130",
    },
    Sample {
        kind: "proc_stack",
        text: "# cat /proc/1640/stack\n\
               [<0>] request_wait_answer+0x133/0x210 [fuse]\n\
               [<0>] fuse_simple_request+0x18e/0x2b0 [fuse]\n\
               [<0>] fuse_lookup_name+0xf2/0x230 [fuse]",
    },
    Sample {
        kind: "proc_status",
        text: "Name:\tsystemd\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\nSigBlk:\t7be3c0fe28014a03",
    },
    Sample {
        kind: "ps_row",
        text: "root@host:/# ps -A -ostate,pid,comm|grep D\nS   PID COMMAND\nD 22938 nfsd",
    },
    Sample {
        kind: "ps_row",
        text: "  PID TTY      STAT   TIME COMMAND\n 4242 pts/0    D+     0:00 cat /mnt/fuse/x",
    },
    Sample {
        kind: "ps_signals",
        text: "   $ ps s $$\n     UID     PID          PENDING          BLOCKED          IGNORED           CAUGHT STAT TTY        TIME COMMAND\n    1000 1588189 0000000000000000 0000000000010000 0000000000384004 000000004b813efb S    pts/56     0:00 bash",
    },
    Sample {
        kind: "task_dump",
        text: "[  300.000000] task:cat             state:D stack:0     pid:115   tgid:115   ppid:106    task_flags:0x400100 flags:0x00000002\n\
               [  300.000001] Call Trace:\n\
               [  300.000002]  <TASK>\n\
               [  300.000003]  __schedule+0x2de/0x890\n\
               [  300.000004]  schedule+0x4f/0xc0",
    },
];

// ---- event types ----

/// A pasted `/proc/PID/stack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ProcStack {}

/// A pasted `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ProcStatus {
    /// Parent pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Thread-group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgid: Option<u32>,
    /// State letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Pid of the tracer, 0 if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer_pid: Option<u32>,
    /// Number of threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// `SigQ` queued/limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_q: Option<String>,
    /// Thread-pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_pnd: Option<String>,
    /// Process-shared pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shd_pnd: Option<String>,
    /// Blocked mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_blk: Option<String>,
    /// Ignored mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_ign: Option<String>,
    /// Caught mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_cgt: Option<String>,
    /// Names of pending signals (thread and shared).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_signals: Vec<String>,
    /// Names of blocked signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_signals: Vec<String>,
    /// Names of ignored signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_signals: Vec<String>,
    /// Names of caught signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caught_signals: Vec<String>,
}

/// One row of a pasted `ps` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PsRow {
    /// Single state letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// BSD `STAT` column (`Dl+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Wait channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// Command line (`cmd`/`args`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Parent pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One row of `ps s` (signal masks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PsSignals {
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// BSD STAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// Blocked mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Ignored mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Caught mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught: Option<String>,
    /// Names of blocked signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_signals: Vec<String>,
    /// Names of ignored signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_signals: Vec<String>,
    /// Names of pending signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_signals: Vec<String>,
}

/// A task dump with no report header around it (SysRq-w `Show Blocked
/// State`, SysRq-t): `task:COMM state:D ...` plus its call trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TaskDump {
    /// State letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

// ---- line recognisers (called from `classify`) ----

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskDumpLine {
    pub task: String,
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub state: Option<String>,
}

/// `task:COMM state:D stack:0 pid:1531 tgid:1531 ppid:2 flags:0x00004000` (5.10+)
pub(crate) fn task_dump_new(r: &str) -> Option<TaskDumpLine> {
    let (comm, rest) = r.split_once(" state:")?;
    let state = rest.get(..1).map(|s| s.to_string());
    let pid = after(rest, " pid:").and_then(|p| lead_u32(p.trim_start()).map(|v| v.0));
    let ppid = after(rest, " ppid:").and_then(|p| lead_u32(p.trim_start()).map(|v| v.0));
    Some(TaskDumpLine {
        task: bounded(comm.trim_end(), 64),
        pid,
        ppid,
        state,
    })
}

/// Pre-5.10 sched_show_task: `COMM  STATE  [stack/addr]  free  PID  PPID 0xFLAGS`,
/// comm padded to 15 columns (`%-15.15s`), e.g.
/// `nfsd            D ffffffff8181d000     0  2777      2 0x00000000`.
pub(crate) fn task_dump_old(s: &str) -> Option<TaskDumpLine> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    if toks.len() < 5 || toks.len() > 16 {
        return None;
    }
    let n = toks.len();
    let flags = toks.get(n - 1)?;
    if !(flags.starts_with("0x") && is_hex(flags.get(2..)?)) {
        return None;
    }
    let ppid: u32 = toks.get(n - 2)?.parse().ok()?;
    let pid: u32 = toks.get(n - 3)?.parse().ok()?;
    // Comm is the first 15 columns when the padding survived, else the
    // first token (spaces collapsed by a renderer).
    let (comm, rest) = match (s.get(..15), s.get(15..)) {
        (Some(c), Some(r)) if r.starts_with(' ') && !c.trim().is_empty() => {
            (c.trim(), r.trim_start())
        }
        _ => token(s),
    };
    let state = rest.chars().next()?;
    if !"RSDTtXZPIKWN".contains(state) {
        return None;
    }
    Some(TaskDumpLine {
        task: bounded(comm, 64),
        pid: Some(pid),
        ppid: Some(ppid),
        state: Some(state.to_string()),
    })
}

// ---- meanings ----

/// The one-line explanation of a `proc_stack` event.
pub(crate) fn meaning_proc_stack(ev: &Event, _d: &ProcStack, who: &str) -> String {
    format!(
        "kernel stack of {who}{}",
        ev.site()
            .map(|s| format!(": waiting in {s}"))
            .unwrap_or_default()
    )
}

/// The one-line explanation of a `proc_status` event.
pub(crate) fn meaning_proc_status(_ev: &Event, p: &ProcStatus, who: &str) -> String {
    let mut s = format!(
        "/proc status of {who}: state {}",
        p.state.as_deref().unwrap_or("?")
    );
    if !p.blocked_signals.is_empty() {
        s.push_str(&format!("; blocks {}", p.blocked_signals.join(" ")));
    }
    if !p.ignored_signals.is_empty() {
        s.push_str(&format!("; ignores {}", p.ignored_signals.join(" ")));
    }
    s
}

/// The one-line explanation of a `ps_row` event.
pub(crate) fn meaning_ps_row(_ev: &Event, r: &PsRow, who: &str) -> String {
    let st = r.state.as_deref().or(r.stat.as_deref()).unwrap_or("?");
    let mut s = format!("{who} is in state {st}");
    if st.starts_with('D') {
        s.push_str(" (uninterruptible sleep)");
    }
    if let Some(w) = &r.wchan {
        if w != "-" {
            s.push_str(&format!(", waiting in {w}"));
        }
    }
    s
}

/// The one-line explanation of a `ps_signals` event.
pub(crate) fn meaning_ps_signals(_ev: &Event, p: &PsSignals, who: &str) -> String {
    let mut s = format!("signal masks of {who}");
    if !p.blocked_signals.is_empty() {
        s.push_str(&format!("; blocks {}", p.blocked_signals.join(" ")));
    }
    if !p.ignored_signals.is_empty() {
        s.push_str(&format!("; ignores {}", p.ignored_signals.join(" ")));
    }
    s
}

/// The one-line explanation of a `task_dump` event.
pub(crate) fn meaning_task_dump(ev: &Event, t: &TaskDump, who: &str) -> String {
    format!(
        "task dump of {who} in state {}{}",
        t.state.as_deref().unwrap_or("?"),
        ev.site()
            .map(|s| format!(", waiting in {s}"))
            .unwrap_or_default()
    )
}

/// Lines of a task listing (SysRq-w/-t, hung-task dumps).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListingLine {
    /// A task line (`task:COMM state:D ...`, or the pre-5.x form).
    TaskDump(TaskDumpLine),
    /// `sysrq: Show Blocked State` / `Show State`: task lines follow.
    SysrqShow,
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for ListingLine {
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            ListingLine::TaskDump(t) => task_dump(ps, t, p),
            ListingLine::SysrqShow => {
                ps.close_cur(caller);
                ps.sysrq = Some(ln);
            }
        }
    }
}

/// A task line `task:COMM state:D stack:0 pid:P ppid:Q flags:...`: the
/// identity of the open report's task, the label of another task's trace,
/// or a SysRq dump's next task.
fn task_dump(ps: &mut Parser, t: TaskDumpLine, p: &Prefix<'_>) {
    let caller = p.caller;
    if ps.sysrq.is_some() {
        ps.sysrq = Some(ps.line_no);
    }
    // In a SysRq dump each task line starts the next task's report.
    let next_task = ps
        .cur(caller)
        .and_then(|i| ps.open.get(i))
        .is_some_and(|o| matches!(o.ev.detail, Detail::TaskDump(_)) && o.has_task_dump);
    if next_task {
        ps.close_cur(caller);
    }
    if let Some(i) = ps.cur(caller) {
        if let Some(o) = ps.touch(i) {
            finish_trace(o);
            let own = !o.has_task_dump
                && (o.ev.pid.is_none() || t.pid.is_none() || t.pid == o.ev.pid)
                && o.ev.call_trace.is_empty();
            if own {
                o.has_task_dump = true;
                match &mut o.ev.detail {
                    Detail::HungTask(h) => {
                        h.state = t.state;
                        h.ppid = t.ppid;
                    }
                    Detail::TaskDump(d) => d.state = t.state,
                    _ => {}
                }
            } else {
                o.pending_label = Some(match t.pid {
                    Some(pid) => format!("task {}:{pid}", t.task),
                    None => format!("task {}", t.task),
                });
            }
            return;
        }
    }
    // A task dump outside any report: SysRq-w/-t output.
    let mut ev = new_event(Detail::TaskDump(TaskDump { state: t.state }), p, ps.line_no);
    ev.task = Some(t.task);
    ev.pid = t.pid;
    let i = ps.open_event(ev, p, 4);
    if let Some(o) = ps.open.get_mut(i) {
        o.has_task_dump = true;
    }
}
