//! `wedge vmcore DUMP eval EXPR [--json]` and `ptype` as a user runs them,
//! on the QEMU guest's dumps (wedge-vmcore's fixtures, cached under
//! target/): typed memory from the dump's BTF, no debuginfo.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, Boot};
use std::time::Duration;

fn wedge(args: &[&str]) -> (Option<i32>, String, String) {
    let r = common::run(args, common::Opts::within(Duration::from_secs(300)));
    (r.code, r.stdout, r.stderr)
}

#[test]
fn eval_and_ptype_on_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = fx.dumps["kdump-zlib"].to_str().expect("utf-8 fixture path");

    let (code, out, err) = wedge(&["vmcore", dump, "eval", "init_task.comm"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "(char [16])\"swapper/0\"\n");

    let (code, out, err) = wedge(&["vmcore", dump, "eval", "task(1)->comm", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(j["type"], "char [16]");
    assert_eq!(j["value"], fx.view.tasks[&1].comm.as_str());
    // Every JSON document of wedge's matches its schema in docs/schema/:
    // a string, a struct (an object of members), a bool, a pointer.
    for e in ["task(1)->comm", "*task(1)", "1 == 1", "&init_task"] {
        let (code, out, err) = wedge(&["--json", "vmcore", dump, "eval", e]);
        assert_eq!(code, Some(0), "{e}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        if let Err(m) = common::conforms("vmcore-eval.json", e, &doc) {
            panic!("{m}");
        }
        assert_eq!(doc["schema_version"], 1);
    }

    let (code, out, _) = wedge(&[
        "vmcore",
        dump,
        "eval",
        "container_of(&init_task.tasks, struct task_struct, tasks) == &init_task",
    ]);
    assert_eq!((code, out.as_str()), (Some(0), "(bool)true\n"));

    // Bad input: exit 2, the message on stderr with a caret at the column.
    let (code, out, err) = wedge(&["vmcore", dump, "eval", "init_task.comm +"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        err.contains("expected an expression, found the end of the expression (column 17)"),
        "{err}"
    );
    assert!(
        err.contains("\n  init_task.comm +\n                  ^"),
        "{err}"
    );
    let (code, _, err) = wedge(&["vmcore", dump, "eval", "*(unsigned long *)0x10"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("fault at 0x10 "), "{err}");

    let (code, out, err) = wedge(&["vmcore", dump, "ptype", "struct list_head"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("struct list_head {\n\tstruct list_head *next;"),
        "{out}"
    );
}

#[test]
fn sym_rd_dis_and_lists_from_the_command_line() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = fx.dumps["kdump-zlib"].to_str().expect("utf-8 fixture path");

    let (code, out, err) = wedge(&["vmcore", dump, "sym", "schedule"]);
    assert_eq!(code, Some(0), "{err}");
    let addr = out.split(' ').next().unwrap_or_default().to_string();
    let (code, back, err) = wedge(&["vmcore", dump, "sym", &addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        back.starts_with(&format!("{addr} (T) schedule+0 ")),
        "{back}"
    );
    let (code, j, _) = wedge(&["--json", "vmcore", dump, "sym", "schedule"]);
    assert_eq!(code, Some(0));
    let j: serde_json::Value = serde_json::from_str(&j).expect("one JSON document");
    assert_eq!(j["address"], u64::from_str_radix(&addr, 16).unwrap());

    let (code, out, err) = wedge(&["vmcore", dump, "rd", "&init_task", "4"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");

    let (code, out, err) = wedge(&["vmcore", dump, "dis", "schedule"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap_or_default()
            .contains(&format!("0x{addr} <+0>:")),
        "{out}"
    );
    assert!(out.contains("\tcall 0xffffffff"), "{out}");

    // The tasks list counts the processes `ps --all` lists (thread-group
    // leaders, pid > 0; init_task, pid 0, is the list's head).
    let (code, out, err) = wedge(&["--json", "vmcore", dump, "ps", "--all"]);
    assert!(code == Some(0) || code == Some(1), "{err}");
    let ps: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    let n = ps["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["pid"].as_i64().is_some_and(|p| p > 0))
        .count();
    let (code, out, err) = wedge(&["vmcore", dump, "eval", "list_count(&init_task.tasks)"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("(unsigned long){n}\n"));
    let (code, out, _) = wedge(&[
        "--json",
        "vmcore",
        dump,
        "eval",
        "list_for_each_entry(&init_task.tasks, struct task_struct, tasks)",
    ]);
    assert_eq!(code, Some(0));
    let j: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(j["value"].as_array().map(Vec::len), Some(n));
    if let Err(m) = common::conforms("vmcore-eval.json", "list", &j) {
        panic!("{m}");
    }

    // Each command's JSON document matches its schema, schema_version first.
    for (args, schema) in [
        (vec!["sym", "schedule"], "vmcore-sym.json"),
        (vec!["sym", "schedule+0x10"], "vmcore-sym.json"),
        (vec!["rd", "&init_task", "4"], "vmcore-rd.json"),
        (vec!["dis", "schedule"], "vmcore-dis.json"),
        (vec!["dis", "schedule", "3"], "vmcore-dis.json"),
    ] {
        let mut a = vec!["--json", "vmcore", dump];
        a.extend(&args);
        let (code, out, err) = wedge(&a);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.starts_with("{\"schema_version\":1,"), "{out}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        if let Err(m) = common::conforms(schema, &args.join(" "), &doc) {
            panic!("{m}");
        }
    }

    // Bad input: clear errors, exit 2.
    for (args, want) in [
        (
            vec!["sym", "schedulx"],
            "unknown symbol schedulx (near: schedule",
        ),
        (vec!["sym", "0x10"], "in no symbol"),
        (vec!["rd", "0x10"], "fault at 0x10 "),
        (vec!["rd", "init_task", "0"], "COUNT must be at least 1"),
        (vec!["rd", "init_task", "100000000"], "too many"),
        (vec!["dis", "init_task"], "not a function"),
    ] {
        let mut a = vec!["vmcore", dump];
        a.extend(&args);
        let (code, _, err) = wedge(&a);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// The dumps the guest's capture kernel made (makedumpfile's kdump file and
/// /proc/vmcore's ELF): the same expressions, and the crashed task.
#[test]
fn eval_on_the_dumps_kexec_and_makedumpfile_made() {
    let Some(fx) = boot_or_skip(Boot::Kdump).unwrap() else {
        return;
    };
    for format in ["kdump-zlib", "elf"] {
        let dump = fx.dumps[format].to_str().expect("utf-8 fixture path");
        for (e, want) in [
            ("init_task.comm", "(char [16])\"swapper/0\"\n"),
            ("crashed_task->comm", "(char [16])\"wk-crasher\"\n"),
            ("crashed_cpu", "(int)0\n"),
        ] {
            let (code, out, err) = wedge(&["vmcore", dump, "eval", e]);
            assert_eq!(code, Some(0), "{format}: {e}: {err}");
            assert_eq!(out, want, "{format}: {e}");
        }
        let (code, out, err) = wedge(&["vmcore", dump, "eval", "task(1)->comm", "--json"]);
        assert_eq!(code, Some(0), "{format}: {err}");
        let j: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(j["value"], fx.view.tasks[&1].comm.as_str(), "{format}");
    }
}
