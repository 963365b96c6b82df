//! Tasks held by a frozen cgroup (`docker pause`, `systemctl freeze`, the
//! v1 freezer written by hand): one finding per cgroup whose own setting
//! froze them, naming it and the thaw, instead of blaming the system call
//! each task happened to be in.

use super::{ev, explained, pid_path, stack_evidence, task_path, STUCK_AFTER_MS};
use crate::cgroup::{freeze_of, manager_thaw, raw_thaw, version_words};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use crate::wait::WaitKind;
use std::collections::BTreeMap;
use wedge_kernel::{Signal, TaskState};
use wedge_model::{CgroupFreeze, CgroupVersion, FreezeProgress, Process, Snapshot};

rule_ids! {
    /// The cgroup family.
    pub enum CgroupRule {
        /// Members of a frozen (or freezing) cgroup.
        Frozen = "cgroup.frozen",
    }
}

impl CgroupRule {
    pub fn explanation(self) -> &'static str {
        match self {
            CgroupRule::Frozen => {
                "A frozen cgroup stops every task in it and in the cgroups below it until it is \
                 thawed; nothing else resumes them. On cgroup v1 the tasks sleep in the freezer \
                 (D), so kill -9 stays pending until the thaw; on v2 they sleep interruptibly and \
                 a SIGKILL still ends them. A freeze that stays FREEZING is held up by a task in \
                 an uninterruptible wait elsewhere in the kernel, which cannot enter the freezer."
            }
        }
    }
}

pub(super) fn frozen(snap: &Snapshot, out: &mut Vec<Finding>) {
    let id = CgroupRule::Frozen;
    // Members grouped by the cgroup whose own setting froze them.
    let mut groups: BTreeMap<(CgroupVersion, String), (Vec<&Process>, &CgroupFreeze)> =
        BTreeMap::new();
    for p in &snap.processes {
        if let Some(f) = freeze_of(snap, p) {
            groups
                .entry((f.version, f.frozen_by.clone()))
                .or_insert_with(|| (Vec::new(), f))
                .0
                .push(p);
        }
    }
    for ((version, by), (members, f)) in groups {
        let mut evidence = Vec::new();
        let state_file = match version {
            CgroupVersion::V1 => format!("{}/freezer.state", f.dir),
            CgroupVersion::V2 => format!("{}/cgroup.events", f.dir),
        };
        evidence.push(ev(
            state_file,
            match f.progress {
                FreezeProgress::Frozen => format!("cgroup {} is frozen", f.path),
                FreezeProgress::Freezing => {
                    format!("cgroup {} is freezing: not every task has stopped", f.path)
                }
            },
        ));
        if by != f.path {
            evidence.push(ev(
                match version {
                    CgroupVersion::V1 => format!("{}/freezer.self_freezing", f.frozen_by_dir),
                    CgroupVersion::V2 => format!("{}/cgroup.freeze", f.frozen_by_dir),
                },
                format!("the freeze was set on its ancestor {by}"),
            ));
        }
        let mut killed = Vec::new();
        let mut holding_up = Vec::new();
        for p in &members {
            evidence.push(ev(
                format!("{}/cgroup", pid_path(snap, p.pid)),
                format!("{} ({}) is in {}", p.comm, p.pid, f.path),
            ));
            if p.threads
                .iter()
                .any(|t| p.shared_pending.union(t.pending).contains(Signal::SIGKILL))
            {
                killed.push(p.pid);
            }
            for t in &p.threads {
                let kind = crate::storage::wait_kind_in(snap, p, t);
                let in_freezer = matches!(kind, WaitKind::Frozen { .. });
                // In a FROZEN cgroup every task is frozen (some in place, in
                // a freezable sleep); only a freeze still in progress can
                // be held up by one.
                if !in_freezer
                    && t.state == TaskState::DiskSleep
                    && f.progress == FreezeProgress::Freezing
                {
                    // Cannot enter the freezer: what keeps the freeze
                    // from completing.
                    evidence.push(ev(
                        format!("{}/stat", task_path(snap, p, t)),
                        format!(
                            "thread {} ({}) is D and {}: the freeze waits for it",
                            t.tid,
                            t.comm,
                            crate::describe_wait(snap, p, t)
                        ),
                    ));
                    holding_up.push(t.tid);
                } else if in_freezer && evidence.len() < 12 {
                    if let Some(e) = stack_evidence(snap, p, t) {
                        evidence.push(e);
                    }
                }
            }
        }
        // How long: the longest any member has been off the CPU.
        let longest = members
            .iter()
            .flat_map(|p| &p.threads)
            .filter_map(|t| snap.off_cpu_ms(t))
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let stuck_freezing = f.progress == FreezeProgress::Freezing
            && (!holding_up.is_empty() || longest.is_some_and(|ms| ms >= STUCK_AFTER_MS));
        let severity = if !killed.is_empty() && version == CgroupVersion::V1 || stuck_freezing {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let names: Vec<String> = members
            .iter()
            .take(6)
            .map(|p| format!("{} ({})", p.comm, p.pid))
            .collect();
        let more = members.len().saturating_sub(6);
        let manager = manager_thaw(&by);
        let what = match &manager {
            Some((who, _)) => format!("cgroup {by} ({who})"),
            None => format!("cgroup {by}"),
        };
        let title = format!(
            "{} {} {} by {what} ({}): {}{}",
            members.len(),
            if members.len() == 1 {
                "process is"
            } else {
                "processes are"
            },
            match f.progress {
                FreezeProgress::Frozen => "frozen",
                FreezeProgress::Freezing => "being frozen",
            },
            version_words(version),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
        );
        let mut lead = format!("{title}.");
        if !killed.is_empty() {
            lead.push_str(&format!(
                " SIGKILL is pending for {} of them; {}",
                killed.len(),
                match version {
                    CgroupVersion::V1 => "it is acted on when the cgroup is thawed",
                    CgroupVersion::V2 =>
                        "a v2 freeze lets SIGKILL through, so they should end shortly",
                }
            ));
            lead.push('.');
        }
        if !holding_up.is_empty() {
            lead.push_str(&format!(
                " The freeze cannot complete while {} thread(s) sleep uninterruptibly elsewhere: \
                 what they wait for is the wedge, and thawing does not end their wait.",
                holding_up.len()
            ));
        }
        let mut remedies = Vec::new();
        if let Some((who, cmd)) = &manager {
            remedies.push(Remedy {
                action: format!("thaw it through its manager ({who}), which then knows it runs"),
                command: Some(cmd.clone()),
            });
        }
        remedies.push(Remedy {
            action: format!(
                "thaw the cgroup directly{}",
                if manager.is_some() {
                    " (its manager will still think it is paused)"
                } else {
                    ""
                }
            ),
            command: Some(raw_thaw(f)),
        });
        let mut pids: Vec<i32> = members.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        out.push(Finding {
            severity,
            confidence: Confidence::High,
            pids,
            evidence,
            explanation: explained(lead, id.into()),
            remedies,
            ..Finding::new(id, title)
        });
    }
}
