//! Where kernel memory comes from: a crash dump today, the live kernel
//! through BPF later. Everything above (values, expressions, printing)
//! sees only this trait.

use std::fmt;
use wedge_vmcore::btf::Btf;
use wedge_vmcore::mem::VirtMem;

/// A read of kernel memory that could not be done: the address, and why
/// (not mapped in the page tables, a page the dump left out, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub addr: u64,
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault at {:#x}", self.addr)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// The symbol an address falls in, as `sym` and `dis` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolAt {
    pub name: String,
    /// Where the symbol starts.
    pub start: u64,
    /// The symbol's size when known: a module's symtab records it; for the
    /// kernel image it is the distance to the next symbol (kallsyms keeps
    /// no sizes), so it can include the padding after a function.
    pub size: Option<u64>,
    /// The kallsyms type letter (`T`, `t`, `D`, `b`...); modules' symbols
    /// read here are functions (`t`).
    pub kind: char,
    /// The module it is in; `None` for the kernel image.
    pub module: Option<String>,
}

impl SymbolAt {
    /// `name+0xoff`, as the kernel's `%pS` prints it (`+0` at the start).
    pub fn describe(&self, addr: u64) -> String {
        let off = addr.wrapping_sub(self.start);
        let m = self
            .module
            .as_deref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        if off == 0 {
            format!("{}+0{m}", self.name)
        } else {
            format!("{}+{off:#x}{m}", self.name)
        }
    }

    /// Text symbols (`t`/`T`, and weak `w`/`W` ones, which are functions
    /// in vmlinux) versus everything else.
    pub fn is_text(&self) -> bool {
        kind_is_text(self.kind)
    }
}

/// Whether a kallsyms type letter is code (`T`/`t`; `W`/`w` weak symbols
/// in vmlinux are functions too).
pub fn kind_is_text(kind: char) -> bool {
    matches!(kind, 't' | 'T' | 'w' | 'W')
}

/// A kernel's memory, symbols and types.
///
/// Reads must be bounded by the source (a dump read from FUSE or NFS has
/// deadlines in its file reader; a BPF source copies with
/// `bpf_probe_read_kernel`, which cannot block); callers bound sizes.
pub trait KernelMemory {
    /// Fills `buf` from kernel virtual address `addr`, or says where the
    /// read failed.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// The address of a symbol (kallsyms). For a per-CPU variable it is
    /// the variable's offset in each CPU's area.
    fn symbol(&self, name: &str) -> Option<u64>;
    /// What an address points into: `init_task+0`, `jiffies+8`.
    fn symbolize(&self, addr: u64) -> Option<String>;
    /// The symbol `addr` falls in, with its bounds and kind. The default
    /// knows none (a source without a symbol table).
    fn symbol_at(&self, _addr: u64) -> Option<SymbolAt> {
        None
    }
    /// A symbol's kallsyms type letter (`T` text, `D` data, `b` bss...).
    fn symbol_kind(&self, _name: &str) -> Option<char> {
        None
    }
    /// Calls `f` with every symbol name (for naming near ones).
    fn for_each_symbol(&self, f: &mut dyn FnMut(&str));
    /// The per-CPU variable an offset into each CPU's per-CPU area falls
    /// in, and the offset into it: what a `%gs:0x…` operand reads (x86-64
    /// points GS at the running CPU's area, so `mov rax, gs:[0x1fdc0]` is
    /// `this_cpu_read(current_task)`). The default knows none.
    fn per_cpu_symbol_at(&self, _offset: u64) -> Option<(String, u64)> {
        None
    }
    /// `__per_cpu_offset[cpu]`: where CPU `cpu`'s copy of the per-CPU
    /// variables starts, relative to their link addresses.
    fn per_cpu_offset(&self, cpu: u32) -> Result<u64, String>;
    /// The types: the kernel's BTF (empty when it was built without).
    fn btf(&self) -> &Btf;
    /// The CPU that called panic(), if one did.
    fn crashed_cpu(&self) -> Option<u32>;
    /// The task running on the crashed CPU (its `task_struct` address).
    fn crashed_task(&self) -> Option<u64>;
    /// The `task_struct` of a pid (as the initial pid namespace numbers it).
    fn task(&self, pid: i64) -> Option<u64>;
}

/// A crash dump as a memory source: the page-table walk of
/// [`wedge_vmcore::mem::KernelMem`], kallsyms and the dump's own BTF.
impl KernelMemory for wedge_vmcore::Vmcore {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        // KernelMem::read reports the first page that fails; the fault
        // names the address asked for, the detail the page.
        self.kernel.mem.read(addr, buf).map_err(|e| Fault {
            addr,
            detail: e.to_string(),
        })
    }

    fn symbol(&self, name: &str) -> Option<u64> {
        self.kernel.syms.addr(name)
    }

    fn symbolize(&self, addr: u64) -> Option<String> {
        if let Some((s, off)) = self.kernel.syms.containing(addr) {
            return Some(if off == 0 {
                format!("{}+0", s.name)
            } else {
                format!("{}+{off:#x}", s.name)
            });
        }
        let (name, off, _, module) = self.kernel.modules.lookup(addr)?;
        Some(format!("{name}+{off:#x} [{module}]"))
    }

    fn symbol_at(&self, addr: u64) -> Option<SymbolAt> {
        let syms = &self.kernel.syms;
        if let Some((s, _)) = syms.containing(addr) {
            // kallsyms keeps no sizes: a symbol reaches the next higher
            // address (aliases share one), as the kernel's own
            // kallsyms_lookup_size_offset computes it.
            let next = syms.syms.partition_point(|x| x.addr <= s.addr);
            let size = syms.syms.get(next).map(|n| n.addr - s.addr);
            return Some(SymbolAt {
                name: s.name.clone(),
                start: s.addr,
                size,
                kind: s.kind,
                module: None,
            });
        }
        module_symbol_at(&self.kernel.modules, addr)
    }

    fn symbol_kind(&self, name: &str) -> Option<char> {
        kallsyms_kind(&self.kernel.syms, name)
    }

    fn for_each_symbol(&self, f: &mut dyn FnMut(&str)) {
        for s in &self.kernel.syms.syms {
            f(&s.name);
        }
    }

    fn per_cpu_symbol_at(&self, offset: u64) -> Option<(String, u64)> {
        // kallsyms records per-CPU variables at their offsets in the
        // per-CPU section (absolute, from 0 up to __per_cpu_end), below
        // every address of the image; `containing` looks only above _text.
        let syms = &self.kernel.syms;
        let end = syms.addr("__per_cpu_end")?;
        if offset >= end {
            return None;
        }
        let i = syms.syms.partition_point(|s| s.addr <= offset);
        let at = syms.syms.get(i.checked_sub(1)?)?.addr;
        // Aliases share an address: the section markers (__per_cpu_start)
        // name no variable; prefer the variable.
        let first = syms.syms[..i].partition_point(|s| s.addr < at);
        let same = &syms.syms[first..i];
        let s = same
            .iter()
            .find(|s| !s.name.starts_with("__per_cpu"))
            .or(same.first())?;
        Some((s.name.clone(), offset - at))
    }

    fn per_cpu_offset(&self, cpu: u32) -> Result<u64, String> {
        let n = self.kernel.nr_cpus();
        if cpu as usize >= n {
            return Err(format!("CPU {cpu} does not exist (nr_cpu_ids is {n})"));
        }
        let base = self
            .kernel
            .sym("__per_cpu_offset")
            .map_err(|e| e.to_string())?;
        self.kernel
            .mem
            .u64(base + 8 * cpu as u64)
            .map_err(|e| format!("__per_cpu_offset[{cpu}]: {e}"))
    }

    fn btf(&self) -> &Btf {
        static EMPTY: std::sync::OnceLock<Btf> = std::sync::OnceLock::new();
        self.kernel
            .btf
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Btf::empty))
    }

    fn crashed_cpu(&self) -> Option<u32> {
        self.panic_cpu
    }

    fn crashed_task(&self) -> Option<u64> {
        self.crashing_task().map(|t| t.addr)
    }

    fn task(&self, pid: i64) -> Option<u64> {
        self.tasks
            .iter()
            .find(|t| i64::from(t.pid) == pid)
            .map(|t| t.addr)
    }
}

/// The running kernel as a memory source: reads by `bpf_probe_read_kernel`
/// (which cannot block: a fault returns an error), symbols from
/// /proc/kallsyms and those `LiveKernel` finds in the kernel's own code,
/// BTF from /sys/kernel/btf/vmlinux. Nothing has crashed.
impl KernelMemory for wedge_bpf::live::LiveKernel {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.bpf.read(addr, buf).map_err(|f| Fault {
            addr: f.addr,
            detail: f.detail,
        })
    }

    fn symbol(&self, name: &str) -> Option<u64> {
        wedge_bpf::live::LiveKernel::symbol(self, name)
    }

    fn symbolize(&self, addr: u64) -> Option<String> {
        self.symbol_at(addr).map(|s| s.describe(addr))
    }

    fn symbol_at(&self, addr: u64) -> Option<SymbolAt> {
        // The objects found outside kallsyms first: kallsyms of a kernel
        // without CONFIG_KALLSYMS_ALL holds functions and section markers
        // only, and a data address would be named after the marker below it.
        if let Some(d) = self.derived().syms.iter().find(|d| {
            addr >= d.1 && addr < d.1.saturating_add(d.2.max(1)) && d.1 >= self.syms.text_start
        }) {
            return Some(SymbolAt {
                name: d.0.clone(),
                start: d.1,
                size: Some(d.2),
                kind: d.3,
                module: None,
            });
        }
        if let Some((s, _, size)) = self.syms.lookup(addr) {
            return Some(SymbolAt {
                name: s.name.clone(),
                start: s.addr,
                size: Some(size),
                kind: s.kind,
                module: None,
            });
        }
        module_symbol_at(&self.modules, addr)
    }

    fn symbol_kind(&self, name: &str) -> Option<char> {
        if self.syms.addr(name).is_some() {
            return kallsyms_kind(&self.syms, name);
        }
        self.derived()
            .syms
            .iter()
            .find(|d| d.0 == name)
            .map(|d| d.3)
    }

    fn for_each_symbol(&self, f: &mut dyn FnMut(&str)) {
        for s in &self.syms.syms {
            f(&s.name);
        }
        // Only those already found: naming near ones must not start a pass.
        if let Some(d) = self.derived_if_read() {
            for s in &d.syms {
                f(&s.0);
            }
        }
    }

    fn per_cpu_offset(&self, cpu: u32) -> Result<u64, String> {
        wedge_bpf::live::LiveKernel::per_cpu_offset(self, cpu)
    }

    fn btf(&self) -> &Btf {
        &self.btf
    }

    fn crashed_cpu(&self) -> Option<u32> {
        None
    }

    fn crashed_task(&self) -> Option<u64> {
        None
    }

    fn task(&self, pid: i64) -> Option<u64> {
        self.record(pid).map(|r| r.task)
    }
}

/// The module function an address is in, as `symbol_at` reports it (the
/// modules' symbols read here are functions).
fn module_symbol_at(modules: &wedge_vmcore::modules::Modules, addr: u64) -> Option<SymbolAt> {
    let (name, off, size, module) = modules.lookup(addr)?;
    Some(SymbolAt {
        name: name.to_string(),
        start: addr - off,
        size: Some(size),
        kind: 't',
        module: Some(module.to_string()),
    })
}

/// A kallsyms name's type letter: `by_name` keeps the first symbol of a
/// name, so it is found among the symbols at its address.
fn kallsyms_kind(syms: &wedge_vmcore::kallsyms::Kallsyms, name: &str) -> Option<char> {
    let a = syms.addr(name)?;
    let all = &syms.syms;
    let i = all.partition_point(|s| s.addr < a);
    all[i..]
        .iter()
        .take_while(|s| s.addr == a)
        .find(|s| s.name == name)
        .map(|s| s.kind)
}
