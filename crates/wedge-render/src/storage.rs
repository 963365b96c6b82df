//! `wedge storage`: the machine's block devices as a stack (disk →
//! partitions → the dm/md devices built on them; a loop device → its
//! backing file and the filesystem that file is on), each with its
//! mounts, whether its filesystem is frozen, the requests in flight and
//! whether any completed during the scan, the driver's state and the
//! queue's scheduler and timeout.
//!
//! Everything comes from the snapshot: the backing file of a loop device
//! is matched to a mount by its path string, never opened (it may be on
//! the very filesystem that is stuck).

use crate::view::{json_line, write_out, Status};
use serde::Serialize;
use std::io::Write;
use wedge_model::{BlockDevice, BlockKind, Limitation, Snapshot, SCHEMA_VERSION};

/// Columns of the text view.
const WIDTH: usize = 100;

/// A mount of a device's filesystem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MountView {
    pub mount_point: String,
    pub fs_type: String,
}

/// Where a loop device's backing file is: the mount its path falls under.
#[derive(Debug, Clone, Serialize)]
pub struct BackingView {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_point: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// The block device under that mount, when it is one (the stack goes
    /// on there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// One device with what the view derives for it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView<'a> {
    pub device: &'a BlockDevice,
    /// Devices drawn under it: its partitions and the devices built on it
    /// (`holders/`).
    pub children: Vec<String>,
    pub mounts: Vec<MountView>,
    /// The freeze level of the filesystem on it (`unfrozen` … `complete`),
    /// when it is mounted and the superblocks were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<wedge_model::FreezeLevel>,
    /// Who froze it (`user`, `kernel`), where the kernel records it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frozen_by: Vec<String>,
    /// Why the freeze state is unknown (superblocks not read), for a
    /// mounted device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_unknown: Option<String>,
    /// Requests completed between the two samples, and over how long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Requests were in flight at both samples and none completed.
    pub stalled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<BackingView>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct StorageView<'a> {
    pub schema_version: u32,
    /// The devices, stack roots first in tree order; empty when missing.
    pub devices: Vec<DeviceView<'a>>,
    /// The names at the top of the stack (no parent, built on nothing).
    pub roots: Vec<String>,
    /// Why the devices could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices_missing: Option<String>,
    /// Why the superblocks' freeze state could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superblocks_missing: Option<String>,
    pub limitations: Vec<Limitation>,
}

fn children_of(all: &[BlockDevice], d: &BlockDevice) -> Vec<String> {
    let mut out: Vec<String> = all
        .iter()
        .filter(|c| c.parent.as_deref() == Some(d.name.as_str()))
        .map(|c| c.name.clone())
        .collect();
    out.extend(d.holders.iter().cloned());
    out
}

fn mounts_of(snap: &Snapshot, d: &BlockDevice) -> Vec<MountView> {
    let mut out: Vec<MountView> = Vec::new();
    for m in &snap.mounts {
        if (m.major, m.minor) != (d.major, d.minor) {
            continue;
        }
        let v = MountView {
            mount_point: m.mount_point.clone(),
            fs_type: m.fs_type.clone(),
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The mount a backing file's path falls under: the path is a string,
/// matched, never opened. `loop/backing_file` is `d_path()` of the file
/// from the root of the task that reads the attribute — wedge itself — so
/// it is looked up in wedge's own mount namespace (init's if wedge is not
/// in the snapshot).
fn backing_of(snap: &Snapshot, d: &BlockDevice) -> Option<BackingView> {
    let b = d.backing.as_ref()?;
    let viewer = i32::try_from(std::process::id())
        .ok()
        .and_then(|me| snap.process(me))
        .or_else(|| snap.process(1));
    let path = b.file.strip_suffix(" (deleted)").unwrap_or(&b.file);
    let m = viewer.and_then(|p| snap.mount_at(p, path));
    Some(BackingView {
        file: b.file.clone(),
        mount_point: m.map(|m| m.mount_point.clone()),
        fs_type: m.map(|m| m.fs_type.clone()),
        device: m
            .filter(|m| m.major != 0)
            .and_then(|m| snap.block_device(m.major, m.minor))
            .map(|x| x.name.clone()),
    })
}

/// Builds the view of a snapshot.
pub fn build(snap: &Snapshot) -> StorageView<'_> {
    let devices_missing = snap.block_devices.missing_info().map(|m| m.to_string());
    let superblocks_missing = snap.superblocks.missing_info().map(|m| m.to_string());
    let all: &[BlockDevice] = snap.block_devices.value().map_or(&[], |v| v.as_slice());
    let is_root = |d: &BlockDevice| d.parent.is_none() && d.slaves.is_empty();
    let roots: Vec<String> = all
        .iter()
        .filter(|d| is_root(d))
        .map(|d| d.name.clone())
        .collect();
    // Tree order: each root, then depth-first what is under it; a device
    // built on two others appears once, under the first.
    let mut order: Vec<&BlockDevice> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    fn visit<'a>(
        all: &'a [BlockDevice],
        d: &'a BlockDevice,
        order: &mut Vec<&'a BlockDevice>,
        seen: &mut std::collections::HashSet<&'a str>,
    ) {
        if !seen.insert(d.name.as_str()) {
            return;
        }
        order.push(d);
        for c in children_of(all, d) {
            if let Some(cd) = all.iter().find(|x| x.name == c) {
                visit(all, cd, order, seen);
            }
        }
    }
    for d in all.iter().filter(|d| is_root(d)) {
        visit(all, d, &mut order, &mut seen);
    }
    // A stack whose bottom was not listed (a partition whose disk vanished
    // mid-scan): still shown.
    for d in all {
        visit(all, d, &mut order, &mut seen);
    }
    let devices = order
        .into_iter()
        .map(|d| {
            let mounts = mounts_of(snap, d);
            let sb = snap.superblock(d.major, d.minor);
            let (frozen, frozen_by, frozen_unknown) = match (&superblocks_missing, sb) {
                (_, Some(s)) => (Some(s.frozen), s.holders.clone(), None),
                (Some(why), None) if !mounts.is_empty() => (None, Vec::new(), Some(why.clone())),
                _ => (None, Vec::new(), None),
            };
            DeviceView {
                device: d,
                children: children_of(all, d),
                mounts,
                frozen,
                frozen_by,
                frozen_unknown,
                completed: d.progress.map(|p| p.completed()),
                interval_ms: d.progress.map(|p| p.interval_ms),
                stalled: d.progress.is_some_and(|p| p.stalled()),
                backing: backing_of(snap, d),
            }
        })
        .collect();
    StorageView {
        schema_version: SCHEMA_VERSION,
        devices,
        roots,
        devices_missing,
        superblocks_missing,
        limitations: snap
            .limitations
            .iter()
            .filter(|l| l.what.contains("superblock") || l.what.contains("BPF"))
            .cloned()
            .collect(),
    }
}

fn kind_name(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Disk => "disk",
        BlockKind::Nvme => "nvme",
        BlockKind::Partition => "part",
        BlockKind::Loop => "loop",
        BlockKind::DeviceMapper => "dm",
        BlockKind::Md => "md",
        BlockKind::Nbd => "nbd",
        BlockKind::Memory => "memory",
        BlockKind::Other => "other",
    }
}

/// 512-byte sectors as lsblk prints sizes (`64M`, `1.8T`).
fn size_text(sectors: Option<u64>) -> String {
    let Some(s) = sectors else {
        return "-".into();
    };
    let bytes = s as f64 * 512.0;
    let units = ["B", "K", "M", "G", "T", "P"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}{}", units[u])
    } else {
        format!("{v:.1}{}", units[u])
    }
}

fn freeze_name(f: wedge_model::FreezeLevel) -> &'static str {
    use wedge_model::FreezeLevel::*;
    match f {
        Unfrozen => "unfrozen",
        Write => "freezing (writes blocked)",
        PageFault => "freezing (page faults blocked)",
        Fs => "freezing (fs internals blocked)",
        Complete => "FROZEN",
    }
}

/// The text view.
pub fn render(v: &StorageView<'_>) -> String {
    let mut out = String::new();
    if let Some(why) = &v.devices_missing {
        out.push_str(&format!("block devices not read: {why}\n"));
        return out;
    }
    out.push_str(&format!(
        "{:<22} {:<8} {:<6} {:>6} {:>6} {:<16} {:<10} {}\n",
        "DEVICE", "MAJ:MIN", "KIND", "SIZE", "FLIGHT", "I/O", "STATE", "SCHED/TIMEOUT"
    ));
    // Depth of each device in the tree, from the roots.
    let mut depth: std::collections::HashMap<&str, usize> = Default::default();
    for d in &v.devices {
        let own = depth.get(d.device.name.as_str()).copied().unwrap_or(0);
        for c in &d.children {
            depth.entry(c.as_str()).or_insert(own + 1);
        }
    }
    // Loop devices with nothing attached (`/dev/loop0`…`7` made at boot):
    // in the JSON, not worth a line each.
    let unbound = |d: &DeviceView<'_>| {
        d.device.kind == BlockKind::Loop && d.device.backing.is_none() && d.mounts.is_empty()
    };
    let hidden = v.devices.iter().filter(|d| unbound(d)).count();
    for d in v.devices.iter().filter(|d| !unbound(d)) {
        let b = d.device;
        let level = depth.get(b.name.as_str()).copied().unwrap_or(0);
        let name = if level == 0 {
            b.name.clone()
        } else {
            format!("{}└─{}", "  ".repeat(level - 1), b.name)
        };
        let flight = b
            .inflight
            .map(|i| i.total().to_string())
            .unwrap_or_else(|| "-".into());
        let io = match (d.stalled, d.completed, d.interval_ms) {
            (true, _, Some(ms)) => format!("STALLED {ms}ms"),
            (_, Some(n), Some(ms)) if n > 0 => format!("{n} done/{ms}ms"),
            (_, Some(_), _) => "idle".into(),
            _ => "-".into(),
        };
        let sched = match (&b.queue.scheduler, b.queue.io_timeout_ms) {
            (Some(s), Some(t)) => format!("{s}/{}s", t / 1000),
            (Some(s), None) => s.clone(),
            (None, Some(t)) => format!("-/{}s", t / 1000),
            (None, None) => "-".into(),
        };
        let line = format!(
            "{:<22} {:<8} {:<6} {:>6} {:>6} {:<16} {:<10} {}",
            crate::fit(&name, 22),
            format!("{}:{}", b.major, b.minor),
            kind_name(b.kind),
            size_text(b.size_sectors),
            flight,
            io,
            crate::fit(b.state.as_deref().unwrap_or("-"), 10),
            sched
        );
        out.push_str(&crate::fit(&line, WIDTH));
        out.push('\n');
        let pad = format!("{}    ", "  ".repeat(level));
        // `cut`: fitted to the width; a command is never cut (one cut
        // short is worse than a long line).
        let mut line_out = |s: String, cut: bool| {
            let l = format!("{pad}{s}");
            out.push_str(&if cut { crate::fit(&l, WIDTH) } else { l });
            out.push('\n');
        };
        if let Some(dm) = &b.dm {
            let susp = if dm.suspended == Some(true) {
                ", SUSPENDED (queues all I/O)"
            } else {
                ""
            };
            line_out(format!("dm {}{susp}", dm.name), true);
        }
        if let Some(bk) = &d.backing {
            let on = match (&bk.mount_point, &bk.fs_type) {
                (Some(mp), Some(fs)) => {
                    let dev = bk
                        .device
                        .as_deref()
                        .map(|x| format!(", device {x}"))
                        .unwrap_or_default();
                    format!(" (on {mp}, {fs}{dev})")
                }
                _ => String::new(),
            };
            line_out(format!("backing file {}{on}", bk.file), true);
        }
        for m in &d.mounts {
            let frozen = match (&d.frozen, &d.frozen_unknown) {
                (Some(f), _) => {
                    let by = if d.frozen_by.is_empty() {
                        String::new()
                    } else {
                        format!(" by {}", d.frozen_by.join("+"))
                    };
                    if f.is_frozen() {
                        format!(", {}{by}", freeze_name(*f))
                    } else {
                        ", not frozen".into()
                    }
                }
                (None, Some(why)) => format!(", frozen: unknown: {why}"),
                (None, None) => String::new(),
            };
            line_out(
                format!("mounted on {} ({}){frozen}", m.mount_point, m.fs_type),
                true,
            );
        }
        // The remedy on a line of its own.
        if let Some(m) = d
            .mounts
            .first()
            .filter(|_| d.frozen.is_some_and(|f| f.is_frozen()))
        {
            line_out(format!("thaw: fsfreeze -u {}", m.mount_point), false);
        }
        if !b.unread.is_empty() {
            line_out(format!("unread: {}", b.unread.join("; ")), true);
        }
    }
    if hidden > 0 {
        out.push_str(&format!(
            "({hidden} loop devices with no backing file not shown)\n"
        ));
    }
    if let Some(why) = &v.superblocks_missing {
        out.push_str(&crate::fit(
            &format!("note: freeze state unknown: {why}"),
            WIDTH,
        ));
        out.push('\n');
    }
    out
}

/// `wedge storage [--json]`: Found when a device is stalled or a
/// filesystem frozen.
pub fn storage(snap: &Snapshot, json: bool, out: &mut dyn Write) -> Result<Status, String> {
    let v = build(snap);
    let found = v
        .devices
        .iter()
        .any(|d| d.stalled || d.frozen.is_some_and(|f| f.is_frozen()));
    let text = if json { json_line(&v)? } else { render(&v) };
    write_out(out, &text)?;
    Ok(Status::of(found, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use wedge_model::{FreezeLevel, Mount, Source, SuperBlockState};

    /// A snapshot of wedge-procfs's captured sysfs tree (loop0 with two
    /// partitions, vda, zram0, and the hand-written sda/sda1/dm-0/nvme0n1),
    /// with an ext4 mounted on loop0p1 and frozen by fsfreeze, and / on vda.
    fn snap() -> Snapshot {
        let root =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wedge-procfs/tests/fixtures/sys");
        let first = wedge_procfs::block::first_sample(&root);
        let mut helper = wedge_procfs::helper::Helper::new();
        let mut s = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        s.block_devices = wedge_procfs::block::read_devices(
            &root,
            first,
            &mut helper,
            std::time::Duration::from_secs(2),
            &mut Vec::new(),
        );
        helper.finish(std::time::Duration::from_secs(1));
        let mount = |id, major, minor, mp: &str| Mount {
            mount_id: id,
            parent_id: 1,
            major,
            minor,
            root: "/".into(),
            mount_point: mp.into(),
            options: "rw".into(),
            fs_type: "ext4".into(),
            source: String::new(),
            super_options: String::new(),
            mnt_ns: None,
        };
        s.mounts = vec![mount(1, 254, 0, "/"), mount(2, 259, 0, "/mnt/a")];
        let sb = |major, minor, frozen, holders: &[&str]| SuperBlockState {
            major,
            minor,
            fs_type: "ext4".into(),
            id: String::new(),
            frozen,
            holders: holders.iter().map(|h| h.to_string()).collect(),
            address: 0xffff_8880_0000_1000 + minor as u64,
        };
        s.superblocks = wedge_model::Field::Value(vec![
            sb(254, 0, FreezeLevel::Unfrozen, &[]),
            sb(259, 0, FreezeLevel::Complete, &["user"]),
        ]);
        s
    }

    #[test]
    fn the_stack_as_a_tree() {
        let s = snap();
        let v = build(&s);
        let names: Vec<&str> = v.devices.iter().map(|d| d.device.name.as_str()).collect();
        // Roots in name order, each followed by what is under it; dm-0 is
        // under sda1, the partition it is built on.
        assert_eq!(
            names,
            ["loop0", "loop0p1", "loop0p2", "nvme0n1", "sda", "sda1", "dm-0", "vda", "zram0"]
        );
        assert_eq!(v.roots, ["loop0", "nvme0n1", "sda", "vda", "zram0"]);
        let text = render(&v);
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{l:?}");
        }
        let line = |name: &str| {
            text.lines()
                .find(|l| {
                    l.trim_start_matches([' ', '└', '─'])
                        .starts_with(&format!("{name} "))
                })
                .unwrap_or_else(|| panic!("no {name}:\n{text}"))
        };
        assert!(line("loop0p1").starts_with("└─loop0p1"), "{text}");
        assert!(line("dm-0").starts_with("  └─dm-0"), "{text}");
        assert!(line("sda").contains("STALLED"), "{text}");
        assert!(line("sda").contains("offline"), "{text}");
        assert!(line("nvme0n1").contains("resetting"), "{text}");
        assert!(line("nvme0n1").contains("none/30s"), "{text}");
        assert!(
            text.contains("mounted on /mnt/a (ext4), FROZEN by user\n"),
            "{text}"
        );
        assert!(text.contains("      thaw: fsfreeze -u /mnt/a\n"), "{text}");
        assert!(text.contains("mounted on / (ext4), not frozen"), "{text}");
        assert!(text.contains("dm vg0-root, SUSPENDED"), "{text}");
        assert!(text.contains("backing file /work/"), "{text}");
        let mut out = Vec::new();
        assert_eq!(storage(&s, false, &mut out), Ok(Status::Found));
    }

    #[test]
    fn unknown_freeze_state_says_why() {
        let mut s = snap();
        s.superblocks = wedge_model::Field::missing(
            wedge_model::MissingReason::NotSupported,
            "not read: --no-bpf",
        );
        let v = build(&s);
        let a = v
            .devices
            .iter()
            .find(|d| d.device.name == "loop0p1")
            .unwrap();
        assert!(a.frozen.is_none());
        assert!(a
            .frozen_unknown
            .as_deref()
            .is_some_and(|w| w.contains("--no-bpf")));
        let text = render(&v);
        assert!(
            text.contains("mounted on /mnt/a (ext4), frozen: unknown:"),
            "{text}"
        );
        let json = json_line(&v).unwrap();
        assert!(json.contains("\"frozen_unknown\""), "{json}");
    }
}
