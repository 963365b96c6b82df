//! Frozen cgroups: what `docker pause` and `systemctl freeze` do, made with
//! the kernel's own files. A v1 freezer cgroup (`freezer.state`) parks its
//! tasks in D (TASK_FROZEN), so a kill -9 stays pending until the thaw; a
//! v2 cgroup (`cgroup.freeze`) traps them in S, where SIGKILL still works.
//!
//! Observed on 6.18: a v1-frozen `sleep` keeps its nanosleep stack
//! (`hrtimer_nanosleep`: a freezable sleep is frozen in place), state D;
//! a v1-frozen task woken by the freeze sits in `__refrigerator` under
//! `get_signal`; a v2-frozen one is S with `get_signal` on top (the inlined
//! `do_freezer_trap`). A task already in an uninterruptible, non-freezable
//! wait (a FUSE request after SIGKILL) cannot be frozen: the v1 state stays
//! `FREEZING`.
//!
//! The cgroup is named `wedge-test-PID-N` directly under the hierarchy's
//! root. Dropping thaws it, moves what is left back to the root and
//! removes it; the kit's exit hook does the same for one a test leaked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helper::{self, Helper};
use crate::{proc, wait_until, Error, Result, SETUP_TIMEOUT};

/// Which freezer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    /// The v1 `freezer` controller (`freezer.state`).
    V1,
    /// The unified hierarchy (`cgroup.freeze`).
    V2,
}

/// Where the hierarchy is mounted here (v1: the `freezer` controller's
/// mount; v2: the cgroup2 mount), from this process's mountinfo.
pub fn hierarchy(v: Freezer) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for l in info.lines() {
        let (pre, post) = l.split_once(" - ")?;
        let mut f = post.split_whitespace();
        let fstype = f.next()?;
        let _source = f.next();
        let sopts = f.next().unwrap_or("");
        let mut p = pre.split_whitespace();
        let root = p.nth(3)?;
        let mp = p.next()?;
        if root != "/" {
            continue;
        }
        let hit = match v {
            Freezer::V2 => fstype == "cgroup2",
            Freezer::V1 => fstype == "cgroup" && sopts.split(',').any(|o| o == "freezer"),
        };
        if hit {
            return Some(PathBuf::from(mp));
        }
    }
    None
}

pub(crate) fn thaw(dir: &Path, v1: bool) {
    let _ = if v1 {
        std::fs::write(dir.join("freezer.state"), "THAWED")
    } else {
        std::fs::write(dir.join("cgroup.freeze"), "0")
    };
}

/// Moves what is left to the root cgroup and removes the directory.
pub(crate) fn remove(dir: &Path) {
    if let (Some(parent), Ok(procs)) = (
        dir.parent(),
        std::fs::read_to_string(dir.join("cgroup.procs")),
    ) {
        for pid in procs.split_whitespace() {
            let _ = std::fs::write(parent.join("cgroup.procs"), pid);
        }
    }
    // A killed member leaves once it has exited and been reaped.
    wait_until(Duration::from_secs(3), || {
        std::fs::remove_dir(dir).is_ok() || !dir.exists()
    });
}

/// A cgroup made by the kit, frozen, with its members.
#[derive(Debug)]
pub struct FrozenCgroup {
    /// Which freezer holds it.
    pub freezer: Freezer,
    /// Its directory (`/sys/fs/cgroup/freezer/wedge-test-…`).
    pub dir: PathBuf,
    /// Its path in the hierarchy, as /proc/PID/cgroup prints it.
    pub path: String,
    /// The processes in it.
    pub members: Vec<i32>,
    _sleeper: Option<Helper>,
    reg: u64,
}

impl FrozenCgroup {
    /// A sleeper (`wk-paused`) in a new cgroup, frozen; returns once the
    /// kernel says the cgroup is frozen.
    pub fn start(freezer: Freezer) -> Result<FrozenCgroup> {
        let h = Helper::spawn("wk-sleeper", &["wk-paused".into()])?;
        h.wait_line("ready", SETUP_TIMEOUT)?;
        let pid = h.pid();
        let mut c = FrozenCgroup::around(freezer, &[pid])?;
        c._sleeper = Some(h);
        c.wait(true)?;
        Ok(c)
    }

    /// A new cgroup holding `pids` (moved in), frozen; returns once the
    /// freeze is asked for and the kernel shows it FROZEN or FREEZING (a
    /// member in an uninterruptible wait keeps it freezing).
    pub fn around(freezer: Freezer, pids: &[i32]) -> Result<FrozenCgroup> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Skip("freezing a cgroup needs root".into()));
        }
        let Some(root) = hierarchy(freezer) else {
            return Err(Error::Skip(format!(
                "no {} hierarchy is mounted",
                match freezer {
                    Freezer::V1 => "cgroup v1 freezer",
                    Freezer::V2 => "cgroup2",
                }
            )));
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("wedge-test-{}-{n}", std::process::id());
        let dir = root.join(&name);
        std::fs::create_dir(&dir)
            .map_err(|e| Error::setup(format!("mkdir {}: {e}", dir.display())))?;
        let reg = helper::register_cgroup(&dir, freezer == Freezer::V1);
        let c = FrozenCgroup {
            freezer,
            path: format!("/{name}"),
            dir,
            members: pids.to_vec(),
            _sleeper: None,
            reg,
        };
        for pid in pids {
            std::fs::write(c.dir.join("cgroup.procs"), pid.to_string())
                .map_err(|e| Error::setup(format!("move {pid} into {}: {e}", c.dir.display())))?;
        }
        let (file, value) = match freezer {
            Freezer::V1 => ("freezer.state", "FROZEN"),
            Freezer::V2 => ("cgroup.freeze", "1"),
        };
        std::fs::write(c.dir.join(file), value).map_err(|e| {
            Error::setup(format!("write {value} to {}/{file}: {e}", c.dir.display()))
        })?;
        if !pids.is_empty() {
            c.wait(false)?;
        }
        Ok(c)
    }

    /// Whether the kernel says the freeze is complete.
    pub fn frozen(&self) -> bool {
        match self.freezer {
            Freezer::V1 => std::fs::read_to_string(self.dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN"),
            Freezer::V2 => std::fs::read_to_string(self.dir.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l == "frozen 1")),
        }
    }

    /// v1's `freezer.state` (THAWED, FREEZING, FROZEN); None on v2.
    pub fn v1_state(&self) -> Option<String> {
        (self.freezer == Freezer::V1)
            .then(|| std::fs::read_to_string(self.dir.join("freezer.state")).ok())
            .flatten()
            .map(|s| s.trim().to_string())
    }

    fn wait(&self, complete: bool) -> Result<()> {
        let ok = wait_until(SETUP_TIMEOUT, || {
            self.frozen() || (!complete && self.v1_state().as_deref() == Some("FREEZING"))
        });
        if ok {
            return Ok(());
        }
        let seen: Vec<String> = self.members.iter().map(|&p| proc::describe(p)).collect();
        Err(Error::setup(format!(
            "{} not frozen within {SETUP_TIMEOUT:?}; members: {}",
            self.dir.display(),
            seen.join(" | ")
        )))
    }

    /// SIGKILL every member (pending until the thaw on v1).
    pub fn kill_members(&self) {
        for &pid in &self.members {
            helper::signal(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        thaw(&self.dir, self.freezer == Freezer::V1);
        // The sleeper is reaped by its Helper's drop, after this.
        remove(&self.dir);
        helper::unregister_cgroup(self.reg);
    }
}

/// A cgroup made under a runtime's name (`/docker/<id>`,
/// `/kubepods.slice/…/cri-containerd-<id>.scope`), for attribution tests:
/// every missing level is created; dropping moves the members back to the
/// root and removes the levels it made, innermost first.
#[derive(Debug)]
pub struct NamedCgroup {
    /// The innermost directory.
    pub dir: PathBuf,
    made: Vec<(PathBuf, u64)>,
    root: PathBuf,
}

impl NamedCgroup {
    /// Creates `path` (absolute in the hierarchy) in `freezer`'s hierarchy
    /// (v1: the freezer controller's, v2: the unified one).
    pub fn create(freezer: Freezer, path: &str) -> Result<NamedCgroup> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Skip("making cgroups needs root".into()));
        }
        let Some(root) = hierarchy(freezer) else {
            return Err(Error::Skip(format!(
                "no {freezer:?} cgroup hierarchy is mounted"
            )));
        };
        let mut dir = root.clone();
        let mut made = Vec::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .map_err(|e| Error::setup(format!("mkdir {}: {e}", dir.display())))?;
                made.push(dir.clone());
            }
        }
        // Innermost first, so the exit hook removes children before parents.
        let made = made
            .into_iter()
            .rev()
            .map(|d| {
                let id = helper::register_cgroup(&d, freezer == Freezer::V1);
                (d, id)
            })
            .collect();
        Ok(NamedCgroup { dir, made, root })
    }

    /// Moves `pid` in.
    pub fn add(&self, pid: i32) -> Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| Error::setup(format!("move {pid} into {}: {e}", self.dir.display())))
    }
}

impl Drop for NamedCgroup {
    fn drop(&mut self) {
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.split_whitespace() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        for (d, id) in &self.made {
            remove(d);
            helper::unregister_cgroup(*id);
        }
    }
}
