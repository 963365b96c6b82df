//! One model of a system snapshot: processes, threads, open files, mounts —
//! whatever the source.
//!
//! A live scan of /proc fills it today; a kernel crash dump and recorded
//! history fill the same types later, and the analysis reads only this.
//! Hence nothing here names a /proc path as the way a value is obtained:
//! where a value could not be obtained, a [`Field`] says why, in a sentence
//! the source wrote.

mod cgroup;
mod duration;
mod facts;
mod field;
mod files;
mod history;
mod log;
mod storage;
mod task;

pub use cgroup::{freezer_paths, membership, CgroupFreeze, CgroupVersion, FreezeProgress};
pub use duration::{human_ms, parse_age_secs};
pub use facts::{Crash, DumpFacts, TaskNow};
pub use field::{Field, Missing, MissingReason};
pub use files::{FdDetail, FileKind, FsClass, FuseConnection, IoUringInfo, Mount, OpenFile};
pub use history::{
    Ending, Episode, FindingSpan, History, ProcessLife, RecordedLogEvent, RecorderInfo,
    SyscallEvent,
};
pub use log::{LogBlocker, LogDetail, LogEvent};
pub use storage::{
    BlockDevice, BlockKind, DmInfo, FreezeLevel, Inflight, IoProgress, IoStat, LoopBacking,
    QueueSettings, SuperBlockState,
};
pub use task::{
    base_function, is_scheduler_plumbing, KernelFrame, LockWait, Namespace, Process, SchedInfo,
    SignalHandler, StackSource, Syscall, Thread,
};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The version of every `--json` document wedge writes (the snapshot, the
/// verdict, `why`, each `log` event, `core`, the `vmcore` views): one
/// number for all of them, since they share their parts (a finding, a
/// thread, a `Field`), so a change to a shared part is a change to each.
/// Bumped whenever a field is removed, renamed, or changes meaning or
/// shape; a new optional field does not bump it. `docs/json-schema.md`
/// describes every document and `docs/schema/` holds their JSON Schemas.
pub const SCHEMA_VERSION: u32 = 1;

/// A document of `--json` output with `schema_version` in front of its own
/// fields, for documents whose type lives in a crate that does not know
/// about output versions (a `wedge log` event, a `wedge core` report).
/// `T` must serialize as a map (a struct, not a list or a scalar).
#[derive(Debug, Serialize)]
pub struct Versioned<'a, T: Serialize> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub document: &'a T,
}

impl<'a, T: Serialize> Versioned<'a, T> {
    pub fn new(document: &'a T) -> Self {
        Versioned {
            schema_version: SCHEMA_VERSION,
            document,
        }
    }
}

/// Everything known about one system at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    pub source: Source,
    pub system: SystemInfo,
    pub processes: Vec<Process>,
    /// Every mount seen, from every mount namespace, by mount id (mount ids
    /// are unique system-wide, so fds of processes in other namespaces still
    /// resolve).
    pub mounts: Vec<Mount>,
    pub fuse_connections: Field<Vec<FuseConnection>>,
    /// Every block device of the system (sysfs), with its stack, requests
    /// in flight and whether I/O completed during the scan.
    #[serde(default)]
    pub block_devices: Field<Vec<BlockDevice>>,
    /// Every superblock's freeze state, read from kernel memory (the live
    /// kernel through BPF, a crash dump); missing, with why, otherwise.
    #[serde(default)]
    pub superblocks: Field<Vec<SuperBlockState>>,
    /// The cgroups that are frozen or freezing (cgroup v1's freezer, v2's
    /// `cgroup.freeze`), among those the snapshot's processes are in.
    #[serde(default)]
    pub cgroup_freezes: Field<Vec<CgroupFreeze>>,
    /// Reads that did not finish in time. Each is evidence in itself: the
    /// kernel blocked wedge where it blocks the stuck tasks.
    pub blocked_reads: Vec<BlockedRead>,
    /// What could not be seen at all, and why (no root, no kernel support).
    pub limitations: Vec<Limitation>,
    /// Set when the source itself is incomplete (a truncated crash dump):
    /// the processes are only part of the system, so finding nothing in
    /// them is not an all-clear. Says how much could be read; the same
    /// text is also among `limitations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    pub stats: ScanStats,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The running system, through the proc filesystem mounted at `root`.
    Live { root: String },
    /// A kernel crash dump.
    Vmcore { path: String },
    /// A snapshot recorded earlier and loaded back.
    Recorded { path: String },
}

impl Source {
    /// Where the facts of process `pid` were read, as evidence cites them:
    /// its directory in the proc filesystem on a live system, its task in
    /// memory for a crash dump. Views and rules append what they cite
    /// (`/stat`, `/fd/3`) and never ask which kind of source it was.
    pub fn process_locator(&self, pid: i32) -> String {
        match self {
            Source::Live { root } => format!("{root}/{pid}"),
            Source::Vmcore { .. } => format!("dump: task/{pid}"),
            Source::Recorded { .. } => format!("task/{pid}"),
        }
    }

    /// Where the facts of thread `tid` of process `pid` were read: its own
    /// entry under the process (`/proc/PID/task/TID`), even for the leader.
    pub fn thread_locator(&self, pid: i32, tid: i32) -> String {
        format!("{}/task/{tid}", self.process_locator(pid))
    }

    /// Where the FUSE connections' counts were read (`None`: all of
    /// them): fusectl on a live system, each connection's `struct
    /// fuse_conn` in a dump.
    pub fn fuse_locator(&self, connection: Option<u32>) -> String {
        match (self, connection) {
            (Source::Vmcore { .. }, Some(c)) => format!("dump: fuse_conn {c} (num_waiting)"),
            (Source::Vmcore { .. }, None) => {
                "dump: the fuse_conn of each FUSE superblock (num_waiting)".into()
            }
            (_, Some(c)) => format!("/sys/fs/fuse/connections/{c}/waiting"),
            (_, None) => "/sys/fs/fuse/connections".into(),
        }
    }

    /// Whether the machine the snapshot shows is gone, so that nothing can
    /// be done on it any more: a crash dump is a post-mortem. Rules then
    /// say what would have been done instead of offering a command to run
    /// (an abort run on the machine reading the dump would hit *its* own
    /// connection of the same number).
    pub fn machine_gone(&self) -> bool {
        matches!(self, Source::Vmcore { .. })
    }

    /// Where task `tid` of process `pid` is best cited: the process's own
    /// place for its leader (`/proc/PID/stat` is the leader's stat), the
    /// thread's entry for any other thread.
    pub fn task_locator(&self, pid: i32, tid: i32) -> String {
        if pid == tid {
            self.process_locator(pid)
        } else {
            self.thread_locator(pid, tid)
        }
    }
}

/// Facts about the whole system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    pub boot_id: Option<String>,
    /// Wall-clock time of the snapshot, milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// Seconds since boot when the snapshot was taken.
    pub uptime_secs: f64,
    /// The scheduler clock at the snapshot, in milliseconds, on the same
    /// clock as [`SchedInfo::last_ran_ms`]; off-CPU times are its difference.
    pub sched_clock_ms: Option<f64>,
    /// The same clock on each CPU (index = CPU number), `None` where it
    /// could not be read. A task's `last_ran_ms` is its CPU's
    /// `rq->clock_task`, which leaves out the IRQ and steal time that CPU
    /// accounted: on a busy VM two CPUs' clocks drift seconds apart (seen:
    /// 1.9 s on this project's CI machine), so an off-CPU time is only right
    /// against the clock of the CPU the task last ran on. Empty when only
    /// [`SystemInfo::sched_clock_ms`] is known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_sched_clock_ms: Vec<Option<f64>>,
    /// USER_HZ: the unit of start times and CPU times (100 on Linux).
    pub clock_ticks_per_sec: u64,
    /// The viewer's effective uid; 0 sees everything.
    pub viewer_uid: u32,
    /// `kernel.hung_task_timeout_secs`; 0 means the detector is off.
    pub hung_task_timeout_secs: Option<u64>,
    /// Whether the processes seen belong to a pid namespace below the
    /// initial one (a container, `unshare -p`), so that processes outside
    /// it cannot be seen; `None` when the source cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns_nested: Option<bool>,
}

/// A read that was abandoned at its deadline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockedRead {
    pub pid: i32,
    pub tid: Option<i32>,
    /// What was being read (`cmdline`, `mountinfo`, `statfs /mnt/fuse`).
    pub what: String,
    pub waited_ms: u64,
    /// The deadline in force when the read was abandoned: what the text
    /// views report ("blocked > N ms"), since `waited_ms` also counts the
    /// watchdog's tick. 0 in snapshots recorded before it existed.
    #[serde(default)]
    pub deadline_ms: u64,
    /// What a read of this kind blocks on in the kernel.
    pub blocks_on: String,
}

impl BlockedRead {
    /// A read of a system file rather than of a process's (a block
    /// device's sysfs attribute): `pid` is 0 and `what` is the whole path.
    pub fn is_system(&self) -> bool {
        self.pid == 0
    }

    /// Where the read was made, as evidence cites it: the process's entry
    /// and the file (`/proc/42/cmdline`), or a system file's own path.
    pub fn location(&self, source: &Source) -> String {
        if self.is_system() {
            self.what.clone()
        } else {
            format!("{}/{}", source.process_locator(self.pid), self.what)
        }
    }

    /// How long the read is known to have blocked, for text: the deadline
    /// it overran.
    pub fn blocked_ms(&self) -> u64 {
        if self.deadline_ms > 0 {
            self.deadline_ms
        } else {
            self.waited_ms
        }
    }
}

/// Something the viewer cannot see at all.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limitation {
    pub what: String,
    pub why: String,
}

/// What the scan cost and found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanStats {
    pub duration_ms: f64,
    /// The deadline of each read of the scan, as used (after the floor).
    #[serde(default)]
    pub deadline_ms: u64,
    pub processes: usize,
    pub threads: usize,
    pub reads: u64,
    pub timed_out: u64,
    /// Tasks that exited while being read.
    pub vanished: u64,
    /// Pids that were reused mid-scan (start time changed): dropped, never mixed.
    pub reused: u64,
    /// The live kernel's BPF task pass, when it ran: its wall time and the
    /// tasks it joined to the scan's threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<BpfStats>,
}

/// What the BPF task pass cost and matched.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BpfStats {
    /// The iterator pass (program load excluded).
    pub pass_ms: f64,
    /// The whole step: pass, symbolisation and the join.
    pub total_ms: f64,
    /// Tasks the pass saw.
    pub tasks: usize,
    /// Of them, threads of the snapshot it filled.
    pub joined: usize,
    /// Tasks outside the viewer's pid namespace (not in /proc either).
    pub not_visible: usize,
}

impl Snapshot {
    /// An empty snapshot of the given source.
    pub fn new(source: Source) -> Self {
        Snapshot {
            schema_version: SCHEMA_VERSION,
            source,
            system: SystemInfo {
                clock_ticks_per_sec: 100,
                ..SystemInfo::default()
            },
            processes: Vec::new(),
            mounts: Vec::new(),
            fuse_connections: Field::default(),
            block_devices: Field::default(),
            superblocks: Field::default(),
            cgroup_freezes: Field::default(),
            blocked_reads: Vec::new(),
            limitations: Vec::new(),
            partial: None,
            stats: ScanStats::default(),
        }
    }

    /// Marks the snapshot as a partial view of its source, with a
    /// limitation saying how much could be read.
    pub fn set_partial(&mut self, what: &str, how_much: String) {
        self.limitations.insert(
            0,
            Limitation {
                what: what.to_string(),
                why: how_much.clone(),
            },
        );
        self.partial = Some(how_much);
    }

    pub fn process(&self, pid: i32) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The process a thread id belongs to, and the thread.
    pub fn thread(&self, tid: i32) -> Option<(&Process, &Thread)> {
        self.processes
            .iter()
            .find_map(|p| p.threads.iter().find(|t| t.tid == tid).map(|t| (p, t)))
    }

    pub fn children(&self, pid: i32) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(move |p| p.ppid == pid)
    }

    /// The mounts a process's open files live on, each once, by mount id.
    pub fn mounts_of(&self, p: &Process) -> Vec<&Mount> {
        let mut v: Vec<&Mount> = p
            .fds
            .value()
            .into_iter()
            .flatten()
            .filter_map(|f| self.mount(f.mount_id?))
            .collect();
        v.sort_by_key(|m| m.mount_id);
        v.dedup_by_key(|m| m.mount_id);
        v
    }

    /// The mount a path of `p` (its cwd, say) lives on: the longest mount
    /// point that is a whole-component prefix of `path`, among the mounts
    /// of `p`'s mount namespace (all mounts when namespaces are unknown).
    /// Of mounts stacked on one point, the top one (not another's parent).
    /// This is a string match, never a lookup: resolving the path would
    /// call into the filesystem (a FUSE LOOKUP) and could block. Paths are
    /// taken as the namespace's own: a chrooted process's cwd is not
    /// rebased.
    pub fn mount_at(&self, p: &Process, path: &str) -> Option<&Mount> {
        if !path.starts_with('/') {
            return None;
        }
        let ns = p.namespace("mnt");
        let under = |mp: &str| {
            mp == "/"
                || path == mp
                || path
                    .strip_prefix(mp)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let candidates: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| ns.is_none() || m.mnt_ns.is_none() || m.mnt_ns == ns)
            .filter(|m| under(&m.mount_point))
            .collect();
        let longest = candidates.iter().map(|m| m.mount_point.len()).max()?;
        let top: Vec<&Mount> = candidates
            .into_iter()
            .filter(|m| m.mount_point.len() == longest)
            .collect();
        top.iter()
            .copied()
            .find(|m| !top.iter().any(|o| o.parent_id == m.mount_id))
            .or(top.last().copied())
    }

    /// The block device of a device number (a mount's `major:minor`).
    pub fn block_device(&self, major: u32, minor: u32) -> Option<&BlockDevice> {
        self.block_devices
            .value()?
            .iter()
            .find(|d| d.major == major && d.minor == minor)
    }

    /// The block device of a kernel name (`sda1`, `loop0`, `dm-3`).
    pub fn block_device_named(&self, name: &str) -> Option<&BlockDevice> {
        self.block_devices.value()?.iter().find(|d| d.name == name)
    }

    /// The superblock of a device number, where kernel memory was read.
    pub fn superblock(&self, major: u32, minor: u32) -> Option<&SuperBlockState> {
        self.superblocks
            .value()?
            .iter()
            .find(|s| s.major == major && s.minor == minor)
    }

    pub fn mount(&self, mount_id: u64) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.mount_id == mount_id)
    }

    pub fn kernel_version(&self) -> Option<wedge_kernel::KernelVersion> {
        self.system
            .kernel_release
            .as_deref()
            .and_then(wedge_kernel::KernelVersion::parse)
    }

    /// Index of processes by pid, for repeated lookups.
    pub fn index(&self) -> HashMap<i32, usize> {
        self.processes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pid, i))
            .collect()
    }

    /// Milliseconds since a thread last ran, where the source knows it.
    pub fn off_cpu_ms(&self, thread: &Thread) -> Option<f64> {
        // Against the clock of the CPU the task last ran on (see
        // `cpu_sched_clock_ms`), else the one clock known.
        let now = thread
            .processor
            .and_then(|c| usize::try_from(c).ok())
            .and_then(|c| self.system.cpu_sched_clock_ms.get(c).copied().flatten())
            .or(self.system.sched_clock_ms)?;
        let last = thread.sched.value()?.last_ran_ms?;
        Some((now - last).max(0.0))
    }

    /// Blocked reads concerning one process.
    pub fn blocked_reads_of(&self, pid: i32) -> impl Iterator<Item = &BlockedRead> {
        self.blocked_reads.iter().filter(move |b| b.pid == pid)
    }
}

/// Anything a [`Snapshot`] can be taken from: the live system through
/// /proc (`wedge_procfs::LiveSource`), a kernel crash dump
/// (`wedge_vmcore::Vmcore`); later a BPF reader or a recording. Every view
/// and the diagnosis read only the snapshot, so a new source is a type
/// implementing this and one match arm in the binary.
pub trait SnapshotSource {
    /// Takes the snapshot; an error names the path or pid it is about.
    fn snapshot(&self) -> Result<Snapshot, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_puts_the_version_first_and_changes_nothing_else() {
        let l = Limitation {
            what: "the kernel log".into(),
            why: "no /dev/kmsg".into(),
        };
        let plain = serde_json::to_string(&l).unwrap();
        let versioned = serde_json::to_string(&Versioned::new(&l)).unwrap();
        assert_eq!(
            versioned,
            format!("{{\"schema_version\":{SCHEMA_VERSION},{}", &plain[1..])
        );
    }

    #[test]
    fn each_source_locates_its_own_tasks() {
        let live = Source::Live {
            root: "/proc".into(),
        };
        assert_eq!(live.process_locator(7), "/proc/7");
        assert_eq!(live.task_locator(7, 7), "/proc/7");
        assert_eq!(live.task_locator(7, 8), "/proc/7/task/8");
        assert_eq!(live.thread_locator(7, 7), "/proc/7/task/7");
        let dump = Source::Vmcore {
            path: "/var/crash/vmcore".into(),
        };
        assert_eq!(dump.process_locator(7), "dump: task/7");
        assert_eq!(dump.task_locator(7, 8), "dump: task/7/task/8");
        assert_eq!(
            dump.fuse_locator(Some(22)),
            "dump: fuse_conn 22 (num_waiting)"
        );
        assert_eq!(
            live.fuse_locator(Some(22)),
            "/sys/fs/fuse/connections/22/waiting"
        );
        assert!(dump.machine_gone() && !live.machine_gone());
        let recorded = Source::Recorded {
            path: "snap.json".into(),
        };
        assert_eq!(recorded.task_locator(7, 7), "task/7");
    }
}
