//! Loaded modules, read from the dump: their names, text, symbols and ORC
//! tables, so a stack that runs through a module (fuse, nfs, lustre's
//! ptlrpc) is unwound and named like one in vmlinux.
//!
//! `modules` (a `list_head`) links every `struct module` by `list`. Per
//! module, from BTF:
//! - `name[56]`;
//! - its core text: `core_layout.{base,text_size}` before 6.4, then
//!   `mem[MOD_TEXT].{base,size}` (the module_memory rework);
//! - `kallsyms` → `struct mod_kallsyms { Elf64_Sym *symtab; unsigned int
//!   num_symtab; char *strtab; … }`: after loading, the core symbols with
//!   their final addresses (`st_value`) and sizes;
//! - `arch.{num_orcs, orc_unwind_ip, orc_unwind}`: the module's ORC tables,
//!   in the same encoding as vmlinux's and sorted at load time.

use crate::btf::Btf;
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use crate::tasks::list_in;

/// One loaded module.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub text_start: u64,
    pub text_end: u64,
    /// Function symbols in its text, by address: (addr, size, name).
    pub funcs: Vec<(u64, u64, String)>,
    /// Its ORC tables: (orc_unwind_ip address, orc_unwind address, count).
    pub orc: Option<(u64, u64, u32)>,
}

/// Every module the dump lists, by text address.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    pub mods: Vec<Module>,
}

/// More than any real kernel loads; guards against a corrupt list.
const MAX_SYMS: u32 = 200_000;

impl Modules {
    /// Reads the module list. Problems are returned as warnings: a dump
    /// whose modules cannot be read is still a dump of vmlinux.
    pub fn read(k: &Kernel) -> (Modules, Vec<String>) {
        let (Some(head), Some(btf)) = (k.syms.addr("modules"), k.btf.as_ref()) else {
            return (Modules::default(), Vec::new());
        };
        Modules::read_from(&k.mem, btf, head)
    }

    /// [`Modules::read`] over any kernel memory: the list at `modules`
    /// (`head`), laid out as `btf` says (the running kernel's, read
    /// through BPF, as well as a dump's).
    pub fn read_from(mem: &dyn VirtMem, btf: &Btf, head: u64) -> (Modules, Vec<String>) {
        let mut warnings = Vec::new();
        let layout = match ModLayout::from_btf(btf) {
            Ok(l) => l,
            Err(e) => {
                warnings.push(format!("modules not read: {e}"));
                return (Modules::default(), warnings);
            }
        };
        let mut mods = Vec::new();
        for node in list_in(mem, head, &mut warnings) {
            let m = node.wrapping_sub(layout.list);
            match read_module(mem, &layout, m) {
                Ok(module) => mods.push(module),
                Err(e) => warnings.push(format!("module at {m:#x}: {e}")),
            }
        }
        mods.sort_by_key(|m| m.text_start);
        (Modules { mods }, warnings)
    }

    /// The module whose text holds `addr`.
    pub fn find(&self, addr: u64) -> Option<&Module> {
        let i = self.mods.partition_point(|m| m.text_start <= addr);
        let m = self.mods.get(i.checked_sub(1)?)?;
        (addr < m.text_end).then_some(m)
    }

    /// (function, offset, size, module) of a text address in a module.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64, u64, &str)> {
        let m = self.find(addr)?;
        let i = m.funcs.partition_point(|f| f.0 <= addr);
        let (start, size, name) = m.funcs.get(i.checked_sub(1)?)?;
        // A symbol without a size (assembler stubs) reaches the next one.
        let end = if *size > 0 {
            start.saturating_add(*size)
        } else {
            m.funcs.get(i).map_or(m.text_end, |n| n.0)
        };
        (addr < end).then(|| (name.as_str(), addr - start, end - start, m.name.as_str()))
    }
}

struct ModLayout {
    list: u64,
    name: u64,
    /// Offsets of the text base and size, and whether size is text_size
    /// of a `module_layout` (before 6.4) or `size` of `mem[MOD_TEXT]`.
    text_base: u64,
    text_size: u64,
    /// `module.kallsyms`, and in `struct mod_kallsyms`: symtab,
    /// num_symtab, strtab.
    kallsyms: Option<(u64, u64, u64, u64)>,
    orc: Option<(u64, u64, u64)>,
}

impl ModLayout {
    fn from_btf(btf: &Btf) -> crate::Result<ModLayout> {
        let k = Off(btf);
        let list = k.off("module", "list")?;
        let name = k.off("module", "name")?;
        let (text_base, text_size) = match k.off("module", "core_layout") {
            Ok(core) => (
                core + k.off("module_layout", "base")?,
                core + k.off("module_layout", "text_size")?,
            ),
            // 6.4+: MOD_TEXT is the first of mem[]'s kinds.
            Err(_) => {
                let mem = k.off("module", "mem")?;
                (
                    mem + k.off("module_memory", "base")?,
                    mem + k.off("module_memory", "size")?,
                )
            }
        };
        let kallsyms = match (
            k.off("module", "kallsyms"),
            k.off("mod_kallsyms", "symtab"),
            k.off("mod_kallsyms", "num_symtab"),
            k.off("mod_kallsyms", "strtab"),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => Some((a, b, c, d)),
            _ => None,
        };
        let orc = match (
            k.off("module", "arch.num_orcs"),
            k.off("module", "arch.orc_unwind_ip"),
            k.off("module", "arch.orc_unwind"),
        ) {
            (Ok(n), Ok(ip), Ok(o)) => Some((n, ip, o)),
            _ => None,
        };
        Ok(ModLayout {
            list,
            name,
            text_base,
            text_size,
            kallsyms,
            orc,
        })
    }
}

/// Member offsets by BTF, as [`Kernel::off`] gives them.
struct Off<'a>(&'a Btf);

impl Off<'_> {
    fn off(&self, strukt: &str, path: &str) -> crate::Result<u64> {
        self.0
            .offset_of(strukt, path)
            .ok_or_else(|| crate::Error::Missing {
                what: format!("member {strukt}.{path} in BTF"),
            })
    }
}

fn read_module(mem: &dyn VirtMem, l: &ModLayout, m: u64) -> crate::Result<Module> {
    let name = mem.cstr(m.wrapping_add(l.name), 56)?;
    let text_start = mem.u64(m.wrapping_add(l.text_base))?;
    let text_end = text_start.saturating_add(mem.u32(m.wrapping_add(l.text_size))? as u64);
    let mut funcs = Vec::new();
    if let Some((off, o_symtab, o_num, o_strtab)) = l.kallsyms {
        let ks = mem.u64(m.wrapping_add(off))?;
        if ks != 0 {
            let symtab = mem.u64(ks.wrapping_add(o_symtab))?;
            let num = mem.u32(ks.wrapping_add(o_num))?.min(MAX_SYMS);
            let strtab = mem.u64(ks.wrapping_add(o_strtab))?;
            let raw = mem.read_vec(symtab, num as usize * 24)?;
            for s in raw.chunks_exact(24) {
                let st_name = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
                let st_value = u64::from_le_bytes(s[8..16].try_into().unwrap_or_default());
                let st_size = u64::from_le_bytes(s[16..24].try_into().unwrap_or_default());
                if st_value < text_start || st_value >= text_end || st_name == 0 {
                    continue;
                }
                if let Ok(n) = mem.cstr(strtab.wrapping_add(st_name), 512) {
                    if !n.is_empty() {
                        funcs.push((st_value, st_size, n));
                    }
                }
            }
        }
    }
    // Aliases at one address: keep the first name, like the kernel's
    // module symbol lookup keeps the best match.
    funcs.sort_by_key(|f| f.0);
    funcs.dedup_by_key(|f| f.0);
    let orc = match l.orc {
        Some((n, ip, o)) => {
            let n = mem.u32(m.wrapping_add(n))?;
            let ip = mem.u64(m.wrapping_add(ip))?;
            let o = mem.u64(m.wrapping_add(o))?;
            (n > 0 && ip != 0 && o != 0).then_some((ip, o, n))
        }
        None => None,
    };
    Ok(Module {
        name,
        text_start,
        text_end,
        funcs,
        orc,
    })
}
