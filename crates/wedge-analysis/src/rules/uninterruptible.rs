//! Uninterruptible sleep (D) and lock waits: a task in D for too long,
//! a vfork parent, an exiting pid-namespace init, tasks queued behind a
//! lock holder (convoys) and tasks waiting on each other (cycles). The
//! D waits of io_uring exits and network filesystems are found here too,
//! and carry the ids, texts and remedies of their own families.

use super::{ev, off_cpu, stack_evidence, task_path, RuleId, DO_NOT_PTRACE};
use super::{IoUringRule, NetFsRule, STUCK_AFTER_MS};
use crate::finding::{Confidence, Evidence, Finding, Remedy, Severity};
use crate::graph::{self, Graph, Node};
use crate::wait::{describe_wait, wait_kind, WaitKind};
use std::collections::BTreeMap;
use wedge_kernel::TaskState;
use wedge_model::{Process, Snapshot, Thread};

rule_ids! {
    /// The family of uninterruptible and lock waits.
    pub enum WaitRule {
        /// A task in D for longer than [`STUCK_AFTER_MS`], on nothing more
        /// specific.
        Uninterruptible = "task.uninterruptible",
        /// A vfork() parent waiting for its child to exec or exit.
        VforkWaiting = "vfork.waiting",
        /// An exiting pid-namespace init waiting for its tasks to be reaped.
        PidnsInitReaping = "pidns.init_reaping",
        /// A task queued on a lock whose holder is not known.
        LockWaiting = "lock.waiting",
        /// Tasks queued behind one (likely) lock holder.
        LockConvoy = "lock.convoy",
        /// Tasks waiting on each other in a circle.
        Cycle = "wait.cycle",
    }
}

/// What any wait in D means, whatever it waits on.
const IN_D: &str =
    "A task in uninterruptible sleep (D) does not react to signals until the wait ends.";

impl WaitRule {
    pub fn explanation(self) -> &'static str {
        match self {
            WaitRule::Uninterruptible | WaitRule::LockWaiting => IN_D,
            WaitRule::VforkWaiting => {
                "After vfork() the parent sleeps (D, but killable) until the child calls exec or \
                 exits; the two share memory until then. It is stuck only if the child is."
            }
            WaitRule::PidnsInitReaping => {
                "An exiting pid-namespace init kills every task of its namespace and waits in \
                 zap_pid_ns_processes until each is reaped; a task that cannot die (e.g. blocked in \
                 FUSE or NFS) keeps the init — and the container — from going away."
            }
            WaitRule::LockConvoy => {
                "On 6.x kernels /proc hides the lock slow paths (rwsem_down_write_slowpath, \
                 __mutex_lock) from wchan and stack: a task queued on a directory's inode lock shows \
                 only path_openat, and a writer queued on mmap_lock only vm_mmap_pgoff. wedge names as \
                 the likely holder the task that is inside the same operation and itself waiting; the \
                 kernel's hung-task report (`blocked on … likely owned by task …`) confirms it when it \
                 fires. The queue moves when the holder's own wait ends."
            }
            WaitRule::Cycle => {
                "Each task in the circle waits for the next one, so none can make progress: a \
                 deadlock, unless one of the edges is a guess (lock holders on 6.x are inferred)."
            }
        }
    }

    pub fn remedies(self) -> Vec<Remedy> {
        match self {
            // What to unblock is in the stack and the chain, not in the id.
            WaitRule::Uninterruptible
            | WaitRule::VforkWaiting
            | WaitRule::PidnsInitReaping
            | WaitRule::LockWaiting => Vec::new(),
            WaitRule::LockConvoy => vec![Remedy {
                action: "unblock the holder (see the chain: what it waits on); the queued tasks follow".into(),
                command: None,
            }],
            WaitRule::Cycle => vec![Remedy {
                action: "break the circle at the edge that can be cut: abort a FUSE connection, kill a tracer, resume a stopped task".into(),
                command: None,
            }],
        }
    }
}

/// The remedies of a D wait found by [`uninterruptible`], from the family
/// of its id.
fn remedies(id: RuleId, p: &Process) -> Vec<Remedy> {
    match id {
        RuleId::Wait(r) => r.remedies(),
        RuleId::IoUring(r) => r.remedies(p),
        RuleId::NetFs(r) => r.remedies(),
        // Not found by this rule: their own rules give their remedies.
        RuleId::Fuse(_)
        | RuleId::Signal(_)
        | RuleId::Stopped(_)
        | RuleId::Zombie(_)
        | RuleId::Read(_)
        | RuleId::Log(_) => Vec::new(),
    }
}

pub(super) fn uninterruptible(snap: &Snapshot, g: &Graph, p: &Process, out: &mut Vec<Finding>) {
    for t in &p.threads {
        if t.state != TaskState::DiskSleep {
            continue;
        }
        let kind = wait_kind(t);
        if matches!(kind, WaitKind::FuseRequest { .. } | WaitKind::FuseFlush) {
            continue;
        }
        let fatal = !p
            .shared_pending
            .union(t.pending)
            .fatal_given(p.ignored, p.caught)
            .is_empty();
        if fatal && kind != WaitKind::IoUringCancel {
            continue;
        }
        let ms = off_cpu(snap, t);
        let stuck = ms.is_some_and(|ms| ms >= STUCK_AFTER_MS);
        let id: RuleId = match kind {
            WaitKind::VforkChild => WaitRule::VforkWaiting.into(),
            WaitKind::PidNamespaceReap => WaitRule::PidnsInitReaping.into(),
            WaitKind::IoUringCancel => IoUringRule::Stuck.into(),
            WaitKind::NfsServer | WaitKind::LustreServer | WaitKind::CifsServer => {
                NetFsRule::ServerUnreachable.into()
            }
            WaitKind::Lock { .. } => WaitRule::LockWaiting.into(),
            _ => WaitRule::Uninterruptible.into(),
        };
        // A vfork parent waits as long as its child runs: not a hang by
        // itself.
        let severity = match (id, stuck) {
            (RuleId::Wait(WaitRule::VforkWaiting), _) => Severity::Info,
            // An exit that waits on io_uring with SIGKILL pending is the
            // unkillable process of seed 000, however long it has been.
            (RuleId::IoUring(IoUringRule::Stuck), _) if fatal => Severity::Critical,
            (_, true) => Severity::Critical,
            _ => Severity::Info,
        };
        if id == RuleId::Wait(WaitRule::LockWaiting) && has_holder(g, p, t) {
            continue;
        }
        if severity == Severity::Info && id == RuleId::Wait(WaitRule::Uninterruptible) {
            continue;
        }
        let mut evidence = vec![ev(
            format!("{}/stat", task_path(snap, p, t)),
            format!(
                "thread {} ({}) is D: {}",
                t.tid,
                t.comm,
                describe_wait(snap, p, t)
            ),
        )];
        if let Some(e) = stack_evidence(snap, p, t) {
            evidence.push(e);
        }
        if let Some(ms) = ms {
            evidence.push(ev(
                format!("{}/sched", task_path(snap, p, t)),
                format!("off the CPU for {}", wedge_model::human_ms(ms)),
            ));
        }
        let children: Vec<String> = snap.children(p.pid).map(Process::label).collect();
        if id == RuleId::Wait(WaitRule::VforkWaiting) && !children.is_empty() {
            evidence.push(ev(
                "process tree",
                format!("children: {}", children.join(", ")),
            ));
        }
        out.push(Finding {
            severity,
            confidence: if t.kernel_stack.value().is_some() {
                Confidence::Medium
            } else {
                Confidence::Low
            },
            pids: vec![p.pid],
            evidence,
            explanation: id.explanation().to_string(),
            remedies: remedies(id, p),
            do_not: vec![DO_NOT_PTRACE.into()],
            ..Finding::new(
                id,
                format!(
                    "{} ({}) thread {} {}",
                    p.comm,
                    p.pid,
                    t.tid,
                    describe_wait(snap, p, t)
                ),
            )
        });
    }
}

/// Whether the graph names a likely holder for a lock wait (then the
/// convoy finding speaks for it).
fn has_holder(g: &Graph, p: &Process, t: &Thread) -> bool {
    g.out(&Node::Task {
        pid: p.pid,
        tid: t.tid,
    })
    .any(|e| e.kind == graph::EdgeKind::LockHolder)
}

/// Tasks that wait on each other in a circle: none can move first.
pub(super) fn cycles(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
    let id = WaitRule::Cycle;
    for cycle in g.cycles() {
        let words: Vec<String> = cycle.iter().map(|n| graph::describe(snap, n)).collect();
        let mut pids: Vec<i32> = cycle.iter().filter_map(Node::pid).collect();
        pids.dedup();
        out.push(Finding {
            severity: Severity::Critical,
            confidence: Confidence::Medium,
            pids,
            evidence: vec![ev("wait-for graph", words.join(" → "))],
            explanation: id.explanation().into(),
            remedies: id.remedies(),
            chain: vec![format!(
                "{} → {}",
                words.join(" → "),
                words.first().cloned().unwrap_or_default()
            )],
            ..Finding::new(
                id,
                format!("{} tasks wait on each other in a circle", cycle.len()),
            )
        });
    }
}

/// Tasks queued behind the same (likely) lock holder: one finding per
/// holder, with the chain from the holder on to its own wait.
pub(super) fn lock_convoys(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
    let id = WaitRule::LockConvoy;
    let mut by_holder: BTreeMap<Node, Vec<(&Node, &graph::Edge)>> = BTreeMap::new();
    for e in g
        .edges
        .iter()
        .filter(|e| e.kind == graph::EdgeKind::LockHolder)
    {
        by_holder
            .entry(e.to.clone())
            .or_default()
            .push((&e.from, e));
    }
    for (holder, waiters) in by_holder {
        // Each process once, in the order its threads queued (threads of
        // one process may wait apart, and the holder may be one of them).
        let mut pids: Vec<i32> = Vec::new();
        for p in waiters.iter().filter_map(|(n, _)| n.pid()) {
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
        let longest = waiters
            .iter()
            .filter_map(|(n, _)| match n {
                Node::Task { tid, .. } => snap.thread(*tid).and_then(|(_, t)| off_cpu(snap, t)),
                _ => None,
            })
            .fold(0.0f64, f64::max);
        let mut evidence: Vec<Evidence> = waiters
            .iter()
            .map(|(n, e)| {
                ev(
                    "wait-for graph",
                    format!("{} waits: {}", graph::describe(snap, n), e.detail),
                )
            })
            .collect();
        if longest > 0.0 {
            evidence.push(ev(
                "sched",
                format!(
                    "the longest waiter has been off the CPU for {}",
                    wedge_model::human_ms(longest)
                ),
            ));
        }
        let chain: Vec<String> = g
            .chains(&holder)
            .into_iter()
            .take(3)
            .map(|c| {
                c.iter()
                    .map(|n| graph::describe(snap, n))
                    .collect::<Vec<_>>()
                    .join(" → ")
            })
            .collect();
        let holder_pid = holder.pid();
        if let Some(h) = holder_pid.filter(|h| !pids.contains(h)) {
            pids.push(h);
        }
        out.push(Finding {
            severity: if longest >= STUCK_AFTER_MS {
                Severity::Critical
            } else {
                Severity::Warning
            },
            confidence: Confidence::Medium,
            pids,
            evidence,
            explanation: id.explanation().into(),
            remedies: id.remedies(),
            chain,
            ..Finding::new(
                id,
                format!(
                    "{} task(s) queued on a lock that {} likely holds while it waits",
                    waiters.len(),
                    graph::describe(snap, &holder)
                ),
            )
        });
    }
}
