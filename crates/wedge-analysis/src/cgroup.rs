//! Frozen cgroups: which freeze holds a process, and how to thaw it.

use wedge_model::{CgroupFreeze, CgroupVersion, Process, Snapshot};

/// The freeze that holds `p`: the frozen or freezing cgroup it is a
/// member of, v1's freezer first (a v1 freeze parks tasks in D, the one
/// that makes kill -9 wait).
pub fn freeze_of<'a>(snap: &'a Snapshot, p: &Process) -> Option<&'a CgroupFreeze> {
    let freezes = snap.cgroup_freezes.value()?;
    let lines = p.cgroup.value()?;
    let mine = wedge_model::freezer_paths(lines);
    let find = |v: CgroupVersion| {
        mine.iter()
            .filter(|(mv, _)| *mv == v)
            .find_map(|(_, path)| freezes.iter().find(|f| f.version == v && &f.path == path))
    };
    find(CgroupVersion::V1).or_else(|| find(CgroupVersion::V2))
}

pub fn version_words(v: CgroupVersion) -> &'static str {
    match v {
        CgroupVersion::V1 => "the cgroup v1 freezer",
        CgroupVersion::V2 => "cgroup v2",
    }
}

/// Who manages a cgroup, from how its runtime names it, and the command
/// that thaws it through that manager (which then knows it is thawed: a
/// thaw written behind Docker's back leaves `docker ps` saying Paused).
pub fn manager_thaw(path: &str) -> Option<(String, String)> {
    let w = crate::workload::Workload::from_path(path)?;
    let short = |id: &str| id.chars().take(12).collect::<String>();
    match (w.runtime, &w.container) {
        (Some("docker"), Some(id)) if w.pod_uid.is_none() => Some((
            format!("Docker container {}", short(id)),
            format!("docker unpause {}", short(id)),
        )),
        (Some("podman"), Some(id)) if !w.monitor => Some((
            format!("Podman container {}", short(id)),
            format!("podman unpause {}", short(id)),
        )),
        // A systemd unit (`systemctl freeze` writes cgroup.freeze, v2
        // only); Kubernetes' pod and container scopes are the kubelet's,
        // not a unit to thaw by hand.
        (None, None) if w.pod_uid.is_none() && w.qos.is_none() => {
            let unit = w.unit.or(w.slice)?;
            Some((
                format!("systemd unit {unit}"),
                format!("systemctl thaw {unit}"),
            ))
        }
        _ => None,
    }
}

/// The write that thaws a cgroup directly.
pub fn raw_thaw(f: &CgroupFreeze) -> String {
    match f.version {
        CgroupVersion::V1 => format!("echo THAWED > {}/freezer.state", f.frozen_by_dir),
        CgroupVersion::V2 => format!("echo 0 > {}/cgroup.freeze", f.frozen_by_dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_by_name() {
        let id = "4f1c9e2b7d3a5c6e8f9012345678901234567890abcdef1234567890abcdef12";
        assert_eq!(
            manager_thaw(&format!("/docker/{id}")).map(|m| m.1),
            Some("docker unpause 4f1c9e2b7d3a".into())
        );
        assert_eq!(
            manager_thaw(&format!("/system.slice/docker-{id}.scope")).map(|m| m.1),
            Some("docker unpause 4f1c9e2b7d3a".into())
        );
        assert_eq!(
            manager_thaw(&format!("/machine.slice/libpod-{id}.scope")).map(|m| m.1),
            Some("podman unpause 4f1c9e2b7d3a".into())
        );
        assert_eq!(
            manager_thaw("/system.slice/nginx.service").map(|m| m.1),
            Some("systemctl thaw nginx.service".into())
        );
        assert_eq!(manager_thaw("/wedge-test-12"), None);
        assert_eq!(
            manager_thaw("/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope"),
            None
        );
    }
}
