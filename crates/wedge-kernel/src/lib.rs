//! The kernel's vocabulary, decoded: task states, signal sets, task flags,
//! kernel-thread kinds and taint letters.
//!
//! Everything here is pure decoding of values the kernel prints (in
//! `/proc/PID/stat`, `/proc/PID/status`, the kernel log, or a crash dump's
//! `task_struct`), so that every other wedge crate speaks about them the same
//! way. Nothing in this crate does I/O.

pub mod flags;
pub mod kthread;
pub mod signal;
pub mod state;
pub mod version;

pub use flags::{TaskFlag, TaskFlags};
pub use kthread::ThreadKind;
pub use signal::{Signal, SignalSet};
pub use state::TaskState;
pub use version::KernelVersion;
