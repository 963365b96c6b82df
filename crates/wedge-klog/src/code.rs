//! `Code:` lines: the instruction bytes around the faulting instruction.
//!
//! x86 (`arch/x86/kernel/dumpstack.c` `show_opcodes`) prints 64 bytes: 42
//! before the faulting instruction, the first byte of the faulting
//! instruction in `<..>`, then the rest.  The bytes from the marker on are
//! an exact instruction stream; the prologue starts at an arbitrary byte, so
//! it is decoded from the first offset whose instructions end exactly at the
//! marker ("resync").  ARM/arm64/MIPS print 16- or 32-bit words with the
//! faulting one in `(..)`; those are kept as words, not disassembled.

use iced_x86::{
    Decoder, DecoderOptions, Formatter, Instruction as IcedInstruction, IntelFormatter,
};
use serde::Serialize;

/// One disassembled instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// Byte offset relative to the faulting instruction (negative before it).
    pub offset: i64,
    /// Absolute address when the faulting ip is known (hex, no `0x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The instruction's bytes, hex separated by spaces.
    pub bytes: String,
    /// Intel-syntax text.
    pub text: String,
    /// This is the faulting instruction.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub faulting: bool,
}

/// A decoded `Code:` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CodeDump {
    /// The text after `Code:` as printed.
    pub raw: String,
    /// `x86` (bytes) or `words` (ARM/arm64/MIPS style words).
    pub encoding: String,
    /// Disassembly (x86 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<Instruction>,
    /// Text of the faulting instruction (`hlt`, `mov eax,[rax]`), or the
    /// faulting word for non-x86.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faulting_instruction: Option<String>,
    /// The kernel could not read the bytes (`Unable to access opcode bytes
    /// at 0x...`, `Bad RIP value.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Some tokens were not clean two-digit bytes (copy/paste damage) and
    /// were repaired or skipped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub damaged: bool,
}

/// Most bytes a `Code:` line can meaningfully hold; anything beyond is junk.
const MAX_CODE_BYTES: usize = 256;

/// Parse the text after `Code:`. `ip` is the faulting instruction address if
/// known; `bitness` 64 or 32.
pub(crate) fn parse_code(text: &str, ip: Option<u64>, bitness: u32) -> CodeDump {
    let raw = crate::util::bounded(text.trim(), 1024);
    let mut dump = CodeDump {
        raw: raw.clone(),
        ..CodeDump::default()
    };
    let t = raw.as_str();
    if t.starts_with("Unable to access") || t.starts_with("Bad RIP") || t.starts_with("Bad EIP") {
        dump.encoding = "x86".into();
        dump.unavailable = Some(raw.clone());
        return dump;
    }
    let toks: Vec<&str> = t.split_whitespace().collect();
    let x86 = toks.iter().any(|s| s.starts_with('<'))
        || toks
            .iter()
            .filter(|s| s.len() == 2 && crate::util::is_hex(s))
            .count()
            * 2
            > toks.len();
    if !x86 {
        dump.encoding = "words".into();
        dump.faulting_instruction = toks
            .iter()
            .find(|s| s.starts_with('('))
            .map(|s| s.trim_matches(|c| c == '(' || c == ')').to_string());
        return dump;
    }
    dump.encoding = "x86".into();
    let mut bytes: Vec<u8> = Vec::new();
    let mut marker: Option<usize> = None;
    for tok in toks {
        if bytes.len() >= MAX_CODE_BYTES {
            dump.damaged = true;
            break;
        }
        let (is_marker, hex) = match tok.strip_prefix('<').and_then(|x| x.strip_suffix('>')) {
            Some(h) => (true, h),
            None => (false, tok),
        };
        if !crate::util::is_hex(hex) || hex.len() % 2 != 0 {
            dump.damaged = true;
            continue;
        }
        if hex.len() > 2 {
            // Fused pairs from copy/paste ("8b15"): split them.
            dump.damaged = true;
        }
        if is_marker && marker.is_none() {
            marker = Some(bytes.len());
        }
        let mut i = 0;
        while let Some(pair) = hex.get(i..i + 2) {
            if let Ok(b) = u8::from_str_radix(pair, 16) {
                bytes.push(b);
            }
            i += 2;
        }
    }
    let Some(m) = marker else {
        return dump;
    };
    dump.instructions = disassemble(&bytes, m, ip, bitness);
    dump.faulting_instruction = dump
        .instructions
        .iter()
        .find(|i| i.faulting)
        .map(|i| i.text.clone());
    dump
}

impl CodeDump {
    /// At most `n` instructions around the faulting one, which is always
    /// among them when it was decoded: the prologue resync can yield up to
    /// 42 one-byte instructions (int3 or nop padding before a function), so
    /// the first `n` alone may all lie before the marker.  Up to six
    /// instructions after the fault are kept, the rest of the room goes to
    /// the ones leading up to it.
    pub fn around_fault(&self, n: usize) -> &[Instruction] {
        let all = self.instructions.as_slice();
        let Some(fi) = all.iter().position(|i| i.faulting) else {
            return all.get(..n.min(all.len())).unwrap_or(all);
        };
        if all.len() <= n || n == 0 {
            return all.get(..n.min(all.len())).unwrap_or(all);
        }
        let after = (all.len() - fi - 1).min(6).min(n - 1);
        let before = fi.min(n - 1 - after);
        let start = fi - before;
        all.get(start..(start + n).min(all.len())).unwrap_or(all)
    }
}

fn decode_run(bytes: &[u8], bitness: u32, base: u64) -> Vec<(usize, IcedInstruction)> {
    let mut out = Vec::new();
    let mut dec = Decoder::with_ip(bitness, bytes, base, DecoderOptions::NONE);
    let mut pos = 0usize;
    while dec.can_decode() {
        let ins = dec.decode();
        out.push((pos, ins));
        pos += ins.len();
    }
    out
}

/// Disassemble with the faulting byte at `marker`.
fn disassemble(bytes: &[u8], marker: usize, ip: Option<u64>, bitness: u32) -> Vec<Instruction> {
    let mut fmt = IntelFormatter::new();
    fmt.options_mut().set_hex_prefix("0x");
    fmt.options_mut().set_hex_suffix("");
    fmt.options_mut().set_uppercase_hex(false);
    let (Some(pre), Some(post)) = (bytes.get(..marker), bytes.get(marker..)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Resync the prologue: the earliest start whose decoding is all valid
    // and lands exactly on the marker.
    for start in 0..pre.len() {
        let Some(slice) = pre.get(start..) else { break };
        let base = ip.map_or(0, |ip| ip.wrapping_sub((marker - start) as u64));
        let run = decode_run(slice, bitness, base);
        let valid = run.iter().all(|(_, i)| !i.is_invalid());
        let end: usize = run.iter().map(|(_, i)| i.len()).sum();
        if valid && end == slice.len() {
            for (pos, ins) in run {
                out.push(render(&mut fmt, bytes, start + pos, &ins, marker, ip));
            }
            break;
        }
    }
    // The marked byte is where the CPU was (regs->ip), so decoding forward
    // from it is exact whatever the prologue did.
    for (pos, ins) in decode_run(post, bitness, ip.unwrap_or(0)) {
        if ins.is_invalid() {
            if pos == 0 {
                // Still show the faulting instruction's place: an undecodable
                // opcode at ip is itself the answer (SIGILL, or a jump into
                // data), and a row without text would hide the marker.
                let mut bad = render(&mut fmt, bytes, marker, &ins, marker, ip);
                bad.bytes = post.first().map(|b| format!("{b:02x}")).unwrap_or_default();
                bad.text = "(bad)".into();
                out.push(bad);
            }
            break; // the tail of the dump cuts the last instruction
        }
        out.push(render(&mut fmt, bytes, marker + pos, &ins, marker, ip));
    }
    out
}

fn render(
    fmt: &mut IntelFormatter,
    all: &[u8],
    at: usize,
    ins: &IcedInstruction,
    marker: usize,
    ip: Option<u64>,
) -> Instruction {
    let mut text = String::new();
    fmt.format(ins, &mut text);
    let len = ins.len();
    let bytes = all
        .get(at..at + len)
        .unwrap_or(&[])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let offset = i64::try_from(at).unwrap_or(0) - i64::try_from(marker).unwrap_or(0);
    Instruction {
        offset,
        address: ip.map(|ip| format!("{:x}", ip.wrapping_add_signed(offset))),
        bytes,
        text,
        faulting: at == marker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlt_from_abort() {
        // Seed 002: glibc abort() on PID 1 of a pid namespace.
        let c = parse_code(
            "05 0f 85 e6 fd ff ff bf 06 00 00 00 c7 05 7e ea 38 00 06 00 00 00 e8 69 e2 ff ff 8b 05 73 ea 38 00 83 f8 06 0f 85 cc fd ff ff <f4> bf 7f 00 00 00 c7 05 5a ea 38 00 08 00 00 00 e8 65 55 09 00 0f",
            Some(0x7f02_91cb_7196),
            64,
        );
        assert_eq!(c.faulting_instruction.as_deref(), Some("hlt"));
        let f = c
            .instructions
            .iter()
            .find(|i| i.faulting)
            .expect("faulting");
        assert_eq!(f.address.as_deref(), Some("7f0291cb7196"));
        assert!(c.instructions.iter().any(|i| i.offset < 0));
    }

    #[test]
    fn unavailable_and_words() {
        let c = parse_code(
            "Unable to access opcode bytes at 0xffffffffffffffd6.",
            None,
            64,
        );
        assert!(c.unavailable.is_some());
        let c = parse_code("e59f3010 e5933000 (e5933000)", None, 32);
        assert_eq!(c.encoding, "words");
        assert_eq!(c.faulting_instruction.as_deref(), Some("e5933000"));
    }

    /// A fault right after int3/nop padding: the prologue decodes to 42
    /// one-byte instructions; the window must still hold the fault.
    #[test]
    fn fault_after_padding_is_in_the_window() {
        let mut line = "cc ".repeat(42);
        line.push_str("<8b> 04 25 00 00 00 00 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90");
        let c = parse_code(&line, Some(0x1000), 64);
        assert_eq!(c.instructions.iter().filter(|i| i.offset < 0).count(), 42);
        let w = c.around_fault(16);
        assert_eq!(w.len(), 16);
        let f = w.iter().position(|i| i.faulting).expect("fault in window");
        assert_eq!(w[f].offset, 0);
        assert_eq!(w[f].text, "mov eax,[0]");
        assert_eq!(w.len() - f - 1, 6, "six instructions after the fault");
        // Short dumps are shown whole.
        let c = parse_code("90 90 <cc> 90", None, 64);
        assert_eq!(c.around_fault(16).len(), 4);
    }

    /// An undecodable byte at the marker still gets its row.
    #[test]
    fn undecodable_fault_keeps_its_row() {
        let c = parse_code("90 90 <0f> 0b", None, 32);
        assert!(c.instructions.iter().any(|i| i.faulting), "{c:?}");
        let c = parse_code("90 90 <0f>", None, 64);
        let f = c.instructions.iter().find(|i| i.faulting).expect("row");
        assert_eq!(f.text, "(bad)");
        assert_eq!(f.bytes, "0f");
    }

    #[test]
    fn fused_bytes() {
        let c = parse_code("48 8b15 00 <8b> 30", None, 64);
        assert!(c.damaged);
        assert!(c.faulting_instruction.is_some());
    }
}
