//! The task list: `init_task.tasks` links every thread-group leader;
//! `signal->thread_head` / `thread_node` links the threads of each group.
//! Offsets come from BTF, so one reader serves every kernel version.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use serde::Serialize;
use wedge_kernel::TaskState;

/// The scheduler's state bits and their decoding are kernel vocabulary
/// shared with the live BPF source: one copy, in wedge-kernel.
pub use wedge_kernel::state::{bits, decode_state};

/// How a sleeping task sleeps is kernel vocabulary shared with /proc's model:
/// the one enum lives in wedge-kernel, so a dump's thread and a live thread
/// carry the same type (no converter to drift).
pub use wedge_kernel::SleepKind;

/// Offsets into the structures the walk reads.
#[derive(Debug, Clone)]
pub struct Layout {
    pub tasks: u64,
    pub pid: u64,
    pub tgid: u64,
    pub comm: u64,
    /// `__state` (u32) since 5.14; `state` (long) before.
    pub state: u64,
    pub state_is_long: bool,
    pub exit_state: u64,
    pub flags: u64,
    pub real_parent: u64,
    pub signal: u64,
    pub thread_node: Option<u64>,
    pub thread_head: Option<u64>,
    pub pending_signal: u64,
    pub shared_pending_signal: u64,
    pub blocked: u64,
    pub stack: u64,
    pub thread_sp: u64,
    pub on_cpu: Option<u64>,
    /// `thread_info.cpu` (5.16+ with THREAD_INFO_IN_TASK) or `cpu`.
    pub cpu: Option<u64>,
    pub last_arrival: Option<u64>,
    pub thread_pid: Option<u64>,
    pub pid_level: Option<u64>,
    pub pid_numbers: Option<u64>,
    pub upid_size: u64,
    pub nvcsw: Option<u64>,
    pub nivcsw: Option<u64>,
    pub sum_exec_runtime: Option<u64>,
    pub run_delay: Option<u64>,
    pub utime: Option<u64>,
    pub stime: Option<u64>,
    pub start_time: Option<u64>,
    pub exit_code: Option<u64>,
    /// `in_iowait`, a one-bit bit-field: its bit offset in task_struct.
    pub in_iowait_bit: Option<u64>,
}

impl Layout {
    pub fn from_btf(k: &Kernel) -> Result<Layout> {
        let b = k.btf()?;
        let ts = |p: &str| b.offset_of("task_struct", p);
        let req = |p: &str| {
            ts(p).ok_or_else(|| Error::Missing {
                what: format!("task_struct.{p} in BTF"),
            })
        };
        let (state, state_is_long) = match ts("__state") {
            Some(o) => (o, false),
            None => (req("state")?, true),
        };
        Ok(Layout {
            tasks: req("tasks")?,
            pid: req("pid")?,
            tgid: req("tgid")?,
            comm: req("comm")?,
            state,
            state_is_long,
            exit_state: req("exit_state")?,
            flags: req("flags")?,
            real_parent: req("real_parent")?,
            signal: req("signal")?,
            thread_node: ts("thread_node"),
            thread_head: b.offset_of("signal_struct", "thread_head"),
            pending_signal: req("pending.signal")?,
            shared_pending_signal: b
                .offset_of("signal_struct", "shared_pending.signal")
                .ok_or_else(|| Error::Missing {
                    what: "signal_struct.shared_pending in BTF".into(),
                })?,
            blocked: req("blocked")?,
            stack: req("stack")?,
            thread_sp: req("thread.sp")?,
            on_cpu: ts("on_cpu"),
            cpu: ts("thread_info.cpu").or_else(|| ts("cpu")),
            last_arrival: ts("sched_info.last_arrival"),
            thread_pid: ts("thread_pid"),
            pid_level: b.offset_of("pid", "level"),
            pid_numbers: b.offset_of("pid", "numbers"),
            upid_size: b
                .find_struct("upid")
                .and_then(|id| b.size_of(id))
                .unwrap_or(16),
            nvcsw: ts("nvcsw"),
            nivcsw: ts("nivcsw"),
            sum_exec_runtime: ts("se.sum_exec_runtime"),
            run_delay: ts("sched_info.run_delay"),
            utime: ts("utime"),
            stime: ts("stime"),
            start_time: ts("start_time"),
            exit_code: ts("exit_code"),
            in_iowait_bit: b
                .find_struct("task_struct")
                .and_then(|id| b.member(id, "in_iowait"))
                .map(|m| m.bit_offset),
        })
    }
}

/// One task as read from the dump.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub addr: u64,
    pub pid: i32,
    pub tgid: i32,
    pub comm: String,
    /// Raw `__state` and `exit_state`.
    pub state_raw: u32,
    pub exit_state: u32,
    pub state: TaskState,
    pub sleep: Option<SleepKind>,
    pub flags: u32,
    pub ppid: i32,
    pub pending: u64,
    pub shared_pending: u64,
    pub blocked: u64,
    pub cpu: Option<u32>,
    pub on_cpu: bool,
    /// `sched_info.last_arrival`: when it last got a CPU (rq clock, ns).
    pub last_arrival_ns: Option<u64>,
    /// Pids from the root namespace inward.
    pub ns_pids: Vec<i32>,
    pub stack_base: u64,
    pub saved_sp: u64,
    pub nvcsw: Option<u64>,
    pub nivcsw: Option<u64>,
    pub run_ns: Option<u64>,
    pub wait_ns: Option<u64>,
    pub utime_ns: Option<u64>,
    pub stime_ns: Option<u64>,
    pub start_time_ns: Option<u64>,
    /// `task->in_iowait`: asleep in io_schedule() (block I/O, folio waits).
    pub in_iowait: Option<bool>,
}

pub(crate) const MAX_TASKS: usize = 1 << 22;

/// Reads one task_struct.
pub fn read_task(k: &Kernel, l: &Layout, addr: u64) -> Result<Task> {
    let m = &k.mem;
    let opt = |o: Option<u64>| o.and_then(|o| m.u64(addr + o).ok());
    let state_raw = if l.state_is_long {
        m.u64(addr + l.state)? as u32
    } else {
        m.u32(addr + l.state)?
    };
    let exit_state = m.u32(addr + l.exit_state)?;
    let (state, sleep) = decode_state(state_raw, exit_state);
    let comm = m.cstr(addr + l.comm, 16)?;
    let parent = m.u64(addr + l.real_parent)?;
    let ppid = if parent != 0 && parent != addr {
        m.u32(parent + l.tgid).map(|v| v as i32).unwrap_or(0)
    } else {
        0
    };
    let signal = m.u64(addr + l.signal)?;
    let shared_pending = if signal != 0 {
        m.u64(signal + l.shared_pending_signal).unwrap_or(0)
    } else {
        0
    };
    let mut ns_pids = Vec::new();
    if let (Some(tp), Some(lv), Some(nums)) = (l.thread_pid, l.pid_level, l.pid_numbers) {
        if let Ok(pidp) = m.u64(addr + tp) {
            if pidp != 0 {
                let level = m.u32(pidp + lv).unwrap_or(0).min(32);
                for i in 0..=level as u64 {
                    if let Ok(nr) = m.u32(pidp + nums + i * l.upid_size) {
                        ns_pids.push(nr as i32);
                    }
                }
            }
        }
    }
    Ok(Task {
        addr,
        pid: m.u32(addr + l.pid)? as i32,
        tgid: m.u32(addr + l.tgid)? as i32,
        comm,
        state_raw,
        exit_state,
        state,
        sleep,
        flags: m.u32(addr + l.flags)?,
        ppid,
        pending: m.u64(addr + l.pending_signal)?,
        shared_pending,
        blocked: m.u64(addr + l.blocked)?,
        cpu: l.cpu.and_then(|o| m.u32(addr + o).ok()),
        on_cpu: l.on_cpu.and_then(|o| m.u32(addr + o).ok()).unwrap_or(0) != 0,
        last_arrival_ns: opt(l.last_arrival),
        ns_pids,
        stack_base: m.u64(addr + l.stack)?,
        saved_sp: m.u64(addr + l.thread_sp)?,
        nvcsw: opt(l.nvcsw),
        nivcsw: opt(l.nivcsw),
        run_ns: opt(l.sum_exec_runtime),
        wait_ns: opt(l.run_delay),
        utime_ns: opt(l.utime),
        stime_ns: opt(l.stime),
        start_time_ns: opt(l.start_time),
        // Little-endian bit-fields count from the low bit of the lowest
        // byte: the byte at bit/8, the bit bit%8 in it.
        in_iowait: l
            .in_iowait_bit
            .and_then(|bit| m.u8(addr + bit / 8).ok().map(|b| b >> (bit % 8) & 1 != 0)),
    })
}

/// Follows a circular list from `head`, returning each node address (not
/// the head). Stops at a repeat, a read error or `MAX_TASKS`.
pub(crate) fn list(k: &Kernel, head: u64, errors: &mut Vec<String>) -> Vec<u64> {
    list_in(&k.mem, head, errors)
}

/// [`list`] over any kernel memory (a dump's, or the running kernel's).
pub fn list_in(mem: &dyn VirtMem, head: u64, errors: &mut Vec<String>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut cur = match mem.u64(head) {
        Ok(n) => n,
        Err(e) => {
            errors.push(format!("list head {head:#x}: {e}"));
            return out;
        }
    };
    while cur != head && out.len() < MAX_TASKS {
        if !seen.insert(cur) {
            errors.push(format!("list at {head:#x} loops at {cur:#x}"));
            break;
        }
        out.push(cur);
        match mem.u64(cur) {
            Ok(n) => cur = n,
            Err(e) => {
                errors.push(format!("list node {cur:#x}: {e}"));
                // The list is doubly linked (`list_head.prev` follows
                // `next`): walk back from the head to recover the nodes
                // past the hole (a truncated dump, an excluded page).
                let from = out.len();
                let mut back = match mem.u64(head + 8) {
                    Ok(p) => p,
                    Err(_) => return out,
                };
                while back != head && out.len() < MAX_TASKS && seen.insert(back) {
                    out.push(back);
                    match mem.u64(back + 8) {
                        Ok(p) => back = p,
                        Err(e) => {
                            errors.push(format!("list node {back:#x} (walking back): {e}"));
                            break;
                        }
                    }
                }
                // In list order: the nodes found walking back come last.
                out[from..].reverse();
                return out;
            }
        }
    }
    out
}

/// Every task: the group leaders from `init_task.tasks` and, for each, its
/// threads. `init_task` itself (pid 0, the boot CPU's idle task) comes first.
/// Read errors are collected; the tasks that could be read are returned.
pub fn walk(k: &Kernel, l: &Layout) -> Result<(Vec<Task>, Vec<String>)> {
    let init = k.sym("init_task")?;
    let mut errors = Vec::new();
    let mut leaders = vec![init];
    leaders.extend(
        list(k, init + l.tasks, &mut errors)
            .into_iter()
            .map(|n| n - l.tasks),
    );
    let mut out = Vec::with_capacity(leaders.len());
    let mut seen = std::collections::HashSet::new();
    for leader in leaders {
        let threads = match (l.thread_head, l.thread_node) {
            (Some(th), Some(tn)) if leader != init => match k.mem.u64(leader + l.signal) {
                Ok(sig) if sig != 0 => {
                    let t: Vec<u64> = list(k, sig + th, &mut errors)
                        .into_iter()
                        .map(|n| n - tn)
                        .collect();
                    if t.is_empty() {
                        vec![leader]
                    } else {
                        t
                    }
                }
                _ => vec![leader],
            },
            _ => vec![leader],
        };
        for t in threads {
            if !seen.insert(t) {
                continue;
            }
            match read_task(k, l, t) {
                Ok(task) => out.push(task),
                Err(e) => errors.push(format!("task_struct at {t:#x}: {e}")),
            }
        }
    }
    Ok((out, errors))
}
