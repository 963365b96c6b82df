//! Storage and memory-hardware messages: block-layer request errors
//! (block/blk-core.c `blk_print_req_error`), buffer-cache write-back errors
//! (fs/buffer.c, fs/ext4/page-io.c), NVMe command timeouts
//! (drivers/nvme/host/pci.c `nvme_timeout`), SCSI command failures
//! (drivers/scsi/scsi_logging.c `scsi_print_result`), filesystem error
//! reports (ext4 `__ext4_error`, XFS corruption and forced shutdown, BTRFS
//! error/critical), machine checks, page allocation failures
//! (mm/page_alloc.c `warn_alloc`) and workqueue lockups
//! (kernel/workqueue.c `wq_watchdog_timer_fn`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::{Detail, Event};
use crate::parser::{new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, kv, lead_u32, lead_u64, token};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.  The
/// workqueue lockup starts with `BUG:` (the oops family's keyword).
///
/// Chosen for the prefilter's cost, not only for what they find: Teddy
/// compares the first three bytes of each keyword, and one starting with
/// lowercase letters (`error, dev`, `hostbyte=`) fits most of any text's
/// positions, each then verified.  Keywords that start with capitals or
/// punctuation (`, sector `, `Result: `, `(device `) cost far less:
/// 16 lowercase-led keywords made the search 2.3× the instructions of the
/// 40 before them, these 55.2M against 32.8M (callgrind, a 16 MB sample
/// of the benchmark's log), before their order in `scan::LAYOUT`.  They
/// name error lines, not filesystems: every mount prints `EXT4-fs (sda1):
/// mounted ...`; a remount line after an error is seen because a held
/// error makes the parser read every line.
pub(crate) const KEYWORDS: &[&str] = &[
    // `I/O error, dev sda, sector N`, `Buffer I/O error on dev ...`
    "I/O error",
    // the other statuses: `critical medium error, dev sda, sector N`
    ", sector ",
    // `nvme nvme0: I/O 12 QID 5 timeout, ...`, `controller is down; will reset: CSTS=0x3`
    "QID ",
    "CSTS=",
    // `sd 0:0:0:0: [sda] tag#0 FAILED Result: hostbyte=...`
    "Result: ",
    // `EXT4-fs error (device sdb1)`, `BTRFS error (device ...)`, `BTRFS: error (device ...)`
    "(device ",
    // `EXT4-fs (sdb1): error count since last fsck: 5`
    "): error count",
    "XFS (",
    "Machine Check",
    // `kswapd0: page allocation failure: order:2, ...`
    ": page allocation failure",
];

/// Sample first lines (real kernel output: this machine's 6.18 kernel, and
/// public bug reports) and the kind each starts.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "blk_io_error",
        text: "[44256.135417] critical space allocation error, dev loop0, sector 57346 op 0x1:(WRITE) flags 0x4000 phys_seg 20 prio class 2",
    },
    Sample {
        kind: "blk_io_error",
        text: "[  100.000000] blk_update_request: I/O error, dev sda, sector 2048",
    },
    Sample {
        kind: "buffer_io_error",
        text: "[44256.145668] Buffer I/O error on device loop0, logical block 28673",
    },
    Sample {
        kind: "nvme_timeout",
        text: "[ 1234.567890] nvme nvme0: I/O 321 QID 3 timeout, aborting",
    },
    Sample {
        kind: "nvme_timeout",
        text: "[ 1234.567891] nvme nvme0: controller is down; will reset: CSTS=0x3, PCI_STATUS=0x10",
    },
    Sample {
        kind: "scsi_error",
        text: "[  200.000000] sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_ERROR driverbyte=DRIVER_OK cmd_age=30s",
    },
    Sample {
        kind: "fs_error",
        text: "[44258.689083] EXT4-fs error (device loop0): ext4_journal_check_start:87: comm ext4lazyinit: Detected aborted journal",
    },
    Sample {
        kind: "fs_error",
        text: "[  300.000000] XFS (sdb1): Corruption detected. Unmount and run xfs_repair",
    },
    Sample {
        kind: "fs_error",
        text: "[  300.000000] BTRFS error (device sdb1): bdev /dev/sdb1 errs: wr 1, rd 0, flush 0, corrupt 0, gen 0",
    },
    Sample {
        kind: "mce",
        text: "[  400.000000] mce: [Hardware Error]: CPU 5: Machine Check: 0 Bank 8: ee0000000040110a",
    },
    Sample {
        kind: "page_alloc_failure",
        text: "[  500.000000] kswapd0: page allocation failure: order:2, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null)",
    },
    Sample {
        kind: "workqueue_lockup",
        text: "[  600.000000] BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!",
    },
];

/// Lines after a filesystem error within which a read-only remount of the
/// same filesystem is attributed to it (ext4 prints `Remounting filesystem
/// read-only` right after the error, BTRFS `forced readonly` after the
/// transaction abort's warning and its trace).
pub(crate) const REMOUNT_WINDOW_LINES: u64 = 64;

// ---- event types ----

/// `I/O error, dev sdb, sector 1024 op 0x1:(WRITE) flags 0x800 phys_seg 1
/// prio class 2` (5.3+, block/blk-core.c `blk_print_req_error`), the older
/// `blk_update_request: I/O error, dev sda, sector N` (4.x–5.x),
/// `print_req_error:` (4.17–5.2) and `end_request:` (2.6–3.x) forms, and
/// the other statuses of `blk_errors[]` (`critical medium error`,
/// `critical target error`, `timeout error`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlkIoError {
    /// The disk or partition (`sdb`, `nvme0n1`, `loop0`).
    pub device: String,
    /// First 512-byte sector of the failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<u64>,
    /// Request operation as printed in the parentheses (`READ`, `WRITE`,
    /// `FLUSH`, `DISCARD`, `WRITE_ZEROES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// The block status as printed before `, dev` (`I/O error`,
    /// `critical medium error`, `timeout error`).
    pub status: String,
}

/// `Buffer I/O error on dev sdb1, logical block 128, lost async page write`
/// (fs/buffer.c; ext4's own page-io path prints `on device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BufferIoError {
    /// The block device (`sdb1`).
    pub device: String,
    /// Filesystem block number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_block: Option<u64>,
    /// What was lost (`lost async page write`, `async page read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
}

/// `nvme nvme0: I/O 321 QID 3 timeout, aborting` (also `reset controller`,
/// `completion polled`, 6.x `I/O tag 17 (0011) opcode 0x2 (Read) QID 3
/// ...`) and `controller is down; will reset: CSTS=...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NvmeTimeout {
    /// The controller (`nvme0`; 4.x kernels print the PCI address).
    pub controller: String,
    /// Command id: the number after `I/O` or `I/O tag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<u32>,
    /// Queue id (0 is the admin queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qid: Option<u32>,
    /// What the driver does about it: the words after `timeout, `, or
    /// `will reset` for a controller that stopped answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// `sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_ERROR
/// driverbyte=DRIVER_OK cmd_age=30s` (4.x+; older kernels print no `tag#`
/// and `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScsiError {
    /// The disk (the name in brackets), or the SCSI address when none is
    /// printed.
    pub device: String,
    /// The SCSI address `H:C:T:L`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi_address: Option<String>,
    /// Host byte (`DID_ERROR`, `DID_TIME_OUT`, `DID_BAD_TARGET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostbyte: Option<String>,
    /// Driver byte (`DRIVER_OK`, `DRIVER_SENSE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driverbyte: Option<String>,
    /// Seconds since the command was issued (`cmd_age=30s`, 5.x+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd_age_seconds: Option<u64>,
}

/// A filesystem's own error report: `EXT4-fs error (device sdb1):
/// ext4_find_entry:1455: ...`, `XFS (sdb1): Corruption detected ...`,
/// `XFS (sdb1): xfs_do_force_shutdown(...)`, `BTRFS error (device ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsError {
    /// `ext4`, `ext3`, `xfs`, `btrfs`.
    pub fs: String,
    /// The filesystem's device as the filesystem names it (`sdb1`, `dm-0`).
    pub device: String,
    /// Function that reported it, where printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Source line, where printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The rest of the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The log shows this filesystem remounted read-only after the error
    /// (ext4 `Remounting filesystem read-only`, BTRFS `forced readonly`).
    pub remount_ro: bool,
}

/// `mce: [Hardware Error]: CPU 5: Machine Check: 0 Bank 8: ee0000000040110a`
/// (the CPU goes into the event's `cpu`) and `Machine Check Exception`
/// (fatal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Mce {
    /// MCA bank that logged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank: Option<u32>,
    /// The bank's status register, hex as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mce_status: Option<String>,
    /// `Machine Check Exception`: an uncorrected error (the kernel usually
    /// panics next).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exception: bool,
}

/// `TASK: page allocation failure: order:2, mode:0x40cc0(GFP_KERNEL|__GFP_COMP),
/// nodemask=(null)` (mm/page_alloc.c `warn_alloc`; the task goes into the
/// event's `task`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PageAllocFailure {
    /// Allocation order (2^order contiguous pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// GFP flags exactly as printed after `mode:` (with the decoded names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_mask: Option<String>,
}

/// `BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct WorkqueueLockup {
    /// The pool's CPUs as printed (`1`, `0-3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Seconds no work item of the pool made progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_seconds: Option<u64>,
}

/// Storage lines that need the parser (the rest are one-line reports).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StorageLine {
    /// A filesystem error: held back for [`REMOUNT_WINDOW_LINES`] lines
    /// for a read-only remount of the same filesystem.
    FsError(FsError),
    /// A filesystem error line that completes the error of the line just
    /// before it, if that one is of the same filesystem (XFS `Corruption
    /// detected` after `Internal error`); else a report of its own.
    FsErrorFollow(FsError),
    /// `Remounting filesystem read-only` / `forced readonly`: the
    /// filesystem (when named) and its device.
    Remount {
        fs: Option<String>,
        device: Option<String>,
    },
    /// A machine-check record of one bank.
    Mce(Mce, Option<u32>),
    /// `warn_alloc`'s header: a trace and the memory state follow.
    PageAlloc(PageAllocFailure, String),
}

// ---- line recognisers (called from `classify`) ----

/// The statuses of block/blk-core.c `blk_errors[]`, as printed before
/// `, dev` (`"%s error, dev %s, ..."`; the table has grown since 4.13 and
/// 6.5 renamed `critical nexus` to `reservation conflict`; `I/O` is the
/// default).
const BLK_STATUSES: &[&str] = &[
    "I/O error",
    "critical medium error",
    "critical target error",
    "critical nexus error",
    "reservation conflict error",
    "critical space allocation error",
    "recoverable transport error",
    "timeout error",
    "operation not supported error",
    "protection error",
    "kernel resource error",
    "device resource error",
    "nonblocking retry error",
    "device offline error",
    "dm internal retry error",
    "zone resource error",
    "open zones exceeded error",
    "active zones exceeded error",
    "duration limit exceeded error",
    "invalid error",
];

/// `[PREFIX: ]STATUS, dev NAME, sector N[ op 0xN:(OP) flags ...]`.
pub(crate) fn blk_io_error(s: &str) -> Option<Line> {
    let (head, rest) = s.split_once(", dev ")?;
    // 4.x `blk_update_request:`, 4.17 `print_req_error:`, 2.6 `end_request:`.
    let status = match head.rsplit_once(": ") {
        Some(("blk_update_request" | "print_req_error" | "end_request", st)) => st,
        Some(_) => return None,
        None => head,
    };
    let status = BLK_STATUSES.iter().find(|k| **k == status)?;
    let (device, tail) = rest.split_once(',')?;
    let device = device.trim();
    if device.is_empty() || device.contains(' ') {
        return None;
    }
    let sec = tail.trim_start().strip_prefix("sector ")?;
    let (sector, tail) = lead_u64(sec)?;
    let op = after(tail, " op ")
        .and_then(|o| o.split_once(":("))
        .and_then(|(_, o)| o.split_once(')'))
        .map(|(o, _)| bounded(o, 32));
    Some(Line::single(Detail::BlkIoError(BlkIoError {
        device: bounded(device, 64),
        sector: Some(sector),
        op,
        status: (*status).to_string(),
    })))
}

/// `Buffer I/O error on dev|device NAME, logical block N[, WHAT]` (the text
/// after `Buffer I/O error on `).
pub(crate) fn buffer_io_error(r: &str) -> Line {
    let r = r
        .strip_prefix("device ")
        .or_else(|| r.strip_prefix("dev "))
        .unwrap_or(r);
    let (device, tail) = r.split_once(',').unwrap_or((r, ""));
    let device = device.trim();
    if device.is_empty() || device.contains(' ') {
        return Line::Other;
    }
    let tail = tail.trim_start();
    let (logical_block, what) = match tail.strip_prefix("logical block ") {
        Some(b) => match lead_u64(b) {
            Some((n, w)) => (Some(n), w),
            None => (None, b),
        },
        None => (None, tail),
    };
    let what = what.trim_start_matches(',').trim();
    Line::single(Detail::BufferIoError(BufferIoError {
        device: bounded(device, 64),
        logical_block,
        what: (!what.is_empty()).then(|| bounded(what, 64)),
    }))
}

/// `nvme CTRL: MSG` (the text after `nvme `).
pub(crate) fn nvme(r: &str) -> Option<Line> {
    let (ctrl, msg) = r.split_once(": ")?;
    if ctrl.is_empty() || ctrl.contains(' ') {
        return None;
    }
    let controller = bounded(ctrl, 64);
    if msg.starts_with("controller is down; will reset") {
        return Some(Line::single(Detail::NvmeTimeout(NvmeTimeout {
            controller,
            command_id: None,
            qid: None,
            action: Some("will reset".to_string()),
        })));
    }
    let io = msg.strip_prefix("I/O ")?;
    let io = io.strip_prefix("tag ").unwrap_or(io);
    let (command_id, _) = lead_u32(io)?;
    let qid = after(io, " QID ").and_then(|q| lead_u32(q).map(|v| v.0));
    let t = after(io, " timeout")?;
    // 6.x appends `req_op:WRITE(1) size:4096` to `aborting`: the action is
    // the words up to the first `key:value`.
    let action: Vec<&str> = t
        .trim_start_matches(',')
        .split_whitespace()
        .take_while(|w| !w.contains(':') && !w.contains('('))
        .collect();
    let action = action.join(" ");
    let action = action.trim_end_matches(['.', ',']);
    Some(Line::single(Detail::NvmeTimeout(NvmeTimeout {
        controller,
        command_id: Some(command_id),
        qid,
        action: (!action.is_empty()).then(|| bounded(action, 64)),
    })))
}

/// `DRV H:C:T:L: [NAME] [tag#N] [FAILED] Result: hostbyte=X driverbyte=Y [cmd_age=Ns]`.
pub(crate) fn scsi_error(s: &str) -> Option<Line> {
    let (drv, rest) = token(s);
    if drv.is_empty() || !drv.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let (addr, rest) = token(rest);
    let addr = addr.strip_suffix(':')?;
    if addr.split(':').count() != 4 || !addr.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let name = rest
        .strip_prefix('[')
        .and_then(|n| n.split_once(']'))
        .map(|(n, _)| n);
    let res = after(rest, "Result: ")?;
    let hostbyte = kv(res, "hostbyte=").map(|v| bounded(v, 32));
    let driverbyte = kv(res, "driverbyte=").map(|v| bounded(v, 32));
    hostbyte.as_ref()?;
    let cmd_age_seconds = kv(res, "cmd_age=").and_then(|v| lead_u64(v).map(|x| x.0));
    Some(Line::single(Detail::ScsiError(ScsiError {
        device: bounded(name.unwrap_or(addr), 64),
        scsi_address: Some(addr.to_string()),
        hostbyte,
        driverbyte,
        cmd_age_seconds,
    })))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `FUNC:LINE: rest` or `FUNC: rest` at the start of `s`.
fn func_line(s: &str) -> (Option<String>, Option<u32>, &str) {
    let Some((f, rest)) = s.split_once(':') else {
        return (None, None, s);
    };
    if !is_ident(f) {
        return (None, None, s);
    }
    if let Some((n, r)) = lead_u32(rest) {
        if let Some(r) = r.strip_prefix(':') {
            return (Some(f.to_string()), Some(n), r.trim_start());
        }
    }
    (Some(f.to_string()), None, rest.trim_start())
}

fn fs_error_line(
    fs: &str,
    device: &str,
    function: Option<String>,
    line: Option<u32>,
    msg: &str,
) -> Line {
    let msg = msg.trim();
    Line::report(StorageLine::FsError(FsError {
        fs: fs.to_string(),
        device: bounded(device, 64),
        function: function.map(|f| bounded(&f, 128)),
        line,
        message: (!msg.is_empty()).then(|| bounded(msg, 256)),
        remount_ro: false,
    }))
}

/// `EXT4-fs ...` / `EXT3-fs ...` (the text after `EXTn-fs`; `fs` is
/// `ext4` or `ext3`).
fn ext(fs: &str, r: &str) -> Line {
    // `EXT4-fs error (device sdb1): FUNC:LINE: ...` (__ext4_error) and
    // `EXT4-fs error (device sdb1) in FUNC:LINE: ...` (__ext4_std_error).
    if let Some(x) = r.strip_prefix(" error (device ") {
        let Some((dev, rest)) = x.split_once(')') else {
            return Line::Other;
        };
        let rest = rest
            .strip_prefix(": ")
            .or_else(|| rest.strip_prefix(" in "))
            .unwrap_or(rest);
        let (function, line, msg) = func_line(rest);
        return fs_error_line(fs, dev, function, line, msg);
    }
    // `EXT4-fs (sdb1): MSG` (ext4_msg).
    if let Some(x) = r.strip_prefix(" (") {
        let Some((dev, msg)) = x.split_once("): ") else {
            return Line::Other;
        };
        if msg.starts_with("Remounting filesystem read-only")
            || msg.starts_with("error: remounting filesystem read-only")
        {
            return Line::report(StorageLine::Remount {
                fs: Some(fs.to_string()),
                device: Some(bounded(dev, 64)),
            });
        }
        if msg.starts_with("error count since last fsck") {
            return fs_error_line(fs, dev, None, None, msg);
        }
    }
    Line::Other
}

/// `XFS (DEV): MSG` (the text after `XFS (`).
fn xfs(r: &str) -> Line {
    let Some((dev, msg)) = r.split_once("): ") else {
        return Line::Other;
    };
    if dev.is_empty() || dev.contains(' ') {
        return Line::Other;
    }
    // xfs_verifier_error: `Metadata corruption detected at FUNC+0x../0x.. [xfs], ...`
    for pfx in [
        "Metadata corruption detected at ",
        "Metadata CRC error detected at ",
    ] {
        if let Some(x) = msg.strip_prefix(pfx) {
            let f = x.split(['+', ',', ' ']).next().filter(|f| is_ident(f));
            return fs_error_line("xfs", dev, f.map(str::to_string), None, msg);
        }
    }
    // xfs_corruption_error prints `Internal error ...` (below) and then
    // this line: one report, so it joins that error when it follows it.
    if msg.starts_with("Corruption detected") {
        let Line::Report(super::Report::Storage(StorageLine::FsError(e))) =
            fs_error_line("xfs", dev, None, None, msg)
        else {
            return Line::Other;
        };
        return Line::report(StorageLine::FsErrorFollow(e));
    }
    // xfs_error_report: `Internal error TAG at line N of file F.  Caller FUNC+0x..`:
    // the tag is the failing function or an expression; the caller is the
    // function that detected it.
    if let Some(x) = msg.strip_prefix("Internal error ") {
        let (tag, rest) = x.split_once(" at line ").unwrap_or((x, ""));
        let line = lead_u32(rest).map(|v| v.0);
        let caller = after(rest, "Caller ")
            .and_then(|c| c.split(['+', ' ']).next())
            .filter(|c| is_ident(c));
        let function = if is_ident(tag) && tag.bytes().any(|b| b.is_ascii_lowercase()) {
            Some(tag)
        } else {
            caller
        };
        return fs_error_line("xfs", dev, function.map(str::to_string), line, msg);
    }
    // Before 6.0: `xfs_do_force_shutdown(0x2) called from line N of file F.`
    if let Some(x) = msg.strip_prefix("xfs_do_force_shutdown(") {
        let line = after(x, "called from line ").and_then(|l| lead_u32(l).map(|v| v.0));
        return fs_error_line(
            "xfs",
            dev,
            Some("xfs_do_force_shutdown".to_string()),
            line,
            msg,
        );
    }
    // 6.0+: `Corruption of in-memory data (0x8) detected at FUNC+0x../0x..
    // [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.` (the older
    // `... detected.  Shutting down filesystem` follows the
    // `xfs_do_force_shutdown` line above and is not a second report).
    if msg.contains(") detected at ") && msg.contains("Shutting down filesystem") {
        let at = after(msg, ") detected at ").unwrap_or("");
        let f = at.split(['+', ' ']).next().filter(|f| is_ident(f));
        let line = at
            .rsplit_once(':')
            .and_then(|(_, l)| lead_u32(l).map(|v| v.0));
        return fs_error_line("xfs", dev, f.map(str::to_string), line, msg);
    }
    // 6.x xlog_force_shutdown.
    if msg.starts_with("Filesystem has been shut down due to") {
        return fs_error_line("xfs", dev, None, None, msg);
    }
    if msg.starts_with("Please unmount the filesystem")
        || msg.starts_with("Please umount the filesystem")
        || msg.contains("Shutting down filesystem")
    {
        return Line::Related;
    }
    Line::Other
}

/// `BTRFS error (device DEV[ state X]): MSG`, `BTRFS critical (...)`,
/// `BTRFS: error (device DEV) in FUNC:LINE: errno=-5 IO failure`, and
/// `BTRFS info (device DEV): forced readonly` (the text after `BTRFS`).
fn btrfs(r: &str) -> Line {
    let r = r.strip_prefix(':').unwrap_or(r).trim_start();
    let (level, rest) = token(r);
    let Some(x) = rest.strip_prefix("(device ") else {
        return Line::Other;
    };
    let Some((inside, msg)) = x.split_once(')') else {
        return Line::Other;
    };
    // 5.18+ adds the filesystem state letters: `(device sdb: state EA)`,
    // 6.x `(device sdb state EA)`.
    let dev = inside
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(':');
    if dev.is_empty() {
        return Line::Other;
    }
    match level {
        "error" | "critical" => {
            let msg = msg
                .strip_prefix(": ")
                .or_else(|| msg.strip_prefix(" in "))
                .unwrap_or(msg);
            let (function, line, rest) = if msg.contains(':') {
                func_line(msg)
            } else {
                (None, None, msg)
            };
            fs_error_line("btrfs", dev, function, line, rest)
        }
        "info" | "warning" if msg.trim_start_matches(':').trim() == "forced readonly" => {
            Line::report(StorageLine::Remount {
                fs: Some("btrfs".to_string()),
                device: Some(bounded(dev, 64)),
            })
        }
        _ => Line::Other,
    }
}

/// Filesystem messages: `EXT4-fs ...`, `EXT3-fs ...`, `XFS (...)`,
/// `BTRFS ...`, and 2.6's bare `Remounting filesystem read-only`.
pub(crate) fn fs_line(s: &str) -> Option<Line> {
    if let Some(r) = s.strip_prefix("EXT4-fs") {
        return Some(ext("ext4", r));
    }
    if let Some(r) = s.strip_prefix("EXT3-fs") {
        return Some(ext("ext3", r));
    }
    if let Some(r) = s.strip_prefix("XFS (") {
        return Some(xfs(r));
    }
    if let Some(r) = s.strip_prefix("BTRFS") {
        return Some(btrfs(r));
    }
    if s.starts_with("Remounting filesystem read-only") {
        return Some(Line::report(StorageLine::Remount {
            fs: None,
            device: None,
        }));
    }
    None
}

/// A machine-check line, after `mce: ` and `[Hardware Error]: ` are
/// stripped: `CPU 5: Machine Check: 0 Bank 8: STATUS`, `CPU 0: Machine
/// Check Exception: 5 Bank 4: STATUS`; the other lines of the record
/// (`RIP`, `TSC`, `PROCESSOR`, `Machine check events logged`, ...) carry
/// nothing kept.
pub(crate) fn mce(r: &str) -> Line {
    let r = r.strip_prefix("[Hardware Error]: ").unwrap_or(r);
    // `Machine check events logged` announces the records printed after
    // it (or handed to mcelog): not a report of its own.
    let Some(x) = r.strip_prefix("CPU ") else {
        return Line::Related;
    };
    let Some((cpu, x)) = lead_u32(x) else {
        return Line::Related;
    };
    let Some(x) = x.strip_prefix(": Machine Check") else {
        return Line::Related;
    };
    let exception = x.starts_with(" Exception");
    let (bank, status) = match after(x, "Bank ") {
        Some(b) => match lead_u32(b) {
            Some((n, st)) => {
                let st = st.trim_start_matches(':').trim();
                let (hex, _) = token(st);
                (Some(n), crate::util::is_hex(hex).then(|| bounded(hex, 32)))
            }
            None => (None, None),
        },
        None => (None, None),
    };
    Line::report(StorageLine::Mce(
        Mce {
            bank,
            mce_status: status,
            exception,
        },
        Some(cpu),
    ))
}

/// `TASK: page allocation failure: order:N, mode:GFP...` (2.6 prints
/// `failure. order:N`): `head` is the task, `r` the text after
/// `page allocation failure`.
pub(crate) fn page_alloc_failure(head: &str, r: &str) -> Line {
    let task = head.trim();
    if task.is_empty() {
        return Line::Other;
    }
    let order = kv(r, "order:").and_then(|o| o.parse().ok());
    let gfp_mask = kv(r, "mode:").map(|m| bounded(m, 128));
    Line::report(StorageLine::PageAlloc(
        PageAllocFailure { order, gfp_mask },
        bounded(task, 64),
    ))
}

/// `workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!`
/// (the text after `BUG: `).
pub(crate) fn workqueue_lockup(r: &str) -> Line {
    Line::single(Detail::WorkqueueLockup(WorkqueueLockup {
        cpus: kv(r, "cpus=").map(|c| bounded(c, 64)),
        stuck_seconds: after(r, "stuck for ").and_then(|t| lead_u64(t).map(|v| v.0)),
    }))
}

// ---- meanings ----

/// The one-line explanation of a `blk_io_error` event.
pub(crate) fn meaning_blk_io_error(_ev: &Event, e: &BlkIoError, _who: &str) -> String {
    let what = match e.op.as_deref() {
        Some(op) => format!("a {op} request"),
        None => "a request".to_string(),
    };
    let at = e
        .sector
        .map(|s| format!(" at sector {s}"))
        .unwrap_or_default();
    let tail = match (e.status.as_str(), e.op.as_deref()) {
        ("operation not supported error", _) => {
            "; the device does not support the operation (often a harmless probe by mkfs or the filesystem)"
        }
        (_, Some("WRITE" | "FLUSH")) => {
            "; the write is lost unless the filesystem retries it, and a filesystem usually reacts by aborting its journal or going read-only"
        }
        _ => "; the task that issued it got EIO",
    };
    format!(
        "the block layer failed {what} on {}{at} ({}){tail}",
        e.device, e.status
    )
}

/// The one-line explanation of a `buffer_io_error` event.
pub(crate) fn meaning_buffer_io_error(_ev: &Event, e: &BufferIoError, _who: &str) -> String {
    format!(
        "the page cache could not {} block {} of {}{}",
        if e.what.as_deref().is_some_and(|w| w.contains("read")) {
            "read"
        } else {
            "write back"
        },
        e.logical_block
            .map_or_else(|| "?".to_string(), |b| b.to_string()),
        e.device,
        if e.what.as_deref().is_some_and(|w| w.starts_with("lost")) {
            ": that data is lost"
        } else {
            " (the device returned an error)"
        }
    )
}

/// The one-line explanation of a `nvme_timeout` event.
pub(crate) fn meaning_nvme_timeout(_ev: &Event, e: &NvmeTimeout, _who: &str) -> String {
    if e.command_id.is_none() {
        return format!(
            "NVMe controller {} stopped answering (controller is down) and is being reset; I/O to its namespaces waits until the reset ends or fails",
            e.controller
        );
    }
    format!(
        "NVMe controller {}: command {} on queue {} timed out ({}); tasks waiting on it stay in D state until the driver aborts or resets",
        e.controller,
        e.command_id.unwrap_or(0),
        e.qid.map_or_else(|| "?".to_string(), |q| q.to_string()),
        e.action.as_deref().unwrap_or("?")
    )
}

/// The one-line explanation of a `scsi_error` event.
pub(crate) fn meaning_scsi_error(_ev: &Event, e: &ScsiError, _who: &str) -> String {
    let why = match e.hostbyte.as_deref() {
        Some("DID_TIME_OUT") => "the command timed out",
        Some("DID_NO_CONNECT" | "DID_BAD_TARGET") => "the device is unreachable",
        Some("DID_ERROR") => "the host adapter reported an error",
        Some("DID_OK") => "the device returned an error (see the sense data)",
        _ => "the command failed",
    };
    format!(
        "SCSI command to {} failed: {why} (hostbyte={}, driverbyte={}); the request returns an I/O error unless it is retried",
        e.device,
        e.hostbyte.as_deref().unwrap_or("?"),
        e.driverbyte.as_deref().unwrap_or("?")
    )
}

/// The one-line explanation of a `fs_error` event.
pub(crate) fn meaning_fs_error(_ev: &Event, e: &FsError, _who: &str) -> String {
    let at = match (&e.function, e.line) {
        (Some(f), Some(l)) => format!(" in {f}:{l}"),
        (Some(f), None) => format!(" in {f}"),
        _ => String::new(),
    };
    let shutdown = e.fs == "xfs"
        && (e.function.as_deref() == Some("xfs_do_force_shutdown")
            || e.message
                .as_deref()
                .is_some_and(|m| m.contains("shut down") || m.contains("Shutting down")));
    let tail = if e.remount_ro {
        "; it was remounted read-only: writes now fail with EROFS until it is repaired and remounted"
    } else if shutdown {
        "; the filesystem shut down: every I/O on it fails until it is unmounted and repaired"
    } else {
        "; metadata may be damaged (check the device's I/O errors, then fsck/repair)"
    };
    format!("{} on {} reported an error{at}{tail}", e.fs, e.device)
}

/// The one-line explanation of a `mce` event.
pub(crate) fn meaning_mce(ev: &Event, m: &Mce, _who: &str) -> String {
    let Some(cpu) = ev.cpu else {
        return "the CPU logged machine-check (hardware) errors; read them with mcelog or rasdaemon"
            .to_string();
    };
    format!(
        "machine check on CPU {cpu}{}: the hardware reported {}",
        m.bank.map(|b| format!(" bank {b}")).unwrap_or_default(),
        if m.exception {
            "an uncorrected error (memory, cache or bus); the kernel usually panics next"
        } else {
            "an error (memory, cache or bus); decode the status with mcelog or rasdaemon"
        }
    )
}

/// The one-line explanation of a `page_alloc_failure` event.
pub(crate) fn meaning_page_alloc_failure(_ev: &Event, p: &PageAllocFailure, who: &str) -> String {
    format!(
        "{who} could not allocate {} contiguous page(s) ({}); the allocation failed, memory is short or fragmented",
        p.order.map_or_else(|| "?".to_string(), |o| (1u64 << o.min(20)).to_string()),
        p.gfp_mask.as_deref().unwrap_or("?")
    )
}

/// The one-line explanation of a `workqueue_lockup` event.
pub(crate) fn meaning_workqueue_lockup(_ev: &Event, w: &WorkqueueLockup, _who: &str) -> String {
    format!(
        "the kernel's worker pool for CPUs {} ran no work item for {} s: work queued there (writeback, I/O completion, ...) is stuck behind a blocked or spinning worker",
        w.cpus.as_deref().unwrap_or("?"),
        w.stuck_seconds
            .map_or_else(|| "?".to_string(), |s| s.to_string())
    )
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for StorageLine {
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let ln = ps.line_no;
        match self {
            StorageLine::FsError(e) => {
                let ev = new_event(Detail::FsError(e), p, ln);
                ps.push_held(ev, ln + REMOUNT_WINDOW_LINES);
            }
            StorageLine::FsErrorFollow(e) => {
                let mut joined = false;
                ps.patch_held(|ev| match &mut ev.detail {
                    Detail::FsError(x)
                        if !joined
                            && x.fs == e.fs
                            && x.device == e.device
                            && ev.lines.last + 2 >= ln
                            && x.message
                                .as_deref()
                                .is_some_and(|m| m.starts_with("Internal error")) =>
                    {
                        joined = true;
                        true
                    }
                    _ => false,
                });
                if !joined {
                    let ev = new_event(Detail::FsError(e), p, ln);
                    ps.push_held(ev, ln + REMOUNT_WINDOW_LINES);
                }
            }
            StorageLine::Remount { fs, device } => {
                ps.patch_held(|ev| match &mut ev.detail {
                    Detail::FsError(e)
                        if !e.remount_ro
                            && fs.as_ref().is_none_or(|f| *f == e.fs)
                            && device.as_ref().is_none_or(|d| *d == e.device) =>
                    {
                        e.remount_ro = true;
                        true
                    }
                    _ => false,
                });
            }
            StorageLine::Mce(m, cpu) => {
                let mut ev = new_event(Detail::Mce(m), p, ln);
                ev.cpu = cpu;
                ps.push_single(ev);
            }
            StorageLine::PageAlloc(pa, task) => {
                ps.close_cur(p.caller);
                let mut ev = new_event(Detail::PageAllocFailure(pa), p, ln);
                ev.task = Some(task);
                ps.open_event(ev, p, 6);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn events(log: &str) -> Vec<Value> {
        crate::parse_str(log)
            .events
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect()
    }

    fn one(line: &str) -> Value {
        let ev = events(line);
        assert_eq!(ev.len(), 1, "{line}: {ev:#?}");
        ev.into_iter().next().unwrap_or(Value::Null)
    }

    fn check(line: &str, want: &Value) {
        let got = one(line);
        for (k, v) in want.as_object().into_iter().flatten() {
            assert_eq!(got.get(k), Some(v), "field {k} of {line}: {got}");
        }
    }

    #[test]
    fn blk_io_error_forms() {
        check(
            "[  609.259554] I/O error, dev sda, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
            &json!({"kind": "blk_io_error", "device": "sda", "sector": 0, "op": "READ", "status": "I/O error"}),
        );
        check(
            "[ 1.0] I/O error, dev sdb, sector 1024 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2",
            &json!({"kind": "blk_io_error", "device": "sdb", "sector": 1024, "op": "WRITE"}),
        );
        check(
            "kernel: blk_update_request: critical target error, dev sdb, sector 16368 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
            &json!({"kind": "blk_io_error", "device": "sdb", "sector": 16368, "op": "READ", "status": "critical target error"}),
        );
        let old = one("[ 2.0] blk_update_request: I/O error, dev sda, sector 2048");
        assert_eq!(old["device"], "sda");
        assert_eq!(old["sector"], 2048);
        assert!(old.get("op").is_none(), "{old}");
        check(
            "[ 3.0] blk_update_request: critical medium error, dev sda, sector 81920",
            &json!({"kind": "blk_io_error", "status": "critical medium error", "sector": 81920}),
        );
        check(
            "[130128.750142] print_req_error: critical medium error, dev sdn, sector 33928",
            &json!({"kind": "blk_io_error", "device": "sdn"}),
        );
        check(
            "[  133.928319] end_request: critical target error, dev sdc, sector 62333824",
            &json!({"kind": "blk_io_error", "device": "sdc", "sector": 62_333_824}),
        );
        for st in ["critical nexus error", "timeout error"] {
            check(
                &format!("[ 4.0] {st}, dev sdd, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0"),
                &json!({"kind": "blk_io_error", "status": st, "op": "WRITE"}),
            );
        }
        // This machine (6.18) under mkfs.ext4 on a loop device.
        check(
            "[44255.955690] operation not supported error, dev loop0, sector 130944 op 0x9:(WRITE_ZEROES) flags 0x20000800 phys_seg 0 prio class 2",
            &json!({"kind": "blk_io_error", "device": "loop0", "op": "WRITE_ZEROES"}),
        );
    }

    #[test]
    fn user_programs_printing_io_error_are_not_events() {
        for l in [
            "cp: error reading 'x': Input/output error",
            "myapp: I/O error, dev sda, sector 12",
            "I/O error, dev sda",
            "I/O error, dev sda, sector twelve",
            "Mar  4 08:15:02 host myapp[12]: I/O error, dev sda, sector 1024 op 0x1:(WRITE)",
            "some tool: Buffer I/O error, please retry",
            "sd card: Result: hostbyte=fine",
            "Error: page allocation failure rate is 3%",
        ] {
            let ev = events(l);
            assert!(ev.is_empty(), "{l}: {ev:#?}");
        }
    }

    #[test]
    fn buffer_io_error_forms() {
        check(
            "[  609.259595] Buffer I/O error on dev sda, logical block 0, async page read",
            &json!({"kind": "buffer_io_error", "device": "sda", "logical_block": 0, "what": "async page read"}),
        );
        check(
            "[ 1.0] Buffer I/O error on dev sdb1, logical block 128, lost async page write",
            &json!({"kind": "buffer_io_error", "device": "sdb1", "logical_block": 128}),
        );
        check(
            "[44256.145668] Buffer I/O error on device loop0, logical block 28673",
            &json!({"kind": "buffer_io_error", "device": "loop0", "logical_block": 28673}),
        );
    }

    #[test]
    fn nvme_forms() {
        check(
            "[384589.758045] nvme nvme0: I/O 12 QID 5 timeout, aborting",
            &json!({"kind": "nvme_timeout", "controller": "nvme0", "command_id": 12, "qid": 5, "action": "aborting"}),
        );
        check(
            "[  101.417700] nvme nvme0: I/O 897 QID 2 timeout, completion polled",
            &json!({"kind": "nvme_timeout", "command_id": 897, "qid": 2, "action": "completion polled"}),
        );
        check(
            "[ 1.0] nvme nvme1: I/O 5 QID 0 timeout, reset controller",
            &json!({"kind": "nvme_timeout", "controller": "nvme1", "qid": 0, "action": "reset controller"}),
        );
        check(
            "[ 1.0] nvme nvme0: I/O tag 17 (0011) opcode 0x1 (Write) QID 3 timeout, aborting req_op:WRITE(1) size:4096",
            &json!({"kind": "nvme_timeout", "command_id": 17, "qid": 3, "action": "aborting"}),
        );
        let down =
            one("[ 2.0] nvme nvme0: controller is down; will reset: CSTS=0x3, PCI_STATUS=0x10");
        assert_eq!(down["action"], "will reset");
        assert!(
            down.get("qid").is_none() && down.get("command_id").is_none(),
            "{down}"
        );
        // Not timeouts.
        assert!(events("[ 3.0] nvme nvme0: Abort status: 0x0").is_empty());
    }

    #[test]
    fn scsi_forms() {
        check(
            "[  611.175508] sd 0:0:0:0: [sda] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=1s",
            &json!({"kind": "scsi_error", "device": "sda", "hostbyte": "DID_OK", "driverbyte": "DRIVER_OK", "scsi_address": "0:0:0:0"}),
        );
        check(
            "[ 1.0] sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_ERROR driverbyte=DRIVER_OK cmd_age=30s",
            &json!({"kind": "scsi_error", "device": "sdb", "hostbyte": "DID_ERROR", "cmd_age_seconds": 30}),
        );
        check(
            "[130128.749858] sd 15:0:0:1: [sdn] tag#4 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE",
            &json!({"kind": "scsi_error", "device": "sdn", "driverbyte": "DRIVER_SENSE"}),
        );
        // 3.x: no tag, two spaces.
        check(
            "[ 9.0] sd 2:0:0:0: [sdc]  Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE",
            &json!({"kind": "scsi_error", "device": "sdc"}),
        );
        check(
            "[ 4526.201064] sd 0:0:0:0: [sda] tag#0 UNKNOWN(0x2003) Result: hostbyte=0x00 driverbyte=DRIVER_OK cmd_age=0s",
            &json!({"kind": "scsi_error", "hostbyte": "0x00"}),
        );
    }

    #[test]
    fn ext4_errors_and_remount() {
        let ev = events(
            "[ 1.0] EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n\
             [ 1.1] Aborting journal on device sdb1-8.\n\
             [ 1.2] EXT4-fs (sdb1): Remounting filesystem read-only\n\
             [ 2.0] EXT4-fs error (device sda1) in ext4_reserve_inode_write:5717: Journal has aborted\n",
        );
        assert_eq!(ev.len(), 2, "{ev:#?}");
        assert_eq!(ev[0]["fs"], "ext4");
        assert_eq!(ev[0]["device"], "sdb1");
        assert_eq!(ev[0]["function"], "ext4_find_entry");
        assert_eq!(ev[0]["line"], 1455);
        assert_eq!(ev[0]["remount_ro"], true);
        assert_eq!(ev[0]["lines"]["last"], 3);
        assert!(ev[0]["meaning"]
            .as_str()
            .unwrap_or("")
            .contains("read-only"));
        // Another device: its own error, no remount seen.
        assert_eq!(ev[1]["device"], "sda1");
        assert_eq!(ev[1]["function"], "ext4_reserve_inode_write");
        assert_eq!(ev[1]["line"], 5717);
        assert_eq!(ev[1]["remount_ro"], false);
    }

    #[test]
    fn remount_of_another_device_does_not_count() {
        let ev = events(
            "[ 1.0] EXT4-fs error (device sdb1): ext4_lookup:1700: inode #12: comm find: deleted inode referenced: 99\n\
             [ 1.2] EXT4-fs (sdc1): Remounting filesystem read-only\n",
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["remount_ro"], false);
    }

    #[test]
    fn remount_after_the_window_does_not_count() {
        let mut log = String::from(
            "[ 1.0] EXT4-fs error (device sdb1): ext4_journal_check_start:83: comm a: Detected aborted journal\n",
        );
        for i in 0..super::REMOUNT_WINDOW_LINES + 2 {
            log.push_str(&format!("[ 2.{i}] usb 1-1: something else\n"));
        }
        log.push_str("[ 3.0] EXT4-fs (sdb1): Remounting filesystem read-only\n");
        let ev = events(&log);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["remount_ro"], false);
    }

    #[test]
    fn a_quiet_follower_releases_held_errors() {
        let mut p = crate::Parser::new();
        p.push_line(
            b"[ 1.0] EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: x",
        );
        assert!(p.next_event().is_none(), "held for its remount");
        p.release_held();
        let ev = p.next_event().map(|e| e.kind());
        assert_eq!(ev, Some("fs_error"));
    }

    #[test]
    fn held_error_keeps_log_order() {
        let ev = events(
            "[ 1.0] EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n\
             [ 1.1] I/O error, dev sdb, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n\
             [ 1.2] EXT4-fs (sdb1): Remounting filesystem read-only\n",
        );
        let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
        assert_eq!(kinds, ["fs_error", "blk_io_error"]);
        assert_eq!(ev[0]["remount_ro"], true);
    }

    #[test]
    fn ext4_error_count_and_ext3() {
        check(
            "[ 5.0] EXT4-fs (sdb1): error count since last fsck: 5",
            &json!({"kind": "fs_error", "fs": "ext4", "device": "sdb1", "remount_ro": false}),
        );
        let ev = events(
            "[ 1.0] EXT3-fs error (device sda1): ext3_journal_start_sb: Detected aborted journal\n\
             [ 1.1] EXT3-fs (sda1): error: remounting filesystem read-only\n",
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["fs"], "ext3");
        assert_eq!(ev[0]["function"], "ext3_journal_start_sb");
        assert_eq!(ev[0]["remount_ro"], true);
        // Not errors: warnings and mount notices.
        assert!(events(
            "[44256.140545] EXT4-fs warning (device loop0): ext4_end_bio:368: I/O error 3 writing to inode 12 starting block 29953)\n\
             [44255.969419] EXT4-fs (loop0): mounted filesystem 2c55e0d3 r/w with ordered data mode. Quota mode: none.\n"
        )
        .is_empty());
    }

    #[test]
    fn xfs_forms() {
        // node-problem-detector#845: one corruption report, then the shutdown.
        let ev = events(
            "kernel: XFS (dm-4): Internal error xfs_iunlink_remove at line 2038 of file fs/xfs/xfs_inode.c.  Caller xfs_ifree+0x33/0x130 [xfs]\n\
             kernel: XFS (dm-4): Corruption detected. Unmount and run xfs_repair\n\
             kernel: XFS (dm-4): xfs_inactive_ifree: xfs_ifree returned error -117\n\
             kernel: XFS (dm-4): xfs_do_force_shutdown(0x1) called from line 1788 of file fs/xfs/xfs_inode.c.  Return address = 000000009d022bf1\n\
             kernel: XFS (dm-4): I/O Error Detected. Shutting down filesystem\n\
             kernel: XFS (dm-4): Please umount the filesystem and rectify the problem(s)\n",
        );
        assert_eq!(ev.len(), 2, "{ev:#?}");
        assert_eq!(ev[0]["function"], "xfs_iunlink_remove");
        assert_eq!(ev[0]["line"], 2038);
        assert_eq!(ev[0]["lines"]["last"], 2);
        assert_eq!(ev[1]["function"], "xfs_do_force_shutdown");
        assert_eq!(ev[1]["line"], 1788);
        assert!(ev[1]["meaning"]
            .as_str()
            .unwrap_or("")
            .contains("shut down"));
        check(
            "[   10.036682] XFS (vda4): Metadata corruption detected at xfs_buf_ioend+0x162/0x570 [xfs], xfs_inode block 0x2fc4e0 xfs_inode_buf_verify",
            &json!({"kind": "fs_error", "fs": "xfs", "device": "vda4", "function": "xfs_buf_ioend"}),
        );
        check(
            "[ 1.0] XFS (sdb1): Corruption detected. Unmount and run xfs_repair",
            &json!({"kind": "fs_error", "fs": "xfs", "device": "sdb1"}),
        );
        check(
            "[ 1.0] XFS (sdb): Filesystem has been shut down due to log error (0x2).",
            &json!({"kind": "fs_error", "fs": "xfs", "device": "sdb"}),
        );
        check(
            "[ 1.0] XFS (sda2): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x14b/0x180 [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.",
            &json!({"kind": "fs_error", "function": "xfs_trans_cancel", "line": 1097}),
        );
        check(
            "[ 1.0] XFS (dm-0): Internal error XFS_WANT_CORRUPTED_GOTO at line 1423 of file fs/xfs/libxfs/xfs_alloc.c.  Caller xfs_free_ag_extent+0x3f6/0x870 [xfs]",
            &json!({"kind": "fs_error", "function": "xfs_free_ag_extent", "line": 1423}),
        );
        assert!(events("[ 1.0] XFS (sdb1): Mounting V5 Filesystem").is_empty());
    }

    #[test]
    fn btrfs_forms() {
        // btrfs/linux#761 (5.11).
        let ev = events(
            "Mar 20 14:49:59 ip-172-31-36-240 kernel: [3135163.311298] BTRFS: error (device nvme2n1) in __btrfs_update_delayed_inode:1075: errno=-5 IO failure\n\
             Mar 20 14:49:59 ip-172-31-36-240 kernel: [3135163.316955] BTRFS info (device nvme2n1): forced readonly\n\
             Mar 20 14:49:59 ip-172-31-36-240 kernel: [3135163.341527] BTRFS warning (device nvme2n1): Skipping commit of aborted transaction.\n\
             Mar 20 14:49:59 ip-172-31-36-240 kernel: [3135163.341535] BTRFS: error (device nvme2n1) in cleanup_transaction:1941: errno=-5 IO failure\n",
        );
        assert_eq!(ev.len(), 2, "{ev:#?}");
        assert_eq!(ev[0]["fs"], "btrfs");
        assert_eq!(ev[0]["device"], "nvme2n1");
        assert_eq!(ev[0]["function"], "__btrfs_update_delayed_inode");
        assert_eq!(ev[0]["line"], 1075);
        assert_eq!(ev[0]["remount_ro"], true);
        assert_eq!(ev[1]["function"], "cleanup_transaction");
        assert_eq!(ev[1]["remount_ro"], false);
        // 5.18+ state letters.
        let ev = events(
            "[  423.319822] BTRFS error (device sda3): block=5763170304 write time tree block corruption detected\n\
             [  423.420184] BTRFS: error (device sda3) in btrfs_commit_transaction:2487: errno=-5 IO failure (Error while writing out transaction)\n\
             [  423.420194] BTRFS info (device sda3: state E): forced readonly\n",
        );
        assert_eq!(ev.len(), 2, "{ev:#?}");
        assert!(ev.iter().all(|e| e["remount_ro"] == true), "{ev:#?}");
        assert!(ev[0].get("function").is_none(), "{}", ev[0]);
        check(
            "[ 1.0] BTRFS critical (device sda state EA): corrupt leaf: root=1 block=1234 slot=5",
            &json!({"kind": "fs_error", "fs": "btrfs", "device": "sda"}),
        );
        assert!(
            events("[ 1.0] BTRFS info (device sdb1): disk space caching is enabled").is_empty()
        );
    }

    #[test]
    fn mce_forms() {
        // andikleen/mcelog#70: the announcement, then one record.
        let ev = events(
            "Sep 16 19:51:15 kernel: [    0.064261] mce: [Hardware Error]: Machine check events logged\n\
             Sep 16 19:51:15 kernel: [    0.064265] mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 4: a600000000020408\n\
             Sep 16 19:51:15 kernel: [    0.064270] mce: [Hardware Error]: TSC 0 ADDR fef4c9e0 \n\
             Sep 16 19:51:15 kernel: [    0.064277] mce: [Hardware Error]: PROCESSOR 0:706a1 TIME 1537152664 SOCKET 0 APIC 0 microcode 28\n",
        );
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert_eq!(ev[0]["kind"], "mce");
        assert_eq!(ev[0]["cpu"], 0);
        assert_eq!(ev[0]["bank"], 4);
        assert_eq!(ev[0]["mce_status"], "a600000000020408");
        check(
            "[ 1.0] mce: [Hardware Error]: CPU 5: Machine Check Exception: 5 Bank 8: b200000000070f0f",
            &json!({"kind": "mce", "cpu": 5, "bank": 8, "exception": true}),
        );
        check(
            "[Hardware Error]: CPU 1: Machine Check Exception: 4 Bank 4: b200000000070f0f",
            &json!({"kind": "mce", "cpu": 1, "bank": 4}),
        );
        assert!(events("[ 0.04] mce: CPU supports 7 MCE banks").is_empty());
    }

    #[test]
    fn page_alloc_failure_forms() {
        let ev = events(
            "[ 1.0] kswapd0: page allocation failure: order:2, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null)\n\
             [ 1.1] CPU: 3 PID: 97 Comm: kswapd0 Not tainted 6.1.0 #1\n\
             [ 1.2] Call Trace:\n\
             [ 1.3]  <TASK>\n\
             [ 1.4]  dump_stack_lvl+0x44/0x5c\n\
             [ 1.5]  warn_alloc+0x13a/0x1b0\n\
             [ 1.6]  __alloc_pages_slowpath.constprop.0+0xc36/0xc70\n\
             [ 1.7] Mem-Info:\n",
        );
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert_eq!(ev[0]["kind"], "page_alloc_failure");
        assert_eq!(ev[0]["task"], "kswapd0");
        assert_eq!(ev[0]["order"], 2);
        assert_eq!(ev[0]["gfp_mask"], "0x40cc0(GFP_KERNEL|__GFP_COMP)");
        assert_eq!(ev[0]["pid"], 97);
        assert_eq!(
            ev[0]["top_frames"],
            json!([
                "dump_stack_lvl",
                "warn_alloc",
                "__alloc_pages_slowpath.constprop.0"
            ])
        );
        check(
            "[ 2.0] kworker/u16:3: page allocation failure: order:0, mode:0x1080020(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0",
            &json!({"task": "kworker/u16:3", "order": 0, "gfp_mask": "0x1080020(GFP_ATOMIC)"}),
        );
        // 3.x: hex only.
        check(
            "[ 3.0] chrome: page allocation failure: order:4, mode:0x40d0",
            &json!({"task": "chrome", "order": 4, "gfp_mask": "0x40d0"}),
        );
    }

    #[test]
    fn workqueue_lockup_form() {
        check(
            "[ 1.0] BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!",
            &json!({"kind": "workqueue_lockup", "cpus": "1", "stuck_seconds": 42}),
        );
        check(
            "[ 1.0] BUG: workqueue lockup - pool cpus=0-3 flags=0x4 nice=0 stuck for 31s!",
            &json!({"kind": "workqueue_lockup", "cpus": "0-3", "stuck_seconds": 31}),
        );
    }

    #[test]
    fn list_corruption_is_a_kernel_bug() {
        // With CONFIG_BUG_ON_DATA_CORRUPTION the BUG_ON follows: one report.
        let ev = events(
            "[ 1.0] list_del corruption. prev->next should be ffff8881049a2e08, but was ffff888104a3b808. (prev=ffff888104a3b808)\n\
             [ 1.1] ------------[ cut here ]------------\n\
             [ 1.2] kernel BUG at lib/list_debug.c:53!\n\
             [ 1.3] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n\
             [ 1.4] CPU: 2 PID: 4242 Comm: kworker/2:1 Not tainted 6.1.0 #1\n\
             [ 1.5] RIP: 0010:__list_del_entry_valid.cold+0x1d/0x47\n",
        );
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert_eq!(ev[0]["kind"], "kernel_bug");
        assert_eq!(ev[0]["bug"], "list_del corruption");
        assert_eq!(ev[0]["file"], "lib/list_debug.c");
        assert_eq!(ev[0]["line"], 53);
        assert_eq!(ev[0]["oops_code"], "0000");
        check(
            "[ 1.0] list_add corruption. next->prev should be prev (ffff88810b3e1d28), but was 0000000000000000. (next=ffff88810b3e1d28).",
            &json!({"kind": "kernel_bug", "bug": "list_add corruption"}),
        );
    }

    #[test]
    fn storage_kinds_map_to_the_model() {
        use wedge_model::LogDetail;
        let p = crate::parse_str(
            "[ 1.0] I/O error, dev sdb, sector 1024 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2\n\
             [ 1.1] Buffer I/O error on dev sdb1, logical block 128, lost async page write\n\
             [ 1.2] nvme nvme0: I/O 321 QID 3 timeout, aborting\n\
             [ 1.3] sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_ERROR driverbyte=DRIVER_OK cmd_age=30s\n\
             [ 1.4] EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n\
             [ 1.5] EXT4-fs (sdb1): Remounting filesystem read-only\n\
             [ 1.6] CIFS: VFS: \\\\fileserver has not responded in 180 seconds. Reconnecting...\n",
        );
        let d: Vec<LogDetail> = p.events.iter().map(|e| e.to_log_event().detail).collect();
        assert_eq!(
            d,
            [
                LogDetail::BlockIoError {
                    device: "sdb".into(),
                    sector: Some(1024),
                    op: Some("WRITE".into())
                },
                LogDetail::BufferIoError {
                    device: "sdb1".into(),
                    logical_block: Some(128)
                },
                LogDetail::NvmeTimeout {
                    controller: "nvme0".into(),
                    qid: Some(3),
                    action: Some("aborting".into())
                },
                LogDetail::ScsiError {
                    device: "sdb".into(),
                    hostbyte: Some("DID_ERROR".into()),
                    driverbyte: Some("DRIVER_OK".into())
                },
                LogDetail::FsError {
                    fs: "ext4".into(),
                    device: "sdb1".into(),
                    function: Some("ext4_find_entry".into()),
                    remount_ro: true
                },
                LogDetail::CifsServerUnresponsive {
                    server: "fileserver".into(),
                    seconds: Some(180)
                },
            ]
        );
        // An I/O error is not a hang: `wedge log` does not exit 1 on it.
        assert!(p.events.iter().all(|e| !e.is_serious()));
        let wq = crate::parse_str(
            "[ 1.0] BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!",
        );
        assert!(wq.events.iter().all(crate::Event::is_serious));
    }
}
