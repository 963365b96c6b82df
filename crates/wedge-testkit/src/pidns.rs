//! PID-namespace scenarios. A launcher helper (`wk-pidns-launch`) calls
//! `unshare(CLONE_NEWPID)` and forks: its child is PID 1 ("init") of the new
//! namespace. The launcher reports `init pid=<host pid>`, waits for the init,
//! reports `init-exited raw=<wait status>` and then sleeps.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::process::Signal;

use crate::fuse::FuseDaemon;
use crate::helper::{self, kv_i32, ExitInfo, Helper};
use crate::kmsg::KmsgTail;
use crate::roles::{fail, prologue, say, set_comm, sleep_forever, spawn_role};
use crate::{establish, proc, Error, Result, SETUP_TIMEOUT};

/// Body of role `wk-pidns-launch`: argv = [mode, path?].
pub(crate) fn launcher_main(args: &[OsString]) -> ! {
    prologue("wk-pidns-launch");
    let mode = args
        .first()
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = args.get(1).cloned().unwrap_or_default();
    // SAFETY: CLONE_NEWPID only changes the namespace of children forked
    // from now on; it does not split the fd table (the hazard the unsafe
    // marker is about).
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWPID) }
    {
        say(&format!("skip unshare(CLONE_NEWPID): {e}"));
        std::process::exit(0);
    }
    // SAFETY: a role process is single-threaded here (it was just exec'ed and
    // has spawned no thread), so the child may keep running Rust code.
    let child = unsafe { libc::fork() };
    if child < 0 {
        fail(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        init_main(&mode, path)
    }
    say(&format!("init pid={child}"));
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only our status int.
        let r = unsafe { libc::waitpid(child, &mut status, libc::__WALL) };
        if r == child {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            fail("waitpid init failed");
        }
    }
    say(&format!("init-exited raw={status}"));
    sleep_forever()
}

/// Wait for a `go` line on stdin (raw reads, no buffering shared with the
/// launcher); EOF means the test went away.
fn wait_go() {
    let stdin = std::io::stdin();
    loop {
        let mut b = [0u8; 1];
        match rustix::io::read(stdin.as_fd(), &mut b) {
            Ok(1) if b[0] == b'\n' => return,
            Ok(1) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            _ => std::process::exit(0),
        }
    }
}

fn init_main(mode: &str, path: OsString) -> ! {
    // We are PID 1 of the new namespace; die if the launcher dies.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    set_comm("wk-nsinit");
    match mode {
        "sleep" => sleep_forever(),
        "abort" => {
            wait_go();
            // glibc abort(): raise(SIGABRT) is ignored by a pid-namespace init
            // (SIGNAL_UNKILLABLE + SIG_DFL, sent from inside its namespace),
            // so glibc falls through to its ABORT_INSTRUCTION (`hlt`), which
            // faults with #GP in user mode; the kernel forces SIGSEGV and
            // force_sig_info_to_task() clears SIGNAL_UNKILLABLE.
            std::process::abort()
        }
        "fuseflush" => {
            if let Err(e) = spawn_role("wk-flusher", &[path.as_os_str()], true) {
                fail(format!("spawn flusher: {e}"));
            }
            wait_go();
            // exit_group(): do_exit() -> exit_notify() -> zap_pid_ns_processes()
            std::process::exit(0)
        }
        other => fail(format!("unknown pidns mode {other}")),
    }
}

/// Body of role `wk-setns`: argv = [path of a `/proc/TID/ns/pid` file]. Join
/// that pid namespace (for children) and try to fork into it, like
/// `docker exec`'s setns process does; report `forked errno=<n>` (0 on
/// success, the child exiting at once).
pub(crate) fn setns_fork_main(ns_path: &OsStr) -> ! {
    prologue("wk-setns");
    let f = std::fs::File::open(ns_path).unwrap_or_else(|e| fail(format!("open {ns_path:?}: {e}")));
    if let Err(e) = rustix::thread::move_into_link_name_space(
        f.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::ProcessID),
    ) {
        say(&format!("setns errno={}", e.raw_os_error()));
        sleep_forever()
    }
    // SAFETY: single-threaded role process; the child only calls _exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    let errno = if child < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        let mut st = 0;
        // SAFETY: waitpid writes only our status int.
        unsafe { libc::waitpid(child, &mut st, 0) };
        0
    };
    say(&format!("forked errno={errno}"));
    sleep_forever()
}

fn launch(mode: &str, extra: Option<OsString>) -> Result<(Helper, i32)> {
    crate::require_root()?;
    let mut args: Vec<OsString> = vec![mode.into()];
    args.extend(extra);
    let launcher = Helper::spawn("wk-pidns-launch", &args)?;
    let kv = launcher.wait_kv("init", SETUP_TIMEOUT)?;
    let init_pid = kv_i32(&kv, "pid")?;
    establish("pidns init", SETUP_TIMEOUT, &[init_pid], || {
        proc::comm_of(init_pid).as_deref() == Some("wk-nsinit")
            && proc::nspid_of(init_pid).last() == Some(&1)
            && proc::asleep(init_pid)
    })?;
    Ok((launcher, init_pid))
}

fn teardown(launcher: &Helper, init_pid: i32) {
    // SIGKILL from an ancestor namespace is never ignored by the init; its
    // death tears the namespace down.
    helper::signal(init_pid, Signal::KILL);
    launcher
        .wait_line("init-exited", Duration::from_secs(2))
        .ok();
    launcher.kill(Duration::from_secs(2));
    helper::reap(init_pid, Duration::from_millis(200));
}

/// PID 1 of a new pid namespace (`wk-nsinit`), sleeping in `nanosleep`.
///
/// Observed on 6.18: state `S`, wchan `hrtimer_nanosleep`, flags `0x400040`
/// (forked, never exec'ed), status `NSpid:\t<host pid>\t1`; its parent is
/// the launcher (`wk-pidns-launch`, `S`, wchan `do_wait`).
#[derive(Debug)]
pub struct PidnsInit {
    /// Host pid of the namespace's init.
    pub init_pid: i32,
    /// The `NSpid:` values: `[host pid, 1]`.
    pub nspid: Vec<i32>,
    /// The raw `NSpid:` value from status (tab separated).
    pub nspid_line: String,
    launcher: Helper,
}

impl PidnsInit {
    /// Build it; returns once the init runs and shows NSpid `... 1`.
    pub fn start() -> Result<PidnsInit> {
        let (launcher, init_pid) = launch("sleep", None)?;
        Ok(PidnsInit {
            init_pid,
            nspid: proc::nspid_of(init_pid),
            nspid_line: proc::status_field(init_pid, "NSpid").unwrap_or_default(),
            launcher,
        })
    }

    /// Pid of the launcher (the init's parent, outside the namespace).
    pub fn launcher_pid(&self) -> i32 {
        self.launcher.pid()
    }
}

impl Drop for PidnsInit {
    fn drop(&mut self) {
        teardown(&self.launcher, self.init_pid);
    }
}

/// PID 1 of a pid namespace that calls `abort()`. It does not die of SIGABRT:
/// see the comment in the role; it dies of SIGSEGV from the `hlt` glibc
/// executes as a last resort.
///
/// Observed on 6.18 (glibc 2.36): wait status `raw=0xb` (WTERMSIG 11, no
/// core dump), i.e. shell status 139, and `/dev/kmsg` gets exactly one
/// record: `traps: wk-nsinit[<host pid>] general protection fault
/// ip:7fbaa826c50f sp:7ffc4c8e7e80 error:0 in
/// libc.so.6[2650f,7fbaa826c000+156000]` (the pid printed is the *host*
/// pid, not 1).
#[derive(Debug)]
pub struct PidnsInitAbort {
    /// Host pid the init had.
    pub init_pid: i32,
    /// How it died, as its parent (the launcher) saw it.
    pub exit: ExitInfo,
    /// Every kernel log record logged between the abort and the end of setup.
    pub kmsg_lines: Vec<String>,
    /// The `traps: ... general protection ...` record, if it was logged.
    pub trap_line: Option<String>,
    launcher: Helper,
}

impl PidnsInitAbort {
    /// Run it to completion; returns after the init died (and its trap line
    /// was logged, waited for up to a second).
    pub fn run() -> Result<PidnsInitAbort> {
        let mut kmsg =
            KmsgTail::open().map_err(|e| Error::skip(format!("cannot read /dev/kmsg: {e}")))?;
        let (launcher, init_pid) = launch("abort", None)?;
        launcher.send("go")?;
        let raw = launcher.wait_line("init-exited", SETUP_TIMEOUT)?;
        let exit = ExitInfo {
            raw: helper::parse_kv(&raw)
                .get("raw")
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| Error::setup(format!("bad init-exited line {raw:?}")))?,
        };
        let trap_line = kmsg.wait_for(&["traps:", "general protection"], Duration::from_secs(1));
        Ok(PidnsInitAbort {
            init_pid,
            exit,
            kmsg_lines: kmsg.lines().to_vec(),
            trap_line,
            launcher,
        })
    }

    /// Pid of the launcher (the init's parent, outside the namespace).
    pub fn launcher_pid(&self) -> i32 {
        self.launcher.pid()
    }
}

/// The Netflix deadlock (seed 001): PID 1 of a pid namespace exits while a
/// process in the namespace (`wk-flusher`) is stuck in `fuse_flush()` during
/// its own exit, served by a FUSE daemon *outside* the namespace that never
/// answers.
///
/// Observed on 6.18:
/// - init `wk-nsinit`: state `S`, wchan `do_wait`, stack `do_wait,
///   kernel_wait4, zap_pid_ns_processes, do_exit, do_group_exit,
///   __x64_sys_exit_group, x64_sys_call, do_syscall_64,
///   entry_SYSCALL_64_after_hwframe` (identical to the Netflix post), flags
///   `0x40004c` (PF_EXITING), SigPnd/ShdPnd `0`.
/// - flusher leader `wk-flusher`: `Z`, flags `0x40800c`.
/// - flusher thread `wk-flush-thr`: `S`, wchan `request_wait_answer`, stack
///   `request_wait_answer, __fuse_simple_request, fuse_flush, filp_flush,
///   filp_close, put_files_struct.part.0, do_exit, do_group_exit,
///   __x64_sys_exit_group, x64_sys_call, do_syscall_64,
///   entry_SYSCALL_64_after_hwframe`, flags `0x40004c`, SigPnd/ShdPnd `0`:
///   zap_pid_ns_processes()'s SIGKILL was dropped (group already exiting).
#[derive(Debug)]
pub struct PidnsInitWithFuseThread<'a> {
    fs: &'a FuseDaemon,
    /// Host pid of the namespace init (exiting, in zap_pid_ns_processes).
    pub init_pid: i32,
    /// Host pid of the flusher process (its leader is a zombie).
    pub flusher_pid: i32,
    /// Host tid of the flusher thread stuck in fuse_flush.
    pub flusher_tid: i32,
    launcher: Helper,
}

impl<'a> PidnsInitWithFuseThread<'a> {
    /// Build it on `fs` (its `flushstall` file).
    pub fn start(fs: &'a FuseDaemon) -> Result<PidnsInitWithFuseThread<'a>> {
        let (launcher, init_pid) = launch("fuseflush", Some(fs.path("flushstall").into()))?;
        let kv = launcher.wait_kv("threads", SETUP_TIMEOUT)?;
        let flusher_pid = kv_i32(&kv, "leader")?;
        let flusher_tid = kv_i32(&kv, "thread")?;
        let me = PidnsInitWithFuseThread {
            fs,
            init_pid,
            flusher_pid,
            flusher_tid,
            launcher,
        };
        fs.wait_parked("FLUSH", Some(flusher_tid), SETUP_TIMEOUT)?;
        establish(
            "flusher stuck in fuse_flush",
            SETUP_TIMEOUT,
            &[flusher_pid, flusher_tid],
            || {
                proc::state_of(flusher_pid) == Some('Z')
                    && proc::blocked_in(flusher_tid, "fuse_flush")
            },
        )?;
        me.launcher.send("go")?;
        establish(
            "init in zap_pid_ns_processes",
            SETUP_TIMEOUT,
            &[init_pid],
            || proc::blocked_in(init_pid, "zap_pid_ns_processes"),
        )?;
        Ok(me)
    }

    /// Pid of the launcher (the init's parent, outside the namespace).
    pub fn launcher_pid(&self) -> i32 {
        self.launcher.pid()
    }

    /// What `docker exec` would hit: `setns()` into the namespace (through
    /// the stuck flusher thread's `/proc/TID/ns/pid`) and `fork()`. Returns
    /// the fork errno (0 if it worked). Observed on 6.18: setns succeeds,
    /// fork fails with ENOMEM (12) because zap_pid_ns_processes() disabled
    /// pid allocation in the namespace.
    pub fn fork_into_namespace(&self) -> Result<i32> {
        let path = format!("/proc/{}/ns/pid", self.flusher_tid);
        let h = Helper::spawn("wk-setns", &[path.into()])?;
        let line = h.wait_line_by(SETUP_TIMEOUT, "forked|setns", |l| {
            l.starts_with("forked") || l.starts_with("setns")
        })?;
        if line.starts_with("setns") {
            return Err(Error::setup(format!("setns failed: {line}")));
        }
        kv_i32(&helper::parse_kv(&line), "errno")
    }
}

impl Drop for PidnsInitWithFuseThread<'_> {
    fn drop(&mut self) {
        helper::signal(self.init_pid, Signal::KILL);
        self.fs.unstick(
            &[self.flusher_tid, self.flusher_pid, self.init_pid],
            Duration::from_secs(3),
        );
        teardown(&self.launcher, self.init_pid);
    }
}
