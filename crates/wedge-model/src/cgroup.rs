//! Cgroups that stop their tasks: the freezer of cgroup v1
//! (`freezer.state`) and v2's `cgroup.freeze`. `docker pause`, `podman
//! pause`, `systemctl freeze` and Kubernetes tooling use them; a frozen
//! task looks stuck in the kernel (D on v1, S on v2) and wedge must name
//! the cgroup rather than the system call the task happened to be in.

use serde::{Deserialize, Serialize};

/// Which hierarchy a cgroup belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// The v1 `freezer` controller's hierarchy.
    V1,
    /// The unified hierarchy.
    V2,
}

/// How far a freeze has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeProgress {
    /// Asked for, not yet complete: some task has not reached the freezer
    /// (v1 `FREEZING`; v2 `cgroup.freeze` 1 with `frozen 0` in
    /// `cgroup.events`). A task stuck elsewhere in the kernel (in D on a
    /// dead mount) keeps a v1 freeze at FREEZING for ever.
    Freezing,
    /// Every task of the cgroup is frozen.
    Frozen,
}

/// A cgroup that is frozen or freezing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupFreeze {
    pub version: CgroupVersion,
    /// The cgroup's path in its hierarchy, as `/proc/PID/cgroup` prints it
    /// (`/docker/4f1c…`, `/kubepods.slice/…`).
    pub path: String,
    /// Its directory (`/sys/fs/cgroup/freezer/docker/4f1c…`), where the
    /// thaw is written.
    pub dir: String,
    pub progress: FreezeProgress,
    /// The path of the cgroup whose own setting froze this one: itself, or
    /// an ancestor (v1 `freezer.parent_freezing`, v2 an ancestor's
    /// `cgroup.freeze`) — the one to thaw.
    pub frozen_by: String,
    /// `frozen_by`'s directory.
    pub frozen_by_dir: String,
}

/// One `/proc/PID/cgroup` line as `(hierarchy id, controllers, path)`:
/// `6:freezer:/docker/4f…`, `0::/system.slice/…` (the unified one: id 0,
/// no controllers). The path may itself hold colons. None for a line of
/// another shape.
pub fn membership(line: &str) -> Option<(&str, &str, &str)> {
    let mut it = line.splitn(3, ':');
    Some((it.next()?, it.next()?, it.next()?))
}

/// The freezer hierarchies' cgroups of a membership list: v1's `freezer`
/// controller line and the unified line.
pub fn freezer_paths(lines: &[String]) -> Vec<(CgroupVersion, String)> {
    let mut out = Vec::new();
    for (id, controllers, path) in lines.iter().filter_map(|l| membership(l)) {
        if id == "0" && controllers.is_empty() {
            out.push((CgroupVersion::V2, path.to_string()));
        } else if controllers.split(',').any(|c| c == "freezer") {
            out.push((CgroupVersion::V1, path.to_string()));
        }
    }
    out
}
