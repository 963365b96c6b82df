//! `wedge vmcore DUMP shell` as a user runs it with commands piped in, on
//! the QEMU guest's dumps (wedge-vmcore's fixtures, cached under target/):
//! the dump opened once, several commands, one bad one that does not end
//! the session.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, Boot};
use std::time::Duration;

#[test]
fn a_piped_session_on_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = fx.dumps["kdump-zlib"].to_str().expect("utf-8 fixture path");
    // The history lives under HOME / XDG_STATE_HOME: both point at a
    // scratch directory (removed on drop), never the user's own.
    let home = common::scratch("shell");
    let reader = fx
        .view
        .by_comm("wk-fuse-reader")
        .expect("fuse scenario ran")
        .pid;
    let script = format!(
        "eval init_task.comm\n\
         eval init_task.comn\n\
         p task(1)->mm ? task(1)->pid : -1\n\
         eval --depth 0 init_task\n\
         sym current_task\n\
         frobnicate 1\n\
         rd init_task 2\n\
         dis schedule 3\n\
         ptype struct list_head\n\
         ps\n\
         why {reader}\n\
         ps --bogus\n\
         help\n\
         eval task(1)->comm --json\n\
         quit\n\
         eval 1\n"
    );
    let r = common::run(
        &["vmcore", dump, "shell"],
        common::Opts::within(Duration::from_secs(300))
            .stdin(script.as_bytes())
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state")),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = &r.stdout;
    assert!(
        out.starts_with("(char [16])\"swapper/0\"\n(pid_t)1\n"),
        "{out}"
    );
    assert!(
        out.contains("*(struct task_struct *)0x") && out.contains(" = {...}\n"),
        "{out}"
    );
    assert!(out.contains(" current_task  per-CPU"), "{out}");
    // rd reads the words where eval found init_task.
    let addr = out
        .split("*(struct task_struct *)0x")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("init_task's address");
    assert!(out.contains(&format!("\n{addr:0>16}:  ")), "{out}");
    assert!(out.contains(" <schedule+0>:\t"), "{out}");
    assert!(out.contains("struct list_head {\n"), "{out}");
    // The dump views share one snapshot.
    assert!(out.contains("wk-fuse-reader"), "{out}");
    assert!(
        out.contains(&format!("wk-fuse-reader (pid {reader})")),
        "{out}"
    );
    assert!(out.contains("why PID"), "help lists the views: {out}");
    let init = &fx.view.tasks[&1].comm;
    assert!(
        out.ends_with(&format!("\"type\":\"char [16]\",\"value\":\"{init}\"}}\n")),
        "{out}"
    );
    // Nothing after quit ran.
    assert!(!out.contains("(int)1\n"), "{out}");
    // Each bad command: its error on stderr, and the session went on.
    let err = &r.stderr;
    assert!(
        err.contains("error: struct task_struct has no member \"comn\" (near: comm) (column 11)\n  init_task.comn\n            ^^^^\n"),
        "{err}"
    );
    assert!(
        err.contains("error: unknown command \"frobnicate\""),
        "{err}"
    );
    assert!(
        err.contains("error: unexpected argument '--bogus'"),
        "{err}"
    );
    // A piped session keeps no history.
    assert!(!home.path().join("state").exists());
    assert!(!home.path().join(".local").exists());
}
