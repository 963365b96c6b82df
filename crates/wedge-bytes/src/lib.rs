//! Checked readers over untrusted bytes: little-endian fields, the ELF64
//! header and program headers, and ELF note walks.
//!
//! A process core (`wedge-coredump`) and a kernel crash dump
//! (`wedge-vmcore`) are both ELF files written by a kernel that may have
//! died mid-write, or crafted. Both read them through this crate, so the
//! same field is decoded once and every offset a file supplies is added
//! with checked arithmetic: a corrupt file is `None` or an error, never a
//! panic, also in builds with overflow checks (debug, cargo-fuzz).
//!
//! It is not kernel vocabulary (that is `wedge-kernel`), nor an input
//! stream (`wedge-input`): a leaf crate with no dependencies, so both
//! readers (and their fuzz targets) take it without pulling in the rest.

pub mod elf;
pub mod le;
pub mod note;

pub use le::Le;
