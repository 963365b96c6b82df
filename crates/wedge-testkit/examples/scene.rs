//! Builds one real stuck situation and keeps it until the time is up, so
//! that wedge (or ps, cat /proc/PID/stack, …) can be tried on it by hand:
//!
//!     cargo run -p wedge-testkit --example scene -- fuse-killed 60
//!
//! Scenes: fuse-killed, fuse-thread-killed, fuse-stat, uring-killed, sqpoll-killed, mmap-lock,
//! inode-lock, fpos-lock, flush-on-exit, pidns-fuse, zombie, vfork, all. Everything is torn down
//! at the end (or on Ctrl-C, through the kit's cleanup hook).

use std::time::Duration;
use wedge_testkit::*;

fn hold(secs: u64, what: &str) {
    println!("{what}; holding for {secs} s");
    std::thread::sleep(Duration::from_secs(secs));
}

fn main() -> Result<()> {
    role_main_if_requested();
    let mut args = std::env::args().skip(1);
    let scene = args.next().unwrap_or_else(|| "all".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    match scene.as_str() {
        "fuse-killed" => {
            let fs = FuseDaemon::start()?;
            let r = FuseReader::start(&fs)?;
            r.sigkill()?;
            hold(
                secs,
                &format!(
                    "reader {} killed while reading {}",
                    r.pid,
                    fs.path("stall").display()
                ),
            );
        }
        "fuse-thread-killed" => {
            let fs = FuseDaemon::start()?;
            let r = FuseThreadReader::start(&fs)?;
            r.sigkill()?;
            hold(
                secs,
                &format!(
                    "process {} killed: leader zombie, thread {} still reading {}",
                    r.pid,
                    r.tid,
                    fs.path("stall").display()
                ),
            );
        }
        "fuse-stat" => {
            let fs = FuseDaemon::start()?;
            let w = FuseStatWaiter::start(&fs)?;
            hold(
                secs,
                &format!(
                    "process {} waits in stat() below {} (cwd there)",
                    w.pid,
                    fs.mountpoint().display()
                ),
            );
        }
        "uring-killed" | "sqpoll-killed" => {
            let fs = FuseDaemon::start()?;
            let mode = if scene == "uring-killed" {
                IoUringMode::Async
            } else {
                IoUringMode::Sqpoll
            };
            let u = IoUringOnFuse::start(&fs, mode)?;
            u.sigkill()?;
            hold(
                secs,
                &format!(
                    "io_uring process {} killed with a read stuck in FUSE",
                    u.pid
                ),
            );
        }
        "mmap-lock" => {
            let fs = FuseDaemon::start()?;
            let m = MmapLockHolder::start(&fs)?;
            hold(
                secs,
                &format!("process {} holds mmap_lock across a FUSE wait", m.pid),
            );
        }
        "inode-lock" => {
            let fs = FuseDaemon::start()?;
            let q = InodeLockQueue::start(&fs)?;
            hold(
                secs,
                &format!(
                    "creator {} holds the i_rwsem of {} across a FUSE wait; creator {} queued on it",
                    q.first_pid,
                    fs.path("stalldir").display(),
                    q.second_pid
                ),
            );
        }
        "fpos-lock" => {
            let fs = FuseDaemon::start()?;
            let q = FposLockQueue::start(&fs)?;
            hold(
                secs,
                &format!(
                    "process {}: thread {} holds f_pos_lock of {} waiting on daemon {}; thread {} queued on it",
                    q.pid,
                    q.first_tid,
                    fs.path("liststall").display(),
                    q.daemon_pid,
                    q.second_tid
                ),
            );
        }
        "flush-on-exit" => {
            let fs = FuseDaemon::start()?;
            let e = ExitWhileFlushing::start(&fs)?;
            e.sigkill();
            hold(
                secs,
                &format!(
                    "process {} exits while thread {} flushes a FUSE file",
                    e.pid, e.tid
                ),
            );
        }
        "pidns-fuse" => {
            let fs = FuseDaemon::start()?;
            let p = PidnsInitWithFuseThread::start(&fs)?;
            hold(
                secs,
                &format!(
                    "pid-ns init {} waits for flusher {}",
                    p.init_pid, p.flusher_pid
                ),
            );
        }
        "zombie" => {
            let z = ZombieWithStoppedParent::start()?;
            hold(
                secs,
                &format!(
                    "zombie {} of stopped parent {}",
                    z.zombie_pid(),
                    z.parent_pid()
                ),
            );
        }
        "vfork" => {
            let v = VforkParent::start()?;
            hold(secs, &format!("vfork parent {}", v.pid));
        }
        "all" => {
            let fs = FuseDaemon::start()?;
            let r = FuseReader::start(&fs)?;
            r.sigkill()?;
            let fs2 = FuseDaemon::start()?;
            let m = MmapLockHolder::start(&fs2)?;
            let z = ZombieWithStoppedParent::start()?;
            let v = VforkParent::start()?;
            hold(
                secs,
                &format!(
                    "killed FUSE reader {}, mmap_lock holder {}, zombie {}, vfork parent {}",
                    r.pid,
                    m.pid,
                    z.zombie_pid(),
                    v.pid
                ),
            );
        }
        other => {
            eprintln!("unknown scene {other}");
            std::process::exit(2);
        }
    }
    Ok(())
}
