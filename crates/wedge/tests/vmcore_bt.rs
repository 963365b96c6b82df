//! `wedge vmcore DUMP --debuginfo VMLINUX bt PID…|--all [--vars] --json` on
//! the QEMU guest's crash dump: the schema, the panic path with its inlined
//! frames, and frame variables and DWARF-typed globals in `eval`. The
//! comparison with drgn, frame by frame and variable by variable, is
//! `vmcore_drgn.rs`. The vmlinux is the one scripts/vmcore-debuginfo.sh
//! extracts from Debian's -dbg package (or `WEDGE_DEBUGINFO`); without it
//! the test says SKIPPED.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, debuginfo_or_skip, Boot};
use serde_json::Value;
use std::time::Duration;

fn wedge(args: &[&str]) -> (Option<i32>, String, String) {
    let r = common::run(args, common::Opts::within(Duration::from_secs(600)));
    (r.code, r.stdout, r.stderr)
}

#[test]
fn bt_with_dwarf_reads_frames_and_variables() {
    let Some(fx) = boot_or_skip(Boot::Crash).unwrap() else {
        return;
    };
    let Some(di) = debuginfo_or_skip(&fx.kernel_release) else {
        return;
    };
    let vmlinux = di.vmlinux.to_str().expect("utf-8 path").to_string();
    // The scenario's FUSE reader sleeps in fuse.ko: its DWARF too.
    let modules = di.args("--debuginfo");
    for format in ["elf", "kdump-zlib"] {
        let dump = fx.dumps[format].to_str().expect("utf-8 fixture path");
        let mut args = vec!["vmcore", dump];
        args.extend(modules.iter().map(String::as_str));
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
    if let Some(di) = debuginfo_or_skip(&fx.kernel_release) {
        // Truncated: the first megabyte of the real vmlinux.
        let mut head = vec![0u8; 1 << 20];
        use std::io::Read;
        std::fs::File::open(&di.vmlinux)
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
