//! # wedge-dwarf: the kernel's DWARF for crash dumps
//!
//! BTF (always in the dump) names types; DWARF, when the user gives it
//! (`--debuginfo PATH`, Debian's `linux-image-*-dbg`), adds what BTF has
//! not: source file and line of each PC, the functions the compiler inlined
//! at it, and where each parameter and local lives (registers, stack, or
//! nowhere any more). This crate opens that debuginfo and answers those
//! questions; it knows nothing of dumps: memory comes through a read
//! callback, addresses are the vmlinux's link-time ones (the caller removes
//! the KASLR slide).
//!
//! A vmlinux with DWARF is hundreds of megabytes: it is mapped, never read
//! whole, and each compile unit is parsed only when an address in it is
//! asked for (`.debug_aranges` says which unit holds an address).

mod cfi;
mod files;
mod info;
mod reloc;
mod types;
mod vars;

pub use cfi::Regs;
pub use files::{Debuginfo, Expect, ModuleDebug};
pub use info::{Dwarf, InlineFrame};
pub use types::Shape;
pub use vars::FrameState;
pub use vars::{Var, VarValue};

/// Reads kernel memory at a link-time address; false when it cannot.
pub type ReadMem<'a> = &'a dyn Fn(u64, &mut [u8]) -> bool;

#[cfg(test)]
mod tests;
