//! A hard-mounted NFS client whose server stops, live, in the crash-dump
//! fixtures' guest (Debian's 6.1 kernel under QEMU TCG, busybox,
//! crates/wedge-vmcore/tests/common/fixture.rs): this host's kernel has no
//! NFS client, the guest's package has nfsd, sunrpc, nfs and nfsv4 as
//! modules. `nfs_guest/nfs-run.sh` loads them (in the order their
//! `depends=` needs, resolved here from the .ko files), serves a tmpfs over
//! NFSv4 on 127.0.0.1 with no nfs-utils (the kernel's export caches written
//! directly), mounts it hard with `nfs_guest/wk-nfs.c`, starts a writer
//! (append + fsync) and a stat loop, stops the server's threads
//! (`rpc.nfsd 0`), waits until the writer is in D and the kernel said
//! "not responding", runs `wedge`, `wedge why`, `wedge --json` and
//! `wedge log` (built static, as wedge-bpf's guest test builds them), then
//! restarts the threads and shows the writer finishing: the remedy that
//! loses nothing works.

#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use wedge_testkit::skip_or_fail;

const WK_NFS_C: &str = include_str!("nfs_guest/wk-nfs.c");
/// The modules the scenario needs; their dependencies come from modinfo.
const ROOTS: [&str; 2] = ["nfsd", "nfsv4"];

/// A module's `depends=` from its .modinfo section (NUL-separated
/// `key=value` strings: the package ships no modules.dep, depmod makes it on
/// install).
fn depends(ko: &[u8]) -> Vec<String> {
    ko.split(|b| *b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|d| {
            String::from_utf8_lossy(d)
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every .ko under `dir`, by module name (`-` and `_` are one to modprobe).
fn index(dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            index(&p, out);
        } else if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
            if let Some(m) = n.strip_suffix(".ko") {
                out.insert(m.replace('-', "_"), p.clone());
            }
        }
    }
}

/// The modules `roots` need, dependencies first.
fn load_order(modules: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut all = BTreeMap::new();
    index(&modules.join("kernel"), &mut all);
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        m: &str,
        all: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), String> {
        let m = m.replace('-', "_");
        if !seen.insert(m.clone()) {
            return Ok(());
        }
        let p = all
            .get(&m)
            .ok_or_else(|| format!("module {m} is not in the kernel package"))?;
        let ko = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for d in depends(&ko) {
            visit(&d, all, seen, order)?;
        }
        order.push((m, p.clone()));
        Ok(())
    }
    for r in ROOTS {
        visit(r, &all, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// Writes `text` to `path` unless it already holds it (its mtime keys the
/// cached boot).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// The lines of the section `NFS-BEGIN name` … `NFS-END name`, and the
/// status its NFS-EXIT line gave.
fn section(out: &str, name: &str) -> (String, Option<i32>) {
    let begin = format!("NFS-BEGIN {name}");
    let end = format!("NFS-END {name}");
    let mut inside = false;
    let mut text = String::new();
    let mut status = None;
    for l in out.lines() {
        if l == begin {
            inside = true;
        } else if l == end {
            break;
        } else if inside {
            if let Some(s) = l.strip_prefix("NFS-EXIT ") {
                status = s.trim().parse().ok();
            } else {
                text.push_str(l);
                text.push('\n');
            }
        }
    }
    (text, status)
}

fn value_of<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
}

#[test]
fn hard_nfs_mount_whose_server_stops_in_the_6_1_guest() {
    match fixture::guest_available() {
        Ok(()) => {}
        Err(fixture::Unavailable::Missing(why)) => return skip_or_fail(&why),
        Err(fixture::Unavailable::Failed(why)) => panic!("{why}"),
    }
    let modules_dir = fixture::guest_modules_dir().unwrap_or_else(|e| panic!("{e:?}"));
    let order = match load_order(&modules_dir) {
        Ok(o) => o,
        // A kernel built without them (WEDGE_VMCORE_KERNEL) cannot serve.
        Err(why) => return skip_or_fail(&format!("{}: {why}", modules_dir.display())),
    };
    let t0 = std::time::Instant::now();
    let wedge = fixture::static_build(&["-p", "wedge", "--bin", "wedge"], "wedge")
        .unwrap_or_else(|e| panic!("{e}"));
    let wk_nfs = match fixture::static_c("wk-nfs", WK_NFS_C) {
        Ok(p) => p,
        Err(fixture::Unavailable::Missing(why)) => return skip_or_fail(&why),
        Err(fixture::Unavailable::Failed(why)) => panic!("{why}"),
    };
    let build_secs = t0.elapsed().as_secs_f64();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nfs_guest/nfs-run.sh");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nfs-guest");
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("{}: {e}", scratch.display()));
    let list: String = order.iter().map(|(m, _)| format!("{m}\n")).collect();
    let list_path = scratch.join("modules.order");
    write_if_changed(&list_path, &list);

    let names: Vec<String> = order.iter().map(|(m, _)| format!("nfs/{m}.ko")).collect();
    let mut files = vec![
        fixture::GuestFile {
            name: "bin/wedge",
            path: &wedge,
            mode: 0o755,
        },
        fixture::GuestFile {
            name: "bin/wk-nfs",
            path: &wk_nfs,
            mode: 0o755,
        },
        fixture::GuestFile {
            name: "nfs/modules.order",
            path: &list_path,
            mode: 0o644,
        },
    ];
    for ((_, p), n) in order.iter().zip(&names) {
        files.push(fixture::GuestFile {
            name: n,
            path: p,
            mode: 0o644,
        });
    }
    let programs = [fixture::GuestProgram {
        name: "wk-nfs-run",
        path: &script,
        args: &[],
    }];
    let guest = match fixture::run_in_guest_with(&programs, &files) {
        Ok(r) => r,
        Err(fixture::Unavailable::Missing(why)) => return skip_or_fail(&why),
        Err(fixture::Unavailable::Failed(why)) => panic!("{why}"),
    };
    eprintln!(
        "guest {}: boot {:.1} s{} (static build {build_secs:.1} s), modules {}, {}",
        guest.kernel_release,
        guest.boot_secs,
        if guest.cached { ", cached" } else { "" },
        list.trim().replace('\n', " "),
        guest.dir.display()
    );
    let run = guest.runs.get("wk-nfs-run").cloned().unwrap_or_default();
    let out = run.output.as_str();
    let serial = guest.dir.join("serial.log");
    assert!(
        !out.contains("NFS-FAIL"),
        "the NFS scenario failed in the guest ({}):\n{out}\n{}",
        serial.display(),
        run.stderr.join("\n")
    );
    let writer: i64 = value_of(out, "NFS-WRITER ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no writer pid: {out}"));
    assert!(out.contains("NFS-WEDGED"), "{out}");
    for l in out.lines().filter(|l| {
        l.starts_with("NFS-SERVER")
            || l.starts_with("NFS-FIRST")
            || l.starts_with("NFS-WEDGED")
            || l.starts_with("NFS-WRITER-EXIT")
    }) {
        eprintln!("{l}");
    }

    // The verdict names the D writer, the mount, the server and quotes the
    // kernel's line.
    let (text, status) = section(out, "text");
    eprintln!("wedge in the guest:\n{text}");
    assert_eq!(status, Some(1), "wedge's status: {text}");
    for want in [
        "wk-nfs-writer",
        &writer.to_string(),
        "/mnt/nfs",
        "127.0.0.1",
        "not responding",
    ] {
        assert!(
            text.contains(want),
            "no {want:?} in wedge's verdict:\n{text}"
        );
    }
    let (why, _) = section(out, "why");
    eprintln!("wedge why {writer}:\n{why}");
    for want in [
        "/mnt/nfs",
        "127.0.0.1",
        "not responding",
        "umount -f",
        "umount -l",
        "lost",
    ] {
        assert!(why.contains(want), "no {want:?} in wedge why:\n{why}");
    }

    // The finding, field by field.
    let (json, _) = section(out, "json");
    let v: Value = json
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from wedge --json: {json}"));
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    let f = findings
        .iter()
        .find(|f| {
            f["id"] == "netfs.server_unreachable"
                && f["pids"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.as_i64() == Some(writer)))
        })
        .unwrap_or_else(|| panic!("no netfs.server_unreachable for {writer}: {findings:#?}"));
    let f_text = f.to_string();
    assert!(f_text.contains("/mnt/nfs"), "{f:#}");
    assert!(f_text.contains("127.0.0.1"), "{f:#}");
    let evidence = f["evidence"].to_string();
    assert!(
        evidence.contains("server 127.0.0.1 not responding"),
        "the kernel's line is not evidence: {f:#}"
    );
    let remedies: Vec<String> = f["remedies"]
        .as_array()
        .map(|r| r.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    let remedy = |w: &str| {
        remedies
            .iter()
            .find(|r| r.contains(w))
            .unwrap_or_else(|| panic!("no remedy with {w:?}: {remedies:#?}"))
            .clone()
    };
    assert!(remedy("restart").contains("complete"), "{remedies:#?}");
    let force = remedy("umount -f");
    assert!(force.contains("EIO") && force.contains("lost"), "{force}");
    let lazy = remedy("umount -l");
    assert!(lazy.contains("stay"), "{lazy}");
    assert!(remedy("soft").contains("corrupt"), "{remedies:#?}");
    // fsync waits for its pages' writeback uninterruptibly: kill -9 is no
    // way out for the writer; the stat loop's GETATTR waits killable.
    assert!(
        remedy("kill -9").contains("does not end it"),
        "{remedies:#?}"
    );
    let stater: i64 = value_of(out, "NFS-STATER ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no stat pid: {out}"));
    let fs = findings
        .iter()
        .find(|f| {
            f["id"] == "netfs.server_unreachable"
                && f["pids"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.as_i64() == Some(stater)))
        })
        .unwrap_or_else(|| panic!("no netfs.server_unreachable for {stater}: {findings:#?}"));
    let kill = fs["remedies"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["action"].as_str().is_some_and(|a| a.contains("kill -9")))
        })
        .unwrap_or_else(|| panic!("no kill -9 for the stat loop: {fs:#}"));
    assert_eq!(kill["command"], format!("kill -9 {stater}"), "{kill:#}");
    assert!(
        kill["action"].as_str().is_some_and(|a| a.contains("lost")),
        "{kill:#}"
    );

    // The kernel log through /dev/kmsg, typed.
    let (log, _) = section(out, "log");
    assert!(log.contains("nfs_not_responding"), "wedge log:\n{log}");
    let (after, _) = section(out, "log-after");
    assert!(
        after.contains("nfs_server_ok"),
        "wedge log after the restart:\n{after}"
    );

    // Restarting the server: the hard mount's calls complete, the writer ends.
    assert_eq!(
        value_of(out, "NFS-WRITER-EXIT ").and_then(|s| s.split_whitespace().next()),
        Some("0"),
        "{out}"
    );
    assert!(out.contains("NFS-OUT NFS-WRITER-DONE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("NFS-KLOG") && l.contains("server 127.0.0.1 OK")),
        "{out}"
    );
}
