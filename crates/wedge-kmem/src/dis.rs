//! `dis FUNC|ADDR [COUNT]`: kernel text disassembled from the memory
//! source (the text as it ran: alternatives, static calls and ftrace's
//! nops are already patched in a dump), Intel syntax, branch and call
//! targets and RIP-relative operands named by the symbol they point into.

use crate::source::{Fault, KernelMemory, SymbolAt};
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, OpKind, Register};
use serde_json::{json, Value as Json};
use std::fmt::Write;

/// The most instructions `dis ADDR COUNT` decodes.
pub const MAX_INSNS: u64 = 10_000;
/// The most bytes of one function disassembled whole: kallsyms gives a
/// function's end only as the next symbol's start, which after the last
/// symbol of a section can be far away; the largest kernel functions are
/// a few tens of KiB.
pub const MAX_FUNC_BYTES: u64 = 64 << 10;
/// The longest x86 instruction.
const MAX_INSN_LEN: u64 = 15;

/// One decoded instruction.
#[derive(Debug, Clone)]
pub struct Insn {
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// Intel syntax, with `<symbol>` after a branch target or a
    /// RIP-relative operand.
    pub text: String,
    /// A direct call's or jump's target.
    pub target: Option<u64>,
}

/// A disassembly: a whole function, or COUNT instructions from an address.
#[derive(Debug, Clone)]
pub struct Disasm {
    /// The function when disassembling one whole.
    pub function: Option<SymbolAt>,
    /// The address asked for, marked `=>` when inside the function.
    pub marked: Option<u64>,
    pub insns: Vec<Insn>,
    /// Why the listing ends early (a fault, the size cap).
    pub notes: Vec<String>,
    /// Each instruction's `<sym+off>` label when not a whole function.
    labels: Vec<Option<String>>,
}

/// `name` at a symbol's start, `name+0xoff` inside it, as gdb labels a
/// call target (`call 0xffffffff81a0d8e0 <__schedule>`).
fn target_name(mem: &dyn KernelMemory, addr: u64) -> Option<String> {
    let s = mem.symbol_at(addr)?;
    let off = addr.wrapping_sub(s.start);
    let m = s
        .module
        .as_deref()
        .map(|m| format!(" [{m}]"))
        .unwrap_or_default();
    Some(if off == 0 {
        format!("{}{m}", s.name)
    } else {
        format!("{}+{off:#x}{m}", s.name)
    })
}

/// The per-CPU variable a `gs:` operand reads: on x86-64 the kernel points
/// GS at the running CPU's per-CPU area, and `this_cpu_read(var)` compiles
/// to the variable's offset in that area, as an absolute displacement
/// (`gs:[0x1fb80]`, `current_task` on 6.1; `pcpu_hot` from 6.2; `gs:[0x28]`
/// the stack canary in `fixed_percpu_data`) or RIP-relative
/// (`inc gs:[rip+0x72fccd1d]`, `__preempt_count`: the displacement wraps
/// the image's address round to the offset). With a base or index register
/// the displacement is only part of the address, and is not named.
fn per_cpu_operand(mem: &dyn KernelMemory, ins: &Instruction) -> Option<String> {
    if ins.memory_segment() != Register::GS
        || !(0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
    {
        return None;
    }
    let offset = if ins.is_ip_rel_memory_operand() {
        ins.ip_rel_memory_address()
    } else if ins.memory_base() == Register::None && ins.memory_index() == Register::None {
        ins.memory_displacement64()
    } else {
        return None;
    };
    let (name, off) = mem.per_cpu_symbol_at(offset)?;
    Some(if off == 0 {
        name
    } else {
        format!("{name}+{off:#x}")
    })
}

/// Bytes from `addr`, a page at a time, up to the first byte that cannot
/// be read (its fault returned beside what came before).
fn read_text(mem: &dyn KernelMemory, addr: u64, len: u64) -> (Vec<u8>, Option<Fault>) {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let at = addr.wrapping_add(out.len() as u64);
        let n = (4096 - (at & 0xfff)).min(len - out.len() as u64);
        let mut buf = vec![0u8; n as usize];
        if mem.read(at, &mut buf).is_ok() {
            out.extend(buf);
            continue;
        }
        // The page fails: keep the bytes of it that can be read (a source
        // may map less than a page), up to the first that cannot, at most
        // one page of one-byte reads.
        for k in 0..n {
            let mut b = [0u8; 1];
            if let Err(f) = mem.read(at + k, &mut b) {
                return (out, Some(f));
            }
            out.push(b[0]);
        }
    }
    (out, None)
}

fn formatter() -> IntelFormatter {
    let mut f = IntelFormatter::new();
    let o = f.options_mut();
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_uppercase_hex(false);
    o.set_space_after_operand_separator(true);
    o.set_show_branch_size(false);
    o.set_branch_leading_zeros(false);
    f
}

fn decode(mem: &dyn KernelMemory, bytes: &[u8], ip: u64, max: usize) -> Vec<Insn> {
    let mut fmt = formatter();
    let mut dec = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    let mut ins = Instruction::default();
    while dec.can_decode() && out.len() < max {
        let pos = dec.position();
        dec.decode_out(&mut ins);
        let len = ins.len();
        // An instruction cut off by the end of what was read is not shown
        // (the decoder marks it invalid).
        if ins.is_invalid() && pos + MAX_INSN_LEN as usize > bytes.len() {
            break;
        }
        let mut text = String::new();
        if ins.is_invalid() {
            text.push_str("(bad)");
        } else {
            fmt.format(&ins, &mut text);
        }
        let target = matches!(ins.op0_kind(), OpKind::NearBranch64).then(|| ins.near_branch64());
        if let Some(sym) = target.and_then(|t| target_name(mem, t)) {
            let _ = write!(text, " <{sym}>");
        } else if let Some(sym) = per_cpu_operand(mem, &ins) {
            let _ = write!(text, "  # <{sym}> (per-CPU)");
        } else if ins.is_ip_rel_memory_operand() {
            if let Some(sym) = target_name(mem, ins.ip_rel_memory_address()) {
                let _ = write!(text, "  # <{sym}>");
            }
        }
        out.push(Insn {
            addr: ins.ip(),
            bytes: bytes.get(pos..pos + len).unwrap_or_default().to_vec(),
            text,
            target,
        });
    }
    out
}

/// Disassembles the function `addr` is in, from its start to its end
/// (the next symbol, at most [`MAX_FUNC_BYTES`]), marking `addr` when it
/// is not the start; or with `count`, that many instructions from `addr`.
pub fn disassemble(
    mem: &dyn KernelMemory,
    addr: u64,
    count: Option<u64>,
) -> Result<Disasm, String> {
    let mut notes = Vec::new();
    if let Some(n) = count {
        let (bytes, fault) = read_text(mem, addr, n.saturating_mul(MAX_INSN_LEN));
        let insns = decode(mem, &bytes, addr, n as usize);
        if insns.is_empty() {
            return Err(match fault {
                Some(f) => f.to_string(),
                None => format!("nothing to decode at {addr:#x}"),
            });
        }
        if (insns.len() as u64) < n {
            if let Some(f) = fault {
                notes.push(format!("stopped after {} instructions: {f}", insns.len()));
            }
        }
        let labels = insns
            .iter()
            .map(|i| mem.symbol_at(i.addr).map(|s| s.describe(i.addr)))
            .collect();
        return Ok(Disasm {
            function: None,
            marked: None,
            insns,
            notes,
            labels,
        });
    }
    let f = mem.symbol_at(addr).ok_or_else(|| {
        format!("{addr:#x} is in no function: give a COUNT to disassemble from it")
    })?;
    if !f.is_text() {
        return Err(format!(
            "{addr:#x} is in {}, a {} symbol ({}), not a function: give a COUNT to disassemble from it",
            f.describe(addr),
            crate::cmd::kind_word(f.kind),
            f.kind
        ));
    }
    let mut len = f.size.unwrap_or(MAX_FUNC_BYTES);
    if len > MAX_FUNC_BYTES {
        notes.push(format!(
            "{} reaches {len:#x} bytes to the next symbol: only the first {MAX_FUNC_BYTES:#x} shown",
            f.name
        ));
        len = MAX_FUNC_BYTES;
    }
    let (bytes, fault) = read_text(mem, f.start, len);
    if let Some(fl) = fault {
        if bytes.is_empty() {
            return Err(fl.to_string());
        }
        notes.push(format!("stopped after {:#x} bytes: {fl}", bytes.len()));
    }
    let insns = decode(mem, &bytes, f.start, usize::MAX);
    Ok(Disasm {
        marked: (addr != f.start).then_some(addr),
        function: Some(f),
        insns,
        notes,
        labels: Vec::new(),
    })
}

impl Disasm {
    fn is_marked(&self, i: &Insn) -> bool {
        self.marked
            .is_some_and(|m| (i.addr..i.addr + i.bytes.len().max(1) as u64).contains(&m))
    }

    /// As gdb's `disassemble` prints it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.function {
            let m = f
                .module
                .as_deref()
                .map(|m| format!(" [{m}]"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "Dump of assembler code for function {}{m} ({:#x}",
                f.name, f.start
            );
            if let Some(n) = f.size {
                let _ = write!(out, ", {n:#x} bytes");
            }
            out.push_str("):\n");
        }
        for (k, i) in self.insns.iter().enumerate() {
            let mark = if self.is_marked(i) { "=> " } else { "   " };
            let label = match &self.function {
                Some(f) => format!("<+{}>", i.addr.wrapping_sub(f.start)),
                None => self
                    .labels
                    .get(k)
                    .cloned()
                    .flatten()
                    .map(|l| format!("<{l}>"))
                    .unwrap_or_default(),
            };
            let _ = writeln!(out, "{mark}{:#x} {label}:\t{}", i.addr, i.text);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        if self.function.is_some() {
            out.push_str("End of assembler dump.\n");
        }
        out
    }

    /// `{"function", "start", "size", "instructions": [{"address",
    /// "bytes", "text", "target", "marked"}], "notes"}`.
    pub fn json(&self) -> Json {
        let insns: Vec<Json> = self
            .insns
            .iter()
            .map(|i| {
                let hex: String = i.bytes.iter().map(|b| format!("{b:02x}")).collect();
                json!({"address": i.addr, "bytes": hex, "text": i.text,
                       "target": i.target, "marked": self.is_marked(i)})
            })
            .collect();
        json!({
            "function": self.function.as_ref().map(|f| f.name.clone()),
            "start": self.function.as_ref().map(|f| f.start).or(self.insns.first().map(|i| i.addr)),
            "size": self.function.as_ref().and_then(|f| f.size),
            "module": self.function.as_ref().and_then(|f| f.module.clone()),
            "instructions": insns,
            "notes": self.notes,
        })
    }
}
