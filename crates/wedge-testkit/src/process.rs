//! Plain process-state scenarios: zombies, stopped and traced tasks, a vfork
//! parent. No FUSE needed; only root for ptrace of a non-child (and for
//! `/proc/PID/stack`).

use std::time::Duration;

use rustix::process::Signal;

use crate::helper::{self, kv_i32, Helper};
use crate::{establish, proc, Result, SETUP_TIMEOUT};

fn sleeper(comm: &str) -> Result<Helper> {
    let h = Helper::spawn("wk-sleeper", &[comm.into()])?;
    h.wait_line("ready", SETUP_TIMEOUT)?;
    Ok(h)
}

/// A child (`wk-zombie`) that exited and is never reaped: its parent
/// `wk-zombie-par` just sleeps.
///
/// Observed on 6.18:
/// - zombie: state `Z`, wchan `0`, `/proc/PID/stack` empty, stat flags
///   `0x40800c` (PF_EXITING 0x4 | PF_POSTCOREDUMP 0x8 | PF_NOFREEZE 0x8000 |
///   PF_RANDOMIZE 0x400000), SigPnd/ShdPnd `0`, PPid = parent, comm kept.
/// - parent: state `S`, wchan `hrtimer_nanosleep`, stack `hrtimer_nanosleep,
///   common_nsleep_timens, __x64_sys_clock_nanosleep, do_syscall_64,
///   entry_SYSCALL_64_after_hwframe`, flags `0x400000`.
#[derive(Debug)]
pub struct Zombie {
    /// The zombie's pid.
    pub zombie_pid: i32,
    /// Its parent (`wk-zombie-par`), sleeping in `nanosleep`.
    pub parent_pid: i32,
    parent: Helper,
}

impl Zombie {
    /// Build it; returns once the child is `Z`.
    pub fn start() -> Result<Zombie> {
        let parent = Helper::spawn("wk-zombie-par", &[])?;
        let kv = parent.wait_kv("child", SETUP_TIMEOUT)?;
        let zombie_pid = kv_i32(&kv, "pid")?;
        let parent_pid = parent.pid();
        establish("zombie", SETUP_TIMEOUT, &[zombie_pid, parent_pid], || {
            proc::state_of(zombie_pid) == Some('Z')
                && proc::state_of(parent_pid) == Some('S')
                && proc::asleep(parent_pid)
        })?;
        Ok(Zombie {
            zombie_pid,
            parent_pid,
            parent,
        })
    }
}

impl Drop for Zombie {
    fn drop(&mut self) {
        // Killing the parent re-parents the zombie to us (child subreaper).
        self.parent.kill(Duration::from_secs(2));
        helper::reap(self.zombie_pid, Duration::from_secs(2));
    }
}

/// [`Zombie`] whose parent is additionally SIGSTOPped (`T`).
///
/// Observed on 6.18: parent `wk-zombie-par` state `T`, wchan
/// `do_signal_stop`, stack `do_signal_stop, get_signal,
/// arch_do_signal_or_restart, exit_to_user_mode_loop, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`, SigPnd/ShdPnd `0`; zombie unchanged.
#[derive(Debug)]
pub struct ZombieWithStoppedParent {
    /// The zombie and its parent.
    pub inner: Zombie,
}

impl ZombieWithStoppedParent {
    /// Build it; returns once the child is `Z` and the parent `T`.
    pub fn start() -> Result<ZombieWithStoppedParent> {
        let inner = Zombie::start()?;
        let p = inner.parent_pid;
        inner.parent.signal(Signal::STOP);
        establish("stopped zombie parent", SETUP_TIMEOUT, &[p], || {
            proc::state_of(p) == Some('T') && proc::asleep(p)
        })?;
        Ok(ZombieWithStoppedParent { inner })
    }

    /// The zombie's pid.
    pub fn zombie_pid(&self) -> i32 {
        self.inner.zombie_pid
    }

    /// The stopped parent's pid.
    pub fn parent_pid(&self) -> i32 {
        self.inner.parent_pid
    }
}

/// A process stopped by SIGSTOP (`T`), comm `wk-stopped`.
///
/// Observed on 6.18: state `T`, status `State: T (stopped)`, wchan
/// `do_signal_stop`, stack `do_signal_stop, get_signal,
/// arch_do_signal_or_restart, exit_to_user_mode_loop, do_syscall_64,
/// entry_SYSCALL_64_after_hwframe`, flags `0x400000`, SigPnd/ShdPnd `0`.
#[derive(Debug)]
pub struct Stopped {
    /// The stopped process.
    pub pid: i32,
    _helper: Helper,
}

impl Stopped {
    /// Build it; returns once it is `T`.
    pub fn start() -> Result<Stopped> {
        let helper = sleeper("wk-stopped")?;
        let pid = helper.pid();
        helper.signal(Signal::STOP);
        establish("SIGSTOP", SETUP_TIMEOUT, &[pid], || {
            proc::state_of(pid) == Some('T') && proc::asleep(pid)
        })?;
        Ok(Stopped {
            pid,
            _helper: helper,
        })
    }
}

/// A process in ptrace-stop (`t`), comm `wk-tracee`, attached with
/// `PTRACE_ATTACH` by a separate tracer helper `wk-tracer` that then sleeps.
///
/// Observed on 6.18: tracee state `t`, status `State: t (tracing stop)`,
/// `TracerPid:` = tracer pid, wchan `ptrace_stop`, stack `ptrace_stop,
/// get_signal, arch_do_signal_or_restart, exit_to_user_mode_loop,
/// do_syscall_64, entry_SYSCALL_64_after_hwframe`, SigPnd/ShdPnd `0` (the
/// attach's SIGSTOP has been consumed into the stop). Tracer: `S` in
/// `hrtimer_nanosleep`.
#[derive(Debug)]
pub struct Traced {
    /// The traced process.
    pub pid: i32,
    /// The tracer (`wk-tracer`).
    pub tracer_pid: i32,
    tracee: Helper,
    tracer: Helper,
}

impl Traced {
    /// Build it; returns once the tracee is `t` with the expected TracerPid.
    pub fn start() -> Result<Traced> {
        crate::require_root()?;
        let tracee = sleeper("wk-tracee")?;
        let pid = tracee.pid();
        let tracer = Helper::spawn("wk-tracer", &[pid.to_string().into()])?;
        tracer.wait_line("attached", SETUP_TIMEOUT)?;
        let tracer_pid = tracer.pid();
        establish("ptrace stop", SETUP_TIMEOUT, &[pid], || {
            proc::state_of(pid) == Some('t')
                && proc::asleep(pid)
                && proc::status_field(pid, "TracerPid") == Some(tracer_pid.to_string())
        })?;
        Ok(Traced {
            pid,
            tracer_pid,
            tracee,
            tracer,
        })
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        // Tracer first: its exit detaches the tracee, so we (the real parent)
        // can reap the tracee without the tracer having to wait() for it.
        self.tracer.kill(Duration::from_secs(2));
        self.tracee.kill(Duration::from_secs(2));
    }
}

/// A process (`wk-vfork`) blocked in vfork: `clone(CLONE_VM | CLONE_VFORK |
/// SIGCHLD)`, the kernel_clone() path of vfork(2), whose child
/// (`wk-vfork-child`) sleeps in `pause()` without ever exec'ing or exiting.
///
/// Observed on 6.18:
/// - parent: state `D` (wait_for_vfork_done() sleeps
///   TASK_KILLABLE|TASK_FREEZABLE, which /proc shows as `D`; SIGKILL does
///   kill it), wchan `kernel_clone`, stack `kernel_clone, __do_sys_clone,
///   do_syscall_64, entry_SYSCALL_64_after_hwframe` (the completion wait is
///   inlined/hidden), flags `0x400000`.
/// - child: state `S`, wchan `__do_sys_pause`, stack `__do_sys_pause,
///   do_syscall_64, entry_SYSCALL_64_after_hwframe`, flags `0x400040`
///   (PF_FORKNOEXEC: it never exec'ed).
#[derive(Debug)]
pub struct VforkParent {
    /// The parent, in `D` inside `kernel_clone`.
    pub pid: i32,
    /// The vfork child (shares the parent's mm), sleeping.
    pub child_pid: i32,
    helper: Helper,
}

impl VforkParent {
    /// Build it; returns once the parent is `D` and the child exists.
    pub fn start() -> Result<VforkParent> {
        let helper = Helper::spawn("wk-vfork", &[])?;
        let pid = helper.pid();
        helper.wait_line("vforking", SETUP_TIMEOUT)?;
        let mut child_pid = 0;
        establish("vfork", SETUP_TIMEOUT, &[pid], || {
            if child_pid == 0 {
                child_pid = proc::children_of(pid).first().copied().unwrap_or(0);
            }
            child_pid != 0
                && proc::state_of(pid) == Some('D')
                && proc::asleep(pid)
                && proc::asleep(child_pid)
                && proc::comm_of(child_pid).as_deref() == Some("wk-vfork-child")
        })?;
        Ok(VforkParent {
            pid,
            child_pid,
            helper,
        })
    }
}

impl Drop for VforkParent {
    fn drop(&mut self) {
        helper::signal(self.child_pid, Signal::KILL);
        self.helper.kill(Duration::from_secs(2));
        // The child was re-parented to us (subreaper) when the parent died,
        // or became the parent's zombie and then ours.
        helper::reap(self.child_pid, Duration::from_secs(2));
    }
}
