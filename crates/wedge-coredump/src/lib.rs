//! User-space stacks of dead and stuck processes, without gdb and without
//! ptrace.
//!
//! Two entry points:
//!
//! - [`read_core`]: an ELF core file (plain, or compressed by
//!   systemd-coredump) becomes a [`CoreReport`]: every thread with its
//!   registers and a symbolized backtrace, the fatal signal and its origin,
//!   the mapped files with their build-ids, and the crash in words.
//! - [`live_backtrace`]: one live thread's user-space backtrace from the sp
//!   and pc in `/proc/TID/syscall`, its stack copied by a sacrificial child
//!   so that a held mmap_lock can never hang wedge.
//!
//! The pipeline is the same for both: mappings → [`binaries`] (found on
//! disk, build-ids checked) → [`unwind`] (framehop over `.eh_frame`) →
//! [`symbolize`] (blazesym: symbols, DWARF lines, inlined calls, debug
//! links) → [`story`].
//!
//! Input is hostile: every length and offset read from a core is checked,
//! and a defect makes a partial report with a `missing` entry, not a panic.

pub mod binaries;
mod core;
pub mod elf;
pub mod error;
pub mod insn;
pub mod live;
pub mod notes;
pub mod report;
pub mod signal;
pub mod source;
pub mod story;
pub mod symbolize;
pub mod text;
pub mod unwind;
pub mod user_stacks;

pub use crate::core::{read_core, Options};
pub use error::{CoreError, LiveError};
pub use live::{live_backtrace, live_backtraces, LiveBacktrace, LiveOptions, LiveThread};
pub use report::{CoreReport, Frame, FrameMark, ThreadReport};
