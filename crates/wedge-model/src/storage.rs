//! Block devices and filesystems' superblocks: where a task's I/O goes
//! once it leaves the filesystem, and whether a filesystem is frozen.
//!
//! A live scan fills [`BlockDevice`] from sysfs (`/sys/class/block`,
//! `/sys/dev/block`): the device stack (partitions, device-mapper and md
//! holders and slaves, a loop device's backing file), requests in flight,
//! two samples of the I/O counters and the device's own state. The
//! superblocks' freeze state is kernel memory (`sb->s_writers.frozen`):
//! read exactly through BPF or from a crash dump, never from /proc, which
//! does not show it.

use serde::{Deserialize, Serialize};

/// What kind of block device a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A whole disk behind a SCSI/SATA/SAS host (`sda`), virtio (`vda`),
    /// Xen (`xvda`), MMC (`mmcblk0`) or anything else with a driver below.
    Disk,
    /// An NVMe namespace (`nvme0n1`); its controller is `nvme0`.
    Nvme,
    /// A partition of another device (`sda1`, `nvme0n1p2`, `loop0p1`).
    Partition,
    /// A loop device (`loop0`) with a backing file.
    Loop,
    /// A device-mapper device (`dm-0`: LVM, dm-crypt, multipath, thin).
    DeviceMapper,
    /// An md software RAID (`md0`).
    Md,
    /// A network block device (`nbd0`), served by a user-space client.
    Nbd,
    /// RAM-backed (`ram0`, `zram0`, `brd`).
    Memory,
    Other,
}

/// One block device, as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// The kernel's name (`sda1`, `dm-0`, `loop3`).
    pub name: String,
    pub major: u32,
    pub minor: u32,
    pub kind: BlockKind,
    /// For a partition, the whole device it is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Devices stacked on this one (`holders/`: the dm or md device built
    /// on it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<String>,
    /// Devices this one is built on (`slaves/`: a dm table's or an md
    /// array's members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slaves: Vec<String>,
    /// device-mapper: its name (`dm/name`, `vg0-root`), uuid prefix (the
    /// target kind: `LVM-`, `CRYPT-`, `mpath-`) and whether it is
    /// suspended (`dm/suspended`: a suspended device queues all I/O).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm: Option<DmInfo>,
    /// A loop device's backing file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<LoopBacking>,
    /// Size in 512-byte sectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_sectors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Requests in flight now (`inflight`: reads, writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight: Option<Inflight>,
    /// The I/O counters read twice: whether anything completed between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<IoProgress>,
    /// The device's own state where its driver has one: a SCSI device's
    /// `device/state` (`running`, `offline`, `blocked`,
    /// `transport-offline`), an NVMe controller's `state` (`live`,
    /// `resetting`, `connecting`, `dead`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The controller or host it hangs off (`nvme0`, `host2`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Driver or model words (`device/model`, `device/vendor`), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Attributes that could not be read, each with why (the name of the
    /// attribute and the error), so a gap is never silent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

/// A device-mapper device's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
}

/// A loop device's backing file (`loop/backing_file` and friends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopBacking {
    /// The path as the kernel printed it (`d_path` at LOOP_SET_FD time,
    /// `(deleted)` appended when unlinked): a string, never opened — the
    /// file may be on the very filesystem that is stuck.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizelimit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoclear: Option<bool>,
    /// Direct I/O to the backing file (`loop/dio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dio: Option<bool>,
}

/// Requests a device has in flight (`/sys/block/X/inflight`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    pub reads: u64,
    pub writes: u64,
}

impl Inflight {
    pub fn total(&self) -> u64 {
        self.reads + self.writes
    }
}

/// The counters of a device's `stat` file that say whether I/O completes
/// (Documentation/block/stat.rst; discard fields since 4.18, flush since
/// 5.5 — `None` where the kernel prints fewer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStat {
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
    pub in_flight: u64,
    /// Milliseconds the device had I/O in flight (`io_ticks`).
    pub io_ticks_ms: u64,
    /// Weighted milliseconds of all requests' time in queue.
    pub time_in_queue_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discards_completed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flushes_completed: Option<u64>,
}

impl IoStat {
    /// Requests of every direction that completed.
    pub fn completed(&self) -> u64 {
        self.reads_completed
            + self.writes_completed
            + self.discards_completed.unwrap_or(0)
            + self.flushes_completed.unwrap_or(0)
    }
}

/// Two samples of a device's counters, `interval_ms` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoProgress {
    pub first: IoStat,
    pub second: IoStat,
    pub interval_ms: u64,
}

impl IoProgress {
    /// Requests that completed between the two samples.
    pub fn completed(&self) -> u64 {
        self.second
            .completed()
            .saturating_sub(self.first.completed())
    }

    /// Requests were in flight at both samples and none completed between
    /// them: the device is not completing I/O (over this interval).
    pub fn stalled(&self) -> bool {
        self.first.in_flight > 0 && self.second.in_flight > 0 && self.completed() == 0
    }
}

/// Queue settings that matter when I/O stops (`queue/`, `device/timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    /// The active I/O scheduler (the bracketed one of `queue/scheduler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_requests: Option<u64>,
    /// `queue/io_timeout` (ms, blk-mq) or a SCSI device's `device/timeout`
    /// (seconds, converted): how long before the block layer times a
    /// request out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_cache: Option<String>,
}

/// How far a filesystem is frozen (`enum freeze_holder`'s levels,
/// `SB_FREEZE_*` in include/linux/fs.h): writers block from `Write` on,
/// page faults that dirty pages from `PageFault`, the filesystem's own
/// internal writers from `Fs`; `Complete` is fully frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeLevel {
    Unfrozen,
    Write,
    PageFault,
    Fs,
    Complete,
}

impl FreezeLevel {
    /// From `sb->s_writers.frozen` (0 = SB_UNFROZEN … 4 = SB_FREEZE_COMPLETE).
    pub fn from_raw(v: u64) -> Option<FreezeLevel> {
        Some(match v {
            0 => FreezeLevel::Unfrozen,
            1 => FreezeLevel::Write,
            2 => FreezeLevel::PageFault,
            3 => FreezeLevel::Fs,
            4 => FreezeLevel::Complete,
            _ => return None,
        })
    }

    pub fn is_frozen(self) -> bool {
        self != FreezeLevel::Unfrozen
    }
}

/// One superblock, read from kernel memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuperBlockState {
    /// `sb->s_dev`, the device number mountinfo prints for its mounts.
    pub major: u32,
    pub minor: u32,
    /// `sb->s_type->name`.
    pub fs_type: String,
    /// `sb->s_id` (the device name for block filesystems).
    pub id: String,
    pub frozen: FreezeLevel,
    /// Who froze it, where the kernel says (6.6+ `s_writers.freeze_holders`:
    /// `user` for FIFREEZE/fsfreeze, `kernel` for a device's own freeze).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<String>,
    /// The kernel memory address of the `struct super_block`.
    pub address: u64,
}
