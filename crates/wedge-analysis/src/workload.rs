//! Which container, pod or systemd unit a process belongs to, from the
//! names runtimes give its cgroup. Only names: the runtime's own state
//! (Docker's container names, the kubelet's pod names) is not read here.
//!
//! The layouts, cgroup v1 and v2 alike (the path is the same in every
//! hierarchy a runtime manages):
//! - Docker: `/docker/<id>` (cgroupfs driver), `…/docker-<id>.scope`
//!   (systemd driver);
//! - Kubernetes: `/kubepods[/<qos>]/pod<uid>/<id>` (cgroupfs), or
//!   `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid with
//!   _ for ->.slice/<runtime>-<id>.scope` (systemd), the runtime's prefix
//!   being `cri-containerd-`, `crio-` or `docker-`;
//! - CRI-O outside a pod slice: `crio-<id>[.scope]`, its monitor
//!   `crio-conmon-<id>.scope`;
//! - Podman: `libpod-<id>.scope` (systemd, rootful under machine.slice,
//!   rootless under user@UID.service), `/libpod_parent/libpod-<id>`
//!   (cgroupfs), its monitor `libpod-conmon-<id>.scope`;
//! - containerd without Kubernetes: `/<namespace>/<id>` (cgroupfs, e.g.
//!   `/default/<id>`), `nerdctl-<id>.scope`;
//! - LXC and LXD: `/lxc/<name>` (v1), `/lxc.payload.<name>` (4.0+);
//! - systemd: the nearest `.service`/`.scope` is the unit, the nearest
//!   `.slice` its slice.

use serde::Serialize;
use wedge_model::Process;

/// What a process runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// `docker`, `containerd`, `cri-o`, `podman`, `lxc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'static str>,
    /// The container id (LXC: its name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The Kubernetes pod's UID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The pod's QoS class (`besteffort`, `burstable`, `guaranteed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// The systemd unit (`nginx.service`, `docker-<id>.scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    /// The runtime's monitor process (conmon), not the container itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
}

/// A container id: 64 hex digits in every runtime named here (Docker,
/// containerd, CRI-O, Podman). Shorter hex names are not taken for one:
/// a sandbox's own `/process_api/<32 hex>` cgroup is no container.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Workload {
    /// From one cgroup path (`/kubepods/burstable/pod…/…`).
    pub fn from_path(path: &str) -> Option<Workload> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.is_empty() {
            return None;
        }
        let mut w = Workload::default();
        for (i, comp) in parts.iter().enumerate() {
            let name = comp
                .strip_suffix(".scope")
                .or_else(|| comp.strip_suffix(".service"))
                .unwrap_or(comp);
            if comp.ends_with(".slice") {
                w.slice = Some(comp.to_string());
            } else if comp.ends_with(".service") || comp.ends_with(".scope") {
                w.unit = Some(comp.to_string());
            }
            // Kubernetes' pod level.
            if let Some(rest) = comp.strip_prefix("kubepods") {
                let rest = rest.strip_suffix(".slice").unwrap_or(rest);
                let mut rest = rest.trim_start_matches('-');
                for q in ["besteffort", "burstable", "guaranteed"] {
                    if let Some(r) = rest.strip_prefix(q) {
                        w.qos = Some(q.into());
                        rest = r.trim_start_matches('-');
                    }
                }
                if let Some(uid) = rest.strip_prefix("pod") {
                    w.pod_uid = Some(uid.replace('_', "-"));
                }
                continue;
            }
            if (comp == &"besteffort" || comp == &"burstable")
                && i > 0
                && parts[i - 1] == "kubepods"
            {
                w.qos = Some(comp.to_string());
                continue;
            }
            if let Some(uid) = comp
                .strip_prefix("pod")
                .filter(|_| w.qos.is_some() || parts[..i].contains(&"kubepods"))
            {
                w.pod_uid = Some(uid.to_string());
                continue;
            }
            // Monitors first: their prefixes contain the containers'.
            for (prefix, rt) in [("crio-conmon-", "cri-o"), ("libpod-conmon-", "podman")] {
                if let Some(id) = name.strip_prefix(prefix).filter(|id| is_id(id)) {
                    w.runtime = Some(rt);
                    w.container = Some(id.to_string());
                    w.monitor = true;
                }
            }
            if w.monitor {
                continue;
            }
            for (prefix, rt) in [
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
                ("docker-", "docker"),
                ("libpod-", "podman"),
                ("nerdctl-", "containerd"),
            ] {
                if let Some(id) = name.strip_prefix(prefix).filter(|id| is_id(id)) {
                    w.runtime = Some(rt);
                    w.container = Some(id.to_string());
                }
            }
            if let Some(n) = comp.strip_prefix("lxc.payload.") {
                w.runtime = Some("lxc");
                w.container = Some(n.to_string());
            }
            if i > 0 && is_id(comp) && w.container.is_none() {
                w.container = Some(comp.to_string());
                w.runtime = match parts[i - 1] {
                    "docker" => Some("docker"),
                    "libpod_parent" => Some("podman"),
                    _ if w.pod_uid.is_some() => None,
                    // containerd's cgroupfs layout: /<namespace>/<id>.
                    _ if i == 1 => Some("containerd"),
                    _ => None,
                };
            }
            if i == 1 && parts[0] == "lxc" {
                w.runtime = Some("lxc");
                w.container = Some(comp.to_string());
            }
        }
        (w != Workload::default()).then_some(w)
    }

    /// From a `/proc/PID/cgroup` list: the unified line when it names a
    /// container or unit, else the first v1 line that does (on a hybrid
    /// machine Docker may manage only the v1 hierarchies).
    pub fn from_lines(lines: &[String]) -> Option<Workload> {
        let path_of = |l: &String| wedge_model::membership(l).map(|(_, _, p)| p.to_string());
        let mut best: Option<Workload> = None;
        let unified = lines.iter().filter(|l| l.starts_with("0::"));
        let v1 = lines.iter().filter(|l| !l.starts_with("0::"));
        for l in unified.chain(v1) {
            let Some(w) = path_of(l).and_then(|p| Workload::from_path(&p)) else {
                continue;
            };
            if w.container.is_some() || w.pod_uid.is_some() {
                return Some(w);
            }
            best.get_or_insert(w);
        }
        best
    }

    /// In a few words: `pod 3f2a…/container 0c4d5e6f7a8b (containerd)`,
    /// `docker 4f1c9e2b7d3a`, `unit nginx.service`. Ids are cut to 12.
    pub fn words(&self) -> String {
        let short = |s: &str| s.chars().take(12).collect::<String>();
        let mut out = Vec::new();
        if let Some(uid) = &self.pod_uid {
            // A UID's first group is as unique as a container id's 12.
            out.push(format!("pod {}", uid.split('-').next().unwrap_or(uid)));
        }
        match (&self.container, self.runtime) {
            (Some(c), Some("lxc")) => out.push(format!("lxc {c}")),
            (Some(c), Some(rt)) if self.pod_uid.is_some() => {
                out.push(format!("container {} ({rt})", short(c)))
            }
            (Some(c), Some(rt)) => out.push(format!("{rt} {}", short(c))),
            (Some(c), None) => out.push(format!("container {}", short(c))),
            _ => {}
        }
        if self.monitor {
            out.push("monitor".into());
        }
        if out.is_empty() {
            if let Some(u) = &self.unit {
                out.push(format!("unit {u}"));
            } else if let Some(s) = &self.slice {
                out.push(format!("slice {s}"));
            }
        }
        out.join(" ")
    }
}

/// The workload of a process, from its cgroup membership.
pub fn of(p: &Process) -> Option<Workload> {
    Workload::from_lines(p.cgroup.value()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c9e2b7d3a5c6e8f9012345678901234567890abcdef1234567890abcdef12";

    fn w(path: &str) -> Workload {
        Workload::from_path(path).unwrap_or_else(|| panic!("{path}: nothing"))
    }

    #[test]
    fn docker() {
        let a = w(&format!("/docker/{ID}"));
        assert_eq!(
            (a.runtime, a.container.as_deref()),
            (Some("docker"), Some(ID))
        );
        assert_eq!(a.words(), "docker 4f1c9e2b7d3a");
        let b = w(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(
            (b.runtime, b.container.as_deref()),
            (Some("docker"), Some(ID))
        );
        assert_eq!(
            b.unit.as_deref(),
            Some(format!("docker-{ID}.scope").as_str())
        );
        assert_eq!(b.slice.as_deref(), Some("system.slice"));
    }

    #[test]
    fn kubernetes_cgroupfs_and_systemd() {
        let uid = "8a3c1f2e-1b2c-4d5e-9f00-112233445566";
        let a = w(&format!("/kubepods/burstable/pod{uid}/{ID}"));
        assert_eq!(a.pod_uid.as_deref(), Some(uid));
        assert_eq!(a.qos.as_deref(), Some("burstable"));
        assert_eq!(a.container.as_deref(), Some(ID));
        assert_eq!(a.words(), "pod 8a3c1f2e container 4f1c9e2b7d3a");
        let g = w(&format!("/kubepods/pod{uid}/{ID}"));
        assert_eq!((g.pod_uid.as_deref(), g.qos.as_deref()), (Some(uid), None));
        let under = uid.replace('-', "_");
        let s = w(&format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{under}.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(s.pod_uid.as_deref(), Some(uid));
        assert_eq!(s.qos.as_deref(), Some("besteffort"));
        assert_eq!(
            (s.runtime, s.container.as_deref()),
            (Some("containerd"), Some(ID))
        );
        assert_eq!(
            s.words(),
            "pod 8a3c1f2e container 4f1c9e2b7d3a (containerd)"
        );
        let c = w(&format!(
            "/kubepods.slice/kubepods-pod{under}.slice/crio-{ID}.scope"
        ));
        assert_eq!(
            (c.runtime, c.pod_uid.as_deref()),
            (Some("cri-o"), Some(uid))
        );
        // The pod's sandbox-less level: the pod itself.
        let p = w(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{under}.slice"
        ));
        assert_eq!(
            (p.pod_uid.as_deref(), p.container.as_deref()),
            (Some(uid), None)
        );
    }

    #[test]
    fn podman_crio_lxc_containerd_units() {
        let a = w(&format!("/machine.slice/libpod-{ID}.scope"));
        assert_eq!((a.runtime, a.monitor), (Some("podman"), false));
        let m = w(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
        assert_eq!((m.runtime, m.monitor), (Some("podman"), true));
        let r = w(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        ));
        assert_eq!(
            (r.runtime, r.container.as_deref()),
            (Some("podman"), Some(ID))
        );
        let c = w(&format!("/libpod_parent/libpod-{ID}"));
        assert_eq!(c.runtime, Some("podman"));
        assert!(w(&format!("/crio-conmon-{ID}.scope")).monitor);
        assert_eq!(w("/lxc.payload.web1").words(), "lxc web1");
        assert_eq!(w("/lxc/web1").words(), "lxc web1");
        assert_eq!(w(&format!("/default/{ID}")).runtime, Some("containerd"));
        let u = w("/system.slice/nginx.service");
        assert_eq!(u.words(), "unit nginx.service");
        assert_eq!(
            w("/user.slice/user-1000.slice/session-3.scope").words(),
            "unit session-3.scope"
        );
        assert!(Workload::from_path("/").is_none());
        assert!(Workload::from_path("/process_api/298a80e6b0592bf2c3c3bdd81f588ca4").is_none());
    }

    #[test]
    fn lines_prefer_a_container() {
        let lines: Vec<String> = [
            "12:pids:/system.slice/containerd.service".to_string(),
            format!("6:freezer:/docker/{ID}"),
            "0::/".to_string(),
        ]
        .into_iter()
        .collect();
        let x = Workload::from_lines(&lines).unwrap();
        assert_eq!(x.runtime, Some("docker"));
        let plain = vec!["0::/system.slice/cron.service".to_string()];
        assert_eq!(
            Workload::from_lines(&plain).unwrap().words(),
            "unit cron.service"
        );
    }
}
