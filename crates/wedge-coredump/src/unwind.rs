//! Walking a thread's stack with the binaries' call-frame information.
//!
//! framehop evaluates `.eh_frame`/`.debug_frame` rules for the return
//! address and the caller's stack and frame pointers; where a pc lies in no
//! known binary (missing file, JIT code) it falls back to the frame-pointer
//! chain. Only the stack is read, through `read_stack`, so the same code
//! walks a core and a copy of a live thread's stack.

use crate::binaries::{unwind_sections, Binary, Bytes};
use crate::elf::Arch;
use framehop::{FrameAddress, Module, Unwinder};

/// One frame before symbolization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    /// The pc (frame 0) or the return address.
    pub address: u64,
    /// The address to symbolize: a return address minus one, so a call that
    /// is the last instruction of a function is attributed to it.
    pub lookup: u64,
}

/// The start of an unwind: a thread's registers.
#[derive(Debug, Clone, Copy)]
pub struct StartRegs {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
    pub lr: Option<u64>,
}

/// Unwinders for one address space, built once and used for every thread.
pub enum Walker {
    X86_64(framehop::x86_64::UnwinderX86_64<Bytes>),
    Aarch64(framehop::aarch64::UnwinderAarch64<Bytes>),
}

impl Walker {
    pub fn new(arch: Arch, binaries: &[Binary]) -> Walker {
        let mut w = match arch {
            Arch::X86_64 => Walker::X86_64(framehop::x86_64::UnwinderX86_64::new()),
            Arch::Aarch64 => Walker::Aarch64(framehop::aarch64::UnwinderAarch64::new()),
        };
        for b in binaries {
            let (Some(bias), Some(info)) = (b.bias, unwind_sections(b)) else {
                continue;
            };
            let m = Module::new(b.path.clone(), b.range.clone(), bias, info);
            match &mut w {
                Walker::X86_64(u) => u.add_module(m),
                Walker::Aarch64(u) => u.add_module(m),
            }
        }
        w
    }

    /// Walks one stack. Returns the frames and, when the walk did not reach
    /// the outermost frame, why it stopped.
    pub fn walk(
        &self,
        regs: StartRegs,
        max_frames: usize,
        read_stack: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> (Vec<RawFrame>, Option<String>) {
        let mut read = |a: u64| read_stack(a).ok_or(());
        let mut out = Vec::new();
        let stop = match self {
            Walker::X86_64(u) => {
                let mut cache = framehop::x86_64::CacheX86_64::<_>::new();
                let r = framehop::x86_64::UnwindRegsX86_64::new(regs.pc, regs.sp, regs.fp);
                let mut it = u.iter_frames(regs.pc, r, &mut cache, &mut read);
                collect(&mut || it.next(), max_frames, &mut out)
            }
            Walker::Aarch64(u) => {
                let mut cache = framehop::aarch64::CacheAarch64::<_>::new();
                let r = framehop::aarch64::UnwindRegsAarch64::new(
                    regs.lr.unwrap_or(0),
                    regs.sp,
                    regs.fp,
                );
                let mut it = u.iter_frames(regs.pc, r, &mut cache, &mut read);
                collect(&mut || it.next(), max_frames, &mut out)
            }
        };
        (out, stop)
    }
}

fn collect(
    next: &mut dyn FnMut() -> Result<Option<FrameAddress>, framehop::Error>,
    max_frames: usize,
    out: &mut Vec<RawFrame>,
) -> Option<String> {
    loop {
        if out.len() >= max_frames {
            return Some(format!("stopped after {max_frames} frames (--max-frames)"));
        }
        match next() {
            Ok(Some(f)) => {
                let address = f.address();
                // Return address 0 or a tiny one ends a stack that has no
                // CFI marking its outermost frame (musl, hand-written _start).
                if f.is_return_address() && address < 4096 {
                    return None;
                }
                out.push(RawFrame {
                    address,
                    lookup: f.address_for_lookup(),
                });
            }
            Ok(None) => return None,
            Err(e) => {
                // framehop reports the normal end of a frame-pointer chain
                // (a zero frame pointer at _start or clone) as an error too.
                let s = e.to_string();
                if out.len() > 1 && (s.contains("null") || s.contains("zero")) {
                    return None;
                }
                return Some(s);
            }
        }
    }
}
