//! Kernel stack unwinding with the ORC tables the kernel carries in memory
//! (CONFIG_UNWINDER_ORC, x86-64 default since 4.14).
//!
//! `__start_orc_unwind_ip[]` holds i32 offsets, each relative to its own
//! address, of the instruction where an entry starts; `__start_orc_unwind[]`
//! holds the matching 6-byte `orc_entry { s16 sp_offset; s16 bp_offset;
//! bitfields }`. The bitfields changed in 6.4 (objtool's "signal" bit and
//! the UNDEFINED/END_OF_STACK types replaced the `end` bit):
//! - before 6.4: sp_reg:4, bp_reg:4, type:2 (CALL 0, REGS 1,
//!   REGS_PARTIAL 2), end:1;
//! - 6.4+: sp_reg:4, bp_reg:4, type:3 (UNDEFINED 0, END_OF_STACK 1, CALL 2,
//!   REGS 3, REGS_PARTIAL 4), signal:1.
//!
//! The walk follows `arch/x86/kernel/unwind_orc.c`: find the entry of the
//! current ip (ip−1 for a return address, so a call at the end of a
//! function is attributed to it), compute the caller's stack pointer from
//! sp_reg+sp_offset, then read the return address below it (CALL), or a
//! `pt_regs` at it (REGS: an interrupt, exception or syscall entry).

use crate::error::Result;
use crate::mem::VirtMem;
use crate::notes::CpuRegs;

const REG_UNDEFINED: u8 = 0;
const REG_PREV_SP: u8 = 1;
const REG_DX: u8 = 2;
const REG_DI: u8 = 3;
const REG_BP: u8 = 4;
const REG_SP: u8 = 5;
const REG_R10: u8 = 6;
const REG_R13: u8 = 7;
const REG_BP_INDIRECT: u8 = 8;
const REG_SP_INDIRECT: u8 = 9;

/// `offsetof(struct pt_regs, ip)`: an IRET frame starts there.
const IRET_FRAME_OFFSET: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrcType {
    Undefined,
    EndOfStack,
    Call,
    Regs,
    RegsPartial,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    sp_offset: i16,
    bp_offset: i16,
    sp_reg: u8,
    bp_reg: u8,
    ty: OrcType,
    signal: bool,
}

/// The vmlinux ORC tables, and those of loaded modules.
pub struct Orc {
    ips: Vec<u64>,
    raw: Vec<u8>,
    new_layout: bool,
    /// Per module: its text range and tables, by text address.
    modules: Vec<ModuleOrc>,
}

struct ModuleOrc {
    start: u64,
    end: u64,
    ips: Vec<u64>,
    raw: Vec<u8>,
}

/// Reads `n` entries: the i32 ip offsets (each relative to its own
/// address) as absolute ips, and the 6-byte entries.
fn read_tables(
    mem: &dyn VirtMem,
    ip_tab: u64,
    orc_tab: u64,
    n: usize,
) -> Result<(Vec<u64>, Vec<u8>)> {
    let ipb = mem.read_vec(ip_tab, n * 4)?;
    let raw = mem.read_vec(orc_tab, n * 6)?;
    let ips = ipb
        .chunks_exact(4)
        .enumerate()
        .map(|(i, b)| {
            let rel = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            ip_tab
                .wrapping_add(4 * i as u64)
                .wrapping_add(rel as i64 as u64)
        })
        .collect();
    Ok((ips, raw))
}

impl Orc {
    /// Loads the tables from `[start_ip, stop_ip)` and `start_orc`.
    pub fn load(
        mem: &dyn VirtMem,
        start_ip: u64,
        stop_ip: u64,
        start_orc: u64,
        new_layout: bool,
    ) -> Result<Orc> {
        let n = (stop_ip.saturating_sub(start_ip) / 4) as usize;
        let (ips, raw) = read_tables(mem, start_ip, start_orc, n)?;
        Ok(Orc {
            ips,
            raw,
            new_layout,
            modules: Vec::new(),
        })
    }

    /// Adds a module's tables for its text `[start, end)`. The kernel sorts
    /// them when it loads the module (`unwind_module_init`); they are
    /// sorted again here in case the dump caught a load half-way.
    pub fn add_module(
        &mut self,
        mem: &dyn VirtMem,
        start: u64,
        end: u64,
        ip_tab: u64,
        orc_tab: u64,
        n: u32,
    ) -> Result<()> {
        let n = n.min(1 << 20) as usize;
        let (ips, raw) = read_tables(mem, ip_tab, orc_tab, n)?;
        let (ips, raw) = if ips.is_sorted() {
            (ips, raw)
        } else {
            let mut idx: Vec<usize> = (0..ips.len()).collect();
            idx.sort_by_key(|&i| ips[i]);
            let sorted_raw = idx
                .iter()
                .flat_map(|&i| raw[6 * i..6 * i + 6].to_vec())
                .collect();
            (idx.iter().map(|&i| ips[i]).collect(), sorted_raw)
        };
        let at = self.modules.partition_point(|m| m.start < start);
        self.modules.insert(
            at,
            ModuleOrc {
                start,
                end,
                ips,
                raw,
            },
        );
        Ok(())
    }

    fn find(&self, ip: u64) -> Option<Entry> {
        // An address in a module's text is looked up in that module's
        // table only: vmlinux's last entry would otherwise claim it.
        let m = self.modules.partition_point(|m| m.start <= ip);
        let (ips, raw) = match m.checked_sub(1).map(|i| &self.modules[i]) {
            Some(m) if ip < m.end => (&m.ips, &m.raw),
            _ => (&self.ips, &self.raw),
        };
        // The table is sorted by ip (the kernel sorts it at boot for
        // vmlinux and at build time since 5.x).
        let i = ips.partition_point(|&x| x <= ip).checked_sub(1)?;
        let b = raw.get(6 * i..6 * i + 6)?;
        let sp_offset = i16::from_le_bytes([b[0], b[1]]);
        let bp_offset = i16::from_le_bytes([b[2], b[3]]);
        let bits = u16::from_le_bytes([b[4], b[5]]);
        let sp_reg = (bits & 0xf) as u8;
        let bp_reg = ((bits >> 4) & 0xf) as u8;
        let (ty, signal) = if self.new_layout {
            let ty = match (bits >> 8) & 7 {
                0 => OrcType::Undefined,
                1 => OrcType::EndOfStack,
                2 => OrcType::Call,
                3 => OrcType::Regs,
                4 => OrcType::RegsPartial,
                _ => OrcType::Undefined,
            };
            (ty, (bits >> 11) & 1 == 1)
        } else {
            let end = (bits >> 10) & 1 == 1;
            let ty = match (bits >> 8) & 3 {
                _ if sp_reg == REG_UNDEFINED && end => OrcType::EndOfStack,
                _ if sp_reg == REG_UNDEFINED => OrcType::Undefined,
                0 => OrcType::Call,
                1 => OrcType::Regs,
                2 => OrcType::RegsPartial,
                _ => OrcType::Undefined,
            };
            (ty, matches!(ty, OrcType::Regs | OrcType::RegsPartial))
        };
        Some(Entry {
            sp_offset,
            bp_offset,
            sp_reg,
            bp_reg,
            ty,
            signal,
        })
    }
}

/// Unwinder state.
#[derive(Debug, Clone, Copy)]
pub struct State {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// `ip` is exact (interrupted instruction), not a return address.
    pub signal: bool,
    /// Full registers (at the start, or from a pt_regs on the stack).
    pub regs: Option<CpuRegs>,
}

/// Why a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The bottom: user-mode registers or the entry of a kernel thread.
    End,
    /// Something did not add up; the frames so far are still valid.
    Error(String),
}

fn read_regs(mem: &dyn VirtMem, at: u64) -> Result<CpuRegs> {
    let b = mem.read_vec(at, 168)?;
    let r = |i: usize| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap_or_default());
    Ok(CpuRegs {
        r15: r(0),
        r14: r(1),
        r13: r(2),
        r12: r(3),
        bp: r(4),
        bx: r(5),
        r11: r(6),
        r10: r(7),
        r9: r(8),
        r8: r(9),
        ax: r(10),
        cx: r(11),
        dx: r(12),
        si: r(13),
        di: r(14),
        orig_ax: r(15),
        ip: r(16),
        cs: r(17),
        flags: r(18),
        sp: r(19),
        ss: r(20),
        gs_base: 0,
    })
}

/// Walks from `start`; returns the ips (innermost first) and why it stopped.
pub fn unwind(orc: &Orc, mem: &dyn VirtMem, start: State, max: usize) -> (Vec<u64>, Stop) {
    unwind_with(orc, mem, start, max, &|_| None)
}

/// The start of the function an address is in (kallsyms), for
/// [`unwind_with`].
pub type FuncStart<'a> = &'a dyn Fn(u64) -> Option<u64>;

/// Words above the stack pointer searched for the return address of a
/// function without ORC data: more than any such frame in the kernel
/// (__crash_kexec's is 0xc0 bytes, a pt_regs and the stack canary).
const NO_ORC_SCAN: u64 = 1024;

/// [`unwind`], and where the ip is in a function objtool left without ORC
/// data, finds its caller by the return address of a direct call to it
/// (see [`caller_without_orc`]); `func_start` gives function starts.
pub fn unwind_with(
    orc: &Orc,
    mem: &dyn VirtMem,
    start: State,
    max: usize,
    func_start: FuncStart,
) -> (Vec<u64>, Stop) {
    let (states, stop) = unwind_states(orc, mem, start, max, func_start);
    (states.into_iter().map(|s| s.ip).collect(), stop)
}

/// As [`unwind_with`], with each frame's whole state: what DWARF needs to
/// read a frame's variables (its stack pointer, and the registers of a
/// pt_regs frame).
pub fn unwind_states(
    orc: &Orc,
    mem: &dyn VirtMem,
    start: State,
    max: usize,
    func_start: FuncStart,
) -> (Vec<State>, Stop) {
    let mut out = vec![start];
    while out.len() < max {
        let st = out[out.len() - 1];
        let next = match step(orc, mem, &st) {
            Err(e) if e.starts_with(NO_UNWIND_INFO) => {
                caller_without_orc(orc, mem, &st, func_start)
                    .map(Some)
                    .ok_or(e)
            }
            r => r,
        };
        match next {
            Ok(Some(next)) => out.push(next),
            Ok(None) => return (out, Stop::End),
            Err(e) => return (out, Stop::Error(e)),
        }
    }
    (out, Stop::Error(format!("more than {max} frames")))
}

/// How [`step`]'s errors start when the ip has no usable ORC entry.
const NO_UNWIND_INFO: &str = "ORC: undefined unwind info";

/// The caller of a function objtool gave no ORC data. Such functions are
/// marked STACK_FRAME_NON_STANDARD; the one every kexec crash dump starts
/// in is `__crash_kexec`: `crash_setup_regs` saves the panicking CPU's
/// registers there with inline asm (the NT_PRSTATUS note of that CPU), and
/// its whole body is one undefined ORC entry. Its frame is the caller's
/// stack above `sp` up to the return address. That address is found as a
/// word above `sp` that follows a direct `call` (e8 rel32) to the start of
/// the function the ip is in, in text that has ORC data: an exact test
/// (a stale pointer to code is not preceded by a call to this very
/// function), bounded by [`NO_ORC_SCAN`] bytes of stack.
fn caller_without_orc(
    orc: &Orc,
    mem: &dyn VirtMem,
    st: &State,
    func_start: FuncStart,
) -> Option<State> {
    let target = func_start(st.ip)?;
    let words = mem.read_vec(st.sp, NO_ORC_SCAN as usize).ok().or_else(|| {
        // The stack may end within the window: the rest of its page.
        let to_page = 4096 - (st.sp & 4095);
        mem.read_vec(st.sp, to_page as usize).ok()
    })?;
    for (i, w) in words.chunks_exact(8).enumerate() {
        let ret = u64::from_le_bytes(w.try_into().ok()?);
        if ret < 5 || ret >> 47 != 0x1_ffff {
            continue; // not a kernel address
        }
        let Ok(call) = mem.read_vec(ret - 5, 5) else {
            continue;
        };
        let rel = i32::from_le_bytes([call[1], call[2], call[3], call[4]]);
        if call[0] != 0xe8 || ret.wrapping_add(rel as i64 as u64) != target {
            continue;
        }
        if !orc
            .find(ret - 1)
            .is_some_and(|e| !matches!(e.ty, OrcType::Undefined))
        {
            continue;
        }
        return Some(State {
            ip: ret,
            sp: st.sp + 8 * i as u64 + 8,
            // Callee-saved: unless the function saved and changed it, it is
            // still the caller's; ORC of the caller rarely needs it.
            bp: st.bp,
            signal: false,
            regs: None,
        });
    }
    None
}

fn step(orc: &Orc, mem: &dyn VirtMem, st: &State) -> std::result::Result<Option<State>, String> {
    let look = if st.signal {
        st.ip
    } else {
        st.ip.wrapping_sub(1)
    };
    let e = orc
        .find(look)
        .ok_or_else(|| format!("no ORC entry for {:#x}", st.ip))?;
    match e.ty {
        OrcType::EndOfStack => return Ok(None),
        OrcType::Undefined => return Err(format!("{NO_UNWIND_INFO} at {:#x}", st.ip)),
        _ => {}
    }
    let rd = |a: u64| {
        mem.u64(a)
            .map_err(|err| format!("stack read at {a:#x}: {err}"))
    };
    let reg = |name: &str, f: fn(&CpuRegs) -> u64| {
        st.regs
            .as_ref()
            .map(f)
            .ok_or_else(|| format!("ORC needs register {name} at {:#x}, not saved", st.ip))
    };
    let off = e.sp_offset as i64 as u64;
    let sp = match e.sp_reg {
        REG_SP => st.sp.wrapping_add(off),
        REG_BP => st.bp.wrapping_add(off),
        REG_SP_INDIRECT => rd(st.sp)?.wrapping_add(off),
        REG_BP_INDIRECT => rd(st.bp.wrapping_add(off))?,
        REG_R10 => reg("r10", |r| r.r10)?,
        REG_R13 => reg("r13", |r| r.r13)?,
        REG_DI => reg("di", |r| r.di)?,
        REG_DX => reg("dx", |r| r.dx)?,
        other => return Err(format!("ORC sp_reg {other} at {:#x}", st.ip)),
    };
    let (ip, new_sp, regs, signal) = match e.ty {
        OrcType::Call => (rd(sp.wrapping_sub(8))?, sp, None, false),
        OrcType::Regs => {
            let r = read_regs(mem, sp).map_err(|err| format!("pt_regs at {sp:#x}: {err}"))?;
            if r.cs & 3 != 0 {
                return Ok(None); // user mode: the syscall entry is the bottom
            }
            (r.ip, r.sp, Some(r), true)
        }
        OrcType::RegsPartial => {
            let base = sp.wrapping_sub(IRET_FRAME_OFFSET);
            let ip = rd(sp)?;
            let cs = rd(sp + 8)?;
            if cs & 3 != 0 {
                return Ok(None);
            }
            let nsp = rd(sp + 24)?;
            let _ = base;
            (ip, nsp, None, true)
        }
        _ => unreachable!("handled above"),
    };
    let bp = match e.bp_reg {
        REG_UNDEFINED => regs.map_or(st.bp, |r| r.bp),
        REG_PREV_SP => rd(sp.wrapping_add(e.bp_offset as i64 as u64))?,
        REG_BP => rd(st.bp.wrapping_add(e.bp_offset as i64 as u64))?,
        other => return Err(format!("ORC bp_reg {other} at {:#x}", st.ip)),
    };
    let _ = e.signal;
    if ip == 0 {
        return Ok(None);
    }
    // Stacks grow down: a caller's frame is above. Switching from an IRQ or
    // exception stack to the task stack may go anywhere, but only through
    // a pt_regs frame.
    let switches_stack = matches!(e.sp_reg, REG_SP_INDIRECT | REG_BP_INDIRECT);
    if regs.is_none() && e.ty == OrcType::Call && !switches_stack && new_sp <= st.sp {
        return Err(format!(
            "stack pointer went down ({:#x} → {new_sp:#x})",
            st.sp
        ));
    }
    Ok(Some(State {
        ip,
        sp: new_sp,
        bp,
        signal,
        regs,
    }))
}
