//! Hostile and damaged dumps: clear errors or partial results, never a
//! panic.
mod common;
use common::fixture::{boot_or_skip, Boot};
use std::io::Read;
use wedge_vmcore::dump::Dump;
use wedge_vmcore::{Error, Kernel, Options, Vmcore};

fn prefix(p: &std::path::Path, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    std::fs::File::open(p)
        .unwrap()
        .take(n as u64)
        .read_to_end(&mut v)
        .unwrap();
    v
}

fn open_mem(v: Vec<u8>) -> Result<Vmcore, Error> {
    let d = Dump::from_source(Box::new(v))?;
    let k = Kernel::from_dump(d, &Options::default())?;
    Vmcore::from_kernel("mem".into(), k)
}

#[test]
fn not_a_dump() {
    for bytes in [vec![], b"hello world, not a dump".to_vec(), vec![0u8; 8192]] {
        let e = Dump::from_source(Box::new(bytes))
            .err()
            .expect("garbage accepted");
        assert!(
            matches!(e, Error::UnknownFormat { .. } | Error::Truncated { .. }),
            "{e}"
        );
    }
}

#[test]
fn wrong_architecture() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let mut v = prefix(&fx.dumps["elf"], 1 << 16);
    v[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let e = Dump::from_source(Box::new(v)).err().unwrap();
    assert!(matches!(e, Error::WrongArch { .. }), "{e}");
    assert!(e.to_string().contains("aarch64"), "{e}");
}

#[test]
fn truncated_elf_dumps_fail_cleanly_or_read_partially() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let p = &fx.dumps["elf"];
    let full = std::fs::metadata(p).unwrap().len() as usize;
    for n in [100, 4096, 1 << 20, full / 2, full * 3 / 4, full - 4096] {
        match open_mem(prefix(p, n)) {
            Ok(v) => {
                // Whatever was read is usable: stacks and snapshot do not panic.
                let _ = v.stacks();
                let s = wedge_vmcore::snapshot::build(&v, true);
                eprintln!(
                    "{n}: {} processes, {} task errors",
                    s.processes.len(),
                    v.task_errors.len()
                );
            }
            Err(e) => {
                eprintln!("{n}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn truncated_kdump_reports_missing_pages() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    for f in ["kdump-zlib", "kdump-zlib-plain"] {
        let Some(p) = fx.dumps.get(f) else { continue };
        let full = std::fs::metadata(p).unwrap().len() as usize;
        for n in [4096, 8192 + 100, full / 3, full * 9 / 10] {
            match open_mem(prefix(p, n)) {
                Ok(v) => {
                    let _ = v.stacks();
                    eprintln!(
                        "{f} {n}: {} tasks, errors {:?}",
                        v.tasks.len(),
                        v.task_errors.first()
                    );
                }
                Err(e) => eprintln!("{f} {n}: {e}"),
            }
        }
    }
}

#[test]
fn damaged_pages_in_kdump() {
    // Flip bytes in the middle of a compressed dump's page data: the pages
    // hit fail to decompress with an error naming their address.
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let Some(p) = fx.dumps.get("kdump-zlib-plain") else {
        return;
    };
    let mut v = std::fs::read(p).unwrap();
    let len = v.len();
    for i in (len / 2..len).step_by(997) {
        v[i] ^= 0x5a;
    }
    match open_mem(v) {
        Ok(vm) => {
            let _ = vm.stacks();
        }
        Err(e) => eprintln!("damaged: {e}"),
    }
}

#[test]
fn completeness_tells_intact_from_truncated_dumps() {
    // The kernel's own task count (nr_threads) and the file size the
    // headers declare tell a whole dump from one cut short.
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    for f in ["elf", "kdump-zlib", "kdump-zlib-plain"] {
        let Some(p) = fx.dumps.get(f) else { continue };
        let whole = Vmcore::open(p, &Options::default()).unwrap();
        let c = whole.completeness();
        assert!(!c.is_partial(), "{f}: {c:?}");
        assert_eq!(c.tasks_expected, Some(c.tasks_read as u64), "{f}: {c:?}");
        let full = std::fs::metadata(p).unwrap().len() as usize;
        let v = open_mem(prefix(p, full * 99 / 100)).unwrap();
        let c = v.completeness();
        let s = c.summary().unwrap_or_else(|| panic!("{f}: {c:?}"));
        assert!(s.starts_with("dump truncated: "), "{f}: {s}");
        let snap = wedge_vmcore::snapshot::build(&v, false);
        assert_eq!(snap.partial.as_deref(), Some(s.as_str()));
        assert_eq!(snap.limitations[0].why, s, "carried as a limitation");
    }
}

/// A dump missing pages (cut short here; makedumpfile's `-d 31` drops user
/// pages the same way) loses command lines: each is then the one the whole
/// dump has, or said missing because its page is not in the dump, never
/// another value.
#[test]
fn command_lines_of_a_cut_dump_are_whole_or_said_missing() {
    let Some(fx) = boot_or_skip(Boot::NoKaslr).unwrap() else {
        return;
    };
    let p = &fx.dumps["elf"];
    let whole = Vmcore::open(p, &Options::default()).unwrap();
    let full: std::collections::HashMap<i32, Vec<String>> =
        wedge_vmcore::snapshot::build(&whole, false)
            .processes
            .into_iter()
            .filter_map(|p| Some((p.pid, p.cmdline.value()?.clone())))
            .collect();
    drop(whole);
    let size = std::fs::metadata(p).unwrap().len() as usize;
    let mut said_missing = 0;
    for pct in [30, 37, 45, 55, 70, 85] {
        let Ok(v) = open_mem(prefix(p, size * pct / 100)) else {
            continue;
        };
        for q in wedge_vmcore::snapshot::build(&v, false).processes {
            match &q.cmdline {
                wedge_model::Field::Value(argv) => {
                    assert_eq!(Some(argv), full.get(&q.pid), "{pct}%: pid {}", q.pid)
                }
                wedge_model::Field::Missing(m) => {
                    assert!(
                        m.detail.contains("not in the dump") || m.detail.contains("truncated"),
                        "{pct}%: pid {}: {}",
                        q.pid,
                        m.detail
                    );
                    said_missing += 1;
                }
            }
        }
    }
    assert!(said_missing > 0, "no cut lost a command line's page");
}
