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
