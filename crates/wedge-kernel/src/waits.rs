//! Kernel functions whose waits wedge looks at closely: where a task waits
//! on something outside itself — a FUSE daemon, an NFS, Lustre or CIFS
//! server, io_uring work, a lock's slow path, a vfork child, a core dump.
//!
//! One list for all of wedge: the /proc reader uses it to decide which
//! sleepers are worth the extra reads (`sched`), the analysis to skip the
//! ordinary sleeper (futex, poll, pipe) in one pass over its frames.

const EXACT: &[&str] = &[
    "request_wait_answer",
    "kernel_clone",
    "wait_for_vfork_done",
    "zap_pid_ns_processes",
    "path_openat",
    "do_coredump",
    "coredump_wait",
    "wait_for_response",
    "vm_mmap_pgoff",
    "__access_remote_vm",
];

const PREFIX: &[&str] = &[
    "fuse_",
    "__fuse_",
    "rpc_",
    "__rpc_",
    "nfs",
    "ptlrpc_",
    "ldlm_",
    "osc_",
    "cl_",
    "cifs_",
    "smb2_",
    "io_uring_",
    "io_wq_",
    "io_sq_",
    "io_ring_",
    "rwsem_down_",
    "__mutex_lock",
    "mutex_lock",
    "__down",
    "down_write",
    "down_read",
    "wait_on_page_bit",
    "folio_wait_bit",
    "__folio_lock",
    "jbd2_",
];

/// Whether `function` (a wait channel or a stack frame, with or without
/// the compiler's `.isra.0`-style suffix) belongs to such a wait.
pub fn names_a_blocking_subsystem(function: &str) -> bool {
    // This runs for every frame of every thread, and most frames (futex_,
    // ep_poll, do_syscall_64, entry_SYSCALL_64) match nothing: the names are
    // indexed by their first byte, so a frame is compared only with the few
    // names that start like it.
    type Names = Vec<(&'static str, bool)>;
    static BY_FIRST: std::sync::LazyLock<Vec<Names>> = std::sync::LazyLock::new(|| {
        let mut index = vec![Vec::new(); 256];
        let names = EXACT.iter().map(|n| (*n, false));
        for (name, prefix) in names.chain(PREFIX.iter().map(|n| (*n, true))) {
            index[name.as_bytes()[0] as usize].push((name, prefix));
        }
        index
    });
    let Some(&first) = function.as_bytes().first() else {
        return false;
    };
    let candidates = &BY_FIRST[first as usize];
    if candidates.is_empty() {
        return false;
    }
    // A clone suffix (`.isra.0`) follows the name: a prefix matches either
    // way, a whole name must end there.
    candidates.iter().any(|&(name, prefix)| {
        function.starts_with(name)
            && (prefix || matches!(function.as_bytes().get(name.len()), None | Some(b'.')))
    })
}

#[cfg(test)]
mod tests {
    use super::names_a_blocking_subsystem as f;

    #[test]
    fn classifies() {
        assert!(f("request_wait_answer"));
        assert!(f("fuse_do_readfolio.isra.0"));
        assert!(f("rpc_wait_bit_killable"));
        assert!(f("io_wq_put_and_exit"));
        assert!(f("kernel_clone"));
        assert!(!f("futex_wait_queue"));
        assert!(!f("ep_poll"));
        assert!(!f(""));
    }
}
