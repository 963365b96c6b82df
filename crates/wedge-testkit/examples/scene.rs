//! Builds one real stuck situation and keeps it until the time is up, so
//! that wedge (or ps, cat /proc/PID/stack, …) can be tried on it by hand:
//!
//!     cargo run -p wedge-testkit --example scene -- fuse-killed 60
//!
//! Scenes: fuse-killed, fuse-thread-killed, fuse-stat, uring-killed, sqpoll-killed, mmap-lock,
//! inode-lock, fpos-lock, flush-on-exit, pidns-fuse, zombie, vfork, all; and the storage
//! scenes loop-on-fuse, frozen-ext4, frozen-xfs, frozen-btrfs, loop-eio. Everything is torn
//! down at the end. On Ctrl-C the helpers die with the scene (PR_SET_PDEATHSIG); a storage
//! scene's guardian process then thaws, unmounts and detaches its loop device.
//!
//! Storage scenes keep their images and mount points under `$WEDGE_SCENE_DIR`, by default
//! the directory of this example's binary (`target/debug/examples`), never /tmp.

use std::time::Duration;
use wedge_testkit::*;

fn hold(secs: u64, what: &str) {
    println!("{what}; holding for {secs} s");
    std::thread::sleep(Duration::from_secs(secs));
}

/// Where storage scenes keep their images: `$WEDGE_SCENE_DIR`, else next to
/// this binary.
fn scene_dir() -> std::path::PathBuf {
    std::env::var_os("WEDGE_SCENE_DIR")
        .map(Into::into)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|p| p.to_path_buf()))
        })
        .unwrap_or_else(std::env::temp_dir)
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
        "loop-on-fuse" => {
            let s = LoopOnFuse::start()?;
            hold(
                secs,
                &format!(
                    "reader {} of /dev/{} waits; loop worker {} waits on FUSE connection {} (daemon {}, disk {})",
                    s.reader_pid,
                    s.loop_device().name(),
                    s.worker_tid,
                    s.daemon().conn(),
                    s.daemon().daemon_pid(),
                    s.daemon().path("disk").display()
                ),
            );
        }
        "frozen-ext4" | "frozen-xfs" | "frozen-btrfs" => {
            let kind = match scene.as_str() {
                "frozen-ext4" => FsKind::Ext4,
                "frozen-xfs" => FsKind::Xfs,
                _ => FsKind::Btrfs,
            };
            let f = FrozenFs::start(kind, &scene_dir())?;
            let writers: Vec<String> = f
                .writers()
                .iter()
                .map(|w| format!("{:?} {}", w.kind, w.pid))
                .collect();
            hold(
                secs,
                &format!(
                    "{} on /dev/{} mounted at {} is frozen; writers waiting: {}",
                    kind.name(),
                    f.loop_device().map_or("?", |l| l.name()),
                    f.mountpoint().display(),
                    writers.join(", ")
                ),
            );
        }
        "loop-eio" => {
            let e = LoopEio::start(&scene_dir())?;
            for l in e.kernel_lines() {
                println!("{l}");
            }
            hold(
                secs,
                &format!(
                    "ext4 on /dev/{} (mounted at {}) failed I/O; the kernel's lines are above",
                    e.loop_device().name(),
                    e.mountpoint()
                        .map_or_else(String::new, |m| m.display().to_string())
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
