//! Kernel stacks of tasks: where to start, and frames with names.

use crate::kallsyms::Kallsyms;
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use crate::modules::Modules;
use crate::notes::CpuRegs;
use crate::orc::{unwind_with, Orc, State, Stop};
use crate::tasks::Task;
use serde::Serialize;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub addr: u64,
    pub function: Option<String>,
    pub offset: u64,
    pub size: u64,
    pub module: Option<String>,
    /// In the scheduler's or locking primitives' text (`__sched`,
    /// `__lockfunc`): /proc/PID/stack and wchan leave these out.
    pub sched: bool,
}

/// A walked stack.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub frames: Vec<Frame>,
    /// Why the walk stopped early, if it did.
    pub error: Option<String>,
    /// Registers came from the CPU's note (a task that was running).
    pub from_cpu: Option<usize>,
}

/// The most frames a walk returns: more than any kernel stack holds (16 KiB
/// of THREAD_SIZE); a stack rewritten under the walk stops here, not in a loop.
pub const MAX_FRAMES: usize = 128;

/// A walked stack with each frame's unwinder state.
#[derive(Debug, Clone)]
pub struct TaskStates {
    pub states: Vec<State>,
    pub error: Option<String>,
    pub from_cpu: Option<usize>,
}

/// Text ranges whose functions /proc hides (`in_sched_functions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedText {
    ranges: [(u64, u64); 2],
}

impl SchedText {
    pub fn new(k: &Kernel) -> SchedText {
        SchedText::from_syms(&k.syms)
    }

    /// From a symbol table alone (the running kernel's /proc/kallsyms).
    pub fn from_syms(syms: &Kallsyms) -> SchedText {
        let r = |a: &str, b: &str| match (syms.addr(a), syms.addr(b)) {
            (Some(a), Some(b)) => (a, b),
            _ => (0, 0),
        };
        SchedText {
            ranges: [
                r("__sched_text_start", "__sched_text_end"),
                r("__lock_text_start", "__lock_text_end"),
            ],
        }
    }
    pub fn contains(&self, a: u64) -> bool {
        self.ranges.iter().any(|&(s, e)| a >= s && a < e)
    }
}

/// Symbolizes one address.
pub fn frame(k: &Kernel, sched: &SchedText, addr: u64) -> Frame {
    frame_in(&k.syms, &k.modules, sched, addr)
}

/// [`frame`] from a symbol table and modules alone (the running kernel's).
pub fn frame_in(syms: &Kallsyms, modules: &Modules, sched: &SchedText, addr: u64) -> Frame {
    match syms.lookup(addr) {
        Some((s, off, size)) => Frame {
            addr,
            function: Some(s.name.clone()),
            offset: off,
            size,
            module: None,
            sched: sched.contains(addr),
        },
        None => match modules.lookup(addr) {
            Some((name, off, size, module)) => Frame {
                addr,
                function: Some(name.to_string()),
                offset: off,
                size,
                module: Some(module.to_string()),
                sched: false,
            },
            None => Frame {
                addr,
                function: None,
                offset: 0,
                size: 0,
                module: None,
                sched: false,
            },
        },
    }
}

/// `struct inactive_task_frame` on x86-64: r15 r14 r13 r12 bx bp ret_addr
/// (the callee-saved registers `__switch_to_asm` pushes, above the return
/// address into `__schedule`). `thread.sp` points at it.
const FRAME_BP: u64 = 5 * 8;
const FRAME_RET: u64 = 6 * 8;
const FRAME_SIZE: u64 = 7 * 8;

/// Where a task's stack walk starts: the CPU's registers when it was
/// running, else the context `__switch_to_asm` saved (`thread.sp`).
pub fn start_state(
    k: &Kernel,
    task: &Task,
    cpu_regs: Option<(usize, &CpuRegs)>,
) -> Result<State, String> {
    if let Some((_, r)) = cpu_regs {
        return Ok(regs_state(r));
    }
    switched_out_state(&k.mem, &k.syms, task.saved_sp)
}

/// Where the walk of a task that is not running starts: the
/// `inactive_task_frame` at its saved stack pointer `fp` (`thread.sp`),
/// over any kernel memory. A task that has never run yet returns to
/// `ret_from_fork`, whose first instruction is exact, not a return address.
pub fn switched_out_state(mem: &dyn VirtMem, syms: &Kallsyms, fp: u64) -> Result<State, String> {
    let (ip, bp) = match (mem.u64(fp + FRAME_RET), mem.u64(fp + FRAME_BP)) {
        (Ok(ip), Ok(bp)) => (ip, bp),
        (Err(e), _) | (_, Err(e)) => return Err(format!("saved context at {fp:#x}: {e}")),
    };
    let ret_from_fork = syms.addr("ret_from_fork");
    Ok(State {
        ip,
        sp: fp + FRAME_SIZE,
        bp,
        signal: Some(ip) == ret_from_fork,
        regs: None,
    })
}

/// Each frame's unwinder state for a task (see [`start_state`]), and why
/// the walk stopped early, if it did.
pub fn task_states(
    k: &Kernel,
    orc: &Orc,
    task: &Task,
    cpu_regs: Option<(usize, &CpuRegs)>,
) -> Result<(Vec<State>, Option<String>), String> {
    if task.stack_base == 0
        || (task.exit_state != 0 && cpu_regs.is_none())
        || cpu_regs.is_some_and(|(_, r)| user_mode(r))
    {
        return Ok((vec![], None));
    }
    let start = start_state(k, task, cpu_regs)?;
    let func_start = |ip: u64| func_start(k, ip);
    let (states, stop) = crate::orc::unwind_states(orc, &k.mem, start, MAX_FRAMES, &func_start);
    Ok((
        states,
        match stop {
            Stop::End => None,
            Stop::Error(e) => Some(e),
        },
    ))
}

/// Walks one task's kernel stack. `cpu_regs` are the registers of the CPU
/// it was running on, when it was running (the crashing CPU's note, or
/// QEMU's record of each vCPU).
pub fn task_stack(
    k: &Kernel,
    orc: &Orc,
    sched: &SchedText,
    task: &Task,
    cpu_regs: Option<(usize, &CpuRegs)>,
) -> Stack {
    // A zombie's stack is freed once it has scheduled for the last time
    // (THREAD_INFO_IN_TASK: `put_task_stack` in finish_task_switch), and
    // /proc shows it empty.
    if task.stack_base == 0 || (task.exit_state != 0 && cpu_regs.is_none()) {
        return Stack {
            frames: vec![],
            error: None,
            from_cpu: None,
        };
    }
    if let Some((cpu, r)) = cpu_regs {
        if user_mode(r) {
            return in_user_mode(cpu);
        }
    }
    let start = match start_state(k, task, cpu_regs) {
        Ok(s) => s,
        Err(e) => {
            return Stack {
                frames: vec![],
                error: Some(e),
                from_cpu: None,
            }
        }
    };
    walk(k, orc, sched, start, cpu_regs.map(|(i, _)| i))
}

/// The CPU was running user code (CPL 3 in the saved `cs`): the task's
/// kernel stack holds nothing but the entry's pt_regs, and /proc shows it
/// empty.
fn user_mode(r: &CpuRegs) -> bool {
    r.cs & 3 != 0
}

fn in_user_mode(cpu: usize) -> Stack {
    Stack {
        frames: vec![],
        error: None,
        from_cpu: Some(cpu),
    }
}

/// Where a walk from a CPU's saved registers starts: the exact ip.
fn regs_state(r: &CpuRegs) -> State {
    State {
        ip: r.ip,
        sp: r.sp,
        bp: r.bp,
        signal: true,
        regs: Some(*r),
    }
}

/// The stack CPU `cpu` was running when its registers were saved (its
/// NT_PRSTATUS note: on a kexec crash dump the panicking CPU's come from
/// `crash_setup_regs` in `__crash_kexec`, every other CPU's from the NMI
/// `crash_nmi_callback` stopped it with): whatever task it ran, including
/// the idle tasks of secondary CPUs, which no task list holds.
pub fn cpu_stack(k: &Kernel, orc: &Orc, sched: &SchedText, cpu: usize, r: &CpuRegs) -> Stack {
    if user_mode(r) {
        return in_user_mode(cpu);
    }
    walk(k, orc, sched, regs_state(r), Some(cpu))
}

/// The start of the function `ip` is in (kallsyms): the unwinder steps
/// out of functions without ORC data by it (__crash_kexec, where a kexec
/// dump's panicking CPU's registers were saved).
fn func_start(k: &Kernel, ip: u64) -> Option<u64> {
    func_start_in(&k.syms, ip)
}

/// [`func_start`] from a symbol table alone.
pub fn func_start_in(syms: &Kallsyms, ip: u64) -> Option<u64> {
    syms.lookup(ip).map(|(_, off, _)| ip - off)
}

fn walk(k: &Kernel, orc: &Orc, sched: &SchedText, start: State, cpu: Option<usize>) -> Stack {
    let func_start = |ip: u64| func_start(k, ip);
    let (ips, stop) = unwind_with(orc, &k.mem, start, MAX_FRAMES, &func_start);
    Stack {
        frames: ips.into_iter().map(|a| frame(k, sched, a)).collect(),
        error: match stop {
            Stop::End => None,
            Stop::Error(e) => Some(e),
        },
        from_cpu: cpu,
    }
}
