//! Expressions over real crash dumps: the QEMU guest of wedge-vmcore's
//! tests (a Debian 6.1 kernel, dumps cached under target/vmcore-fixtures),
//! with no debuginfo: types from the dump's own BTF, symbols from its
//! kallsyms.

#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, Boot};
use wedge_kmem::cmd;
use wedge_vmcore::{Options, Vmcore};

fn open(p: &std::path::Path) -> Vmcore {
    Vmcore::open(p, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn eval(v: &Vmcore, e: &str) -> String {
    cmd::eval(v, e, false).unwrap_or_else(|err| panic!("{e}:\n{err}"))
}

#[test]
fn expressions_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let init_comm = &fx.view.tasks[&1].comm;
    for format in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[format]);
        let t = |e: &str, want: &str| {
            let got = eval(&v, e);
            assert_eq!(got.trim_end(), want, "{format}: {e}");
        };
        t("init_task.comm", "(char [16])\"swapper/0\"");
        t("((struct task_struct *)&init_task)->pid", "(pid_t)0");
        t("task(1)->comm", &format!("(char [16])\"{init_comm}\""));
        t("task(1)->pid", "(pid_t)1");
        t("task(1)->real_parent->pid", "(pid_t)0");
        // A per-CPU variable BTF describes, on each CPU.
        t("per_cpu(runqueues, 0).cpu", "(int)0");
        t(
            "per_cpu(runqueues, 0).curr == &init_task || per_cpu(runqueues, 0).curr->pid > 0",
            "(bool)true",
        );
        t(
            "container_of(&init_task.tasks, struct task_struct, tasks) == &init_task",
            "(bool)true",
        );
        t(
            "container_of(init_task.tasks.next, struct task_struct, tasks)->tasks.prev == &init_task.tasks",
            "(bool)true",
        );
        t("&init_task.tasks - &init_task.tasks", "(ptrdiff_t)0");
        // Elements of a 16-byte type: the difference counts elements.
        t(
            "&init_task.pid_links[3] - &init_task.pid_links[1]",
            "(ptrdiff_t)2",
        );
        t(
            "(char *)&init_task.pid_links[3] - (char *)&init_task.pid_links[1]",
            "(ptrdiff_t)32",
        );
        t("sizeof(struct list_head)", "(unsigned long)16");
        t(
            "offsetof(struct task_struct, tasks) == (char *)&init_task.tasks - (char *)&init_task",
            "(bool)true",
        );
        // Pointers name the symbol they point into.
        let p = eval(&v, "&init_task.tasks");
        assert!(p.contains(" <init_task+0x"), "{format}: {p}");
        // An enum by name.
        let s = eval(&v, "init_task.pid_links[0].pprev == 0 || 1");
        assert_eq!(s.trim_end(), "(bool)true");
        // A fault on an unmapped address names it, as an error.
        let e = cmd::eval(&v, "*(unsigned long *)0x10", false).unwrap_err();
        assert!(e.starts_with("fault at 0x10 "), "{format}: {e}");
        let e = cmd::eval(&v, "((struct task_struct *)0x1000)->comm", false).unwrap_err();
        assert!(e.starts_with("fault at 0x"), "{format}: {e}");
        // JSON.
        let j: serde_json::Value =
            serde_json::from_str(&cmd::eval(&v, "init_task.comm", true).unwrap()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"schema_version": 1, "type": "char [16]", "value": "swapper/0"})
        );
        let j: serde_json::Value =
            serde_json::from_str(&cmd::eval(&v, "task(1)->tasks", true).unwrap()).unwrap();
        assert_eq!(j["type"], "struct list_head");
        assert!(j["value"]["next"]
            .as_u64()
            .is_some_and(|n| n > 0xffff_0000_0000_0000));
        // A whole task prints, depth-limited, without a fault.
        let whole = eval(&v, "init_task");
        assert!(whole.starts_with("*(struct task_struct *)0x"), "{whole}");
        assert!(
            whole.contains("\t.comm = (char [16])\"swapper/0\",\n"),
            "{whole}"
        );
        // Errors point at the column and name the near ones.
        let e = cmd::eval(&v, "init_task.comn", false).unwrap_err();
        assert!(e.contains("has no member \"comn\" (near: comm"), "{e}");
        assert!(e.contains("column 11"), "{e}");
        let e = cmd::eval(&v, "per_cpu(runqueus, 0)", false).unwrap_err();
        assert!(
            e.contains("unknown symbol runqueus (near: runqueues"),
            "{e}"
        );
        let e = cmd::eval(&v, "(struct task_strct *)0", false).unwrap_err();
        assert!(e.contains("near: struct task_struct"), "{e}");
    }
}

#[test]
fn ptype_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let p = cmd::ptype(&v, "struct list_head").unwrap();
    assert!(
        p.starts_with("struct list_head {\n\tstruct list_head *next;"),
        "{p}"
    );
    assert!(p.contains("/* size: 16, members: 2 */"), "{p}");
    let p = cmd::ptype(&v, "init_task").unwrap();
    assert!(p.starts_with("struct task_struct {"), "{p}");
    assert!(p.contains("\tchar comm[16];"), "{p}");
    let p = cmd::ptype(&v, "pid_t").unwrap();
    assert_eq!(p, "pid_t = int;\t/* size: 4 */\n");
}

#[test]
fn crashed_cpu_and_task_in_a_panic_dump() {
    // QEMU's dumps of the panicked guest, and the guest's own (kexec into a
    // capture kernel, makedumpfile and /proc/vmcore).
    for boot in [Boot::Crash, Boot::Kdump] {
        let Some(fx) = boot_or_skip(boot).unwrap() else {
            continue;
        };
        crashed_cpu_and_task(fx);
    }
}

fn crashed_cpu_and_task(fx: &fixture::BootFixture) {
    for format in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[format]);
        let cpu = v
            .panic_cpu
            .expect("the crash dump records the panicking CPU");
        let task = v.crashing_task().expect("the crashing task");
        assert_eq!(eval(&v, "crashed_cpu").trim_end(), format!("(int){cpu}"));
        assert_eq!(
            eval(&v, "crashed_task->comm").trim_end(),
            format!("(char [16])\"{}\"", task.comm)
        );
        assert_eq!(
            eval(&v, "per_cpu(runqueues, crashed_cpu).curr == crashed_task").trim_end(),
            "(bool)true",
            "{format}"
        );
    }
}

#[test]
fn sym_rd_dis_and_lists_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    for format in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[format]);
        // sym NAME, then sym of that address: the same symbol, +0.
        let s = cmd::sym(&v, "schedule", false).unwrap();
        assert!(s.contains(" (T) schedule  text, size 0x"), "{format}: {s}");
        let addr = s.split(' ').next().unwrap().to_string();
        let back = cmd::sym(&v, &format!("0x{addr}"), false).unwrap();
        assert!(
            back.starts_with(&format!("{addr} (T) schedule+0  text")),
            "{format}: {back}"
        );
        let a = u64::from_str_radix(&addr, 16).unwrap();
        let inside = cmd::sym(&v, &format!("{:#x}", a + 0x10), false).unwrap();
        assert!(inside.contains(" schedule+0x10 "), "{format}: {inside}");
        let e = cmd::sym(&v, "schedulle", false).unwrap_err();
        assert!(
            e.contains("unknown symbol schedulle (near: schedule"),
            "{e}"
        );
        assert!(cmd::sym(&v, "0x10", false)
            .unwrap_err()
            .contains("in no symbol"));

        // rd: 4 words of init_task, the first its thread_info flags.
        let r = cmd::rd(&v, "&init_task", Some(4), false).unwrap();
        let it = eval(&v, "&init_task");
        let it = it.split(')').nth(1).unwrap().split(' ').next().unwrap();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines.len(), 4, "{format}: {r}");
        assert!(lines[0].starts_with(&format!("{}:  ", &it[2..])), "{r}");
        // init_task is its own parent: the word is symbolised.
        let r = cmd::rd(&v, "&init_task.real_parent", Some(1), false).unwrap();
        assert!(r.trim_end().ends_with("  <init_task+0>"), "{format}: {r}");
        assert!(cmd::rd(&v, "0x10", None, false)
            .unwrap_err()
            .starts_with("fault at 0x10 "));
        assert!(cmd::rd(&v, "init_task", Some(0), false).is_err());
        assert!(cmd::rd(&v, "init_task", Some(u64::MAX), false).is_err());

        // dis schedule: from its start, with a symbolised call.
        let d = cmd::dis(&v, "schedule", None, false).unwrap();
        assert!(
            d.starts_with(&format!(
                "Dump of assembler code for function schedule ({a:#x}, "
            )),
            "{d}"
        );
        assert!(
            d.lines()
                .nth(1)
                .unwrap()
                .starts_with(&format!("   {a:#x} <+0>:\t")),
            "{d}"
        );
        assert!(
            d.lines()
                .any(|l| l.contains("\tcall 0xffffffff") && l.ends_with('>') && l.contains(" <")),
            "{format}: {d}"
        );
        let d = cmd::dis(&v, "schedule+0x10", None, false).unwrap();
        assert_eq!(d.matches("\n=> ").count(), 1, "{d}");
        let d = cmd::dis(&v, "schedule", Some(3), false).unwrap();
        assert_eq!(d.lines().count(), 3, "{d}");
        assert!(cmd::dis(&v, "init_task", None, false)
            .unwrap_err()
            .contains("not a function"));

        // Lists: init_task.tasks holds every thread-group leader but
        // init_task itself.
        let leaders = v
            .tasks
            .iter()
            .filter(|t| t.pid > 0 && t.pid == t.tgid)
            .count();
        assert_eq!(
            eval(&v, "list_count(&init_task.tasks)").trim_end(),
            format!("(unsigned long){leaders}"),
            "{format}"
        );
        let l = eval(
            &v,
            "list_for_each_entry(&init_task.tasks, struct task_struct, tasks)",
        );
        assert!(
            l.starts_with(&format!(
                "(struct task_struct *[{leaders}]){{\n\t[0] = (struct task_struct *)0x"
            )),
            "{l}"
        );
        assert_eq!(
            eval(
                &v,
                "list_for_each_entry(&init_task.tasks, struct task_struct, tasks)[0]->pid"
            )
            .trim_end(),
            "(pid_t)1"
        );
    }
}

#[test]
fn conditional_depth_and_per_cpu_operands_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["kdump-zlib"]);
    // The conditional: lazy (a NULL pointer on the branch not taken is
    // never read), right-associative.
    assert_eq!(
        eval(&v, "init_task.mm ? init_task.mm->pgd : 0").trim_end(),
        "(int)0"
    );
    assert_eq!(
        eval(&v, "task(1)->mm ? task(1)->pid : -1").trim_end(),
        "(pid_t)1"
    );
    assert_eq!(eval(&v, "0 ? 1 : 1 ? 2 : 3").trim_end(), "(int)2");
    // --depth: how deep nested structs print before {...}.
    let shallow = cmd::eval_limited(&v, "init_task", false, cmd::limits(Some(1)).unwrap()).unwrap();
    assert!(
        shallow.contains("\t.thread_info = (struct thread_info){...},\n"),
        "{shallow}"
    );
    let deep = eval(&v, "init_task");
    assert!(
        deep.contains("\t.thread_info = (struct thread_info){\n"),
        "{deep}"
    );
    // dis names what a %gs: operand reads: this CPU's current_task, its
    // preempt count (RIP-relative), the stack canary.
    let d = cmd::dis(&v, "schedule", None, false).unwrap();
    assert!(
        d.contains(", gs:[0x") && d.contains("  # <current_task> (per-CPU)\n"),
        "{d}"
    );
    assert!(d.contains("  # <__preempt_count> (per-CPU)\n"), "{d}");
    let d = cmd::dis(&v, "__schedule", None, false).unwrap();
    assert!(
        d.contains("  # <fixed_percpu_data+0x28> (per-CPU)\n"),
        "{d}"
    );
}

#[test]
fn shell_completion_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let sh = wedge_kmem::shell::Shell::new(&v);
    let c = sh.completer();
    let t0 = std::time::Instant::now();
    let cands = |line: &str| c.complete(line, line.len()).1;
    let has = |line: &str, want: &[&str]| {
        let got = cands(line);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{line}: {w} not in {got:?}");
        }
    };
    // Symbols from kallsyms, per-CPU variables from BTF.
    has("eval init_ta", &["init_task"]);
    has("dis schedul", &["schedule", "schedule_timeout"]);
    has("eval per_cpu(runq", &["runqueues"]);
    assert!(cands("eval per_cpu(current_t") == ["current_task"]);
    eprintln!("first completion (index built): {:?}", t0.elapsed());
    // Type names of the keyword's kind.
    has("ptype struct task_", &["task_struct", "task_group"]);
    has("eval (struct list_h", &["list_head"]);
    // Members of the expression so far, from its type.
    assert_eq!(cands("eval task(1)->real_pa"), ["real_parent"]);
    assert_eq!(cands("eval per_cpu(runqueues, 0).cur"), ["curr"]);
    has("eval per_cpu(runqueues, 0).curr->mm->pg", &["pgd"]);
    has("eval ((struct task_struct *)0)->se.vr", &["vruntime"]);
    // Anonymous unions' members, through the parent.
    has("eval init_task.tasks.next->", &["next", "prev"]);
    has("eval PIDTYPE_P", &["PIDTYPE_PID", "PIDTYPE_PGID"]);
    // Bounded: a bare prefix of tens of thousands of symbols gives at most
    // MAX_CANDIDATES, the range's first and last among them.
    let many = cands("eval __");
    assert!(
        many.len() <= wedge_kmem::shell::MAX_CANDIDATES,
        "{}",
        many.len()
    );
    assert!(many.len() > 100, "{}", many.len());
}

#[test]
fn errors_name_what_was_meant_over_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let e = cmd::eval(&v, "(task_struct *)0", false).unwrap_err();
    assert!(
        e.starts_with("unknown type task_struct: task_struct is a struct, write struct task_struct (column 2)"),
        "{e}"
    );
    let e = cmd::ptype(&v, "task_struct").unwrap_err();
    assert!(
        e.contains("task_struct is a type, write struct task_struct"),
        "{e}"
    );
    let e = cmd::eval(&v, "(u46)1", false).unwrap_err();
    assert!(e.starts_with("unknown type u46 (near: u16"), "{e}");
    let e = cmd::eval(&v, "PIDTYPE_PDI", false).unwrap_err();
    assert!(e.contains("(near: PIDTYPE_PID"), "{e}");
    let e = cmd::eval(&v, "1 ? 2", false).unwrap_err();
    assert!(
        e.contains("expected \":\", found the end of the expression (column 6)\n  1 ? 2\n       ^"),
        "{e}"
    );
}
