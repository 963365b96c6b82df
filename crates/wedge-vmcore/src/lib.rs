//! # wedge-vmcore: kernel crash dumps read with no debuginfo
//!
//! A modern kernel carries in its own memory what a dump reader needs:
//! VMCOREINFO (release, page tables, KASLR offset, where kallsyms is), the
//! compressed symbol table (kallsyms), its type information (BTF, kept for
//! BPF) and its unwind tables (ORC). This crate reads ELF vmcores (kdump,
//! QEMU `dump-guest-memory`) and kdump-compressed dumps (makedumpfile,
//! flattened or not; zlib, LZO, snappy, zstd) with nothing else, and fills
//! wedge's snapshot model so the live analysis runs unchanged.
//!
//! Layers, each usable alone:
//! - [`dump::Dump`]: a dump file, its physical memory, notes and VMCOREINFO;
//! - [`kernel::Kernel`]: x86-64 address translation, kallsyms, BTF;
//! - [`tasks`], [`stack`], [`orc`], [`printk`]: kernel structures;
//! - [`Vmcore`]: everything above, and [`Vmcore::snapshot`].
//!
//! Every parser treats the dump as hostile: sizes are checked before
//! allocating, lists are bounded and loop-checked, and a structure that
//! cannot be read becomes an error naming it (or a gap in the result), never
//! a panic.

pub mod btf;
pub mod dump;
pub mod elf;
pub mod error;
pub mod fuse;
pub mod kallsyms;
pub mod kdump;
pub mod kernel;
pub mod listing;
pub mod locks;
mod lzo;
pub mod mem;
pub mod modules;
pub mod notes;
pub mod orc;
pub mod printk;
pub mod process;
pub mod snapshot;
pub mod source;
pub mod stack;
pub mod superblocks;
pub mod tasks;
pub mod x86_64;

pub use error::{Error, Result};
pub use kernel::{Kernel, Options};

use crate::mem::VirtMem;
use std::collections::HashMap;
use std::path::Path;

/// An opened dump with its tasks.
pub struct Vmcore {
    pub path: String,
    pub kernel: Kernel,
    pub layout: tasks::Layout,
    pub tasks: Vec<tasks::Task>,
    /// Problems reading the task list (the tasks read are still there).
    pub task_errors: Vec<String>,
    pub orc: Option<orc::Orc>,
    pub sched_text: stack::SchedText,
    /// The task running on each CPU (`current_task` per CPU).
    pub cpu_current: Vec<Option<u64>>,
    /// The CPU that called panic() (`panic_cpu`), if any did.
    pub panic_cpu: Option<u32>,
    /// Each CPU's registers from the dump's notes, by CPU number (see
    /// [`cpu_registers`]).
    pub cpu_regs: Vec<Option<notes::CpuRegs>>,
}

/// Opens a dump for a command: [`Vmcore::open`] with an error that names
/// the file once (an error opening it already does; the others say only
/// what inside the dump was wrong).
pub fn open(path: &Path, opts: &Options) -> std::result::Result<Vmcore, String> {
    Vmcore::open(path, opts).map_err(|e| {
        let (path, e) = (path.display().to_string(), e.to_string());
        if e.starts_with(&path) {
            e
        } else {
            format!("{path}: {e}")
        }
    })
}

impl Vmcore {
    pub fn open(path: &Path, opts: &Options) -> Result<Vmcore> {
        let dump = dump::Dump::open(path)?;
        let extent = dump.extent();
        Kernel::from_dump(dump, opts)
            .and_then(|kernel| Vmcore::from_kernel(path.display().to_string(), kernel))
            .map_err(|e| e.within(&extent))
    }

    pub fn from_kernel(path: String, mut kernel: Kernel) -> Result<Vmcore> {
        let layout = tasks::Layout::from_btf(&kernel)?;
        let (tasks, task_errors) = tasks::walk(&kernel, &layout)?;
        let new_orc = kernel.version.is_some_and(|v| v.at_least(6, 4));
        let orc = match (
            kernel.syms.addr("__start_orc_unwind_ip"),
            kernel.syms.addr("__stop_orc_unwind_ip"),
            kernel.syms.addr("__start_orc_unwind"),
        ) {
            (Some(a), Some(b), Some(c)) => match orc::Orc::load(&kernel.mem, a, b, c, new_orc) {
                Ok(mut o) => {
                    for m in &kernel.modules.mods {
                        if let Some((ip, entries, n)) = m.orc {
                            if let Err(e) =
                                o.add_module(&kernel.mem, m.text_start, m.text_end, ip, entries, n)
                            {
                                kernel
                                    .warnings
                                    .push(format!("ORC tables of module {}: {e}", m.name));
                            }
                        }
                    }
                    Some(o)
                }
                Err(e) => {
                    kernel.warnings.push(format!("ORC tables unreadable: {e}"));
                    None
                }
            },
            _ => {
                kernel
                    .warnings
                    .push("no ORC tables (kernel built without CONFIG_UNWINDER_ORC)".into());
                None
            }
        };
        let sched_text = stack::SchedText::new(&kernel);
        let cpu_current = current_tasks(&kernel);
        let cpu_regs = cpu_registers(&kernel);
        let panic_cpu = kernel
            .syms
            .addr("panic_cpu")
            .and_then(|a| kernel.mem.u32(a).ok())
            .filter(|&c| c != u32::MAX && (c as i32) >= 0);
        Ok(Vmcore {
            path,
            kernel,
            layout,
            tasks,
            task_errors,
            orc,
            sched_text,
            cpu_current,
            panic_cpu,
            cpu_regs,
        })
    }

    /// The CPU a task is running on, with that CPU's registers, when the dump
    /// has them.
    fn running_on(&self, t: &tasks::Task) -> Option<(usize, &notes::CpuRegs)> {
        let cpu = self.cpu_current.iter().position(|&c| c == Some(t.addr))?;
        self.cpu_regs.get(cpu)?.as_ref().map(|r| (cpu, r))
    }

    /// The kernel stack of a task.
    pub fn stack(&self, t: &tasks::Task) -> Result<stack::Stack> {
        let orc = self.orc.as_ref().ok_or_else(|| Error::Missing {
            what: "ORC unwind tables".into(),
        })?;
        Ok(stack::task_stack(
            &self.kernel,
            orc,
            &self.sched_text,
            t,
            self.running_on(t),
        ))
    }

    /// A task's stack with each frame's unwinder state (for DWARF frame
    /// variables), the CPU whose registers it started from, and why the
    /// walk stopped early.
    pub fn stack_states(&self, t: &tasks::Task) -> Result<stack::TaskStates> {
        let orc = self.orc.as_ref().ok_or_else(|| Error::Missing {
            what: "ORC unwind tables".into(),
        })?;
        let on = self.running_on(t);
        Ok(match stack::task_states(&self.kernel, orc, t, on) {
            Ok((states, error)) => stack::TaskStates {
                states,
                error,
                from_cpu: on.map(|(i, _)| i),
            },
            Err(e) => stack::TaskStates {
                states: vec![],
                error: Some(e),
                from_cpu: on.map(|(i, _)| i),
            },
        })
    }

    /// The stack CPU `cpu` was running, from its registers in the dump
    /// (see [`stack::cpu_stack`]); an error when the dump has none for it.
    pub fn cpu_stack(&self, cpu: usize) -> Result<stack::Stack> {
        let orc = self.orc.as_ref().ok_or_else(|| Error::Missing {
            what: "ORC unwind tables".into(),
        })?;
        let r = self
            .cpu_regs
            .get(cpu)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Missing {
                what: format!("registers of CPU {cpu} (no NT_PRSTATUS note for it)"),
            })?;
        Ok(stack::cpu_stack(
            &self.kernel,
            orc,
            &self.sched_text,
            cpu,
            r,
        ))
    }

    /// The idle tasks (pid 0, `swapper/N`) of the online CPUs other than
    /// the boot CPU's `init_task`, which the task list already holds: no
    /// task list links them, each is its runqueue's `idle`. Only CPUs in
    /// `__cpu_online_mask`, as drgn's `for_each_online_cpu`: a panic's
    /// `smp_send_stop` takes the other CPUs offline, unless the dump was
    /// taken before they stopped (a loaded TCG guest can be that slow).
    pub fn secondary_idle_tasks(&self) -> Vec<tasks::Task> {
        let k = &self.kernel;
        let (Ok(rqs), Ok(idle), Ok(offs), Ok(init)) = (
            k.sym("runqueues"),
            k.off("rq", "idle"),
            k.per_cpu_offsets(),
            k.sym("init_task"),
        ) else {
            return vec![];
        };
        let online = |cpu: usize| {
            k.syms
                .addr("__cpu_online_mask")
                .and_then(|m| k.mem.u64(m + (cpu as u64 / 64) * 8).ok())
                .is_some_and(|w| w >> (cpu % 64) & 1 == 1)
        };
        offs.iter()
            .enumerate()
            .filter(|&(cpu, _)| online(cpu))
            .filter_map(|(_, o)| k.mem.u64(rqs.wrapping_add(*o) + idle).ok())
            .filter(|&t| t != 0 && t != init)
            .filter_map(|t| tasks::read_task(k, &self.layout, t).ok())
            .collect()
    }

    /// All stacks, by task address.
    pub fn stacks(&self) -> HashMap<u64, Result<stack::Stack>> {
        self.tasks.iter().map(|t| (t.addr, self.stack(t))).collect()
    }

    /// How much of the machine this dump shows (see [`Completeness`]).
    pub fn completeness(&self) -> Completeness {
        let tasks_expected = self
            .kernel
            .syms
            .addr("nr_threads")
            .and_then(|a| self.kernel.mem.u32(a).ok())
            // A count beyond MAX_TASKS is not a count (a page of garbage).
            .filter(|&n| (n as usize) <= tasks::MAX_TASKS)
            .map(u64::from);
        Completeness {
            extent: self.kernel.mem.dump.extent(),
            tasks_read: self.tasks.iter().filter(|t| t.pid != 0).count(),
            tasks_expected,
            task_errors: self.task_errors.len(),
        }
    }

    /// The task that crashed: the one running on the panicking CPU.
    pub fn crashing_task(&self) -> Option<&tasks::Task> {
        let cpu = self.panic_cpu? as usize;
        let addr = (*self.cpu_current.get(cpu)?)?;
        self.tasks.iter().find(|t| t.addr == addr)
    }

    /// The panic the dump records: the CPU that called panic(), the task
    /// running on it, and panic()'s message among the printk `records`.
    pub fn crash(&self, records: &[printk::Record]) -> wedge_model::Crash {
        let t = self.crashing_task();
        let stack = t
            .and_then(|t| self.stack(t).ok())
            .map(|s| {
                s.frames
                    .iter()
                    .map(|f| {
                        let name = f
                            .function
                            .clone()
                            .unwrap_or_else(|| format!("{:#x}", f.addr));
                        match &f.module {
                            Some(m) => format!("{name} [{m}]"),
                            None => name,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        wedge_model::Crash {
            cpu: self.panic_cpu,
            pid: t.map(|t| t.pid),
            comm: t.map(|t| t.comm.clone()),
            message: printk::panic_message(records),
            stack,
        }
    }

    /// What the dump says about itself beside its snapshot, for the views:
    /// file, format, release, the panic, how much could be read, and the
    /// printk buffer as dmesg prints it (or why it could not be read).
    pub fn facts(&self) -> wedge_model::DumpFacts {
        let log = printk::read(&self.kernel).map_err(|e| format!("the printk buffer: {e}"));
        wedge_model::DumpFacts {
            path: self.path.clone(),
            format: self.kernel.mem.dump.format.clone(),
            kernel_release: self.kernel.release.clone(),
            tasks: self.tasks.len(),
            crash: self.crash(log.as_deref().unwrap_or_default()),
            partial: self.completeness().summary(),
            task_errors: self.task_errors.clone(),
            log: log.map(|records| (records.len(), printk::to_dmesg(&records))),
        }
    }
}

/// How much of the machine a dump let wedge read: the file against what its
/// headers declare, and the tasks read against the kernel's own count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Completeness {
    pub extent: dump::Extent,
    /// Tasks read (pid 0, the idle tasks, not counted).
    pub tasks_read: usize,
    /// The kernel's `nr_threads` (every task but the idle ones: fork
    /// counts a task once it has a pid), when it could be read.
    pub tasks_expected: Option<u64>,
    /// Task structures that could not be read, and list walks cut short.
    pub task_errors: usize,
}

impl Completeness {
    /// Tasks known to be missing: from the kernel's count when there is
    /// one, else those whose task_struct could not be read.
    pub fn tasks_unreadable(&self) -> Option<u64> {
        match self.tasks_expected {
            Some(n) => Some(n.saturating_sub(self.tasks_read as u64)),
            None if self.task_errors > 0 => None,
            None => Some(0),
        }
    }

    /// Whether the view is partial: part of the file is missing or some
    /// tasks could not be read.
    pub fn is_partial(&self) -> bool {
        self.extent.truncated() || self.task_errors > 0 || self.tasks_unreadable().unwrap_or(1) > 0
    }

    /// One line for people: "dump truncated: 180 of 268 MB present; 24 of
    /// 61 tasks read, 37 unreadable". `None` when nothing is missing.
    pub fn summary(&self) -> Option<String> {
        if !self.is_partial() {
            return None;
        }
        let e = &self.extent;
        let size = e.size_text();
        let file = if e.stream_cut {
            format!(
                "dump truncated: the flattened stream stops before its end marker ({size} of the dump rebuilt)"
            )
        } else if e.truncated() {
            format!("dump truncated: {size} present")
        } else {
            "dump incomplete".to_string()
        };
        let tasks = match (self.tasks_expected, self.tasks_unreadable()) {
            (Some(n), Some(u)) => format!("{} of {n} tasks read, {u} unreadable", self.tasks_read),
            _ => format!(
                "{} tasks read, an unknown number unreadable (the task list breaks off: {} read error(s))",
                self.tasks_read, self.task_errors
            ),
        };
        Some(format!("{file}; {tasks}"))
    }
}

/// Per-CPU `current_task` (6.1: a per-CPU variable of its own; 6.2 moved it
/// into `pcpu_hot`).
/// Each CPU's registers, by CPU number. QEMU writes one NT_PRSTATUS note
/// per vCPU in order, but a kexec crash dump's notes are those the capture
/// kernel found non-empty when it built /proc/vmcore: a CPU that saved
/// none (offline, or never reached by the NMI) leaves no note, and the
/// notes after it shift. The panicked kernel's per-CPU `crash_notes`
/// buffers, where `crash_save_cpu` wrote each note, are in the dump and say
/// which CPU each is; they are used when kexec filled them and each is one
/// of the dump's notes, else the notes' order.
fn cpu_registers(k: &Kernel) -> Vec<Option<notes::CpuRegs>> {
    let dump = &k.mem.dump.cpus;
    let in_order = || dump.iter().copied().map(Some).collect();
    let (Some(sym), Ok(offs)) = (k.syms.addr("crash_notes"), k.per_cpu_offsets()) else {
        return in_order();
    };
    let Ok(base) = k.mem.u64(sym) else {
        return in_order();
    };
    let saved: Vec<Option<notes::CpuRegs>> = offs
        .iter()
        .map(|o| {
            // note_buf_t: the NT_PRSTATUS note and an empty one after it.
            let at = base.wrapping_add(*o);
            let buf = k.mem.read_vec(at, 512).ok()?;
            let mut found = Vec::new();
            let _ = notes::parse_notes(&buf, at, &mut found);
            found
                .iter()
                .find(|n| n.kind == notes::NT_PRSTATUS && n.name == "CORE")
                .and_then(|n| notes::parse_prstatus(&n.desc))
                .map(|(_, r)| r)
        })
        .collect();
    if saved.iter().any(Option::is_some) && saved.iter().flatten().all(|r| dump.contains(r)) {
        saved
    } else {
        in_order()
    }
}

fn current_tasks(k: &Kernel) -> Vec<Option<u64>> {
    let Ok(offs) = k.per_cpu_offsets() else {
        return vec![];
    };
    let var = k.syms.addr("current_task").or_else(|| {
        let hot = k.syms.addr("pcpu_hot")?;
        Some(hot + k.off("pcpu_hot", "current_task").ok()?)
    });
    let Some(var) = var else { return vec![] };
    offs.iter()
        .map(|o| k.mem.u64(var.wrapping_add(*o)).ok().filter(|&t| t != 0))
        .collect()
}

/// A dump as a [`wedge_model::SnapshotSource`]: every task with its kernel
/// stack and the locks read from memory.
impl wedge_model::SnapshotSource for Vmcore {
    fn snapshot(&self) -> std::result::Result<wedge_model::Snapshot, String> {
        Ok(snapshot::build(self, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(present: u64, expected: u64, read: usize, nr: Option<u64>, errors: usize) -> Completeness {
        Completeness {
            extent: dump::Extent {
                present_bytes: present,
                expected_bytes: expected,
                exact: true,
                stream_cut: false,
            },
            tasks_read: read,
            tasks_expected: nr,
            task_errors: errors,
        }
    }

    #[test]
    fn completeness_says_how_much_was_read() {
        assert_eq!(c(268_702_896, 268_702_896, 61, Some(61), 0).summary(), None);
        assert_eq!(
            c(180_000_000, 268_702_896, 24, Some(61), 2)
                .summary()
                .as_deref(),
            Some("dump truncated: 180 of 269 MB present; 24 of 61 tasks read, 37 unreadable")
        );
        // Sizes that round alike get a decimal, then bytes.
        assert_eq!(
            c(36_000_000, 36_409_287, 69, Some(69), 0)
                .summary()
                .as_deref(),
            Some("dump truncated: 36.0 of 36.4 MB present; 69 of 69 tasks read, 0 unreadable")
        );
        assert!(
            c(268_698_800, 268_702_896, 69, Some(69), 0)
                .summary()
                .is_some_and(
                    |s| s.starts_with("dump truncated: 268698800 of 268702896 bytes present")
                )
        );
        // No kernel count: the walk's errors say tasks are missing.
        let s = c(134_000_000, 268_702_896, 0, None, 4).summary().unwrap();
        assert!(s.ends_with("0 tasks read, an unknown number unreadable (the task list breaks off: 4 read error(s))"), "{s}");
        // A whole file whose task list cannot be walked is partial too.
        assert!(c(10, 10, 5, Some(9), 0)
            .summary()
            .is_some_and(|s| s == "dump incomplete; 5 of 9 tasks read, 4 unreadable"));
    }
}
