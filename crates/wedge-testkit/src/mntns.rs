//! Running a test in a private mount namespace, where the machine's mounts
//! can be changed without touching the host's: e.g. fusectl unmounted, as
//! on distributions that do not mount it (Debian's 6.1 kernels).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// Set (to `1`) in a test binary re-executed by
/// [`run_in_private_mount_namespace`].
pub const PRIVATE_MNTNS_ENV: &str = "WEDGE_TESTKIT_PRIVATE_MNTNS";

/// Where fusectl lives.
pub const FUSECTL: &str = "/sys/fs/fuse/connections";

/// Whether this process runs inside [`run_in_private_mount_namespace`].
/// Decided by the variable alone, which only a child whose unshare()
/// succeeded gets: a test that re-executes itself must never decide from
/// something that can fail to read (a /proc link), or it re-executes
/// itself forever.
pub fn in_private_mount_namespace() -> bool {
    std::env::var_os(PRIVATE_MNTNS_ENV).is_some()
}

/// Output of the re-executed test.
#[derive(Debug)]
pub struct Outcome {
    /// It exited 0.
    pub success: bool,
    /// What it printed (the test harness's report, `SKIPPED:` lines).
    pub stdout: String,
    /// Its stderr (failure messages).
    pub stderr: String,
}

/// Re-executes the current test binary for the one test `name`, in a new
/// mount namespace whose mounts are private (no propagation to or from the
/// host). The child calls `unshare(CLONE_NEWNS)` between fork and exec,
/// while it is single-threaded: in a multi-threaded process unshare would
/// move the calling thread only, and the kit's helpers are forked from
/// another thread.
pub fn run_in_private_mount_namespace(name: &str, timeout: std::time::Duration) -> Result<Outcome> {
    // Never nest: a re-executed test that asks again is a bug, and
    // re-executing from there would fork without end.
    if in_private_mount_namespace() {
        return Err(Error::setup(format!(
            "{name}: already in a private mount namespace ({PRIVATE_MNTNS_ENV} is set); not re-executing"
        )));
    }
    crate::require_root()?;
    let exe = std::env::current_exe().map_err(|e| Error::setup(format!("current_exe: {e}")))?;
    let args: Vec<OsString> = ["--exact", name, "--test-threads", "1", "--nocapture"]
        .iter()
        .map(OsString::from)
        .collect();
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env(PRIVATE_MNTNS_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe system calls
    // (unshare, mount) are made, and nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let root = c"/";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            Error::skip(format!("cannot create a mount namespace: {e}"))
        }
        _ => Error::setup(format!("re-executing the test in a mount namespace: {e}")),
    })?;
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Ok(Outcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(Error::setup(format!(
            "waiting for the re-executed test: {e}"
        ))),
        Err(_) => {
            // SAFETY: kill(2) of our own child, which we have not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Err(Error::setup(format!(
                "the re-executed test {name} did not finish within {timeout:?}"
            )))
        }
    }
}

/// fusectl unmounted in this (private) mount namespace; mounted again on
/// drop, so the kit's teardown can abort its connections.
#[derive(Debug)]
pub struct FusectlHidden {
    was_mounted: bool,
}

fn fusectl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| {
            s.lines()
                .filter_map(crate::fuse::parse_mountinfo_line)
                .any(|m| m.mount_point == FUSECTL && m.fstype == "fusectl")
        })
        .unwrap_or(false)
}

impl FusectlHidden {
    /// Unmount fusectl here. Refused in the host's mount namespace: the
    /// host's fusectl is never touched.
    pub fn hide() -> Result<FusectlHidden> {
        if !in_private_mount_namespace() {
            return Err(Error::setup(
                "refusing to unmount fusectl outside a private mount namespace",
            ));
        }
        let was_mounted = fusectl_mounted();
        while fusectl_mounted() {
            rustix::mount::unmount(FUSECTL, rustix::mount::UnmountFlags::empty())
                .map_err(|e| Error::setup(format!("unmount {FUSECTL}: {e}")))?;
        }
        if std::fs::read_dir(Path::new(FUSECTL)).is_ok_and(|mut d| d.next().is_some()) {
            return Err(Error::setup(format!("{FUSECTL} still shows connections")));
        }
        Ok(FusectlHidden { was_mounted })
    }
}

impl Drop for FusectlHidden {
    fn drop(&mut self) {
        if self.was_mounted && !fusectl_mounted() {
            let _ = rustix::mount::mount(
                "none",
                FUSECTL,
                "fusectl",
                rustix::mount::MountFlags::empty(),
                None,
            );
        }
    }
}
