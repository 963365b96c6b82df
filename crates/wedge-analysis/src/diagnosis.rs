//! One diagnosis of a snapshot (and the kernel log of the same boot): the
//! findings, the wait-for graph and the policy decisions every view reads,
//! whatever the source (live /proc, a crash dump) and whatever the view
//! (ps, why, the verdict, their JSON).

use crate::finding::Finding;
use crate::graph::{self, Graph};
use crate::logrules::{analyze_log_typed, LogRule};
use crate::wait::{wait_kind, WaitKind};
use wedge_model::{Episode, FsClass, LogEvent, Process, Snapshot};

/// Everything concluded from one snapshot.
#[derive(Debug)]
pub struct Diagnosis {
    /// Live findings with the log's merged in, ranked: wedged first, then
    /// by confidence.
    pub findings: Vec<Finding>,
    /// Who waits for whom.
    pub graph: Graph,
    /// What the recorder's database (`wedge record`) says of this
    /// snapshot's stuck threads; None when there is no database (the views
    /// are then exactly as without a recorder).
    pub recorded: Option<Recorded>,
}

/// The recorder's history as the views use it: the episodes of threads
/// that are stuck now, attached by [`Diagnosis::attach_history`].
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The database read.
    pub db: String,
    /// Ongoing episodes whose thread this snapshot shows stuck (the same
    /// thread: it started before the episode did).
    pub episodes: Vec<Episode>,
    /// Why the database could not be read, when it could not.
    pub error: Option<String>,
}

impl Recorded {
    /// The ongoing episode of thread `tid`, when the recorder has one.
    pub fn of_thread(&self, tid: i32) -> Option<&Episode> {
        self.episodes.iter().find(|e| e.tid == tid)
    }

    /// The episode a finding about `pids` is told with: of the first pid
    /// that has one, its main thread's, else its longest.
    pub fn of_pids(&self, pids: &[i32]) -> Option<&Episode> {
        pids.iter().find_map(|&pid| {
            self.episodes
                .iter()
                .filter(|e| e.pid == pid || e.tid == pid)
                .min_by_key(|e| (e.tid != pid, e.start_unix_ms))
        })
    }
}

impl Diagnosis {
    /// Anything will not make progress by itself.
    pub fn wedged(&self) -> bool {
        self.findings.iter().any(|f| f.is_wedged())
    }

    /// Joins the recorder's episodes (the ongoing, else latest, episode of
    /// each thread, as the store gives them) to this snapshot. One is kept
    /// only while it lasts and its thread is stuck now (D, Z, T/t, a fatal
    /// signal pending, a known-to-hang wait: what `ps` lists): an episode
    /// that ended, or whose thread runs again, says nothing of "since".
    /// A tid the kernel reused for a thread that started after the episode
    /// began is another thread.
    pub fn attach_history(
        &mut self,
        snap: &Snapshot,
        db: String,
        episodes: Result<Vec<Episode>, String>,
    ) {
        let (episodes, error) = match episodes {
            Ok(e) => (e, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let boot_ms = snap.system.taken_at_unix_ms as f64 - snap.system.uptime_secs * 1000.0;
        let hz = snap.system.clock_ticks_per_sec.max(1) as f64;
        let mut kept: Vec<Episode> = episodes
            .into_iter()
            .filter(|e| e.end_unix_ms.is_none())
            .filter(|e| {
                let Some((p, t)) = snap.thread(e.tid) else {
                    return false;
                };
                // The start time is in clock ticks since boot; a second of
                // slack covers the boot time's rounding (uptime is read in
                // centiseconds, the wall clock apart from it).
                let started_ms = boot_ms + t.start_time as f64 * 1000.0 / hz;
                let same =
                    snap.system.uptime_secs <= 0.0 || started_ms <= e.start_unix_ms as f64 + 1000.0;
                p.pid == e.pid && same && crate::wait::matters(p, t).is_some()
            })
            .collect();
        kept.sort_by_key(|e| (e.pid, e.tid));
        kept.dedup_by_key(|e| e.tid);
        self.recorded = Some(Recorded {
            db,
            episodes: kept,
            error,
        });
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
    Diagnosis {
        findings,
        graph,
        recorded: None,
    }
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
