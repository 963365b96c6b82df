//! Captures the snapshot fixtures of `wedge-analysis` and `wedge-render`
//! from the kit's real scenes (run as root, on a quiet machine if possible):
//!
//!     cargo run -p wedge-testkit --example capture [SCENE...]
//!
//! Each scene is built, scanned through `wedge_procfs::scan` (what `wedge
//! ps --all --json` prints), trimmed to the scene's own processes (the
//! descendants of this process: every helper is forked from it) and to the
//! mounts and FUSE connections the rules need, and written to
//! `crates/wedge-analysis/tests/fixtures/SCENE.json` with pids kept as they
//! are. Values that depend on the machine or the moment of the run and
//! that a renderer prints (host name, scan duration, boot id) are replaced
//! by fixed ones, so golden files do not change on a re-capture elsewhere.
//! Other FUSE mounts and processes on the machine (other people's scenes)
//! are left out, so a fixture holds only what its scene built.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wedge_model::{Field, Snapshot};
use wedge_testkit::*;

const SCENES: &[&str] = &[
    "fuse-reader",
    "fuse-reader-killed",
    "fuse-thread-killed",
    "fuse-stat",
    "uring-killed",
    "zombie-stopped-parent",
    "stopped",
    "traced",
    "vfork",
    "pidns-fuse",
    "mmap-lock",
    "inode-lock",
    "flush-on-exit",
];

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wedge-analysis/tests/fixtures")
}

fn wait_state(pid: i32, want: char) {
    wait_until(Duration::from_secs(3), || proc::state_of(pid) == Some(want));
}

/// Scans /proc and keeps what belongs to this run: processes descended from
/// this one, mounts below `mountpoints` (and the ones their fds and cwds
/// sit on, the root and fusectl), and the FUSE connections in `conns`.
fn capture(name: &str, mountpoints: &[&Path], conns: &[u32]) -> std::result::Result<(), String> {
    let mut snap: Snapshot = wedge_procfs::scan(&wedge_procfs::ScanOptions::default())?;
    let me = std::process::id() as i32;
    let mut ours: BTreeSet<i32> = BTreeSet::from([me]);
    // Parents may come after children in the scan order: iterate to a fixpoint.
    loop {
        let before = ours.len();
        for p in &snap.processes {
            if ours.contains(&p.ppid) {
                ours.insert(p.pid);
            }
        }
        if ours.len() == before {
            break;
        }
    }
    ours.remove(&me);
    snap.processes.retain(|p| ours.contains(&p.pid));
    let mut mount_ids: BTreeSet<u64> = BTreeSet::new();
    for p in &snap.processes {
        if let Some(fds) = p.fds.value() {
            mount_ids.extend(fds.iter().filter_map(|f| f.mount_id));
        }
    }
    let mps: Vec<String> = mountpoints
        .iter()
        .map(|m| m.to_string_lossy().into_owned())
        .collect();
    snap.mounts.retain(|m| {
        m.mount_point == "/"
            || m.fs_type == "fusectl"
            || mps.iter().any(|p| m.mount_point.starts_with(p.as_str()))
            || (mount_ids.contains(&m.mount_id) && !m.fs_type.starts_with("fuse"))
    });
    if let Field::Value(c) = &mut snap.fuse_connections {
        c.retain(|c| conns.contains(&c.id));
    }
    snap.blocked_reads.retain(|b| ours.contains(&b.pid));
    // Limitations counted over processes ("for N process(es) (e.g. PID
    // COMM, …)") are about the whole machine (its pid 1, other people's
    // processes): keep them only when they name one of the scene's own.
    snap.limitations
        .retain(|l| match l.what.split_once("(e.g. ") {
            None => true,
            Some((_, named)) => named
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<i32>().ok())
                .any(|pid| ours.contains(&pid)),
        });
    snap.system.hostname = Some("fixture-host".into());
    snap.system.boot_id = Some("00000000-0000-0000-0000-000000000000".into());
    snap.stats.duration_ms = 42.0;
    snap.stats.processes = snap.processes.len();
    snap.stats.threads = snap.processes.iter().map(|p| p.threads.len()).sum();
    let path = out_dir().join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&snap).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "{name}: {} processes, {} mounts -> {}",
        snap.processes.len(),
        snap.mounts.len(),
        path.display()
    );
    Ok(())
}

fn scene(name: &str) -> std::result::Result<(), String> {
    let e = |e: Error| e.to_string();
    match name {
        "fuse-reader" | "fuse-reader-killed" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let r = FuseReader::start(&fs).map_err(e)?;
            if name.ends_with("killed") {
                r.sigkill().map_err(e)?;
                wait_state(r.pid, 'D');
            }
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "fuse-thread-killed" => {
            // A bystander on another connection, as in live.rs: the finding
            // must name only the reader's own connection.
            let fs = FuseDaemon::start().map_err(e)?;
            let other = FuseDaemon::start().map_err(e)?;
            let _b = FuseReader::start(&other).map_err(e)?;
            let r = FuseThreadReader::start(&fs).map_err(e)?;
            r.sigkill().map_err(e)?;
            wait_state(r.tid, 'D');
            capture(
                name,
                &[fs.mountpoint(), other.mountpoint()],
                &[fs.conn(), other.conn()],
            )
        }
        "fuse-stat" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let _w = FuseStatWaiter::start(&fs).map_err(e)?;
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "uring-killed" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let u = IoUringOnFuse::start(&fs, IoUringMode::Async).map_err(e)?;
            u.sigkill().map_err(e)?;
            wait_state(u.pid, 'D');
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "zombie-stopped-parent" => {
            let _z = ZombieWithStoppedParent::start().map_err(e)?;
            capture(name, &[], &[])
        }
        "stopped" => {
            let _s = Stopped::start().map_err(e)?;
            capture(name, &[], &[])
        }
        "traced" => {
            let _t = Traced::start().map_err(e)?;
            capture(name, &[], &[])
        }
        "vfork" => {
            let _v = VforkParent::start().map_err(e)?;
            capture(name, &[], &[])
        }
        "pidns-fuse" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let _p = PidnsInitWithFuseThread::start(&fs).map_err(e)?;
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "mmap-lock" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let _m = MmapLockHolder::start(&fs).map_err(e)?;
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "inode-lock" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let _q = InodeLockQueue::start(&fs).map_err(e)?;
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        "flush-on-exit" => {
            let fs = FuseDaemon::start().map_err(e)?;
            let x = ExitWhileFlushing::start(&fs).map_err(e)?;
            x.sigkill();
            capture(name, &[fs.mountpoint()], &[fs.conn()])
        }
        other => Err(format!(
            "unknown scene {other}; scenes: {}",
            SCENES.join(", ")
        )),
    }
}

fn main() {
    role_main_if_requested();
    let asked: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if asked.is_empty() {
        SCENES.to_vec()
    } else {
        asked.iter().map(String::as_str).collect()
    };
    let mut failed = false;
    for n in names {
        if let Err(err) = scene(n) {
            eprintln!("{n}: {err}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
