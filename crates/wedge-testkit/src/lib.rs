//! wedge-testkit: builds *real* stuck / unkillable / dead-process situations
//! on the running kernel, for wedge's integration tests.
//!
//! # How tests use it
//!
//! Integration tests are `harness = false` binaries (libtest-mimic) whose
//! `main()` starts with [`role_main_if_requested`]. Scenarios spawn helper
//! processes by re-executing `std::env::current_exe()` with
//! `WEDGE_TESTKIT_ROLE=<role>`; in such a child `role_main_if_requested` runs
//! the role and never returns. This avoids `fork()` in the multi-threaded test
//! process.
//!
//! ```no_run
//! // First statement of the test binary's main():
//! wedge_testkit::role_main_if_requested();
//! // ... then e.g. libtest_mimic::run(&args, trials).exit()
//! ```
//!
//! Every scenario is an RAII value: its constructor returns only once the
//! kernel situation is established (polled through `/proc`, every wait
//! bounded), and its `Drop` tears it down even when the test fails or panics
//! (answers or aborts FUSE requests, lazily unmounts, SIGKILLs and reaps
//! helpers, removes temp dirs). As a safety net the kit also registers an
//! `atexit` hook ([`cleanup_all`]) and sweeps mounts and temp dirs left by a
//! crashed earlier run the first time it is used.
//!
//! Constructors fail with [`Error::Skip`] when the machine lacks a capability
//! (not root, no `/dev/fuse`, io_uring disabled, `unshare` refused, ...). Tests
//! turn that into a skip with [`setup_or_skip!`] / [`skip_or_fail`], which turn
//! it into a failure when `WEDGE_REQUIRE_ALL` is set (CI sets it).
//!
//! # Scenarios
//!
//! | type | helper comms | situation |
//! |---|---|---|
//! | [`FuseDaemon`] | `wk-fused` (+ threads `fuser-0`, `wk-fused-ctl`) | FUSE fs with `ok`, `stall`, `stalldir/`, `flushstall`, `liststall/`, `disk` (64 MiB, answer/park/EIO); parks requests |
//! | [`FuseReader`] | `wk-reader` | read(2) of `stall` waiting in `request_wait_answer`; `sigkill()` makes it `D` |
//! | [`FuseThreadReader`] | `wk-mtreader` (thread `wk-mtread`) | read(2) on a second thread; `sigkill()` leaves the leader `Z` and the reader `D` |
//! | [`FuseStatWaiter`] | `wk-statter` | `stat()` from a cwd on the mount: the LOOKUP is parked, no file is open there |
//! | [`MmapLockHolder`] | `wk-mmaplock` (threads `wk-memread`, `wk-mmapper`), `wk-cmdline` | mmap_lock held across a FUSE wait; `/proc/PID/cmdline` blocks |
//! | [`Zombie`], [`ZombieWithStoppedParent`] | `wk-zombie-par`, `wk-zombie` | unreaped child (parent sleeping / `T`) |
//! | [`Stopped`], [`Traced`] | `wk-stopped`; `wk-tracee`, `wk-tracer` | `T` and `t` (ptrace-stop) |
//! | [`VforkParent`] | `wk-vfork`, `wk-vfork-child` | parent `D` in `kernel_clone` |
//! | [`PidnsInit`], [`PidnsInitAbort`] | `wk-pidns-launch`, `wk-nsinit` | pid-ns init sleeping; init calling abort() dies by SIGSEGV |
//! | [`ExitWhileFlushing`] | `wk-flusher` (thread `wk-flush-thr`) | exiting thread stuck in `fuse_flush`, SIGKILL dropped |
//! | [`PidnsInitWithFuseThread`] | `wk-pidns-launch`, `wk-nsinit`, `wk-flusher`, `wk-setns` | seed 001: init in `zap_pid_ns_processes` |
//! | [`IoUringOnFuse`] | `wk-uring` (+ `iou-wrk-*` / `iou-sqp-*`) | io_uring read stuck in FUSE, plain / IOSQE_ASYNC / SQPOLL |
//! | [`InodeLockQueue`] | `wk-creator` ×2 | second creator queued on the directory's `i_rwsem` |
//! | [`FposLockQueue`] | `wk-lister` (threads `wk-list-a`, `wk-list-b`) | two threads list one FUSE dir fd: the second queued on the file's `f_pos_lock` |
//! | [`LoopOnFuse`] | `wk-blkreader`, `wk-guardian` (+ a `kworker/…+loopN`) | reader of a loop device on the FUSE `disk`, daemon parks: reader → loopN → loop worker → FUSE |
//! | [`FrozenFs`] | `wk-create`, `wk-write`, `wk-mkdir`, `wk-guardian` | ext4/xfs/btrfs on a loop image, `fsfreeze -f`, three writers `D` |
//! | [`LoopEio`] | `wk-eiowriter`, `wk-guardian` | ext4 on a loop device on the FUSE `disk` answering EIO: real `I/O error` / `EXT4-fs error` lines |
//!
//! Their building blocks are public too: [`LoopDevice`] (a loop device over
//! an image of its own with partitions, or over an existing file),
//! [`MountedFs`] (a filesystem made and mounted on it, frozen and thawed)
//! and the [`Guardian`] that undoes both if the test process dies.
//!
//! FUSE scenarios borrow a [`FuseDaemon`]; use a fresh daemon per scenario
//! when the *initial* sleep state matters (see its `no_interrupt` caveat).
//! `WEDGE_TESTKIT_FUSE_LOG=1` makes the daemon log every request to stderr.
//!
//! # Process-wide side effects
//!
//! The first spawned helper makes the test process a *child subreaper*
//! (`PR_SET_CHILD_SUBREAPER`): orphans of killed helpers (a zombie's parent,
//! a vfork child, ...) are re-parented to the test process, which reaps them
//! at once (PID 1 on these machines reaps only lazily, about once a second). Helpers are forked from one long-lived `wk-spawner` thread because they
//! arm `PR_SET_PDEATHSIG`, which is tied to the forking *thread*.
//!
//! # Facts recorded on this machine
//!
//! Each scenario's doc comment records what Linux 6.18 (6.18.44, x86_64,
//! 2 CPUs) actually showed in `/proc` while the situation held. Those are
//! observations from this kit's own tests (`tests/scenarios.rs`), not guesses.

#![warn(missing_docs)]

mod helper;
pub mod kmsg;
pub mod mntns;
pub mod proc;
mod roles;

pub mod cgroup;
pub mod fuse;
pub mod fuse_scenarios;
pub mod pidns;
pub mod process;
pub mod storage;
pub mod uring;

use std::time::{Duration, Instant};

pub use cgroup::{Freezer, FrozenCgroup, NamedCgroup};
pub use fuse::{DiskMode, FuseDaemon, ParkedRequest};
pub use fuse_scenarios::{
    ExitWhileFlushing, FposLockQueue, FuseReader, FuseStatWaiter, FuseThreadReader, InodeLockQueue,
    MmapLockHolder,
};
pub use helper::{cleanup_all, ExitInfo, ROLE_ENV};
pub use kmsg::KmsgTail;
pub use pidns::{PidnsInit, PidnsInitAbort, PidnsInitWithFuseThread};
pub use process::{Stopped, Traced, VforkParent, Zombie, ZombieWithStoppedParent};
pub use storage::{
    FrozenFs, FsKind, Guardian, LoopDevice, LoopEio, LoopOnFuse, MountedFs, WriterKind,
};
pub use uring::{IoUringMode, IoUringOnFuse};

/// Env var that turns every skip into a failure (CI sets it).
pub const REQUIRE_ALL_ENV: &str = "WEDGE_REQUIRE_ALL";

/// Why a scenario could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The machine lacks a capability the scenario needs; the test should be
    /// skipped (or fail under `WEDGE_REQUIRE_ALL`).
    Skip(String),
    /// The capability is there but the situation did not establish: a real
    /// failure, with a description of what `/proc` showed.
    Setup(String),
}

impl Error {
    pub(crate) fn setup(msg: impl Into<String>) -> Error {
        Error::Setup(msg.into())
    }
    pub(crate) fn skip(msg: impl Into<String>) -> Error {
        Error::Skip(msg.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Skip(r) => write!(f, "skipped: {r}"),
            Error::Setup(r) => write!(f, "scenario setup failed: {r}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of building a scenario.
pub type Result<T> = std::result::Result<T, Error>;

/// Report a skip: prints `SKIPPED: reason`; panics instead when
/// `WEDGE_REQUIRE_ALL` is set, so CI cannot silently skip.
pub fn skip_or_fail(reason: &str) {
    if std::env::var_os(REQUIRE_ALL_ENV).is_some() {
        panic!("required scenario unavailable ({REQUIRE_ALL_ENV} is set): {reason}");
    }
    println!("SKIPPED: {reason}");
}

/// Unwrap a scenario constructor's result inside a test function returning
/// `Result<(), _>`: on [`Error::Skip`] call [`skip_or_fail`] and `return
/// Ok(())`; on [`Error::Setup`] panic with the description.
///
/// ```no_run
/// # fn t() -> Result<(), String> {
/// let fs = wedge_testkit::setup_or_skip!(wedge_testkit::FuseDaemon::start());
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! setup_or_skip {
    ($e:expr) => {
        match $e {
            ::std::result::Result::Ok(v) => v,
            ::std::result::Result::Err($crate::Error::Skip(reason)) => {
                $crate::skip_or_fail(&reason);
                return ::std::result::Result::Ok(());
            }
            ::std::result::Result::Err(e) => panic!("{e}"),
        }
    };
}

/// Poll `cond` every few milliseconds until it is true or `timeout` elapses;
/// returns the last value of `cond`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Like [`wait_until`] but turns a timeout into [`Error::Setup`] carrying
/// `/proc` descriptions of `tids`.
pub(crate) fn establish(
    what: &str,
    timeout: Duration,
    tids: &[i32],
    cond: impl FnMut() -> bool,
) -> Result<()> {
    if wait_until(timeout, cond) {
        return Ok(());
    }
    let seen: Vec<String> = tids.iter().map(|&t| proc::describe(t)).collect();
    Err(Error::setup(format!(
        "{what}: not established within {timeout:?}; /proc shows: {}",
        seen.join(" | ")
    )))
}

/// Bound for establishing a situation in a constructor.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(3);

/// If this process was started as a kit helper (`WEDGE_TESTKIT_ROLE` set), run
/// that role and never return; otherwise return immediately. Call it first
/// thing in `main()` of every test binary that uses the kit.
pub fn role_main_if_requested() {
    if let Some(role) = std::env::var_os(ROLE_ENV) {
        let role = role.to_string_lossy().into_owned();
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        roles::run(&role, &args);
    }
}

/// Capabilities shared by several scenarios.
pub(crate) fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::skip("needs root"));
    }
    Ok(())
}
