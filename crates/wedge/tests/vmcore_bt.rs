//! `wedge vmcore DUMP --debuginfo VMLINUX bt PID…|--all [--vars] --json` on
//! the QEMU guest's crash dump, against drgn given the same DWARF: the same
//! frames (inlined ones included) with the same file:line:column, and the
//! same value for every parameter and local drgn reads as a scalar or a
//! pointer (or both absent). The vmlinux comes from `WEDGE_DEBUGINFO`, drgn
//! from `WEDGE_DRGN` (the harness fetches Debian's -dbg package and drgn
//! under target/); without them the test says SKIPPED.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, skip_or_fail, Boot};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn wedge(args: &[&str]) -> (Option<i32>, String, String) {
    let r = common::run(args, common::Opts::within(Duration::from_secs(600)));
    (r.code, r.stdout, r.stderr)
}

/// drgn's view of the same tasks: kernel frames only (drgn goes on into
/// the user registers of a syscall frame; wedge stops at the entry).
const DRGN_SCRIPT: &str = r#"
import json, sys
from drgn import TypeKind
from drgn.helpers.linux.pid import find_task
out = []
for pid in [int(p) for p in sys.argv[1].split(",")]:
    t = find_task(prog, pid)
    frames = []
    for f in prog.stack_trace(t):
        if f.pc < 0xffff800000000000:
            break
        try:
            src = f.source()
        except LookupError:
            src = (None, None, None)
        vs = {}
        if f.name:
            for l in f.locals():
                try:
                    o = f[l]
                    ty = o.type_
                    while ty.kind == TypeKind.TYPEDEF:
                        ty = ty.type
                    if ty.kind not in (TypeKind.INT, TypeKind.BOOL, TypeKind.POINTER, TypeKind.ENUM):
                        continue
                    vs[l] = None if o.absent_ else int(o.value_()) & 0xffffffffffffffff
                except Exception as e:
                    vs[l] = "error: %s" % e
        frames.append({"name": f.name, "file": src[0], "line": src[1], "column": src[2],
                       "inline": f.is_inline, "vars": vs})
    out.append({"pid": pid, "frames": frames})
print(json.dumps(out))
"#;

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Bool(b) => Some(*b as u64),
        Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
        _ => None,
    }
}

#[test]
fn bt_with_dwarf_matches_drgn() {
    let Some(vmlinux) = std::env::var_os("WEDGE_DEBUGINFO") else {
        skip_or_fail("WEDGE_DEBUGINFO (the dump kernel's vmlinux with DWARF) is not set");
        return;
    };
    let Some(fx) = boot_or_skip(Boot::Crash).unwrap() else {
        return;
    };
    let vmlinux = vmlinux.to_str().expect("utf-8 path").to_string();
    // The -dbg package's modules beside it (usr/lib/debug/boot/vmlinux-R
    // and usr/lib/debug/lib/modules/R): the scenario's FUSE reader sleeps
    // in fuse.ko.
    let vpath = std::path::Path::new(&vmlinux);
    let moddir = vpath
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinux-"))
        .and_then(|r| Some(vpath.parent()?.parent()?.join("lib/modules").join(r)))
        .filter(|d| d.join("kernel/fs/fuse/fuse.ko").is_file());
    let moddir = moddir.map(|d| d.to_str().expect("utf-8 path").to_string());
    for format in ["elf", "kdump-zlib"] {
        let dump = fx.dumps[format].to_str().expect("utf-8 fixture path");
        let mut args = vec!["vmcore", dump, "--debuginfo", &vmlinux];
        if let Some(m) = &moddir {
            args.extend(["--debuginfo", m.as_str()]);
        }
        args.extend(["bt", "--all", "--vars", "--json"]);
        let (code, out, err) = wedge(&args);
        assert_eq!(code, Some(0), "{err}");
        let doc: Value = serde_json::from_str(&out).expect("one JSON document");
        if let Err(m) = common::conforms("vmcore-bt.json", "bt --all --vars", &doc) {
            panic!("{m}");
        }
        let tasks = doc["tasks"].as_array().expect("tasks");
        let crashed = tasks
            .iter()
            .find(|t| t["crashed"] == true)
            .expect("the crashed task");
        let names: Vec<&str> = crashed["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["function"].as_str())
            .collect();
        // The panic path through sysrq, with panic()'s inlined helpers.
        assert!(
            names.starts_with(&[
                "__preempt_count_add",
                "delay_tsc",
                "panic",
                "sysrq_handle_crash"
            ]),
            "{names:?}"
        );
        // A frame's variables in eval: __handle_sysrq's key is 'c'; panic()'s
        // fmt is optimised out at the delay loop's call; a global BTF does
        // not type gets its DWARF type.
        let pid = crashed["pid"].to_string();
        let fr = |n: usize| {
            names
                .iter()
                .position(|f| *f == ["__handle_sysrq", "panic"][n])
                .unwrap()
                .to_string()
        };
        let e = format!("frame({pid}, {}).key", fr(0));
        let (code, out, err) = wedge(&["vmcore", dump, "--debuginfo", &vmlinux, "eval", &e]);
        assert_eq!((code, out.as_str()), (Some(0), "(int)99\n"), "{err}");
        let e = format!("frame({pid}, {}).fmt", fr(1));
        let (code, out, err) = wedge(&["vmcore", dump, "--debuginfo", &vmlinux, "eval", &e]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "(const char *)<absent>\n"),
            "{err}"
        );
        let (code, out, err) = wedge(&[
            "vmcore",
            dump,
            "--debuginfo",
            &vmlinux,
            "eval",
            &e,
            "--json",
        ]);
        assert_eq!(code, Some(0), "{err}");
        let doc: Value = serde_json::from_str(&out).expect("one JSON document");
        if let Err(m) = common::conforms("vmcore-eval.json", &e, &doc) {
            panic!("{m}");
        }
        assert_eq!(doc["value"], Value::Null);
        let (code, out, err) = wedge(&[
            "vmcore",
            dump,
            "--debuginfo",
            &vmlinux,
            "eval",
            "max_threads",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.starts_with("(int)"), "{out}");
        let (code, _, err) = wedge(&["vmcore", dump, "eval", "max_threads"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("has no type without DWARF"), "{err}");
        if format != "elf" {
            continue;
        }
        let Some(drgn) = std::env::var_os("WEDGE_DRGN") else {
            skip_or_fail("WEDGE_DRGN (a drgn executable) is not set: no comparison");
            return;
        };
        // Every task: the crashed one, and all the sleeping ones (kernel
        // threads, init, the scenario's FUSE reader in fuse.ko). Not pid
        // 0: one pid for every CPU's idle task.
        let pids: Vec<i64> = tasks
            .iter()
            .filter_map(|t| t["pid"].as_i64())
            .filter(|&p| p > 0)
            .collect();
        let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        let mut dargs = vec!["-q".to_string(), "-c".into(), dump.into()];
        dargs.extend(["-s".into(), vmlinux.clone()]);
        if let Some(m) = &moddir {
            dargs.extend(["-s".into(), format!("{m}/kernel/fs/fuse/fuse.ko")]);
        }
        dargs.extend(["-e".into(), DRGN_SCRIPT.into(), list.join(",")]);
        let r = std::process::Command::new(&drgn)
            .args(&dargs)
            .output()
            .expect("run drgn");
        assert!(
            r.status.success(),
            "drgn: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let theirs: Value = serde_json::from_slice(&r.stdout).expect("drgn's JSON");
        let (mut vars_same, mut vars_all, mut frames_checked) = (0usize, 0usize, 0usize);
        let mut diffs = Vec::new();
        for dt in theirs.as_array().unwrap() {
            let pid = dt["pid"].as_i64().unwrap();
            let ours = tasks
                .iter()
                .find(|t| t["pid"] == pid)
                .expect("task in ours");
            let of = ours["frames"].as_array().unwrap();
            let df = dt["frames"].as_array().unwrap();
            // A zombie's stack is freed once it last scheduled: wedge (as
            // /proc) shows none; drgn reads whatever thread.sp pointed at.
            if of.is_empty() && ours["error"].is_null() {
                assert!(df.len() <= 1, "pid {pid}: drgn has frames {df:?}");
                continue;
            }
            assert_eq!(
                of.len(),
                df.len(),
                "pid {pid}: frame count\nours {of:?}\ndrgn {df:?}"
            );
            for (i, (o, d)) in of.iter().zip(df).enumerate() {
                frames_checked += 1;
                let dn = d["name"].as_str().unwrap_or("");
                let on = o["function"].as_str().unwrap_or("");
                // An assembly frame has no DWARF function: drgn takes the
                // ELF symbol, wedge the kallsyms one (entry_SYSCALL_64 vs
                // its label entry_SYSCALL_64_after_hwframe).
                assert!(
                    on == dn || on.starts_with(dn),
                    "pid {pid} #{i}: {on} vs {dn}"
                );
                assert_eq!(o["file"], d["file"], "pid {pid} #{i} {on}");
                assert_eq!(o["line"], d["line"], "pid {pid} #{i} {on}");
                if d["column"].as_u64().unwrap_or(0) != 0 {
                    assert_eq!(o["column"], d["column"], "pid {pid} #{i} {on}");
                }
                assert_eq!(o["inline"], d["inline"], "pid {pid} #{i} {on}");
                let ov: BTreeMap<&str, &Value> = o["variables"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| (v["name"].as_str().unwrap(), &v["value"]))
                    .collect();
                for (name, dv) in d["vars"].as_object().unwrap() {
                    vars_all += 1;
                    let mine = ov.get(name.as_str()).map(|v| u64_of(v));
                    let same = match (mine, dv) {
                        (Some(None), Value::Null) => true,
                        (Some(Some(a)), Value::Number(n)) => Some(a) == n.as_u64(),
                        _ => false,
                    };
                    if same {
                        vars_same += 1;
                    } else {
                        diffs.push(format!(
                            "pid {pid} #{i} {on}: {name}: ours {mine:?}, drgn {dv}"
                        ));
                    }
                }
            }
        }
        let in_fuse = tasks
            .iter()
            .flat_map(|t| t["frames"].as_array().unwrap())
            .filter(|f| f["module"] == "fuse" && f["source"] == "dwarf")
            .count();
        println!(
            "bt vs drgn: {frames_checked} frames identical ({in_fuse} in fuse.ko, from its DWARF); variables {vars_same}/{vars_all} the same"
        );
        if moddir.is_some() {
            assert!(in_fuse > 0, "no fuse.ko frame was read with its DWARF");
        }
        for d in &diffs {
            println!("  differs: {d}");
        }
        assert!(vars_all > 50, "too few variables compared: {vars_all}");
        assert!(
            diffs.is_empty(),
            "{} of {vars_all} variables differ",
            diffs.len()
        );
    }
}

#[test]
fn bt_without_dwarf_and_bad_debuginfo() {
    let Some(fx) = boot_or_skip(Boot::Crash).unwrap() else {
        return;
    };
    let dump = fx.dumps["elf"].to_str().expect("utf-8 fixture path");
    // No DWARF: the same frames, named by kallsyms with offsets, no files.
    let (code, out, err) = wedge(&["vmcore", dump, "bt", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("#0  __schedule+0x"), "{out}");
    assert!(
        out.contains("source: frames from the dump's ORC tables"),
        "{out}"
    );
    let (code, out, err) = wedge(&["vmcore", dump, "bt", "1", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    if let Err(m) = common::conforms("vmcore-bt.json", "bt 1", &doc) {
        panic!("{m}");
    }
    assert_eq!(doc["tasks"][0]["frames"][0]["source"], "kallsyms");
    assert_eq!(doc["tasks"][0]["frames"][0]["file"], Value::Null);

    // Bad debuginfo: an error naming the file, exit 2, never a panic.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("vmlinux-junk");
    std::fs::write(&junk, b"not an ELF file at all").unwrap();
    let junk = junk.to_str().unwrap();
    let (code, _, err) = wedge(&["vmcore", dump, "--debuginfo", junk, "bt", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(junk) && err.contains("not a readable ELF file"),
        "{err}"
    );
    // Another build: the wedge binary itself is an x86-64 ELF with DWARF
    // but no linux_banner and another (or no) build-id.
    let me = env!("CARGO_BIN_EXE_wedge");
    let (code, _, err) = wedge(&["vmcore", dump, "--debuginfo", me, "bt", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(me)
            && (err.contains("does not match the dump's")
                || err.contains("cannot tell which kernel")),
        "{err}"
    );
    if let Some(v) = std::env::var_os("WEDGE_DEBUGINFO") {
        // Truncated: the first megabyte of the real vmlinux.
        let mut head = vec![0u8; 1 << 20];
        use std::io::Read;
        std::fs::File::open(&v)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        let cut = dir.path().join("vmlinux-cut");
        std::fs::write(&cut, &head).unwrap();
        let cut = cut.to_str().unwrap();
        let (code, _, err) = wedge(&["vmcore", dump, "--debuginfo", cut, "bt", "1"]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(cut), "{err}");
    }
}
