//! Storage wedges: a frozen filesystem and its held writers, a block
//! device that does not complete I/O, a loop device whose backing file's
//! filesystem is stuck, a slow device, and I/O waits wedge cannot tie
//! further. Each storage waiter in D is covered by one of them (the
//! uninterruptible rule leaves them here); the remedies are tied to the
//! device or filesystem at the end of the waiter's chain, and say what
//! they lose.

use super::fuse::{abort_remedies, fusectl_remedy};
use super::{ev, off_cpu, stack_evidence, task_path, DO_NOT_PTRACE, STUCK_AFTER_MS};
use crate::finding::{Confidence, Evidence, Finding, Remedy, Severity};
use crate::graph::{self, EdgeKind, Graph, Node};
use crate::storage::{is_storage, not_completing, wait_kind_in};
use crate::wait::{describe_wait, WaitKind};
use std::collections::BTreeMap;
use wedge_kernel::TaskState;
use wedge_model::{BlockDevice, BlockKind, Process, Snapshot, Thread};

rule_ids! {
    /// The storage family.
    pub enum StorageRule {
        /// Writers held at a frozen filesystem's gate (or a filesystem
        /// kernel memory shows frozen).
        Frozen = "storage.frozen",
        /// A block device that does not complete I/O, with tasks waiting
        /// on it.
        DeviceStalled = "storage.device_stalled",
        /// A loop device whose backing file's filesystem (FUSE, NFS) is
        /// stuck.
        LoopBackingStuck = "storage.loop_backing_stuck",
        /// A task long in a storage wait that wedge cannot tie to a device
        /// known not to complete I/O.
        IoWait = "storage.io_wait",
        /// A device that completes I/O while tasks wait on it for long:
        /// slow, not stuck.
        Slow = "storage.slow",
        /// The kernel logged I/O errors of a device.
        IoErrors = "storage.io_errors",
        /// The kernel logged a filesystem's own error (EXT4-fs error, XFS
        /// shutdown, BTRFS error).
        FsError = "storage.fs_error",
    }
}

impl StorageRule {
    pub fn explanation(self) -> &'static str {
        match self {
            StorageRule::Frozen => {
                "A frozen filesystem (FIFREEZE: fsfreeze -f, a backup or VM-snapshot agent, LVM \
                 snapshot) blocks every new write at sb_start_write(), every store to a mapped page \
                 at sb_start_pagefault() and the filesystem's own transactions at \
                 sb_start_intwrite(): the tasks sleep uninterruptibly in percpu_rwsem_wait() until \
                 the filesystem is thawed. Nothing times out: it lasts until whoever froze it thaws \
                 it (FITHAW: fsfreeze -u)."
            }
            StorageRule::DeviceStalled => {
                "Requests were in flight on the device and none completed between two reads of its \
                 counters, or its state says it cannot complete them (a SCSI device offline or \
                 blocked, an NVMe controller resetting or dead, a suspended device-mapper device). \
                 Every task waiting for its I/O — and every filesystem on it — waits until the device \
                 completes or fails the requests."
            }
            StorageRule::LoopBackingStuck => {
                "A loop device turns its block I/O into reads and writes of its backing file, done \
                 by a kernel worker (kworker/…+loopN). When the backing file's filesystem does not \
                 answer (a FUSE daemon, an NFS server), the worker waits there and every reader and \
                 writer of the loop device — and of the filesystem on it — waits behind it."
            }
            StorageRule::IoWait => {
                "The task has waited for storage I/O far longer than a working device takes; wedge \
                 could not tie the wait to a device it can show to be stuck (its counters, its \
                 state), so the chain below is where to look."
            }
            StorageRule::Slow => {
                "The device completes I/O — its counters moved between two reads — but tasks have \
                 waited on it for long: it is slow or overloaded, not stuck. The waits end by \
                 themselves as the queue drains."
            }
            StorageRule::IoErrors => {
                "The block layer logged failed requests of this device: the reads or writes named \
                 returned EIO to whoever issued them (a filesystem, a process doing direct I/O). A \
                 write error on a filesystem's metadata or journal usually ends in the filesystem \
                 going read-only."
            }
            StorageRule::FsError => {
                "The filesystem logged an error of its own (corruption detected, a failed metadata \
                 write): with errors=remount-ro (ext4's default) it is remounted read-only and every \
                 later write fails with EROFS; XFS shuts down (EIO on every access) until unmounted \
                 and repaired."
            }
        }
    }
}

/// Where a storage waiter's chain ends, for grouping: the most specific
/// stuck thing on its way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Root {
    Frozen(Node),
    Loop(String),
    Device(String),
    Slow(String),
    Unknown,
}

fn root_of(snap: &Snapshot, g: &Graph, node: &Node) -> Root {
    let direct: Vec<&graph::Edge> = g.out(node).collect();
    if let Some(e) = direct
        .iter()
        .find(|e| e.kind == EdgeKind::FrozenFilesystem)
    {
        return Root::Frozen(e.to.clone());
    }
    let mut stalled: Option<String> = None;
    let mut slow: Option<String> = None;
    for chain in g.chains(node).into_iter().take(8) {
        for (i, n) in chain.iter().enumerate().skip(1) {
            let Node::BlockDevice { name } = n else {
                continue;
            };
            let d = snap.block_device_named(name);
            let is_loop = d.map_or(name.starts_with("loop"), |d| d.kind == BlockKind::Loop);
            // A loop device whose chain goes on past it: to its worker,
            // and from there to a FUSE connection or a server.
            if is_loop
                && chain[i + 1..].iter().any(|m| {
                    matches!(
                        m,
                        Node::FuseConnection { .. } | Node::Server { .. } | Node::Unknown { .. }
                    )
                })
            {
                return Root::Loop(name.clone());
            }
            if let Some(d) = d {
                if not_completing(d).is_some() {
                    // The deepest stalled device is nearest the cause.
                    stalled = Some(name.clone());
                } else if d.progress.is_some_and(|p| p.completed() > 0) && slow.is_none() {
                    slow = Some(name.clone());
                }
            }
        }
    }
    match (stalled, slow) {
        (Some(d), _) => Root::Device(d),
        (None, Some(d)) => Root::Slow(d),
        _ => Root::Unknown,
    }
}

struct Waiter<'a> {
    p: &'a Process,
    t: &'a Thread,
    kind: WaitKind,
}

pub(super) fn storage(snap: &Snapshot, g: &Graph, out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<Root, Vec<Waiter>> = BTreeMap::new();
    for p in &snap.processes {
        for t in &p.threads {
            if t.state != TaskState::DiskSleep {
                continue;
            }
            let kind = wait_kind_in(snap, p, t);
            if !is_storage(&kind) {
                continue;
            }
            let root = root_of(snap, g, &Node::Task { pid: p.pid, tid: t.tid });
            groups.entry(root).or_default().push(Waiter { p, t, kind });
        }
    }
    // Frozen filesystems nobody waits on yet are worth knowing too.
    for m in crate::storage::frozen_mounts(snap) {
        let n = graph::fs_node(snap, m);
        groups.entry(Root::Frozen(n)).or_default();
    }
    for (root, waiters) in groups {
        let f = match &root {
            Root::Frozen(n) => frozen(snap, n, &waiters),
            Root::Loop(dev) => loop_stuck(snap, g, dev, &waiters),
            Root::Device(dev) => stalled(snap, dev, &waiters),
            Root::Slow(dev) => slow(snap, dev, &waiters),
            Root::Unknown => {
                for w in &waiters {
                    if let Some(f) = io_wait(snap, w) {
                        out.push(f);
                    }
                }
                None
            }
        };
        out.extend(f);
    }
}

fn pids(waiters: &[Waiter]) -> Vec<i32> {
    let mut v: Vec<i32> = Vec::new();
    for w in waiters {
        if !v.contains(&w.p.pid) {
            v.push(w.p.pid);
        }
    }
    v
}

fn longest(snap: &Snapshot, waiters: &[Waiter]) -> Option<f64> {
    waiters
        .iter()
        .filter_map(|w| off_cpu(snap, w.t))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
}

fn waiter_evidence(snap: &Snapshot, waiters: &[Waiter]) -> Vec<Evidence> {
    let mut out = Vec::new();
    for w in waiters.iter().take(8) {
        out.push(ev(
            format!("{}/stat", task_path(snap, w.p, w.t)),
            format!(
                "thread {} ({}) of {} ({}) is D and {}",
                w.t.tid,
                w.t.comm,
                w.p.comm,
                w.p.pid,
                describe_wait(snap, w.p, w.t)
            ),
        ));
        if let Some(e) = stack_evidence(snap, w.p, w.t) {
            out.push(e);
        }
        if w.t.in_iowait == Some(true) {
            out.push(ev(
                format!("BPF task iterator: task->in_iowait of thread {}", w.t.tid),
                "the kernel marks the sleep an I/O wait (in_iowait, set by io_schedule())",
            ));
        }
        if let Some(ms) = off_cpu(snap, w.t) {
            out.push(ev(
                format!("{}/sched", task_path(snap, w.p, w.t)),
                format!("off the CPU for {}", wedge_model::human_ms(ms)),
            ));
        }
    }
    if waiters.len() > 8 {
        out.push(ev(
            "wait-for graph",
            format!("and {} more waiting thread(s)", waiters.len() - 8),
        ));
    }
    out
}

fn sysfs(snap: &Snapshot, name: &str) -> String {
    match snap.source {
        wedge_model::Source::Live { .. } => format!("/sys/class/block/{name}"),
        wedge_model::Source::Vmcore { .. } => format!("dump: block device {name}"),
        wedge_model::Source::Recorded { .. } => format!("block_devices/{name}"),
    }
}

fn device_evidence(snap: &Snapshot, d: &BlockDevice) -> Vec<Evidence> {
    let mut out = Vec::new();
    let at = sysfs(snap, &d.name);
    if let Some(pr) = d.progress {
        out.push(ev(
            format!("{at}/stat (read twice, {} ms apart)", pr.interval_ms),
            format!(
                "{} request(s) completed between the reads; {} then {} in flight",
                pr.completed(),
                pr.first.in_flight,
                pr.second.in_flight
            ),
        ));
    }
    if let Some(i) = d.inflight {
        out.push(ev(
            format!("{at}/inflight"),
            format!("{} read(s) and {} write(s) in flight", i.reads, i.writes),
        ));
    }
    if let Some(s) = &d.state {
        out.push(ev(format!("{at}/device/state"), format!("state {s}")));
    }
    if let Some(dm) = &d.dm {
        if let Some(s) = dm.suspended {
            out.push(ev(
                format!("{at}/dm/suspended"),
                format!(
                    "device-mapper {} is {}",
                    dm.name,
                    if s { "suspended" } else { "not suspended" }
                ),
            ));
        }
    }
    for u in &d.unread {
        out.push(ev(at.clone(), format!("not read: {u}")));
    }
    out
}

use crate::storage::mounts_on;

fn frozen(snap: &Snapshot, n: &Node, waiters: &[Waiter]) -> Option<Finding> {
    let id = StorageRule::Frozen;
    let Node::Filesystem {
        mount_point,
        fs_type,
        major,
        minor,
        device,
    } = n
    else {
        return None;
    };
    let sb = snap.superblock(*major, *minor);
    let dev = device.clone().unwrap_or_else(|| format!("{major}:{minor}"));
    let mut evidence = waiter_evidence(snap, waiters);
    let (confidence, how) = match (sb, &snap.superblocks) {
        (Some(sb), _) if sb.frozen.is_frozen() => {
            evidence.insert(
                0,
                ev(
                    format!("kernel memory: super_block {:#x} s_writers.frozen", sb.address),
                    format!(
                        "the superblock of {mount_point} ({} {}) is frozen (level {:?}){}",
                        sb.fs_type,
                        sb.id,
                        sb.frozen,
                        if sb.holders.is_empty() {
                            String::new()
                        } else {
                            format!(", frozen by {}", sb.holders.join(" and "))
                        }
                    ),
                ),
            );
            (Confidence::High, "kernel memory shows it frozen".to_string())
        }
        (Some(_), _) => (
            Confidence::Low,
            "the waiters' frames say frozen, but kernel memory shows the superblock not frozen \
             now: it may have been thawed between the reads"
                .to_string(),
        ),
        (None, wedge_model::Field::Missing(m)) => (
            Confidence::Medium,
            format!(
                "from the waiters' frames alone (percpu_rwsem_wait under a superblock's freeze \
                 protection); the freeze state itself was not read: {}",
                m.detail
            ),
        ),
        (None, _) => (
            Confidence::Medium,
            "from the waiters' frames alone: kernel memory lists no superblock of this device"
                .to_string(),
        ),
    };
    let kernel_held = sb.is_some_and(|s| {
        !s.holders.is_empty() && s.holders.iter().all(|h| h == "kernel")
    });
    let mut remedies = Vec::new();
    if snap.source.machine_gone() {
        remedies.push(Remedy {
            action: format!(
                "on the machine this dump was taken from, thawing {mount_point} (fsfreeze -u) would \
                 have released the writers; nothing to run now"
            ),
            command: None,
        });
    } else if kernel_held {
        remedies.push(Remedy {
            action: format!(
                "the kernel itself froze {mount_point} (for its device: a device-mapper suspend, a \
                 block-device freeze), so fsfreeze -u fails with EINVAL: resume the device instead \
                 (dmsetup resume for device-mapper), which thaws the filesystem"
            ),
            command: None,
        });
    } else {
        remedies.push(Remedy {
            action: format!(
                "thaw {mount_point}: the held writers resume. If a backup or snapshot agent (VM \
                 snapshot, LVM snapshot, a database freeze hook) froze it, check on it first: \
                 thawing before its snapshot is taken leaves that snapshot inconsistent"
            ),
            command: Some(format!("fsfreeze -u {mount_point}")),
        });
    }
    let stuck = !waiters.is_empty();
    let title = if waiters.is_empty() {
        format!("filesystem {mount_point} ({fs_type} on {dev}) is frozen")
    } else {
        format!(
            "{} task(s) held by the frozen filesystem {mount_point} ({fs_type} on {dev})",
            waiters.len()
        )
    };
    let lead = format!(
        "{mount_point} ({fs_type} on {dev}) is frozen — {how}{}.",
        match longest(snap, waiters) {
            Some(ms) => format!(
                "; the longest writer has waited {}",
                wedge_model::human_ms(ms)
            ),
            None => String::new(),
        }
    );
    Some(Finding {
        severity: if stuck {
            Severity::Critical
        } else {
            Severity::Warning
        },
        confidence,
        pids: pids(waiters),
        evidence,
        explanation: super::explained(lead, id.into()),
        remedies,
        do_not: vec![
            format!(
                "do not umount -l {mount_point} to get out: it only detaches the name; the held \
                 writers stay held and the filesystem stays frozen"
            ),
            DO_NOT_PTRACE.into(),
        ],
        ..Finding::new(id, title)
    })
}

/// What makes a device that does not complete I/O complete or fail it,
/// tied to this device, each with what it loses.
fn device_remedies(snap: &Snapshot, d: &BlockDevice) -> Vec<Remedy> {
    let name = &d.name;
    if snap.source.machine_gone() {
        return vec![Remedy {
            action: format!(
                "{name} stopped completing I/O on the machine this dump was taken from: its driver's \
                 messages in the dump's log (wedge vmcore DUMP log) say why; nothing to run now"
            ),
            command: None,
        }];
    }
    let mut v = Vec::new();
    if let Some(dm) = &d.dm {
        if dm.suspended == Some(true) {
            v.push(Remedy {
                action: format!(
                    "resume device-mapper {}: its queued I/O is issued and nothing is lost — unless \
                     whatever suspended it (an LVM or multipath operation) is still at work: check \
                     dmsetup info first",
                    dm.name
                ),
                command: Some(format!("dmsetup resume {}", dm.name)),
            });
        }
        if dm.uuid.as_deref().is_some_and(|u| u.starts_with("mpath-")) {
            v.push(Remedy {
                action: format!(
                    "bring a path of multipath device {} back (multipath -ll shows which paths \
                     failed): queued I/O then completes and nothing is lost",
                    dm.name
                ),
                command: Some("multipath -ll".into()),
            });
            v.push(Remedy {
                action: format!(
                    "or stop {} queueing with no path left: every queued request fails with EIO — \
                     writes not yet on the storage are LOST, and filesystems on it see I/O errors \
                     (ext4 remounts read-only)",
                    dm.name
                ),
                command: Some(format!("dmsetup message {} 0 fail_if_no_path", dm.name)),
            });
        }
        if !v.is_empty() {
            return v;
        }
    }
    match d.kind {
        BlockKind::Nvme => {
            // nvme0n1 is namespace 1 of controller nvme0.
            let ctrl = d.controller.clone().unwrap_or_else(|| {
                name.get(4..)
                    .and_then(|r| r.find('n'))
                    .map_or(name.clone(), |i| name[..4 + i].to_string())
            });
            v.push(Remedy {
                action: format!(
                    "reset NVMe controller {ctrl}: outstanding commands are cancelled and retried \
                     once it is back; if it does not come back (state dead) its namespaces go away \
                     and their I/O fails with EIO — unwritten data is lost"
                ),
                command: Some(format!("echo 1 > /sys/class/nvme/{ctrl}/reset_controller")),
            });
        }
        BlockKind::Nbd => {
            v.push(Remedy {
                action: format!(
                    "bring the NBD server of {name} back (or reconnect nbd-client): queued I/O then \
                     completes and nothing is lost"
                ),
                command: None,
            });
            v.push(Remedy {
                action: format!(
                    "or disconnect {name}: its queued and later I/O fails with EIO — writes not yet \
                     on the server are LOST, and a filesystem on it sees I/O errors"
                ),
                command: Some(format!("nbd-client -d /dev/{name}")),
            });
        }
        _ if d.state.is_some() => {
            let state = d.state.as_deref().unwrap_or("");
            v.push(Remedy {
                action: format!(
                    "once the transport is back (cable, SAN path, iSCSI session), set {name} running: \
                     the SCSI midlayer resumes its queue and retries the commands, nothing is lost; \
                     while the transport is still down the commands fail again (now {state})"
                ),
                command: Some(format!("echo running > /sys/block/{name}/device/state")),
            });
            v.push(Remedy {
                action: format!(
                    "last resort: delete {name} — its in-flight I/O fails and dirty data not yet \
                     written is LOST; filesystems on it see I/O errors and must be unmounted"
                ),
                command: Some(format!("echo 1 > /sys/block/{name}/device/delete")),
            });
        }
        _ => v.push(Remedy {
            action: format!(
                "wedge cannot tell what would make {name} complete I/O (no device state, no \
                 device-mapper table it knows): its driver's messages in the kernel log (wedge log) \
                 say more"
            ),
            command: None,
        }),
    }
    v
}

fn stalled(snap: &Snapshot, dev: &str, waiters: &[Waiter]) -> Option<Finding> {
    let id = StorageRule::DeviceStalled;
    let d = snap.block_device_named(dev)?;
    let why = not_completing(d).unwrap_or_default();
    let mut evidence = device_evidence(snap, d);
    evidence.extend(waiter_evidence(snap, waiters));
    let mounts: Vec<String> = mounts_on(snap, dev)
        .iter()
        .map(|m| format!("{} ({})", m.mount_point, m.fs_type))
        .collect();
    let lead = format!(
        "{dev} does not complete I/O: {why}.{}",
        if mounts.is_empty() {
            String::new()
        } else {
            format!(" Mounted from it: {}.", mounts.join(", "))
        }
    );
    Some(Finding {
        severity: Severity::Critical,
        confidence: if d.progress.is_some_and(|p| p.stalled()) {
            Confidence::High
        } else {
            Confidence::Medium
        },
        pids: pids(waiters),
        evidence,
        explanation: super::explained(lead, id.into()),
        remedies: device_remedies(snap, d),
        do_not: vec![DO_NOT_PTRACE.into()],
        ..Finding::new(
            id,
            format!(
                "block device {dev} does not complete I/O; {} task(s) wait on it",
                waiters.len()
            ),
        )
    })
}

fn loop_stuck(snap: &Snapshot, g: &Graph, dev: &str, waiters: &[Waiter]) -> Option<Finding> {
    let id = StorageRule::LoopBackingStuck;
    let d = snap.block_device_named(dev);
    let file = d
        .and_then(|d| d.backing.as_ref())
        .map(|b| b.file.clone());
    let mut evidence = Vec::new();
    if let Some(d) = d {
        if let Some(b) = &d.backing {
            evidence.push(ev(
                format!("{}/loop/backing_file", sysfs(snap, dev)),
                format!("{dev}'s backing file is {}", b.file),
            ));
        }
        evidence.extend(device_evidence(snap, d));
    }
    // Where the device's chain ends: its worker's FUSE connection (or the
    // backing mount itself when no worker is seen), a server.
    let mut conns: Vec<(u32, String)> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let start = Node::BlockDevice {
        name: dev.to_string(),
    };
    for chain in g.chains(&start).into_iter().take(8) {
        evidence.push(ev(
            "wait-for graph",
            chain
                .iter()
                .map(|n| graph::describe(snap, n))
                .collect::<Vec<_>>()
                .join(" → "),
        ));
        for n in &chain {
            match n {
                Node::FuseConnection { id, mount_point }
                    if !conns.iter().any(|(c, _)| c == id) =>
                {
                    conns.push((*id, mount_point.clone()));
                }
                Node::Server { fs, name } => servers.push(format!("{fs} server {name}")),
                _ => {}
            }
        }
    }
    evidence.extend(waiter_evidence(snap, waiters));
    let on: Vec<String> = mounts_on(snap, dev)
        .iter()
        .map(|m| format!("{} ({})", m.mount_point, m.fs_type))
        .collect();
    let fs_words = if on.is_empty() {
        format!("a filesystem on {dev} sees I/O errors")
    } else {
        format!(
            "the filesystem on it ({}) sees I/O errors (ext4 remounts read-only)",
            on.join(", ")
        )
    };
    let mut remedies = Vec::new();
    if snap.source.machine_gone() {
        remedies.push(Remedy {
            action: format!(
                "on the machine this dump was taken from, {dev}'s backing file was on a filesystem \
                 that did not answer; nothing to run now"
            ),
            command: None,
        });
    } else if conns.len() == 1 {
        let (c, mp) = &conns[0];
        remedies.extend(fusectl_remedy(snap));
        remedies.extend(abort_remedies(
            *c,
            mp,
            "",
            &format!(
                "; {dev}'s queued reads and writes of its backing file fail with it: writes not yet \
                 in the backing file are LOST and {fs_words}"
            ),
        ));
    } else if conns.len() > 1 {
        remedies.push(Remedy {
            action: format!(
                "the chain of {dev} reaches {} FUSE connections ({}): find which holds its backing \
                 file before aborting any — aborting fails every request of every process on it",
                conns.len(),
                conns
                    .iter()
                    .map(|(c, m)| format!("{c} at {m}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            command: None,
        });
    } else if !servers.is_empty() {
        remedies.push(Remedy {
            action: format!(
                "bring {} back: the loop device's I/O then completes and nothing is lost; a forced \
                 unmount of that mount (umount -f) instead fails the backing file's I/O — writes not \
                 yet on the server are LOST and {fs_words}",
                servers.join(", ")
            ),
            command: None,
        });
    } else {
        remedies.push(Remedy {
            action: format!(
                "find what the filesystem of {dev}'s backing file{} waits on: wedge could not follow \
                 the chain there",
                file.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
            ),
            command: None,
        });
    }
    Some(Finding {
        severity: Severity::Critical,
        confidence: if conns.len() == 1 && d.is_some() {
            Confidence::High
        } else {
            Confidence::Medium
        },
        pids: pids(waiters),
        evidence,
        explanation: id.explanation().into(),
        remedies,
        do_not: vec![
            format!(
                "losetup -d {dev} does not end the wait: while the device is in use it only marks \
                 it to be detached when the last user closes it"
            ),
            DO_NOT_PTRACE.into(),
        ],
        ..Finding::new(
            id,
            format!(
                "loop device {dev}'s backing file{} is on a filesystem that does not answer; {} task(s) wait on {dev}",
                file.map(|f| format!(" {f}")).unwrap_or_default(),
                waiters.len()
            ),
        )
    })
}

fn slow(snap: &Snapshot, dev: &str, waiters: &[Waiter]) -> Option<Finding> {
    let id = StorageRule::Slow;
    let ms = longest(snap, waiters)?;
    if ms < STUCK_AFTER_MS {
        return None;
    }
    let d = snap.block_device_named(dev)?;
    let mut evidence = device_evidence(snap, d);
    evidence.extend(waiter_evidence(snap, waiters));
    Some(Finding {
        severity: Severity::Warning,
        confidence: Confidence::Medium,
        pids: pids(waiters),
        evidence,
        explanation: id.explanation().into(),
        remedies: vec![Remedy {
            action: format!(
                "find what loads {dev}: per-process I/O (iotop, /proc/PID/io) and the device's queue (iostat -x 1)"
            ),
            command: Some(format!("iostat -x 1 /dev/{dev}")),
        }],
        ..Finding::new(
            id,
            format!(
                "block device {dev} is slow, not stuck: it completes I/O, but {} task(s) have waited on it up to {}",
                waiters.len(),
                wedge_model::human_ms(ms)
            ),
        )
    })
}

fn io_wait(snap: &Snapshot, w: &Waiter) -> Option<Finding> {
    let id = StorageRule::IoWait;
    let ms = off_cpu(snap, w.t)?;
    if ms < STUCK_AFTER_MS {
        return None;
    }
    let mut evidence = waiter_evidence(snap, std::slice::from_ref(w));
    let why = match &snap.block_devices {
        wedge_model::Field::Missing(m) => format!(
            "whether its device completes I/O is not known: the block devices were not read ({})",
            m.detail
        ),
        _ => match crate::storage::target(snap, w.p, w.t) {
            None => "wedge cannot tie the wait to a filesystem or device (no fd, cwd or thread name leads there)".into(),
            Some(_) => "the devices on its way completed I/O or show no requests in flight".into(),
        },
    };
    evidence.push(ev("wait-for graph", why.clone()));
    let _ = &w.kind;
    Some(Finding {
        severity: Severity::Critical,
        confidence: if w.t.kernel_stack.value().is_some() {
            Confidence::Medium
        } else {
            Confidence::Low
        },
        pids: vec![w.p.pid],
        evidence,
        explanation: id.explanation().into(),
        remedies: vec![Remedy {
            action: format!(
                "check whether the device completes I/O: read /sys/block/DEV/inflight and stat twice, a few seconds apart, and its driver's messages (wedge log); {why}"
            ),
            command: None,
        }],
        do_not: vec![DO_NOT_PTRACE.into()],
        ..Finding::new(
            id,
            format!(
                "{} ({}) thread {} {}",
                w.p.comm,
                w.p.pid,
                w.t.tid,
                describe_wait(snap, w.p, w.t)
            ),
        )
    })
}
