//! ELF vmcores: what kdump saves from /proc/vmcore, what QEMU's
//! `dump-guest-memory` writes, and /proc/kcore. Memory is in `PT_LOAD`
//! segments (by physical address), CPU registers and VMCOREINFO in
//! `PT_NOTE` segments.

use crate::error::{Bytes, Error, Result};
use crate::notes::{parse_notes, Note};
use crate::source::ReadAt;

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub paddr: u64,
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    /// How much of `filesz` the file really holds (less when truncated).
    pub avail: u64,
}

/// The parts of an ELF vmcore a reader needs.
#[derive(Debug, Clone)]
pub struct ElfDump {
    pub machine: u16,
    pub loads: Vec<Load>,
    pub notes: Vec<Note>,
    /// Problems that did not stop parsing (a bad note segment…).
    pub warnings: Vec<String>,
}

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

pub fn machine_name(m: u16) -> String {
    match m {
        3 => "i386".into(),
        EM_X86_64 => "x86-64".into(),
        EM_AARCH64 => "aarch64".into(),
        8 => "mips".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        40 => "arm".into(),
        243 => "riscv".into(),
        other => format!("ELF machine {other}"),
    }
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

/// Parses the ELF header, program headers and notes. Memory stays in the
/// file; segments whose data runs past its end are clipped (a truncated
/// dump still yields what it holds).
pub fn parse(src: &dyn ReadAt) -> Result<ElfDump> {
    let mut eh = [0u8; 64];
    src.read_exact_at(0, &mut eh, "ELF header")?;
    if &eh[..4] != b"\x7fELF" {
        return Err(Error::UnknownFormat {
            magic: eh[..8].to_vec(),
        });
    }
    let bad = |what: &'static str, offset: u64, detail: String| Error::Malformed {
        what,
        offset,
        detail,
    };
    if eh[4] != 2 {
        // 32-bit ELF: i386 or arm32 dumps.
        let m = u16::from_le_bytes([eh[18], eh[19]]);
        return Err(Error::WrongArch {
            machine: format!("{} (32-bit ELF)", machine_name(m)),
        });
    }
    if eh[5] != 1 {
        return Err(bad(
            "ELF header e_ident[EI_DATA]",
            5,
            "big-endian dump".into(),
        ));
    }
    let h = &eh[..];
    let machine = h.u16_at(18).unwrap_or(0);
    let phoff = h.u64_at(32).unwrap_or(0);
    let phentsize = h.u16_at(54).unwrap_or(0) as u64;
    let phnum = h.u16_at(56).unwrap_or(0) as u64;
    if phentsize < 56 {
        return Err(bad("ELF e_phentsize", 54, format!("{phentsize} < 56")));
    }
    let phdrs = src.read_vec(phoff, (phentsize * phnum) as usize, "ELF program headers")?;
    let mut loads = Vec::new();
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    for i in 0..phnum as usize {
        let p = &phdrs[i * phentsize as usize..];
        let (Some(ty), Some(offset), Some(vaddr), Some(paddr), Some(filesz), Some(memsz)) = (
            p.u32_at(0),
            p.u64_at(8),
            p.u64_at(16),
            p.u64_at(24),
            p.u64_at(32),
            p.u64_at(40),
        ) else {
            continue;
        };
        match ty {
            PT_LOAD => {
                if offset.checked_add(filesz).is_none() || paddr.checked_add(memsz).is_none() {
                    return Err(bad(
                        "PT_LOAD",
                        phoff + (i as u64) * phentsize,
                        format!("offset {offset:#x} + size {filesz:#x} overflows"),
                    ));
                }
                let avail = src.len().saturating_sub(offset).min(filesz);
                if avail < filesz {
                    warnings.push(format!(
                        "PT_LOAD at physical {paddr:#x}: {} of {filesz:#x} bytes are past the end of the file (truncated dump)",
                        filesz - avail
                    ));
                }
                loads.push(Load {
                    paddr,
                    vaddr,
                    offset,
                    filesz,
                    memsz,
                    avail,
                });
            }
            PT_NOTE => {
                if filesz > 64 << 20 {
                    warnings.push(format!("PT_NOTE at {offset:#x}: size {filesz} ignored"));
                    continue;
                }
                match src.read_vec(offset, filesz as usize, "PT_NOTE") {
                    Ok(data) => {
                        if let Err(e) = parse_notes(&data, offset, &mut notes) {
                            warnings.push(e.to_string());
                        }
                    }
                    Err(e) => warnings.push(e.to_string()),
                }
            }
            _ => {}
        }
    }
    loads.sort_by_key(|l| l.paddr);
    Ok(ElfDump {
        machine,
        loads,
        notes,
        warnings,
    })
}
