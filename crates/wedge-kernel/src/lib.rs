//! The kernel's vocabulary, decoded: task states, signal sets, task flags,
//! kernel-thread kinds and taint letters.
//!
//! Everything here is pure decoding of values the kernel prints (in
//! `/proc/PID/stat`, `/proc/PID/status`, the kernel log, or a crash dump's
//! `task_struct`), so that every other wedge crate speaks about them the same
//! way. Nothing in this crate does I/O.

pub mod errno;
pub mod flags;
pub mod frames;
pub mod kthread;
pub mod signal;
pub mod state;
pub mod text;
pub mod version;
pub mod waits;

pub use errno::{errno_name, syscall_ret_text};
pub use flags::{TaskFlag, TaskFlags};
pub use kthread::ThreadKind;
pub use signal::{Signal, SignalSet};
pub use state::{SleepKind, TaskState};
pub use text::printable;
pub use version::KernelVersion;

/// The name of system call `nr` on the architecture wedge runs on.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    syscalls::Sysno::new(nr).map(|s| s.name())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    #[test]
    fn syscall_names() {
        assert_eq!(super::syscall_name(0), Some("read"));
        assert_eq!(super::syscall_name(231), Some("exit_group"));
        assert_eq!(super::syscall_name(-1), None);
        assert_eq!(super::syscall_name(100_000), None);
    }
}
