//! A minimal reader for ELF core files, written for hostile input.
//!
//! A core is an `ET_CORE` ELF file whose program headers are `PT_NOTE`
//! (threads, signal, mappings, auxv: see `notes`) and `PT_LOAD`, one per
//! VMA of the dead process (fs/binfmt_elf.c `elf_core_dump`). A `PT_LOAD`
//! whose `p_filesz` is smaller than `p_memsz` was not dumped in full: the
//! kernel dumps only the first page of file-backed, unmodified mappings (to
//! catch the ELF header and its build-id note, coredump_filter bit 4), and
//! nothing of mappings the filter excludes. A core cut short by RLIMIT_CORE
//! or a full disk simply ends early; the notes come first, so they usually
//! survive.
//!
//! This module is deliberately hand-written rather than built on `object`:
//! it must give back every note even when the segments after them are gone.

use crate::error::Malformed;

// The ELF fields and `e_machine` names are shared with the crash-dump
// reader (wedge-bytes): re-exported for existing callers.
pub use wedge_bytes::elf::{machine_name, EM_386, EM_AARCH64, EM_ARM, EM_X86_64};
use wedge_bytes::elf::{ELFCLASS64, ELFDATA2LSB, ET_CORE, PHDR64_SIZE, PN_XNUM, PT_LOAD, PT_NOTE};
/// At most this many program headers are read. The kernel writes one per
/// VMA plus the PT_NOTE (fs/binfmt_elf.c `elf_core_dump`), and a process
/// has at most `vm.max_map_count` VMAs (65530 by default; distributions
/// that raise it for games go to about a million in practice).
pub const MAX_PHNUM: u64 = 1 << 22;
/// At most this many PT_NOTE segments are read: the kernel writes one.
pub const MAX_NOTE_SEGMENTS: usize = 16;

/// The CPU architecture of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The architecture wedge itself was built for, if it reads it.
    pub fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

/// One `PT_LOAD`: a VMA of the dead process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    /// PF_X | PF_W | PF_R.
    pub flags: u32,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// The parsed header of a core: what it is, its segments, its notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreLayout {
    pub arch: Arch,
    /// Sorted by `vaddr`.
    pub segments: Vec<Segment>,
    /// File ranges of the `PT_NOTE` segments, clipped to the file.
    pub notes: Vec<std::ops::Range<usize>>,
    /// Things found wrong on the way that did not stop the parse.
    pub problems: Vec<String>,
}

/// What stopped the parse of a core header outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    NotElf,
    NotCore(u16),
    /// 32-bit, big-endian or an architecture wedge cannot unwind.
    Unsupported(String),
    Malformed(Malformed),
}

/// Parses the ELF header and program headers of a core.
pub fn parse_layout(data: &[u8]) -> Result<CoreLayout, HeaderError> {
    let Some(id) = wedge_bytes::elf::ident(data) else {
        return Err(HeaderError::NotElf);
    };
    let (class, endian, e_type, e_machine) = (id.class, id.data, id.e_type, id.e_machine);
    if e_type != ET_CORE {
        return Err(HeaderError::NotCore(e_type));
    }
    if class != ELFCLASS64 {
        return Err(HeaderError::Unsupported(format!(
            "a 32-bit core ({}); wedge reads 64-bit x86-64 and aarch64 cores",
            machine_name(e_machine)
        )));
    }
    if endian != ELFDATA2LSB {
        return Err(HeaderError::Unsupported(format!(
            "a big-endian core ({}); wedge reads little-endian x86-64 and aarch64 cores",
            machine_name(e_machine)
        )));
    }
    let arch = match e_machine {
        EM_X86_64 => Arch::X86_64,
        EM_AARCH64 => Arch::Aarch64,
        m => {
            return Err(HeaderError::Unsupported(format!(
                "a core of a {} process; wedge reads x86-64 and aarch64 cores",
                machine_name(m)
            )))
        }
    };
    let trunc = |what| HeaderError::Malformed(Malformed::new(what));
    let eh = wedge_bytes::elf::header64(data).ok_or(trunc("ELF header is truncated"))?;
    let (phoff, phentsize) = (eh.phoff, eh.phentsize);
    let mut phnum = u64::from(eh.phnum);
    let mut problems = Vec::new();
    if eh.phnum == PN_XNUM {
        // The real count is in section header 0's sh_info.
        phnum = wedge_bytes::elf::xnum_phnum(data, eh.shoff)
            .ok_or(trunc("e_phnum is PN_XNUM but section header 0 is missing"))?
            .into();
    }
    if phnum > 0 && usize::from(phentsize) < PHDR64_SIZE {
        return Err(trunc("e_phentsize is smaller than an Elf64_Phdr"));
    }
    if phnum > MAX_PHNUM {
        problems.push(format!(
            "the core claims {phnum} program headers, more than any process can have mappings: only the first {MAX_PHNUM} are read"
        ));
        phnum = MAX_PHNUM;
    }
    let mut segments = Vec::new();
    let mut notes = Vec::new();
    let mut extra_notes = 0u64;
    for i in 0..phnum {
        let Some(off) = wedge_bytes::elf::phdr_offset(phoff, phentsize, i)
            .and_then(|o| usize::try_from(o).ok())
        else {
            problems.push("program header table offset overflows".into());
            break;
        };
        let Some(ph) = off
            .checked_add(PHDR64_SIZE)
            .and_then(|end| data.get(off..end))
        else {
            problems.push(format!(
                "the core is truncated inside its program headers: {i} of {phnum} read"
            ));
            break;
        };
        if ph.iter().all(|&b| b == 0) {
            // The kernel never writes a PT_NULL header: this is a zeroed
            // or sparse region, and walking on would read zeros for as
            // long as the file claims.
            problems.push(format!(
                "program header {i} of {phnum} is all zeros (a zeroed or sparse region): the rest are skipped"
            ));
            break;
        }
        let Some(wedge_bytes::elf::Phdr64 {
            p_type,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            ..
        }) = wedge_bytes::elf::phdr64(ph)
        else {
            continue;
        };
        match p_type {
            PT_LOAD => segments.push(Segment {
                vaddr,
                memsz,
                offset,
                filesz,
                flags,
            }),
            PT_NOTE if notes.len() >= MAX_NOTE_SEGMENTS => extra_notes += 1,
            PT_NOTE => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let end = usize::try_from(offset.saturating_add(filesz)).unwrap_or(usize::MAX);
                if start >= data.len() {
                    problems.push("the core is truncated before its notes".into());
                    continue;
                }
                if end > data.len() {
                    problems.push("the core is truncated inside its notes".into());
                }
                notes.push(start..end.min(data.len()));
            }
            _ => {}
        }
    }
    if extra_notes > 0 {
        problems.push(format!(
            "{extra_notes} PT_NOTE segments past the first {MAX_NOTE_SEGMENTS} (the kernel writes one): skipped"
        ));
    }
    segments.sort_by_key(|s| s.vaddr);
    Ok(CoreLayout {
        arch,
        segments,
        notes,
        problems,
    })
}

/// The memory image of a dead process, as far as the core holds it.
pub struct Memory<'a> {
    data: &'a [u8],
    segments: &'a [Segment],
}

/// Why an address could not be read from a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hole {
    /// No VMA covers the address.
    Unmapped,
    /// Mapped, but the kernel did not dump it (coredump_filter, or an
    /// unmodified file-backed page beyond the first).
    NotDumped,
    /// Dumped, but the core file ends before it.
    Truncated,
}

impl<'a> Memory<'a> {
    pub fn new(data: &'a [u8], segments: &'a [Segment]) -> Self {
        Memory { data, segments }
    }

    pub fn segment_of(&self, addr: u64) -> Option<&'a Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (addr < s.end()).then_some(s)
    }

    /// `len` bytes at `addr`, all within one segment.
    pub fn read(&self, addr: u64, len: usize) -> Result<&'a [u8], Hole> {
        let s = self.segment_of(addr).ok_or(Hole::Unmapped)?;
        let rel = addr - s.vaddr;
        let end_rel = rel.checked_add(len as u64).ok_or(Hole::Unmapped)?;
        if end_rel > s.memsz {
            return Err(Hole::Unmapped);
        }
        if end_rel > s.filesz {
            return Err(Hole::NotDumped);
        }
        let start = s.offset.checked_add(rel).ok_or(Hole::Truncated)?;
        let start = usize::try_from(start).map_err(|_| Hole::Truncated)?;
        let end = start.checked_add(len).ok_or(Hole::Truncated)?;
        self.data.get(start..end).ok_or(Hole::Truncated)
    }

    /// Up to `max` bytes at `addr`, stopping at the end of what was dumped.
    pub fn read_upto(&self, addr: u64, max: usize) -> Result<&'a [u8], Hole> {
        let s = self.segment_of(addr).ok_or(Hole::Unmapped)?;
        let rel = addr - s.vaddr;
        if rel >= s.filesz {
            return Err(Hole::NotDumped);
        }
        let avail = (s.filesz - rel).min(max as u64) as usize;
        let start = usize::try_from(s.offset.saturating_add(rel)).map_err(|_| Hole::Truncated)?;
        let have = self.data.len().saturating_sub(start).min(avail);
        if have == 0 {
            return Err(Hole::Truncated);
        }
        self.data.get(start..start + have).ok_or(Hole::Truncated)
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, Hole> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| Hole::Truncated)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_cores_without_panicking() {
        assert_eq!(parse_layout(b""), Err(HeaderError::NotElf));
        assert_eq!(parse_layout(b"\x7fELF"), Err(HeaderError::NotCore(0)));
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 1;
        h[5] = 1;
        h[16] = 4;
        h[18] = 3;
        match parse_layout(&h) {
            Err(HeaderError::Unsupported(s)) => assert!(s.contains("i386"), "{s}"),
            other => panic!("{other:?}"),
        }
        h[4] = 2;
        h[18] = 62;
        // No program headers at all: an empty but valid layout.
        let l = parse_layout(&h).unwrap();
        assert!(l.segments.is_empty());
    }

    /// Found by the `core_notes` fuzz target: `e_phnum = PN_XNUM` sends
    /// the reader to section header 0 at `e_shoff`; with `e_shoff` just
    /// below 2^64 the offset of `sh_info` fits in a usize but its end does
    /// not, and the read overflowed ("attempt to add with overflow") in any
    /// build with overflow checks. Unit tests build with them, so this one
    /// fails on the old code.
    #[test]
    fn pn_xnum_with_section_headers_past_the_address_space_is_an_error() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // ELFCLASS64
        h[5] = 1; // ELFDATA2LSB
        h[6] = 1; // EV_CURRENT
        h[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        h[40..48].copy_from_slice(&(u64::MAX - 45).to_le_bytes()); // e_shoff
        h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        h[56..58].copy_from_slice(&PN_XNUM.to_le_bytes()); // e_phnum
        h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize

        // The same bytes are the fuzzer's regression seed.
        assert_eq!(
            h.as_slice(),
            include_bytes!("../../../fuzz/regressions/core_notes/pn-xnum-huge-shoff")
        );
        match parse_layout(&h) {
            Err(HeaderError::Malformed(m)) => {
                assert!(m.0.contains("PN_XNUM"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zeroed_program_headers_and_huge_counts_stop_the_walk() {
        // e_phnum = PN_XNUM, the real count (u32::MAX) in section 0's
        // sh_info, over a zeroed table: the walk stops at the first header.
        let mut h = vec![0u8; 64 + 64 + 56 * 4];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 4;
        h[18] = 62;
        h[32..40].copy_from_slice(&128u64.to_le_bytes()); // e_phoff
        h[40..48].copy_from_slice(&64u64.to_le_bytes()); // e_shoff
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&PN_XNUM.to_le_bytes());
        h[64 + 44..64 + 48].copy_from_slice(&u32::MAX.to_le_bytes());
        let t = std::time::Instant::now();
        let l = parse_layout(&h).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            l.problems
                .iter()
                .any(|p| p.contains("more than any process")),
            "{:?}",
            l.problems
        );
        assert!(
            l.problems.iter().any(|p| p.contains("all zeros")),
            "{:?}",
            l.problems
        );
        // A huge e_shoff with PN_XNUM: refused by name, no panic.
        h[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse_layout(&h), Err(HeaderError::Malformed(_))));
    }

    #[test]
    fn memory_reports_holes() {
        let segs = [Segment {
            vaddr: 0x1000,
            memsz: 0x2000,
            offset: 0,
            filesz: 0x1000,
            flags: 4,
        }];
        let data = vec![7u8; 0x800];
        let m = Memory::new(&data, &segs);
        assert_eq!(m.read(0x1000, 8).unwrap(), &[7u8; 8]);
        assert_eq!(m.read(0x1900, 8), Err(Hole::Truncated));
        assert_eq!(m.read(0x2000, 8), Err(Hole::NotDumped));
        assert_eq!(m.read(0x3000, 8), Err(Hole::Unmapped));
        assert_eq!(m.read(0x2ffc, 8), Err(Hole::Unmapped));
        assert_eq!(m.read_upto(0x17f0, 100).unwrap().len(), 0x10);
    }
}
