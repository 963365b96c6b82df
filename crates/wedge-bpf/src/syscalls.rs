//! The last system calls of every thread, kept in the kernel: BPF programs
//! on raw_syscalls:sys_enter and sys_exit write each call into a per-thread
//! ring of fixed size; the recorder reads the rings of the threads that
//! matter at each sample. CONTRACT STUB: the `syscalls` piece fills it in.

use std::collections::HashMap;
use wedge_model::SyscallEvent;

/// Attached tracepoints and their rings; detached when dropped.
pub struct SyscallTrace {
    _private: (),
}

impl SyscallTrace {
    /// Attaches, keeping the last `per_thread` calls of each thread. Says
    /// why not (not root, no BPF, lockdown, no tracepoint).
    pub fn open(per_thread: usize) -> Result<SyscallTrace, String> {
        let _ = per_thread;
        Err("system-call tracing is not built yet".into())
    }

    /// The recorded calls of `tids`, oldest first (an unfinished call
    /// last, with no duration).
    pub fn read(&self, tids: &[i32]) -> HashMap<i32, Vec<SyscallEvent>> {
        let _ = tids;
        HashMap::new()
    }
}
