//! Facts a view shows beside a snapshot, filled by one source and read by
//! the views in `wedge-render`, so neither needs the other's crate: what a
//! task named by the kernel log is doing now (the live /proc), and the
//! panic a crash dump records.

use serde::{Deserialize, Serialize};

/// A task's state, wait channel and name, read now (`wedge_procfs::task_now`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNow {
    pub state: char,
    pub wchan: Option<String>,
    pub comm: String,
}

/// The panic a dump records: the CPU that called panic(), the task running
/// on it, and panic()'s message from the printk buffer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Crash {
    pub cpu: Option<u32>,
    pub pid: Option<i32>,
    pub comm: Option<String>,
    pub message: Option<String>,
    /// The crashing task's kernel stack, innermost first (`fuse_get_req
    /// [fuse]` for a module's function): from panic() down to the entry it
    /// came in by. Empty when it could not be walked.
    #[serde(default)]
    pub stack: Vec<String>,
}

/// What a crash dump says about itself beside its snapshot, for the views
/// (filled by `wedge_vmcore::Vmcore::facts`).
#[derive(Debug, Clone)]
pub struct DumpFacts {
    /// The file as named on the command line.
    pub path: String,
    /// The dump's format (ELF, kdump-compressed, flattened).
    pub format: String,
    pub kernel_release: Option<String>,
    /// Tasks in the dump's task list, idle tasks included.
    pub tasks: usize,
    pub crash: Crash,
    /// How much of the machine could be read, when not all of it.
    pub partial: Option<String>,
    /// Problems reading the task list (the tasks read are still there).
    pub task_errors: Vec<String>,
    /// The printk buffer: how many records, and their text as dmesg prints
    /// it; or why it could not be read.
    pub log: Result<(usize, String), String>,
}
