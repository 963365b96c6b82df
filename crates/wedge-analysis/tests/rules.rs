//! The rules on snapshots captured from the test kit's real scenes
//! (`tests/fixtures/*.json`, written by `cargo run -p wedge-testkit
//! --example capture` as root on Linux 6.18): what each situation must be
//! diagnosed as, and what it must not. No root, no FUSE: they run anywhere.
//!
//! Pids, tids and connection ids are looked up in the fixture (by comm, by
//! mount) rather than written here, so that a re-capture, which gets new
//! pids, needs no edit of this file.
//!
//! Run one: `cargo test -p wedge-analysis --test rules -- flush-on-exit`.

use libtest_mimic::{Arguments, Failed, Trial};
use wedge_analysis::{analyze, Finding, RuleId, Severity, StoppedRule};
use wedge_model::{Field, Snapshot};

type R = Result<(), Failed>;

/// A named rule test.
type Case = (&'static str, fn() -> R);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn load(name: &str) -> Result<Snapshot, Failed> {
    let path = format!("{FIXTURES}/{name}.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?)
}

/// Pids of the processes whose comm is `comm`, in snapshot order.
fn pids(s: &Snapshot, comm: &str) -> Vec<i32> {
    s.processes
        .iter()
        .filter(|p| p.comm == comm)
        .map(|p| p.pid)
        .collect()
}

fn pid(s: &Snapshot, comm: &str) -> Result<i32, Failed> {
    pids(s, comm)
        .first()
        .copied()
        .ok_or_else(|| format!("no process {comm} in the fixture").into())
}

fn tid(s: &Snapshot, comm: &str) -> Result<i32, Failed> {
    s.processes
        .iter()
        .flat_map(|p| &p.threads)
        .find(|t| t.comm == comm)
        .map(|t| t.tid)
        .ok_or_else(|| format!("no thread {comm} in the fixture").into())
}

/// The FUSE connection ids of the fixture (those its scene mounted).
fn conns(s: &Snapshot) -> Vec<u32> {
    match &s.fuse_connections {
        Field::Value(c) => c.iter().map(|c| c.id).collect(),
        Field::Missing(_) => Vec::new(),
    }
}

fn the_conn(s: &Snapshot) -> Result<u32, Failed> {
    match conns(s).as_slice() {
        [c] => Ok(*c),
        other => Err(format!("expected one FUSE connection, fixture has {other:?}").into()),
    }
}

fn find<'a>(fs: &'a [Finding], id: &str, pid: i32) -> Result<&'a Finding, Failed> {
    // A mistyped id is an error here, not a finding that is never found.
    let id: RuleId = id.parse()?;
    fs.iter()
        .find(|f| f.id == id && f.pids.first() == Some(&pid))
        .ok_or_else(|| {
            let have: Vec<String> = fs
                .iter()
                .map(|f| format!("{} {:?}", f.id, f.pids))
                .collect();
            format!("no {id} finding for {pid}; findings: {have:?}").into()
        })
}

fn check(cond: bool, what: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(what().into())
    }
}

fn commands(f: &Finding) -> Vec<&str> {
    f.remedies
        .iter()
        .filter_map(|r| r.command.as_deref())
        .collect()
}

fn abort(conn: u32) -> String {
    format!("echo 1 > /sys/fs/fuse/connections/{conn}/abort")
}

/// Every abort command a finding offers, as connection ids.
fn aborted(f: &Finding) -> Vec<u32> {
    commands(f)
        .iter()
        .filter_map(|c| {
            c.strip_prefix("echo 1 > /sys/fs/fuse/connections/")?
                .strip_suffix("/abort")?
                .parse()
                .ok()
        })
        .collect()
}

fn chain_text(f: &Finding) -> String {
    f.chain.join("\n")
}

fn ids(fs: &[Finding]) -> Vec<&str> {
    fs.iter().map(|f| f.id.as_str()).collect()
}

/// A reader in request_wait_answer (S, killable): a warning, not wedged;
/// the abort of its own connection and the daemon at the chain's end.
fn fuse_reader() -> R {
    let s = load("fuse-reader")?;
    let fs = analyze(&s);
    let (reader, daemon, conn) = (pid(&s, "wk-reader")?, pid(&s, "wk-fused")?, the_conn(&s)?);
    let f = find(&fs, "fuse.unanswered", reader)?;
    check(f.severity == Severity::Warning, || format!("{f:?}"))?;
    check(!fs.iter().any(Finding::is_wedged), || {
        format!("a killable FUSE wait is not wedged: {:?}", ids(&fs))
    })?;
    check(commands(f).first() == Some(&abort(conn).as_str()), || {
        format!("{f:?}")
    })?;
    check(
        chain_text(f).contains(&format!("FUSE connection {conn} (")),
        || chain_text(f),
    )?;
    check(
        f.chain
            .iter()
            .all(|c| c.ends_with(&format!("wk-fused {daemon} (S, futex_do_wait)"))),
        || chain_text(f),
    )
}

/// After SIGKILL the reader is D with SIGKILL pending: critical.
fn fuse_reader_killed() -> R {
    let s = load("fuse-reader-killed")?;
    let fs = analyze(&s);
    let (reader, conn) = (pid(&s, "wk-reader")?, the_conn(&s)?);
    let f = find(&fs, "fuse.unanswered", reader)?;
    check(f.severity == Severity::Critical, || format!("{f:?}"))?;
    check(aborted(f) == vec![conn], || format!("{f:?}"))?;
    check(
        commands(f).iter().any(|c| c.starts_with("umount -l ")),
        || format!("{f:?}"),
    )?;
    check(chain_text(f).contains("SIGKILL pending"), || chain_text(f))?;
    check(
        f.blocked_on
            .iter()
            .any(|b| b.kind == "fuse_request" && b.detail.contains("on fd 3")),
        || format!("the tie should be the reader's own fd: {:?}", f.blocked_on),
    )
}

/// Issue 10: the killed multi-threaded reader (leader Z, thread D) is tied
/// to its own connection through the thread's fd table, never to the
/// bystander's connection that also has a request waiting.
fn fuse_thread_killed() -> R {
    let s = load("fuse-thread-killed")?;
    let fs = analyze(&s);
    let (leader, bystander) = (pid(&s, "wk-mtreader")?, pid(&s, "wk-reader")?);
    let f = find(&fs, "fuse.unanswered", leader)?;
    let b = find(&fs, "fuse.unanswered", bystander)?;
    check(f.severity == Severity::Critical, || format!("{f:?}"))?;
    check(b.severity == Severity::Warning, || format!("{b:?}"))?;
    let (mine, theirs) = (aborted(f), aborted(b));
    check(
        mine.len() == 1 && theirs.len() == 1 && mine != theirs,
        || format!("each must abort only its own connection: {mine:?} vs {theirs:?}"),
    )?;
    let other = format!("FUSE connection {} (", theirs[0]);
    check(!format!("{f:?}").contains(&other), || {
        format!("names the bystander's {other}: {f:?}")
    })?;
    let own = format!("FUSE connection {} (", mine[0]);
    check(
        f.chain
            .iter()
            .filter(|c| c.contains("FUSE connection"))
            .all(|c| c.contains(&own)),
        || chain_text(f),
    )?;
    check(
        chain_text(f).contains(&format!("wk-mtread {}", tid(&s, "wk-mtread")?)),
        || chain_text(f),
    )?;
    // The zombie leader is reported too, as information: its reaping waits
    // on the stuck thread, not on its parent.
    let z = find(&fs, "zombie.unreaped", leader)?;
    check(z.severity == Severity::Info, || format!("{z:?}"))
}

/// stat() from a cwd on the mount: no file is open there, the tie is the
/// working directory, so the finding says "likely".
fn fuse_stat() -> R {
    let s = load("fuse-stat")?;
    let fs = analyze(&s);
    let (w, conn) = (pid(&s, "wk-statter")?, the_conn(&s)?);
    let f = find(&fs, "fuse.unanswered", w)?;
    check(aborted(f) == vec![conn], || format!("{f:?}"))?;
    check(
        f.blocked_on
            .iter()
            .any(|b| b.detail.contains("working directory only")),
        || format!("{:?}", f.blocked_on),
    )?;
    check(
        chain_text(f).contains(&format!("wk-fused {} (", pid(&s, "wk-fused")?)),
        || chain_text(f),
    )
}

/// fusectl not mounted (the default on many distributions): the same
/// waiter, with the connections unreadable, is tied through the mount's
/// device minor, and mounting fusectl comes before the abort. The snapshot
/// is the captured one with `fuse_connections` missing, as procfs records
/// a bare sysfs directory there (the text is procfs's own).
fn fuse_stat_without_fusectl() -> R {
    let mut s = load("fuse-stat")?;
    let conn = the_conn(&s)?;
    s.fuse_connections = Field::missing(
        wedge_model::MissingReason::NotSupported,
        "fusectl is not mounted on /sys/fs/fuse/connections (mount -t fusectl none /sys/fs/fuse/connections)",
    );
    s.mounts.retain(|m| m.fs_type != "fusectl");
    let fs = analyze(&s);
    let f = find(&fs, "fuse.unanswered", pid(&s, "wk-statter")?)?;
    let c = commands(f);
    check(
        c.first() == Some(&"mount -t fusectl none /sys/fs/fuse/connections"),
        || format!("fusectl must be mounted first: {c:?}"),
    )?;
    check(c.get(1) == Some(&abort(conn).as_str()), || format!("{c:?}"))
}

/// io_uring after SIGKILL: exit waits on the iou-wrk worker stuck in FUSE.
fn uring_killed() -> R {
    let s = load("uring-killed")?;
    let fs = analyze(&s);
    let (u, conn) = (pid(&s, "wk-uring")?, the_conn(&s)?);
    let f = find(&fs, "io_uring.stuck", u)?;
    check(f.severity == Severity::Critical, || format!("{f:?}"))?;
    let chain = chain_text(f);
    check(
        chain.contains("iou-wrk-")
            && chain.contains(&format!("FUSE connection {conn} ("))
            && chain.contains(&format!("wk-fused {} (", pid(&s, "wk-fused")?)),
        || chain.clone(),
    )?;
    check(commands(f).contains(&"export UV_USE_IO_URING=0"), || {
        format!("{f:?}")
    })?;
    check(
        f.blocked_on.iter().any(|b| b.kind == "io_uring_worker"),
        || format!("{:?}", f.blocked_on),
    )?;
    let fu = find(&fs, "fuse.unanswered", u)?;
    check(aborted(fu) == vec![conn], || format!("{fu:?}"))
}

/// A zombie whose parent is stopped: continuing the parent is the remedy
/// (not SIGCHLD, which a stopped parent cannot act on).
fn zombie_stopped_parent() -> R {
    let s = load("zombie-stopped-parent")?;
    let fs = analyze(&s);
    let (z, par) = (pid(&s, "wk-zombie")?, pid(&s, "wk-zombie-par")?);
    let f = find(&fs, "zombie.unreaped", z)?;
    check(f.severity == Severity::Warning, || format!("{f:?}"))?;
    check(commands(f) == vec![format!("kill -CONT {par}")], || {
        format!("{f:?}")
    })?;
    check(
        f.blocked_on
            .iter()
            .any(|b| b.kind == "zombie_parent" && b.pid == Some(par)),
        || format!("{:?}", f.blocked_on),
    )?;
    let st = find(&fs, "task.stopped", par)?;
    check(commands(st) == vec![format!("kill -CONT {par}")], || {
        format!("{st:?}")
    })?;
    check(!fs.iter().any(Finding::is_wedged), || {
        format!("{:?}", ids(&fs))
    })
}

fn stopped() -> R {
    let s = load("stopped")?;
    let fs = analyze(&s);
    let p = pid(&s, "wk-stopped")?;
    let f = find(&fs, "task.stopped", p)?;
    check(f.severity == Severity::Warning, || format!("{f:?}"))?;
    check(commands(f) == vec![format!("kill -CONT {p}")], || {
        format!("{f:?}")
    })?;
    check(ids(&fs) == vec!["task.stopped"], || {
        format!("{:?}", ids(&fs))
    })
}

/// In ptrace-stop (t) the tracer is the one to act on; SIGCONT does not
/// resume a traced task, so it must not be offered.
fn traced() -> R {
    let s = load("traced")?;
    let fs = analyze(&s);
    let (tracee, tracer) = (pid(&s, "wk-tracee")?, pid(&s, "wk-tracer")?);
    let f = find(&fs, "ptrace.stopped", tracee)?;
    check(
        f.blocked_on
            .iter()
            .any(|b| b.kind == "tracer" && b.pid == Some(tracer)),
        || format!("{:?}", f.blocked_on),
    )?;
    check(commands(f) == vec![format!("kill {tracer}")], || {
        format!("{f:?}")
    })?;
    check(
        !fs.iter().any(|f| f.id == StoppedRule::Stopped.into()),
        || format!("a ptrace-stop is not a job-control stop: {:?}", ids(&fs)),
    )
}

/// The vfork parent is D in kernel_clone by design: information only,
/// pointing at the child, and never "wedged".
fn vfork() -> R {
    let s = load("vfork")?;
    let fs = analyze(&s);
    let (parent, child) = (pid(&s, "wk-vfork")?, pid(&s, "wk-vfork-child")?);
    let f = find(&fs, "vfork.waiting", parent)?;
    check(f.severity == Severity::Info, || format!("{f:?}"))?;
    check(
        f.blocked_on
            .iter()
            .any(|b| b.kind == "vfork_child" && b.pid == Some(child)),
        || format!("{:?}", f.blocked_on),
    )?;
    check(f.remedies.is_empty(), || format!("{f:?}"))?;
    check(!fs.iter().any(Finding::is_wedged), || {
        format!("{:?}", ids(&fs))
    })
}

/// Seed 001: a pid-namespace init reaping waits for a flusher stuck on
/// FUSE; the flusher's chain reaches the connection and its daemon.
fn pidns_fuse() -> R {
    let s = load("pidns-fuse")?;
    let fs = analyze(&s);
    let (flusher, init, conn) = (pid(&s, "wk-flusher")?, pid(&s, "wk-nsinit")?, the_conn(&s)?);
    let f = find(&fs, "fuse.flush_on_exit", flusher)?;
    check(aborted(f) == vec![conn], || format!("{f:?}"))?;
    check(
        chain_text(f).contains(&format!("wk-fused {} (", pid(&s, "wk-fused")?)),
        || chain_text(f),
    )?;
    let z = find(&fs, "zombie.unreaped", flusher)?;
    check(commands(z) == vec![format!("kill -CHLD {init}")], || {
        format!("{z:?}")
    })
}

/// mmap_lock held across a FUSE wait: the blocked cmdline read is itself
/// evidence (critical: wedge was blocked where ps blocks), the holder is
/// named, and the convoy lists the process queued on it.
fn mmap_lock() -> R {
    let s = load("mmap-lock")?;
    let fs = analyze(&s);
    let (m, reader, holder) = (
        pid(&s, "wk-mmaplock")?,
        pid(&s, "wk-cmdline")?,
        tid(&s, "wk-memread")?,
    );
    check(s.blocked_reads.iter().any(|b| b.pid == m), || {
        format!(
            "the capture should hold the blocked cmdline read: {:?}",
            s.blocked_reads
        )
    })?;
    let r = find(&fs, "wedge.read_blocked", m)?;
    check(r.severity == Severity::Critical, || format!("{r:?}"))?;
    check(
        r.blocked_on.iter().any(|b| {
            b.kind == "lock_holder"
                && b.detail.contains("mmap_lock")
                && b.detail.contains(&format!("held by thread {holder}"))
        }),
        || format!("{:?}", r.blocked_on),
    )?;
    let c = find(&fs, "lock.convoy", m)?;
    check(c.pids.contains(&reader), || format!("{c:?}"))?;
    let f = find(&fs, "fuse.unanswered", m)?;
    check(aborted(f) == vec![the_conn(&s)?], || format!("{f:?}"))
}

/// The second creator queued on the directory's i_rwsem (D, path_openat):
/// a convoy whose chain goes through the first creator to the daemon.
fn inode_lock() -> R {
    let s = load("inode-lock")?;
    let fs = analyze(&s);
    let creators = pids(&s, "wk-creator");
    let (first, second) = match creators.as_slice() {
        [a, b] => {
            let d = |p: i32| {
                s.process(p).is_some_and(|p| {
                    p.threads
                        .iter()
                        .any(|t| t.state == wedge_kernel::TaskState::DiskSleep)
                })
            };
            if d(*b) {
                (*a, *b)
            } else {
                (*b, *a)
            }
        }
        other => return Err(format!("expected two creators, got {other:?}").into()),
    };
    let conn = the_conn(&s)?;
    let c = find(&fs, "lock.convoy", second)?;
    check(c.pids.contains(&first), || format!("{c:?}"))?;
    check(
        c.chain.iter().any(|l| {
            l.starts_with(&format!("wk-creator {second} (D, path_openat)"))
                && l.contains(&format!("wk-creator {first} ("))
                && l.contains(&format!("FUSE connection {conn} ("))
        }),
        || chain_text(c),
    )?;
    let f = find(&fs, "fuse.unanswered", first)?;
    check(f.severity == Severity::Warning, || format!("{f:?}"))
}

/// An exiting thread stuck in fuse_flush: its files are off its table, so
/// the connection is known only by elimination — the one with requests
/// waiting — and the abort is offered for it.
fn flush_on_exit() -> R {
    let s = load("flush-on-exit")?;
    let fs = analyze(&s);
    let (p, conn) = (pid(&s, "wk-flusher")?, the_conn(&s)?);
    let f = find(&fs, "fuse.flush_on_exit", p)?;
    check(aborted(f) == vec![conn], || format!("{f:?}"))?;
    check(
        f.blocked_on.iter().any(|b| {
            b.detail
                .contains("the only connection with requests waiting")
        }),
        || format!("{:?}", f.blocked_on),
    )
}

/// The same exiting flusher with a second connection that also has
/// requests waiting (another FUSE scene on the machine): elimination no
/// longer singles one out, so no abort may be offered at all — an abort of
/// a connection not tied to the process would hit someone else's mount.
fn flush_on_exit_two_candidates() -> R {
    let mut s = load("flush-on-exit")?;
    // A second FUSE mount, as another scene's would be: its own mount id,
    // device minor (= connection id) and mount point, one request waiting.
    let conn = the_conn(&s)?;
    let mut mount = s
        .mounts
        .iter()
        .find(|m| m.fs_type.starts_with("fuse") && m.minor == conn)
        .cloned()
        .ok_or("no FUSE mount in the fixture")?;
    mount.mount_id += 1000;
    mount.minor += 100;
    mount.mount_point.push_str("-other");
    s.mounts.push(mount);
    if let Field::Value(c) = &mut s.fuse_connections {
        let mut other = c.first().cloned().ok_or("no connection in the fixture")?;
        other.id += 100;
        other.waiting = Some(1);
        c.push(other);
    }
    let fs = analyze(&s);
    let f = find(&fs, "fuse.flush_on_exit", pid(&s, "wk-flusher")?)?;
    check(aborted(f).is_empty(), || {
        format!("no abort may be offered among candidates: {f:?}")
    })?;
    check(format!("{f:?}").contains("candidate"), || format!("{f:?}"))
}

/// Every finding of every fixture names each process once (the mmap-lock
/// convoy listed its holder twice: as a waiter's process and as holder).
fn every_finding_names_each_pid_once() -> R {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    check(!names.is_empty(), || format!("no fixture in {dir}"))?;
    for name in names {
        let s = load(&name)?;
        for f in wedge_analysis::analyze(&s) {
            let mut seen = f.pids.clone();
            seen.sort_unstable();
            seen.dedup();
            check(seen.len() == f.pids.len(), || {
                format!("{name}: {} lists a pid twice: {:?}", f.id, f.pids)
            })?;
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let tests: &[Case] = &[
        ("fuse-reader", fuse_reader),
        ("fuse-reader-killed", fuse_reader_killed),
        ("fuse-thread-killed", fuse_thread_killed),
        ("fuse-stat", fuse_stat),
        ("fuse-stat-without-fusectl", fuse_stat_without_fusectl),
        ("uring-killed", uring_killed),
        ("zombie-stopped-parent", zombie_stopped_parent),
        ("stopped", stopped),
        ("traced", traced),
        ("vfork", vfork),
        ("pidns-fuse", pidns_fuse),
        ("mmap-lock", mmap_lock),
        ("inode-lock", inode_lock),
        ("flush-on-exit", flush_on_exit),
        ("flush-on-exit-two-candidates", flush_on_exit_two_candidates),
        (
            "every_finding_names_each_pid_once",
            every_finding_names_each_pid_once,
        ),
    ];
    let trials = tests
        .iter()
        .map(|&(name, f)| Trial::test(name, f))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
