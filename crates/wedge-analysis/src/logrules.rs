//! Findings from the kernel log of the running boot, linked to the tasks
//! of the snapshot where they still exist: the evidence a dead process
//! left behind (a trap, an OOM kill) and the kernel's own hang reports.

use crate::finding::{BlockedOn, Confidence, Evidence, Finding, Remedy, Severity};
use crate::graph::{Graph, Node};
use crate::rules::{rule_ids, NetFsRule, RuleId, StorageRule};
use std::collections::BTreeMap;
use wedge_kernel::TaskState;
use wedge_model::{LogDetail, LogEvent, Snapshot};

/// The log rules, by what they conclude: the diagnosis merges a
/// [`LogRule::HungTask`] finding into the live finding about the same task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRule {
    /// `pidns.init_abort`
    InitAbort,
    /// `kernel.hung_task`
    HungTask,
    /// `netfs.server_unreachable`, the id of the live rule about tasks
    /// waiting for the same servers.
    NfsServerUnreachable,
    /// `netfs.server_unreachable` from CIFS's `has not responded in N
    /// seconds`.
    CifsServerUnresponsive,
    /// `storage.io_errors`: block, buffer, SCSI and NVMe errors of one
    /// device.
    StorageIoErrors,
    /// `storage.fs_error`: a filesystem's own error report.
    FsError,
}

rule_ids! {
    /// The ids only the kernel log gives (the log's NFS rule concludes
    /// [`NetFsRule::ServerUnreachable`], as the live rule does).
    pub enum LogId {
        /// abort() as PID 1 of a pid namespace, from its trap.
        InitAbort = "pidns.init_abort",
        /// The hung-task detector's report about a task still in D.
        HungTask = "kernel.hung_task",
    }
}

impl LogId {
    pub fn explanation(self) -> &'static str {
        match self {
            LogId::InitAbort => LogRule::InitAbort.explanation(),
            LogId::HungTask => LogRule::HungTask.explanation(),
        }
    }
}

impl LogRule {
    /// The id of the findings this rule makes.
    pub fn id(self) -> RuleId {
        match self {
            LogRule::InitAbort => LogId::InitAbort.into(),
            LogRule::HungTask => LogId::HungTask.into(),
            LogRule::NfsServerUnreachable | LogRule::CifsServerUnresponsive => {
                NetFsRule::ServerUnreachable.into()
            }
            LogRule::StorageIoErrors => StorageRule::IoErrors.into(),
            LogRule::FsError => StorageRule::FsError.into(),
        }
    }

    /// What the log's finding means.
    pub fn explanation(self) -> &'static str {
        match self {
            LogRule::InitAbort => {
                "glibc's abort() raises SIGABRT; when that does not end the process it executes \
                 `hlt`, which faults in user mode, and the kernel kills the process with SIGSEGV. \
                 SIGABRT without a handler is discarded for the init (PID 1) of a pid namespace, so a \
                 container's PID 1 that calls abort() exits with status 139 (SIGSEGV) instead of 134 \
                 and leaves this trap in the log. The abort itself has its own cause (Node.js, for \
                 one, aborts when fstat on its stdio fails, e.g. with ESTALE on an NFS file deleted \
                 on the server)."
            }
            LogRule::HungTask => {
                "The hung-task detector reports tasks in uninterruptible sleep that have not run \
                 for kernel.hung_task_timeout_secs. It skips killable waits, so silence from it \
                 proves nothing."
            }
            LogRule::NfsServerUnreachable => {
                "The NFS client logged that the server stopped answering and has not logged `OK` \
                 since. With a hard mount (`still trying`) I/O waits until the server is back."
            }
            LogRule::CifsServerUnresponsive => {
                "The CIFS/SMB client logged that the server has not answered for the time shown; \
                 a hard mount retries until it does, a soft one fails the calls."
            }
            LogRule::StorageIoErrors => StorageRule::IoErrors.explanation(),
            LogRule::FsError => StorageRule::FsError.explanation(),
        }
    }
}

type Event = LogEvent;

fn ev(e: &Event, fact: String) -> Evidence {
    Evidence {
        source: format!(
            "kernel log line {}{}",
            e.line,
            e.monotonic
                .map(|m| format!(" [{m:.3}]"))
                .unwrap_or_default()
        ),
        fact,
    }
}

/// glibc's abort() ends in `hlt` when SIGABRT did not kill the process:
/// a #GP (error 0) inside libc. The kernel never delivers a signal without
/// a handler to a pid-namespace init, so abort() in a container's PID 1
/// dies of SIGSEGV (status 139) instead of SIGABRT (134).
fn is_abort_hlt(e: &Event) -> bool {
    let LogDetail::GpfTrap { lib, error } = &e.detail else {
        return false;
    };
    let in_libc = lib.as_deref().is_some_and(|l| l.starts_with("libc"));
    let hlt = e
        .faulting_instruction
        .as_deref()
        .is_some_and(|i| i.trim() == "hlt");
    hlt || (in_libc && error.trim_start_matches('0').is_empty())
}

/// Findings from the log alone (see [`crate::diagnose`] for them merged
/// with the live ones).
pub fn analyze_log(snap: &Snapshot, events: &[LogEvent]) -> Vec<Finding> {
    let g = crate::graph::build(snap);
    analyze_log_typed(snap, &g, events)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// Each log finding with the rule that made it.
pub(crate) fn analyze_log_typed(
    snap: &Snapshot,
    g: &Graph,
    events: &[LogEvent],
) -> Vec<(LogRule, Finding)> {
    let mut out = Vec::new();
    storage_log(snap, g, events, &mut out);
    // abort() as a pid-namespace init, grouped by command.
    let mut aborts: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events.iter().filter(|e| is_abort_hlt(e)) {
        aborts
            .entry(e.task.clone().unwrap_or_default())
            .or_default()
            .push(e);
    }
    for (task, es) in aborts {
        let last = es[es.len() - 1];
        let alive = last
            .pid
            .and_then(|p| snap.process(p as i32))
            .filter(|p| p.comm == task);
        let mut evidence: Vec<Evidence> = es
            .iter()
            .rev()
            .take(3)
            .map(|e| ev(e, format!("{}: {}", e.kind, e.meaning)))
            .collect();
        if let Some(p) = alive {
            if p.is_nested_pidns_init() {
                evidence.push(Evidence {
                    source: format!("{}/status", snap.source.process_locator(p.pid)),
                    fact: format!("{} ({}) is PID 1 of its pid namespace", p.comm, p.pid),
                });
            }
        }
        let rule = LogRule::InitAbort;
        out.push((
            rule,
            Finding {
                severity: Severity::Warning,
                confidence: if es.iter().any(|e| e.code_dumped) {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                pids: es.iter().filter_map(|e| e.pid.map(|p| p as i32)).collect(),
                evidence,
                explanation: rule.explanation().into(),
                remedies: vec![
                    Remedy {
                        action: "run a real init as PID 1 so the program is not PID 1 (docker run --init, tini, dumb-init)".into(),
                        command: Some("docker run --init …   # or: tini -- PROGRAM".into()),
                    },
                    Remedy {
                        action: "find why the program aborts: its stderr, or a core file (wedge core FILE)".into(),
                        command: None,
                    },
                ],
                ..Finding::new(
                    rule.id(),
                    format!(
                        "{task} died {} time(s) of a general protection fault in libc: abort() as PID 1 of a pid namespace",
                        es.len()
                    ),
                )
            },
        ));
    }
    // Hung-task reports whose task is still stuck.
    let mut hung: BTreeMap<u32, &Event> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| matches!(e.detail, LogDetail::HungTask { .. }))
    {
        if let Some(pid) = e.pid {
            hung.insert(pid, e);
        }
    }
    for (pid, e) in hung {
        let Some((p, t)) = snap.thread(pid as i32) else {
            continue;
        };
        if e.task
            .as_deref()
            .is_some_and(|c| !t.comm.starts_with(c) && !c.starts_with(&t.comm))
        {
            continue;
        }
        if t.state != TaskState::DiskSleep {
            continue;
        }
        let LogDetail::HungTask {
            blocked_seconds,
            blocker,
        } = &e.detail
        else {
            continue;
        };
        let mut blocked_on = Vec::new();
        if let Some(b) = blocker {
            blocked_on.push(BlockedOn {
                kind: "lock_holder".into(),
                pid: b.owner_pid.map(|p| p as i32),
                detail: format!(
                    "the kernel names {} {} as the likely owner of the {} it waits for",
                    b.owner_task.as_deref().unwrap_or("?"),
                    b.owner_pid.map(|p| p.to_string()).unwrap_or_default(),
                    b.kind
                ),
            });
        }
        let rule = LogRule::HungTask;
        out.push((
            rule,
            Finding {
                severity: Severity::Critical,
                confidence: Confidence::High,
                pids: vec![p.pid],
                evidence: vec![ev(e, e.meaning.clone())],
                explanation: rule.explanation().into(),
                blocked_on,
                ..Finding::new(
                    rule.id(),
                    format!(
                        "the kernel reported {} ({}) hung (blocked > {} s) and it is still in D",
                        t.comm, pid, blocked_seconds
                    ),
                )
            },
        ));
    }
    // Network filesystems: a server not responding with no OK after it.
    let mut servers: BTreeMap<String, (Option<&Event>, bool)> = BTreeMap::new();
    for e in events {
        match &e.detail {
            LogDetail::NfsNotResponding { server } => {
                servers.insert(server.clone(), (Some(e), false));
            }
            LogDetail::NfsServerOk { server } => {
                if let Some(x) = servers.get_mut(server) {
                    x.1 = true;
                }
            }
            _ => {}
        }
    }
    for (server, (e, ok)) in servers {
        let (Some(e), false) = (e, ok) else { continue };
        // The processes waiting on this server: an NFS wait tied to a mount
        // of it, or to no mount wedge can name (then any NFS waiter).
        let waiting: Vec<i32> = snap
            .processes
            .iter()
            .filter(|p| {
                p.threads.iter().any(|t| {
                    matches!(crate::wait::wait_kind(t), crate::wait::WaitKind::NfsServer) && {
                        let ms = crate::rules::wait_mounts(snap, p, t);
                        ms.is_empty() || ms.iter().any(|m| m.server == server)
                    }
                })
            })
            .map(|p| p.pid)
            .collect();
        let rule = LogRule::NfsServerUnreachable;
        let title = format!(
            "NFS server {server} is not responding{}",
            if waiting.is_empty() {
                String::new()
            } else {
                format!("; {} process(es) wait for it", waiting.len())
            }
        );
        out.push((
            rule,
            Finding {
                severity: server_severity(&waiting),
                confidence: Confidence::High,
                pids: waiting,
                // The kernel's words (net/sunrpc/clnt.c: "%s: server %s not
                // responding, still trying"), then what they mean.
                evidence: vec![ev(
                    e,
                    format!("nfs: server {server} not responding: {}", e.meaning),
                )],
                explanation: rule.explanation().into(),
                remedies: crate::rules::server_remedies(None, crate::rules::Sleeper::Unknown),
                ..Finding::new(rule.id(), title)
            },
        ));
    }
    out
}

/// Where a log event points in storage: a device (the block layer's,
/// SCSI's, NVMe's messages) or a filesystem on a device.
fn storage_key(e: &Event) -> Option<(LogRule, String, Option<String>)> {
    Some(match &e.detail {
        LogDetail::BlockIoError { device, .. }
        | LogDetail::BufferIoError { device, .. }
        | LogDetail::ScsiError { device, .. } => (LogRule::StorageIoErrors, device.clone(), None),
        LogDetail::NvmeTimeout { controller, .. } => {
            (LogRule::StorageIoErrors, controller.clone(), None)
        }
        LogDetail::FsError { fs, device, .. } => {
            (LogRule::FsError, device.clone(), Some(fs.clone()))
        }
        _ => return None,
    })
}

/// One event's specifics, for a group's title: `op WRITE`, `sector 2048`.
fn ops_and_sectors(es: &[&Event]) -> String {
    let mut ops: Vec<String> = Vec::new();
    let mut sectors: Vec<u64> = Vec::new();
    let mut blocks: Vec<u64> = Vec::new();
    for e in es {
        match &e.detail {
            LogDetail::BlockIoError { sector, op, .. } => {
                if let Some(o) = op {
                    if !ops.contains(o) {
                        ops.push(o.clone());
                    }
                }
                sectors.extend(*sector);
            }
            LogDetail::BufferIoError { logical_block, .. } => blocks.extend(*logical_block),
            _ => {}
        }
    }
    let range = |v: &[u64]| match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("{a}"),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => String::new(),
    };
    let mut parts = Vec::new();
    if !ops.is_empty() {
        parts.push(format!("op {}", ops.join(", ")));
    }
    if !sectors.is_empty() {
        parts.push(format!(
            "sector{} {}",
            if sectors.len() > 1 { "s" } else { "" },
            range(&sectors)
        ));
    }
    if !blocks.is_empty() {
        parts.push(format!("logical block(s) {}", range(&blocks)));
    }
    parts.join(", ")
}

/// The snapshot's block device a log's device name means: the name
/// itself, or for an NVMe controller (`nvme0`) its namespaces.
fn devices_named(snap: &Snapshot, name: &str) -> Vec<String> {
    let Some(devs) = snap.block_devices.value() else {
        return vec![name.to_string()];
    };
    let mut v: Vec<String> = devs
        .iter()
        .filter(|d| {
            d.name == name
                || d.controller.as_deref() == Some(name)
                || (name.starts_with("nvme")
                    && d.name
                        .strip_prefix(name)
                        .is_some_and(|r| r.starts_with('n')))
        })
        .map(|d| d.name.clone())
        .collect();
    if v.is_empty() {
        v.push(name.to_string());
    }
    v
}

/// How old a loop device's last logged error may be and still be tied to
/// what the device is now (its backing file, mounts and waiters).
const LOOP_REUSE_SECS: f64 = 600.0;

/// Why the lines about `dev` (`loop3`, `loop3p1`) belong to an earlier use
/// of a loop device: sysfs lists the whole device with no backing file.
fn detached_loop(snap: &Snapshot, dev: &str) -> Option<String> {
    let number = dev.strip_prefix("loop")?.split('p').next()?;
    let whole = format!("loop{number}");
    let d = snap.block_device_named(&whole)?;
    (d.kind == wedge_model::BlockKind::Loop && d.backing.is_none()).then(|| {
        format!(
            "{whole} has no backing file now (it was detached since): the lines are of an \
             earlier use of {whole}"
        )
    })
}

/// A server the log says stopped answering: critical once tasks of the
/// snapshot wait for it, a warning while none does.
fn server_severity(waiting: &[i32]) -> Severity {
    if waiting.is_empty() {
        Severity::Warning
    } else {
        Severity::Critical
    }
}

/// Whether a mount is read-only now: its own flag, or its superblock's.
/// An ext4 remounted read-only on an error set SB_RDONLY (mountinfo's
/// super options `ro`, the mount's own still `rw`) before 6.15's
/// emergency read-only state, which shows as `emergency_ro` instead —
/// captured here on 6.18: `rw,relatime - ext4 /dev/loop1
/// rw,errors=remount-ro,emergency_ro` after trigger_fs_error.
fn is_read_only(m: &wedge_model::Mount) -> bool {
    let ro = |o: &str| o.split(',').any(|x| x == "ro" || x == "emergency_ro");
    ro(&m.options) || ro(&m.super_options)
}

/// A device's logged errors that belong to an earlier use of its name:
/// reported, not tied to its present mounts or waiters; `why` says so.
fn untied_finding(rule: LogRule, dev: &str, es: &[&Event], why: String) -> Finding {
    let mut evidence: Vec<Evidence> = es
        .iter()
        .take(3)
        .map(|e| ev(e, format!("{}: {}", e.kind, e.meaning)))
        .collect();
    evidence.push(Evidence {
        source: "kernel log".into(),
        fact: format!("{why}, so they are not tied to its present mounts or waiters"),
    });
    let what = match rule {
        LogRule::FsError => "filesystem error(s)",
        _ => "I/O error(s)",
    };
    Finding {
        severity: Severity::Info,
        confidence: Confidence::Medium,
        pids: Vec::new(),
        evidence,
        explanation: rule.explanation().into(),
        remedies: Vec::new(),
        ..Finding::new(
            rule.id(),
            format!(
                "{} earlier {what} on {dev}, of an earlier use of the name",
                es.len()
            ),
        )
    }
}

/// The kernel's storage messages, grouped per device (and filesystem),
/// tied to the snapshot's device, its mounts and the tasks whose waits
/// reach it.
fn storage_log(snap: &Snapshot, g: &Graph, events: &[LogEvent], out: &mut Vec<(LogRule, Finding)>) {
    // (device, filesystem) → the rule and its events.
    type Groups<'e> = BTreeMap<(String, Option<String>), (LogRule, Vec<&'e Event>)>;
    let mut groups: Groups = BTreeMap::new();
    for e in events {
        if let Some((rule, dev, fs)) = storage_key(e) {
            groups
                .entry((dev, fs))
                .or_insert_with(|| (rule, Vec::new()))
                .1
                .push(e);
        }
    }
    let went_read_only: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.detail {
            LogDetail::FsError {
                device,
                remount_ro: true,
                ..
            } => Some(device.clone()),
            _ => None,
        })
        .collect();
    for ((dev, fs), (rule, es)) in groups {
        let first = es[0];
        // Loop device numbers are reused (losetup -f takes the first free
        // one): lines about loopN from long before the snapshot are likely
        // of an earlier backing file, and are not tied to what loopN is
        // now. Other devices keep their names.
        let now_s = snap
            .system
            .sched_clock_ms
            .map(|ms| ms / 1000.0)
            .unwrap_or(snap.system.uptime_secs);
        let last_s = es
            .iter()
            .filter_map(|e| e.monotonic)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let stale = dev.starts_with("loop")
            && now_s > 0.0
            && last_s.is_some_and(|l| now_s - l > LOOP_REUSE_SECS);
        let age = wedge_model::human_ms((now_s - last_s.unwrap_or(now_s)) * 1000.0);
        if stale {
            let why = format!(
                "the last of these lines is {age} old, and loop device numbers are reused: they \
                 are likely of an earlier backing file of {dev}"
            );
            out.push((rule, untied_finding(rule, &dev, &es, why)));
            continue;
        }
        // A loop device with no backing file now was detached since the
        // lines were logged (LOOP_CLR_FD): they are of its earlier use,
        // whatever their age — the state a test run or a finished
        // image-mount leaves behind, not a problem of this machine's now.
        if let Some(why) = detached_loop(snap, &dev) {
            out.push((rule, untied_finding(rule, &dev, &es, why)));
            continue;
        }
        let devices = devices_named(snap, &dev);
        // A filesystem the log says went read-only stays so until it is
        // remounted: a read-write filesystem mounted from the device now is
        // another one (a reused loop number), or was repaired since.
        let now_rw = devices
            .iter()
            .flat_map(|d| crate::storage::mounts_on(snap, d))
            .any(|m| !is_read_only(m));
        if went_read_only.contains(&dev) && now_rw {
            let why = format!(
                "the log says the filesystem on {dev} was remounted read-only, but the one mounted \
                 from {dev} now is read-write: the lines are of an earlier filesystem on {dev} (a \
                 reused device number), or of one remounted since"
            );
            out.push((rule, untied_finding(rule, &dev, &es, why)));
            continue;
        }
        let known = devices.iter().any(|d| snap.block_device_named(d).is_some());
        let mounts: Vec<String> = devices
            .iter()
            .flat_map(|d| crate::storage::mounts_on(snap, d))
            .map(|m| m.mount_point.clone())
            .collect();
        // Tasks whose chains reach the device (or a filesystem on it).
        let mut waiters: Vec<(i32, i32)> = Vec::new();
        for d in &devices {
            waiters.extend(crate::storage::tasks_reaching(
                g,
                &Node::BlockDevice { name: d.clone() },
            ));
        }
        waiters.sort();
        waiters.dedup();
        let mut pids: Vec<i32> = Vec::new();
        for (pid, _) in &waiters {
            if !pids.contains(pid) {
                pids.push(*pid);
            }
        }
        let since = first
            .monotonic
            .map(|m| format!(" since [{m:.3}]"))
            .unwrap_or_else(|| format!(" since log line {}", first.line));
        let at = if mounts.is_empty() {
            String::new()
        } else {
            format!(" (mounted at {})", mounts.join(", "))
        };
        let mut evidence: Vec<Evidence> = es
            .iter()
            .take(3)
            .map(|e| ev(e, format!("{}: {}", e.kind, e.meaning)))
            .collect();
        if es.len() > 3 {
            evidence.push(ev(
                es[es.len() - 1],
                format!("{} more like it, the last here", es.len() - 3),
            ));
        }
        if known {
            evidence.push(Evidence {
                source: match snap.source {
                    wedge_model::Source::Live { .. } => format!("/sys/class/block/{}", devices[0]),
                    _ => format!("block device {}", devices[0]),
                },
                fact: format!(
                    "{} is a block device of this snapshot{at}",
                    devices.join(", ")
                ),
            });
        }
        if !waiters.is_empty() {
            evidence.push(Evidence {
                source: "wait-for graph".into(),
                fact: format!(
                    "{} task(s) wait on {dev}: {}",
                    waiters.len(),
                    waiters
                        .iter()
                        .take(6)
                        .map(|(pid, tid)| match snap.thread(*tid) {
                            Some((p, _)) if pid == tid => format!("{} ({pid})", p.comm),
                            Some((p, t)) => format!("{} {tid} of {} ({pid})", t.comm, p.comm),
                            None => format!("{tid}"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let (title, remedies) = match rule {
            LogRule::FsError => {
                let fs = fs.unwrap_or_default();
                let ro = es.iter().any(|e| {
                    matches!(
                        e.detail,
                        LogDetail::FsError {
                            remount_ro: true,
                            ..
                        }
                    )
                });
                let fsname = match fs.as_str() {
                    "ext4" => "EXT4-fs".to_string(),
                    "xfs" => "XFS".to_string(),
                    "btrfs" => "BTRFS".to_string(),
                    other => other.to_string(),
                };
                let title = format!(
                    "{} {fsname} error(s) on {dev}{at}{since}{}",
                    es.len(),
                    if ro {
                        ", remounted read-only: writes fail with EROFS"
                    } else {
                        ""
                    }
                );
                let check = match fs.as_str() {
                    "ext4" => format!("e2fsck -f /dev/{dev}"),
                    "xfs" => format!("xfs_repair /dev/{dev}"),
                    "btrfs" => format!("btrfs check /dev/{dev}"),
                    _ => format!("fsck /dev/{dev}"),
                };
                let remedies = vec![
                    Remedy {
                        action: format!(
                            "find the cause first: I/O errors of {dev} just before (the device's own lines in this log); an error of the storage under it repeats after any repair"
                        ),
                        command: None,
                    },
                    Remedy {
                        action: "then unmount it and check it (the check must not run on a mounted filesystem); mount it again after".to_string(),
                        command: Some(check),
                    },
                ];
                (title, remedies)
            }
            _ => {
                let what = ops_and_sectors(&es);
                let title = format!(
                    "{} I/O error(s) on {dev}{}{since}{at}",
                    es.len(),
                    if what.is_empty() {
                        String::new()
                    } else {
                        format!(" ({what})")
                    }
                );
                let backing = devices
                    .iter()
                    .filter_map(|d| snap.block_device_named(d))
                    .find_map(|d| d.backing.as_ref().map(|b| b.file.clone()));
                let action = match backing {
                    Some(f) => format!(
                        "{dev} is a loop device: its errors come from its backing file {f} — the filesystem holding that file failed the reads or writes. Loop device numbers are reused: lines logged before {dev} was set up on this file belong to an earlier backing file"
                    ),
                    None => format!(
                        "check {dev} and its transport: the driver's lines around these (SCSI sense data, NVMe resets), and the disk's own health (smartctl -a /dev/{dev})"
                    ),
                };
                (
                    title,
                    vec![Remedy {
                        action,
                        command: None,
                    }],
                )
            }
        };
        out.push((
            rule,
            Finding {
                severity: Severity::Warning,
                confidence: Confidence::High,
                pids,
                evidence,
                explanation: rule.explanation().into(),
                remedies,
                ..Finding::new(rule.id(), title)
            },
        ));
    }
    // CIFS: a server that has not responded, with the tasks waiting on it.
    let mut cifs: BTreeMap<String, &Event> = BTreeMap::new();
    for e in events {
        if let LogDetail::CifsServerUnresponsive { server, .. } = &e.detail {
            cifs.insert(server.clone(), e);
        }
    }
    for (server, e) in cifs {
        let waiting: Vec<i32> = snap
            .processes
            .iter()
            .filter(|p| {
                p.threads
                    .iter()
                    .any(|t| crate::wait::wait_kind(t) == crate::wait::WaitKind::CifsServer)
            })
            .map(|p| p.pid)
            .collect();
        let seconds = match &e.detail {
            LogDetail::CifsServerUnresponsive {
                seconds: Some(s), ..
            } => format!(" for {s} s"),
            _ => String::new(),
        };
        let rule = LogRule::CifsServerUnresponsive;
        out.push((
            rule,
            Finding {
                severity: server_severity(&waiting),
                confidence: Confidence::High,
                pids: waiting,
                evidence: vec![ev(e, e.meaning.clone())],
                explanation: rule.explanation().into(),
                remedies: vec![Remedy {
                    action: format!(
                        "bring {server} back; or force-unmount: umount -f, then umount -l"
                    ),
                    command: None,
                }],
                ..Finding::new(
                    rule.id(),
                    format!("CIFS server {server} has not responded{seconds}"),
                )
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_model::Source;

    const ALL: [LogRule; 6] = [
        LogRule::InitAbort,
        LogRule::HungTask,
        LogRule::NfsServerUnreachable,
        LogRule::CifsServerUnresponsive,
        LogRule::StorageIoErrors,
        LogRule::FsError,
    ];

    #[test]
    fn each_log_rule_has_a_known_id_and_an_explanation() {
        for rule in ALL {
            let id = rule.id();
            assert_eq!(id.as_str().parse::<RuleId>(), Ok(id));
            assert!(!rule.explanation().trim().is_empty(), "{rule:?}");
        }
        // The log's NFS finding and the live one share their id, so the
        // views and the JSON name one rule.
        assert_eq!(
            LogRule::NfsServerUnreachable.id(),
            RuleId::NetFs(NetFsRule::ServerUnreachable)
        );
        assert_eq!(LogRule::HungTask.id().as_str(), "kernel.hung_task");
        assert_eq!(LogRule::InitAbort.id().as_str(), "pidns.init_abort");
    }

    #[test]
    fn nfs_server_silent_since_its_report_is_a_finding() {
        let snap = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        let event = |line: u64, detail: LogDetail| LogEvent {
            kind: "nfs".into(),
            line,
            meaning: "the NFS server stopped answering".into(),
            detail,
            ..LogEvent::default()
        };
        let silent = event(
            3,
            LogDetail::NfsNotResponding {
                server: "fs1".into(),
            },
        );
        let back = [
            event(
                5,
                LogDetail::NfsNotResponding {
                    server: "fs2".into(),
                },
            ),
            event(
                9,
                LogDetail::NfsServerOk {
                    server: "fs2".into(),
                },
            ),
        ];
        let events: Vec<LogEvent> = std::iter::once(silent).chain(back).collect();
        let fs = analyze_log_typed(&snap, &Graph::default(), &events);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let (rule, f) = &fs[0];
        assert_eq!(*rule, LogRule::NfsServerUnreachable);
        assert_eq!(f.id, rule.id());
        assert_eq!(f.title, "NFS server fs1 is not responding");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.explanation, rule.explanation());
        assert_eq!(f.evidence[0].source, "kernel log line 3");
    }
}
