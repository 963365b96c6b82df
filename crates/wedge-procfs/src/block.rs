//! Block devices from sysfs: `/sys/class/block`, every whole device and
//! partition, with its stack, requests in flight, two samples of its I/O
//! counters and its driver's state.
//!
//! What each attribute's `show()` takes in the kernel decides how it is
//! read (6.18; older kernels noted where they differ):
//!
//! * `dev`, `size`, `ro`, `partition`, `stat`, `inflight` (block/genhd.c,
//!   block/partitions/core.c) print fields of the `block_device` or sum
//!   per-CPU counters (`part_stat_read_all`); the in-flight count of a
//!   blk-mq device walks the tag bitmaps (`blk_mq_in_flight`) without a
//!   sleeping lock. `holders/` and `slaves/` are plain sysfs links. These
//!   are read directly: no lock that an I/O or a queue freeze holds.
//! * `loop/*` (drivers/block/loop.c): `backing_file` takes the loop
//!   device's `lo_lock` spinlock around `file_path()`, the rest print
//!   fields of the `loop_device`: direct.
//! * a SCSI device's `device/state`, `device/timeout`, `device/model`,
//!   `device/vendor` (drivers/scsi/scsi_sysfs.c) print `scsi_device` fields;
//!   an NVMe controller's `state` and `model` (drivers/nvme/host/sysfs.c)
//!   read `ctrl->state` and the subsystem's strings: direct.
//! * `dm/suspended` tests a flag, but `dm/name` and `dm/uuid`
//!   (drivers/md/dm-sysfs.c → `dm_copy_name_and_uuid`) take the
//!   device-mapper `_hash_lock` for read, which a table load or remove
//!   holds for write while it may wait on a device: through the bounded
//!   reader.
//! * `queue/*` (block/blk-sysfs.c): `scheduler` and `nr_requests` take the
//!   queue's `elevator_lock` (6.16+; `sysfs_lock` before, through
//!   `queue_attr_show`), `rotational` and `write_cache` the queue's
//!   `limits_lock` (6.11+). An elevator switch holds `elevator_lock`, and a
//!   limits update `limits_lock`, while it freezes the queue — and a
//!   freeze waits for every request in flight, i.e. forever on a device
//!   that stopped completing I/O. So these go through the scan's bounded
//!   reader ([`crate::helper`]), and a timeout is recorded as a
//!   [`BlockedRead`]: it is evidence that the queue is frozen behind I/O
//!   that does not complete.

use crate::helper::{Helper, HelperError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wedge_model::{
    BlockDevice, BlockKind, BlockedRead, DmInfo, Field, Inflight, IoProgress, IoStat, LoopBacking,
    MissingReason, QueueSettings,
};

/// The shortest time between the two samples of `stat` of a device that
/// has requests in flight, for "nothing completed" to mean something. A
/// healthy rotating disk completes a random request in one seek and half
/// a rotation (≈ 4–15 ms) and with a full NCQ queue finishes one every
/// few milliseconds; a volatile-cache flush of a consumer drive takes tens
/// of milliseconds; SSDs and NVMe complete in microseconds. 100 ms is
/// several of the slowest ordinary completions, so a device that is
/// merely busy shows progress, while it stays short beside the scan
/// itself (the wait is only the part of it the scan has not already
/// spent, and only when some device had I/O in flight).
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The first sample, taken at scan start.
#[derive(Debug)]
pub struct FirstSample {
    at: Option<Instant>,
    stats: Vec<(String, Result<IoStat, String>)>,
    listing: Result<(), String>,
}

fn class_dir(sys_root: &Path) -> PathBuf {
    sys_root.join("class/block")
}

fn list_names(dir: &Path) -> Result<Vec<String>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

fn read_stat(dir: &Path) -> Result<IoStat, String> {
    let path = dir.join("stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_stat(&text)
        .ok_or_else(|| format!("{}: not 11, 15 or 17 counters: {text:?}", path.display()))
}

/// Reads every device's `stat` once: the start of the interval over which
/// [`read_devices`] tells whether I/O completes.
pub fn first_sample(sys_root: &Path) -> FirstSample {
    let dir = class_dir(sys_root);
    match list_names(&dir) {
        Ok(names) => FirstSample {
            at: Some(Instant::now()),
            stats: names
                .into_iter()
                .map(|n| {
                    let s = read_stat(&dir.join(&n));
                    (n, s)
                })
                .collect(),
            listing: Ok(()),
        },
        Err(e) => FirstSample {
            at: None,
            stats: Vec::new(),
            listing: Err(e),
        },
    }
}

/// Parses a block device's `stat` (Documentation/block/stat.rst): 11
/// counters before 4.18, 15 with the discard ones, 17 with the flush ones
/// (5.5+). More are accepted (a later kernel may add some); fewer than 11,
/// or 12–14 and 16, are not a layout any kernel printed.
pub fn parse_stat(text: &str) -> Option<IoStat> {
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    match v.len() {
        11 | 15 | 17.. => {}
        _ => return None,
    }
    Some(IoStat {
        reads_completed: v[0],
        sectors_read: v[2],
        writes_completed: v[4],
        sectors_written: v[6],
        in_flight: v[8],
        io_ticks_ms: v[9],
        time_in_queue_ms: v[10],
        discards_completed: v.get(11).copied(),
        flushes_completed: v.get(15).copied(),
    })
}

/// `MAJOR:MINOR` as `dev` prints it.
fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The bracketed entry of `queue/scheduler` (`none [mq-deadline] kyber`);
/// a queue without an elevator choice prints `none` alone.
pub fn active_scheduler(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(start) = s.find('[') {
        let rest = &s[start + 1..];
        return rest.find(']').map(|end| rest[..end].to_string());
    }
    (!s.is_empty() && !s.contains(' ')).then(|| s.to_string())
}

/// What kind of device a name is; `partition` says whether the `partition`
/// file exists (the only sure sign: `loop0p1` and `nvme0n1p1` look alike).
pub fn kind_of(name: &str, partition: bool) -> BlockKind {
    let digits_after = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    if partition {
        BlockKind::Partition
    } else if digits_after("loop") {
        BlockKind::Loop
    } else if name.starts_with("dm-") {
        BlockKind::DeviceMapper
    } else if digits_after("md") {
        BlockKind::Md
    } else if digits_after("nbd") {
        BlockKind::Nbd
    } else if name.starts_with("nvme") {
        BlockKind::Nvme
    } else if digits_after("ram") || digits_after("zram") || digits_after("pmem") {
        BlockKind::Memory
    } else if ["sd", "vd", "xvd", "hd", "mmcblk", "sr"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        BlockKind::Disk
    } else {
        BlockKind::Other
    }
}

/// One device directory's reads, with the failures kept.
struct Reader<'a> {
    dir: PathBuf,
    unread: Vec<String>,
    helper: &'a mut Helper,
    deadline: Duration,
    blocked: &'a mut Vec<BlockedRead>,
    /// A bounded read of this device's queue already timed out: the others
    /// wait on the same frozen queue, so they are not tried.
    queue_blocked: bool,
}

impl Reader<'_> {
    /// A direct read of an attribute whose show() takes no sleeping lock.
    /// A file that does not exist is `None` silently: not every driver has
    /// every attribute.
    fn direct(&mut self, name: &str) -> Option<String> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(s.trim_end().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                self.unread.push(format!("{name}: {e}"));
                None
            }
        }
    }

    fn num(&mut self, name: &str, bounded: bool) -> Option<u64> {
        let s = if bounded {
            self.bounded(name)?
        } else {
            self.direct(name)?
        };
        match s.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.unread.push(format!("{name}: not a number: {s:?}"));
                None
            }
        }
    }

    fn flag(&mut self, name: &str, bounded: bool) -> Option<bool> {
        self.num(name, bounded).map(|v| v != 0)
    }

    /// A read through the sacrificial reader, for attributes whose show()
    /// takes a lock a queue freeze holds.
    fn bounded(&mut self, name: &str) -> Option<String> {
        if self.queue_blocked && name.starts_with("queue/") {
            self.unread.push(format!(
                "{name}: not read: an earlier queue attribute of this device blocked"
            ));
            return None;
        }
        let path = self.dir.join(name);
        let shown = path.display().to_string();
        match self.helper.read_file(shown.as_bytes(), self.deadline) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).trim_end().to_string()),
            Err(HelperError::Os(libc::ENOENT)) => None,
            Err(HelperError::Os(errno)) => {
                self.unread.push(format!(
                    "{name}: {}",
                    std::io::Error::from_raw_os_error(errno)
                ));
                None
            }
            Err(HelperError::TimedOut(waited)) => {
                if name.starts_with("queue/") {
                    self.queue_blocked = true;
                }
                self.unread.push(format!(
                    "{name}: did not return within {} ms",
                    self.deadline.as_millis()
                ));
                self.blocked.push(BlockedRead {
                    pid: 0,
                    tid: None,
                    what: shown,
                    waited_ms: waited.as_millis() as u64,
                    deadline_ms: self.deadline.as_millis() as u64,
                    blocks_on: blocks_on(name).into(),
                });
                None
            }
            Err(HelperError::Refused(n)) => {
                self.unread.push(format!(
                    "{name}: not read: {n} earlier bounded reads blocked"
                ));
                None
            }
            Err(HelperError::Broken(e)) => {
                self.unread
                    .push(format!("{name}: the bounded reader failed: {e}"));
                None
            }
        }
    }

    /// The name of the directory a link leads to (sysfs links are
    /// relative: `../../../0:0:0:0`).
    fn link_name(&mut self, name: &str) -> Option<String> {
        let target = std::fs::canonicalize(self.dir.join(name)).ok()?;
        target.file_name()?.to_str().map(str::to_string)
    }

    fn list(&mut self, name: &str) -> Vec<String> {
        match list_names(&self.dir.join(name)) {
            Ok(v) => v,
            Err(e) if self.dir.join(name).exists() => {
                self.unread.push(e);
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// What a blocked sysfs read of a device waits on in the kernel.
pub fn blocks_on(attr: &str) -> &'static str {
    if attr.starts_with("dm/") {
        "device-mapper's _hash_lock: a table load, rename or remove is stuck in progress"
    } else {
        "the request queue's elevator_lock/limits_lock (sysfs_lock before 6.16), held by an \
         elevator switch or limits update that is freezing the queue: the freeze waits for \
         requests in flight that do not complete"
    }
}

/// Reads every block device. `first` is the scan start's sample; the
/// second sample of `stat` is taken here, after [`MIN_SAMPLE_INTERVAL`]
/// since the first where some device had requests in flight (the wait is
/// only what the scan has not already spent), at once otherwise.
pub fn read_devices(
    sys_root: &Path,
    first: FirstSample,
    helper: &mut Helper,
    deadline: Duration,
    blocked: &mut Vec<BlockedRead>,
) -> Field<Vec<BlockDevice>> {
    if let Err(e) = &first.listing {
        return Field::missing(
            MissingReason::NotSupported,
            format!("{e} (is sysfs mounted at {}?)", sys_root.display()),
        );
    }
    let class = class_dir(sys_root);
    let mut devices = Vec::new();
    for (name, first_stat) in &first.stats {
        let dir = class.join(name);
        if !dir.exists() {
            // Removed during the scan (a loop device detached).
            continue;
        }
        devices.push(read_one(name, dir, first_stat, helper, deadline, blocked));
    }
    // The second sample: a device with requests in flight at either of
    // the first two reads needs the interval to pass.
    let busy = devices.iter().any(|(d, first)| {
        first.as_ref().is_ok_and(|s| s.in_flight > 0) || d.inflight.is_some_and(|i| i.total() > 0)
    });
    if busy {
        if let Some(at) = first.at {
            let left = MIN_SAMPLE_INTERVAL.saturating_sub(at.elapsed());
            std::thread::sleep(left);
        }
    }
    let interval_ms = first
        .at
        .map(|at| at.elapsed().as_millis() as u64)
        .unwrap_or(0);
    let mut out = Vec::with_capacity(devices.len());
    for (mut d, first_stat) in devices {
        match first_stat {
            Ok(first) => match read_stat(&class.join(&d.name)) {
                Ok(second) => {
                    d.progress = Some(IoProgress {
                        first,
                        second,
                        interval_ms,
                    })
                }
                Err(e) => d.unread.push(format!("stat (second sample): {e}")),
            },
            Err(e) => d.unread.push(format!("stat: {e}")),
        }
        out.push(d);
    }
    Field::Value(out)
}

fn read_one(
    name: &str,
    dir: PathBuf,
    first_stat: &Result<IoStat, String>,
    helper: &mut Helper,
    deadline: Duration,
    blocked: &mut Vec<BlockedRead>,
) -> (BlockDevice, Result<IoStat, String>) {
    let mut r = Reader {
        dir,
        unread: Vec::new(),
        helper,
        deadline,
        blocked,
        queue_blocked: false,
    };
    let (major, minor) = match r.direct("dev") {
        Some(s) => parse_dev(&s).unwrap_or_else(|| {
            r.unread.push(format!("dev: not MAJOR:MINOR: {s:?}"));
            (0, 0)
        }),
        None => {
            r.unread.push("dev: missing".into());
            (0, 0)
        }
    };
    let partition = r.dir.join("partition").exists();
    let kind = kind_of(name, partition);
    // A partition's directory sits inside its disk's: `..` (resolved by the
    // kernel through the class link) is the disk.
    let parent = partition
        .then(|| {
            let up = r.dir.join("..");
            std::fs::canonicalize(&up)
                .ok()
                .and_then(|p| p.file_name()?.to_str().map(str::to_string))
        })
        .flatten();
    let holders = r.list("holders");
    let slaves = r.list("slaves");
    let dm = (kind == BlockKind::DeviceMapper).then(|| DmInfo {
        name: r.bounded("dm/name").unwrap_or_default(),
        uuid: r.bounded("dm/uuid").filter(|u| !u.is_empty()),
        suspended: r.flag("dm/suspended", false),
    });
    let backing = if kind == BlockKind::Loop {
        // An unbound loop device has no loop/ directory.
        r.direct("loop/backing_file").map(|file| LoopBacking {
            file,
            offset: r.num("loop/offset", false),
            sizelimit: r.num("loop/sizelimit", false),
            autoclear: r.flag("loop/autoclear", false),
            dio: r.flag("loop/dio", false),
        })
    } else {
        None
    };
    let size_sectors = r.num("size", false);
    let read_only = r.flag("ro", false);
    let inflight = r.direct("inflight").and_then(|s| {
        let mut it = s.split_whitespace().map(|w| w.parse::<u64>().ok());
        match (it.next().flatten(), it.next().flatten()) {
            (Some(reads), Some(writes)) => Some(Inflight { reads, writes }),
            _ => {
                r.unread.push(format!("inflight: not two counters: {s:?}"));
                None
            }
        }
    });
    // The driver below: `device` links to the SCSI device (`0:0:0:0`), the
    // NVMe controller (`nvme0`), the virtio device (`virtio1`).
    let mut state = None;
    let mut controller = None;
    let mut model = None;
    let mut scsi_timeout_s = None;
    if !partition {
        if let Some(dev) = r.link_name("device") {
            if dev.starts_with("nvme") {
                controller = Some(dev);
                state = r.direct("device/state");
                model = r.direct("device/model").map(|m| m.trim().to_string());
            } else {
                state = r.direct("device/state");
                scsi_timeout_s = r.num("device/timeout", false);
                let words: Vec<String> = [r.direct("device/vendor"), r.direct("device/model")]
                    .into_iter()
                    .flatten()
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty())
                    .collect();
                model = (!words.is_empty()).then(|| words.join(" "));
                // The SCSI host is a component of the device's real path.
                controller = std::fs::canonicalize(r.dir.join("device"))
                    .ok()
                    .and_then(|p| {
                        p.iter()
                            .filter_map(|c| c.to_str())
                            .find(|c| {
                                c.strip_prefix("host").is_some_and(|n| {
                                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                                })
                            })
                            .map(str::to_string)
                    })
                    .or(Some(dev));
            }
        }
    }
    // Partitions share their disk's queue and have no queue/ of their own.
    let queue = if partition {
        QueueSettings::default()
    } else {
        QueueSettings {
            scheduler: r
                .bounded("queue/scheduler")
                .and_then(|s| active_scheduler(&s)),
            nr_requests: r.num("queue/nr_requests", true),
            io_timeout_ms: r
                .num("queue/io_timeout", true)
                .or(scsi_timeout_s.map(|s| s * 1000)),
            rotational: r.flag("queue/rotational", true),
            write_cache: r.bounded("queue/write_cache"),
        }
    };
    let mut unread = r.unread;
    unread.sort();
    let d = BlockDevice {
        name: name.to_string(),
        major,
        minor,
        kind,
        parent,
        holders,
        slaves,
        dm,
        backing,
        size_sectors,
        read_only,
        inflight,
        progress: None,
        state,
        controller,
        model,
        queue,
        unread,
    };
    (d, first_stat.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layouts() {
        // Captured on this machine (6.18, 17 counters) from loop0.
        let s = parse_stat(
            "      59        0     2110        3       33       18       92        7        0        8       15        0        0        0        0       18        5\n",
        )
        .unwrap();
        assert_eq!(s.reads_completed, 59);
        assert_eq!(s.sectors_read, 2110);
        assert_eq!(s.writes_completed, 33);
        assert_eq!(s.sectors_written, 92);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.io_ticks_ms, 8);
        assert_eq!(s.time_in_queue_ms, 15);
        assert_eq!(s.discards_completed, Some(0));
        assert_eq!(s.flushes_completed, Some(18));
        assert_eq!(s.completed(), 59 + 33 + 18);
        // 4.18–5.4: 15 counters, no flush ones.
        let s = parse_stat("1 0 8 0 2 0 16 0 3 4 5 6 0 0 0").unwrap();
        assert_eq!(
            (s.in_flight, s.discards_completed, s.flushes_completed),
            (3, Some(6), None)
        );
        // Before 4.18: 11.
        let s = parse_stat("1 0 8 0 2 0 16 0 0 4 5").unwrap();
        assert_eq!(s.discards_completed, None);
        for bad in [
            "",
            "1 2 3",
            "1 0 8 0 2 0 16 0 0 4 5 6",
            "1 0 8 0 2 0 16 0 x 4 5",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scheduler_and_kinds() {
        assert_eq!(
            active_scheduler("none [mq-deadline] kyber bfq \n").as_deref(),
            Some("mq-deadline")
        );
        assert_eq!(
            active_scheduler("[none] mq-deadline").as_deref(),
            Some("none")
        );
        assert_eq!(active_scheduler("none").as_deref(), Some("none"));
        assert_eq!(active_scheduler(""), None);
        assert_eq!(kind_of("loop0", false), BlockKind::Loop);
        assert_eq!(kind_of("loop0p1", true), BlockKind::Partition);
        assert_eq!(kind_of("nvme0n1", false), BlockKind::Nvme);
        assert_eq!(kind_of("dm-3", false), BlockKind::DeviceMapper);
        assert_eq!(kind_of("md127", false), BlockKind::Md);
        assert_eq!(kind_of("nbd0", false), BlockKind::Nbd);
        assert_eq!(kind_of("zram0", false), BlockKind::Memory);
        assert_eq!(kind_of("vda", false), BlockKind::Disk);
        assert_eq!(kind_of("mtdblock0", false), BlockKind::Other);
        assert_eq!(parse_dev("7:0\n"), Some((7, 0)));
        assert_eq!(parse_dev("259:12"), Some((259, 12)));
        assert_eq!(parse_dev("7"), None);
    }
}
