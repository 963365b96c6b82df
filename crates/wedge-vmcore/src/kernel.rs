//! A dump opened as a kernel: memory translation, symbols and types, all
//! from the dump itself (VMCOREINFO, kallsyms, BTF).

use crate::btf::Btf;
use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::kallsyms::{Kallsyms, KallsymsAddrs};
use crate::mem::KernelMem;
use crate::mem::VirtMem;
use crate::notes::VmcoreInfo;
use crate::x86_64::X86_64;
use std::path::Path;
use wedge_kernel::KernelVersion;

/// Optional help from outside the dump.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A System.map to use instead of the in-memory kallsyms.
    pub system_map: Option<std::path::PathBuf>,
    /// A raw BTF file (e.g. /sys/kernel/btf/vmlinux of the same build).
    pub btf: Option<std::path::PathBuf>,
}

/// An opened kernel image.
pub struct Kernel {
    pub mem: KernelMem,
    pub vmcoreinfo: VmcoreInfo,
    pub release: Option<String>,
    pub version: Option<KernelVersion>,
    pub syms: Kallsyms,
    pub btf: Option<Btf>,
    /// Loaded modules (symbols and ORC tables), where BTF describes them.
    pub modules: crate::modules::Modules,
    /// Problems that left parts unread.
    pub warnings: Vec<String>,
}

impl Kernel {
    pub fn open(path: &Path, opts: &Options) -> Result<Kernel> {
        Kernel::from_dump(Dump::open(path)?, opts)
    }

    pub fn from_dump(dump: Dump, opts: &Options) -> Result<Kernel> {
        let mut warnings = dump.warnings.clone();
        let vi = dump.vmcoreinfo.clone().ok_or_else(|| Error::Missing {
            what: "VMCOREINFO (QEMU writes it only with -device vmcoreinfo and the guest's qemu_fw_cfg driver)"
                .into(),
        })?;
        let release = dump.release();
        let version = release.as_deref().and_then(KernelVersion::parse);
        let root = vi
            .symbol("init_top_pgt")
            .or_else(|| vi.symbol("swapper_pg_dir"))
            .ok_or_else(|| Error::Missing {
                what: "SYMBOL(init_top_pgt) in VMCOREINFO".into(),
            })?;
        let phys_base = vi.number("phys_base").unwrap_or(0) as u64;
        let l5 = vi.number("pgtable_l5_enabled").unwrap_or(0) != 0;
        let sme = vi.number("sme_mask").unwrap_or(0) as u64;
        let mem = KernelMem {
            dump,
            arch: X86_64::new(root, phys_base, l5, sme),
        };
        let syms = match &opts.system_map {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::Io {
                    what: p.display().to_string(),
                    detail: e.to_string(),
                })?;
                let mut s = Kallsyms::parse_system_map(&text);
                // A System.map holds link-time addresses: slide by KASLR.
                if let Some(off) = vi.kernel_offset() {
                    for sym in &mut s.syms {
                        if sym.addr >= crate::x86_64::START_KERNEL_MAP {
                            sym.addr = sym.addr.wrapping_add(off);
                        }
                    }
                    s = Kallsyms::from_symbols(std::mem::take(&mut s.syms));
                }
                s
            }
            None => {
                let need = |n: &str| {
                    vi.symbol(n).ok_or_else(|| Error::Missing {
                        what: format!("SYMBOL({n}) in VMCOREINFO (kernels before 6.5 without the backport need --system-map)"),
                    })
                };
                let addrs = KallsymsAddrs {
                    num_syms: need("kallsyms_num_syms")?,
                    names: need("kallsyms_names")?,
                    token_table: need("kallsyms_token_table")?,
                    token_index: need("kallsyms_token_index")?,
                    offsets: need("kallsyms_offsets")?,
                    relative_base: need("kallsyms_relative_base")?,
                };
                // KALLSYMS_ABSOLUTE_PERCPU is on for x86-64 SMP kernels
                // until 6.15 removed it.
                let abs = !version.is_some_and(|v| v.at_least(6, 15));
                Kallsyms::read(&mem, addrs, abs)?
            }
        };
        let btf = match &opts.btf {
            Some(p) => match std::fs::read(p) {
                Ok(b) => Some(Btf::parse(b)?),
                Err(e) => {
                    return Err(Error::Io {
                        what: p.display().to_string(),
                        detail: e.to_string(),
                    })
                }
            },
            None => match (syms.addr("__start_BTF"), syms.addr("__stop_BTF")) {
                (Some(a), Some(b)) if b > a && b - a < 256 << 20 => {
                    match mem.read_vec(a, (b - a) as usize).and_then(Btf::parse) {
                        Ok(btf) => Some(btf),
                        Err(e) => {
                            warnings.push(format!("in-memory BTF unreadable: {e}"));
                            None
                        }
                    }
                }
                _ => {
                    warnings.push(
                        "no __start_BTF/__stop_BTF: kernel built without CONFIG_DEBUG_INFO_BTF"
                            .into(),
                    );
                    None
                }
            },
        };
        let mut k = Kernel {
            mem,
            vmcoreinfo: vi,
            release,
            version,
            syms,
            btf,
            modules: crate::modules::Modules::default(),
            warnings,
        };
        if k.btf.is_some() {
            let (modules, w) = crate::modules::Modules::read(&k);
            k.modules = modules;
            k.warnings.extend(w);
        }
        Ok(k)
    }

    pub fn sym(&self, name: &str) -> Result<u64> {
        self.syms.addr(name).ok_or_else(|| Error::Missing {
            what: format!("symbol {name}"),
        })
    }

    pub fn btf(&self) -> Result<&Btf> {
        self.btf.as_ref().ok_or_else(|| Error::Missing {
            what: "BTF type information".into(),
        })
    }

    /// Byte offset of a member, from BTF.
    pub fn off(&self, strukt: &str, path: &str) -> Result<u64> {
        self.btf()?
            .offset_of(strukt, path)
            .ok_or_else(|| Error::Missing {
                what: format!("member {strukt}.{path} in BTF"),
            })
    }

    pub fn size(&self, strukt: &str) -> Result<u64> {
        let b = self.btf()?;
        b.find_struct(strukt)
            .and_then(|id| b.size_of(id))
            .ok_or_else(|| Error::Missing {
                what: format!("struct {strukt} in BTF"),
            })
    }

    /// The per-CPU offsets (`__per_cpu_offset[]`), for CPUs that are up.
    pub fn per_cpu_offsets(&self) -> Result<Vec<u64>> {
        let base = self.sym("__per_cpu_offset")?;
        let n = self.nr_cpus();
        let mut v = Vec::new();
        for i in 0..n {
            v.push(self.mem.u64(base + 8 * i as u64)?);
        }
        Ok(v)
    }

    /// CPUs the kernel knows of: `nr_cpu_ids`.
    pub fn nr_cpus(&self) -> usize {
        self.syms
            .addr("nr_cpu_ids")
            .and_then(|a| self.mem.u32(a).ok())
            .map_or(1, |n| n.clamp(1, 8192) as usize)
    }
}
