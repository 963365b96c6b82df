//! Zombies nobody reaps, one finding per negligent parent.

use super::{ev, pid_path, ZOMBIE_GRACE_MS};
use crate::finding::{Confidence, Evidence, Finding, Remedy, Severity};
use std::collections::BTreeMap;
use wedge_kernel::{Signal, TaskState};
use wedge_model::{Process, Snapshot};

rule_ids! {
    /// The zombie family.
    pub enum ZombieRule {
        /// Exited children their parent does not wait() for.
        Unreaped = "zombie.unreaped",
    }
}

impl ZombieRule {
    pub fn explanation(self) -> &'static str {
        match self {
            ZombieRule::Unreaped => {
                "A zombie has already exited: kill -9 does nothing to it. It holds only its pid and \
                 exit status until its parent calls wait(), or until the parent exits and init adopts \
                 and reaps it."
            }
        }
    }

    /// How to get the zombies of `ppid` reaped, given its parent's state.
    pub fn remedies(self, ppid: i32, parent: Option<TaskState>) -> Vec<Remedy> {
        match self {
            ZombieRule::Unreaped => match parent {
                Some(TaskState::Stopped) => vec![Remedy {
                    action: "resume the parent so it can reap".into(),
                    command: Some(format!("kill -CONT {ppid}")),
                }],
                _ => vec![Remedy {
                    action: "make the parent reap (SIGCHLD), or end the parent so init adopts and reaps the zombies".into(),
                    command: Some(format!("kill -CHLD {ppid}")),
                }],
            },
        }
    }
}

pub(super) fn zombies(snap: &Snapshot, out: &mut Vec<Finding>) {
    let id = ZombieRule::Unreaped;
    // Zombies grouped by parent: one finding per negligent parent.
    let mut by_parent: BTreeMap<i32, Vec<&Process>> = BTreeMap::new();
    for p in &snap.processes {
        if p.leader().is_some_and(|l| l.state == TaskState::Zombie) {
            by_parent.entry(p.ppid).or_default().push(p);
        }
    }
    for (ppid, zs) in by_parent {
        let parent = snap.process(ppid);
        // A leader-zombie with live threads is a process still running.
        let live_threads = zs
            .iter()
            .any(|z| z.threads.iter().any(|t| t.state != TaskState::Zombie));
        let oldest = zs
            .iter()
            .filter_map(|z| z.leader().and_then(|l| snap.off_cpu_ms(l)))
            .fold(0.0f64, f64::max);
        let mut evidence: Vec<Evidence> = zs
            .iter()
            .map(|z| {
                ev(
                    format!("{}/stat", pid_path(snap, z.pid)),
                    format!("{} ({}) is Z, parent {}", z.comm, z.pid, ppid),
                )
            })
            .collect();
        let why = match parent {
            Some(par) => {
                let lt = par.leader();
                let st = lt.map(|l| l.state).unwrap_or(TaskState::Other('?'));
                evidence.push(ev(
                    format!("{}/stat", pid_path(snap, ppid)),
                    format!(
                        "parent {} ({ppid}) is {} ({})",
                        par.comm,
                        st.code(),
                        st.name()
                    ),
                ));
                match st {
                    TaskState::Stopped => {
                        "its parent is stopped and cannot call wait()".to_string()
                    }
                    TaskState::TracingStop => "its parent is stopped by a tracer".to_string(),
                    TaskState::DiskSleep => {
                        "its parent is itself stuck in uninterruptible sleep".to_string()
                    }
                    TaskState::Zombie => "its parent is a zombie too".to_string(),
                    _ if par.ignored.contains(Signal::SIGCHLD) => {
                        "its parent ignores SIGCHLD yet has not reaped it".to_string()
                    }
                    _ => "its parent is alive but does not call wait() for it".to_string(),
                }
            }
            None => "its parent is not visible".to_string(),
        };
        if live_threads {
            evidence.push(ev(
                "threads",
                "the thread-group leader is a zombie but other threads still run".to_string(),
            ));
        }
        let parent_state = parent.and_then(|p| p.leader()).map(|l| l.state);
        let parent_stuck =
            parent_state.is_some_and(|s| s.is_stopped() || s == TaskState::DiskSleep);
        // A zombie a few seconds old is most likely about to be reaped: a
        // parent's wait() runs after SIGCHLD, and some inits reap in batches.
        let youngest_known = zs
            .iter()
            .filter_map(|z| z.leader().and_then(|l| snap.off_cpu_ms(l)))
            .fold(f64::INFINITY, f64::min);
        if !parent_stuck && !live_threads && youngest_known < ZOMBIE_GRACE_MS {
            continue;
        }
        out.push(Finding {
            severity: if parent_stuck || oldest >= 60_000.0 {
                Severity::Warning
            } else {
                Severity::Info
            },
            confidence: Confidence::High,
            pids: zs.iter().map(|z| z.pid).collect(),
            evidence,
            explanation: id.explanation().into(),
            remedies: id.remedies(ppid, parent_state),
            do_not: vec!["kill -9 on the zombie itself does nothing".into()],
            ..Finding::new(
                id,
                format!(
                    "{} zombie(s) of {} ({ppid}) not reaped: {why}",
                    zs.len(),
                    parent.map(|p| p.comm.as_str()).unwrap_or("?")
                ),
            )
        });
    }
}
