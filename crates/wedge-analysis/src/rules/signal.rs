//! A fatal signal pending on a task that does not die.

use super::{ev, explained, stack_evidence, task_path, RuleId, DO_NOT_PTRACE};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use crate::wait::{describe_wait, WaitKind};
use wedge_kernel::{Signal, TaskState};
use wedge_model::{Process, Snapshot};

rule_ids! {
    /// The signal family.
    pub enum SignalRule {
        /// SIGKILL (or another fatal signal) pending on a task in D.
        FatalPending = "signal.fatal_pending",
    }
}

impl SignalRule {
    pub fn explanation(self) -> &'static str {
        match self {
            SignalRule::FatalPending => {
                "Signals are acted on only when a task returns towards user space; a task in \
                 uninterruptible sleep does not, so the signal waits until the awaited event happens."
            }
        }
    }

    pub fn remedies(self) -> Vec<Remedy> {
        match self {
            SignalRule::FatalPending => vec![Remedy {
                action: "find and unblock what the thread waits for (the stack names it); killing it again does nothing".into(),
                command: None,
            }],
        }
    }
}

pub(super) fn fatal_pending(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    for t in &p.threads {
        let pending = p.shared_pending.union(t.pending);
        let fatal = pending.fatal_given(p.ignored, p.caught);
        if fatal.is_empty() || !matches!(t.state, TaskState::DiskSleep) {
            continue;
        }
        // FUSE waits and io_uring exits carry their own findings.
        let kind = crate::storage::wait_kind_in(snap, p, t);
        if matches!(
            kind,
            WaitKind::FuseRequest { .. } | WaitKind::FuseFlush | WaitKind::IoUringCancel
        ) {
            continue;
        }
        // A frozen cgroup's member: its SIGKILL waits for the thaw, and
        // cgroup.frozen says so with the thaw command.
        if matches!(kind, WaitKind::Frozen { .. }) && crate::cgroup::freeze_of(snap, p).is_some() {
            continue;
        }
        let mut evidence = vec![ev(
            format!("{}/status", task_path(snap, p, t)),
            format!(
                "pending: {} (ShdPnd {:016x}, SigPnd {:016x}); state D",
                fatal, p.shared_pending.0, t.pending.0
            ),
        )];
        if let Some(e) = stack_evidence(snap, p, t) {
            evidence.push(e);
        }
        let id = SignalRule::FatalPending;
        out.push(Finding {
            severity: Severity::Critical,
            confidence: Confidence::High,
            pids: vec![p.pid],
            evidence,
            explanation: explained(
                format!("Thread {} {}.", t.tid, describe_wait(snap, p, t)),
                RuleId::Signal(id),
            ),
            remedies: id.remedies(),
            do_not: vec![DO_NOT_PTRACE.into()],
            ..Finding::new(
                id,
                format!(
                    "{} ({}) has {} pending but is not dying",
                    p.comm,
                    p.pid,
                    if fatal.contains(Signal::SIGKILL) {
                        "SIGKILL".to_string()
                    } else {
                        fatal.to_string()
                    }
                ),
            )
        });
        return;
    }
}
