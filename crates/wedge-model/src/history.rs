//! What the recorder (`wedge record`) saw over time, as the views read it
//! back: episodes of tasks that were stuck, the findings' lifetimes, the
//! kernel-log events in arrival order, and the system calls that led into
//! a hang. Times are Unix milliseconds (UTC): the recorder converts the
//! kernel's boot-relative clocks once, when it writes, so a reader needs no
//! boot time of a machine it may not be on.

use crate::LogEvent;
use serde::{Deserialize, Serialize};

/// One system call a thread made, as the recorder's BPF tracepoints saw it
/// (raw_syscalls:sys_enter / sys_exit into a per-thread ring).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallEvent {
    /// The x86-64 system call number.
    pub nr: i64,
    /// Its name, when the table knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The six argument registers at entry.
    pub args: Vec<u64>,
    /// When it entered (Unix ms).
    pub start_unix_ms: i64,
    /// How long it took; None: the thread was still in it when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// What it returned (a negative errno on failure); None while in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<i64>,
}

/// How an episode or a finding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The task left the state (or the finding stopped being found) while
    /// its process lived on.
    Resolved,
    /// The thread or its process went away (exited, or was reaped).
    ProcessGone,
    /// The recorder stopped while it lasted: how it went on is unknown.
    RecorderStopped,
}

/// A stretch of samples in which one thread was stuck: in D, Z, T or t, or
/// in a sleep known to hang (a FUSE or NFS wait, a lock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub pid: i32,
    pub tid: i32,
    /// The thread's name and its process's.
    pub comm: String,
    pub process_comm: String,
    /// The state letter while stuck (`D`, `Z`, `T`, `t`, or `S` for a
    /// known-to-hang sleep).
    pub state: String,
    /// The wait in words, at the first sample of the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// What it waited for (a lock owner, a FUSE daemon, a server), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocker: Option<String>,
    /// The system call it was in, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The ids of the findings that named it during the episode.
    #[serde(default)]
    pub findings: Vec<String>,
    /// The kernel stack's functions at the first sample.
    #[serde(default)]
    pub stack: Vec<String>,
    /// The first sample that saw it stuck (Unix ms).
    pub start_unix_ms: i64,
    /// The sample before that, which did not: the episode began between
    /// the two. None when it was stuck at the recorder's first sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_unix_ms: Option<i64>,
    /// The last sample that saw it stuck.
    pub last_seen_unix_ms: i64,
    /// When it ended (the first sample that saw it otherwise); None while
    /// it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_unix_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    /// Its last system calls before (and into) the episode, oldest first,
    /// when the recorder had BPF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallEvent>,
}

/// One finding's life: when it was first and last found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSpan {
    /// The finding id (`fuse.unanswered`).
    pub id: String,
    pub severity: String,
    pub title: String,
    pub pids: Vec<i32>,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_unix_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
}

/// A kernel-log event as the recorder took it from /dev/kmsg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedLogEvent {
    /// The boot it belongs to (/proc/sys/kernel/random/boot_id).
    pub boot_id: String,
    /// The kmsg sequence number of its first record.
    pub seq: u64,
    /// When it was printed (Unix ms), from its kmsg timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_ms: Option<i64>,
    pub event: LogEvent,
}

/// A process that was ever wedged: when it started and when it went away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLife {
    pub pid: i32,
    pub comm: String,
    /// Its start (from its start time since boot), Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_unix_ms: Option<i64>,
    /// The first sample that no longer saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_unix_ms: Option<i64>,
}

/// The database and the recorder that writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecorderInfo {
    /// The database file.
    pub db: String,
    pub schema_version: u32,
    /// The pid of the recorder holding the database now, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_pid: Option<i32>,
    /// The interval it samples at (ms), as last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    pub samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sample_unix_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample_unix_ms: Option<i64>,
    /// The database's size on disk (main file and WAL).
    pub size_bytes: u64,
    /// Where the samples came from (`bpf`, `proc`), last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `wedge history`: what a database holds, filtered by pid and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub recorder: RecorderInfo,
    pub episodes: Vec<Episode>,
    pub findings: Vec<FindingSpan>,
    pub log_events: Vec<RecordedLogEvent>,
    pub processes: Vec<ProcessLife>,
}
