//! Findings over a whole snapshot.

use crate::finding::{BlockedOn, Confidence, Evidence, Finding, Remedy, Severity};
use crate::graph::{self, Graph, Node};
use crate::wait::{describe_wait, wait_kind, WaitKind};
use std::collections::BTreeMap;
use wedge_kernel::{Signal, TaskState};
use wedge_model::{FsClass, Process, Snapshot, Thread};

/// A task off the CPU for this long in a wait that should be brief is
/// stuck rather than slow. Disk I/O under load stays far below it.
pub const STUCK_AFTER_MS: f64 = 10_000.0;

/// Zombies younger than this, with a parent that could reap them, are not
/// reported.
pub const ZOMBIE_GRACE_MS: f64 = 5_000.0;

fn ev(source: impl Into<String>, fact: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        fact: fact.into(),
    }
}

/// Where a process's facts were read, as evidence cites it: its /proc
/// directory on a live system, its task in memory for a crash dump.
pub(crate) fn pid_path(snap: &Snapshot, pid: i32) -> String {
    match &snap.source {
        wedge_model::Source::Live { root } => format!("{root}/{pid}"),
        wedge_model::Source::Vmcore { .. } => format!("dump: task/{pid}"),
        _ => format!("task/{pid}"),
    }
}

pub(crate) fn task_path(snap: &Snapshot, p: &Process, t: &Thread) -> String {
    if p.pid == t.tid {
        pid_path(snap, p.pid)
    } else {
        format!("{}/task/{}", pid_path(snap, p.pid), t.tid)
    }
}

fn off_cpu(snap: &Snapshot, t: &Thread) -> Option<f64> {
    snap.off_cpu_ms(t)
}

fn stack_evidence(snap: &Snapshot, p: &Process, t: &Thread) -> Option<Evidence> {
    let stack = t.kernel_stack.value()?;
    let frames: Vec<&str> = stack.iter().take(6).map(|f| f.function.as_str()).collect();
    if frames.is_empty() {
        return None;
    }
    Some(ev(
        format!("{}/stack", task_path(snap, p, t)),
        frames.join(" ← "),
    ))
}

/// Fills what a finding's tasks wait on, and the chains to the root
/// causes, from the wait-for graph.
fn enrich(snap: &Snapshot, g: &Graph, f: &mut Finding) {
    let Some(p) = f.pids.first().and_then(|&pid| snap.process(pid)) else {
        return;
    };
    for t in &p.threads {
        let node = Node::Task {
            pid: p.pid,
            tid: t.tid,
        };
        let direct: Vec<_> = g.out(&node).collect();
        if direct.is_empty() {
            continue;
        }
        for e in &direct {
            let b = BlockedOn {
                kind: e.kind.name().to_string(),
                pid: e.to.pid(),
                detail: format!(
                    "{}: {}{}",
                    graph::describe(snap, &e.to),
                    e.detail,
                    if e.likely { " (likely)" } else { "" }
                ),
            };
            if !f.blocked_on.contains(&b) {
                f.blocked_on.push(b);
            }
        }
        for chain in g.chains(&node).into_iter().take(4) {
            let words: Vec<String> = chain.iter().map(|n| graph::describe(snap, n)).collect();
            let line = words.join(" → ");
            if !f.chain.contains(&line) {
                f.chain.push(line);
            }
        }
    }
}

/// Runs every rule. Findings come out ranked: wedged first, then by
/// confidence.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    let g = graph::build(snap);
    analyze_with(snap, &g)
}

/// [`analyze`] with a graph already built.
pub fn analyze_with(snap: &Snapshot, g: &Graph) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &snap.processes {
        fuse_waits(snap, p, &mut out);
        fatal_pending(snap, p, &mut out);
        uninterruptible(snap, g, p, &mut out);
        stopped(snap, p, &mut out);
    }
    zombies(snap, &mut out);
    blocked_reads(snap, &mut out);
    lock_convoys(snap, g, &mut out);
    cycles(snap, g, &mut out);
    stdio_stale(snap, &mut out);
    for f in &mut out {
        if f.id != "wedge.read_blocked" {
            enrich(snap, g, f);
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.cmp(&a.confidence))
            .then(a.pids.cmp(&b.pids))
    });
    out
}

fn fuse_waits(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    let waiting: Vec<&Thread> = p
        .threads
        .iter()
        .filter(|t| {
            matches!(
                wait_kind(t),
                WaitKind::FuseRequest { .. } | WaitKind::FuseFlush
            )
        })
        .collect();
    let Some(first) = waiting.first() else {
        return;
    };
    let flush = waiting
        .iter()
        .any(|t| wait_kind(t) == WaitKind::FuseFlush && t.flags.exiting());
    let longest = waiting
        .iter()
        .filter_map(|t| off_cpu(snap, t))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let mut evidence = Vec::new();
    for t in &waiting {
        evidence.push(ev(
            format!("{}/stat", task_path(snap, p, t)),
            format!(
                "thread {} ({}) is {} and {}",
                t.tid,
                t.comm,
                t.state.code(),
                describe_wait(snap, p, t)
            ),
        ));
        if let Some(e) = stack_evidence(snap, p, t) {
            evidence.push(e);
        }
        if let Some(ms) = off_cpu(snap, t) {
            evidence.push(ev(
                format!("{}/sched", task_path(snap, p, t)),
                format!("off the CPU for {}", wedge_model::human_ms(ms)),
            ));
        }
    }
    // Each waiting thread is tied to its own connection (or not at all);
    // only tied connections get a remedy.
    let mut tied: Vec<crate::fuse::Tie> = Vec::new();
    let mut candidates: Vec<crate::fuse::Candidate> = Vec::new();
    for t in &waiting {
        match crate::fuse::target(snap, p, t) {
            crate::fuse::Target::Tied(tie) => {
                let (source, fact) = tie.evidence(snap, p, t);
                evidence.push(ev(source, fact));
                if !tied.iter().any(|x| x.connection == tie.connection) {
                    tied.push(tie);
                }
            }
            crate::fuse::Target::Candidates { candidates: c, why } => {
                evidence.push(ev(
                    format!("{}/syscall", task_path(snap, p, t)),
                    format!(
                        "thread {} cannot be tied to a FUSE connection: {why}",
                        t.tid
                    ),
                ));
                for c in c {
                    if !candidates.iter().any(|x| x.connection == c.connection) {
                        candidates.push(c);
                    }
                }
            }
        }
    }
    candidates.retain(|c| !tied.iter().any(|t| t.connection == c.connection));
    for c in &candidates {
        evidence.push(ev(
            "candidate (not tied)",
            format!("candidate: {}", c.describe()),
        ));
    }
    let fusectl_missing = snap.fuse_connections.value().is_none();
    let mut remedies = Vec::new();
    if fusectl_missing && !tied.is_empty() {
        // The connection number is the mount's device minor (mountinfo's
        // `0:N`), known without fusectl; aborting needs fusectl's files.
        remedies.push(Remedy {
            action: "mount fusectl first: it is not mounted here, and aborting a connection goes through its files".into(),
            command: Some("mount -t fusectl none /sys/fs/fuse/connections".into()),
        });
    }
    for tie in &tied {
        let connection = tie.connection;
        let mp = &tie.mount_point;
        if let Some(w) = crate::fuse::waiting(snap, connection) {
            evidence.push(ev(
                format!("/sys/fs/fuse/connections/{connection}/waiting"),
                format!("{w} requests waiting on connection {connection} ({mp})"),
            ));
        }
        let how = if tie.sure() {
            String::new()
        } else {
            match &tie.by {
                crate::fuse::TieBy::Cwd { .. } => " — tied by the working directory only: check that the stuck call is on this mount".into(),
                _ => " — a likely tie (see the evidence)".into(),
            }
        };
        remedies.push(Remedy {
            action: format!(
                "abort FUSE connection {connection} ({mp}): every waiting request fails (ECONNABORTED) and the waiters wake{how}"
            ),
            command: Some(format!("echo 1 > /sys/fs/fuse/connections/{connection}/abort")),
        });
        remedies.push(Remedy {
            action: format!("then detach the dead mount {mp}"),
            command: Some(format!("umount -l {mp}")),
        });
    }
    if !candidates.is_empty() {
        // Aborting a connection fails every request of every process on
        // it: never offered for one that is not tied to this process.
        remedies.push(Remedy {
            action: format!(
                "find which of the candidate connections ({}) this process waits on before aborting any: \
                 its daemon's log, or which mount the process was using; the others belong to other processes",
                candidates
                    .iter()
                    .map(|c| c.connection.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            command: None,
        });
    }
    let in_d = waiting.iter().any(|t| t.state == TaskState::DiskSleep);
    let stuck = in_d || longest.is_some_and(|ms| ms >= STUCK_AFTER_MS);
    let (id, title, explanation) = if flush {
        (
            "fuse.flush_on_exit",
            format!("{} ({}) cannot finish exiting: a thread is flushing a FUSE file", p.comm, p.pid),
            "A thread of this process is inside do_exit() (PF_EXITING) closing its files, and closing a FUSE \
             file sends FLUSH to the daemon and waits for the answer. The daemon has not answered, so the \
             process can neither finish exiting nor be killed: a fatal signal is already being acted on. If the \
             process is (or is a child of) a pid-namespace init, the init waits for it in zap_pid_ns_processes \
             too (the deadlock of Netflix's FUSE report, seed 001). Kernels up to 6.18 still wait here: \
             wedge's test kit reproduces it on 6.18; aborting the FUSE connection is the way out."
                .to_string(),
        )
    } else {
        (
            "fuse.unanswered",
            format!("{} ({}) waits for a FUSE daemon that does not answer", p.comm, p.pid),
            format!(
                "{} thread(s) of this process sent a request to a FUSE daemon and wait for its reply. \
                 While waiting interruptibly (S) a signal would interrupt them; once a fatal signal arrives \
                 after the daemon has read the request, the wait becomes uninterruptible (D) until the daemon \
                 answers or the connection is aborted.",
                waiting.len()
            ),
        )
    };
    out.push(Finding {
        id: id.into(),
        title,
        severity: if stuck {
            Severity::Critical
        } else {
            Severity::Warning
        },
        confidence: if first.kernel_stack.value().is_some() {
            Confidence::High
        } else {
            Confidence::Medium
        },
        pids: vec![p.pid],
        evidence,
        explanation,
        remedies,
        do_not: vec![
            "do not attach gdb or strace: ptrace on a task in D state wedges the tracer too".into(),
        ],
        ..Default::default()
    });
}

fn fatal_pending(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    for t in &p.threads {
        let pending = p.shared_pending.union(t.pending);
        let fatal = pending.fatal_given(p.ignored, p.caught);
        if fatal.is_empty() || !matches!(t.state, TaskState::DiskSleep) {
            continue;
        }
        // FUSE waits carry their own finding.
        // FUSE waits and io_uring exits carry their own findings.
        if matches!(
            wait_kind(t),
            WaitKind::FuseRequest { .. } | WaitKind::FuseFlush | WaitKind::IoUringCancel
        ) {
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
        out.push(Finding {
            id: "signal.fatal_pending".into(),
            title: format!(
                "{} ({}) has {} pending but is not dying",
                p.comm,
                p.pid,
                if fatal.contains(Signal::SIGKILL) { "SIGKILL".to_string() } else { fatal.to_string() }
            ),
            severity: Severity::Critical,
            confidence: Confidence::High,
            pids: vec![p.pid],
            evidence,
            explanation: format!(
                "Thread {} {}. Signals are acted on only when a task returns towards user space; a task in \
                 uninterruptible sleep does not, so the signal waits until the awaited event happens.",
                t.tid,
                describe_wait(snap, p, t)
            ),
            remedies: vec![Remedy {
                action: "find and unblock what the thread waits for (the stack names it); killing it again does nothing".into(),
                command: None,
            }],
            do_not: vec!["do not attach gdb or strace: ptrace on a task in D state wedges the tracer too".into()],
..Default::default()
});
        return;
    }
}

fn uninterruptible(snap: &Snapshot, g: &Graph, p: &Process, out: &mut Vec<Finding>) {
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
        let id = match kind {
            WaitKind::VforkChild => "vfork.waiting",
            WaitKind::PidNamespaceReap => "pidns.init_reaping",
            WaitKind::IoUringCancel => "io_uring.stuck",
            WaitKind::NfsServer | WaitKind::LustreServer | WaitKind::CifsServer => {
                "netfs.server_unreachable"
            }
            WaitKind::Lock { .. } => "lock.waiting",
            _ => "task.uninterruptible",
        };
        // A vfork parent waits as long as its child runs: not a hang by
        // itself.
        let severity = match (id, stuck) {
            ("vfork.waiting", _) => Severity::Info,
            // An exit that waits on io_uring with SIGKILL pending is the
            // unkillable process of seed 000, however long it has been.
            ("io_uring.stuck", _) if fatal => Severity::Critical,
            (_, true) => Severity::Critical,
            _ => Severity::Info,
        };
        if id == "lock.waiting" && has_holder(g, p, t) {
            continue;
        }
        if severity == Severity::Info && id == "task.uninterruptible" {
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
        if id == "vfork.waiting" && !children.is_empty() {
            evidence.push(ev(
                "process tree",
                format!("children: {}", children.join(", ")),
            ));
        }
        out.push(Finding {
            id: id.into(),
            title: format!(
                "{} ({}) thread {} {}",
                p.comm,
                p.pid,
                t.tid,
                describe_wait(snap, p, t)
            ),
            severity,
            confidence: if t.kernel_stack.value().is_some() {
                Confidence::Medium
            } else {
                Confidence::Low
            },
            pids: vec![p.pid],
            evidence,
            explanation: explanation(id),
            remedies: remedies(id, p),
            do_not: vec![
                "do not attach gdb or strace: ptrace on a task in D state wedges the tracer too"
                    .into(),
            ],
            ..Default::default()
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

/// Tasks queued behind the same (likely) lock holder: one finding per
/// holder, with the chain from the holder on to its own wait.
/// Tasks that wait on each other in a circle: none can move first.
fn cycles(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
    for cycle in g.cycles() {
        let words: Vec<String> = cycle.iter().map(|n| graph::describe(snap, n)).collect();
        let mut pids: Vec<i32> = cycle.iter().filter_map(Node::pid).collect();
        pids.dedup();
        out.push(Finding {
            id: "wait.cycle".into(),
            title: format!("{} tasks wait on each other in a circle", cycle.len()),
            severity: Severity::Critical,
            confidence: Confidence::Medium,
            pids,
            evidence: vec![ev("wait-for graph", words.join(" → "))],
            explanation: "Each task in the circle waits for the next one, so none can make progress: a \
                deadlock, unless one of the edges is a guess (lock holders on 6.x are inferred)."
                .into(),
            remedies: vec![Remedy {
                action: "break the circle at the edge that can be cut: abort a FUSE connection, kill a tracer, resume a stopped task".into(),
                command: None,
            }],
            chain: vec![format!("{} → {}", words.join(" → "), words.first().cloned().unwrap_or_default())],
            ..Default::default()
        });
    }
}

fn lock_convoys(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
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
            id: "lock.convoy".into(),
            title: format!(
                "{} task(s) queued on a lock that {} likely holds while it waits",
                waiters.len(),
                graph::describe(snap, &holder)
            ),
            severity: if longest >= STUCK_AFTER_MS { Severity::Critical } else { Severity::Warning },
            confidence: Confidence::Medium,
            pids,
            evidence,
            explanation: "On 6.x kernels /proc hides the lock slow paths (rwsem_down_write_slowpath, \
                __mutex_lock) from wchan and stack: a task queued on a directory's inode lock shows only \
                path_openat, and a writer queued on mmap_lock only vm_mmap_pgoff. wedge names as the likely \
                holder the task that is inside the same operation and itself waiting; the kernel's hung-task \
                report (`blocked on … likely owned by task …`) confirms it when it fires. The queue moves when \
                the holder's own wait ends."
                .into(),
            remedies: vec![Remedy {
                action: "unblock the holder (see the chain: what it waits on); the queued tasks follow".into(),
                command: None,
            }],
            chain,
            ..Default::default()
        });
    }
}

/// stdio on files of a network filesystem that were deleted: after the
/// server removes the file, fstat() on the descriptor fails with ESTALE
/// (NFSv3), which some runtimes treat as fatal — Node.js aborts in
/// ResetStdio (seed 002).
fn stdio_stale(snap: &Snapshot, out: &mut Vec<Finding>) {
    for p in &snap.processes {
        let Some(fds) = p.fds.value() else { continue };
        let risky: Vec<String> = fds
            .iter()
            .filter(|f| f.fd <= 2)
            .filter(|f| {
                f.mount_id.and_then(|m| snap.mount(m)).is_some_and(|m| {
                    matches!(m.class(), FsClass::Nfs { .. } | FsClass::Cifs { .. })
                })
            })
            .filter(|f| f.kind == wedge_model::FileKind::Deleted)
            .map(|f| format!("fd {} → {}", f.fd, f.target))
            .collect();
        if risky.is_empty() {
            continue;
        }
        out.push(Finding {
            id: "stdio.stale".into(),
            title: format!("{} ({}) writes its stdio to deleted files on a network filesystem", p.comm, p.pid),
            severity: Severity::Warning,
            confidence: Confidence::Medium,
            pids: vec![p.pid],
            evidence: risky.into_iter().map(|r| ev(format!("{}/fd", pid_path(snap, p.pid)), r)).collect(),
            explanation: "A file deleted on the NFS server is stale for this client: fstat() and write() on \
                the descriptor fail with ESTALE. Runtimes that check their stdio at exit (Node.js's ResetStdio) \
                abort on it; as PID 1 of a container that abort ends in a general protection fault (seed 002)."
                .into(),
            remedies: vec![Remedy {
                action: "give the process pipes for stdio (the container runtime's log driver) instead of files on NFS".into(),
                command: None,
            }],
            ..Default::default()
        });
    }
}

fn explanation(id: &str) -> String {
    match id {
        "io_uring.stuck" => "The process is exiting but cannot finish: exit cancels its io_uring requests and \
            waits (io_uring_cancel_generic, io_wq_put_and_exit) for the io-wq workers and the SQPOLL thread to \
            stop. A request one of them is executing is blocked (the chain names on what), so the exit — and \
            the SIGKILL — wait with it; a machine in this state can also fail to power off. Linux 6.6 LTS \
            (6.6.58 in libuv#4598 / node#55587) had such hangs with iou-sqp threads reported as hung tasks."
            .into(),
        "vfork.waiting" => "After vfork() the parent sleeps (D, but killable) until the child calls exec or \
            exits; the two share memory until then. It is stuck only if the child is."
            .into(),
        "pidns.init_reaping" => "An exiting pid-namespace init kills every task of its namespace and waits in \
            zap_pid_ns_processes until each is reaped; a task that cannot die (e.g. blocked in FUSE or NFS) \
            keeps the init — and the container — from going away."
            .into(),
        "netfs.server_unreachable" => "The task waits for a network filesystem server's reply. With a hard \
            mount the client retries forever; the wait ends when the server answers."
            .into(),
        _ => "A task in uninterruptible sleep (D) does not react to signals until the wait ends.".into(),
    }
}

fn remedies(id: &str, p: &Process) -> Vec<Remedy> {
    match id {
        "io_uring.stuck" => vec![
            Remedy {
                action: "unblock what the io_uring worker waits on (see the chain): e.g. abort the FUSE connection it waits for".into(),
                command: None,
            },
            Remedy {
                action: format!(
                    "for libuv / Node.js programs ({}), turn off libuv's io_uring use until the kernel is fixed",
                    p.comm
                ),
                command: Some("export UV_USE_IO_URING=0".into()),
            },
            Remedy {
                action: "update the kernel to a release with the io_uring exit/cancel fixes".into(),
                command: None,
            },
        ],
        "netfs.server_unreachable" => vec![Remedy {
            action: "bring the server back, or force-unmount the mount (umount -f, then umount -l)".into(),
            command: None,
        }],
        _ => Vec::new(),
    }
}

fn stopped(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    let Some(t) = p.threads.iter().find(|t| t.state.is_stopped()) else {
        return;
    };
    let traced = t.state == TaskState::TracingStop;
    let mut evidence = vec![ev(
        format!("{}/stat", task_path(snap, p, t)),
        format!(
            "thread {} is {} ({})",
            t.tid,
            t.state.code(),
            t.state.name()
        ),
    )];
    if let Some(tr) = t.tracer_pid {
        let who = snap.process(tr).map(|x| x.comm.as_str()).unwrap_or("?");
        evidence.push(ev(
            format!("{}/status", task_path(snap, p, t)),
            format!("TracerPid: {tr} ({who})"),
        ));
    }
    out.push(Finding {
        id: if traced { "ptrace.stopped".into() } else { "task.stopped".into() },
        title: if traced {
            format!(
                "{} ({}) is stopped by its tracer{}",
                p.comm,
                p.pid,
                t.tracer_pid.map(|t| format!(", pid {t}")).unwrap_or_default()
            )
        } else {
            format!("{} ({}) is stopped", p.comm, p.pid)
        },
        severity: Severity::Warning,
        confidence: Confidence::High,
        pids: vec![p.pid],
        evidence,
        explanation: if traced {
            "The tracer (a debugger, strace) holds the task stopped; it runs again when the tracer resumes or detaches it.".into()
        } else {
            "Stopped by SIGSTOP/SIGTSTP; it does nothing until SIGCONT.".into()
        },
        remedies: vec![Remedy {
            action: if traced {
                "let the tracer continue or detach (in its debugger), or end the tracer: a ptrace stop ignores SIGCONT, and the tracee resumes when its tracer goes away".into()
            } else {
                "resume it".into()
            },
            command: if traced {
                t.tracer_pid.map(|tr| format!("kill {tr}"))
            } else {
                Some(format!("kill -CONT {}", p.pid))
            },
        }],
        do_not: Vec::new(),
..Default::default()
});
}

fn zombies(snap: &Snapshot, out: &mut Vec<Finding>) {
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
        let parent_stuck = parent
            .and_then(|p| p.leader())
            .is_some_and(|l| l.state.is_stopped() || l.state == TaskState::DiskSleep);
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
            id: "zombie.unreaped".into(),
            title: format!(
                "{} zombie(s) of {} ({ppid}) not reaped: {why}",
                zs.len(),
                parent.map(|p| p.comm.as_str()).unwrap_or("?")
            ),
            severity: if parent_stuck || oldest >= 60_000.0 { Severity::Warning } else { Severity::Info },
            confidence: Confidence::High,
            pids: zs.iter().map(|z| z.pid).collect(),
            evidence,
            explanation: "A zombie has already exited: kill -9 does nothing to it. It holds only its pid and \
                exit status until its parent calls wait(), or until the parent exits and init adopts and reaps it."
                .into(),
            remedies: match parent.and_then(|p| p.leader()).map(|l| l.state) {
                Some(TaskState::Stopped) => vec![Remedy {
                    action: "resume the parent so it can reap".into(),
                    command: Some(format!("kill -CONT {ppid}")),
                }],
                _ => vec![Remedy {
                    action: "make the parent reap (SIGCHLD), or end the parent so init adopts and reaps the zombies".into(),
                    command: Some(format!("kill -CHLD {ppid}")),
                }],
            },
            do_not: vec!["kill -9 on the zombie itself does nothing".into()],
..Default::default()
});
    }
}

fn blocked_reads(snap: &Snapshot, out: &mut Vec<Finding>) {
    for b in &snap.blocked_reads {
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
                        format!("{}/task/{}/stack", pid_path(snap, p.pid), h.tid),
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
            id: "wedge.read_blocked".into(),
            title: format!("reading {} of {comm} ({}) blocked for > {} ms", b.what, b.pid, b.blocked_ms()),
            severity: Severity::Critical,
            confidence: Confidence::Medium,
            pids: vec![b.pid],
            evidence: std::iter::once(ev(
                format!("{}/{}", pid_path(snap, b.pid), b.what),
                format!("wedge's own read did not return within its {} ms deadline", b.blocked_ms()),
            ))
            .chain(evidence_holders)
            .collect(),
            blocked_on,
            explanation: format!(
                "The kernel blocked wedge's read, which waits on {}. Tools like ps, top and pgrep read the \
                 same file and hang on it too.",
                b.blocks_on
            ),
            remedies: Vec::new(),
            do_not: vec![format!(
                "do not run ps/pgrep/top without a timeout on this machine: they read /proc/{}/{} and hang",
                b.pid, b.what
            )],
..Default::default()
});
    }
}
