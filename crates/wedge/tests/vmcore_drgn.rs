//! wedge against drgn on the same crash dump with the same DWARF: the
//! expressions of `scripts/drgn-exprs.tsv` (`eval --json`), every task's
//! frames with inlined ones, file and line (`bt --all --json`), and every
//! frame variable drgn reads as a scalar or pointer (`bt --all --vars
//! --json`). drgn (PyPI) and Debian's `-dbg` vmlinux and modules of the
//! fixture kernel come from `scripts/vmcore-debuginfo.sh` (the README's
//! test command runs it); without them the tests print SKIPPED (fail
//! under CI).
//!
//! drgn reads the crash boot's ELF dump; wedge reads the ELF and the
//! kdump-compressed one. Both dumps are of the same stopped guest, so they
//! hold the same memory, and drgn 0.3.0 cannot open the flattened kdump
//! files QEMU writes.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, debuginfo_or_skip, drgn_or_skip, Boot, BootFixture, Debuginfo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The expression set: C for wedge, TAB, Python for drgn, TAB, btf|dwarf.
const EXPRS: &str = include_str!("../../../scripts/drgn-exprs.tsv");
/// The dumps wedge reads (drgn reads `elf`).
const FORMATS: [&str; 2] = ["elf", "kdump-zlib"];
/// Differences printed in a failure; the total is always given.
const SHOWN: usize = 20;
/// TCG guests' dumps on a shared 2-CPU machine: generous, but bounded.
const LIMIT: Duration = Duration::from_secs(600);

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

struct Setup {
    fx: &'static BootFixture,
    di: Debuginfo,
    drgn: PathBuf,
}

fn setup() -> Option<Setup> {
    let fx = boot_or_skip(Boot::Crash).unwrap()?;
    let di = debuginfo_or_skip(&fx.kernel_release)?;
    let drgn = drgn_or_skip()?;
    Some(Setup { fx, di, drgn })
}

impl Setup {
    fn dumps(&self) -> Vec<(&'static str, &str)> {
        FORMATS
            .iter()
            .filter_map(|f| Some((*f, self.fx.dumps.get(*f)?.to_str()?)))
            .collect()
    }

    /// `scripts/drgn-bt.py ARGS` under drgn on the ELF dump, given the same
    /// vmlinux and modules as wedge, and nothing else (no debuginfod).
    fn drgn(&self, script_args: &[&str]) -> Value {
        let elf = self.fx.dumps["elf"].to_str().expect("utf-8 fixture path");
        let script = repo("scripts/drgn-bt.py");
        let mut args = vec![
            "-q".to_string(),
            "--no-default-symbols".into(),
            "-c".into(),
            elf.into(),
        ];
        args.extend(self.di.args("-s"));
        args.push(script.display().to_string());
        args.extend(script_args.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = common::try_run_program(&self.drgn, &args, common::Opts::within(LIMIT))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.code, Some(0), "drgn {args:?}: {}", r.stderr);
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("drgn-bt.py printed no JSON ({e}): {}", r.stderr))
    }

    /// wedge on `dump`, with `--debuginfo` for the vmlinux and modules when
    /// `dwarf`.
    fn wedge(&self, dump: &str, dwarf: bool, view: &[&str]) -> common::Run {
        let mut args = vec!["vmcore".to_string(), dump.to_string()];
        if dwarf {
            args.extend(self.di.args("--debuginfo"));
        }
        args.extend(view.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run(&args, common::Opts::within(LIMIT))
    }
}

/// drgn's `bt --vars` of every task, run once for the frame and the
/// variable tests.
fn drgn_bt(s: &Setup) -> &'static Value {
    static BT: OnceLock<Value> = OnceLock::new();
    BT.get_or_init(|| s.drgn(&["--vars"]))
}

/// Type names as one spelling: BTF and DWARF name integer types as GCC
/// does (`long unsigned int`), drgn as C programmers write them
/// (`unsigned long`); a scalar's own `volatile`/`const` (`jiffies` is
/// `volatile unsigned long`) does not change its value.
fn canon_type(t: &str) -> String {
    let mut t = t.to_string();
    for (gcc, c) in [
        ("long long unsigned int", "unsigned long long"),
        ("long long int", "long long"),
        ("long unsigned int", "unsigned long"),
        ("short unsigned int", "unsigned short"),
        ("long int", "long"),
        ("short int", "short"),
    ] {
        t = t.replace(gcc, c);
    }
    if !t.contains(['*', '[', '(']) {
        for q in ["volatile ", "const "] {
            while let Some(rest) = t.strip_prefix(q) {
                t = rest.to_string();
            }
        }
    }
    t
}

struct Row<'a> {
    expr: &'a str,
    dwarf: bool,
}

fn rows() -> Vec<Row<'static>> {
    EXPRS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "scripts/drgn-exprs.tsv: {l:?}");
            assert!(matches!(cols[2], "btf" | "dwarf"), "{l:?}");
            Row {
                expr: cols[0],
                dwarf: cols[2] == "dwarf",
            }
        })
        .collect()
}

/// wedge's `eval --json` of each row against drgn's, on each dump;
/// `dwarf` gives wedge the DWARF (and takes every row), else only the
/// rows BTF answers. The differences, and what was compared.
fn compare_exprs(s: &Setup, dwarf: bool) -> (Vec<String>, usize) {
    let tsv = repo("scripts/drgn-exprs.tsv");
    let theirs = s.drgn(&["--exprs", tsv.to_str().expect("utf-8 path")]);
    let theirs: BTreeMap<&str, &Value> = theirs
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| (r["expr"].as_str().unwrap_or(""), r))
        .collect();
    let jobs: Vec<(&str, &str, Row)> = s
        .dumps()
        .into_iter()
        .flat_map(|(format, dump)| {
            rows()
                .into_iter()
                .filter(|r| dwarf || !r.dwarf)
                .map(move |r| (format, dump, r))
        })
        .collect();
    // One wedge process per evaluation (each opens the dump), a few at a
    // time: the runs are independent.
    let runs = par_map(&jobs, |(_, dump, row)| {
        s.wedge(dump, dwarf, &["eval", "--json", row.expr])
    });
    let mut diffs = Vec::new();
    for ((format, _, row), r) in jobs.iter().zip(runs) {
        let d = theirs[row.expr];
        assert!(
            d.get("error").is_none(),
            "drgn: {}: {}",
            row.expr,
            d["error"]
        );
        if r.code != Some(0) {
            diffs.push(format!(
                "{format}: {}: wedge exit {:?}: {}",
                row.expr,
                r.code,
                r.stderr.lines().next().unwrap_or("")
            ));
            continue;
        }
        let w = r.json();
        let (wt, dt) = (
            w["type"].as_str().unwrap_or(""),
            d["type"].as_str().unwrap_or(""),
        );
        if canon_type(wt) != canon_type(dt) {
            diffs.push(format!("{format}: {}: type {wt:?}, drgn {dt:?}", row.expr));
        } else if wt != dt && *format == FORMATS[0] {
            println!("note: {}: type spelled {wt:?}, drgn {dt:?}", row.expr);
        }
        if w["value"] != d["value"] {
            diffs.push(format!(
                "{format}: {}: value {}, drgn {}",
                row.expr, w["value"], d["value"]
            ));
        }
    }
    (diffs, jobs.len())
}

/// `f` of every item, on a few threads, in the items' order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *out[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item mapped")
        })
        .collect()
}

fn report(what: &str, diffs: &[String], summary: &str) {
    println!("{what}: {summary}");
    if diffs.is_empty() {
        return;
    }
    let shown: Vec<&str> = diffs.iter().take(SHOWN).map(String::as_str).collect();
    panic!(
        "{what}: {} difference(s) with drgn ({summary}); the first {}:\n  {}",
        diffs.len(),
        shown.len(),
        shown.join("\n  ")
    );
}

#[test]
fn expressions_btf_answers_match_drgn() {
    let Some(s) = setup() else {
        return;
    };
    let (diffs, n) = compare_exprs(&s, false);
    report("eval", &diffs, &format!("{n} evaluations"));
}

#[test]
fn expressions_with_dwarf_match_drgn() {
    let Some(s) = setup() else {
        return;
    };
    let (diffs, n) = compare_exprs(&s, true);
    report("eval --debuginfo", &diffs, &format!("{n} evaluations"));
}

/// A function as the source names it: GCC's clones and split-off parts
/// (`.isra.0`, `.constprop.0`, `.part.0`, `.cold`) are that function, and
/// `entry_SYSCALL_64_after_hwframe` is a label inside `entry_SYSCALL_64`
/// that kallsyms names and DWARF does not (as is
/// `secondary_startup_64_no_verify` in `secondary_startup_64`, where idle
/// tasks start): drgn names the function, wedge the label.
fn base(name: &str) -> &str {
    let name = match name {
        "entry_SYSCALL_64_after_hwframe" => "entry_SYSCALL_64",
        "secondary_startup_64_no_verify" => "secondary_startup_64",
        n => n,
    };
    match name.find('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// Paths as DWARF gives them: relative to the compilation directory
/// (`kernel/sched/core.c`) or absolute (`/build/…/arch/x86/entry/entry_64.S`)
/// — the same file when one ends with the other.
fn same_file(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => {
            a == b || a.ends_with(&format!("/{b}")) || b.ends_with(&format!("/{a}"))
        }
        _ => a.is_null() && b.is_null(),
    }
}

fn frame_text(f: &Value) -> String {
    format!(
        "{}{} at {}:{}",
        f["function"].as_str().unwrap_or("?"),
        if f["inline"] == true { " (inline)" } else { "" },
        f["file"].as_str().unwrap_or("?"),
        f["line"]
    )
}

fn same_frame(w: &Value, d: &Value) -> bool {
    base(w["function"].as_str().unwrap_or("")) == base(d["function"].as_str().unwrap_or(""))
        && w["inline"] == d["inline"]
        && same_file(&w["file"], &d["file"])
        && w["line"] == d["line"]
}

/// Tasks by (pid, comm): the idle tasks are all pid 0, one swapper/N each.
fn by_task(v: &Value) -> BTreeMap<(i64, String), &Value> {
    v["tasks"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let key = (
                        t["pid"].as_i64().unwrap_or(-1),
                        t["comm"].as_str().unwrap_or("").to_string(),
                    );
                    (key, t)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn frames(t: &Value) -> &[Value] {
    t["frames"].as_array().map_or(&[], Vec::as_slice)
}

/// The tasks both list and drgn can be compared on, and what does not pair.
fn pair_tasks<'a>(
    wedge: &'a Value,
    drgn: &'a Value,
    diffs: &mut Vec<String>,
) -> (Vec<(String, &'a Value, &'a Value)>, usize) {
    let (w, d) = (by_task(wedge), by_task(drgn));
    let mut zombies = 0;
    let mut pairs = Vec::new();
    for (key @ (pid, comm), dt) in &d {
        if dt["state"] == "Z" {
            // A zombie's kernel stack is freed when it last schedules
            // (put_task_stack); drgn unwinds what the pages still hold.
            zombies += 1;
            continue;
        }
        match w.get(key) {
            Some(wt) => pairs.push((format!("{pid} ({comm})"), *wt, *dt)),
            None => diffs.push(format!("task {pid} ({comm}): not listed by wedge")),
        }
    }
    for (pid, comm) in w.keys().filter(|k| !d.contains_key(*k)) {
        diffs.push(format!("task {pid} ({comm}): listed by wedge, not by drgn"));
    }
    (pairs, zombies)
}

#[test]
fn frames_match_drgn() {
    let Some(s) = setup() else {
        return;
    };
    let drgn = drgn_bt(&s);
    let (mut diffs, mut summary) = (Vec::new(), Vec::new());
    for (format, dump) in s.dumps() {
        let r = s.wedge(dump, true, &["bt", "--all", "--json"]);
        assert_eq!(r.code, Some(0), "{format}: {}", r.stderr);
        let wedge = r.json();
        let (pairs, zombies) = pair_tasks(&wedge, drgn, &mut diffs);
        let (mut checked, mut matched, mut inline) = (0, 0, 0);
        for (task, wt, dt) in &pairs {
            let (wf, df) = (frames(wt), frames(dt));
            checked += df.len();
            inline += df.iter().filter(|f| f["inline"] == true).count();
            let same = wf.iter().zip(df).filter(|(w, d)| same_frame(w, d)).count();
            matched += same;
            // One line per task: its first difference (a missing frame
            // shifts every frame after it), and how many differ.
            let first = (0..wf.len().max(df.len())).find(
                |&i| !matches!((wf.get(i), df.get(i)), (Some(w), Some(d)) if same_frame(w, d)),
            );
            if let Some(i) = first {
                let text = |f: Option<&Value>| f.map_or("nothing".into(), frame_text);
                diffs.push(format!(
                    "{format}: task {task}: frame #{i} is {}, drgn {} ({} frames, drgn {}; {} differ)",
                    text(wf.get(i)),
                    text(df.get(i)),
                    wf.len(),
                    df.len(),
                    df.len().max(wf.len()) - same
                ));
            }
        }
        summary.push(format!(
            "{format}: {} tasks, {checked} frames drgn unwinds ({inline} inline), {matched} the same in wedge, {zombies} zombies not compared",
            pairs.len()
        ));
    }
    report("bt --all", &diffs, &summary.join("; "));
}

/// A variable's value for comparison: bool as 0/1 (wedge's JSON has
/// bools, drgn's reads give either).
fn scalar(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::from(u8::from(*b)),
        v => v.clone(),
    }
}

#[test]
fn variables_match_drgn() {
    let Some(s) = setup() else {
        return;
    };
    let drgn = drgn_bt(&s);
    let (mut diffs, mut summary) = (Vec::new(), Vec::new());
    for (format, dump) in s.dumps() {
        let r = s.wedge(dump, true, &["bt", "--all", "--vars", "--json"]);
        assert_eq!(r.code, Some(0), "{format}: {}", r.stderr);
        let wedge = r.json();
        let (pairs, _) = pair_tasks(&wedge, drgn, &mut diffs);
        // compared: drgn read a value or found it absent; skipped: not a
        // scalar, or drgn could not read it.
        let (mut compared, mut matched, mut with_value, mut skipped) = (0, 0, 0, 0);
        for (task, wt, dt) in &pairs {
            let wf = frames(wt);
            for (i, df) in frames(dt).iter().enumerate() {
                let dvars = df["variables"].as_array().map_or(&[][..], Vec::as_slice);
                let wanted: Vec<&Value> = dvars
                    .iter()
                    .filter(|v| !v["value"].is_null() || v["absent"] == true)
                    .collect();
                skipped += dvars.len() - wanted.len();
                compared += wanted.len();
                with_value += wanted.iter().filter(|v| !v["value"].is_null()).count();
                let at = format!("{format}: task {task} #{i} {}", frame_text(df));
                let Some(w) = wf.get(i).filter(|w| same_frame(w, df)) else {
                    if !wanted.is_empty() {
                        diffs.push(format!(
                            "{at}: wedge's frame is {} ({} variables not compared)",
                            wf.get(i).map_or("missing".into(), frame_text),
                            wanted.len()
                        ));
                    }
                    continue;
                };
                let wvars = w["variables"].as_array().map_or(&[][..], Vec::as_slice);
                for dv in wanted {
                    let name = dv["name"].as_str().unwrap_or("");
                    // A name drgn lists twice (a shadowing inner block)
                    // reads the innermost: any of wedge's of that name.
                    let same: Vec<&Value> = wvars.iter().filter(|v| v["name"] == name).collect();
                    let ok = same
                        .iter()
                        .any(|wv| scalar(&wv["value"]) == scalar(&dv["value"]));
                    let ok = ok || (dv["absent"] == true && same.is_empty());
                    if ok {
                        matched += 1;
                        continue;
                    }
                    let theirs = if dv["absent"] == true {
                        "absent".to_string()
                    } else {
                        format!("{} ({})", dv["value"], dv["type"].as_str().unwrap_or("?"))
                    };
                    let ours = match same.first() {
                        None => "not listed".to_string(),
                        Some(wv) if wv["value"].is_null() => "null".to_string(),
                        Some(wv) => {
                            format!("{} ({})", wv["value"], wv["type"].as_str().unwrap_or("?"))
                        }
                    };
                    diffs.push(format!("{at}: {name} = {ours}, drgn {theirs}"));
                }
            }
        }
        let rate = if compared == 0 {
            0.0
        } else {
            100.0 * matched as f64 / compared as f64
        };
        summary.push(format!(
            "{format}: {matched} of {compared} variables match ({rate:.1}%; {with_value} with a value drgn reads, the rest absent; {skipped} not scalars or unreadable by drgn, not compared)"
        ));
    }
    report("bt --all --vars", &diffs, &summary.join("; "));
}

/// The comparison's own rules, on the spellings met in the dumps.
#[test]
fn comparison_rules() {
    assert_eq!(canon_type("long unsigned int"), "unsigned long");
    assert_eq!(canon_type("volatile unsigned long"), "unsigned long");
    assert_eq!(
        canon_type("long long unsigned int *"),
        "unsigned long long *"
    );
    assert_eq!(
        canon_type("const struct sched_class *"),
        "const struct sched_class *"
    );
    assert_eq!(canon_type("char [16]"), "char [16]");
    assert_eq!(base("fuse_do_readfolio.isra.0"), "fuse_do_readfolio");
    assert_eq!(base("entry_SYSCALL_64_after_hwframe"), "entry_SYSCALL_64");
    assert_eq!(base(".L123"), ".L123");
    let abs = Value::from("/build/reproducible-path/linux-6.1.192/kernel/sched/core.c");
    assert!(same_file(&abs, &Value::from("kernel/sched/core.c")));
    assert!(!same_file(&abs, &Value::from("sched/core.cc")));
    assert!(!same_file(&abs, &Value::Null));
    assert!(same_file(&Value::Null, &Value::Null));
    assert_eq!(scalar(&Value::Bool(true)), Value::from(1));
}
