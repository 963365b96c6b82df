//! Typed errors: every one names what was being read and where.

use std::fmt;

/// Why reading a dump (or a structure inside it) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file could not be read at all.
    Io { what: String, detail: String },
    /// The file is neither an ELF vmcore nor a kdump-compressed dump.
    UnknownFormat { magic: Vec<u8> },
    /// A header or table is malformed: `what` names the field, `offset` the
    /// file offset where it was read.
    Malformed {
        what: &'static str,
        offset: u64,
        detail: String,
    },
    /// The file ends before a structure it declares.
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
    },
    /// The dump is of another architecture.
    WrongArch { machine: String },
    /// A physical page is not in the dump (excluded by makedumpfile, or the
    /// dump is incomplete).
    PageMissing { paddr: u64 },
    /// A page is in the dump but could not be decompressed.
    BadPage { paddr: u64, detail: String },
    /// A virtual address does not translate (no mapping in the page tables).
    Unmapped { vaddr: u64, level: &'static str },
    /// A kernel structure, symbol or type the reader needs is not there.
    Missing { what: String },
    /// Data read from the kernel's memory is not what it should be.
    Corrupt { what: String, addr: u64 },
    /// A read of a running kernel's memory faulted (`bpf_probe_read_kernel`
    /// returned an error): the address, and what the source said.
    Fault { addr: u64, detail: String },
    /// The dump is cut short and the part that is missing holds what every
    /// view needs (the kernel image with kallsyms and BTF, its page
    /// tables): with KASLR the kernel sits anywhere in physical memory, so
    /// the same cut may keep it in one boot and lose it in the next.
    KernelCut { size: String, cause: Box<Error> },
}

impl Error {
    /// An error met while reading the kernel out of a dump whose file is
    /// cut short: said as the truncation it most likely is.
    pub fn within(self, extent: &crate::dump::Extent) -> Error {
        match self {
            Error::PageMissing { .. }
            | Error::Unmapped { .. }
            | Error::Missing { .. }
            | Error::Corrupt { .. }
            | Error::BadPage { .. }
                if extent.truncated() =>
            {
                Error::KernelCut {
                    size: extent.size_text(),
                    cause: Box::new(self),
                }
            }
            e => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { what, detail } => write!(f, "{what}: {detail}"),
            Error::UnknownFormat { magic } => write!(
                f,
                "not a kernel crash dump (no ELF or KDUMP signature; file starts with {magic:02x?})"
            ),
            Error::Malformed {
                what,
                offset,
                detail,
            } => write!(f, "malformed {what} at offset {offset:#x}: {detail}"),
            Error::Truncated {
                what,
                offset,
                needed,
            } => write!(
                f,
                "truncated dump: {what} at offset {offset:#x} needs {needed} bytes past the end of the file"
            ),
            Error::WrongArch { machine } => write!(
                f,
                "dump is of architecture {machine}; wedge reads x86-64 dumps only so far"
            ),
            Error::PageMissing { paddr } => {
                write!(f, "physical page {paddr:#x} is not in the dump")
            }
            Error::BadPage { paddr, detail } => {
                write!(f, "physical page {paddr:#x} is damaged: {detail}")
            }
            Error::Unmapped { vaddr, level } => {
                write!(f, "address {vaddr:#x} is not mapped ({level} entry not present)")
            }
            Error::Missing { what } => write!(f, "{what} not found in the dump"),
            Error::Corrupt { what, addr } => write!(f, "{what} at {addr:#x} is corrupt"),
            Error::Fault { addr, detail } => write!(f, "fault at {addr:#x} ({detail})"),
            Error::KernelCut { size, cause } => write!(
                f,
                "dump truncated: {size} present, and the missing part holds the kernel's own data, so no view can be read ({cause})"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Little-endian field readers that never panic: the one checked reader
/// shared with the core reader (wedge-bytes), under the name this crate's
/// modules import.
pub(crate) use wedge_bytes::Le as Bytes;
