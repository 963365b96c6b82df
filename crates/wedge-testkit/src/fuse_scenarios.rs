//! Scenarios built on a [`FuseDaemon`] whose requests are parked.
//!
//! All of them borrow the daemon, so the borrow checker guarantees the daemon
//! outlives them; their `Drop` SIGKILLs their helpers and then answers the
//! daemon's parked requests (repeatedly, aborting the connection as a last
//! resort) until the helpers are gone. The daemon keeps parking afterwards.

use std::time::Duration;

use rustix::process::Signal;

use crate::fuse::FuseDaemon;
use crate::helper::{kv_i32, Helper};
use crate::{establish, proc, Result, SETUP_TIMEOUT};

const UNSTICK: Duration = Duration::from_secs(3);

/// A process (`wk-reader`) blocked in `read(2)` of `stall`: the daemon holds
/// the FUSE_READ.
///
/// Observed on 6.18 before SIGKILL: state `S`, wchan `request_wait_answer`,
/// stack `request_wait_answer, __fuse_simple_request, fuse_direct_io,
/// fuse_file_read_iter, vfs_read, ksys_read, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`, flags `0x400000`, SigPnd/ShdPnd `0`,
/// fusectl `waiting` = 1.
///
/// After [`FuseReader::sigkill`]: state `D`, wchan and stack unchanged, flags
/// unchanged (no PF_EXITING: it never got to do_exit), `SigPnd:
/// 0000000000000100` and `ShdPnd: 0000000000000100` (SIGKILL pending
/// process-wide and, via complete_signal(), per-thread). The interruptible
/// wait was broken by the signal, FUSE_INTERRUPT was queued, and since the
/// request had already been read by the daemon (FR_SENT) the task fell
/// through to the final uninterruptible `wait_event()`. It stays `D` until
/// the daemon answers or the connection is aborted (then `read()` fails
/// with ECONNABORTED, errno 103, if it was not killed).
///
/// A second reader started on the same daemon *after* such an interrupt is
/// `D` from the start (same wchan/stack, SigPnd/ShdPnd `0`): see the
/// `no_interrupt` caveat on [`FuseDaemon`].
#[derive(Debug)]
pub struct FuseReader<'a> {
    fs: &'a FuseDaemon,
    /// The reader (single-threaded: pid == tid).
    pub pid: i32,
    helper: Helper,
}

impl<'a> FuseReader<'a> {
    /// Start the reader and wait until it sleeps in `request_wait_answer`.
    pub fn start(fs: &'a FuseDaemon) -> Result<FuseReader<'a>> {
        let helper = Helper::spawn("wk-reader", &[fs.path("stall").into()])?;
        let pid = helper.pid();
        let me = FuseReader { fs, pid, helper };
        me.helper.wait_line("opened", SETUP_TIMEOUT)?;
        fs.wait_parked("READ", Some(pid), SETUP_TIMEOUT)?;
        establish(
            "reader in request_wait_answer",
            SETUP_TIMEOUT,
            &[pid],
            || {
                proc::blocked_in(pid, "request_wait_answer")
                    && matches!(proc::state_of(pid), Some('S' | 'D'))
            },
        )?;
        Ok(me)
    }

    /// SIGKILL the reader and wait until it is `D` (it cannot die until the
    /// daemon answers or the connection is aborted).
    pub fn sigkill(&self) -> Result<()> {
        self.helper.signal(Signal::KILL);
        let pid = self.pid;
        establish("killed reader in D", SETUP_TIMEOUT, &[pid], || {
            proc::state_of(pid) == Some('D') && proc::blocked_in(pid, "request_wait_answer")
        })
    }

    /// The `read-done ...` line once the read returned (after release/abort).
    pub fn wait_read_done(&self, timeout: Duration) -> Result<String> {
        self.helper.wait_line("read-done", timeout)
    }
}

impl Drop for FuseReader<'_> {
    fn drop(&mut self) {
        self.helper.signal(Signal::KILL);
        self.fs.unstick(&[self.pid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}

/// A process (`wk-mmaplock`) whose `mmap_lock` is held across a FUSE wait, so
/// that `/proc/PID/cmdline` (and `ps`) block.
///
/// Thread `wk-memread` reads the process's own `/proc/self/mem` at the
/// address of a `MAP_PRIVATE` mapping of `stall`: `access_remote_vm()` takes
/// mmap_lock for read and faults the page in through `fuse_read_folio()`
/// without being allowed to drop the lock. Thread `wk-mmapper` then calls
/// `mmap()` and queues for the write lock; any later reader of the lock (here
/// `wk-cmdline`, reading `/proc/PID/cmdline`) queues behind that writer.
///
/// Observed on 6.18:
/// - `wk-memread`: `S`, wchan `request_wait_answer`, stack
///   `request_wait_answer, __fuse_simple_request, fuse_do_readfolio.isra.0,
///   fuse_read_folio, filemap_read_folio, filemap_fault, __do_fault,
///   do_fault, __handle_mm_fault, handle_mm_fault, __get_user_pages,
///   get_user_pages_remote, __access_remote_vm, mem_rw, vfs_read,
///   __x64_sys_pread64, do_syscall_64, entry_SYSCALL_64_after_hwframe`.
/// - `wk-mmapper`: `D`, wchan `vm_mmap_pgoff`, stack `vm_mmap_pgoff,
///   do_syscall_64, entry_SYSCALL_64_after_hwframe` (the rwsem slow path is
///   a scheduler function: neither wchan nor the stack shows it).
/// - `wk-cmdline`: `D`, wchan `__access_remote_vm`, stack
///   `__access_remote_vm, proc_pid_cmdline_read, vfs_read, ksys_read,
///   do_syscall_64, entry_SYSCALL_64_after_hwframe`.
/// - `timeout 2 cat /proc/PID/cmdline` exits 124 after 2 s (`ps` would hang
///   the same way). `/proc/PID/{stat,status,wchan,stack}` stay readable.
#[derive(Debug)]
pub struct MmapLockHolder<'a> {
    fs: &'a FuseDaemon,
    /// The process whose mmap_lock is wedged.
    pub pid: i32,
    /// Thread holding mmap_lock (read) while waiting for FUSE.
    pub memread_tid: i32,
    /// Thread waiting for mmap_lock (write) in `mmap()`.
    pub mmapper_tid: i32,
    /// A separate process blocked reading `/proc/<pid>/cmdline`.
    pub cmdline_reader_pid: i32,
    /// Address of the FUSE-backed mapping.
    pub addr: usize,
    helper: Helper,
    cmdline: Option<Helper>,
}

impl<'a> MmapLockHolder<'a> {
    /// Build the whole chain; returns once all three waiters are in place.
    pub fn start(fs: &'a FuseDaemon) -> Result<MmapLockHolder<'a>> {
        let helper = Helper::spawn("wk-mmaplock", &[fs.path("stall").into()])?;
        let kv = helper.wait_kv("tids", SETUP_TIMEOUT)?;
        let mut me = MmapLockHolder {
            fs,
            pid: helper.pid(),
            memread_tid: kv_i32(&kv, "memread")?,
            mmapper_tid: kv_i32(&kv, "mmapper")?,
            cmdline_reader_pid: 0,
            addr: kv
                .get("addr")
                .and_then(|a| usize::from_str_radix(a.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0),
            helper,
            cmdline: None,
        };
        let (r, w) = (me.memread_tid, me.mmapper_tid);
        me.helper.send("a")?;
        fs.wait_parked("READ", Some(r), SETUP_TIMEOUT)?;
        establish(
            "memread in request_wait_answer",
            SETUP_TIMEOUT,
            &[r],
            || proc::blocked_in(r, "request_wait_answer"),
        )?;
        me.helper.send("b")?;
        establish("mmapper queued for mmap_lock", SETUP_TIMEOUT, &[w], || {
            proc::state_of(w) == Some('D') && proc::asleep(w)
        })?;
        let c = Helper::spawn("wk-cmdline", &[me.pid.to_string().into()])?;
        let cpid = c.pid();
        me.cmdline_reader_pid = cpid;
        me.cmdline = Some(c);
        if let Some(c) = &me.cmdline {
            c.wait_line("reading", SETUP_TIMEOUT)?;
        }
        establish("cmdline reader blocked", SETUP_TIMEOUT, &[cpid], || {
            proc::state_of(cpid) == Some('D') && proc::asleep(cpid)
        })?;
        Ok(me)
    }
}

impl Drop for MmapLockHolder<'_> {
    fn drop(&mut self) {
        // The cmdline reader and the mmapper sleep killable: they die at once.
        if let Some(c) = self.cmdline.take() {
            c.kill(Duration::from_secs(2));
        }
        self.helper.signal(Signal::KILL);
        self.fs
            .unstick(&[self.pid, self.memread_tid, self.mmapper_tid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}

/// Seed 001 without the pid namespace: a process (`wk-flusher`) whose leader
/// thread exited (zombie leader) and whose other thread (`wk-flush-thr`)
/// called `exit_group()` and, dropping the last reference to the fd table in
/// `do_exit()`, is stuck in `fuse_flush()` on `flushstall`.
///
/// Observed on 6.18: leader `Z` (wchan `0`, empty stack, flags `0x40800c`);
/// thread `wk-flush-thr`: state `S` (interruptible phase of
/// request_wait_answer(): nothing is pending), wchan `request_wait_answer`,
/// stack `request_wait_answer, __fuse_simple_request, fuse_flush,
/// filp_flush, filp_close, put_files_struct.part.0, do_exit, do_group_exit,
/// __x64_sys_exit_group, x64_sys_call, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`, stat flags `0x40004c` (PF_EXITING 0x4 |
/// PF_POSTCOREDUMP 0x8 | PF_FORKNOEXEC 0x40 | PF_RANDOMIZE). A SIGKILL sent
/// afterwards is *dropped*: since 5.17 prepare_signal() discards every
/// signal to a group with SIGNAL_GROUP_EXIT, so SigPnd and ShdPnd stay
/// `0000000000000000` and the state stays `S` (unlike the 5.x kernel of the
/// Netflix post, which showed `ShdPnd: ...100`).
#[derive(Debug)]
pub struct ExitWhileFlushing<'a> {
    fs: &'a FuseDaemon,
    /// Pid of the process (its leader is a zombie).
    pub pid: i32,
    /// Tid of the thread stuck in fuse_flush.
    pub tid: i32,
    helper: Helper,
}

impl<'a> ExitWhileFlushing<'a> {
    /// Build it; returns once the thread sits in `fuse_flush` with PF_EXITING.
    pub fn start(fs: &'a FuseDaemon) -> Result<ExitWhileFlushing<'a>> {
        let helper = Helper::spawn("wk-flusher", &[fs.path("flushstall").into()])?;
        let kv = helper.wait_kv("threads", SETUP_TIMEOUT)?;
        let me = ExitWhileFlushing {
            fs,
            pid: kv_i32(&kv, "leader")?,
            tid: kv_i32(&kv, "thread")?,
            helper,
        };
        let (pid, tid) = (me.pid, me.tid);
        fs.wait_parked("FLUSH", Some(tid), SETUP_TIMEOUT)?;
        establish("exit while flushing", SETUP_TIMEOUT, &[pid, tid], || {
            proc::state_of(pid) == Some('Z')
                && proc::blocked_in(tid, "fuse_flush")
                && proc::flags_of(tid).is_some_and(|f| f & proc::PF_EXITING != 0)
        })?;
        Ok(me)
    }

    /// Send SIGKILL to the process (it will be dropped by the kernel).
    pub fn sigkill(&self) {
        self.helper.signal(Signal::KILL);
    }
}

impl Drop for ExitWhileFlushing<'_> {
    fn drop(&mut self) {
        self.fs.unstick(&[self.tid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}

/// Two processes creating files in `stalldir`: the first (`wk-creator`)
/// waits for the daemon with the directory's inode lock (`i_rwsem`) held
/// exclusively (open_last_lookups() takes it for O_CREAT), the second queues
/// on that lock.
///
/// Observed on 6.18: first: `S`, wchan `request_wait_answer`, stack
/// `request_wait_answer, __fuse_simple_request, fuse_lookup_name,
/// fuse_lookup, fuse_atomic_open, path_openat, do_filp_open,
/// do_sys_openat2, __x64_sys_openat, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`; the daemon holds a LOOKUP (ino 4 =
/// `stalldir`, pid = first). Second: `D` (plain `down_write()`: not even
/// killable), wchan `path_openat`, stack `path_openat, do_filp_open,
/// do_sys_openat2, __x64_sys_openat, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`: the rwsem slow path is a scheduler
/// function, hidden from both wchan and the stack; no FUSE request of its
/// own.
#[derive(Debug)]
pub struct InodeLockQueue<'a> {
    fs: &'a FuseDaemon,
    /// Creator holding the directory lock, waiting for FUSE.
    pub first_pid: i32,
    /// Creator queued on the directory lock.
    pub second_pid: i32,
    first: Helper,
    second: Option<Helper>,
}

impl<'a> InodeLockQueue<'a> {
    /// Build it; returns once the second creator is `D`.
    pub fn start(fs: &'a FuseDaemon) -> Result<InodeLockQueue<'a>> {
        let first = Helper::spawn("wk-creator", &[fs.path("stalldir/first").into()])?;
        let first_pid = first.pid();
        let mut me = InodeLockQueue {
            fs,
            first_pid,
            second_pid: 0,
            first,
            second: None,
        };
        me.first.wait_line("creating", SETUP_TIMEOUT)?;
        fs.wait_parked_any(&["LOOKUP", "CREATE"], Some(first_pid), SETUP_TIMEOUT)?;
        establish("first creator waits", SETUP_TIMEOUT, &[first_pid], || {
            proc::blocked_in(first_pid, "request_wait_answer")
        })?;
        let second = Helper::spawn("wk-creator", &[fs.path("stalldir/second").into()])?;
        let second_pid = second.pid();
        second.wait_line("creating", SETUP_TIMEOUT)?;
        me.second_pid = second_pid;
        me.second = Some(second);
        establish(
            "second creator queued",
            SETUP_TIMEOUT,
            &[second_pid],
            || proc::state_of(second_pid) == Some('D') && proc::asleep(second_pid),
        )?;
        Ok(me)
    }
}

impl Drop for InodeLockQueue<'_> {
    fn drop(&mut self) {
        self.first.signal(Signal::KILL);
        if let Some(s) = &self.second {
            s.signal(Signal::KILL);
        }
        let mut tids = vec![self.first_pid];
        tids.extend(self.second.as_ref().map(Helper::pid));
        self.fs.unstick(&tids, UNSTICK);
        self.first.kill(Duration::from_secs(2));
        if let Some(s) = self.second.take() {
            s.kill(Duration::from_secs(2));
        }
    }
}

/// A process (`wk-mtreader`) whose second thread (`wk-mtread`) is blocked in
/// `read(2)` of `stall`; [`FuseThreadReader::sigkill`] then makes the leader
/// exit while the reading thread stays in the FUSE wait.
///
/// After SIGKILL the leader is `Z` (a group leader stays a zombie until
/// its last thread is gone) and exit_files() has cleared its `files`:
/// `/proc/PID/fd` lists nothing, while `/proc/PID/task/TID/fd` of the
/// reading thread still shows the shared table, `stall` included. The
/// thread is `D` in `request_wait_answer` (the daemon had read the request:
/// FR_SENT), its `syscall` file naming `read` and the fd.
#[derive(Debug)]
pub struct FuseThreadReader<'a> {
    fs: &'a FuseDaemon,
    /// The process (its leader).
    pub pid: i32,
    /// The thread blocked in the read.
    pub tid: i32,
    helper: Helper,
}

impl<'a> FuseThreadReader<'a> {
    /// Start it and wait until the reading thread sleeps in
    /// `request_wait_answer`.
    pub fn start(fs: &'a FuseDaemon) -> Result<FuseThreadReader<'a>> {
        let helper = Helper::spawn("wk-mtreader", &[fs.path("stall").into()])?;
        let kv = helper.wait_kv("opened", SETUP_TIMEOUT)?;
        let me = FuseThreadReader {
            fs,
            pid: kv_i32(&kv, "leader")?,
            tid: kv_i32(&kv, "thread")?,
            helper,
        };
        let tid = me.tid;
        fs.wait_parked("READ", Some(tid), SETUP_TIMEOUT)?;
        establish(
            "reading thread in request_wait_answer",
            SETUP_TIMEOUT,
            &[tid],
            || proc::blocked_in(tid, "request_wait_answer"),
        )?;
        Ok(me)
    }

    /// SIGKILL the process and wait until the leader is a zombie and the
    /// reading thread is `D`.
    pub fn sigkill(&self) -> Result<()> {
        self.helper.signal(Signal::KILL);
        let (pid, tid) = (self.pid, self.tid);
        establish(
            "zombie leader, reading thread in D",
            SETUP_TIMEOUT,
            &[pid, tid],
            || {
                proc::state_of(pid) == Some('Z')
                    && proc::state_of(tid) == Some('D')
                    && proc::blocked_in(tid, "request_wait_answer")
            },
        )
    }
}

impl Drop for FuseThreadReader<'_> {
    fn drop(&mut self) {
        self.helper.signal(Signal::KILL);
        self.fs.unstick(&[self.pid, self.tid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}

/// A process (`wk-statter`) whose cwd is the mount's root and which calls
/// `stat("stalldir/x")`: the daemon parks the LOOKUP, and the process has
/// no file open on the mount (a path lookup holds only its cwd and the
/// dentries it walks).
///
/// Observed on 6.18: `S`, wchan `request_wait_answer`, stack
/// `request_wait_answer, __fuse_simple_request, fuse_lookup_name,
/// fuse_lookup, lookup_one_qstr_excl / __lookup_slow, walk_component,
/// path_lookupat, filename_lookup, vfs_statx, do_statx / vfs_fstatat,
/// __do_sys_newfstatat, do_syscall_64, …`; `syscall` names `newfstatat`
/// (or `statx`) with dirfd AT_FDCWD (`0xffffff9c`).
#[derive(Debug)]
pub struct FuseStatWaiter<'a> {
    fs: &'a FuseDaemon,
    /// The waiter (single-threaded: pid == tid).
    pub pid: i32,
    helper: Helper,
}

impl<'a> FuseStatWaiter<'a> {
    /// Start it and wait until it sleeps in `request_wait_answer`.
    pub fn start(fs: &'a FuseDaemon) -> Result<FuseStatWaiter<'a>> {
        let helper = Helper::spawn("wk-statter", &[fs.mountpoint().into(), "stalldir/x".into()])?;
        let pid = helper.pid();
        let me = FuseStatWaiter { fs, pid, helper };
        me.helper.wait_line("stating", SETUP_TIMEOUT)?;
        fs.wait_parked("LOOKUP", Some(pid), SETUP_TIMEOUT)?;
        establish(
            "stat waiter in request_wait_answer",
            SETUP_TIMEOUT,
            &[pid],
            || proc::blocked_in(pid, "request_wait_answer"),
        )?;
        Ok(me)
    }
}

impl Drop for FuseStatWaiter<'_> {
    fn drop(&mut self) {
        self.helper.signal(Signal::KILL);
        self.fs.unstick(&[self.pid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}

/// Two threads of one process (`wk-lister`) list `liststall/` through ONE
/// fd while the daemon never answers READDIR.
///
/// getdents64() goes through fdget_pos(): the directory was opened with
/// FMODE_ATOMIC_POS (every regular file and directory is) and, the fd table
/// being shared by two threads, the file's reference count is above one (a
/// directory with `iterate_shared` takes it regardless since 6.x), so it takes
/// the file's `f_pos_lock` with a plain `mutex_lock()`. Then iterate_dir() ->
/// fuse_readdir() sends FUSE_READDIR and waits. The first thread
/// (`wk-list-a`) thus holds `f_pos_lock` while it sleeps in
/// `request_wait_answer`; the second (`wk-list-b`) sleeps in the mutex slow
/// path, TASK_UNINTERRUPTIBLE (`D`, not even killable), and has no FUSE
/// request of its own. With CONFIG_DETECT_HUNG_TASK_BLOCKER its
/// `task->blocker` names the mutex, whose `owner` is the first thread.
///
/// Observed on 6.18: first: `S`, wchan `request_wait_answer`, stack
/// `request_wait_answer, __fuse_simple_request, fuse_readdir_uncached,
/// iterate_dir, __x64_sys_getdents64, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`; the daemon holds one READDIR (ino 6,
/// pid = first). Second: `D`, wchan `fdget_pos`, stack `fdget_pos,
/// __x64_sys_getdents64, do_syscall_64, entry_SYSCALL_64_after_hwframe` (the
/// mutex slow path is a scheduler function: neither shows it, nor who owns
/// the mutex); flags `0x400040` for both.
#[derive(Debug)]
pub struct FposLockQueue<'a> {
    fs: &'a FuseDaemon,
    /// The process (its leader only forwards commands to the threads).
    pub pid: i32,
    /// Thread holding `f_pos_lock`, waiting for the daemon's READDIR answer.
    pub first_tid: i32,
    /// Thread queued on `f_pos_lock` (D in `mutex_lock`).
    pub second_tid: i32,
    /// The FUSE daemon (`wk-fused`) that holds the READDIR.
    pub daemon_pid: i32,
    helper: Helper,
}

impl<'a> FposLockQueue<'a> {
    /// Build it; returns once the first thread's READDIR is parked and the
    /// second thread is `D`.
    pub fn start(fs: &'a FuseDaemon) -> Result<FposLockQueue<'a>> {
        let helper = Helper::spawn("wk-lister", &[fs.path("liststall").into()])?;
        let kv = helper.wait_kv("tids", SETUP_TIMEOUT)?;
        let me = FposLockQueue {
            fs,
            pid: helper.pid(),
            first_tid: kv_i32(&kv, "first")?,
            second_tid: kv_i32(&kv, "second")?,
            daemon_pid: fs.daemon_pid(),
            helper,
        };
        let (a, b) = (me.first_tid, me.second_tid);
        me.helper.send("a")?;
        fs.wait_parked("READDIR", Some(a), SETUP_TIMEOUT)?;
        establish(
            "first lister waits for READDIR",
            SETUP_TIMEOUT,
            &[a],
            || proc::blocked_in(a, "request_wait_answer"),
        )?;
        me.helper.send("b")?;
        establish(
            "second lister queued on f_pos_lock",
            SETUP_TIMEOUT,
            &[b],
            || proc::state_of(b) == Some('D') && proc::asleep(b),
        )?;
        if fs.parked().iter().any(|p| p.pid == b) {
            return Err(crate::Error::setup(
                "second lister has a FUSE request of its own: not queued on f_pos_lock",
            ));
        }
        Ok(me)
    }
}

impl Drop for FposLockQueue<'_> {
    fn drop(&mut self) {
        // The second thread cannot die before it gets the mutex: answering
        // the first thread's READDIR lets it go (its own READDIR, if it sends
        // one before the SIGKILL lands, is answered by the next round).
        self.helper.signal(Signal::KILL);
        self.fs
            .unstick(&[self.pid, self.first_tid, self.second_tid], UNSTICK);
        self.helper.kill(Duration::from_secs(2));
    }
}
