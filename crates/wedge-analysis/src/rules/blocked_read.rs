//! wedge's own reads that the kernel blocked past their deadline: each is
//! evidence that the task's files hang every reader (ps, top, pgrep).

use super::{ev, explained, pid_path, RuleId};
use crate::finding::{BlockedOn, Confidence, Finding, Severity};
use crate::graph;
use wedge_model::Snapshot;

rule_ids! {
    /// The family of wedge's blocked reads.
    pub enum ReadRule {
        /// A read of a /proc file that did not return within its deadline.
        Blocked = "wedge.read_blocked",
    }
}

impl ReadRule {
    pub fn explanation(self) -> &'static str {
        match self {
            ReadRule::Blocked => {
                "Tools like ps, top and pgrep read the same file and hang on it too."
            }
        }
    }
}

pub(super) fn blocked_reads(snap: &Snapshot, out: &mut Vec<Finding>) {
    let id = ReadRule::Blocked;
    for b in &snap.blocked_reads {
        if b.is_system() {
            out.push(system_read(snap, b));
            continue;
        }
        let comm = snap.process(b.pid).map(|p| p.comm.as_str()).unwrap_or("?");
        // For mmap_lock reads, name the thread that holds the lock while
        // it waits elsewhere.
        let mut blocked_on = Vec::new();
        let mut evidence_holders = Vec::new();
        if b.blocks_on.contains("mmap_lock") {
            if let Some(p) = snap.process(b.pid) {
                for h in graph::mmap_lock_holders(p) {
                    let why = crate::wait::describe_wait(snap, p, h);
                    evidence_holders.push(ev(
                        format!("{}/stack", snap.source.thread_locator(p.pid, h.tid)),
                        format!(
                            "thread {} ({}) is inside a page fault / get_user_pages, which holds mmap_lock for read, and {why}",
                            h.tid, h.comm
                        ),
                    ));
                    blocked_on.push(BlockedOn {
                        kind: "lock_holder".into(),
                        pid: Some(p.pid),
                        detail: format!(
                            "mmap_lock of {} ({}) held by thread {} ({}), which {why}",
                            p.comm, p.pid, h.tid, h.comm
                        ),
                    });
                }
            }
        }
        out.push(Finding {
            severity: Severity::Critical,
            confidence: Confidence::Medium,
            pids: vec![b.pid],
            evidence: std::iter::once(ev(
                format!("{}/{}", pid_path(snap, b.pid), b.what),
                format!(
                    "wedge's own read did not return within its {} ms deadline",
                    b.blocked_ms()
                ),
            ))
            .chain(evidence_holders)
            .collect(),
            blocked_on,
            explanation: explained(
                format!(
                    "The kernel blocked wedge's read, which waits on {}.",
                    b.blocks_on
                ),
                RuleId::Read(id),
            ),
            do_not: vec![format!(
                "do not run ps/pgrep/top without a timeout on this machine: they read /proc/{}/{} and hang",
                b.pid, b.what
            )],
            ..Finding::new(
                id,
                format!(
                    "reading {} of {comm} ({}) blocked for > {} ms",
                    b.what,
                    b.pid,
                    b.blocked_ms()
                ),
            )
        });
    }
}

/// A system file's read that blocked (a block device's queue attribute,
/// whose show() takes the queue's sysfs/elevator lock): no process is
/// named, the file itself is the evidence, and lsblk/udev read the same.
fn system_read(snap: &Snapshot, b: &wedge_model::BlockedRead) -> Finding {
    let id = ReadRule::Blocked;
    let path = b.location(&snap.source);
    Finding {
        severity: Severity::Critical,
        confidence: Confidence::Medium,
        pids: Vec::new(),
        evidence: vec![ev(
            path.clone(),
            format!(
                "wedge's own read did not return within its {} ms deadline",
                b.blocked_ms()
            ),
        )],
        explanation: explained(
            format!(
                "The kernel blocked wedge's read, which waits on {}.",
                b.blocks_on
            ),
            RuleId::Read(id),
        ),
        do_not: vec![format!(
            "do not run lsblk, udevadm or tools that read {path} without a timeout: they hang on it too"
        )],
        ..Finding::new(
            id,
            format!("reading {path} blocked for > {} ms", b.blocked_ms()),
        )
    }
}
