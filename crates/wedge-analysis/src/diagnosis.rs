//! One diagnosis of a snapshot (and the kernel log of the same boot): the
//! findings, the wait-for graph and the policy decisions every view reads,
//! whatever the source (live /proc, a crash dump) and whatever the view
//! (ps, why, the verdict, their JSON).

use crate::finding::Finding;
use crate::graph::{self, Graph};
use crate::logrules::{analyze_log_typed, LogRule};
use crate::wait::{wait_kind, WaitKind};
use wedge_model::{FsClass, LogEvent, Process, Snapshot};

/// Everything concluded from one snapshot.
#[derive(Debug)]
pub struct Diagnosis {
    /// Live findings with the log's merged in, ranked: wedged first, then
    /// by confidence.
    pub findings: Vec<Finding>,
    /// Who waits for whom.
    pub graph: Graph,
}

impl Diagnosis {
    /// Anything will not make progress by itself.
    pub fn wedged(&self) -> bool {
        self.findings.iter().any(|f| f.is_wedged())
    }

    /// A finding that names `pid` is wedged.
    pub fn wedged_pid(&self, pid: i32) -> bool {
        self.findings
            .iter()
            .any(|f| f.is_wedged() && f.pids.contains(&pid))
    }
}

/// Runs every rule on the snapshot and every log rule on `events`, and
/// merges the two.
pub fn diagnose(snap: &Snapshot, events: &[LogEvent]) -> Diagnosis {
    let graph = graph::build(snap);
    let mut findings = crate::rules::analyze_with(snap, &graph);
    if !events.is_empty() {
        merge(&mut findings, analyze_log_typed(snap, &graph, events));
    }
    Diagnosis { findings, graph }
}

/// Adds log findings; a hung-task report about a task already found stuck
/// lends its evidence to that finding instead of repeating it, and so does
/// an NFS server's "not responding" to the live findings of the tasks
/// waiting for it (each keeps its own mount's remedies).
fn merge(findings: &mut Vec<Finding>, from_log: Vec<(LogRule, Finding)>) {
    for (rule, f) in from_log {
        if rule == LogRule::NfsServerUnreachable {
            let mut lent = false;
            for g in findings
                .iter_mut()
                .filter(|g| g.id == f.id && g.pids.iter().any(|p| f.pids.contains(p)))
            {
                g.evidence.extend(f.evidence.iter().cloned());
                // The kernel gave up waiting for a reply (a major timeout)
                // and no "OK" followed: not a slow reply, however short the
                // task's own wait has been so far.
                g.severity = g.severity.max(f.severity);
                lent = true;
            }
            if lent {
                continue;
            }
        }
        // A storage error of a device the stuck tasks wait on is evidence
        // in their findings too (and stays a finding of its own).
        if matches!(rule, LogRule::StorageIoErrors | LogRule::FsError) {
            for g in findings
                .iter_mut()
                .filter(|g| g.is_wedged() && g.pids.iter().any(|p| f.pids.contains(p)))
            {
                for e in f.evidence.iter().take(3) {
                    if !g.evidence.contains(e) {
                        g.evidence.push(e.clone());
                    }
                }
            }
        }
        let same = findings.iter_mut().find(|g| {
            rule == LogRule::HungTask && g.is_wedged() && g.pids.first() == f.pids.first()
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

/// Why wedge must not read `p`'s user-space stacks, if it must not.
///
/// Symbolizing opens the process's binaries from wedge itself, and an
/// open(2) of a file on a FUSE or network filesystem whose server is gone
/// blocks in `request_wait_answer` or an RPC wait: wedge would join the
/// wedge. A kernel thread has no mm, so process_vm_readv fails with ESRCH.
pub fn user_stacks_refusal(snap: &Snapshot, p: &Process) -> Option<String> {
    if p.leader().is_some_and(|l| l.flags.kthread()) {
        return Some(
            "a kernel thread has no user-space stack: it runs only in the kernel (its kernel \
             stack is above)"
                .into(),
        );
    }
    risky_filesystem(snap, p).map(|why| {
        format!(
            "not reading user-space stacks: {why}, and opening the binaries there could block wedge"
        )
    })
}

/// A filesystem the process uses that could block wedge's open(2) of its
/// binaries, if any.
fn risky_filesystem(snap: &Snapshot, p: &Process) -> Option<String> {
    let remote = |m: &wedge_model::Mount| {
        matches!(
            m.class(),
            FsClass::Fuse { .. }
                | FsClass::Nfs { .. }
                | FsClass::Cifs { .. }
                | FsClass::Lustre { .. }
                | FsClass::Network { .. }
        )
    };
    if let Some(m) = snap.mounts_of(p).into_iter().find(|m| remote(m)) {
        return Some(format!(
            "it has files open on {} ({})",
            m.mount_point, m.fs_type
        ));
    }
    // The executable's filesystem: the longest mount point that prefixes it.
    if let Some(exe) = p.exe.value() {
        let m = snap
            .mounts
            .iter()
            .filter(|m| exe.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len());
        if let Some(m) = m.filter(|m| remote(m)) {
            return Some(format!(
                "its executable is on {} ({})",
                m.mount_point, m.fs_type
            ));
        }
    }
    if p.threads.iter().any(|t| {
        matches!(
            wait_kind(t),
            WaitKind::FuseRequest { .. }
                | WaitKind::FuseFlush
                | WaitKind::NfsServer
                | WaitKind::LustreServer
                | WaitKind::CifsServer
        )
    }) {
        return Some("a thread waits on a FUSE or network filesystem".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Evidence, Severity};
    use crate::rules::{FuseRule, RuleId};

    fn finding(id: impl Into<RuleId>, severity: Severity, pid: i32) -> Finding {
        let id = id.into();
        Finding {
            severity,
            pids: vec![pid],
            evidence: vec![Evidence {
                source: id.to_string(),
                fact: id.to_string(),
            }],
            ..Finding::new(id, String::new())
        }
    }

    #[test]
    fn hung_task_merges_into_the_live_finding_of_its_task() {
        let mut live = vec![finding(FuseRule::Unanswered, Severity::Critical, 7)];
        merge(
            &mut live,
            vec![
                (
                    LogRule::HungTask,
                    finding(LogRule::HungTask.id(), Severity::Critical, 7),
                ),
                (
                    LogRule::HungTask,
                    finding(LogRule::HungTask.id(), Severity::Critical, 8),
                ),
                (
                    LogRule::InitAbort,
                    finding(LogRule::InitAbort.id(), Severity::Warning, 7),
                ),
            ],
        );
        let ids: Vec<&str> = live.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            ["fuse.unanswered", "kernel.hung_task", "pidns.init_abort"]
        );
        assert_eq!(live[0].evidence.len(), 2);
        assert_eq!(live[1].pids, [8]);
    }
}
