//! Stack-frame vocabulary: which kernel functions only say *that* a task
//! sleeps (the scheduler's own frames), which are the sleeping primitives
//! (a mutex's or rw-semaphore's slow path, a completion, a page lock), and
//! which are the generic waits that name a subsystem but not the operation.
//!
//! One list for every source: /proc's `stack`, a crash dump's unwound
//! stack and the kernel log's call traces all name the same functions, so
//! the model, the analysis, the views and the log reader ask here.

/// A kernel symbol without GCC's clone suffixes (`.isra.N`, `.part.N`,
/// `.constprop.N`, `.cold`): what was cloned is still the same function.
pub fn base_function(name: &str) -> &str {
    name.split_once('.').map_or(name, |(b, _)| b)
}

/// The scheduler's own frames: `__schedule` and the `schedule*()` entry
/// points every sleeper passes through, and the context switch below them
/// (`__switch_to`, the top of a sleeping task's saved stack).
pub const SCHEDULER_FRAMES: &[&str] = &[
    "__schedule",
    "schedule",
    "schedule_timeout",
    "schedule_preempt_disabled",
    "io_schedule",
    "io_schedule_timeout",
    "__switch_to",
    "__switch_to_asm",
    "preempt_schedule_common",
    "schedule_hrtimeout_range",
    "schedule_hrtimeout_range_clock",
];

/// Frames of a preempted task and of the stack dumper itself: a report's
/// call trace starts in `dump_stack_lvl`/`show_stack` (`unwind_backtrace`
/// on ARM), and an interrupt-time preemption enters the scheduler through
/// `preempt_schedule_irq`. They appear in kernel-log traces, not in a
/// sleeping task's /proc stack.
pub const DUMP_FRAMES: &[&str] = &[
    "preempt_schedule_irq",
    "dump_stack",
    "dump_stack_lvl",
    "show_stack",
    "unwind_backtrace",
];

/// Sleeping primitives: where a task waits, but not why. The first frame
/// after them names the code that took the lock or started the wait.
pub const WAIT_PRIMITIVES: &[&str] = &[
    "mutex_lock",
    "__mutex_lock",
    "__mutex_lock_slowpath",
    "__mutex_lock_common",
    "__mutex_lock_killable_slowpath",
    "__mutex_lock_interruptible_slowpath",
    "mutex_lock_nested",
    "mutex_lock_killable",
    "mutex_lock_interruptible",
    "rt_mutex_slowlock",
    "__rt_mutex_slowlock",
    "rwsem_down_read_slowpath",
    "rwsem_down_write_slowpath",
    "rwsem_down_read_failed",
    "rwsem_down_write_failed",
    "call_rwsem_down_read_failed",
    "call_rwsem_down_write_failed",
    "down_read",
    "down_write",
    "down_read_killable",
    "down_write_killable",
    "__percpu_down_read",
    "percpu_down_write",
    "percpu_rwsem_wait",
    "__down",
    "__down_common",
    "down",
    "down_interruptible",
    "down_killable",
    "down_timeout",
    "wait_for_completion",
    "wait_for_common",
    "__wait_for_common",
    "wait_for_common_io",
    "wait_for_completion_io",
    "wait_for_completion_killable",
    "wait_for_completion_interruptible",
    "wait_for_completion_timeout",
    "bit_wait",
    "bit_wait_io",
    "__wait_on_bit",
    "__wait_on_bit_lock",
    "out_of_line_wait_on_bit",
    "out_of_line_wait_on_bit_lock",
    "__lock_page",
    "__lock_page_killable",
    "lock_page",
    "__folio_lock",
    "folio_wait_bit",
    "folio_wait_bit_common",
    "folio_wait_writeback",
    "wait_on_page_bit",
    "wait_on_page_bit_common",
    "wait_on_page_writeback",
    "sleep_on_buffer",
    "__wait_on_buffer",
    "wait_on_buffer",
    "usleep_range",
    "usleep_range_state",
    "msleep",
    "do_nanosleep",
    "hrtimer_nanosleep",
    "finish_wait",
    "prepare_to_wait",
    "prepare_to_wait_event",
    "futex_wait_queue_me",
    "futex_wait_queue",
    "futex_wait",
];

/// Waits that name a subsystem but not the operation: FUSE's and
/// SUNRPC's request waits, completions, a page-bit wait, wait4(). The
/// frame below them (`fuse_flush`, `nfs_file_fsync`) says what waits; the
/// wait channel already shows these.
pub const GENERIC_WAITS: &[&str] = &[
    "request_wait_answer",
    "__fuse_simple_request",
    "fuse_simple_request",
    "rpc_wait_bit_killable",
    "__rpc_execute",
    "rpc_execute",
    "__wait_for_common",
    "wait_for_completion",
    "wait_for_completion_killable",
    "folio_wait_bit_common",
    "do_wait",
    "kernel_wait4",
];

/// Frames that say "it sleeps" but not where or why (`function` without
/// its clone suffix).
pub fn is_scheduler_plumbing(function: &str) -> bool {
    SCHEDULER_FRAMES.contains(&function)
}

/// Scheduler plumbing or the stack dumper's own frames: what a kernel-log
/// call trace shows above the code that waits or crashed.
pub fn is_trace_plumbing(function: &str) -> bool {
    is_scheduler_plumbing(function) || DUMP_FRAMES.contains(&function)
}

/// A sleeping primitive (mutex, rw-semaphore, completion, page or buffer
/// lock, sleep, futex wait).
pub fn is_wait_primitive(function: &str) -> bool {
    WAIT_PRIMITIVES.contains(&function)
}

/// The slow path of a sleeping lock: a mutex (`__mutex_lock*`,
/// `mutex_lock*`) or an rw-semaphore (`rwsem_down_*_slowpath`,
/// `down_read*`/`down_write*`, `__down_common` of the counting semaphore).
/// A task in one waits for the lock's holder, not for a device or server.
pub fn is_sleeping_lock(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "rwsem_down_",
        "__mutex_lock",
        "mutex_lock",
        "down_write",
        "down_read",
    ];
    function == "__down_common" || PREFIXES.iter().any(|p| function.starts_with(p))
}

/// A generic wait or scheduler plumbing: frames a view skips to show the
/// first one that says what the task is doing.
pub fn is_generic_wait(function: &str) -> bool {
    GENERIC_WAITS.contains(&function) || is_scheduler_plumbing(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        assert!(is_scheduler_plumbing("__schedule"));
        assert!(!is_scheduler_plumbing("dump_stack_lvl"));
        assert!(is_trace_plumbing("dump_stack_lvl"));
        assert!(is_trace_plumbing("schedule_timeout"));
        assert!(is_wait_primitive("rwsem_down_write_slowpath"));
        assert!(!is_wait_primitive("schedule"));
        assert!(is_sleeping_lock("rwsem_down_write_slowpath"));
        assert!(is_sleeping_lock("__mutex_lock.constprop.0"));
        assert!(is_sleeping_lock("__down_common"));
        assert!(!is_sleeping_lock("__down"));
        assert!(is_generic_wait("request_wait_answer"));
        assert!(is_generic_wait("io_schedule"));
        assert!(!is_generic_wait("fuse_flush"));
        assert_eq!(base_function("sched_show_task.cold.14"), "sched_show_task");
        assert_eq!(base_function("schedule"), "schedule");
    }
}
