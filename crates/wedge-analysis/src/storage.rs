//! What a task's storage wait is, and which filesystem and block device
//! it is on.
//!
//! The frames say what kind of wait it is (a frozen filesystem's gate, a
//! bio, writeback, a page read, a request tag, a journal commit); the
//! kernel's own `task->in_iowait` (set by io_schedule(), read through
//! BPF) says it is an I/O wait where the frames name nothing. Which
//! filesystem the wait is on comes from the blocked system call's fd (or
//! directory fd), else the cwd, else — for a kernel thread — its name
//! (`jbd2/loop0-8`, `kworker/u8:8+loop1`). Paths are matched as strings,
//! never opened: the file may be on the very filesystem that is stuck.

use crate::fuse::{syscall_arg0, syscall_name, AT_CALLS, AT_FDCWD, FD_CALLS, PATH_CALLS};
use crate::wait::WaitKind;
use serde::Serialize;
use wedge_kernel::TaskState;
use wedge_model::{BlockDevice, BlockKind, FreezeLevel, Mount, Process, Snapshot, Thread};

/// Which gate of a frozen filesystem a task is held at
/// (`sb_start_write`, `sb_start_pagefault`, `sb_start_intwrite`: the
/// three `s_writers.rw_sem[]` levels of include/linux/fs.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeGate {
    /// A write, create, unlink, truncate, fallocate: `sb_start_write()`
    /// (in `mnt_want_write()`, `file_start_write()`).
    Write,
    /// A store to a shared mapping: `sb_start_pagefault()` in the
    /// filesystem's `page_mkwrite`.
    PageFault,
    /// The filesystem's own transaction: `sb_start_intwrite()`.
    Internal,
}

impl FreezeGate {
    /// The freeze level at which this gate closes.
    pub fn level(self) -> FreezeLevel {
        match self {
            FreezeGate::Write => FreezeLevel::Write,
            FreezeGate::PageFault => FreezeLevel::PageFault,
            FreezeGate::Internal => FreezeLevel::Fs,
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            FreezeGate::Write => "a write (sb_start_write)",
            FreezeGate::PageFault => "a store to a mapped page (sb_start_pagefault)",
            FreezeGate::Internal => "a filesystem transaction (sb_start_intwrite)",
        }
    }
}

/// What kind of block I/O a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IoWait {
    /// A bio it submitted (submit_bio_wait, blk_execute_rq).
    Bio,
    /// Direct I/O to a device or file (the page cache is bypassed).
    DirectIo,
    /// A cache flush (blkdev_issue_flush): the device's write cache.
    Flush,
    /// Pages under writeback, or dirty-page throttling.
    Writeback,
    /// A page cache page locked while it is read from the device.
    PageRead,
    /// A page cache page's lock, outside a read.
    PageLock,
    /// A buffer head (metadata) being read or written.
    Buffer,
    /// A blk-mq request tag: every request slot of the queue is in use.
    Tag,
    /// Entering the queue: it is frozen (a queue update, a reset) or
    /// dying.
    QueueEnter,
    /// An I/O wait the frames do not name (io_schedule, or the kernel's
    /// in_iowait flag).
    Other,
}

impl IoWait {
    pub fn words(self) -> &'static str {
        match self {
            IoWait::Bio => "waits for block I/O it submitted to complete",
            IoWait::DirectIo => "waits for direct I/O to complete",
            IoWait::Flush => "waits for a device cache flush to complete",
            IoWait::Writeback => "waits for pages under writeback (or is throttled on dirty pages)",
            IoWait::PageRead => "waits for a page being read from the device",
            IoWait::PageLock => "waits for a page cache page's lock (held while its I/O runs)",
            IoWait::Buffer => "waits for a metadata buffer's I/O",
            IoWait::Tag => {
                "waits for a free request tag: every request slot of the device queue is in use"
            }
            IoWait::QueueEnter => {
                "waits to enter the device's request queue (frozen for a reset or update, or dying)"
            }
            IoWait::Other => "waits for I/O",
        }
    }
}

/// The percpu rw-semaphore wait a frozen filesystem's writers sleep in.
const PERCPU_WAIT: &[&str] = &[
    "percpu_rwsem_wait",
    "__percpu_down_read",
    "percpu_down_read",
    "__percpu_rwsem_trylock",
];

/// Callers that take a superblock's freeze protection right before the
/// percpu wait (sb_start_* are inlined into them). Other percpu
/// rw-semaphores (cgroup_threadgroup_rwsem in copy_process, uprobes'
/// dup_mmap_sem) have other callers.
const SB_WRITE_CALLERS: &[&str] = &[
    "__sb_start_write",
    "sb_start_write",
    "mnt_want_write",
    "mnt_want_write_file",
    "__mnt_want_write_file",
    "file_start_write",
    "vfs_write",
    "vfs_writev",
    "vfs_iter_write",
    "do_iter_write",
    "__kernel_write",
    "kernel_write",
    "vfs_fallocate",
    "do_truncate",
    "do_ftruncate",
    "do_sys_ftruncate",
    "vfs_truncate",
    "vfs_copy_file_range",
    "do_splice_direct",
    "vfs_dedupe_file_range_one",
    "ovl_want_write",
];

const SB_INTERNAL_CALLERS: &[&str] = &[
    "sb_start_intwrite",
    "xfs_trans_alloc",
    "xfs_trans_alloc_inode",
    "start_transaction",
    "btrfs_start_transaction",
    "ext4_evict_inode",
];

/// Journal and log waits, with their filesystem.
const JOURNAL: &[(&str, &[&str])] = &[
    (
        "ext4",
        &[
            "jbd2_log_wait_commit",
            "wait_transaction_locked",
            "wait_transaction_switching",
            "add_transaction_credits",
            "start_this_handle",
            "jbd2__journal_start",
            "jbd2_journal_lock_updates",
            "jbd2_journal_wait_updates",
            "jbd2_journal_force_commit",
            "jbd2_complete_transaction",
            "__jbd2_log_wait_for_space",
            "jbd2_journal_commit_transaction",
        ],
    ),
    (
        "xfs",
        &[
            "xlog_wait",
            "xlog_wait_on_iclog",
            "xfs_log_force",
            "xfs_log_force_seq",
            "xlog_cil_force_seq",
            "xlog_grant_head_wait",
            "xlog_grant_head_check",
            "xfs_log_reserve",
            "xfs_ail_push_all_sync",
        ],
    ),
    (
        "btrfs",
        &[
            "wait_current_trans",
            "btrfs_commit_transaction",
            "wait_for_commit",
            "btrfs_wait_for_commit",
            "btrfs_start_ordered_extent",
            "btrfs_wait_ordered_range",
        ],
    ),
];

const IO: &[(IoWait, &[&str])] = &[
    (IoWait::Tag, &["blk_mq_get_tag"]),
    (
        IoWait::QueueEnter,
        &["blk_queue_enter", "__bio_queue_enter", "bio_queue_enter"],
    ),
    (IoWait::Flush, &["blkdev_issue_flush"]),
    (
        IoWait::Bio,
        &[
            "submit_bio_wait",
            "blk_wait_io",
            "blk_io_schedule",
            "blk_execute_rq",
            "scsi_execute_cmd",
            "__scsi_execute",
        ],
    ),
    (
        IoWait::DirectIo,
        &[
            "__blkdev_direct_IO_simple",
            "__blkdev_direct_IO",
            "__blkdev_direct_IO_async",
            "blkdev_direct_IO",
            "iomap_dio_rw",
            "__iomap_dio_rw",
            "__blockdev_direct_IO",
            "do_blockdev_direct_IO",
        ],
    ),
    (
        IoWait::Writeback,
        &[
            "folio_wait_writeback",
            "folio_wait_stable",
            "wait_on_page_writeback",
            "__filemap_fdatawait_range",
            "filemap_fdatawait_range",
            "filemap_fdatawait_keep_errors",
            "filemap_write_and_wait_range",
            "file_write_and_wait_range",
            "wait_sb_inodes",
            "sync_inodes_sb",
            "writeback_inodes_sb",
            "wb_wait_for_completion",
            "balance_dirty_pages",
            "balance_dirty_pages_ratelimited_flags",
        ],
    ),
    (
        IoWait::PageLock,
        &[
            "folio_wait_bit_common",
            "folio_wait_bit",
            "folio_wait_bit_killable",
            "__folio_lock",
            "__folio_lock_killable",
            "folio_wait_locked",
            "folio_put_wait_locked",
            "__lock_page",
            "__lock_page_killable",
            "wait_on_page_bit",
            "wait_on_page_bit_common",
            "wait_on_page_locked",
        ],
    ),
    (
        IoWait::Buffer,
        &[
            "__wait_on_buffer",
            "wait_on_buffer",
            "__lock_buffer",
            "__bread_gfp",
            "__sync_dirty_buffer",
            "sync_dirty_buffer",
            "__bh_read",
        ],
    ),
    (
        IoWait::Other,
        &[
            "io_schedule",
            "io_schedule_timeout",
            "bit_wait_io",
            "bit_wait_io_timeout",
        ],
    ),
];

/// Waits every kind of I/O goes through (see [`frames_wait`]).
const GENERIC_WAITS: &[&str] = &[
    "io_schedule",
    "io_schedule_timeout",
    "bit_wait_io",
    "bit_wait_io_timeout",
    "folio_wait_bit_common",
    "folio_wait_bit",
    "wait_on_page_bit_common",
    "wait_on_page_bit",
];

/// Frames of a page cache read: a page lock taken under them is the read.
const READ_PATHS: &[&str] = &[
    "filemap_read",
    "filemap_fault",
    "filemap_get_pages",
    "filemap_update_page",
    "filemap_read_folio",
    "do_read_cache_folio",
    "read_cache_page",
    "generic_file_read_iter",
    "blkdev_read_iter",
];

fn frames(t: &Thread) -> Vec<&str> {
    match t.kernel_stack.value() {
        Some(s) if !s.is_empty() => s.iter().map(|f| f.base_name()).collect(),
        _ => t.wchan_name().into_iter().collect(),
    }
}

/// A storage wait read from the frames (and `in_iowait`): a frozen
/// filesystem's gate, a journal, block I/O. `None` for anything else.
pub fn frames_wait(t: &Thread) -> Option<WaitKind> {
    let fr = frames(t);
    // A frozen filesystem: percpu_rwsem_wait (5.8+; __percpu_down_read,
    // with the rwsem slow path above it, before) right under a superblock
    // freeze-protection caller. Captured on 6.18 (/proc/PID/stack of
    // writers on an ext4 frozen with fsfreeze -f): vfs_write, mnt_want_write
    // (openat O_CREAT, mkdir, unlink), do_ftruncate, vfs_fallocate and
    // ext4_page_mkwrite ← do_page_mkwrite (an mmap store).
    if let Some(i) = fr.iter().position(|f| PERCPU_WAIT.contains(f)) {
        let caller = fr[i..].iter().find(|f| !PERCPU_WAIT.contains(f)).copied();
        if let Some(c) = caller {
            // ext4_page_mkwrite, btrfs_page_mkwrite, iomap_page_mkwrite;
            // XFS's xfs_filemap_page_mkwrite → __xfs_filemap_fault (to
            // 6.10), xfs_write_fault (6.11+).
            let mkwrite = c.contains("page_mkwrite")
                || c.ends_with("write_fault")
                || c.ends_with("xfs_filemap_fault");
            let gate = if mkwrite || c == "sb_start_pagefault" {
                Some(FreezeGate::PageFault)
            } else if SB_INTERNAL_CALLERS.contains(&c) {
                Some(FreezeGate::Internal)
            } else if SB_WRITE_CALLERS.contains(&c) {
                Some(FreezeGate::Write)
            } else {
                None
            };
            if let Some(gate) = gate {
                return Some(WaitKind::FrozenFilesystem {
                    function: c.to_string(),
                    gate,
                });
            }
        }
    }
    // Top down, the first storage frame names the wait; a sleeping lock
    // above it means the task waits for the lock, not for the I/O.
    let read = fr.iter().any(|f| READ_PATHS.contains(f));
    let dio = IO
        .iter()
        .find(|(w, _)| *w == IoWait::DirectIo)
        .is_some_and(|(_, names)| fr.iter().any(|f| names.contains(f)));
    let flush = fr.contains(&"blkdev_issue_flush");
    let refine = |what: IoWait| match what {
        IoWait::Bio | IoWait::Other if flush => IoWait::Flush,
        IoWait::Bio | IoWait::Other if dio => IoWait::DirectIo,
        IoWait::PageLock if read => IoWait::PageRead,
        w => w,
    };
    // io_schedule() and the folio bit waits serve every kind: the frame
    // under them says which (folio_wait_writeback, blk_mq_get_tag), and
    // they decide only when nothing under them does.
    let mut generic: Option<(&str, IoWait)> = None;
    for f in &fr {
        if wedge_kernel::frames::is_sleeping_lock(f) {
            break;
        }
        if let Some((what, _)) = IO.iter().find(|(_, names)| names.contains(f)) {
            if GENERIC_WAITS.contains(f) {
                generic = generic.or(Some((f, *what)));
                continue;
            }
            return Some(WaitKind::BlockIo {
                function: f.to_string(),
                what: refine(*what),
            });
        }
        if let Some((fs, _)) = JOURNAL.iter().find(|(_, names)| names.contains(f)) {
            return Some(WaitKind::Journal {
                fs: fs.to_string(),
                function: f.to_string(),
            });
        }
    }
    if let Some((f, what)) = generic {
        return Some(WaitKind::BlockIo {
            function: f.to_string(),
            what: refine(what),
        });
    }
    // The kernel's own word (io_schedule() sets in_iowait): an I/O wait
    // the frames do not name, e.g. a /proc stack that hides it.
    if t.in_iowait == Some(true) && t.state == TaskState::DiskSleep {
        return Some(WaitKind::BlockIo {
            function: fr.first().map_or("io_schedule", |f| f).to_string(),
            what: IoWait::Other,
        });
    }
    None
}

/// Words for a storage wait kind (without where).
pub fn kind_words(kind: &WaitKind) -> Option<String> {
    Some(match kind {
        WaitKind::FrozenFilesystem { function, gate } => format!(
            "is held by a frozen filesystem: {} waits in {function} until it is thawed",
            gate.words()
        ),
        WaitKind::BlockIo { function, what } => format!("{} (in {function})", what.words()),
        WaitKind::Journal { fs, function } => {
            format!("waits for the {fs} journal (in {function})")
        }
        _ => return None,
    })
}

/// Whether a wait kind is one of storage's.
pub fn is_storage(kind: &WaitKind) -> bool {
    matches!(
        kind,
        WaitKind::FrozenFilesystem { .. } | WaitKind::BlockIo { .. } | WaitKind::Journal { .. }
    )
}

/// [`crate::wait_kind`] with what only the snapshot knows: a writer whose
/// top frame is `path_openat` (the rwsem or percpu wait hidden) on a
/// filesystem the superblocks show frozen is held at the freeze gate
/// (mnt_want_write() in open_last_lookups), not queued on an inode lock.
pub fn wait_kind_in(snap: &Snapshot, p: &Process, t: &Thread) -> WaitKind {
    let kind = crate::wait::wait_kind(t);
    // A freezable sleep (TASK_FREEZABLE, 6.1+: nanosleep, NFS, many
    // kthreads) is frozen where it sleeps, without passing through
    // __refrigerator: the stack shows the old wait. A cgroup that is
    // FROZEN holds every task in it whatever its stack says.
    if !matches!(kind, WaitKind::Frozen { .. } | WaitKind::None)
        && matches!(t.state, TaskState::DiskSleep | TaskState::Sleeping)
        && snap.cgroup_freezes.value().is_some_and(|v| !v.is_empty())
        && crate::cgroup::freeze_of(snap, p)
            .is_some_and(|f| f.progress == wedge_model::FreezeProgress::Frozen)
    {
        return WaitKind::Frozen {
            function: t
                .top_frame()
                .map(|f| f.base_name().to_string())
                .or_else(|| t.wchan_name().map(str::to_string))
                .unwrap_or_else(|| "a freezable sleep".into()),
        };
    }
    match &kind {
        WaitKind::Lock { function } if function == "path_openat" && t.lock_wait.is_none() => {
            let frozen = target(snap, p, t)
                .and_then(|tg| tg.mount(snap))
                .and_then(|m| snap.superblock(m.major, m.minor))
                .is_some_and(|sb| sb.frozen.is_frozen());
            if frozen {
                WaitKind::FrozenFilesystem {
                    function: "path_openat".into(),
                    gate: FreezeGate::Write,
                }
            } else {
                kind
            }
        }
        _ => kind,
    }
}

/// How a task was tied to the filesystem or device it waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetBy {
    /// The blocked call's fd argument.
    Fd { fd: i32, target: String },
    /// A `*at()` call's directory fd (the path argument is not read).
    DirFd { fd: i32, target: String },
    /// A path lookup from the cwd, or a wait whose call names no file.
    Cwd { cwd: String },
    /// The only frozen filesystem, for a task held at a freeze gate.
    OnlyFrozen,
    /// A path of the process's command line is on it (for a task held at
    /// a freeze gate whose cwd is elsewhere).
    CmdlinePath { path: String },
    /// The process's only open file on a block filesystem.
    OnlyOpenFile,
    /// A kernel thread whose name names the device.
    ThreadName { comm: String },
}

impl TargetBy {
    /// Rests on a guess (a cwd, the only candidate, a name match).
    pub fn likely(&self) -> bool {
        !matches!(self, TargetBy::Fd { .. })
    }

    pub fn words(&self) -> String {
        match self {
            TargetBy::Fd { fd, target } => format!("its system call works on fd {fd} ({target})"),
            TargetBy::DirFd { fd, target } => format!(
                "its system call resolves a path from directory fd {fd} ({target}; the path itself is not read)"
            ),
            TargetBy::Cwd { cwd } => {
                format!("tied by its working directory {cwd} only (the path argument is not read)")
            }
            TargetBy::CmdlinePath { path } => format!(
                "its command line names {path}, on it (the system call's own path argument is not read)"
            ),
            TargetBy::OnlyFrozen => "the only filesystem shown frozen (its cwd is elsewhere; the path argument is not read)".into(),
            TargetBy::OnlyOpenFile => "the process's only open file on a block filesystem".into(),
            TargetBy::ThreadName { comm } => format!("the kernel thread's name {comm} names it"),
        }
    }
}

/// What a storage wait is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mount (its filesystem), by mount id.
    Filesystem { mount_id: u64, by: TargetBy },
    /// A block device node opened directly (`/dev/loop0`), or the device a
    /// kernel thread's name names.
    Device { name: String, by: TargetBy },
}

impl Target {
    pub fn by(&self) -> &TargetBy {
        match self {
            Target::Filesystem { by, .. } | Target::Device { by, .. } => by,
        }
    }

    pub fn mount<'a>(&self, snap: &'a Snapshot) -> Option<&'a Mount> {
        match self {
            Target::Filesystem { mount_id, .. } => snap.mount(*mount_id),
            Target::Device { .. } => None,
        }
    }
}

/// A kernel thread that works for one device, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceThread {
    /// `kworker/u8:8+loop1` (running a work item of loop1's workqueue,
    /// 5.x+), `loop1` (the per-device kthread before that).
    LoopWorker(String),
    /// `jbd2/sda1-8`: ext4's journal thread for sda1.
    Journal(String),
    /// `xfsaild/sdb1`, `kworker/…+xfs-…/sdb1`: an XFS thread of sdb1.
    Xfs(String),
    /// `kworker/…+flush-7:0`: writeback for the bdi of device 7:0.
    Flush(u32, u32),
    /// `md0_raid1`, `md0_resync`: an md array's thread.
    Md(String),
}

impl DeviceThread {
    /// Reads a kernel thread's comm. The `+` of a kworker's name means it
    /// is running a work item of that workqueue now (wq_worker_comm();
    /// `-` only names the last one).
    pub fn of(comm: &str) -> Option<DeviceThread> {
        if comm.starts_with("kworker/") {
            let kind = wedge_kernel::ThreadKind::classify(
                comm,
                wedge_kernel::TaskFlags(wedge_kernel::TaskFlags::KTHREAD),
            );
            let wedge_kernel::ThreadKind::Kworker {
                workqueue: Some(desc),
                running: true,
                ..
            } = kind
            else {
                return None;
            };
            let desc = desc.as_str();
            if let Some(n) = desc.strip_prefix("loop") {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    return Some(DeviceThread::LoopWorker(desc.to_string()));
                }
            }
            if let Some(dev) = desc.strip_prefix("flush-") {
                let (ma, mi) = dev.split_once(':')?;
                return Some(DeviceThread::Flush(ma.parse().ok()?, mi.parse().ok()?));
            }
            if desc.starts_with("xfs") {
                let (_, dev) = desc.split_once('/')?;
                return Some(DeviceThread::Xfs(dev.to_string()));
            }
            return None;
        }
        if let Some(n) = comm.strip_prefix("loop") {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return Some(DeviceThread::LoopWorker(comm.to_string()));
            }
        }
        if let Some(rest) = comm.strip_prefix("jbd2/") {
            let (dev, _) = rest.rsplit_once('-')?;
            return Some(DeviceThread::Journal(dev.to_string()));
        }
        if let Some(dev) = comm.strip_prefix("xfsaild/") {
            return Some(DeviceThread::Xfs(dev.to_string()));
        }
        if comm.starts_with("md") {
            let (md, role) = comm.split_once('_')?;
            if md.len() > 2 && md[2..].bytes().all(|b| b.is_ascii_digit()) && !role.is_empty() {
                return Some(DeviceThread::Md(md.to_string()));
            }
        }
        None
    }

    /// The device's kernel name, where the snapshot knows it.
    pub fn device(&self, snap: &Snapshot) -> Option<String> {
        match self {
            DeviceThread::LoopWorker(d)
            | DeviceThread::Journal(d)
            | DeviceThread::Xfs(d)
            | DeviceThread::Md(d) => Some(d.clone()),
            DeviceThread::Flush(ma, mi) => snap
                .block_device(*ma, *mi)
                .map(|d| d.name.clone())
                .or_else(|| {
                    snap.mounts
                        .iter()
                        .find(|m| m.major == *ma && m.minor == *mi)
                        .and_then(|m| m.source.strip_prefix("/dev/"))
                        .map(str::to_string)
                }),
        }
    }
}

/// The block device a device node path names (`/dev/loop0`,
/// `/dev/mapper/vg-root`, `/dev/dm-3`): a string match, the node is never
/// opened.
pub fn device_of_path(snap: &Snapshot, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/dev/")?;
    if let Some(dm) = rest.strip_prefix("mapper/") {
        return match snap.block_devices.value() {
            Some(devs) => devs
                .iter()
                .find(|d| d.dm.as_ref().is_some_and(|x| x.name == dm))
                .map(|d| d.name.clone()),
            None => Some(format!("mapper/{dm}")),
        };
    }
    match snap.block_devices.value() {
        Some(_) => snap.block_device_named(rest).map(|d| d.name.clone()),
        // No sysfs view: the common block device names only.
        None => {
            let block = [
                "loop", "sd", "vd", "xvd", "nvme", "dm-", "md", "nbd", "mmcblk", "hd",
            ];
            block
                .iter()
                .any(|p| rest.starts_with(p))
                .then(|| rest.to_string())
        }
    }
}

/// The block device a mount's filesystem lives on: its `major:minor`
/// (the superblock's s_dev) in sysfs, else the source's `/dev/NAME`.
pub fn device_of_mount(snap: &Snapshot, m: &Mount) -> Option<String> {
    if let Some(d) = snap.block_device(m.major, m.minor) {
        return Some(d.name.clone());
    }
    if snap.block_devices.value().is_some() || m.major == 0 {
        // sysfs was read and names no device of that number: not a
        // block filesystem (tmpfs, FUSE, NFS have major 0 too).
        return None;
    }
    device_of_path(snap, &m.source)
}

fn file(p: &Process, fd: i32) -> Option<&wedge_model::OpenFile> {
    p.fds.value()?.iter().find(|f| f.fd == fd)
}

/// A mount that holds a block filesystem (or is frozen).
fn block_fs(snap: &Snapshot, m: &Mount) -> bool {
    device_of_mount(snap, m).is_some() || snap.superblock(m.major, m.minor).is_some()
}

/// The filesystem or device a storage wait of `t` is on, and how that was
/// found; `None` when nothing ties it.
///
/// A writer held at a freeze gate whose call names no file of its own (a
/// path lookup from the cwd: `mkdir /mnt/x/new` from `/`) is tied by the
/// cwd only, and the cwd may be elsewhere: where the superblocks show
/// which filesystems are frozen, a cwd that is not on one gives way to the
/// only frozen filesystem; without them, to the only filesystem that
/// another writer's own fd proves frozen.
pub fn target(snap: &Snapshot, p: &Process, t: &Thread) -> Option<Target> {
    let tg = target_of_call(snap, p, t);
    let Some(Target::Filesystem {
        mount_id,
        by: TargetBy::Cwd { .. } | TargetBy::OnlyOpenFile,
    }) = &tg
    else {
        return tg;
    };
    if !matches!(crate::wait::wait_kind(t), WaitKind::FrozenFilesystem { .. }) {
        return tg;
    }
    let m = snap.mount(*mount_id)?;
    let exact = snap.superblocks.value().is_some();
    let frozen: Vec<(u32, u32)> = if exact {
        frozen_mounts(snap)
            .iter()
            .map(|m| (m.major, m.minor))
            .collect()
    } else {
        proven_frozen(snap)
    };
    if frozen.contains(&(m.major, m.minor)) {
        return tg;
    }
    // `mkdir /mnt/x/new`, `touch /mnt/x/f`: a path of the command line on
    // one of the frozen filesystems is the likely one (the system call's
    // own path argument is in the task's memory and is not read).
    if let Some(args) = p.cmdline.value() {
        for a in args.iter().skip(1).filter(|a| a.starts_with('/')) {
            if let Some(x) = snap
                .mount_at(p, a)
                .filter(|x| frozen.contains(&(x.major, x.minor)))
            {
                return Some(Target::Filesystem {
                    mount_id: x.mount_id,
                    by: TargetBy::CmdlinePath { path: a.clone() },
                });
            }
        }
    }
    if frozen.len() == 1 {
        let (major, minor) = frozen[0];
        let only = snap
            .mounts
            .iter()
            .filter(|x| x.major == major && x.minor == minor)
            .min_by_key(|x| x.mount_id)?;
        return Some(Target::Filesystem {
            mount_id: only.mount_id,
            by: TargetBy::OnlyFrozen,
        });
    }
    // Kernel memory says the cwd's filesystem is not frozen: the cwd tells
    // nothing, and several are frozen with nothing to tell which.
    if exact {
        return None;
    }
    tg
}

/// Filesystems a writer held at a freeze gate works on through its own fd:
/// proof from the frames that they are frozen.
fn proven_frozen(snap: &Snapshot) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = Vec::new();
    for p in &snap.processes {
        // Cheap checks first: this runs for each cwd-tied frozen writer.
        for t in p.threads.iter().filter(|t| {
            t.state == TaskState::DiskSleep
                && syscall_name(t).is_some_and(|n| FD_CALLS.contains(&n))
                && t.stack_has(PERCPU_WAIT)
        }) {
            if !matches!(crate::wait::wait_kind(t), WaitKind::FrozenFilesystem { .. }) {
                continue;
            }
            if let Some(Target::Filesystem {
                mount_id,
                by: TargetBy::Fd { .. },
            }) = target_of_call(snap, p, t)
            {
                if let Some(m) = snap.mount(mount_id) {
                    if !v.contains(&(m.major, m.minor)) {
                        v.push((m.major, m.minor));
                    }
                }
            }
        }
    }
    v
}

/// [`target`] from the thread's own call, cwd, files or name alone.
fn target_of_call(snap: &Snapshot, p: &Process, t: &Thread) -> Option<Target> {
    let name = syscall_name(t);
    let arg0 = syscall_arg0(t);
    if let (Some(n), Some(fd)) = (name, arg0) {
        let fd_call = FD_CALLS.contains(&n) || matches!(n, "ioctl" | "fdatasync" | "syncfs");
        if fd_call || (AT_CALLS.contains(&n) && fd != AT_FDCWD) {
            if let Some(f) = file(p, fd) {
                let by = if fd_call {
                    TargetBy::Fd {
                        fd,
                        target: f.target.clone(),
                    }
                } else {
                    TargetBy::DirFd {
                        fd,
                        target: f.target.clone(),
                    }
                };
                if let Some(dev) = device_of_path(snap, &f.target) {
                    return Some(Target::Device { name: dev, by });
                }
                if let Some(m) = f.mount_id.and_then(|m| snap.mount(m)) {
                    return Some(Target::Filesystem {
                        mount_id: m.mount_id,
                        by,
                    });
                }
            }
        }
    }
    if t.flags.kthread() {
        if let Some(dt) = DeviceThread::of(&t.comm) {
            if let Some(name) = dt.device(snap) {
                return Some(Target::Device {
                    name,
                    by: TargetBy::ThreadName {
                        comm: t.comm.clone(),
                    },
                });
            }
        }
        return None;
    }
    let from_cwd = name.is_some_and(|n| PATH_CALLS.contains(&n))
        || (name.is_some_and(|n| AT_CALLS.contains(&n)) && arg0 == Some(AT_FDCWD));
    let cwd_mount = || {
        let cwd = p.cwd.value()?;
        let m = snap.mount_at(p, cwd)?;
        Some(Target::Filesystem {
            mount_id: m.mount_id,
            by: TargetBy::Cwd { cwd: cwd.clone() },
        })
    };
    if from_cwd {
        return cwd_mount();
    }
    // A wait whose call names no file (a page fault, writeback throttling
    // in a call on another fd): the only frozen filesystem for a frozen
    // wait, else the only block filesystem the process has files on.
    if matches!(crate::wait::wait_kind(t), WaitKind::FrozenFilesystem { .. }) {
        let frozen: Vec<&Mount> = frozen_mounts(snap);
        if frozen.len() == 1 {
            return Some(Target::Filesystem {
                mount_id: frozen[0].mount_id,
                by: TargetBy::OnlyFrozen,
            });
        }
    }
    let open: Vec<&Mount> = snap
        .mounts_of(p)
        .into_iter()
        .filter(|m| block_fs(snap, m))
        .collect();
    if open.len() == 1 {
        return Some(Target::Filesystem {
            mount_id: open[0].mount_id,
            by: TargetBy::OnlyOpenFile,
        });
    }
    cwd_mount()
}

/// Mounts whose superblock kernel memory shows frozen, one per superblock.
pub fn frozen_mounts(snap: &Snapshot) -> Vec<&Mount> {
    let mut v: Vec<&Mount> = snap
        .mounts
        .iter()
        .filter(|m| {
            snap.superblock(m.major, m.minor)
                .is_some_and(|s| s.frozen.is_frozen())
        })
        .collect();
    v.sort_by_key(|m| (m.major, m.minor, m.mount_id));
    v.dedup_by_key(|m| (m.major, m.minor));
    v
}

/// The mount a path (a loop device's backing file) lives on, by string:
/// the longest mount point that prefixes it, in the namespace of the
/// first process (the init's, where losetup's path was printed).
pub fn mount_of_path<'a>(snap: &'a Snapshot, path: &str) -> Option<&'a Mount> {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    match snap.processes.first() {
        Some(p) => snap.mount_at(p, path),
        None => snap
            .mounts
            .iter()
            .filter(|m| {
                m.mount_point == "/"
                    || path == m.mount_point
                    || path
                        .strip_prefix(m.mount_point.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|m| m.mount_point.len()),
    }
}

/// A device's state that means it does not complete I/O, in words.
pub fn bad_state(d: &BlockDevice) -> Option<String> {
    let s = d.state.as_deref()?;
    let bad = matches!(
        s,
        "offline"
            | "blocked"
            | "transport-offline"
            | "dead"
            | "deleting"
            | "resetting"
            | "connecting"
            | "deleting (no IO)"
    );
    bad.then(|| s.to_string())
}

/// Whether a device does not complete I/O: its counters did not move
/// with requests in flight, its state says so, or (dm) it is suspended.
pub fn not_completing(d: &BlockDevice) -> Option<String> {
    if let Some(pr) = d.progress {
        if pr.stalled() {
            return Some(format!(
                "{} request(s) in flight and none completed in {} ms",
                pr.second.in_flight, pr.interval_ms
            ));
        }
    }
    if let Some(s) = bad_state(d) {
        return Some(format!("its device state is {s}"));
    }
    if d.dm.as_ref().and_then(|x| x.suspended) == Some(true) {
        return Some("the device-mapper device is suspended: it queues all I/O".into());
    }
    None
}

/// A device in words: `loop0 (loop, backing file /mnt/f/img)`.
pub fn device_words(snap: &Snapshot, name: &str) -> String {
    let Some(d) = snap.block_device_named(name) else {
        return format!("block device {name}");
    };
    let mut notes: Vec<String> = Vec::new();
    match d.kind {
        BlockKind::Loop => notes.push(match &d.backing {
            Some(b) => format!("loop, backing file {}", b.file),
            None => "loop".into(),
        }),
        BlockKind::DeviceMapper => notes.push(match &d.dm {
            Some(x) => format!("device-mapper {}", x.name),
            None => "device-mapper".into(),
        }),
        BlockKind::Partition => {
            if let Some(p) = &d.parent {
                notes.push(format!("partition of {p}"));
            }
        }
        BlockKind::Nvme => notes.push("NVMe".into()),
        BlockKind::Md => notes.push("md RAID".into()),
        BlockKind::Nbd => notes.push("NBD".into()),
        _ => {}
    }
    if let Some(i) = d.inflight.filter(|i| i.total() > 0) {
        notes.push(format!("{} in flight", i.total()));
    }
    if let Some(why) = not_completing(d) {
        notes.push(format!("not completing I/O: {why}"));
    } else if let Some(pr) = d.progress {
        notes.push(format!(
            "{} completed in {} ms",
            pr.completed(),
            pr.interval_ms
        ));
    }
    if notes.is_empty() {
        format!("block device {name}")
    } else {
        format!("block device {name} ({})", notes.join(", "))
    }
}

/// A filesystem in words: `/mnt/x (ext4 on loop0, frozen)`.
pub fn fs_words(snap: &Snapshot, m: &Mount) -> String {
    let mut s = format!("{} ({}", m.mount_point, m.fs_type);
    if let Some(d) = device_of_mount(snap, m) {
        s.push_str(&format!(" on {d}"));
    }
    if let Some(sb) = snap.superblock(m.major, m.minor) {
        if sb.frozen.is_frozen() {
            s.push_str(", frozen");
        }
    }
    s.push(')');
    s
}

/// Where a storage wait is, for [`crate::describe_wait`]: ` on /mnt/x
/// (ext4 on loop0, frozen)`, ` on block device loop0`, or nothing.
pub fn where_words(snap: &Snapshot, p: &Process, t: &Thread) -> String {
    match target(snap, p, t) {
        Some(Target::Device { name, by }) => format!(
            " on block device {name}{}",
            if by.likely() { " (likely)" } else { "" }
        ),
        Some(tg @ Target::Filesystem { .. }) => match tg.mount(snap) {
            Some(m) => format!(
                " on {}{}",
                fs_words(snap, m),
                if tg.by().likely() { " (likely)" } else { "" }
            ),
            None => String::new(),
        },
        None => String::new(),
    }
}

/// For a loop device's worker thread (`kworker/u8:8+loop1`) waiting on
/// FUSE: the connection of its device's backing file, the device and the
/// file (the worker's request is that file's I/O).
pub fn loop_worker_fuse(snap: &Snapshot, t: &Thread) -> Option<(u32, String, String, String)> {
    if !t.flags.kthread() {
        return None;
    }
    let DeviceThread::LoopWorker(dev) = DeviceThread::of(&t.comm)? else {
        return None;
    };
    let file = snap
        .block_device_named(&dev)?
        .backing
        .as_ref()?
        .file
        .clone();
    let m = mount_of_path(snap, &file)?;
    match m.class() {
        wedge_model::FsClass::Fuse { connection, .. } => {
            Some((connection, m.mount_point.clone(), dev, file))
        }
        _ => None,
    }
}

/// The mounts whose filesystem lives on block device `dev`, one per
/// superblock.
pub fn mounts_on<'a>(snap: &'a Snapshot, dev: &str) -> Vec<&'a Mount> {
    let mut v: Vec<&Mount> = snap
        .mounts
        .iter()
        .filter(|m| device_of_mount(snap, m).as_deref() == Some(dev))
        .collect();
    v.sort_by_key(|m| m.mount_id);
    v.dedup_by_key(|m| (m.major, m.minor));
    v
}

/// The tasks whose wait-for chains reach `n`.
pub fn tasks_reaching(g: &crate::graph::Graph, n: &crate::graph::Node) -> Vec<(i32, i32)> {
    use crate::graph::Node;
    let mut seen: std::collections::HashSet<&Node> = std::collections::HashSet::new();
    let mut todo: Vec<&Node> = vec![n];
    let mut out = Vec::new();
    while let Some(x) = todo.pop() {
        for e in g.edges.iter().filter(|e| &e.to == x) {
            if seen.insert(&e.from) {
                if let Node::Task { pid, tid } = e.from {
                    out.push((pid, tid));
                }
                todo.push(&e.from);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_name_their_devices() {
        assert_eq!(
            DeviceThread::of("kworker/u8:8+loop1"),
            Some(DeviceThread::LoopWorker("loop1".into()))
        );
        assert_eq!(DeviceThread::of("kworker/u8:8-loop1"), None);
        assert_eq!(
            DeviceThread::of("loop3"),
            Some(DeviceThread::LoopWorker("loop3".into()))
        );
        // Captured here: the journal thread of an ext4 on /dev/loop0.
        assert_eq!(
            DeviceThread::of("jbd2/loop0-8"),
            Some(DeviceThread::Journal("loop0".into()))
        );
        assert_eq!(
            DeviceThread::of("jbd2/nvme0n1p2-8"),
            Some(DeviceThread::Journal("nvme0n1p2".into()))
        );
        assert_eq!(
            DeviceThread::of("xfsaild/sdb1"),
            Some(DeviceThread::Xfs("sdb1".into()))
        );
        assert_eq!(
            DeviceThread::of("kworker/u16:2+flush-7:0"),
            Some(DeviceThread::Flush(7, 0))
        );
        assert_eq!(
            DeviceThread::of("md0_raid1"),
            Some(DeviceThread::Md("md0".into()))
        );
        assert_eq!(DeviceThread::of("mdadm"), None);
        assert_eq!(DeviceThread::of("kworker/2:1+events"), None);
        assert_eq!(DeviceThread::of("loopy"), None);
    }
}
