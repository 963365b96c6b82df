//! Command-line arguments: the raw clap layer and the scan options built
//! from it.

use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Why is this process stuck, unkillable, or dead?
///
/// With no command: scan the whole machine and report what is wedged.
/// Exit status: 0 nothing wedged, 1 something wedged, 2 error.
#[derive(Parser, Debug)]
#[command(name = "wedge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Emit JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Longest any single read of /proc may take, in milliseconds; a read
    /// past it is abandoned and reported as evidence.
    #[arg(long, global = true, default_value_t = 250, value_name = "MS")]
    pub deadline_ms: u64,
    /// Do not read command lines (they can block on a stuck process's
    /// mmap_lock; wedge bounds the read either way).
    #[arg(long, global = true)]
    pub no_cmdline: bool,
    /// Scanning threads (default: the number of CPUs, 2 to 4).
    #[arg(long, global = true, hide = true)]
    pub workers: Option<usize>,
    /// Show evidence and remedies for every finding, not only wedged ones.
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tasks that matter: D, Z, T/t, fatal signal pending, and sleepers
    /// in waits known to hang (FUSE, NFS, Lustre, io_uring, locks).
    Ps(PsArgs),
    /// Everything about one process, and what it waits for.
    Why(WhyArgs),
    /// Kernel logs as typed, decoded events: hung tasks, traps, segfaults,
    /// oopses, lockups, stalls, OOM kills, NFS/Lustre/CIFS messages.
    Log(crate::cmd_log::LogArgs),
    /// Threads, signal and backtraces of a user-space core file.
    Core(crate::cmd_core::CoreArgs),
    /// Tasks, states, kernel stacks and verdicts from a kernel crash dump.
    Vmcore(crate::cmd_vmcore::VmcoreArgs),
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Every task, not only those that matter.
    #[arg(long, short)]
    pub all: bool,
    /// The process tree, threads under their process.
    #[arg(long, short)]
    pub tree: bool,
    /// Do not cut long command lines.
    #[arg(long, short)]
    pub wide: bool,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// A process id (or the id of one of its threads).
    pub pid: i32,
    /// Also show each thread's user-space backtrace, read without ptrace
    /// (bounded copies of its stacks; refused when the process uses a FUSE
    /// or network filesystem, where opening its binaries could block).
    #[arg(long)]
    pub user_stacks: bool,
}

impl Cli {
    pub fn scan_options(&self) -> wedge_procfs::ScanOptions {
        let mut o = wedge_procfs::ScanOptions {
            deadline: Duration::from_millis(self.deadline_ms.max(1)),
            cmdline: !self.no_cmdline,
            ..wedge_procfs::ScanOptions::default()
        };
        if let Some(w) = self.workers {
            o.workers = w.clamp(1, 64);
        }
        o
    }
}
