//! No false alarms: the test's own load — an idle test process, then disk
//! and CPU load like a heavy build — raises no finding. The machine itself
//! need not be clean (other tests, a paused process, a FUSE daemon that
//! stopped answering elsewhere): each test first makes such an unrelated
//! wedge, checks that wedge does report it, and asserts only about the
//! findings that name the test's own processes. A separate test binary, so
//! that no scenario of the live tests runs beside it.

mod common;

use common::{check, critical, scratch, wedge};
use libtest_mimic::{Arguments, Trial};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wedge_testkit::{proc, FuseDaemon, FuseReader, Stopped};

type R = Result<(), libtest_mimic::Failed>;

/// Really wedged processes that are not the test's load: a stopped process
/// and, where FUSE is available, a reader SIGKILLed while its daemon holds
/// the request (D in request_wait_answer: a critical finding).
struct Elsewhere {
    pids: Vec<i32>,
    /// The pid of the D reader, if FUSE could be set up.
    critical: Option<i32>,
}

fn with_elsewhere(f: impl FnOnce(&Elsewhere) -> R) -> R {
    let stopped = Stopped::start().map_err(|e| format!("stopped process: {e}"))?;
    let mut pids = vec![stopped.pid];
    let fs = match FuseDaemon::start() {
        Ok(fs) => Some(fs),
        Err(wedge_testkit::Error::Skip(why)) => {
            wedge_testkit::skip_or_fail(&format!("no FUSE decoy ({why}); stopped process only"));
            None
        }
        Err(e) => return Err(format!("FUSE decoy: {e}").into()),
    };
    let reader = match &fs {
        Some(fs) => {
            let r = FuseReader::start(fs).map_err(|e| format!("FUSE reader: {e}"))?;
            r.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
            pids.extend([fs.daemon_pid(), r.pid]);
            Some(r)
        }
        None => None,
    };
    let e = Elsewhere {
        pids,
        critical: reader.as_ref().map(|r| r.pid),
    };
    // Dropped in order: reader, then the daemon (aborts the connection, so
    // the killed reader leaves D and is reaped), then the stopped process.
    let result = f(&e);
    drop(reader);
    drop(fs);
    drop(stopped);
    result
}

/// Every process descended from this test process except the unrelated
/// wedges (and their helpers): the test's own load. A thread samples /proc
/// every 20 ms while the load runs, so short-lived ones (a `dd` that slept
/// in D for an fsync, then exited) are counted too.
struct OwnPids {
    exclude: HashSet<i32>,
    seen: Arc<Mutex<HashSet<i32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnPids {
    fn watch(exclude: &[i32]) -> OwnPids {
        let me = std::process::id() as i32;
        let exclude: HashSet<i32> = exclude.iter().copied().collect();
        let seen = Arc::new(Mutex::new(HashSet::from([me])));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, ex) = (seen.clone(), stop.clone(), exclude.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let now = descendants(me, &ex);
                s.lock().unwrap_or_else(|e| e.into_inner()).extend(now);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        OwnPids {
            exclude,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Every pid seen so far, and those alive now.
    fn get(&self) -> HashSet<i32> {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.extend(descendants(std::process::id() as i32, &self.exclude));
        all
    }
}

impl Drop for OwnPids {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The processes whose parent chain reaches `root` without passing through
/// an excluded pid.
fn descendants(root: i32, exclude: &HashSet<i32>) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.into_iter()
        .filter(|&pid| {
            let mut p = pid;
            // A chain is short; the bound guards against a pid reused
            // into a loop between reads.
            for _ in 0..64 {
                if exclude.contains(&p) {
                    return false;
                }
                if p == root {
                    return true;
                }
                match proc::stat_field(p, 4).and_then(|s| s.parse::<i32>().ok()) {
                    Some(pp) if pp > 0 => p = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// The findings (any severity) that name one of `own`.
fn findings_about(v: &Value, own: &HashSet<i32>) -> Vec<Value> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        // A finding read only from the kernel log speaks of processes of the
        // past: its pids may since have been reused by the test's own load
        // (seen in CI: a pid of an earlier run's namespace init, dead for
        // hours, was a compiler of this test when the verdict ran).
        .filter(|f| !from_log_only(f))
        .filter(|f| {
            f["pids"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|x| x.as_i64().is_some_and(|x| own.contains(&(x as i32))))
            })
        })
        .cloned()
        .collect()
}

fn from_log_only(f: &Value) -> bool {
    f["evidence"].as_array().is_some_and(|ev| {
        !ev.is_empty()
            && ev.iter().all(|e| {
                e["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("kernel log"))
            })
    })
}

/// One verdict: nothing about the test's own processes, the unrelated
/// wedge reported (so the machine really was not clean), and an exit status
/// that matches the critical findings.
fn verdict_ignores_elsewhere(e: &Elsewhere, own: &OwnPids, what: &str) -> R {
    let r = wedge(&["--json"]);
    let v = r.json();
    let ours = findings_about(&v, &own.get());
    check(ours.is_empty(), || {
        format!("false alarm about the test's own processes ({what}): {ours:#?}")
    })?;
    let wedged = critical(&v);
    if let Some(pid) = e.critical {
        check(
            wedged.iter().any(|f| {
                f["pids"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == pid))
            }),
            || format!("the unrelated FUSE wedge ({pid}) is not reported: {wedged:#?}"),
        )?;
    }
    let expected = if wedged.is_empty() { 0 } else { 1 };
    check(r.code == Some(expected), || {
        format!(
            "exit {:?} with {} critical finding(s) ({what})",
            r.code,
            wedged.len()
        )
    })
}

fn idle_machine_is_not_wedged() -> R {
    with_elsewhere(|e| {
        let own = OwnPids::watch(&e.pids);
        verdict_ignores_elsewhere(e, &own, "idle")
    })
}

/// Disk and CPU load like a heavy build: writers that fsync (short D
/// sleeps in jbd2/writeback) and compilers. None of it is wedged.
fn busy_machine_is_not_wedged() -> R {
    with_elsewhere(|e| {
        let own = OwnPids::watch(&e.pids);
        let dir = scratch("busy");
        let load = Load::start(dir.path())?;
        std::thread::sleep(Duration::from_millis(1500));
        let mut result = Ok(());
        for _ in 0..3 {
            result = verdict_ignores_elsewhere(e, &own, "under load");
            if result.is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(700));
        }
        drop(load);
        result
    })
}

/// The load's shells, each leading its own process group so that the end
/// of the test kills their dd and cc children too (not only the shells).
struct Load(Vec<std::process::Child>);

impl Load {
    fn start(dir: &std::path::Path) -> Result<Load, String> {
        use std::os::unix::process::CommandExt;
        let mut scripts = Vec::new();
        for i in 0..3 {
            scripts.push(format!(
                "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do dd if=/dev/zero of={} bs=1M count=64 conv=fsync status=none; done",
                dir.join(format!("w{i}")).display()
            ));
        }
        let c = dir.join("x.c");
        std::fs::write(&c, "int main(void){return 0;}\n").map_err(|e| e.to_string())?;
        scripts.push(format!(
            "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do cc -O2 -o {}/x {} 2>/dev/null || true; done",
            dir.display(),
            c.display()
        ));
        let mut load = Load(Vec::new());
        for script in scripts {
            // TMPDIR: the compiler killed mid-run leaves its temporary
            // assembly behind; in the test's own directory, not /tmp.
            let child = std::process::Command::new("bash")
                .args(["-c", &script])
                .env("TMPDIR", dir)
                .process_group(0)
                .spawn()
                .map_err(|e| e.to_string())?;
            load.0.push(child);
        }
        Ok(load)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SAFETY: kill(2) of the process group this child leads.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

/// Without root, wedge shows what an ordinary user can see and names what
/// is missing.
fn as_an_ordinary_user() -> Result<(), libtest_mimic::Failed> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        wedge_testkit::skip_or_fail("needs root to switch to an ordinary user");
        return Ok(());
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_wedge"))
        .args(["ps", "--all", "--json"])
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    check(matches!(out.status.code(), Some(0 | 1)), || {
        format!(
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let limits = v["limitations"].to_string();
    check(
        limits.contains("kernel stacks") && limits.contains("run as root"),
        || limits.clone(),
    )?;
    check(limits.contains("wait channels of other users"), || {
        limits.clone()
    })?;
    // Its own view of pid 1: present, with reasons for what it cannot read.
    let init = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 1)
        .ok_or("pid 1 missing")?;
    check(
        init["threads"][0]["kernel_stack"]["missing"]["reason"] == "permission_denied",
        || init["threads"][0]["kernel_stack"].to_string(),
    )
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let mut args = Arguments::from_args();
    // One at a time: the load of one test must not run beside another.
    args.test_threads = Some(1);
    libtest_mimic::run(
        &args,
        vec![
            Trial::test("idle_machine_is_not_wedged", idle_machine_is_not_wedged),
            Trial::test("busy_machine_is_not_wedged", busy_machine_is_not_wedged),
            Trial::test("as_an_ordinary_user", as_an_ordinary_user),
        ],
    )
    .exit();
}
