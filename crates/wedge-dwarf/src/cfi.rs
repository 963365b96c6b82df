//! Caller registers from the vmlinux's `.debug_frame` (the kernel is built
//! with -fno-asynchronous-unwind-tables, so no .eh_frame; with -g the
//! compiler still writes .debug_frame). ORC, which the dump carries, says
//! how to find the caller's stack pointer and return address only; CFI
//! also says where each callee-saved register was spilled, which is what a
//! caller's variables in rbx or r12–r15 need.

use crate::info::{Dwarf, R};
use crate::ReadMem;
use gimli::{CfaRule, RegisterRule, UnwindSection};

/// Registers by DWARF number (x86-64: rax rdx rcx rbx rsi rdi rbp rsp,
/// r8–r15, then 16 = the return address / rip); `None` when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs(pub [Option<u64>; 17]);

pub const RBX: usize = 3;
pub const RBP: usize = 6;
pub const RSP: usize = 7;
/// The System V ABI's callee-saved registers: a rule-less one keeps its
/// value in the caller (drgn's default row for x86-64 does the same).
const CALLEE_SAVED: [usize; 6] = [RBX, RBP, 12, 13, 14, 15];

impl Regs {
    pub fn get(&self, n: u16) -> Option<u64> {
        self.0.get(n as usize).copied().flatten()
    }
}

impl Dwarf {
    /// Start address, length and offset of every FDE, sorted: .debug_frame
    /// has no search table, and a linear scan per frame would read 2.6 MB.
    fn fdes(&self) -> &Vec<(u64, u64, gimli::DebugFrameOffset)> {
        self.fdes.get_or_init(|| {
            let bases = gimli::BaseAddresses::default();
            let mut v = Vec::new();
            let mut entries = self.frame.entries(&bases);
            while let Ok(Some(e)) = entries.next() {
                if let gimli::CieOrFde::Fde(p) = e {
                    let off = gimli::DebugFrameOffset(p.offset());
                    if let Ok(f) = p.parse(gimli::DebugFrame::cie_from_offset) {
                        if f.len() > 0 {
                            v.push((f.initial_address(), f.len(), off));
                        }
                    }
                }
            }
            v.sort_by_key(|f| f.0);
            v
        })
    }

    /// The CFA (the caller's stack pointer) and the caller's registers, for
    /// a frame at link-time lookup address `pc` with registers `regs`.
    /// `None` when no FDE covers `pc` or the rule needs what is unknown.
    pub fn cfi_step(&self, pc: u64, regs: &Regs, read: ReadMem) -> Option<(u64, Regs)> {
        let fdes = self.fdes();
        let i = fdes.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        let (start, len, off) = fdes[i];
        if pc >= start.saturating_add(len) {
            return None;
        }
        let bases = gimli::BaseAddresses::default();
        let fde = self
            .frame
            .fde_from_offset(&bases, off, gimli::DebugFrame::cie_from_offset)
            .ok()?;
        let mut ctx = gimli::UnwindContext::<<R as gimli::Reader>::Offset>::new();
        let row = fde
            .unwind_info_for_address(&self.frame, &bases, &mut ctx, pc)
            .ok()?;
        let cfa = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                regs.get(register.0)?.wrapping_add(*offset as u64)
            }
            CfaRule::Expression(_) => return None,
        };
        let rd = |a: u64| {
            let mut b = [0u8; 8];
            read(a, &mut b).then(|| u64::from_le_bytes(b))
        };
        let mut out = Regs::default();
        for r in CALLEE_SAVED {
            out.0[r] = regs.0[r];
        }
        out.0[RSP] = Some(cfa);
        for (reg, rule) in row.registers() {
            let n = reg.0 as usize;
            if n >= out.0.len() {
                continue;
            }
            out.0[n] = match rule {
                RegisterRule::Undefined => None,
                RegisterRule::SameValue => regs.0[n],
                RegisterRule::Offset(o) => rd(cfa.wrapping_add(*o as u64)),
                RegisterRule::ValOffset(o) => Some(cfa.wrapping_add(*o as u64)),
                RegisterRule::Register(r) => regs.get(r.0),
                _ => None,
            };
        }
        Some((cfa, out))
    }
}
