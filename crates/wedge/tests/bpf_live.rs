//! Issue 13: the live kernel's own objects through BPF, against real scenes
//! built by wedge-testkit on this machine. What /proc cannot say and a task
//! iterator can: who owns the mutex or rw-semaphore a task sleeps on
//! (`task->blocker`, 6.16+ with CONFIG_DETECT_HUNG_TASK_BLOCKER, and the
//! lock's `owner` field), and whether a `D` task is TASK_KILLABLE or plainly
//! TASK_UNINTERRUPTIBLE. And what must not change: `--no-bpf` and an
//! ordinary user get the /proc result with the reason BPF was not used, and
//! the verdicts /proc can reach are the same with and without BPF.
//!
//! Scenes run concurrently with other tests (and other people's scenes):
//! every assertion is about the scene's own pids, never the whole machine.

mod common;

use common::{check, finding, thread, try_run_program, wedge, Opts, Run};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use wedge_testkit::{
    setup_or_skip, skip_or_fail, ExitWhileFlushing, FposLockQueue, FuseDaemon, FuseReader,
    FuseThreadReader, InodeLockQueue, IoUringMode, IoUringOnFuse, MmapLockHolder,
    PidnsInitWithFuseThread, Stopped, VforkParent,
};

type R = Result<(), Failed>;

const NO_BPF: &str = "--no-bpf";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Every limitation of a snapshot or verdict document, as "what: why".
fn limitations(doc: &Value) -> Vec<String> {
    doc["limitations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "{}: {}",
                l["what"].as_str().unwrap_or_default(),
                l["why"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The limitation that says BPF was not used, if there is one.
fn bpf_limitation(doc: &Value) -> Option<String> {
    limitations(doc).into_iter().find(|l| l.contains("BPF"))
}

/// Reasons that are a missing capability of the machine or the build, not a
/// bug: the exact checks are skipped (a failure under WEDGE_REQUIRE_ALL).
const MISSING_CAPABILITY: &[&str] = &[
    "built without",
    "no BTF",
    "BTF missing",
    "lockdown",
    "seccomp",
    "too old",
];

/// Whether this run of wedge uses BPF. Not root, or a machine that cannot
/// (no BTF, lockdown, a build without clang): skipped. Root on a machine
/// that can, and BPF still not used: a failure naming the reason.
fn bpf_works() -> Result<bool, Failed> {
    if !is_root() {
        skip_or_fail("BPF task iterators need root (CAP_BPF and CAP_PERFMON)");
        return Ok(false);
    }
    let snap = wedge(&["ps", "--json"]).json();
    match bpf_limitation(&snap) {
        None => Ok(true),
        Some(l) if MISSING_CAPABILITY.iter().any(|m| l.contains(m)) => {
            skip_or_fail(&l);
            Ok(false)
        }
        Some(l) => Err(format!("root on a kernel with BTF, and BPF was not used: {l}").into()),
    }
}

/// Thread `tid` of `wedge why --json`'s process.
fn why_thread(why: &Value, tid: i32) -> Option<&Value> {
    why["process"]["threads"]
        .as_array()?
        .iter()
        .find(|t| t["tid"].as_i64() == Some(i64::from(tid)))
}

/// Whether `hay` contains every needle, in this order.
fn in_order(hay: &str, needles: &[String]) -> bool {
    let mut rest = hay;
    for n in needles {
        match rest.find(n.as_str()) {
            Some(i) => rest = &rest[i + n.len()..],
            None => return false,
        }
    }
    true
}

/// The summary line `wedge why` prints for thread `tid` (or for the
/// process, when `tid` is its leader).
fn summary_line(why: &str, tid: i32) -> Option<&str> {
    let part = why.split("What it is doing").nth(1)?;
    let part = part.split("\n\n").next()?;
    part.lines()
        .find(|l| l.contains(&format!("thread {tid} (")) || l.contains(&format!("({tid}) is ")))
}

/// "killable" said of the task, not "unkillable" or "not killable".
fn says_killable(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.match_indices("killable").any(|(i, _)| {
        let before = &lower[..i];
        !before.ends_with("un") && !before.ends_with("not ")
    })
}

/// The lock wait of thread `tid` as a JSON document reports it, with its
/// checks: the lock's kind, a kernel address, the owner named exactly.
fn check_lock_wait(t: &Value, kind: &str, owner: i32, what: &str) -> Result<u64, Failed> {
    let lw = &t["lock_wait"];
    check(lw.is_object(), || {
        format!("{what}: no lock_wait from BPF: {t}")
    })?;
    check(lw["kind"] == kind, || {
        format!("{what}: lock kind {} (want {kind}): {lw}", lw["kind"])
    })?;
    check(lw["owner_tid"].as_i64() == Some(i64::from(owner)), || {
        format!("{what}: owner {} (want {owner}): {lw}", lw["owner_tid"])
    })?;
    check(lw["reader_owned"] != true, || {
        format!("{what}: a writer-held lock called reader-owned: {lw}")
    })?;
    let addr = lw["address"].as_u64().unwrap_or(0);
    // A lock inside a kernel object: a direct-map or vmalloc address.
    check(addr >= 0xffff_8000_0000_0000, || {
        format!("{what}: lock address {addr:#x} is not a kernel address: {lw}")
    })?;
    Ok(addr)
}

/// The findings of a verdict about any of `pids`.
fn findings_about<'a>(v: &'a Value, pids: &[i32]) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["pids"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|x| pids.iter().any(|&q| x.as_i64() == Some(i64::from(q))))
            })
        })
        .collect()
}

/// Every chain of a verdict's findings about `pids`.
fn verdict_chains(v: &Value, pids: &[i32]) -> Vec<String> {
    findings_about(v, pids)
        .iter()
        .flat_map(|f| f["chain"].as_array().into_iter().flatten())
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect()
}

/// `wedge ARGS` as the unprivileged user nobody (uid and gid 65534, no
/// supplementary groups), through setpriv(1).
fn as_nobody(args: &[&str]) -> Result<Run, Failed> {
    let bin = std::env::var_os("WEDGE_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wedge").into());
    let bin = bin.to_string_lossy().into_owned();
    let mut all = vec![
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        bin.as_str(),
    ];
    all.extend_from_slice(args);
    try_run_program(std::path::Path::new("setpriv"), &all, Opts::default()).map_err(|e| e.into())
}

/// Two threads list one FUSE directory through one fd; the daemon never
/// answers READDIR. The second thread sleeps on the file's f_pos_lock, which
/// /proc shows only as `D` in fdget_pos: BPF names the first thread as the
/// mutex's owner, and the chain runs on through it to the FUSE daemon.
fn fpos_lock_owner_is_named() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(FposLockQueue::start(&fs));
    if !bpf_works()? {
        return Ok(());
    }
    let (a, b, d) = (q.first_tid, q.second_tid, q.daemon_pid);
    let hops = [
        format!("wk-list-b {b}"),
        format!("wk-list-a {a}"),
        format!("FUSE connection {}", fs.conn()),
        format!("wk-fused {d}"),
    ];

    let why = wedge(&["why", &b.to_string(), "--json"]).json();
    let t = why_thread(&why, b).ok_or_else(|| format!("thread {b} missing: {why}"))?;
    let addr = check_lock_wait(t, "mutex", a, "wedge why --json, f_pos_lock waiter")?;
    // mutex_lock() sleeps TASK_UNINTERRUPTIBLE; the holder waits for the
    // daemon interruptibly (nothing was signalled).
    check(t["sleep_kind"] == "uninterruptible", || {
        format!("waiter sleep_kind {}: {t}", t["sleep_kind"])
    })?;
    let holder = why_thread(&why, a).ok_or_else(|| format!("thread {a} missing: {why}"))?;
    check(holder["lock_wait"].is_null(), || {
        format!("the holder waits for FUSE, not a lock: {holder}")
    })?;
    let chains: Vec<String> = why["chains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    check(chains.iter().any(|c| in_order(c, &hops)), || {
        format!("no chain {hops:?} in {chains:#?}")
    })?;

    let text = wedge(&["why", &b.to_string()]).stdout;
    let line = summary_line(&text, b).ok_or_else(|| format!("no summary of {b}:\n{text}"))?;
    check(
        line.contains("mutex") && line.contains(&a.to_string()) && !line.contains("likely"),
        || format!("the waiter's line must name the mutex's owner {a} exactly: {line}"),
    )?;
    check(text.contains(&format!("{addr:#x}")), || {
        format!("the mutex's address {addr:#x} is not shown:\n{text}")
    })?;
    let waits = common::chains(&text).ok_or_else(|| format!("no chain:\n{text}"))?;
    check(waits.lines().any(|l| in_order(l, &hops)), || {
        format!("no chain {hops:?} in:\n{waits}")
    })?;

    let v = wedge(&["--json"]).json();
    let vc = verdict_chains(&v, &[q.pid, b]);
    check(vc.iter().any(|c| in_order(c, &hops)), || {
        format!("the verdict has no chain {hops:?}: {vc:#?}")
    })
}

/// The inode-lock scene: B queued on the directory's i_rwsem, which A holds
/// (down_write in open_last_lookups) while it waits for FUSE. /proc shows
/// B only in path_openat and wedge could say "likely"; BPF reads the
/// rw-semaphore's owner: A, exactly.
fn inode_lock_owner_is_exact() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    if !bpf_works()? {
        return Ok(());
    }
    let (a, b) = (q.first_pid, q.second_pid);
    let snap = wedge(&["ps", "--json"]).json();
    let t = thread(&snap, b).ok_or_else(|| format!("{b} missing from wedge ps --json"))?;
    let addr = check_lock_wait(t, "rw_semaphore", a, "wedge ps --json, i_rwsem waiter")?;
    // inode_lock() is a plain down_write(): not even killable.
    check(t["sleep_kind"] == "uninterruptible", || {
        format!("waiter sleep_kind {}: {t}", t["sleep_kind"])
    })?;

    let why = wedge(&["why", &b.to_string(), "--json"]).json();
    let t = why_thread(&why, b).ok_or_else(|| format!("thread {b} missing: {why}"))?;
    check_lock_wait(t, "rw_semaphore", a, "wedge why --json, i_rwsem waiter")?;

    let text = wedge(&["why", &b.to_string()]).stdout;
    let line = summary_line(&text, b).ok_or_else(|| format!("no summary of {b}:\n{text}"))?;
    check(
        line.contains(&a.to_string()) && !line.contains("likely"),
        || format!("the waiter's line must name the holder {a} exactly: {line}"),
    )?;
    check(text.contains(&format!("{addr:#x}")), || {
        format!("the rw-semaphore's address {addr:#x} is not shown:\n{text}")
    })?;
    let waits = common::chains(&text).ok_or_else(|| format!("no chain:\n{text}"))?;
    let hops = [
        format!("wk-creator {b}"),
        format!("wk-creator {a}"),
        format!("FUSE connection {}", fs.conn()),
    ];
    check(waits.lines().any(|l| in_order(l, &hops)), || {
        format!("no chain {hops:?} in:\n{waits}")
    })?;

    // In the verdict the edge B → A is a fact: no "likely" on it, high
    // confidence, the lock as evidence.
    let v = wedge(&["--json"]).json();
    let mine = findings_about(&v, &[b]);
    let exact = mine.iter().find(|f| {
        f["blocked_on"].as_array().is_some_and(|bo| {
            bo.iter().any(|e| {
                e["pid"].as_i64() == Some(i64::from(a))
                    && !e["detail"].as_str().unwrap_or_default().contains("likely")
            })
        })
    });
    let f = exact.ok_or_else(|| {
        format!("no finding about {b} blocked exactly on {a} (no \"likely\"): {mine:#?}")
    })?;
    check(f["confidence"] == "high", || {
        format!("an owner read off the lock is High confidence: {f}")
    })?;
    check(f.to_string().contains(&format!("{addr:#x}")), || {
        format!("the finding does not cite the rw-semaphore {addr:#x}: {f}")
    })
}

/// A vfork parent (TASK_KILLABLE in wait_for_vfork_done: kill -9 ends it)
/// and a FUSE reader after SIGKILL (past its killable phase, in the final
/// uninterruptible wait_event of request_wait_answer): both `D` to /proc,
/// told apart by BPF in the text and in each thread's `sleep_kind`.
fn sleep_kinds_told_apart() -> R {
    let v = setup_or_skip!(VforkParent::start());
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    r.sigkill().map_err(|e| e.to_string())?;
    if !bpf_works()? {
        return Ok(());
    }
    let snap = wedge(&["ps", "--json"]).json();
    for (tid, kind, what) in [
        (v.pid, "killable", "vfork parent"),
        (r.pid, "uninterruptible", "killed FUSE reader"),
    ] {
        let t = thread(&snap, tid).ok_or_else(|| format!("{what} {tid} missing"))?;
        check(t["state"] == "disk_sleep", || format!("{what}: {t}"))?;
        check(t["sleep_kind"] == kind, || {
            format!(
                "{what}: sleep_kind {} (want {kind}) in ps --json",
                t["sleep_kind"]
            )
        })?;
        let why = wedge(&["why", &tid.to_string(), "--json"]).json();
        let t = why_thread(&why, tid).ok_or_else(|| format!("{what} {tid} missing: {why}"))?;
        check(t["sleep_kind"] == kind, || {
            format!(
                "{what}: sleep_kind {} (want {kind}) in why --json",
                t["sleep_kind"]
            )
        })?;
    }

    let ps = wedge(&["ps"]).stdout;
    let line_of = |pid: i32| {
        ps.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(pid.to_string().as_str()))
            .map(str::to_string)
            .ok_or_else(|| format!("{pid} not listed by wedge ps:\n{ps}"))
    };
    let (vl, rl) = (line_of(v.pid)?, line_of(r.pid)?);
    check(says_killable(&vl), || {
        format!("wedge ps must call the vfork parent killable: {vl}")
    })?;
    check(!says_killable(&rl), || {
        format!("wedge ps calls the killed FUSE reader killable: {rl}")
    })?;

    let why = wedge(&["why", &v.pid.to_string()]).stdout;
    let line = summary_line(&why, v.pid).ok_or_else(|| why.clone())?;
    check(
        says_killable(line) && !line.contains("not even SIGKILL"),
        || format!("vfork parent: {line}"),
    )?;
    let why = wedge(&["why", &r.pid.to_string()]).stdout;
    let line = summary_line(&why, r.pid).ok_or_else(|| why.clone())?;
    check(
        !says_killable(line) && line.contains("not even SIGKILL"),
        || format!("killed FUSE reader: {line}"),
    )
}

/// `--no-bpf` forces /proc: no lock owner, no sleep kind, the same FUSE
/// verdict, and a limitation saying BPF was not used.
fn no_bpf_gives_the_proc_result() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(FposLockQueue::start(&fs));
    let b = q.second_tid;
    let snap = wedge(&["ps", NO_BPF, "--json"]).json();
    let t = thread(&snap, b).ok_or_else(|| format!("{b} missing from ps --no-bpf"))?;
    check(
        t["state"] == "disk_sleep" && t["wchan"] == "fdget_pos",
        || format!("the /proc view of the f_pos_lock waiter: {t}"),
    )?;
    check(
        t["lock_wait"].is_null() && t["sleep_kind"].is_null(),
        || format!("--no-bpf, yet a lock owner or sleep kind: {t}"),
    )?;
    let said = bpf_limitation(&snap).ok_or_else(|| {
        format!(
            "--no-bpf and no limitation says BPF was not used: {:?}",
            limitations(&snap)
        )
    })?;
    check(said.contains(NO_BPF) || said.contains("not used"), || {
        format!("the limitation should say --no-bpf turned BPF off: {said}")
    })?;
    let why = wedge(&["why", &b.to_string(), NO_BPF, "--json"]).json();
    let t = why_thread(&why, b).ok_or_else(|| format!("thread {b} missing: {why}"))?;
    check(t["lock_wait"].is_null(), || {
        format!("why --no-bpf, yet a lock owner: {t}")
    })?;

    // The FUSE verdict about the scene is /proc's to make: the same either way.
    let without = wedge(&[NO_BPF, "--json"]).json();
    let with = wedge(&["--json"]).json();
    let fw = finding(&without, "fuse.unanswered", q.pid)
        .ok_or_else(|| format!("--no-bpf: no fuse.unanswered for {}: {without}", q.pid))?;
    check(bpf_limitation(&without).is_some(), || {
        format!(
            "verdict --no-bpf: no BPF limitation: {:?}",
            limitations(&without)
        )
    })?;
    let f = finding(&with, "fuse.unanswered", q.pid)
        .ok_or_else(|| format!("with BPF: no fuse.unanswered for {}: {with}", q.pid))?;
    check(f["severity"] == fw["severity"], || {
        format!(
            "the FUSE verdict changed with BPF: {} vs {}",
            f["severity"], fw["severity"]
        )
    })
}

/// An ordinary user cannot load BPF programs: wedge falls back to /proc,
/// the limitation names root (CAP_BPF), and the exit status is the one
/// `--no-bpf` gives.
fn not_root_falls_back_to_proc() -> R {
    if !is_root() {
        skip_or_fail("needs root to switch to an ordinary user");
        return Ok(());
    }
    let v = setup_or_skip!(VforkParent::start());
    let pid = v.pid.to_string();
    let ps = as_nobody(&["ps", "--json"])?;
    let snap = ps.json();
    let said = bpf_limitation(&snap).ok_or_else(|| {
        format!(
            "as nobody, no limitation says why BPF was not used: {:?}",
            limitations(&snap)
        )
    })?;
    check(said.contains("root") || said.contains("CAP_BPF"), || {
        format!("the limitation should name root / CAP_BPF: {said}")
    })?;
    let t = thread(&snap, v.pid).ok_or_else(|| format!("vfork parent {pid} missing"))?;
    check(
        t["state"] == "disk_sleep" && t["lock_wait"].is_null() && t["sleep_kind"].is_null(),
        || format!("as nobody the /proc view: {t}"),
    )?;
    let text = as_nobody(&[])?;
    check(text.stdout.contains("BPF"), || {
        format!(
            "the verdict's text does not say BPF was not used:\n{}",
            text.stdout
        )
    })?;
    let why = as_nobody(&["why", &pid])?;
    let why_off = as_nobody(&["why", &pid, NO_BPF])?;
    check(why.code == why_off.code && why.code.is_some(), || {
        format!(
            "exit status as nobody {:?}, with --no-bpf {:?}: {}",
            why.code, why_off.code, why.stderr
        )
    })?;
    let ps_off = as_nobody(&["ps", "--json", NO_BPF])?;
    check(ps.code == ps_off.code, || {
        format!("ps exit status {:?} vs --no-bpf {:?}", ps.code, ps_off.code)
    })
}

/// Rule ids of the findings about `pids`.
fn rule_ids(v: &Value, pids: &[i32]) -> BTreeSet<String> {
    findings_about(v, pids)
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect()
}

/// Findings BPF may make exact (an owner read off the lock instead of a
/// guess, a deadlock only exact owners can prove).
fn made_exact(id: &str) -> bool {
    id.starts_with("lock.") || id == "wait.cycle"
}

/// `wedge --json` with and without BPF about one scene's `pids`: the same
/// rule ids, except those BPF makes exact, and only where BPF read a lock
/// wait of the scene.
fn same_verdicts(label: &str, pids: &[i32], failures: &mut Vec<String>) {
    let with = wedge(&["--json"]).json();
    let without = wedge(&[NO_BPF, "--json"]).json();
    let snap = wedge(&["ps", "--all", "--json"]).json();
    let (w, wo) = (rule_ids(&with, pids), rule_ids(&without, pids));
    let exact_here = pids
        .iter()
        .filter_map(|&p| common::process(&snap, p))
        .flat_map(|p| p["threads"].as_array().into_iter().flatten())
        .any(|t| t["lock_wait"].is_object());
    let differ: Vec<&String> = w.symmetric_difference(&wo).collect();
    let explained = differ.iter().all(|id| made_exact(id)) && (differ.is_empty() || exact_here);
    println!("[{label}] pids {pids:?}: with BPF {w:?}, --no-bpf {wo:?}");
    if wo.is_empty() {
        failures.push(format!("{label}: --no-bpf found nothing about {pids:?}"));
    }
    if !explained {
        failures.push(format!(
            "{label}: with BPF {w:?}, --no-bpf {wo:?} (a lock wait read by BPF: {exact_here})"
        ));
    }
}

/// The existing scenes, each judged with and without BPF.
fn same_verdicts_with_and_without_bpf() -> R {
    if !bpf_works()? {
        return Ok(());
    }
    let mut failures = Vec::new();
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let r = setup_or_skip!(FuseReader::start(&fs));
        same_verdicts("fuse reader", &[r.pid], &mut failures);
        r.sigkill().map_err(|e| e.to_string())?;
        same_verdicts("fuse reader killed", &[r.pid], &mut failures);
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let r = setup_or_skip!(FuseThreadReader::start(&fs));
        r.sigkill().map_err(|e| e.to_string())?;
        same_verdicts("fuse thread reader killed", &[r.pid, r.tid], &mut failures);
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let m = setup_or_skip!(MmapLockHolder::start(&fs));
        same_verdicts(
            "mmap_lock holder",
            &[m.pid, m.cmdline_reader_pid],
            &mut failures,
        );
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let q = setup_or_skip!(InodeLockQueue::start(&fs));
        same_verdicts(
            "inode lock queue",
            &[q.first_pid, q.second_pid],
            &mut failures,
        );
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let q = setup_or_skip!(FposLockQueue::start(&fs));
        same_verdicts("f_pos_lock queue", &[q.pid], &mut failures);
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let e = setup_or_skip!(ExitWhileFlushing::start(&fs));
        same_verdicts("exit while flushing", &[e.pid], &mut failures);
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let u = setup_or_skip!(IoUringOnFuse::start(&fs, IoUringMode::Async));
        u.sigkill().map_err(|e| e.to_string())?;
        wedge_testkit::wait_until(Duration::from_secs(3), || {
            wedge_testkit::proc::state_of(u.pid) == Some('D')
        });
        same_verdicts("io_uring killed", &[u.pid], &mut failures);
    }
    {
        let fs = setup_or_skip!(FuseDaemon::start());
        let p = setup_or_skip!(PidnsInitWithFuseThread::start(&fs));
        same_verdicts(
            "pid-ns init waits for a FUSE flusher",
            &[p.init_pid, p.flusher_pid],
            &mut failures,
        );
    }
    {
        let s = setup_or_skip!(Stopped::start());
        same_verdicts("stopped", &[s.pid], &mut failures);
    }
    check(failures.is_empty(), || failures.join("\n"))
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("fpos_lock_owner_is_named", fpos_lock_owner_is_named),
        Trial::test("inode_lock_owner_is_exact", inode_lock_owner_is_exact),
        Trial::test("sleep_kinds_told_apart", sleep_kinds_told_apart),
        Trial::test("no_bpf_gives_the_proc_result", no_bpf_gives_the_proc_result),
        Trial::test("not_root_falls_back_to_proc", not_root_falls_back_to_proc),
        Trial::test(
            "same_verdicts_with_and_without_bpf",
            same_verdicts_with_and_without_bpf,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
