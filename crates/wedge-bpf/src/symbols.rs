//! The running kernel's text symbols from `/proc/kallsyms`, to name the
//! return addresses `bpf_get_task_stack` gives.
//!
//! /proc/kallsyms is a seq_file over the kernel's own tables: reading it
//! takes no lock a stuck task could hold, so one read is bounded by its
//! size. Addresses read as zero unless the reader may see kernel pointers
//! (`kptr_restrict`, CAP_SYSLOG): then nothing can be named, and the
//! caller keeps /proc's stacks.

use std::io::Read;
use wedge_model::KernelFrame;

/// The largest /proc/kallsyms read (a distribution kernel with every
/// module loaded is ~15 MB).
const MAX_BYTES: u64 = 64 << 20;

/// Text symbols sorted by address.
#[derive(Debug, Default)]
pub struct Kallsyms {
    /// (address, start of the name in `names`, its length, module index
    /// + 1 or 0 for vmlinux).
    syms: Vec<(u64, u32, u16, u16)>,
    names: String,
    modules: Vec<String>,
}

impl Kallsyms {
    /// Reads `path` (normally /proc/kallsyms).
    pub fn read(path: &str) -> Result<Kallsyms, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut text = String::new();
        f.take(MAX_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        let k = Kallsyms::parse(&text);
        if k.syms.is_empty() {
            return Err(format!(
                "{path}: every address reads as 0 (kptr_restrict hides kernel addresses from this user)"
            ));
        }
        Ok(k)
    }

    /// Whether `path` shows real addresses, from its first line only (the
    /// cheap check made before the scan decides to skip /proc's stacks).
    pub fn shows_addresses(path: &str) -> Result<(), String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut head = [0u8; 64];
        let n = f
            .take(64)
            .read(&mut head)
            .map_err(|e| format!("{path}: {e}"))?;
        let head = String::from_utf8_lossy(&head[..n]);
        let addr = head.split_ascii_whitespace().next().unwrap_or("");
        match u64::from_str_radix(addr, 16) {
            Ok(a) if a != 0 => Ok(()),
            _ => Err(format!(
                "{path}: addresses read as 0 (kptr_restrict hides kernel addresses from this user)"
            )),
        }
    }

    /// Parses kallsyms text: `ffffffff81000000 T _text` and
    /// `ffffffffc0a01000 t fuse_dev_read\t[fuse]`. Only text symbols (t, T)
    /// are kept: return addresses point into code.
    pub fn parse(text: &str) -> Kallsyms {
        let mut k = Kallsyms::default();
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if !matches!(kind, "t" | "T") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if addr == 0 || name.len() > u16::MAX as usize {
                continue;
            }
            let module = match it.next() {
                Some(m) => {
                    let m = m.trim_start_matches('[').trim_end_matches(']');
                    match k.modules.iter().position(|x| x == m) {
                        Some(i) => i + 1,
                        None => {
                            k.modules.push(m.to_string());
                            k.modules.len()
                        }
                    }
                }
                None => 0,
            };
            let Ok(start) = u32::try_from(k.names.len()) else {
                break;
            };
            k.names.push_str(name);
            k.syms.push((
                addr,
                start,
                name.len() as u16,
                u16::try_from(module).unwrap_or(0),
            ));
        }
        k.syms.sort_by_key(|s| s.0);
        k
    }

    /// A return address as /proc/PID/stack prints it: the function that
    /// contains the call (looked up at `addr - 1`, since a call at a
    /// function's very end returns to the next one's first byte), its
    /// offset and size.
    pub fn frame(&self, addr: u64) -> KernelFrame {
        let at = addr.saturating_sub(1);
        let i = self.syms.partition_point(|s| s.0 <= at);
        let Some(&(start, name, len, module)) = i.checked_sub(1).and_then(|i| self.syms.get(i))
        else {
            return KernelFrame {
                address: Some(addr),
                ..KernelFrame::named(format!("{addr:#x}"))
            };
        };
        let next = self.syms.get(i).map(|s| s.0);
        let name = self
            .names
            .get(name as usize..name as usize + len as usize)
            .unwrap_or("?");
        KernelFrame {
            function: name.to_string(),
            offset: Some(addr - start),
            size: next.map(|n| n - start),
            module: (module > 0)
                .then(|| self.modules.get(module as usize - 1).cloned())
                .flatten(),
            address: Some(addr),
            unreliable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
0000000000000000 A fixed_percpu_data
ffffffff81000000 T _text
ffffffff81100000 t down_write
ffffffff81100040 T path_openat
ffffffff81100400 D some_data
ffffffff81100800 T open_last_lookups
ffffffffc0a01000 t fuse_dev_read\t[fuse]
ffffffffc0a01200 t fuse_dev_write\t[fuse]
";

    #[test]
    fn names_return_addresses_as_proc_does() {
        let k = Kallsyms::parse(TEXT);
        let f = k.frame(0xffffffff81100050);
        assert_eq!(f.function, "path_openat");
        assert_eq!((f.offset, f.size), (Some(0x10), Some(0x7c0)));
        // A return address at a function's first byte belongs to the
        // caller before it (a call as its last instruction).
        assert_eq!(k.frame(0xffffffff81100040).function, "down_write");
        let m = k.frame(0xffffffffc0a01010);
        assert_eq!(
            (m.function.as_str(), m.module.as_deref()),
            ("fuse_dev_read", Some("fuse"))
        );
        assert_eq!(k.frame(0x1000).function, "0x1000");
    }

    #[test]
    fn hidden_addresses_name_nothing() {
        let k = Kallsyms::parse("0000000000000000 T _text\n0000000000000000 t down_write\n");
        assert!(k.syms.is_empty());
    }
}
