//! Golden files for the text views: the verdict, `ps`, `why PID` rendered
//! from the snapshots captured from the test kit's real scenes
//! (`crates/wedge-analysis/tests/fixtures/`), and the log view rendered
//! from the kernel-log corpus, compared byte for byte with
//! `tests/golden/*.txt`. One test per golden file.
//!
//! After an intended change of a view, re-bless and review the diff:
//!
//!     WEDGE_BLESS=1 cargo test -p wedge-render --test golden
//!     git diff crates/wedge-render/tests/golden/
//!
//! Nothing rendered depends on the run: the views read the clock and the
//! host only through the snapshot (`stats.duration_ms`, `system.hostname`,
//! `system.uptime_secs` against each task's `start_time`, `sched` times),
//! and the capture tool (`cargo run -p wedge-testkit --example capture`)
//! writes fixed values for the host name, the boot id and the scan time.
//! The log view gets no live tasks (the map `wedge log` fills from /proc on
//! the live machine is empty for files), so it depends on the file alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use wedge_model::Snapshot;
use wedge_render::ps::PsOptions;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wedge-analysis/tests/fixtures"
);
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/kernel-logs");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const BLESS_ENV: &str = "WEDGE_BLESS";

/// The process `why` is shown for in each scene: the first process of
/// that comm with a thread in D, else the first of that comm (the inode
/// lock scene has two `wk-creator`s; the queued one is D).
const WHY: &[(&str, &str)] = &[
    ("fuse-reader", "wk-reader"),
    ("fuse-reader-killed", "wk-reader"),
    ("fuse-thread-killed", "wk-mtreader"),
    ("fuse-stat", "wk-statter"),
    ("uring-killed", "wk-uring"),
    ("zombie-stopped-parent", "wk-zombie"),
    ("stopped", "wk-stopped"),
    ("traced", "wk-tracee"),
    ("vfork", "wk-vfork"),
    ("pidns-fuse", "wk-nsinit"),
    ("mmap-lock", "wk-mmaplock"),
    ("inode-lock", "wk-creator"),
    ("flush-on-exit", "wk-flusher"),
];

/// One corpus log per report family, and the mixed ones.
const LOGS: &[&str] = &[
    "fatal_signal-001",
    "garbage-001",
    "gpf_trap-001",
    "hung_task-001",
    "hung_task-012",
    "mixed-001",
    "mixed-002",
    "netfs-001",
    "oom-001",
    "oops-001",
    "proc_stack-001",
    "rcu_stall-001",
    "segfault-001",
    "soft_lockup-001",
    "warning-001",
];

fn load(name: &str) -> Result<Snapshot, Failed> {
    let path = format!("{FIXTURES}/{name}.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?)
}

/// Compares `actual` with the golden file `name`, or writes it when
/// blessing. The failure names the first differing line and how to bless.
fn compare(name: &str, actual: &str) -> Result<(), Failed> {
    let path: PathBuf = Path::new(GOLDEN).join(name);
    if std::env::var_os(BLESS_ENV).is_some() {
        std::fs::write(&path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let how = format!(
        "if the change is intended, re-bless with `{BLESS_ENV}=1 cargo test -p wedge-render --test golden` and review `git diff {}`",
        path.display()
    );
    let expected = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            return Err(format!(
            "{}: {e}; to create it, run `{BLESS_ENV}=1 cargo test -p wedge-render --test golden`",
            path.display()
        )
            .into())
        }
    };
    if expected == actual {
        return Ok(());
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = (0..e.len().max(a.len()))
        .find(|&i| e.get(i) != a.get(i))
        .unwrap_or(0);
    Err(format!(
        "{} differs from the rendered text at line {}:\n  golden:   {:?}\n  rendered: {:?}\n(golden {} lines, rendered {} lines{})\n{how}",
        path.display(),
        at + 1,
        e.get(at).copied().unwrap_or("<end of file>"),
        a.get(at).copied().unwrap_or("<end of output>"),
        e.len(),
        a.len(),
        if e.len() == a.len() && expected.ends_with('\n') != actual.ends_with('\n') {
            ", final newline differs"
        } else {
            ""
        }
    )
    .into())
}

fn verdict(fixture: &str, verbose: bool) -> Result<String, Failed> {
    let s = load(fixture)?;
    let findings = wedge_analysis::analyze(&s);
    Ok(wedge_render::verdict::render(&s, &findings, verbose))
}

fn ps(fixture: &str, opts: PsOptions) -> Result<String, Failed> {
    let s = load(fixture)?;
    Ok(wedge_render::ps::render(&s, opts).0)
}

fn why(fixture: &str, comm: &str) -> Result<String, Failed> {
    let s = load(fixture)?;
    let of_comm: Vec<&wedge_model::Process> =
        s.processes.iter().filter(|p| p.comm == comm).collect();
    let p = of_comm
        .iter()
        .find(|p| {
            p.threads
                .iter()
                .any(|t| t.state == wedge_kernel::TaskState::DiskSleep)
        })
        .or(of_comm.first())
        .ok_or_else(|| format!("{fixture}: no process {comm}"))?;
    let g = wedge_analysis::graph::build(&s);
    let findings = wedge_analysis::analyze_with(&s, &g);
    Ok(wedge_render::why::render(&s, p, &findings, &g))
}

/// As `wedge log FILE` renders it (text only, no live tasks).
fn log(name: &str) -> Result<String, Failed> {
    let path = format!("{CORPUS}/{name}.log");
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut stream = wedge_klog::parse_reader(bytes.as_slice()).text_only();
    let mut view = wedge_render::log::LogView::new();
    for ev in stream.by_ref() {
        view.add(ev.map_err(|e| format!("{path}: {e}"))?);
    }
    Ok(view.render(stream.summary(), &HashMap::new()))
}

/// `ps` notes the sleep kind the BPF pass (or a dump) read for a `D` task:
/// the captured vfork parent as TASK_KILLABLE, the killed FUSE reader as
/// TASK_UNINTERRUPTIBLE (/proc shows both as a bare `D`).
fn ps_says_how_d_sleeps() -> Result<(), Failed> {
    use wedge_kernel::{SleepKind, TaskState};
    for (fixture, comm, kind, note) in [
        (
            "vfork",
            "wk-vfork",
            SleepKind::Killable,
            "(killable: kill -9 ends it)",
        ),
        (
            "fuse-reader-killed",
            "wk-reader",
            SleepKind::Uninterruptible,
            "(not even SIGKILL ends it, SIGKILL pending)",
        ),
    ] {
        let mut s = load(fixture)?;
        let p = s
            .processes
            .iter_mut()
            .find(|p| p.comm == comm)
            .ok_or_else(|| format!("{fixture}: no {comm}"))?;
        let pid = p.pid;
        for t in p
            .threads
            .iter_mut()
            .filter(|t| t.state == TaskState::DiskSleep)
        {
            t.sleep_kind = Some(kind);
        }
        let text = wedge_render::ps::render(&s, PsOptions::default()).0;
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{pid:>7} ")))
            .ok_or_else(|| format!("{fixture}: {pid} not listed:\n{text}"))?;
        if !line.ends_with(note) {
            return Err(format!("{fixture}: want {note} at the end of: {line}").into());
        }
    }
    Ok(())
}

fn trial(name: String, render: impl FnOnce() -> Result<String, Failed> + Send + 'static) -> Trial {
    let file = format!("{name}.txt");
    Trial::test(name, move || compare(&file, &render()?))
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for &(fixture, comm) in WHY {
        trials.push(trial(format!("{fixture}.verdict"), move || {
            verdict(fixture, false)
        }));
        trials.push(trial(format!("{fixture}.ps"), move || {
            ps(fixture, PsOptions::default())
        }));
        trials.push(trial(format!("{fixture}.ps-all"), move || {
            ps(
                fixture,
                PsOptions {
                    all: true,
                    ..PsOptions::default()
                },
            )
        }));
        trials.push(trial(format!("{fixture}.why"), move || why(fixture, comm)));
    }
    trials.push(trial("fuse-reader-killed.verdict-verbose".into(), || {
        verdict("fuse-reader-killed", true)
    }));
    trials.push(trial("pidns-fuse.ps-tree-all".into(), || {
        ps(
            "pidns-fuse",
            PsOptions {
                all: true,
                tree: true,
                wide: false,
            },
        )
    }));
    trials.push(Trial::test("ps-says-how-d-sleeps", ps_says_how_d_sleeps));
    // A fixture added by the capture tool without a line in WHY would get
    // no golden file: fail until it is listed.
    trials.push(Trial::test("every-fixture-has-goldens", || {
        let dir = std::fs::read_dir(FIXTURES).map_err(|e| format!("{FIXTURES}: {e}"))?;
        let mut unlisted = Vec::new();
        for entry in dir {
            let name = entry.map_err(|e| format!("{FIXTURES}: {e}"))?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".json") {
                if !WHY.iter().any(|(f, _)| *f == stem) {
                    unlisted.push(stem.to_string());
                }
            }
        }
        if unlisted.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "fixtures without golden files (add them to WHY in {}): {unlisted:?}",
                file!()
            )
            .into())
        }
    }));
    for &name in LOGS {
        trials.push(trial(format!("log.{name}"), move || log(name)));
    }
    libtest_mimic::run(&args, trials).exit();
}
