//! FUSE connections, read from the dump as fusectl shows them live
//! (`/sys/fs/fuse/connections/N/waiting`): each FUSE superblock's
//! `s_fs_info` is a `struct fuse_mount` whose `fc` is the connection;
//! `fc->dev` is its number (the superblock's anonymous device, mountinfo's
//! `0:N`) and `fc->num_waiting` counts the requests sent or queued and not
//! yet answered.
//!
//! `struct fuse_conn` is the fuse module's own type: vmlinux's BTF does not
//! have it when fuse is a module (Debian's kernels). The module's BTF is
//! kept by the kernel after loading (`btf_modules`, a list of `struct
//! btf_module { list; module; btf; }`, each `btf->data` the module's raw
//! split BTF), so it comes from the dump too.

use crate::btf::Btf;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use crate::process::DumpMount;

/// Larger than any module's BTF (fuse's is 28 KiB; amdgpu's ~2 MiB).
const MAX_MODULE_BTF: u64 = 16 << 20;

/// One connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuseConn {
    /// `fc->dev`: the number fusectl names the connection by.
    pub id: u32,
    /// `fc->num_waiting`.
    pub waiting: u64,
    pub max_background: Option<u64>,
    pub congestion_threshold: Option<u64>,
    /// The `struct fuse_conn` itself.
    pub fc: u64,
}

/// The split BTF the dump's kernel keeps for module `name`, combined with
/// vmlinux's.
pub fn module_btf(k: &Kernel, name: &str) -> Result<Btf> {
    let base = k.btf()?;
    let head = k.sym("btf_modules")?;
    let (ml, mm, mb) = (
        k.off("btf_module", "list")?,
        k.off("btf_module", "module")?,
        k.off("btf_module", "btf")?,
    );
    let (data, size) = (k.off("btf", "data")?, k.off("btf", "data_size")?);
    let mod_name = k.off("module", "name")?;
    let mut errors = Vec::new();
    for node in crate::tasks::list(k, head, &mut errors) {
        let bm = node.wrapping_sub(ml);
        let Ok(m) = k.mem.u64(bm + mm) else { continue };
        if m == 0 || k.mem.cstr(m + mod_name, 56).ok().as_deref() != Some(name) {
            continue;
        }
        let btf = k.mem.u64(bm + mb)?;
        let len = k.mem.u32(btf + size)? as u64;
        if len > MAX_MODULE_BTF {
            return Err(Error::Corrupt {
                what: format!("BTF of module {name}: {len} bytes"),
                addr: btf,
            });
        }
        let blob = k.mem.read_vec(k.mem.u64(btf + data)?, len as usize)?;
        return Btf::parse_split(base, blob);
    }
    Err(Error::Missing {
        what: format!(
            "BTF of module {name} in btf_modules (kernel without CONFIG_DEBUG_INFO_BTF_MODULES?){}",
            errors.first().map(|e| format!("; {e}")).unwrap_or_default()
        ),
    })
}

/// Whether a mount is served over /dev/fuse (`fuse`, `fuseblk`, `fuse.X`).
pub fn is_fuse(fs_type: &str) -> bool {
    fs_type == "fuse" || fs_type == "fuseblk" || fs_type.starts_with("fuse.")
}

/// The connections behind the FUSE mounts among `mounts`, one per
/// connection. `Ok(empty)` when there is no FUSE mount (nothing to read,
/// and the fuse module's BTF is not needed).
pub fn connections(k: &Kernel, mounts: &[&DumpMount], s_fs_info: u64) -> Result<Vec<FuseConn>> {
    let fuse_sbs: Vec<u64> = {
        let mut v: Vec<u64> = mounts
            .iter()
            .filter(|m| is_fuse(&m.fs_type))
            .map(|m| m.sb)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if fuse_sbs.is_empty() {
        return Ok(Vec::new());
    }
    // Built in: vmlinux's BTF has the types; a module: its own BTF.
    let module;
    let btf = match k.btf()?.find_struct("fuse_conn") {
        Some(_) => k.btf()?,
        None => {
            module = module_btf(k, "fuse")?;
            &module
        }
    };
    let off = |s: &str, m: &str| {
        btf.offset_of(s, m).ok_or_else(|| Error::Missing {
            what: format!("member {s}.{m} in the fuse module's BTF"),
        })
    };
    let fm_fc = off("fuse_mount", "fc")?;
    let dev = off("fuse_conn", "dev")?;
    let waiting = off("fuse_conn", "num_waiting")?;
    let max_bg = off("fuse_conn", "max_background").ok();
    let cong = off("fuse_conn", "congestion_threshold").ok();
    let mut out: Vec<FuseConn> = Vec::new();
    for sb in fuse_sbs {
        let fm = k.mem.u64(sb + s_fs_info)?;
        if fm == 0 {
            continue;
        }
        let fc = k.mem.u64(fm + fm_fc)?;
        if fc == 0 || out.iter().any(|c| c.fc == fc) {
            continue;
        }
        out.push(FuseConn {
            id: k.mem.u32(fc + dev)?,
            waiting: k.mem.u32(fc + waiting)? as u64,
            max_background: max_bg.and_then(|o| k.mem.u32(fc + o).ok()).map(u64::from),
            congestion_threshold: cong.and_then(|o| k.mem.u32(fc + o).ok()).map(u64::from),
            fc,
        });
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}
