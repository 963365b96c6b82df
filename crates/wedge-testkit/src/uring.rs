//! io_uring reads of the stalled FUSE file (seed 000: io_uring workers stuck
//! in a filesystem, process unkillable).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};
use rustix::process::Signal;

use crate::fuse::FuseDaemon;
use crate::helper::Helper;
use crate::roles::{fail, host_tid, prologue, say, sleep_forever};
use crate::{establish, proc, Error, Result, SETUP_TIMEOUT};

/// How the read is submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoUringMode {
    /// A plain IORING_OP_READ.
    Plain,
    /// IORING_OP_READ with IOSQE_ASYNC: always executed by an io-wq worker.
    Async,
    /// A plain read on a ring created with IORING_SETUP_SQPOLL (a kernel
    /// `iou-sqp-<pid>` thread does the submission).
    Sqpoll,
}

impl IoUringMode {
    fn arg(self) -> &'static str {
        match self {
            IoUringMode::Plain => "plain",
            IoUringMode::Async => "async",
            IoUringMode::Sqpoll => "sqpoll",
        }
    }
}

/// Body of role `wk-uring`: argv = [path, mode].
pub(crate) fn uring_main(path: &OsStr, mode: &OsStr) -> ! {
    prologue("wk-uring");
    let mode = mode.to_string_lossy();
    let file = File::open(path).unwrap_or_else(|e| fail(format!("open {path:?}: {e}")));
    let mut builder = IoUring::builder();
    if mode == "sqpoll" {
        builder.setup_sqpoll(2000);
    }
    let mut ring: IoUring = match builder.build(8) {
        Ok(r) => r,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            say(&format!("skip io_uring_setup: {e}"));
            std::process::exit(0)
        }
        Err(e) => fail(format!("io_uring_setup: {e}")),
    };
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
    let mut sqe = opcode::Read::new(types::Fd(file.as_raw_fd()), buf.as_mut_ptr(), 4096)
        .offset(0)
        .build()
        .user_data(7);
    if mode == "async" {
        sqe = sqe.flags(squeue::Flags::ASYNC);
    }
    // SAFETY: the buffer is leaked ('static) and `file` lives until this
    // function diverges, so both outlive the request.
    if unsafe { ring.submission().push(&sqe) }.is_err() {
        fail("submission queue full");
    }
    // Announce before io_uring_enter(): in plain mode the submitting thread
    // itself may block in the FUSE read (see IoUringOnFuse).
    say(&format!("submitting tid={}", host_tid()));
    let r = ring.submit_and_wait(1);
    let res = ring.completion().next().map(|c| c.result());
    say(&format!("completed wait={r:?} result={res:?}"));
    drop(file);
    sleep_forever()
}

/// One thread of the io_uring process, as `/proc` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadView {
    /// Thread id.
    pub tid: i32,
    /// comm (`wk-uring`, `iou-wrk-<pid>`, `iou-sqp-<pid>`).
    pub comm: String,
    /// State letter.
    pub state: Option<char>,
    /// wchan.
    pub wchan: String,
    /// stat flags.
    pub flags: u32,
    /// Function names of /proc/TID/stack.
    pub stack: Vec<String>,
}

/// A process (`wk-uring`) with an io_uring READ of `stall` in flight.
///
/// Which task ends up waiting depends on the mode. Observed on 6.18 (flags
/// below: main `0x400100`, io threads `0x404050` = PF_IO_WORKER 0x10 |
/// PF_FORKNOEXEC | PF_USER_WORKER 0x4000 | PF_RANDOMIZE):
///
/// - `Plain`: the read is issued *inline* by the submitting thread: the main
///   thread itself is `S` in `request_wait_answer`, stack
///   `request_wait_answer, __fuse_simple_request, fuse_direct_io,
///   fuse_direct_IO, __io_read, io_read, __io_issue_sqe, io_issue_sqe,
///   io_submit_sqes, __do_sys_io_uring_enter, do_syscall_64, ...`. No io
///   thread exists. After SIGKILL: `D`, same stack, SigPnd and ShdPnd
///   `0x100` (like a plain read(2)).
/// - `Async` (IOSQE_ASYNC): an io-wq worker `iou-wrk-<pid>` is `S` in
///   `request_wait_answer`, stack `... io_read, __io_issue_sqe,
///   io_issue_sqe, io_wq_submit_work, io_worker_handle_work, io_wq_worker,
///   ret_from_fork, ret_from_fork_asm`; main thread `S` in `io_cqring_wait`.
///   After SIGKILL: worker `D` (SigPnd/ShdPnd `0x100`), main thread `D`,
///   wchan `io_wq_put_and_exit`, stack `io_wq_put_and_exit,
///   io_uring_clean_tctx, io_uring_cancel_generic, do_exit, do_group_exit,
///   get_signal, ...`, SigPnd `0`, ShdPnd `0x100`, flags `0x400508`: *no
///   PF_EXITING yet* (io_uring_files_cancel() runs in do_exit() before
///   exit_signals() sets it).
/// - `Sqpoll`: the SQ thread `iou-sqp-<pid>` issues the read inline and is
///   itself `S` in `request_wait_answer` (stack `... io_read,
///   __io_issue_sqe, io_issue_sqe, io_submit_sqes, io_sq_thread,
///   ret_from_fork, ...`); main thread `S` in `io_cqring_wait`. After
///   SIGKILL: `iou-sqp` `D` (SigPnd/ShdPnd `0x100`), main thread `D`, wchan
///   `io_uring_del_tctx_node`, stack `io_uring_del_tctx_node,
///   io_uring_clean_tctx, io_uring_cancel_generic, do_exit, ...`, ShdPnd
///   `0x100`, flags `0x400508` (seed 000's "task iou-sqp-N blocked").
///
/// In every mode the process cannot finish dying until the daemon answers.
#[derive(Debug)]
pub struct IoUringOnFuse<'a> {
    fs: &'a FuseDaemon,
    /// The process.
    pub pid: i32,
    /// Submission mode.
    pub mode: IoUringMode,
    /// The task that issued the FUSE_READ (the daemon saw its tid).
    pub blocked_tid: i32,
    helper: Helper,
}

impl<'a> IoUringOnFuse<'a> {
    /// Submit the read and wait until some thread of the process sleeps in
    /// `request_wait_answer`.
    pub fn start(fs: &'a FuseDaemon, mode: IoUringMode) -> Result<IoUringOnFuse<'a>> {
        match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
            Ok(v) if v.trim() == "2" => {
                return Err(Error::skip(
                    "io_uring disabled (kernel.io_uring_disabled=2)",
                ))
            }
            _ => {}
        }
        let helper = Helper::spawn("wk-uring", &[fs.path("stall").into(), mode.arg().into()])?;
        let pid = helper.pid();
        let mut me = IoUringOnFuse {
            fs,
            pid,
            mode,
            blocked_tid: 0,
            helper,
        };
        me.helper.wait_line("submitting", SETUP_TIMEOUT)?;
        let p = fs.wait_parked_by("READ from the io_uring process", SETUP_TIMEOUT, |p| {
            p.op == "READ" && proc::tids_of(pid).contains(&p.pid)
        })?;
        let blocked_tid = p.pid;
        me.blocked_tid = blocked_tid;
        establish(
            "io_uring read in FUSE",
            SETUP_TIMEOUT,
            &[blocked_tid],
            || proc::blocked_in(blocked_tid, "request_wait_answer"),
        )?;
        Ok(me)
    }

    /// Every thread of the process as `/proc` shows it now.
    pub fn threads(&self) -> Vec<ThreadView> {
        proc::tids_of(self.pid)
            .into_iter()
            .map(|tid| ThreadView {
                tid,
                comm: proc::comm_of(tid).unwrap_or_default(),
                state: proc::state_of(tid),
                wchan: proc::wchan_of(tid).unwrap_or_default(),
                flags: proc::flags_of(tid).unwrap_or(0),
                stack: proc::stack_of(tid),
            })
            .collect()
    }

    /// SIGKILL the process and wait until every thread other than the one
    /// blocked in FUSE has entered `do_exit()` (or is gone); the blocked one
    /// stays blocked until the daemon answers.
    pub fn sigkill(&self) -> Result<()> {
        self.helper.signal(Signal::KILL);
        let (pid, blocked) = (self.pid, self.blocked_tid);
        let others = || {
            proc::tids_of(pid)
                .into_iter()
                .filter(|&t| {
                    t != blocked && !proc::comm_of(t).unwrap_or_default().starts_with("iou-")
                })
                .collect::<Vec<_>>()
        };
        let tids = others();
        establish("io_uring process exiting", SETUP_TIMEOUT, &tids, || {
            others()
                .iter()
                .all(|&t| proc::blocked_in(t, "do_exit") || proc::state_of(t) == Some('Z'))
        })
    }
}

impl Drop for IoUringOnFuse<'_> {
    fn drop(&mut self) {
        self.helper.signal(Signal::KILL);
        let mut tids = proc::tids_of(self.pid);
        tids.push(self.pid);
        self.fs.unstick(&tids, Duration::from_secs(3));
        self.helper.kill(Duration::from_secs(2));
    }
}
