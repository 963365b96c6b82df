//! Finding and matching debuginfo files: a vmlinux by GNU build-id and
//! release, modules by name (and build-id when the dump lets it be read).

use crate::info::Dwarf;
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};

/// What the dump says the debuginfo must match.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// `OSRELEASE=` of VMCOREINFO (`6.1.0-57-amd64`).
    pub release: Option<String>,
    /// `BUILD-ID=` of VMCOREINFO (hex), written since 5.9.
    pub build_id: Option<String>,
    /// The KASLR slide (`KERNELOFFSET=`): runtime = link-time + slide.
    pub slide: u64,
    /// Names of the modules loaded in the dump.
    pub modules: Vec<String>,
}

/// A module's debuginfo file, matched by name to a loaded module; its
/// DWARF is relocated when a frame in the module first asks for it.
pub struct ModuleDebug {
    pub name: String,
    pub path: PathBuf,
    dwarf: std::sync::OnceLock<Result<Dwarf, String>>,
}

impl ModuleDebug {
    /// The module's DWARF at the addresses the module was loaded at
    /// (`funcs`: its runtime function symbols, from the dump).
    pub fn dwarf(&self, funcs: &[(u64, u64, String)]) -> Result<&Dwarf, String> {
        self.dwarf
            .get_or_init(|| Dwarf::open_module(&self.path, funcs))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The debuginfo given for one dump.
pub struct Debuginfo {
    pub vmlinux: Option<Dwarf>,
    pub modules: Vec<ModuleDebug>,
    /// What was found and not used, and why (for the user).
    pub notes: Vec<String>,
}

/// A directory is searched this deep for `vmlinux*` and `*.ko*` (the
/// Debian layout puts modules at `kernel/fs/fuse/fuse.ko`: depth 4–6).
const MAX_DEPTH: usize = 8;
/// And no more entries than this are looked at (a wrong `--debuginfo /`
/// must not walk the whole disk).
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Found {
    vmlinux: Vec<PathBuf>,
    modules: Vec<PathBuf>,
    seen: usize,
}

fn is_module_file(name: &str) -> bool {
    name.ends_with(".ko") || name.ends_with(".ko.debug")
}

fn walk(dir: &Path, depth: usize, release: Option<&str>, out: &mut Found) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        out.seen += 1;
        if out.seen > MAX_ENTRIES {
            return;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, release, out);
            }
        } else if name == "vmlinux" || release.is_some_and(|r| name == format!("vmlinux-{r}")) {
            out.vmlinux.push(path);
        } else if is_module_file(&name) {
            out.modules.push(path);
        }
    }
}

/// `/usr/lib/debug/lib/modules/RELEASE` holds the modules; Debian puts the
/// vmlinux beside it at `/usr/lib/debug/boot/vmlinux-RELEASE` (and
/// `lib/modules/RELEASE/vmlinux` is a symlink to it on some releases).
fn sibling_vmlinux(dir: &Path, release: Option<&str>) -> Option<PathBuf> {
    let r = release?;
    let modules = dir.ancestors().find(|a| a.ends_with("lib/modules"))?;
    let root = modules.parent()?.parent()?;
    let p = root.join("boot").join(format!("vmlinux-{r}"));
    p.is_file().then_some(p)
}

fn module_name(path: &Path) -> String {
    let n = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = n.strip_suffix(".debug").unwrap_or(&n);
    let n = n.strip_suffix(".ko").unwrap_or(n);
    // The kernel names a module with '_' where its file has '-'.
    n.replace('-', "_")
}

/// The GNU build-id and release a vmlinux records.
pub(crate) struct Ident {
    pub build_id: Option<String>,
    pub release: Option<String>,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The build-id note, and the release from `linux_banner` ("Linux version
/// 6.1.0-57-amd64 (…"), read from the file's own .rodata.
pub(crate) fn ident(file: &object::File<'_>) -> Ident {
    let build_id = file.build_id().ok().flatten().map(hex);
    let release = file
        .symbols()
        .find(|s| s.name() == Ok("linux_banner"))
        .and_then(|s| {
            let sec = file.section_by_index(s.section_index()?).ok()?;
            let data = sec.data().ok()?;
            let at = s.address().checked_sub(sec.address())? as usize;
            let text = data.get(at..at.checked_add(256)?.min(data.len()))?;
            let text = String::from_utf8_lossy(text);
            let r = text.strip_prefix("Linux version ")?;
            Some(r.split_whitespace().next()?.to_string())
        });
    Ident { build_id, release }
}

impl Debuginfo {
    /// The debuginfo of loaded module `name`, if given.
    pub fn module(&self, name: &str) -> Option<&ModuleDebug> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// Opens what `--debuginfo` named. A vmlinux that does not match the
    /// dump is refused with both ids; module files are matched by name to
    /// the loaded modules.
    pub fn open(paths: &[PathBuf], want: &Expect) -> Result<Debuginfo, String> {
        let mut found = Found::default();
        let release = want.release.as_deref();
        for p in paths {
            let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if meta.is_dir() {
                walk(p, 0, release, &mut found);
                if found.seen > MAX_ENTRIES {
                    return Err(format!(
                        "{}: more than {MAX_ENTRIES} entries: give the debuginfo directory itself (/usr/lib/debug/lib/modules/RELEASE or /usr/lib/debug/boot)",
                        p.display()
                    ));
                }
                if found.vmlinux.is_empty() {
                    found.vmlinux.extend(sibling_vmlinux(p, release));
                }
            } else {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.as_deref().is_some_and(is_module_file) {
                    found.modules.push(p.clone());
                } else {
                    found.vmlinux.push(p.clone());
                }
            }
        }
        let mut notes = Vec::new();
        let mut vmlinux = None;
        // A file named on the command line is an order: a mismatch is an
        // error. Among those found in a directory, the first that matches.
        let explicit = paths.iter().any(|p| found.vmlinux.contains(p));
        let mut refused = Vec::new();
        for p in &found.vmlinux {
            match Dwarf::open(p, want) {
                Ok(d) => {
                    vmlinux = Some(d);
                    break;
                }
                Err(e) if explicit => return Err(e),
                Err(e) => refused.push(e),
            }
        }
        if vmlinux.is_none() {
            if let Some(e) = refused.into_iter().next() {
                return Err(e);
            }
        }
        let mut modules: Vec<ModuleDebug> = Vec::new();
        for p in found.modules {
            let name = module_name(&p);
            if want.modules.contains(&name) && !modules.iter().any(|m| m.name == name) {
                modules.push(ModuleDebug {
                    name,
                    path: p,
                    dwarf: Default::default(),
                });
            }
        }
        if !modules.is_empty() {
            notes.push(format!(
                "module debuginfo for {} matched by name only (wedge reads no module build-id from the dump)",
                modules.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if vmlinux.is_none() && modules.is_empty() {
            return Err(format!(
                "{}: no vmlinux or module debuginfo found (looked for vmlinux, vmlinux-{} and *.ko*)",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                release.unwrap_or("RELEASE")
            ));
        }
        Ok(Debuginfo {
            vmlinux,
            modules,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_the_kernel() {
        assert_eq!(module_name(Path::new("/x/fuse.ko")), "fuse");
        assert_eq!(module_name(Path::new("/x/nf-tables.ko.debug")), "nf_tables");
    }
}
