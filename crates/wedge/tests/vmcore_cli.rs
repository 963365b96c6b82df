//! `wedge vmcore` as a user runs it, on real dumps that QEMU writes of a
//! Debian kernel running wedge-vmcore's guest scenarios (the fixture builder
//! is wedge-vmcore's own; the dumps are cached under target/).

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, Boot};
use std::path::Path;
use std::time::Duration;

fn wedge(args: &[&str]) -> (Option<i32>, String, String) {
    // A dump's whole task list and symbol tables: more than the default.
    let r = common::run(args, common::Opts::within(Duration::from_secs(300)));
    (r.code, r.stdout, r.stderr)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 fixture path")
}

/// The pid of the boot's FUSE reader, the task every guest scenario leaves
/// wedged in `fuse_get_req`.
fn fuse_reader(fx: &fixture::BootFixture) -> i32 {
    fx.view
        .by_comm("wk-fuse-reader")
        .expect("fuse scenario ran")
        .pid
}

#[test]
fn verdict_ps_why_log_and_tasks_from_a_dump() {
    // QEMU's dumps, and those the guest made itself after a panic (kexec
    // into a capture kernel, makedumpfile): the production path.
    for boot in [Boot::Kaslr, Boot::Kdump] {
        let Some(fx) = boot_or_skip(boot).unwrap() else {
            continue;
        };
        views_of_a_dump(fx, boot == Boot::Kdump);
    }
}

fn views_of_a_dump(fx: &fixture::BootFixture, panicked: bool) {
    let pid = fuse_reader(fx).to_string();
    for format in ["elf", "kdump-zlib"] {
        let dump = path(&fx.dumps[format]);
        let format = format!("{}/{format}", fx.boot.name());

        // The whole-machine verdict: the FUSE wait is the wedge; exit 1.
        let (code, out, err) = wedge(&["vmcore", dump]);
        assert_eq!(code, Some(1), "{format}: {err}\n{out}");
        assert!(
            out.contains("fuse.unanswered") && out.contains("wk-fuse-reader"),
            "{out}"
        );
        assert!(out.contains(&fx.kernel_release), "names the kernel: {out}");
        assert!(
            out.contains("dump: task/") && !out.contains("— /proc/"),
            "evidence cites the dump, not /proc: {out}"
        );

        // ps: the stuck tasks, with states /proc cannot show apart.
        let (_, out, _) = wedge(&["vmcore", dump, "ps"]);
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(pid.as_str()))
            .unwrap_or_else(|| panic!("{out}"));
        // The command line is read from the process's memory: the kdump
        // boot's makedumpfile -d 31 file left user pages out (its ELF copy
        // of /proc/vmcore has them), and ps falls back to the task's name.
        let command = if panicked && format.ends_with("kdump-zlib") {
            " wk-fuse-reader"
        } else {
            " wk fuse"
        };
        // After the command, ps notes how a D task sleeps, which a dump
        // tells: "  (killable: kill -9 ends it)".
        let (row, note) = line.split_once("  (").unwrap_or((line, ""));
        assert!(
            row.contains(" D ") && row.contains("fuse_get_req") && row.ends_with(command),
            "{line}"
        );
        assert!(note.starts_with("killable"), "{line}");

        // why: the module's frames named with their module.
        let (code, out, _) = wedge(&["vmcore", dump, "why", &pid]);
        assert_eq!(code, Some(1));
        assert!(out.contains("fuse_get_req [fuse]"), "{out}");
        assert!(out.contains("a killable wait"), "{out}");

        // JSON: the same snapshot shape as the live `ps --json`.
        let (code, out, err) = wedge(&["--json", "vmcore", dump, "ps"]);
        assert!(matches!(code, Some(0 | 1)), "{err}");
        let snap: serde_json::Value = serde_json::from_str(&out).expect("ps --json parses");
        let procs = snap["processes"].as_array().expect("processes");
        assert!(procs.len() > 50, "{} processes", procs.len());

        // tasks: every task the guest listed, with its state.
        let (code, out, _) = wedge(&["--json", "vmcore", dump, "tasks"]);
        assert_eq!(code, Some(0));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(doc["partial"].is_null(), "an intact dump is whole: {doc}");
        let tasks = doc["tasks"].as_array().expect("tasks");
        for g in fx.view.tasks.values().filter(|g| g.comm.starts_with("wk-")) {
            assert!(
                tasks.iter().any(|t| t["task"]["pid"] == g.pid),
                "{format}: {} ({}) missing",
                g.pid,
                g.comm
            );
        }

        // log: the dump's printk buffer through `wedge log`'s parser and
        // renderer; `--raw` gives the records as dmesg prints them.
        let (code, out, _) = wedge(&["vmcore", dump, "log"]);
        // A panic is a serious event (exit 1); the other boots have none.
        let serious = Some(if panicked { 1 } else { 0 });
        assert_eq!(code, serious, "{format}: {out}");
        assert!(
            out.contains(" event(s) in ") && !out.contains("Linux version"),
            "{}",
            &out[..out.len().min(500)]
        );
        let (code, out, _) = wedge(&["vmcore", dump, "log", "--raw"]);
        assert_eq!(code, serious);
        assert!(
            out.contains("Linux version"),
            "{}",
            &out[..out.len().min(500)]
        );
    }
}

/// A dump made by kexec and makedumpfile: the panicking CPU's registers
/// were saved in __crash_kexec; the panic view, `why` and `tasks` show the
/// crashing task's whole stack, from there down to the system call.
#[test]
fn kdump_panic_view_why_and_tasks_show_the_whole_chain() {
    let Some(fx) = boot_or_skip(Boot::Kdump).unwrap() else {
        return;
    };
    for format in ["kdump-zlib", "elf"] {
        let dump = path(&fx.dumps[format]);
        let (_, out, _) = wedge(&["--json", "vmcore", dump]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let pid = doc["crash"]["pid"].as_i64().expect("crashing pid");
        assert_eq!(doc["crash"]["comm"], "wk-crasher");
        let stack: Vec<&str> = doc["crash"]["stack"]
            .as_array()
            .expect("crash.stack")
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        // From __crash_kexec through sysrq into the syscall, in order
        // (kallsyms may name a compiler-split part `.cold`).
        let mut at = 0;
        for want in [
            "__crash_kexec",
            "panic",
            "sysrq_handle_crash",
            "__handle_sysrq",
            "write_sysrq_trigger",
            "ksys_write",
        ] {
            at += stack[at..]
                .iter()
                .position(|f| f.split('.').next() == Some(want))
                .unwrap_or_else(|| panic!("{format}: {want} not in order in {stack:?}"))
                + 1;
        }
        assert!(
            stack
                .last()
                .is_some_and(|f| f.starts_with("entry_SYSCALL_64")),
            "{format}: {stack:?}"
        );
        let chain = stack.join(" ← ");
        let (code, out, err) = wedge(&["vmcore", dump]);
        assert_eq!(code, Some(1), "{format}: {err}\n{out}");
        assert!(
            out.contains(&format!(
                "Kernel panic on CPU 0: sysrq triggered crash\n  crashing task: {pid} (wk-crasher)\n  stack: {chain}\n"
            )),
            "{format}: {out}"
        );
        let pid = pid.to_string();
        let (_, out, _) = wedge(&["vmcore", dump, "why", &pid]);
        let frames: Vec<&str> = out
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "__crash_kexec")
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(frames.join(" ← "), chain, "{format}: {out}");
        let (_, out, _) = wedge(&["vmcore", dump, "tasks"]);
        let block: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{pid} wk-crasher")))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| l.trim().split('+').next().unwrap_or(l))
            .collect();
        assert_eq!(block.join(" ← "), chain, "{format}: {out}");
    }
}

#[test]
fn damaged_dumps_are_errors_not_panics() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let scratch = common::scratch("vmcore-cli");
    let dir = scratch.path();
    let elf = std::fs::read(&fx.dumps["elf"]).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated", elf[..1 << 20].to_vec()),
        ("header-only", elf[..64].to_vec()),
        ("not-a-dump", b"hello, this is not a crash dump\n".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let (code, out, err) = wedge(&["vmcore", path(&p)]);
        assert_eq!(code, Some(2), "{name}: exit {code:?}\n{out}\n{err}");
        assert!(
            err.contains(path(&p)),
            "{name}: error names the file: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// A directory for test files, removed when dropped (even on a failed
/// assertion).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("wedge-vmcore-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The first `n` bytes of a file, copied to `to`.
fn cut(from: &Path, n: u64, to: &Path) {
    use std::io::Read;
    let mut src = std::fs::File::open(from).unwrap().take(n);
    let mut dst = std::fs::File::create(to).unwrap();
    std::io::copy(&mut src, &mut dst).unwrap();
}

#[test]
fn truncated_dumps_say_so_on_every_view() {
    // A copy cut short (a dump still being written, a full disk) used to
    // give a header-only `ps` with exit 0: a false all-clear. Every view
    // must say the view is partial and how much was read, and never exit 0.
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let pid = fuse_reader(fx).to_string();
    let dir = TempDir::new("trunc");
    let mut exits = std::collections::BTreeMap::new();
    for format in ["elf", "kdump-zlib", "kdump-zlib-plain"] {
        let Some(src) = fx.dumps.get(format) else {
            continue;
        };
        let full = std::fs::metadata(src).unwrap().len();
        for (num, den) in [(1, 2), (9, 10), (99, 100)] {
            let copy = dir.0.join(format!("{format}-{num}-{den}"));
            cut(src, full * num / den, &copy);
            let dump = path(&copy);
            let views: [&[&str]; 5] = [&[], &["ps"], &["why", &pid], &["tasks"], &["log"]];
            for view in views {
                for json in [false, true] {
                    let mut args = vec![];
                    if json {
                        args.push("--json");
                    }
                    args.extend(["vmcore", dump]);
                    args.extend(view);
                    let what = format!("{format} cut at {num}/{den}: {args:?}");
                    let (code, out, err) = wedge(&args);
                    exits.insert(what.clone(), code);
                    assert!(!err.contains("panicked"), "{what}: {err}");
                    assert_ne!(
                        code,
                        Some(0),
                        "{what}: a partial view is no all-clear\n{out}{err}"
                    );
                    if code == Some(2) {
                        // Unreadable (kallsyms, BTF or the printk ring
                        // missing): an error naming the file and saying
                        // that it is cut short.
                        assert!(err.contains(dump), "{what}: {err}");
                        assert!(
                            err.contains("dump truncated: ") || err.contains("truncated dump: "),
                            "{what}: the cut is not named: {err}"
                        );
                        continue;
                    }
                    assert!(
                        err.contains("partial view: dump truncated: "),
                        "{what}: said on stderr: {err}"
                    );
                    if json {
                        let doc: serde_json::Value = serde_json::from_str(&out)
                            .unwrap_or_else(|e| panic!("{what}: {e}\n{out}"));
                        let p = doc["partial"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{what}: {doc}"));
                        assert!(p.contains(" tasks read"), "{what}: {p}");
                    } else {
                        assert!(
                            out.contains("dump truncated: "),
                            "{what}: said in the view: {out}"
                        );
                        assert!(!out.contains("nothing is wedged"), "{what}: {out}");
                    }
                }
            }
        }
    }
    // The cuts cover both outcomes: found something in what was read (1)
    // and nothing found in a partial view (3).
    let codes: std::collections::BTreeSet<_> = exits.values().collect();
    assert!(codes.contains(&Some(3)), "{exits:#?}");
    assert!(codes.contains(&Some(1)), "{exits:#?}");
}

#[test]
fn a_missing_dump_is_named_once() {
    let dir = TempDir::new("missing");
    let p = dir.0.join("no-such.dump");
    let (code, _, err) = wedge(&["vmcore", path(&p)]);
    assert_eq!(code, Some(2));
    assert_eq!(err.matches(path(&p)).count(), 1, "{err}");
}

#[test]
fn dump_views_do_not_pass_for_live_ones() {
    // What a dump does not hold is said, not shown as a fact; what the
    // live views print for the live machine is adapted to the dump.
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = path(&fx.dumps["elf"]);
    let pid = fuse_reader(fx);

    // User tasks by their command lines, read from their memory in the
    // dump; kernel threads in brackets as ps(1) shows them.
    let (_, out, _) = wedge(&["vmcore", dump, "ps", "--all"]);
    assert!(
        out.lines().any(|l| l.contains(&format!(" {pid} "))
            && l.split("  (")
                .next()
                .is_some_and(|row| row.ends_with(" wk fuse"))),
        "{out}"
    );
    // Brackets as ps(1) puts them: kernel threads, and a zombie (its mm
    // is gone, so its command line is empty), never a live user task.
    assert!(
        out.lines()
            .filter(|l| l.contains("[wk-"))
            .all(|l| l.contains(" Z ") && l.ends_with(" [wk-zombie]")),
        "user tasks are not kernel threads: {out}"
    );
    assert!(out.lines().any(|l| l.ends_with(" [kthreadd]")), "{out}");
    assert!(out.contains("COMMAND is the command line"), "{out}");

    // Signal dispositions come from sighand->action[]: a background job
    // of /init's shell ignores SIGINT and SIGQUIT.
    let (_, out, _) = wedge(&["vmcore", dump, "why", &pid.to_string()]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("signals"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("ignored SIGINT,SIGQUIT"), "{line}");
    let (_, out, _) = wedge(&["--json", "vmcore", dump, "why", &pid.to_string()]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc["process"].get("dispositions_missing").is_none(),
        "{}",
        doc["process"]
    );

    // The footer names the command that works on a dump.
    let (code, out, _) = wedge(&["vmcore", dump]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&format!("details: wedge vmcore {dump} why PID")),
        "{out}"
    );

    // -v: evidence and remedies for every finding, as in the live verdict.
    let why_lines = |s: &str| s.lines().filter(|l| l.starts_with("      why ")).count();
    let findings = |s: &str| s.lines().filter(|l| l.starts_with("  [")).count();
    let (_, verbose, _) = wedge(&["vmcore", dump, "-v"]);
    assert!(
        findings(&out) > why_lines(&out),
        "some findings are terse: {out}"
    );
    assert_eq!(findings(&verbose), why_lines(&verbose), "{verbose}");
}

#[test]
fn a_panic_in_the_dump_log_is_a_typed_event_and_exit_1() {
    for boot in [Boot::Crash, Boot::Kdump] {
        let Some(fx) = boot_or_skip(boot).unwrap() else {
            continue;
        };
        panic_in_the_log(fx);
    }
}

fn panic_in_the_log(fx: &fixture::BootFixture) {
    for format in ["elf", "kdump-zlib"] {
        let dump = path(&fx.dumps[format]);
        let format = format!("{}/{format}", fx.boot.name());
        let (code, out, err) = wedge(&["vmcore", dump, "log"]);
        assert_eq!(code, Some(1), "{format}: {err}\n{out}");
        assert!(
            out.contains("[panic]") && out.contains("wk-crasher"),
            "{out}"
        );
        let (code, out, _) = wedge(&["--json", "vmcore", dump, "log"]);
        assert_eq!(code, Some(1));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let events = doc["events"].as_array().expect("events");
        assert!(events.iter().any(|e| e["kind"] == "panic"), "{doc}");
        let (code, out, _) = wedge(&["vmcore", dump, "log", "--raw"]);
        assert_eq!(code, Some(1));
        assert!(out.contains("Kernel panic - not syncing"), "{out}");
    }
}

/// Every `wedge vmcore ... --json` view matches its schema in docs/schema/:
/// on intact dumps of both formats (a FUSE wedge with lock waits), on a copy
/// cut in half (the `partial` fields set), and on a dump of a panic (the
/// crash filled in, a panic event in the log).
#[test]
fn json_views_of_a_dump_match_the_schema() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let pid = fuse_reader(fx).to_string();
    let dir = common::scratch("vmcore-schema");
    // (what, dump, pid for `why`): the FUSE reader where the boot has one.
    let mut dumps: Vec<(String, String, String)> = ["elf", "kdump-zlib"]
        .iter()
        .map(|f| (f.to_string(), path(&fx.dumps[*f]).to_string(), pid.clone()))
        .collect();
    // Half of a dump of the boot without KASLR: its kernel sits at 16 MiB,
    // so the first half always holds the kernel's own data and the views
    // are partial documents. (A KASLR kernel may sit in the half cut off —
    // seen in CI — and then every view is an error saying so; the cut
    // tests cover that outcome.)
    if let Some(plain) = boot_or_skip(Boot::NoKaslr).unwrap() {
        let src = &plain.dumps["elf"];
        let half = dir.path().join("elf-half");
        cut(src, std::fs::metadata(src).unwrap().len() / 2, &half);
        let reader = fuse_reader(plain).to_string();
        dumps.push(("elf cut in half".into(), path(&half).to_string(), reader));
    }
    // The dumps the guest's capture kernel wrote: makedumpfile's and the
    // ELF /proc/vmcore, both with the panic.
    if let Some(kdump) = boot_or_skip(Boot::Kdump).unwrap() {
        let reader = fuse_reader(kdump).to_string();
        for f in ["kdump-zlib", "elf"] {
            let dump = path(&kdump.dumps[f]).to_string();
            dumps.push((format!("kdump {f}"), dump, reader.clone()));
        }
    }
    if let Some(crash) = boot_or_skip(Boot::Crash).unwrap() {
        let dump = path(&crash.dumps["elf"]).to_string();
        // A guest that panicked before its fw_cfg driver loaded (an early
        // boot panic under load) leaves a dump without VMCOREINFO: that
        // fixture cannot be read, which the panic tests report; skip it here.
        match wedge(&["--json", "vmcore", &dump]) {
            (Some(2), _, err) => fixture::skip_or_fail(&format!("the panic dump: {err}")),
            _ => dumps.push(("panic".into(), dump, pid.clone())),
        }
    }
    for (what, dump, pid) in &dumps {
        let views: [(&str, &[&str]); 5] = [
            ("vmcore-verdict.json", &[]),
            ("snapshot.json", &["ps"]),
            ("vmcore-why.json", &["why", pid]),
            ("vmcore-tasks.json", &["tasks"]),
            ("vmcore-log.json", &["log"]),
        ];
        for (schema, view) in views {
            let mut args = vec!["--json", "vmcore", dump];
            args.extend(view);
            let (code, out, err) = wedge(&args);
            if code == Some(2) && (what.ends_with("half") || what == "panic") {
                // Half a dump may lack the printk buffer's pages, and the
                // panic boot has no FUSE reader: an error, not a document.
                // Intact dumps must give every view.
                assert!(
                    err.contains("no process or thread") || err.contains("is not in the dump"),
                    "{what}: {args:?}: {err}"
                );
                continue;
            }
            let doc: serde_json::Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{what}: {args:?}: {e}: {err}"));
            if let Err(e) = common::conforms(schema, &format!("{what}: {args:?}"), &doc) {
                panic!("{e}");
            }
            assert_eq!(doc["schema_version"], 1, "{what}: {args:?}");
            if what.contains("half") && schema != "snapshot.json" {
                assert!(doc["partial"].is_string(), "{what}: {args:?}: {doc}");
            }
        }
    }
}

/// The FUSE chain from a dump alone: the reader's stat(2) is tied to the
/// one connection with requests waiting (fc->num_waiting, read through
/// the fuse module's BTF), numbered as mountinfo's `0:N` of the mount at
/// /tmp/wk-fuse, and the chain ends at the daemon holding /dev/fuse. The
/// abort that would free it live is said, not offered as a command: the
/// machine is gone.
#[test]
fn fuse_chain_names_connection_and_daemon_from_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let reader = fuse_reader(fx).to_string();
    let daemon = fx.view.by_comm("wk-fused").expect("fuse scenario ran").pid;
    for format in ["elf", "kdump-zlib"] {
        let dump = path(&fx.dumps[format]);
        let (code, out, err) = wedge(&["--json", "vmcore", dump, "why", &reader]);
        assert_eq!(code, Some(1), "{format}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let fds = doc["process"]["fds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            fds.iter().any(|f| f["target"] == "/dev/fuse"),
            "{format}: {fds:?}"
        );
        let (_, text, _) = wedge(&["vmcore", dump, "why", &reader]);
        // The connection's number, from the mount's device.
        let conn = text
            .split("FUSE connection ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{format}: no connection named: {text}"));
        assert!(conn > 0, "{format}");
        let chain = format!(
            "wk-fuse-reader {reader} (D, fuse_get_req) → FUSE connection {conn} (/tmp/wk-fuse) → wk-fused {daemon} (S"
        );
        assert!(text.contains(&chain), "{format}: no `{chain}` in {text}");
        // The reader inherited /dev/fuse but only waits: not a daemon, so
        // no circle through itself.
        assert!(!text.contains("wait.cycle"), "{format}: {text}");
        assert!(
            text.contains("only FUSE connection with requests waiting"),
            "{format}: {text}"
        );
        // The count is cited where it was read: the dump, not fusectl.
        assert!(
            text.contains(&format!("— dump: fuse_conn {conn} (num_waiting)")),
            "{format}: {text}"
        );
        assert!(!text.contains("— /sys/"), "{format}: {text}");
        // No command to run on the machine reading the dump.
        assert!(!text.contains("$ echo 1 >"), "{format}: {text}");
        assert!(!text.contains("$ umount"), "{format}: {text}");
        assert!(
            text.contains(&format!("aborting FUSE connection {conn} (/tmp/wk-fuse)")),
            "{format}: {text}"
        );
    }
}
