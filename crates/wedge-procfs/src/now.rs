//! What a few named tasks are doing now, without a scan: `wedge log` links
//! hung-task reports of this boot to the tasks that still exist.

use crate::read::open_read;
use rustix::fs::{Mode, OFlags};
use std::path::Path;

/// A task's state, wait channel and name, read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNow {
    pub state: char,
    pub wchan: Option<String>,
    pub comm: String,
}

/// `stat` and `wchan` of `pid` under `proc_root`, or `None` when it is gone
/// (or unreadable).
///
/// Only these two files are read, through the scan's own opener and
/// parsers: neither takes mmap_lock nor waits on a filesystem daemon
/// (do_task_stat and proc_pid_wchan read the task under RCU and its
/// sighand lock), so unlike `cmdline` they need no sacrificial reader.
/// Both are opened relative to the one `/proc/PID` directory: a pid reused
/// between the two reads yields an error, never a mix of two tasks.
pub fn task_now(proc_root: &Path, pid: u32) -> Option<TaskNow> {
    let dir = rustix::fs::open(
        proc_root.join(pid.to_string()),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = Vec::with_capacity(1024);
    open_read(rustix::fd::AsFd::as_fd(&dir), "stat", &mut buf).ok()?;
    let stat = crate::status::parse_stat(&String::from_utf8_lossy(&buf))?;
    let wchan = match open_read(rustix::fd::AsFd::as_fd(&dir), "wchan", &mut buf) {
        Ok(()) => crate::parse::wchan(&String::from_utf8_lossy(&buf)),
        Err(_) => None,
    };
    Some(TaskNow {
        state: stat.state,
        wchan,
        comm: stat.comm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_not_a_missing_pid() {
        let me = task_now(Path::new("/proc"), std::process::id());
        let me = me.unwrap_or_else(|| panic!("/proc/self unreadable"));
        // The leader (the harness's main thread) runs or waits for the
        // test threads.
        assert!(matches!(me.state, 'R' | 'S'), "state {}", me.state);
        assert!(!me.comm.is_empty());
        // Above pid_max (at most 2^22): no such task.
        assert_eq!(task_now(Path::new("/proc"), 1 << 23), None);
    }
}
