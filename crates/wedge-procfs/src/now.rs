//! What a few named tasks are doing now, without a scan: `wedge log` links
//! hung-task reports of this boot to the tasks that still exist.

use crate::read::open_read;
use rustix::fs::{Mode, OFlags};
use std::collections::HashMap;
use std::path::Path;

pub use wedge_model::TaskNow;

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

/// [`task_now`] of each pid that still exists, by pid.
pub fn tasks_now(proc_root: &Path, pids: impl IntoIterator<Item = u32>) -> HashMap<u32, TaskNow> {
    pids.into_iter()
        .filter_map(|pid| Some((pid, task_now(proc_root, pid)?)))
        .collect()
}

/// Boot time in Unix seconds (`btime` of `proc_root/stat`), so a date can
/// be compared with /dev/kmsg's since-boot stamps. `/proc/stat` is built
/// from per-CPU counters under no lock a stuck task can hold
/// (show_stat), so the scan's plain opener suffices.
pub fn boot_time(proc_root: &Path) -> Option<i64> {
    let dir = rustix::fs::open(
        proc_root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = Vec::with_capacity(4096);
    open_read(rustix::fd::AsFd::as_fd(&dir), "stat", &mut buf).ok()?;
    crate::parse::btime(&String::from_utf8_lossy(&buf))
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
        let now = tasks_now(Path::new("/proc"), [std::process::id(), 1 << 23]);
        assert_eq!(now.len(), 1, "{now:?}");
    }

    #[test]
    fn boot_time_is_in_the_past() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let bt = boot_time(Path::new("/proc")).unwrap_or_else(|| panic!("no btime"));
        assert!(bt > 0 && bt <= secs, "btime {bt}, now {secs}");
        assert_eq!(boot_time(Path::new("/nonexistent")), None);
    }
}
