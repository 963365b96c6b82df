//! Uninterruptible sleep (D) and lock waits: a task in D for too long,
//! a vfork parent, an exiting pid-namespace init, tasks queued behind a
//! lock holder (convoys) and tasks waiting on each other (cycles). The
//! D waits of io_uring exits and network filesystems are found here too,
//! and carry the ids, texts and remedies of their own families.

use super::{ev, off_cpu, stack_evidence, task_path, RuleId, DO_NOT_PTRACE};
use super::{IoUringRule, NetFsRule, STUCK_AFTER_MS};
use crate::finding::{Confidence, Evidence, Finding, Remedy, Severity};
use crate::graph::{self, Graph, Node};
use crate::wait::{describe_wait, WaitKind};
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
        | RuleId::Cgroup(_)
        | RuleId::Zombie(_)
        | RuleId::Storage(_)
        | RuleId::Read(_)
        | RuleId::Log(_) => Vec::new(),
    }
}

pub(super) fn uninterruptible(snap: &Snapshot, g: &Graph, p: &Process, out: &mut Vec<Finding>) {
    for t in &p.threads {
        if t.state != TaskState::DiskSleep {
            continue;
        }
        let kind = crate::storage::wait_kind_in(snap, p, t);
        // FUSE waits and storage waits have their own families' findings.
        // So do tasks a frozen cgroup holds (cgroup.frozen).
        if matches!(kind, WaitKind::FuseRequest { .. } | WaitKind::FuseFlush)
            || crate::storage::is_storage(&kind)
            || matches!(kind, WaitKind::Frozen { .. })
                && crate::cgroup::freeze_of(snap, p).is_some()
        {
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
        // A network filesystem's wait: the mount it is tied to, and the
        // remedies for that mount (what each loses).
        let net = super::wait_mounts(snap, p, t);
        for m in &net {
            evidence.push(ev(
                format!("{}/mountinfo", task_path(snap, p, t)),
                format!(
                    "{}{} is served by {}",
                    m.describe(),
                    if m.sure { "" } else { " (the only such mount)" },
                    m.server
                ),
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
            remedies: if id == RuleId::NetFs(NetFsRule::ServerUnreachable) {
                super::server_remedies(net.first(), super::Sleeper::of(p, t))
            } else {
                remedies(id, p)
            },
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

/// Why a cycle of kernel facts is a deadlock, and what is left to do.
const EXACT_CYCLE: &str = "Each task in the circle waits for the next one, and every edge is a \
     kernel fact — a lock's owner field read off the lock (task->blocker, 6.16+), not a guess: a \
     deadlock. None can move first; it lasts until one of the waits is ended from outside (a \
     killable wait by SIGKILL) or the machine is rebooted.";

/// Where the kernel's own word on a lock wait was read, as evidence cites
/// it.
fn lock_source(snap: &Snapshot, from: &Node) -> String {
    let tid = match from {
        Node::Task { tid, .. } => *tid,
        _ => 0,
    };
    match snap.source {
        wedge_model::Source::Live { .. } => {
            format!("BPF task iterator: task->blocker of thread {tid} and the lock's owner")
        }
        wedge_model::Source::Vmcore { .. } => format!("dump: the lock thread {tid} waits on"),
        wedge_model::Source::Recorded { .. } => format!("task/{tid}: lock_wait"),
    }
}

/// The edges that close a cycle, one per step, facts preferred.
fn cycle_edges<'g>(g: &'g Graph, cycle: &[Node]) -> Vec<Option<&'g graph::Edge>> {
    (0..cycle.len())
        .map(|i| {
            let (a, b) = (&cycle[i], &cycle[(i + 1) % cycle.len()]);
            let mut es: Vec<&graph::Edge> = g.out(a).filter(|e| &e.to == b).collect();
            es.sort_by_key(|e| e.likely);
            es.first().copied()
        })
        .collect()
}

/// Tasks that wait on each other in a circle: none can move first. A
/// circle of facts only is a deadlock, with High confidence and each lock
/// named; one with a guessed edge stays Medium.
pub(super) fn cycles(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
    let id = WaitRule::Cycle;
    for cycle in g.cycles() {
        let words: Vec<String> = cycle.iter().map(|n| graph::describe(snap, n)).collect();
        let mut pids: Vec<i32> = cycle.iter().filter_map(Node::pid).collect();
        pids.dedup();
        let edges = cycle_edges(g, &cycle);
        let exact = edges.iter().all(|e| e.is_some_and(|e| !e.likely));
        let locks = edges
            .iter()
            .all(|e| e.is_some_and(|e| e.kind == graph::EdgeKind::LockHolder));
        let mut evidence = vec![ev("wait-for graph", words.join(" → "))];
        for (i, e) in edges.iter().enumerate() {
            let Some(e) = e else { continue };
            let source = if e.kind == graph::EdgeKind::LockHolder && !e.likely {
                lock_source(snap, &e.from)
            } else {
                "wait-for graph".to_string()
            };
            evidence.push(ev(
                source,
                format!(
                    "{} {}{}",
                    words[i],
                    e.detail,
                    if e.likely { " (inferred)" } else { "" }
                ),
            ));
        }
        let title = match (exact, locks) {
            (true, true) => format!(
                "deadlock: {} tasks each wait for a lock the next one owns",
                cycle.len()
            ),
            (true, false) => format!(
                "deadlock: {} tasks wait on each other in a circle",
                cycle.len()
            ),
            (false, _) => format!("{} tasks wait on each other in a circle", cycle.len()),
        };
        out.push(Finding {
            severity: Severity::Critical,
            confidence: if exact {
                Confidence::High
            } else {
                Confidence::Medium
            },
            pids,
            evidence,
            explanation: if exact {
                EXACT_CYCLE.into()
            } else {
                id.explanation().into()
            },
            remedies: id.remedies(),
            chain: vec![format!(
                "{} → {}",
                words.join(" → "),
                words.first().cloned().unwrap_or_default()
            )],
            ..Finding::new(id, title)
        });
    }
}

/// Why the holder of a lock is known, not guessed.
const EXACT_CONVOY: &str = "The kernel records the lock each task sleeps on (task->blocker, 6.16+ \
     with CONFIG_DETECT_HUNG_TASK_BLOCKER), and a mutex's or writer-held rw-semaphore's owner \
     field names its holder: wedge read both, so the holder is named exactly. The queue moves when \
     the holder's own wait ends.";

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
        // Every waiter's edge is the lock's own owner field: the holder is
        // a fact.
        let exact = waiters.iter().all(|(_, e)| !e.likely);
        if exact {
            for (n, e) in &waiters {
                if let Some(ev) = evidence
                    .iter_mut()
                    .find(|x| x.fact == format!("{} waits: {}", graph::describe(snap, n), e.detail))
                {
                    ev.source = lock_source(snap, n);
                }
            }
        }
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
            confidence: if exact {
                Confidence::High
            } else {
                Confidence::Medium
            },
            pids,
            evidence,
            explanation: if exact {
                EXACT_CONVOY.into()
            } else {
                id.explanation().into()
            },
            remedies: id.remedies(),
            chain,
            ..Finding::new(
                id,
                if exact {
                    format!(
                        "{} task(s) queued on a lock that {} holds (the lock's owner field names it)",
                        waiters.len(),
                        graph::describe(snap, &holder)
                    )
                } else {
                    format!(
                        "{} task(s) queued on a lock that {} likely holds while it waits",
                        waiters.len(),
                        graph::describe(snap, &holder)
                    )
                },
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::finding::Confidence;
    use crate::fuse::tests::{process, thread};
    use crate::graph::{self, EdgeKind, Node};
    use wedge_kernel::{SleepKind, TaskState};
    use wedge_model::{Field, KernelFrame, LockWait, Snapshot, Source, Thread};

    const LOCK_A: u64 = 0xffff_8881_0000_1000;
    const LOCK_B: u64 = 0xffff_8881_0000_2000;

    fn lock(kind: &str, address: u64, owner: Option<i32>) -> LockWait {
        LockWait {
            kind: kind.into(),
            address,
            symbol: None,
            owner_tid: owner,
            reader_owned: false,
            waiters: Vec::new(),
            last_holder_tid: None,
            owner_task: owner.map(|o| 0xffff_8880_0000_0000 + o as u64),
            waits_as: (kind == "rw_semaphore").then(|| "writer".to_string()),
        }
    }

    /// A task in D on `lw`, its /proc-like stack showing only the way in.
    fn waiter(tid: i32, lw: LockWait, top: &str) -> Thread {
        let mut t = thread(tid, TaskState::DiskSleep, None);
        t.kernel_stack = Field::Value(vec![
            KernelFrame::named(top),
            KernelFrame::named("do_filp_open"),
        ]);
        t.wchan = Field::Value(Some(top.into()));
        t.sleep_kind = Some(SleepKind::Uninterruptible);
        t.lock_wait = Some(lw);
        t
    }

    fn snap(threads: Vec<Thread>) -> Snapshot {
        let mut s = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        s.processes = threads
            .into_iter()
            .map(|t| process(t.tid, vec![t], vec![], "/"))
            .collect();
        s
    }

    #[test]
    fn two_tasks_owning_each_others_mutex_are_a_deadlock() {
        let s = snap(vec![
            waiter(10, lock("mutex", LOCK_A, Some(20)), "do_something"),
            waiter(20, lock("mutex", LOCK_B, Some(10)), "do_other"),
        ]);
        let fs = crate::analyze(&s);
        let c = fs
            .iter()
            .find(|f| f.id.as_str() == "wait.cycle")
            .unwrap_or_else(|| panic!("no cycle: {fs:#?}"));
        assert_eq!(c.confidence, Confidence::High);
        assert!(c.title.starts_with("deadlock"), "{}", c.title);
        let ev: Vec<&str> = c.evidence.iter().map(|e| e.fact.as_str()).collect();
        for l in [LOCK_A, LOCK_B] {
            assert!(
                ev.iter().any(|e| e.contains(&format!("mutex {l:#x}"))),
                "{l:#x} not named: {ev:?}"
            );
        }
        assert!(c
            .evidence
            .iter()
            .any(|e| e.source.contains("task->blocker")));
    }

    #[test]
    fn a_cycle_with_a_guessed_edge_is_not_called_a_deadlock() {
        let s = snap(vec![
            waiter(10, lock("mutex", LOCK_A, Some(20)), "do_something"),
            thread(20, TaskState::DiskSleep, None),
        ]);
        let edge = |a: i32, b: i32, likely: bool| graph::Edge {
            from: Node::Task { pid: a, tid: a },
            to: Node::Task { pid: b, tid: b },
            kind: EdgeKind::LockHolder,
            detail: "waits".into(),
            likely,
        };
        let g = graph::Graph {
            edges: vec![edge(10, 20, false), edge(20, 10, true)],
        };
        let mut out = Vec::new();
        super::cycles(&s, &g, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].confidence, Confidence::Medium);
        assert!(!out[0].title.starts_with("deadlock"), "{}", out[0].title);
        assert!(out[0]
            .evidence
            .iter()
            .any(|e| e.fact.ends_with("(inferred)")));
    }

    #[test]
    fn an_exact_owner_is_a_high_confidence_edge_and_no_holder_is_inferred() {
        // B queued for writing on the directory's i_rwsem (BPF: blocker,
        // owner A); A waits on FUSE inside a lookup; C, another FUSE
        // waiter inside path_openat, would be inferred as a holder too.
        let b = waiter(30, lock("rw_semaphore", LOCK_A, Some(10)), "path_openat");
        let mut a = thread(10, TaskState::DiskSleep, Some((0, "openat", vec![])));
        let mut c = thread(20, TaskState::DiskSleep, Some((0, "openat", vec![])));
        for t in [&mut a, &mut c] {
            if let Field::Value(s) = &mut t.kernel_stack {
                s.push(KernelFrame::named("lookup_slow"));
                s.push(KernelFrame::named("path_openat"));
            }
        }
        let s = snap(vec![a, c, b]);
        let g = graph::build(&s);
        let from_b: Vec<_> = g
            .out(&Node::Task { pid: 30, tid: 30 })
            .filter(|e| e.kind == EdgeKind::LockHolder)
            .collect();
        assert_eq!(from_b.len(), 1, "{from_b:#?}");
        assert_eq!(from_b[0].to, Node::Task { pid: 10, tid: 10 });
        assert!(!from_b[0].likely);
        assert!(
            from_b[0]
                .detail
                .contains(&format!("rw_semaphore {LOCK_A:#x}"))
                && from_b[0].detail.contains("owner field names thread 10"),
            "{}",
            from_b[0].detail
        );
        let fs = crate::analyze(&s);
        let convoy = fs
            .iter()
            .find(|f| f.id.as_str() == "lock.convoy")
            .expect("convoy");
        assert_eq!(convoy.confidence, Confidence::High);
        assert!(!convoy.title.contains("likely"), "{}", convoy.title);
        assert!(convoy.pids.contains(&10) && convoy.pids.contains(&30));
    }

    /// Without task->blocker (before 6.16) an ORC stack shows the rwsem
    /// slow path that /proc hides: the holder is still inferred.
    #[test]
    fn a_full_stack_queued_in_open_still_gets_a_likely_holder() {
        let mut b = thread(30, TaskState::DiskSleep, None);
        b.kernel_stack = Field::Value(
            [
                "__schedule",
                "schedule",
                "rwsem_down_write_slowpath",
                "down_write",
                "path_openat",
                "do_filp_open",
            ]
            .iter()
            .map(|f| KernelFrame::named(*f))
            .collect(),
        );
        let mut a = thread(10, TaskState::DiskSleep, Some((0, "openat", vec![])));
        if let Field::Value(s) = &mut a.kernel_stack {
            s.push(KernelFrame::named("lookup_slow"));
        }
        let s = snap(vec![a, b]);
        let g = graph::build(&s);
        let e: Vec<_> = g.out(&Node::Task { pid: 30, tid: 30 }).collect();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].likely && e[0].to == Node::Task { pid: 10, tid: 10 });
    }

    #[test]
    fn a_reader_owned_rwsem_names_no_owner() {
        let mut lw = lock("rw_semaphore", LOCK_A, None);
        lw.reader_owned = true;
        let s = snap(vec![waiter(30, lw, "do_something")]);
        let g = graph::build(&s);
        assert!(g.edges.iter().all(|e| e.kind != EdgeKind::LockHolder));
        let (p, t) = s.thread(30).expect("thread");
        let words = crate::describe_wait(&s, p, t);
        assert!(words.contains("held by readers"), "{words}");
        assert!(!words.contains("owner field names"), "{words}");
    }

    #[test]
    fn a_semaphore_wait_says_the_kernel_names_no_owner() {
        let mut lw = lock("semaphore", LOCK_A, None);
        lw.last_holder_tid = Some(10);
        let holder = thread(10, TaskState::Sleeping, None);
        let s = snap(vec![holder, waiter(30, lw, "do_something")]);
        let g = graph::build(&s);
        assert!(g.edges.iter().all(|e| e.kind != EdgeKind::LockHolder));
        let (p, t) = s.thread(30).expect("thread");
        let words = crate::describe_wait(&s, p, t);
        assert!(words.contains("semaphore has no owner"), "{words}");
        assert!(
            words.contains("last_holder, a hint only, is thread 10"),
            "{words}"
        );
        assert!(words.contains("not even SIGKILL ends it"), "{words}");
    }

    #[test]
    fn killable_and_uninterruptible_are_told_apart() {
        let mut k = thread(10, TaskState::DiskSleep, None);
        k.sleep_kind = Some(SleepKind::Killable);
        k.wchan = Field::Value(Some("kernel_clone".into()));
        let s = snap(vec![k]);
        let (p, t) = s.thread(10).expect("thread");
        assert!(crate::describe_wait(&s, p, t).contains("kill -9 ends it"));
    }
}
