//! Findings from the kernel log of the running boot, linked to the tasks
//! of the snapshot where they still exist: the evidence a dead process
//! left behind (a trap, an OOM kill) and the kernel's own hang reports.

use crate::finding::{BlockedOn, Confidence, Evidence, Finding, Remedy, Severity};
use crate::rules::{rule_ids, NetFsRule, RuleId};
use std::collections::BTreeMap;
use wedge_kernel::TaskState;
use wedge_model::{LogDetail, LogEvent, Snapshot};

/// The log rules, by what they conclude: the diagnosis merges a
/// [`LogRule::HungTask`] finding into the live finding about the same task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRule {
    /// `pidns.init_abort`
    InitAbort,
    /// `kernel.hung_task`
    HungTask,
    /// `netfs.server_unreachable`, the id of the live rule about tasks
    /// waiting for the same servers.
    NfsServerUnreachable,
}

rule_ids! {
    /// The ids only the kernel log gives (the log's NFS rule concludes
    /// [`NetFsRule::ServerUnreachable`], as the live rule does).
    pub enum LogId {
        /// abort() as PID 1 of a pid namespace, from its trap.
        InitAbort = "pidns.init_abort",
        /// The hung-task detector's report about a task still in D.
        HungTask = "kernel.hung_task",
    }
}

impl LogId {
    pub fn explanation(self) -> &'static str {
        match self {
            LogId::InitAbort => LogRule::InitAbort.explanation(),
            LogId::HungTask => LogRule::HungTask.explanation(),
        }
    }
}

impl LogRule {
    /// The id of the findings this rule makes.
    pub fn id(self) -> RuleId {
        match self {
            LogRule::InitAbort => LogId::InitAbort.into(),
            LogRule::HungTask => LogId::HungTask.into(),
            LogRule::NfsServerUnreachable => NetFsRule::ServerUnreachable.into(),
        }
    }

    /// What the log's finding means.
    pub fn explanation(self) -> &'static str {
        match self {
            LogRule::InitAbort => {
                "glibc's abort() raises SIGABRT; when that does not end the process it executes \
                 `hlt`, which faults in user mode, and the kernel kills the process with SIGSEGV. \
                 SIGABRT without a handler is discarded for the init (PID 1) of a pid namespace, so a \
                 container's PID 1 that calls abort() exits with status 139 (SIGSEGV) instead of 134 \
                 and leaves this trap in the log. The abort itself has its own cause (Node.js, for \
                 one, aborts when fstat on its stdio fails, e.g. with ESTALE on an NFS file deleted \
                 on the server)."
            }
            LogRule::HungTask => {
                "The hung-task detector reports tasks in uninterruptible sleep that have not run \
                 for kernel.hung_task_timeout_secs. It skips killable waits, so silence from it \
                 proves nothing."
            }
            LogRule::NfsServerUnreachable => {
                "The NFS client logged that the server stopped answering and has not logged `OK` \
                 since. With a hard mount (`still trying`) I/O waits until the server is back."
            }
        }
    }
}

type Event = LogEvent;

fn ev(e: &Event, fact: String) -> Evidence {
    Evidence {
        source: format!(
            "kernel log line {}{}",
            e.line,
            e.monotonic
                .map(|m| format!(" [{m:.3}]"))
                .unwrap_or_default()
        ),
        fact,
    }
}

/// glibc's abort() ends in `hlt` when SIGABRT did not kill the process:
/// a #GP (error 0) inside libc. The kernel never delivers a signal without
/// a handler to a pid-namespace init, so abort() in a container's PID 1
/// dies of SIGSEGV (status 139) instead of SIGABRT (134).
fn is_abort_hlt(e: &Event) -> bool {
    let LogDetail::GpfTrap { lib, error } = &e.detail else {
        return false;
    };
    let in_libc = lib.as_deref().is_some_and(|l| l.starts_with("libc"));
    let hlt = e
        .faulting_instruction
        .as_deref()
        .is_some_and(|i| i.trim() == "hlt");
    hlt || (in_libc && error.trim_start_matches('0').is_empty())
}

/// Findings from the log alone (see [`crate::diagnose`] for them merged
/// with the live ones).
pub fn analyze_log(snap: &Snapshot, events: &[LogEvent]) -> Vec<Finding> {
    analyze_log_typed(snap, events)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// Each log finding with the rule that made it.
pub(crate) fn analyze_log_typed(snap: &Snapshot, events: &[LogEvent]) -> Vec<(LogRule, Finding)> {
    let mut out = Vec::new();
    // abort() as a pid-namespace init, grouped by command.
    let mut aborts: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events.iter().filter(|e| is_abort_hlt(e)) {
        aborts
            .entry(e.task.clone().unwrap_or_default())
            .or_default()
            .push(e);
    }
    for (task, es) in aborts {
        let last = es[es.len() - 1];
        let alive = last
            .pid
            .and_then(|p| snap.process(p as i32))
            .filter(|p| p.comm == task);
        let mut evidence: Vec<Evidence> = es
            .iter()
            .rev()
            .take(3)
            .map(|e| ev(e, format!("{}: {}", e.kind, e.meaning)))
            .collect();
        if let Some(p) = alive {
            if p.is_nested_pidns_init() {
                evidence.push(Evidence {
                    source: format!("{}/status", snap.source.process_locator(p.pid)),
                    fact: format!("{} ({}) is PID 1 of its pid namespace", p.comm, p.pid),
                });
            }
        }
        let rule = LogRule::InitAbort;
        out.push((
            rule,
            Finding {
                severity: Severity::Warning,
                confidence: if es.iter().any(|e| e.code_dumped) {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                pids: es.iter().filter_map(|e| e.pid.map(|p| p as i32)).collect(),
                evidence,
                explanation: rule.explanation().into(),
                remedies: vec![
                    Remedy {
                        action: "run a real init as PID 1 so the program is not PID 1 (docker run --init, tini, dumb-init)".into(),
                        command: Some("docker run --init …   # or: tini -- PROGRAM".into()),
                    },
                    Remedy {
                        action: "find why the program aborts: its stderr, or a core file (wedge core FILE)".into(),
                        command: None,
                    },
                ],
                ..Finding::new(
                    rule.id(),
                    format!(
                        "{task} died {} time(s) of a general protection fault in libc: abort() as PID 1 of a pid namespace",
                        es.len()
                    ),
                )
            },
        ));
    }
    // Hung-task reports whose task is still stuck.
    let mut hung: BTreeMap<u32, &Event> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| matches!(e.detail, LogDetail::HungTask { .. }))
    {
        if let Some(pid) = e.pid {
            hung.insert(pid, e);
        }
    }
    for (pid, e) in hung {
        let Some((p, t)) = snap.thread(pid as i32) else {
            continue;
        };
        if e.task
            .as_deref()
            .is_some_and(|c| !t.comm.starts_with(c) && !c.starts_with(&t.comm))
        {
            continue;
        }
        if t.state != TaskState::DiskSleep {
            continue;
        }
        let LogDetail::HungTask {
            blocked_seconds,
            blocker,
        } = &e.detail
        else {
            continue;
        };
        let mut blocked_on = Vec::new();
        if let Some(b) = blocker {
            blocked_on.push(BlockedOn {
                kind: "lock_holder".into(),
                pid: b.owner_pid.map(|p| p as i32),
                detail: format!(
                    "the kernel names {} {} as the likely owner of the {} it waits for",
                    b.owner_task.as_deref().unwrap_or("?"),
                    b.owner_pid.map(|p| p.to_string()).unwrap_or_default(),
                    b.kind
                ),
            });
        }
        let rule = LogRule::HungTask;
        out.push((
            rule,
            Finding {
                severity: Severity::Critical,
                confidence: Confidence::High,
                pids: vec![p.pid],
                evidence: vec![ev(e, e.meaning.clone())],
                explanation: rule.explanation().into(),
                blocked_on,
                ..Finding::new(
                    rule.id(),
                    format!(
                        "the kernel reported {} ({}) hung (blocked > {} s) and it is still in D",
                        t.comm, pid, blocked_seconds
                    ),
                )
            },
        ));
    }
    // Network filesystems: a server not responding with no OK after it.
    let mut servers: BTreeMap<String, (Option<&Event>, bool)> = BTreeMap::new();
    for e in events {
        match &e.detail {
            LogDetail::NfsNotResponding { server } => {
                servers.insert(server.clone(), (Some(e), false));
            }
            LogDetail::NfsServerOk { server } => {
                if let Some(x) = servers.get_mut(server) {
                    x.1 = true;
                }
            }
            _ => {}
        }
    }
    for (server, (e, ok)) in servers {
        let (Some(e), false) = (e, ok) else { continue };
        // The processes waiting on this server: an NFS wait tied to a mount
        // of it, or to no mount wedge can name (then any NFS waiter).
        let waiting: Vec<i32> = snap
            .processes
            .iter()
            .filter(|p| {
                p.threads.iter().any(|t| {
                    matches!(crate::wait::wait_kind(t), crate::wait::WaitKind::NfsServer) && {
                        let ms = crate::rules::wait_mounts(snap, p, t);
                        ms.is_empty() || ms.iter().any(|m| m.server == server)
                    }
                })
            })
            .map(|p| p.pid)
            .collect();
        let rule = LogRule::NfsServerUnreachable;
        let title = format!(
            "NFS server {server} is not responding{}",
            if waiting.is_empty() {
                String::new()
            } else {
                format!("; {} process(es) wait for it", waiting.len())
            }
        );
        out.push((
            rule,
            Finding {
                severity: if waiting.is_empty() {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                confidence: Confidence::High,
                pids: waiting,
                // The kernel's words (net/sunrpc/clnt.c: "%s: server %s not
                // responding, still trying"), then what they mean.
                evidence: vec![ev(
                    e,
                    format!("nfs: server {server} not responding: {}", e.meaning),
                )],
                explanation: rule.explanation().into(),
                remedies: crate::rules::server_remedies(None, crate::rules::Sleeper::Unknown),
                ..Finding::new(rule.id(), title)
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_model::Source;

    const ALL: [LogRule; 3] = [
        LogRule::InitAbort,
        LogRule::HungTask,
        LogRule::NfsServerUnreachable,
    ];

    #[test]
    fn each_log_rule_has_a_known_id_and_an_explanation() {
        for rule in ALL {
            let id = rule.id();
            assert_eq!(id.as_str().parse::<RuleId>(), Ok(id));
            assert!(!rule.explanation().trim().is_empty(), "{rule:?}");
        }
        // The log's NFS finding and the live one share their id, so the
        // views and the JSON name one rule.
        assert_eq!(
            LogRule::NfsServerUnreachable.id(),
            RuleId::NetFs(NetFsRule::ServerUnreachable)
        );
        assert_eq!(LogRule::HungTask.id().as_str(), "kernel.hung_task");
        assert_eq!(LogRule::InitAbort.id().as_str(), "pidns.init_abort");
    }

    #[test]
    fn nfs_server_silent_since_its_report_is_a_finding() {
        let snap = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        let event = |line: u64, detail: LogDetail| LogEvent {
            kind: "nfs".into(),
            line,
            meaning: "the NFS server stopped answering".into(),
            detail,
            ..LogEvent::default()
        };
        let silent = event(
            3,
            LogDetail::NfsNotResponding {
                server: "fs1".into(),
            },
        );
        let back = [
            event(
                5,
                LogDetail::NfsNotResponding {
                    server: "fs2".into(),
                },
            ),
            event(
                9,
                LogDetail::NfsServerOk {
                    server: "fs2".into(),
                },
            ),
        ];
        let events: Vec<LogEvent> = std::iter::once(silent).chain(back).collect();
        let fs = analyze_log_typed(&snap, &events);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let (rule, f) = &fs[0];
        assert_eq!(*rule, LogRule::NfsServerUnreachable);
        assert_eq!(f.id, rule.id());
        assert_eq!(f.title, "NFS server fs1 is not responding");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.explanation, rule.explanation());
        assert_eq!(f.evidence[0].source, "kernel log line 3");
    }
}
