//! The ELF64 header and program headers, as far as a core or a crash dump
//! needs them (`include/uapi/linux/elf.h`).

use crate::le::Le;

pub const ELFMAG: &[u8; 4] = b"\x7fELF";
pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2LSB: u8 = 1;
pub const ELFDATA2MSB: u8 = 2;
pub const ET_CORE: u16 = 4;
pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
/// `e_phnum` is this when the real count lives in section 0's `sh_info`
/// (a process with more than 65534 mappings).
pub const PN_XNUM: u16 = 0xffff;
/// Size of an `Elf64_Phdr`.
pub const PHDR64_SIZE: usize = 56;

/// `e_machine` values wedge knows by name.
pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// A name for an `e_machine`, for saying which architecture wedge cannot
/// read.
pub fn machine_name(m: u16) -> String {
    match m {
        EM_386 => "i386".into(),
        EM_ARM => "32-bit ARM".into(),
        8 => "MIPS".into(),
        20 => "PowerPC".into(),
        21 => "PowerPC64".into(),
        22 => "s390".into(),
        43 => "SPARC v9".into(),
        243 => "RISC-V".into(),
        258 => "LoongArch".into(),
        EM_X86_64 => "x86-64".into(),
        EM_AARCH64 => "aarch64".into(),
        other => format!("machine {other}"),
    }
}

/// What every ELF says first: class, byte order, type and machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    /// `e_ident[EI_CLASS]`: 2 for 64-bit.
    pub class: u8,
    /// `e_ident[EI_DATA]`: 1 little-endian, 2 big-endian.
    pub data: u8,
    pub e_type: u16,
    pub e_machine: u16,
}

/// The identification of `d`, `None` if it does not start with the ELF
/// magic. `e_type` and `e_machine` sit at the same offsets in both classes
/// and are read in the file's byte order, so a 32-bit or big-endian file is
/// named before it is refused; a header cut short reads them as 0.
pub fn ident(d: &[u8]) -> Option<Ident> {
    if d.get(..4) != Some(ELFMAG.as_slice()) {
        return None;
    }
    let data = d.get(5).copied().unwrap_or(0);
    let half = |o: usize| {
        d.bytes_at::<2>(o)
            .map(|b| {
                if data == ELFDATA2MSB {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                }
            })
            .unwrap_or(0)
    };
    Some(Ident {
        class: d.get(4).copied().unwrap_or(0),
        data,
        e_type: half(16),
        e_machine: half(18),
    })
}

/// The fields of a little-endian ELF64 header that locate its program
/// and section headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header64 {
    pub phoff: u64,
    pub shoff: u64,
    pub phentsize: u16,
    /// As written: [`PN_XNUM`] means "see section 0".
    pub phnum: u16,
}

/// The ELF64 header fields of `d`, `None` if the header is cut short.
pub fn header64(d: &[u8]) -> Option<Header64> {
    Some(Header64 {
        phoff: d.u64_at(32)?,
        shoff: d.u64_at(40)?,
        phentsize: d.u16_at(54)?,
        phnum: d.u16_at(56)?,
    })
}

/// The program-header count when `e_phnum` is [`PN_XNUM`]: section header
/// 0's `sh_info` (offset 44 in an `Elf64_Shdr`), `None` if that is not in
/// `d` (an `e_shoff` past the file or past the address space).
pub fn xnum_phnum(d: &[u8], shoff: u64) -> Option<u32> {
    let at = usize::try_from(shoff).ok()?.checked_add(44)?;
    d.u32_at(at)
}

/// The byte offset of program header `i` (`e_phoff + i * e_phentsize`),
/// `None` when it overflows.
pub fn phdr_offset(phoff: u64, phentsize: u16, i: u64) -> Option<u64> {
    i.checked_mul(u64::from(phentsize))?.checked_add(phoff)
}

/// One `Elf64_Phdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phdr64 {
    pub p_type: u32,
    /// PF_X | PF_W | PF_R.
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// The program header at the start of `d`, `None` if fewer than
/// [`PHDR64_SIZE`] bytes are there.
pub fn phdr64(d: &[u8]) -> Option<Phdr64> {
    // p_align (48..56) is not read, but a header cut inside it is cut.
    d.get(..PHDR64_SIZE)?;
    Some(Phdr64 {
        p_type: d.u32_at(0)?,
        flags: d.u32_at(4)?,
        offset: d.u64_at(8)?,
        vaddr: d.u64_at(16)?,
        paddr: d.u64_at(24)?,
        filesz: d.u64_at(32)?,
        memsz: d.u64_at(40)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pn_xnum_with_a_huge_shoff_is_none_not_a_panic() {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(ELFMAG);
        h[4] = ELFCLASS64;
        h[5] = ELFDATA2LSB;
        h[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        h[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        h[56..58].copy_from_slice(&PN_XNUM.to_le_bytes());
        let id = ident(&h).expect("ELF");
        assert_eq!((id.class, id.data, id.e_type, id.e_machine), (2, 1, 4, 62));
        let eh = header64(&h).expect("header");
        assert_eq!(eh.phnum, PN_XNUM);
        assert_eq!(xnum_phnum(&h, eh.shoff), None);
        assert_eq!(phdr_offset(u64::MAX, 56, 1), None);
        assert_eq!(phdr64(&h[..55]), None);
        assert!(ident(b"\x7fEL").is_none());
    }

    #[test]
    fn big_endian_type_and_machine_are_read_in_their_order() {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(ELFMAG);
        h[5] = ELFDATA2MSB;
        h[17] = 4;
        h[19] = 21;
        let id = ident(&h).expect("ELF");
        assert_eq!((id.e_type, id.e_machine), (ET_CORE, 21));
        assert_eq!(machine_name(id.e_machine), "PowerPC64");
    }
}
