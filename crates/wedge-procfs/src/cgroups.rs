//! Frozen cgroups, for the processes of a snapshot: which cgroup of theirs
//! is frozen or freezing, and which cgroup's own setting did it.
//!
//! Read directly, not through the bounded reader: v1's `freezer.state`
//! and `freezer.self_freezing` (kernel/cgroup/legacy_freezer.c) take
//! `freezer_mutex`, which a state change holds only while it marks the
//! cgroup's tasks (`freeze_task` wakes them and returns; nothing waits for
//! a task to arrive); v2's `cgroup.events` and `cgroup.freeze`
//! (kernel/cgroup/cgroup.c) print flags of the cgroup under no sleeping
//! lock at all. Opening a cgroup file takes kernfs' active reference, not
//! `cgroup_mutex`.

use std::collections::BTreeSet;
use std::path::Path;
use wedge_model::{
    CgroupFreeze, CgroupVersion, Field, FreezeProgress, MissingReason, Mount, Process,
};

pub use wedge_model::freezer_paths;

/// Where each hierarchy is mounted in wedge's own mount namespace: the
/// mount point and the mount's root within the hierarchy (not `/` when
/// wedge runs in a cgroup namespace or a bind mount of a subtree).
fn hierarchy(mounts: &[Mount], own_ns: Option<u64>, v: CgroupVersion) -> Option<(String, String)> {
    let mine = |m: &&Mount| own_ns.is_none() || m.mnt_ns.is_none() || m.mnt_ns == own_ns;
    let mut cands: Vec<&Mount> = mounts
        .iter()
        .filter(mine)
        .filter(|m| match v {
            CgroupVersion::V2 => m.fs_type == "cgroup2",
            CgroupVersion::V1 => {
                m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "freezer")
            }
        })
        .collect();
    // The whole hierarchy if it is mounted whole somewhere.
    cands.sort_by_key(|m| (m.root != "/", m.mount_id));
    cands
        .first()
        .map(|m| (m.mount_point.clone(), m.root.clone()))
}

fn dir_of(mount_point: &str, root: &str, path: &str) -> Option<String> {
    let rel = if root == "/" {
        path
    } else {
        path.strip_prefix(root)?
    };
    Some(format!("{}{}", mount_point.trim_end_matches('/'), rel))
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The parent of a cgroup path (`/a/b` → `/a`); None for `/`.
fn parent(path: &str) -> Option<&str> {
    if path == "/" || path.is_empty() {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// One cgroup's freeze, or None when it is thawed (or unreadable: it went
/// away during the scan).
fn read_one(v: CgroupVersion, mount_point: &str, root: &str, path: &str) -> Option<CgroupFreeze> {
    let dir = dir_of(mount_point, root, path)?;
    let d = Path::new(&dir);
    let progress = match v {
        CgroupVersion::V1 => match read_trim(&d.join("freezer.state"))?.as_str() {
            "FROZEN" => FreezeProgress::Frozen,
            "FREEZING" => FreezeProgress::Freezing,
            _ => return None,
        },
        CgroupVersion::V2 => {
            let events = read_trim(&d.join("cgroup.events"))?;
            let frozen = events.lines().any(|l| l.trim() == "frozen 1");
            let asked = read_trim(&d.join("cgroup.freeze")).as_deref() == Some("1");
            match (frozen, asked) {
                (true, _) => FreezeProgress::Frozen,
                (false, true) => FreezeProgress::Freezing,
                // Not asked here; an ancestor's freeze still in progress
                // shows as this cgroup's tasks not yet frozen either.
                (false, false) => {
                    let by = frozen_by(v, mount_point, root, path)?;
                    return Some(CgroupFreeze {
                        version: v,
                        path: path.to_string(),
                        dir,
                        progress: FreezeProgress::Freezing,
                        frozen_by_dir: dir_of(mount_point, root, &by)?,
                        frozen_by: by,
                    });
                }
            }
        }
    };
    let by = frozen_by(v, mount_point, root, path).unwrap_or_else(|| path.to_string());
    Some(CgroupFreeze {
        version: v,
        path: path.to_string(),
        frozen_by_dir: dir_of(mount_point, root, &by).unwrap_or_else(|| dir.clone()),
        dir,
        progress,
        frozen_by: by,
    })
}

/// The nearest cgroup at or above `path` whose own setting asks for the
/// freeze (v1 `freezer.self_freezing` 1, v2 `cgroup.freeze` 1).
fn frozen_by(v: CgroupVersion, mount_point: &str, root: &str, path: &str) -> Option<String> {
    let mut at = Some(path);
    while let Some(p) = at {
        let dir = dir_of(mount_point, root, p)?;
        let own = match v {
            CgroupVersion::V1 => Path::new(&dir).join("freezer.self_freezing"),
            CgroupVersion::V2 => Path::new(&dir).join("cgroup.freeze"),
        };
        if read_trim(&own).as_deref() == Some("1") {
            return Some(p.to_string());
        }
        at = parent(p);
    }
    None
}

/// The frozen and freezing cgroups among those `processes` are in.
pub fn read_freezes(
    processes: &[Process],
    mounts: &[Mount],
    own_ns: Option<u64>,
) -> Field<Vec<CgroupFreeze>> {
    let v1 = hierarchy(mounts, own_ns, CgroupVersion::V1);
    let v2 = hierarchy(mounts, own_ns, CgroupVersion::V2);
    if v1.is_none() && v2.is_none() {
        return Field::missing(
            MissingReason::NotSupported,
            "neither the cgroup v1 freezer nor cgroup2 is mounted where wedge runs",
        );
    }
    let mut seen: BTreeSet<(CgroupVersion, String)> = BTreeSet::new();
    for p in processes {
        if let Some(lines) = p.cgroup.value() {
            for (v, path) in freezer_paths(lines) {
                // The root cgroup cannot be frozen (neither hierarchy has
                // the files there).
                if path != "/" {
                    seen.insert((v, path));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (v, path) in seen {
        let h = match v {
            CgroupVersion::V1 => &v1,
            CgroupVersion::V2 => &v2,
        };
        if let Some((mp, root)) = h {
            out.extend(read_one(v, mp, root, &path));
        }
    }
    Field::Value(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_lines() {
        let lines: Vec<String> = [
            "9:name=systemd:/",
            "6:freezer:/docker/4f1c",
            "4:cpu,cpuacct:/x",
            "0::/system.slice/docker-4f1c.scope",
            "garbage",
            "3:freezer,blkio:/a:b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            freezer_paths(&lines),
            vec![
                (CgroupVersion::V1, "/docker/4f1c".to_string()),
                (
                    CgroupVersion::V2,
                    "/system.slice/docker-4f1c.scope".to_string()
                ),
                (CgroupVersion::V1, "/a:b".to_string()),
            ]
        );
    }

    #[test]
    fn paths() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(
            dir_of("/sys/fs/cgroup/freezer", "/", "/docker/x").as_deref(),
            Some("/sys/fs/cgroup/freezer/docker/x")
        );
        assert_eq!(
            dir_of("/sys/fs/cgroup", "/kubepods", "/kubepods/pod1").as_deref(),
            Some("/sys/fs/cgroup/pod1")
        );
        assert_eq!(dir_of("/sys/fs/cgroup", "/kubepods", "/other"), None);
    }

    /// A fake hierarchy on disk: a v1 child frozen through its parent.
    #[test]
    fn frozen_through_an_ancestor() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("freezer");
        let child = base.join("outer/inner");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(base.join("outer/freezer.state"), "FROZEN\n").unwrap();
        std::fs::write(base.join("outer/freezer.self_freezing"), "1\n").unwrap();
        std::fs::write(child.join("freezer.state"), "FROZEN\n").unwrap();
        std::fs::write(child.join("freezer.self_freezing"), "0\n").unwrap();
        let mp = base.display().to_string();
        let f = read_one(CgroupVersion::V1, &mp, "/", "/outer/inner").unwrap();
        assert_eq!(f.progress, FreezeProgress::Frozen);
        assert_eq!(f.frozen_by, "/outer");
        assert_eq!(f.frozen_by_dir, format!("{mp}/outer"));
        std::fs::write(child.join("freezer.state"), "THAWED\n").unwrap();
        assert!(read_one(CgroupVersion::V1, &mp, "/", "/outer/inner").is_none());
    }
}
