//! What one task waits for, from its state, wait channel and kernel stack.
//!
//! On 6.x kernels /proc hides scheduler and lock functions from both
//! `wchan` and `stack`, so the wait is read from the outermost frames that
//! name a subsystem (`request_wait_answer` for FUSE, `rpc_wait_bit_killable`
//! for NFS), not from the top frame alone.

use serde::Serialize;
use wedge_kernel::{Signal, TaskState};
use wedge_model::{FsClass, Process, Snapshot, Thread};

/// The broad kind of a wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitKind {
    /// A FUSE request the daemon has not answered.
    FuseRequest {
        operation: Option<String>,
    },
    /// Closing a FUSE file sends FLUSH and waits for the daemon.
    FuseFlush,
    NfsServer,
    LustreServer,
    CifsServer,
    /// Exiting, waiting for io_uring requests to be cancelled or finish.
    IoUringCancel,
    /// A vfork parent waits until its child execs or exits.
    VforkChild,
    /// A pid-namespace init reaping its namespace before it can exit.
    PidNamespaceReap,
    /// Waiting on a lock (mutex, rw-semaphore, inode lock).
    Lock {
        function: String,
    },
    Coredump,
    /// Held at a frozen (or freezing) filesystem's gate: sb_start_write(),
    /// sb_start_pagefault() or sb_start_intwrite() sleeps in
    /// percpu_rwsem_wait() while `sb->s_writers.frozen` is at or past its
    /// level, until the filesystem is thawed.
    FrozenFilesystem {
        function: String,
        gate: crate::storage::FreezeGate,
    },
    /// Block I/O: a bio, direct I/O, writeback, a page read, a request tag.
    BlockIo {
        function: String,
        what: crate::storage::IoWait,
    },
    /// A filesystem's journal or log (jbd2, the XFS log, a btrfs
    /// transaction commit).
    Journal {
        fs: String,
        function: String,
    },
    /// Held by the freezer: cgroup v1's (and system suspend's) in
    /// `__refrigerator`, entered from the signal path after a freeze woke
    /// the task; or cgroup v2's freezer trap (`do_freezer_trap`, inlined in
    /// `get_signal`), an interruptible sleep. Thawing the cgroup ends it.
    Frozen {
        function: String,
    },
    /// Some other kernel function.
    Other {
        function: String,
    },
    /// No wait: running, stopped, dead.
    None,
}

/// The first frame (from the top) that names one of `names`.
fn frame_in(t: &Thread, pred: impl Fn(&str) -> bool) -> Option<&str> {
    if let Some(stack) = t.kernel_stack.value() {
        if let Some(f) = stack.iter().find(|f| pred(f.base_name())) {
            return Some(f.base_name());
        }
    }
    t.wchan_name().filter(|w| pred(w))
}

/// Whether any frame (or the wait channel) belongs to a subsystem whose
/// waits [`wait_kind`] tells apart.
fn mentions_a_subsystem(t: &Thread) -> bool {
    let hit = wedge_kernel::waits::names_a_blocking_subsystem;
    t.kernel_stack
        .value()
        .is_some_and(|s| s.iter().any(|f| hit(&f.function)))
        || t.wchan_name().is_some_and(hit)
}

/// Classifies what a thread waits for.
pub fn wait_kind(t: &Thread) -> WaitKind {
    if matches!(
        t.state,
        TaskState::Running
            | TaskState::Zombie
            | TaskState::Dead
            | TaskState::Stopped
            | TaskState::TracingStop
    ) {
        return WaitKind::None;
    }
    // The kernel itself says which lock the task sleeps on
    // (`task->blocker`, 6.16+, read live through BPF; a crash dump's lock
    // queues): a fact, ahead of every reading of frames. The blocker is
    // cleared once the lock is taken, so it never names a past wait.
    if let Some(lw) = &t.lock_wait {
        return WaitKind::Lock {
            function: frame_in(t, wedge_kernel::frames::is_sleeping_lock)
                .or_else(|| t.top_frame().map(|f| f.base_name()))
                .unwrap_or(lw.kind.as_str())
                .to_string(),
        };
    }
    // The freezer: v1 parks the task in __refrigerator (D, TASK_FROZEN);
    // v2 traps it in get_signal (S). No other sleep starts in get_signal
    // itself: job control and ptrace stops are T and t.
    if t.stack_has(&["__refrigerator"]) || t.wchan_name() == Some("__refrigerator") {
        return WaitKind::Frozen {
            function: "__refrigerator".into(),
        };
    }
    if t.state == TaskState::Sleeping
        && t.top_frame()
            .map(|f| f.base_name())
            .or_else(|| t.wchan_name())
            == Some("get_signal")
    {
        return WaitKind::Frozen {
            function: "get_signal".into(),
        };
    }
    // Most sleepers wait on nothing of interest (futexes, poll, pipes):
    // one pass over their frames settles it, before the finer checks below
    // (this runs for every thread of the machine, several times).
    if matches!(
        t.state,
        TaskState::Sleeping | TaskState::Idle | TaskState::Parked
    ) && !mentions_a_subsystem(t)
    {
        return match t
            .wchan_name()
            .or_else(|| t.top_frame().map(|f| f.base_name()))
        {
            Some(f) => WaitKind::Other {
                function: f.to_string(),
            },
            None => WaitKind::None,
        };
    }
    let has =
        |names: &[&str]| t.stack_has(names) || t.wchan_name().is_some_and(|w| names.contains(&w));
    if has(&["fuse_flush"]) {
        return WaitKind::FuseFlush;
    }
    if has(&[
        "request_wait_answer",
        "fuse_simple_request",
        // 6.4 renamed it (idmapped mounts); a task queued for a request
        // slot (max_background reached, or the connection not yet
        // initialised) sleeps in fuse_get_req() before any request exists.
        "__fuse_simple_request",
        "fuse_get_req",
        "fuse_wait_on_page_writeback",
        "fuse_sync_writes",
    ]) {
        let operation = frame_in(t, |f| {
            f.starts_with("fuse_")
                && !matches!(
                    f,
                    "fuse_simple_request" | "fuse_request_send" | "fuse_get_req"
                )
        })
        .map(str::to_string);
        return WaitKind::FuseRequest { operation };
    }
    if has(&[
        "io_uring_cancel_generic",
        "io_wq_exit_workers",
        "io_ring_exit_work",
        "io_uring_files_cancel",
        "io_wq_put_and_exit",
        "io_uring_del_tctx_node",
        "io_uring_clean_tctx",
        "io_sq_thread_finish",
        "io_sq_thread_park",
    ]) {
        return WaitKind::IoUringCancel;
    }
    if has(&["zap_pid_ns_processes"]) {
        return WaitKind::PidNamespaceReap;
    }
    if frame_in(t, |f| {
        f.starts_with("ptlrpc_") || f.starts_with("ldlm_") || f.starts_with("osc_")
    })
    .is_some()
    {
        return WaitKind::LustreServer;
    }
    if frame_in(t, |f| {
        f.starts_with("rpc_") || f.starts_with("nfs_") || f.starts_with("nfs4_")
    })
    .is_some()
    {
        return WaitKind::NfsServer;
    }
    if frame_in(t, |f| f.starts_with("cifs_") || f.starts_with("smb2_")).is_some() {
        return WaitKind::CifsServer;
    }
    if has(&["do_coredump", "coredump_wait"]) {
        return WaitKind::Coredump;
    }
    // vfork: the parent sleeps in kernel_clone (wait_for_vfork_done is
    // inlined on 6.x) until the child execs or exits.
    if t.wchan_name() == Some("kernel_clone") || has(&["wait_for_vfork_done"]) {
        return WaitKind::VforkChild;
    }
    if let Some(k) = crate::storage::frames_wait(t) {
        return k;
    }
    if let Some(f) = frame_in(t, wedge_kernel::frames::is_sleeping_lock).or_else(|| {
        // /proc hides the rw-semaphore slow path, so a task queued on a
        // directory's inode lock (down_write in open_last_lookups, inlined)
        // shows path_openat as its top frame. path_openat lower in the
        // stack is only the way in: an O_TRUNC open waiting for its
        // truncate's discard (submit_bio_wait) is disk I/O, not a lock.
        t.top_frame()
            .map(|f| f.base_name())
            .filter(|f| *f == "path_openat")
            .or_else(|| {
                t.kernel_stack
                    .value()
                    .is_none()
                    .then(|| t.wchan_name().filter(|w| *w == "path_openat"))
                    .flatten()
            })
    }) {
        return WaitKind::Lock {
            function: f.to_string(),
        };
    }
    match t
        .wchan_name()
        .or_else(|| t.top_frame().map(|f| f.function.as_str()))
    {
        Some(f) => WaitKind::Other {
            function: f.to_string(),
        },
        None => WaitKind::None,
    }
}

/// Why a task deserves a line in `wedge ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    Uninterruptible,
    Zombie,
    Stopped,
    Traced,
    FatalSignalPending,
    BlockingWait,
}

/// Whether a task matters for wedge's questions, and why (the strongest
/// reason first). `None` for the ordinary.
pub fn matters(p: &Process, t: &Thread) -> Option<Attention> {
    match t.state {
        TaskState::DiskSleep => return Some(Attention::Uninterruptible),
        TaskState::Zombie => return Some(Attention::Zombie),
        TaskState::Stopped => return Some(Attention::Stopped),
        TaskState::TracingStop => return Some(Attention::Traced),
        _ => {}
    }
    let pending = p.shared_pending.union(t.pending);
    if !pending.fatal_given(p.ignored, p.caught).is_empty() && t.state != TaskState::Running {
        return Some(Attention::FatalSignalPending);
    }
    if t.state == TaskState::Sleeping
        && !matches!(wait_kind(t), WaitKind::None | WaitKind::Other { .. })
    {
        return Some(Attention::BlockingWait);
    }
    None
}

/// A sleeping task with no known wait: "idle" only if its stack was read
/// and names nothing; otherwise say what could not be seen. An ordinary
/// user reads 0 for other users' wait channels and is refused their
/// kernel stacks, and calling such a D task "idle" hid exactly the task
/// wedge is for.
fn unseen_wait(snap: &Snapshot, t: &Thread) -> String {
    let state = match t.state {
        TaskState::DiskSleep => "is in uninterruptible sleep (D)",
        _ => "sleeps",
    };
    match t.kernel_stack.missing_info() {
        Some(m)
            if m.reason == wedge_model::MissingReason::PermissionDenied
                && snap.system.viewer_uid != 0 =>
        {
            format!("{state}, in a wait that cannot be seen: its kernel stack and wait channel are not readable without root")
        }
        Some(m) => format!(
            "{state}, in a wait that cannot be seen: its kernel stack is unreadable ({})",
            m.detail
        ),
        None if t.state == TaskState::DiskSleep => {
            format!("{state}; the kernel names no wait channel for it")
        }
        None => "is idle".to_string(),
    }
}

/// The lock a task waits for, in words, with what the kernel says of its
/// owner: `rw_semaphore 0xffff888123456780 (as a writer), whose owner field
/// names thread 4242 (fuse-reader)`. A semaphore has no owner (the
/// hung-task detector's `last_holder` is only a hint); a reader-owned
/// rw-semaphore's owner word is only its last reader.
pub fn lock_words(snap: &Snapshot, t: &Thread) -> String {
    let Some(lw) = &t.lock_wait else {
        return String::new();
    };
    let name = lw
        .symbol
        .clone()
        .unwrap_or_else(|| format!("{:#x}", lw.address));
    let mut s = format!("{} {name}", lw.kind);
    if let Some(how) = &lw.waits_as {
        s.push_str(&format!(" (as a {how})"));
    }
    let who = |tid: i32| match snap.thread(tid) {
        Some((_, o)) => format!("thread {tid} ({})", o.comm),
        None => format!("thread {tid}"),
    };
    match (lw.owner_tid, lw.owner_task) {
        (Some(o), _) => s.push_str(&format!(", whose owner field names {}", who(o))),
        _ if lw.reader_owned => s.push_str(", held by readers: the kernel names no single owner"),
        (None, Some(task)) => s.push_str(&format!(
            ", whose owner is task_struct {task:#x}, outside wedge's pid namespace"
        )),
        (None, None) if lw.kind == "semaphore" => {
            s.push_str(": a semaphore has no owner the kernel could name");
            if let Some(h) = lw.last_holder_tid {
                s.push_str(&format!(" (its last_holder, a hint only, is {})", who(h)));
            }
        }
        (None, None) => s.push_str(", whose owner the kernel does not name"),
    }
    s
}

/// ` 127.0.0.1 for /mnt/nfs (nfs4 from 127.0.0.1:/, hard)`: the server and
/// mount of a network-filesystem wait, where the process's files or cwd
/// (or the snapshot having one such mount) tell.
fn net_mounts(snap: &Snapshot, p: &Process, t: &Thread) -> String {
    let ms = crate::rules::wait_mounts(snap, p, t);
    if ms.is_empty() {
        return String::new();
    }
    let likely = if ms.iter().all(|m| m.sure) {
        ""
    } else {
        " (likely: the only such mount; the task holds no file there)"
    };
    let each: Vec<String> = ms
        .iter()
        .map(|m| format!("{} for {}", m.server, m.describe()))
        .collect();
    format!(" {}{likely}", each.join(", "))
}

/// A plain-language sentence on what a thread waits for, naming the file
/// system and mount where the process's open files tell.
pub fn describe_wait(snap: &Snapshot, p: &Process, t: &Thread) -> String {
    let kind = crate::storage::wait_kind_in(snap, p, t);
    // The mount the wait is tied to (crate::fuse): naming every FUSE
    // mount the process has files on would blame the wrong ones.
    let fuse_mounts = || -> Vec<String> {
        match crate::fuse::target(snap, p, t) {
            crate::fuse::Target::Tied(tie) => {
                let fs_type = snap
                    .mounts
                    .iter()
                    .find(|m| matches!(m.class(), FsClass::Fuse { connection, .. } if connection == tie.connection))
                    .map_or("fuse", |m| m.fs_type.as_str());
                vec![format!(
                    "{} ({fs_type}, FUSE connection {})",
                    tie.mount_point, tie.connection
                )]
            }
            crate::fuse::Target::Candidates { .. } => Vec::new(),
        }
    };
    let on = |v: Vec<String>| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" on {}", v.join(", "))
        }
    };
    let mut s = match &kind {
        WaitKind::FuseRequest { operation } => format!(
            "waits for a FUSE daemon to answer a request{}{}",
            operation
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            on(fuse_mounts())
        ),
        WaitKind::FuseFlush => format!(
            "is closing a FUSE file and waits for the daemon to answer FLUSH{}",
            on(fuse_mounts())
        ),
        WaitKind::NfsServer => format!("waits for an NFS server{}", net_mounts(snap, p, t)),
        WaitKind::LustreServer => format!(
            "waits for a Lustre server (ptlrpc){}",
            net_mounts(snap, p, t)
        ),
        WaitKind::CifsServer => format!("waits for a CIFS/SMB server{}", net_mounts(snap, p, t)),
        WaitKind::IoUringCancel => {
            "is exiting and waits for its io_uring requests to be cancelled or to finish".to_string()
        }
        WaitKind::VforkChild => {
            "is a vfork parent: it waits until its child calls exec or exits".to_string()
        }
        WaitKind::PidNamespaceReap => {
            "is the init of a pid namespace and waits, while exiting, for every other task of the namespace to be reaped".to_string()
        }
        WaitKind::Lock { function } if t.lock_wait.is_some() => {
            format!("waits in {function} for {}", lock_words(snap, t))
        }
        WaitKind::Lock { function } if function == "path_openat" => {
            "waits in path_openat: most likely queued on a directory's inode lock held by another task".to_string()
        }
        WaitKind::Lock { function } => format!("waits for a lock ({function})"),
        WaitKind::Coredump => "is dumping core, or waits for a core dump to finish".to_string(),
        WaitKind::FrozenFilesystem { function, gate } => format!(
            "is held by a frozen filesystem{}: {} waits in {function} until it is thawed",
            crate::storage::where_words(snap, p, t),
            gate.words()
        ),
        WaitKind::BlockIo { .. } | WaitKind::Journal { .. } => {
            format!(
                "{}{}",
                crate::storage::kind_words(&kind).unwrap_or_default(),
                crate::storage::where_words(snap, p, t)
            )
        }
        WaitKind::Frozen { function } => match crate::cgroup::freeze_of(snap, p) {
            Some(f) => format!(
                "is frozen by its cgroup {} ({}, {function}); it runs again when {} is thawed",
                f.path,
                crate::cgroup::version_words(f.version),
                f.frozen_by
            ),
            None => format!(
                "is held by the kernel's freezer ({function}); it runs again when it is thawed"
            ),
        },
        WaitKind::Other { function } => format!("sleeps in {function}"),
        WaitKind::None => match t.state {
            TaskState::Running => "is running".to_string(),
            TaskState::Zombie => "has exited; its parent has not reaped it".to_string(),
            TaskState::Stopped => "is stopped (job control); SIGCONT resumes it".to_string(),
            TaskState::TracingStop => match t.tracer_pid {
                Some(tr) => format!("is stopped by its tracer, pid {tr}"),
                None => "is stopped under ptrace".to_string(),
            },
            TaskState::Idle => "is idle".to_string(),
            _ => unseen_wait(snap, t),
        },
    };
    match t.sleep_kind {
        Some(wedge_kernel::SleepKind::Killable) => {
            s.push_str(" (a killable wait: kill -9 ends it)")
        }
        Some(wedge_kernel::SleepKind::Uninterruptible) if t.state == TaskState::DiskSleep => {
            s.push_str(" (plainly uninterruptible: not even SIGKILL ends it)")
        }
        _ => {}
    }
    if t.lock_wait.is_some() && !matches!(kind, WaitKind::Lock { .. }) {
        s.push_str(&format!("; it waits for {}", lock_words(snap, t)));
    }
    if t.flags.exiting() && !matches!(t.state, TaskState::Zombie | TaskState::Dead) {
        s.push_str("; it is exiting (PF_EXITING)");
    }
    let pending = p.shared_pending.union(t.pending);
    if pending.contains(Signal::SIGKILL) && !matches!(t.state, TaskState::Zombie | TaskState::Dead)
    {
        if matches!(kind, WaitKind::Frozen { .. }) {
            s.push_str("; SIGKILL is pending and is acted on once the task is thawed");
        } else if t.state == TaskState::DiskSleep {
            s.push_str(
                "; SIGKILL is pending but cannot be delivered until this uninterruptible wait ends",
            );
        } else {
            s.push_str("; SIGKILL is pending");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{wait_kind, WaitKind};
    use crate::fuse::tests::thread;
    use wedge_kernel::TaskState;
    use wedge_model::{Field, KernelFrame};

    fn stack_of(frames: &[&str]) -> wedge_model::Thread {
        let mut t = thread(10, TaskState::DiskSleep, None);
        t.kernel_stack = Field::Value(frames.iter().map(|f| KernelFrame::named(*f)).collect());
        t.wchan = Field::Value(frames.first().map(|f| f.to_string()));
        t
    }

    /// path_openat is an inode-lock wait only as the top frame: below a
    /// disk wait it is just the way in (seen under build-like load: `dd`
    /// opening with O_TRUNC, waiting for the truncate's discard).
    #[test]
    fn path_openat_is_a_lock_wait_only_at_the_top() {
        let queued = stack_of(&["path_openat", "do_filp_open", "do_sys_openat2"]);
        assert!(
            matches!(wait_kind(&queued), WaitKind::Lock { function } if function == "path_openat")
        );
        let io = stack_of(&[
            "submit_bio_wait",
            "blkdev_issue_discard",
            "ext4_free_blocks",
            "ext4_truncate",
            "do_truncate",
            "path_openat",
            "do_filp_open",
        ]);
        assert!(
            !matches!(wait_kind(&io), WaitKind::Lock { .. }),
            "{:?}",
            wait_kind(&io)
        );
    }
}
