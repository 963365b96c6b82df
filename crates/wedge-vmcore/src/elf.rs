//! ELF vmcores: what kdump saves from /proc/vmcore, what QEMU's
//! `dump-guest-memory` writes, and /proc/kcore. Memory is in `PT_LOAD`
//! segments (by physical address), CPU registers and VMCOREINFO in
//! `PT_NOTE` segments.

use crate::error::{Error, Result};
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

// The ELF fields and `e_machine` names are shared with the core reader
// (wedge-bytes): re-exported for existing callers.
pub use wedge_bytes::elf::{machine_name, EM_AARCH64, EM_X86_64};
use wedge_bytes::elf::{ELFCLASS64, ELFDATA2LSB, PHDR64_SIZE, PT_LOAD, PT_NOTE};

/// Parses the ELF header, program headers and notes. Memory stays in the
/// file; segments whose data runs past its end are clipped (a truncated
/// dump still yields what it holds).
pub fn parse(src: &dyn ReadAt) -> Result<ElfDump> {
    let mut eh = [0u8; 64];
    src.read_exact_at(0, &mut eh, "ELF header")?;
    let Some(id) = wedge_bytes::elf::ident(&eh) else {
        return Err(Error::UnknownFormat {
            magic: eh[..8].to_vec(),
        });
    };
    let bad = |what: &'static str, offset: u64, detail: String| Error::Malformed {
        what,
        offset,
        detail,
    };
    if id.class != ELFCLASS64 {
        // 32-bit ELF: i386 or arm32 dumps.
        return Err(Error::WrongArch {
            machine: format!("{} (32-bit ELF)", machine_name(id.e_machine)),
        });
    }
    if id.data != ELFDATA2LSB {
        return Err(bad(
            "ELF header e_ident[EI_DATA]",
            5,
            "big-endian dump".into(),
        ));
    }
    let machine = id.e_machine;
    // The 64-byte header is all there (read_exact_at above).
    let h =
        wedge_bytes::elf::header64(&eh).ok_or_else(|| bad("ELF header", 0, "truncated".into()))?;
    let (phoff, phentsize, phnum) = (h.phoff, u64::from(h.phentsize), u64::from(h.phnum));
    if phentsize < PHDR64_SIZE as u64 {
        return Err(bad("ELF e_phentsize", 54, format!("{phentsize} < 56")));
    }
    // Both at most 65535: the product fits.
    let phdrs = src.read_vec(phoff, (phentsize * phnum) as usize, "ELF program headers")?;
    let mut loads = Vec::new();
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    for i in 0..phnum as usize {
        let Some(wedge_bytes::elf::Phdr64 {
            p_type: ty,
            offset,
            vaddr,
            paddr,
            filesz,
            memsz,
            ..
        }) = phdrs
            .get(i * phentsize as usize..)
            .and_then(wedge_bytes::elf::phdr64)
        else {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 vmcore as kdump writes it: header, a PT_NOTE with
    /// VMCOREINFO, a PT_LOAD cut short by the end of the file.
    fn dump(machine: u16, class: u8) -> Vec<u8> {
        let mut note = Vec::new();
        let desc = b"OSRELEASE=6.1.0\n";
        note.extend_from_slice(&11u32.to_le_bytes());
        note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        note.extend_from_slice(&0u32.to_le_bytes());
        note.extend_from_slice(b"VMCOREINFO\0\0");
        note.extend_from_slice(desc);
        let mut v = vec![0u8; 64 + 2 * 56];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = class;
        v[5] = 1;
        v[16..18].copy_from_slice(&4u16.to_le_bytes());
        v[18..20].copy_from_slice(&machine.to_le_bytes());
        v[32..40].copy_from_slice(&64u64.to_le_bytes());
        v[54..56].copy_from_slice(&56u16.to_le_bytes());
        v[56..58].copy_from_slice(&2u16.to_le_bytes());
        let note_off = v.len() as u64;
        let ph = |v: &mut Vec<u8>, at: usize, ty: u32, off: u64, paddr: u64, sz: u64| {
            v[at..at + 4].copy_from_slice(&ty.to_le_bytes());
            v[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            v[at + 24..at + 32].copy_from_slice(&paddr.to_le_bytes());
            v[at + 32..at + 40].copy_from_slice(&sz.to_le_bytes());
            v[at + 40..at + 48].copy_from_slice(&sz.to_le_bytes());
        };
        ph(&mut v, 64, PT_NOTE, note_off, 0, note.len() as u64);
        let load_off = note_off + note.len() as u64;
        ph(&mut v, 120, PT_LOAD, load_off, 0x1000, 0x2000);
        v.extend_from_slice(&note);
        v.extend_from_slice(&[0xaa; 0x1000]);
        v
    }

    #[test]
    fn parses_loads_and_notes_and_names_other_machines() {
        let e = parse(&dump(EM_X86_64, 2)).expect("parse");
        assert_eq!(e.machine, EM_X86_64);
        assert_eq!(e.notes.len(), 1);
        assert_eq!(e.notes[0].name, "VMCOREINFO");
        assert_eq!(e.loads.len(), 1);
        assert_eq!((e.loads[0].paddr, e.loads[0].avail), (0x1000, 0x1000));
        assert!(e.warnings[0].contains("truncated dump"), "{:?}", e.warnings);
        let Err(Error::WrongArch { machine }) = parse(&dump(EM_X86_64, 1)) else {
            panic!("a 32-bit ELF is refused");
        };
        assert_eq!(machine, "x86-64 (32-bit ELF)");
        assert_eq!(machine_name(EM_AARCH64), "aarch64");
    }

    #[test]
    fn a_note_past_its_segment_is_a_warning_not_a_panic() {
        let mut v = dump(EM_X86_64, 2);
        // descsz of the VMCOREINFO note: far past the segment.
        let at = 64 + 2 * 56 + 4;
        v[at..at + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        let e = parse(&v).expect("parse");
        assert!(e.notes.is_empty());
        assert!(
            e.warnings.iter().any(|w| w.contains("ELF note")),
            "{:?}",
            e.warnings
        );
    }
}
