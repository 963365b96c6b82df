//! # wedge-kmem: typed kernel memory and C expressions over it
//!
//! What drgn, crash and gdb give a kernel debugger, over any
//! [`KernelMemory`] (a crash dump today; the live kernel through BPF
//! later): values typed by the kernel's own BTF, member access through
//! typedefs and anonymous members, array indexing, pointers followed, C
//! expressions with the kernel helpers (`per_cpu`, `container_of`,
//! `task(pid)`), printing as drgn does and as JSON, and `ptype` layouts as
//! pahole prints them.
//!
//! Every read is bounded, and memory that cannot be read is an error naming
//! the address ("fault at 0x…"), never a panic; the parser never panics on
//! any input (a fuzz target checks it).

pub mod bt;
pub mod cmd;
pub mod dis;
pub mod eval;
pub mod parse;
pub mod print;
pub mod shell;
pub mod source;
pub mod types;

pub use eval::{Evaluator, Place, Value};
pub use parse::{parse, ExprError, Span};
pub use source::{Fault, KernelMemory, SymbolAt};

#[cfg(test)]
mod tests;
