//! ELF notes: the CPUs' registers (`NT_PRSTATUS`, written by the crashing
//! kernel for kdump or by QEMU for each vCPU) and `VMCOREINFO`.

use crate::error::{Bytes, Error, Result};

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub name: String,
    pub kind: u32,
    pub desc: Vec<u8>,
}

pub const NT_PRSTATUS: u32 = 1;

/// Parses a note segment. `base` is the file offset of `data` (for errors).
/// A note running past the end stops the walk with an error naming it; the
/// notes before it are returned through `out`.
pub fn parse_notes(data: &[u8], base: u64, out: &mut Vec<Note>) -> Result<()> {
    use wedge_bytes::note::NoteStop;
    for n in wedge_bytes::note::notes(data) {
        let e = match n {
            Ok(n) => {
                let name = n.name.split(|&b| b == 0).next().unwrap_or(&[]);
                out.push(Note {
                    name: String::from_utf8_lossy(name).into_owned(),
                    kind: n.kind,
                    desc: n.desc.to_vec(),
                });
                continue;
            }
            Err(e) => e,
        };
        let detail = match e.stop {
            // Zero padding at the end of a PT_NOTE (kdump pads per-CPU notes).
            NoteStop::Zeros { .. } => return Ok(()),
            NoteStop::TooLarge { namesz, descsz, .. } => format!(
                "name size {namesz} / desc size {descsz}: larger than any note the kernel writes"
            ),
            NoteStop::TooMany => "more notes than any dump holds".into(),
            NoteStop::Overflow { namesz, descsz } => {
                format!("name size {namesz} / desc size {descsz} overflow")
            }
            NoteStop::PastEnd { namesz, descsz, .. } => format!(
                "name size {namesz} / desc size {descsz} run past the segment ({} bytes)",
                data.len()
            ),
        };
        return Err(Error::Malformed {
            what: "ELF note",
            offset: base.saturating_add(e.offset as u64),
            detail,
        });
    }
    Ok(())
}

/// The general registers of one CPU, x86-64 `user_regs_struct` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
    pub gs_base: u64,
}

/// `struct elf_prstatus` on x86-64: `pr_pid` at 32, `pr_reg` at 112
/// (27 × u64: r15 … ss, fs_base, gs_base, ds, es, fs, gs).
pub fn parse_prstatus(desc: &[u8]) -> Option<(u32, CpuRegs)> {
    let pid = desc.u32_at(32)?;
    let r = |i: usize| desc.u64_at(112 + 8 * i);
    Some((
        pid,
        CpuRegs {
            r15: r(0)?,
            r14: r(1)?,
            r13: r(2)?,
            r12: r(3)?,
            bp: r(4)?,
            bx: r(5)?,
            r11: r(6)?,
            r10: r(7)?,
            r9: r(8)?,
            r8: r(9)?,
            ax: r(10)?,
            cx: r(11)?,
            dx: r(12)?,
            si: r(13)?,
            di: r(14)?,
            orig_ax: r(15)?,
            ip: r(16)?,
            cs: r(17)?,
            flags: r(18)?,
            sp: r(19)?,
            ss: r(20)?,
            gs_base: r(22)?,
        },
    ))
}

/// VMCOREINFO: the `KEY=VALUE` lines the kernel exports for dump readers
/// (`kernel/crash_core.c`, `arch/x86/kernel/machine_kexec_64.c`).
#[derive(Debug, Clone, Default)]
pub struct VmcoreInfo {
    pub raw: String,
    entries: Vec<(String, String)>,
}

impl VmcoreInfo {
    pub fn parse(text: &str) -> VmcoreInfo {
        let entries = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        VmcoreInfo {
            raw: text.to_string(),
            entries,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `SYMBOL(name)=hex`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get(&format!("SYMBOL({name})"))?, 16).ok()
    }

    /// `NUMBER(name)=dec` (signed: phys_base is negative under KASLR).
    pub fn number(&self, name: &str) -> Option<i64> {
        self.get(&format!("NUMBER({name})"))?.parse().ok()
    }

    pub fn offset(&self, name: &str) -> Option<u64> {
        self.get(&format!("OFFSET({name})"))?.parse().ok()
    }

    pub fn size(&self, name: &str) -> Option<u64> {
        self.get(&format!("SIZE({name})"))?.parse().ok()
    }

    /// `KERNELOFFSET=hex`: the KASLR slide of the kernel image.
    pub fn kernel_offset(&self) -> Option<u64> {
        u64::from_str_radix(self.get("KERNELOFFSET")?, 16).ok()
    }

    pub fn page_size(&self) -> Option<u64> {
        self.get("PAGESIZE")?.parse().ok()
    }

    /// `CRASHTIME=unix seconds`, written when the kernel crashed (kdump only).
    pub fn crash_time(&self) -> Option<i64> {
        self.get("CRASHTIME")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((name.len() + 1) as u32).to_le_bytes());
        v.extend((desc.len() as u32).to_le_bytes());
        v.extend(kind.to_le_bytes());
        v.extend(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn notes_and_vmcoreinfo() {
        let mut seg = note("CORE", 1, &[0u8; 336]);
        seg.extend(note("VMCOREINFO", 0, b"OSRELEASE=6.1.0\nNUMBER(phys_base)=-88080384\nSYMBOL(init_top_pgt)=ffffffff90410000\n"));
        let mut out = Vec::new();
        parse_notes(&seg, 0, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(parse_prstatus(&out[0].desc).is_some());
        let vi = VmcoreInfo::parse(std::str::from_utf8(&out[1].desc).unwrap());
        assert_eq!(vi.osrelease(), Some("6.1.0"));
        assert_eq!(vi.number("phys_base"), Some(-88080384));
        assert_eq!(vi.symbol("init_top_pgt"), Some(0xffffffff90410000));
    }

    #[test]
    fn note_past_end_is_an_error_not_a_panic() {
        let mut seg = note("CORE", 1, &[1, 2, 3, 4]);
        seg[4] = 0xff; // descsz 255
        let mut out = Vec::new();
        assert!(matches!(
            parse_notes(&seg, 0x100, &mut out),
            Err(Error::Malformed { offset: 0x100, .. })
        ));
        // An absurd size must not overflow.
        seg[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_notes(&seg, 0, &mut out).is_err());
    }
}
