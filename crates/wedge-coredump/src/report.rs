//! What `wedge core` reports: plain data, serializable, no behaviour.

use serde::Serialize;

/// Everything learned from one core file.
#[derive(Debug, Clone, Serialize)]
pub struct CoreReport {
    pub file: String,
    /// "zstd", "xz" or "lz4" when the file was compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    pub arch: String,
    pub process: ProcessInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalReport>,
    /// The thread that dumped (the one the fatal signal hit) first.
    pub threads: Vec<ThreadReport>,
    pub mappings: Vec<MappingReport>,
    pub auxv: Vec<AuxvEntry>,
    /// The crash in words.
    pub story: Vec<String>,
    /// What could not be read or found, so results are partial.
    pub missing: Vec<String>,
}

/// NT_PRPSINFO plus what auxv says about the executable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// `comm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The start of the command line (80 bytes at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
}

/// The fatal signal, from NT_SIGINFO (or the thread's pr_cursig alone).
#[derive(Debug, Clone, Serialize)]
pub struct SignalReport {
    pub number: i32,
    pub name: String,
    pub code: i32,
    pub code_name: String,
    /// What the code means: "address not mapped", "sent by tgkill"...
    pub meaning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_address: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<i32>,
}

/// One thread of the dead process.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    pub tid: i32,
    /// The thread the fatal signal was delivered to (it dumped the core).
    pub crashed: bool,
    /// Signals pending for the thread and blocked by it, by name.
    pub pending: Vec<String>,
    pub blocked: Vec<String>,
    pub utime_us: u64,
    pub stime_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registers: Option<RegisterSummary>,
    /// The instruction at the pc, when its bytes could be found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    pub frames: Vec<Frame>,
    /// Why the walk stopped short of the outermost frame, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwind_stopped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterSummary {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
    /// All general registers in the kernel's order.
    pub all: Vec<(String, u64)>,
}

/// One frame of a backtrace, innermost first; an inlined call is a frame of
/// its own, sharing the address of the frame it was inlined into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub index: usize,
    pub address: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Bytes from the function's start (not for inlined frames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The binary's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// Why this frame is less than fully trustworthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<FrameMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FrameMark {
    /// No function name: why.
    Unsymbolized { reason: String },
    /// The binary on disk is not the one the process ran: names and lines
    /// may be wrong.
    BuildIdMismatch,
}

/// One file-backed mapping, with what wedge made of its file.
#[derive(Debug, Clone, Serialize)]
pub struct MappingReport {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_build_id: Option<String>,
    /// "ok", "build_id_mismatch", "missing", "unusable".
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuxvEntry {
    pub key: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    pub value: u64,
}
