//! Kernel-log reports in the model's own vocabulary: what the analysis
//! needs of an event, whichever reader decoded it (the live /dev/kmsg, a
//! log file, a crash dump's printk buffer).
//!
//! The reader (`wedge-klog`) converts its rich events into these, so the
//! analysis depends on the model only and a new log reader is one
//! conversion.

use serde::{Deserialize, Serialize};

/// One kernel-log report, as the analysis reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// The reader's kind tag (`hung_task`, `gpf_trap`, ...).
    pub kind: String,
    /// First line of the report in its log (1-based).
    pub line: u64,
    /// Seconds since boot of the first line, when stamped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotonic: Option<f64>,
    /// Task name (comm) exactly as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Process (thread) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The report in one sentence.
    pub meaning: String,
    /// The `Code:` bytes were dumped with the report.
    #[serde(default)]
    pub code_dumped: bool,
    /// The decoded instruction at the fault, when the bytes were dumped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faulting_instruction: Option<String>,
    pub detail: LogDetail,
}

/// What the analysis uses of a kind; every other kind is [`LogDetail::Other`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum LogDetail {
    /// `INFO: task X:PID blocked for more than N seconds.`
    HungTask {
        blocked_seconds: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocker: Option<LogBlocker>,
    },
    /// `traps: X[PID] general protection fault ip:... error:E in LIB[...]`.
    GpfTrap {
        /// The library the ip was in, when printed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lib: Option<String>,
        /// The error code as printed (hex).
        error: String,
    },
    /// `nfs: server S not responding`.
    NfsNotResponding { server: String },
    /// `nfs: server S OK`.
    NfsServerOk { server: String },
    /// A block-layer I/O error: `I/O error, dev sdb, sector N op 0x1:(WRITE)`
    /// (5.x+), `blk_update_request: I/O error, dev sda, sector N` (older),
    /// `critical medium error, dev sda, …`.
    BlockIoError {
        device: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sector: Option<u64>,
        /// `READ`, `WRITE`, `FLUSH`, `DISCARD`, … as printed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
    },
    /// `Buffer I/O error on dev sdb1, logical block N, …`.
    BufferIoError {
        device: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logical_block: Option<u64>,
    },
    /// `nvme nvme0: I/O 321 QID 3 timeout, aborting` and the controller's
    /// resets.
    NvmeTimeout {
        controller: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qid: Option<u32>,
        /// The words after `timeout, ` (`aborting`, `reset controller`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<String>,
    },
    /// `sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=… driverbyte=…`.
    ScsiError {
        device: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostbyte: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        driverbyte: Option<String>,
    },
    /// A filesystem's own error report (EXT4-fs error, XFS corruption or
    /// forced shutdown, BTRFS error/critical), and whether the log shows
    /// the filesystem remounted read-only after it.
    FsError {
        /// `ext4`, `xfs`, `btrfs`.
        fs: String,
        device: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        #[serde(default)]
        remount_ro: bool,
    },
    /// `CIFS: VFS: \\server has not responded in N seconds`.
    CifsServerUnresponsive {
        server: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    #[default]
    Other,
}

/// The lock owner a hung-task report names (`blocker` lines, 6.x with
/// CONFIG_DETECT_HUNG_TASK_BLOCKER).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBlocker {
    /// `mutex`, `rw_semaphore`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<u32>,
}
