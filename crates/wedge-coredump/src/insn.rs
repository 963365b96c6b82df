//! The instruction at a crashing pc, decoded.
//!
//! Code pages of file mappings are not in a core (only their first page
//! is), so the bytes come from the core when it has them and otherwise from
//! the binary on disk, provided its build-id matches.

use crate::binaries::{self, Binary, BinaryState, MemoryView};
use crate::elf::Arch;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, Mnemonic};

/// A decoded instruction: its text and, for the story, its kind.
pub fn at_pc(arch: Arch, mem: &dyn MemoryView, bins: &[Binary], pc: u64) -> Option<String> {
    let bytes = code_at(mem, bins, pc, 16)?;
    Some(decode(arch, &bytes, pc))
}

/// Up to `len` bytes of code at `pc`.
pub fn code_at(mem: &dyn MemoryView, bins: &[Binary], pc: u64, len: usize) -> Option<Vec<u8>> {
    // Try the whole length, then shorter reads near a segment's end.
    for l in [len, 8, 4, 1] {
        if let Some(b) = mem.read(pc, l.min(len)) {
            return Some(b.to_vec());
        }
    }
    let b = bins
        .iter()
        .find(|b| b.file_offset(pc).is_some() && b.state == BinaryState::Ok)?;
    binaries::code_bytes(b, pc, len)
}

/// Decodes one instruction; `(bad)` when it is not one.
pub fn decode(arch: Arch, bytes: &[u8], pc: u64) -> String {
    match arch {
        Arch::X86_64 => {
            let mut d = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
            let ins = d.decode();
            if ins.is_invalid() {
                return "(bad)".into();
            }
            let mut out = String::new();
            IntelFormatter::new().format(&ins, &mut out);
            out
        }
        Arch::Aarch64 => {
            let Some(w) = bytes
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
            else {
                return "(bad)".into();
            };
            if w & 0xffe0_001f == 0xd420_0000 {
                format!("brk #{:#x}", (w >> 5) & 0xffff)
            } else if w & 0xffff_0000 == 0 {
                format!("udf #{:#x}", w & 0xffff)
            } else {
                format!(".inst {w:#010x}")
            }
        }
    }
}

/// Whether a decoded x86 instruction is `hlt`: privileged, so in user mode
/// it raises #GP, which the kernel turns into SIGSEGV with SI_KERNEL.
pub fn is_hlt(text: &str) -> bool {
    text == "hlt"
}

/// Mnemonic of an x86-64 instruction at the head of `bytes`.
pub fn mnemonic(bytes: &[u8], pc: u64) -> Option<Mnemonic> {
    let mut d = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
    let ins = d.decode();
    (!ins.is_invalid()).then(|| ins.mnemonic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(decode(Arch::X86_64, &[0xf4], 0), "hlt");
        assert_eq!(decode(Arch::X86_64, &[0x0f, 0x0b], 0), "ud2");
        assert_eq!(decode(Arch::X86_64, &[0x0f], 0), "(bad)");
        assert_eq!(
            decode(Arch::Aarch64, &0xd4207d00u32.to_le_bytes(), 0),
            "brk #0x3e8"
        );
        assert_eq!(mnemonic(&[0xcc], 0), Some(Mnemonic::Int3));
    }
}
