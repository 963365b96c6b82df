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
