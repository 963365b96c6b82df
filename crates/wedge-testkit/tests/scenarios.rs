//! The kit's own tests: build every scenario for real, check what /proc shows,
//! and check that teardown leaves nothing behind.

use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use wedge_testkit::proc::{self, sig_bit, PF_EXITING};
use wedge_testkit::{
    fuse, setup_or_skip, ExitWhileFlushing, FposLockQueue, FuseDaemon, FuseReader, InodeLockQueue,
    IoUringMode, IoUringOnFuse, MmapLockHolder, PidnsInit, PidnsInitAbort, PidnsInitWithFuseThread,
    Stopped, Traced, VforkParent, Zombie, ZombieWithStoppedParent,
};
use wedge_testkit::{DiskMode, FrozenFs, FsKind, LoopEio, LoopOnFuse};

type R = Result<(), Failed>;

fn check(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

/// Print what /proc shows for `tid` (visible with --nocapture); these lines
/// are the source of the facts in the scenario doc comments.
fn dump(label: &str, tid: i32) {
    println!("[{label}] {}", proc::describe(tid));
}

/// `WEDGE_TESTKIT_HOLD=<secs>` keeps a scenario alive that long (to inspect
/// it by hand, or to kill the test process and check the crash sweep).
fn hold() {
    if let Some(s) = std::env::var("WEDGE_TESTKIT_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        std::thread::sleep(Duration::from_secs(s));
    }
}

fn top(tid: i32) -> String {
    proc::stack_of(tid).join(" < ")
}

// --- plain process states ------------------------------------------------------

fn zombie() -> R {
    let z = setup_or_skip!(Zombie::start());
    dump("zombie", z.zombie_pid);
    dump("zombie parent", z.parent_pid);
    check(proc::state_of(z.zombie_pid) == Some('Z'), || "not Z".into())?;
    check(proc::ppid_of(z.zombie_pid) == Some(z.parent_pid), || {
        "ppid".into()
    })?;
    check(
        proc::comm_of(z.zombie_pid).as_deref() == Some("wk-zombie"),
        || "comm".into(),
    )?;
    let zp = z.zombie_pid;
    drop(z);
    check(!proc::exists(zp), || format!("zombie {zp} not reaped"))
}

fn zombie_stopped_parent() -> R {
    let z = setup_or_skip!(ZombieWithStoppedParent::start());
    dump("zombie", z.zombie_pid());
    dump("stopped parent", z.parent_pid());
    check(proc::state_of(z.parent_pid()) == Some('T'), || {
        "parent not T".into()
    })?;
    check(proc::state_of(z.zombie_pid()) == Some('Z'), || {
        "not Z".into()
    })
}

fn stopped() -> R {
    let s = setup_or_skip!(Stopped::start());
    dump("stopped", s.pid);
    check(proc::state_of(s.pid) == Some('T'), || "not T".into())?;
    check(
        proc::status_field(s.pid, "State").is_some_and(|v| v.starts_with("T (stopped)")),
        || format!("{:?}", proc::status_field(s.pid, "State")),
    )
}

fn traced() -> R {
    let t = setup_or_skip!(Traced::start());
    dump("traced", t.pid);
    dump("tracer", t.tracer_pid);
    check(proc::state_of(t.pid) == Some('t'), || "not t".into())?;
    check(
        proc::status_field(t.pid, "TracerPid") == Some(t.tracer_pid.to_string()),
        || "TracerPid".into(),
    )
}

fn vfork() -> R {
    let v = setup_or_skip!(VforkParent::start());
    dump("vfork parent", v.pid);
    dump("vfork child", v.child_pid);
    check(proc::state_of(v.pid) == Some('D'), || "parent not D".into())?;
    check(
        proc::wchan_of(v.pid).as_deref() == Some("kernel_clone"),
        || format!("wchan {:?}", proc::wchan_of(v.pid)),
    )?;
    let (p, c) = (v.pid, v.child_pid);
    drop(v);
    check(!proc::exists(p) && !proc::exists(c), || {
        "vfork pair not reaped".into()
    })
}

// --- pid namespaces --------------------------------------------------------------

fn pidns_init() -> R {
    let p = setup_or_skip!(PidnsInit::start());
    dump("pidns init", p.init_pid);
    dump("pidns launcher", p.launcher_pid());
    println!("[pidns init] NSpid: {:?}", p.nspid_line);
    check(p.nspid == vec![p.init_pid, 1], || format!("{:?}", p.nspid))?;
    check(p.nspid_line == format!("{}\t1", p.init_pid), || {
        p.nspid_line.clone()
    })?;
    check(proc::ppid_of(p.init_pid) == Some(p.launcher_pid()), || {
        "ppid".into()
    })?;
    let init = p.init_pid;
    drop(p);
    check(!proc::exists(init), || "init survived".into())
}

fn pidns_init_abort() -> R {
    let p = setup_or_skip!(PidnsInitAbort::run());
    println!(
        "[pidns abort] exit raw={:#x} signal={:?} core={} shell={} trap={:?}",
        p.exit.raw,
        p.exit.signal(),
        p.exit.core_dumped(),
        p.exit.shell_status(),
        p.trap_line
    );
    for l in &p.kmsg_lines {
        println!("[pidns abort] kmsg: {l}");
    }
    check(p.exit.signal() == Some(libc::SIGSEGV), || {
        format!("{:?}", p.exit)
    })?;
    check(p.trap_line.is_some(), || {
        format!("no trap line in {:?}", p.kmsg_lines)
    })
}

// --- FUSE --------------------------------------------------------------------------

fn fuse_daemon_basics() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    println!(
        "[fuse] mnt={:?} conn={} daemon={} waiting={:?}",
        fs.mountpoint(),
        fs.conn(),
        fs.daemon_pid(),
        fs.waiting()
    );
    for t in proc::tids_of(fs.daemon_pid()) {
        dump("fuse daemon thread", t);
    }
    println!("[fuse] waiting at start {:?}", fs.waiting());
    let ok = std::fs::read_to_string(fs.path("ok")).map_err(|e| e.to_string())?;
    println!("[fuse] waiting after read {:?}", fs.waiting());
    check(ok == "hello from wedge-testkit\n", || format!("{ok:?}"))?;
    let mut names: Vec<String> = std::fs::read_dir(fs.mountpoint())
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    check(
        names == ["disk", "flushstall", "liststall", "ok", "stall", "stalldir"],
        || format!("{names:?}"),
    )?;
    // RELEASE/RELEASEDIR are sent in the background: let them drain.
    let drained = wedge_testkit::wait_until(Duration::from_secs(2), || fs.waiting() == Some(0));
    check(drained, || format!("waiting {:?}", fs.waiting()))?;
    let mp = fs.mountpoint().to_path_buf();
    drop(fs);
    check(
        !fuse::kit_mounts()
            .iter()
            .any(|m| std::path::Path::new(m) == mp),
        || "still mounted".into(),
    )?;
    check(!mp.exists(), || "temp dir left".into())
}

fn fuse_reader() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    dump("reader before kill", r.pid);
    println!("[reader] stack: {}", top(r.pid));
    println!("[reader] waiting={:?}", fs.waiting());
    check(proc::state_of(r.pid) == Some('S'), || "reader not S".into())?;
    check(
        proc::wchan_of(r.pid).as_deref() == Some("request_wait_answer"),
        || "wchan".into(),
    )?;
    check(fs.waiting() == Some(1), || {
        format!("waiting {:?}", fs.waiting())
    })?;
    hold();
    r.sigkill().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(200));
    dump("reader after kill", r.pid);
    println!("[reader] stack after kill: {}", top(r.pid));
    check(proc::state_of(r.pid) == Some('D'), || {
        "reader not D after kill".into()
    })?;
    let pnd = proc::sigset_of(r.pid, "SigPnd").unwrap_or(0)
        | proc::sigset_of(r.pid, "ShdPnd").unwrap_or(0);
    check(pnd & sig_bit(libc::SIGKILL) != 0, || {
        "SIGKILL not pending".into()
    })?;
    let pid = r.pid;
    drop(r);
    check(!proc::exists(pid), || "reader survived teardown".into())
}

/// fuser answers FUSE_INTERRUPT with ENOSYS, so after one interrupted
/// request the connection has `no_interrupt` set and a new reader sleeps in
/// the killable phase (`D`) from the start.
fn fuse_reader_after_interrupt() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let first = setup_or_skip!(FuseReader::start(&fs));
    first.sigkill().map_err(|e| e.to_string())?;
    drop(first);
    let second = setup_or_skip!(FuseReader::start(&fs));
    dump("second reader after an interrupt", second.pid);
    check(proc::state_of(second.pid) == Some('D'), || {
        "second reader not D".into()
    })
}

fn fuse_reader_release() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    fs.release().map_err(|e| e.to_string())?;
    let done = r
        .wait_read_done(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    check(done.contains("Ok(4096)"), || done.clone())
}

fn fuse_abort() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    fs.abort_connection().map_err(|e| e.to_string())?;
    let done = r
        .wait_read_done(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    println!("[abort] reader got: {done}");
    check(done.contains("Err"), || done.clone())
}

fn mmap_lock() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let m = setup_or_skip!(MmapLockHolder::start(&fs));
    dump("memread", m.memread_tid);
    println!("[memread] stack: {}", top(m.memread_tid));
    dump("mmapper", m.mmapper_tid);
    println!("[mmapper] stack: {}", top(m.mmapper_tid));
    dump("cmdline reader", m.cmdline_reader_pid);
    println!("[cmdline] stack: {}", top(m.cmdline_reader_pid));
    check(proc::state_of(m.mmapper_tid) == Some('D'), || {
        "mmapper".into()
    })?;
    check(proc::state_of(m.cmdline_reader_pid) == Some('D'), || {
        "cmdline".into()
    })?;
    check(
        proc::blocked_in(m.memread_tid, "get_user_pages_remote"),
        || "memread".into(),
    )?;
    let t0 = Instant::now();
    let st = Command::new("timeout")
        .args(["2", "cat", &format!("/proc/{}/cmdline", m.pid)])
        .status()
        .map_err(|e| e.to_string())?;
    println!(
        "[mmap] timeout cat -> {:?} after {:?}",
        st.code(),
        t0.elapsed()
    );
    check(st.code() == Some(124), || {
        format!("cat exit {:?}", st.code())
    })
}

fn exit_while_flushing() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let e = setup_or_skip!(ExitWhileFlushing::start(&fs));
    dump("flusher leader", e.pid);
    dump("flusher thread", e.tid);
    println!("[flush] stack: {}", top(e.tid));
    check(proc::flags_of(e.tid).unwrap_or(0) & PF_EXITING != 0, || {
        "no PF_EXITING".into()
    })?;
    e.sigkill();
    std::thread::sleep(Duration::from_millis(200));
    dump("flusher thread after SIGKILL", e.tid);
    check(proc::state_of(e.tid) == Some('S'), || {
        "flusher not S".into()
    })?;
    let pnd = proc::sigset_of(e.tid, "SigPnd").unwrap_or(0)
        | proc::sigset_of(e.tid, "ShdPnd").unwrap_or(0);
    check(pnd == 0, || format!("SIGKILL was queued: {pnd:#x}"))?;
    check(proc::blocked_in(e.tid, "fuse_flush"), || {
        "no longer in fuse_flush".into()
    })
}

fn pidns_fuse() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let p = setup_or_skip!(PidnsInitWithFuseThread::start(&fs));
    dump("ns init", p.init_pid);
    println!("[nsinit] stack: {}", top(p.init_pid));
    dump("ns flusher leader", p.flusher_pid);
    dump("ns flusher thread", p.flusher_tid);
    println!("[nsflusher] stack: {}", top(p.flusher_tid));
    check(proc::blocked_in(p.init_pid, "zap_pid_ns_processes"), || {
        "init".into()
    })?;
    check(proc::state_of(p.flusher_pid) == Some('Z'), || {
        "leader".into()
    })?;
    let errno = p.fork_into_namespace().map_err(|e| e.to_string())?;
    println!("[nsinit] setns+fork into the dying namespace: errno {errno}");
    check(errno == libc::ENOMEM, || format!("fork errno {errno}"))?;
    check(proc::blocked_in(p.flusher_tid, "fuse_flush"), || {
        "flusher".into()
    })
}

fn uring(mode: IoUringMode) -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let u = setup_or_skip!(IoUringOnFuse::start(&fs, mode));
    println!("[uring {mode:?}] blocked tid {}", u.blocked_tid);
    for t in u.threads() {
        println!("[uring {mode:?} before kill] {t:?}");
    }
    let expect = match mode {
        IoUringMode::Plain => "wk-uring".to_string(),
        IoUringMode::Async => format!("iou-wrk-{}", u.pid),
        IoUringMode::Sqpoll => format!("iou-sqp-{}", u.pid),
    };
    let who = proc::comm_of(u.blocked_tid).unwrap_or_default();
    check(who == expect, || {
        format!("blocked task is {who}, expected {expect}")
    })?;
    u.sigkill().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    for t in u.threads() {
        println!(
            "[uring {mode:?} after kill] {t:?} SigPnd={:?} ShdPnd={:?}",
            proc::status_field(t.tid, "SigPnd"),
            proc::status_field(t.tid, "ShdPnd")
        );
    }
    check(proc::state_of(u.blocked_tid) == Some('D'), || {
        "blocked task not D".into()
    })?;
    check(proc::state_of(u.pid) == Some('D'), || {
        "main thread not D".into()
    })
}

fn inode_lock() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    dump("creator1", q.first_pid);
    println!("[creator1] stack: {}", top(q.first_pid));
    dump("creator2", q.second_pid);
    println!("[creator2] stack: {}", top(q.second_pid));
    println!("[inode] parked: {:?}", fs.parked());
    check(proc::state_of(q.second_pid) == Some('D'), || {
        "second not D".into()
    })?;
    check(
        proc::wchan_of(q.second_pid).as_deref() == Some("path_openat"),
        || "second wchan".into(),
    )?;
    check(fs.parked().iter().all(|p| p.pid != q.second_pid), || {
        "second has a FUSE request".into()
    })
}

fn fpos_lock() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let mp = fs.mountpoint().to_path_buf();
    {
        let q = setup_or_skip!(FposLockQueue::start(&fs));
        dump("lister-a", q.first_tid);
        println!("[lister-a] stack: {}", top(q.first_tid));
        dump("lister-b", q.second_tid);
        println!("[lister-b] stack: {}", top(q.second_tid));
        println!("[fpos] parked: {:?}", fs.parked());
        hold();
        check(proc::blocked_in(q.first_tid, "request_wait_answer"), || {
            "first lister not in request_wait_answer".into()
        })?;
        check(proc::state_of(q.second_tid) == Some('D'), || {
            "second lister not D".into()
        })?;
        let readdirs: Vec<_> = fs
            .parked()
            .into_iter()
            .filter(|p| p.op == "READDIR")
            .collect();
        check(
            readdirs.len() == 1 && readdirs[0].pid == q.first_tid,
            || format!("one READDIR by the first lister expected: {readdirs:?}"),
        )?;
        check(q.daemon_pid == fs.daemon_pid(), || "daemon pid".into())?;
        let (pid, a, b) = (q.pid, q.first_tid, q.second_tid);
        drop(q);
        check(
            [pid, a, b]
                .iter()
                .all(|&t| !matches!(proc::state_of(t), Some('S' | 'D' | 'R'))),
            || {
                format!(
                    "lister left behind: {} | {}",
                    proc::describe(a),
                    proc::describe(b)
                )
            },
        )?;
    }
    drop(fs);
    check(!mp.exists(), || format!("{mp:?} left behind"))
}

// --- storage ----------------------------------------------------------------

/// Scratch space under cargo's target/tmp, never /tmp.
fn scratch_parent() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wedge-testkit-scenarios")
}

/// `/sys/block/NAME/loop/backing_file`, while NAME is attached.
fn backing_of(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn mounted_at(mnt: &std::path::Path) -> bool {
    let want = mnt.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| s.lines().any(|l| l.split(' ').nth(4) == Some(&*want)))
        .unwrap_or(false)
}

/// The FUSE `disk` passes I/O through, fails it with EIO, and (direct I/O)
/// never answers a read from a page cache.
fn fuse_disk_modes() -> R {
    use std::os::unix::fs::FileExt;
    let fs = setup_or_skip!(FuseDaemon::start());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fs.path("disk"))
        .map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    check(len == fuse::DISK_SIZE, || format!("disk size {len}"))?;
    f.write_all_at(b"wedge disk", 4096)
        .map_err(|e| e.to_string())?;
    let mut b = [0u8; 10];
    f.read_exact_at(&mut b, 4096).map_err(|e| e.to_string())?;
    check(&b == b"wedge disk", || format!("{b:?}"))?;
    fs.set_disk_mode(DiskMode::Eio).map_err(|e| e.to_string())?;
    let r = f.read_exact_at(&mut b, 4096);
    check(
        r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EIO),
        || format!("read in eio mode: {r:?}"),
    )?;
    let w = f.write_all_at(b"x", 0);
    check(
        w.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EIO),
        || format!("write in eio mode: {w:?}"),
    )?;
    fs.set_disk_mode(DiskMode::Answer)
        .map_err(|e| e.to_string())?;
    f.read_exact_at(&mut b, 4096).map_err(|e| e.to_string())?;
    check(&b == b"wedge disk", || format!("{b:?}"))
}

fn loop_on_fuse() -> R {
    let s = setup_or_skip!(LoopOnFuse::start());
    let name = s.loop_device().name().to_string();
    let disk = s.daemon().path("disk").display().to_string();
    dump("loop reader", s.reader_pid);
    dump("loop worker", s.worker_tid);
    check(proc::state_of(s.reader_pid) == Some('D'), || {
        top(s.reader_pid)
    })?;
    check(proc::blocked_in(s.reader_pid, "submit_bio_wait"), || {
        top(s.reader_pid)
    })?;
    let comm = proc::comm_of(s.worker_tid).unwrap_or_default();
    check(
        comm.starts_with("kworker/") && comm.ends_with(&format!("+{name}")),
        || format!("loop worker comm {comm:?}"),
    )?;
    check(proc::blocked_in(s.worker_tid, "lo_rw_aio"), || {
        top(s.worker_tid)
    })?;
    check(backing_of(&name).as_deref() == Some(disk.as_str()), || {
        format!("{name} backing {:?}", backing_of(&name))
    })?;
    check(s.daemon().waiting() >= Some(1), || {
        format!("waiting {:?}", s.daemon().waiting())
    })?;
    hold();
    let reader = s.reader_pid;
    drop(s);
    check(backing_of(&name).as_deref() != Some(disk.as_str()), || {
        format!("{name} still attached to {disk}")
    })?;
    check(!proc::exists(reader), || format!("reader {reader} left"))
}

fn frozen(kind: FsKind) -> R {
    let f = setup_or_skip!(FrozenFs::start(kind, &scratch_parent()));
    let mnt = f.mountpoint().to_path_buf();
    let name = f
        .loop_device()
        .map(|l| l.name().to_string())
        .unwrap_or_default();
    // This scene's own image: another scene of this binary, running
    // beside it, may take the same loop number as soon as it is free.
    let image = f
        .loop_device()
        .map(|l| l.backing_file().display().to_string());
    for w in f.writers() {
        dump(&format!("{} {:?}", kind.name(), w.kind), w.pid);
        check(proc::blocked_in(w.pid, "percpu_rwsem_wait"), || top(w.pid))?;
    }
    hold();
    let pids = f.writer_pids();
    drop(f);
    check(!mounted_at(&mnt), || format!("{mnt:?} still mounted"))?;
    check(!mnt.exists(), || format!("{mnt:?} left"))?;
    check(
        // (A deleted image reads "PATH (deleted)".)
        image
            .as_deref()
            .is_none_or(|i| backing_of(&name).is_none_or(|b| !b.starts_with(i))),
        || format!("{name} still attached to {image:?}"),
    )?;
    check(pids.iter().all(|&p| !proc::exists(p)), || {
        format!("writers {pids:?} left")
    })
}

fn loop_eio() -> R {
    let e = setup_or_skip!(LoopEio::start(&scratch_parent()));
    let name = e.loop_device().name().to_string();
    for l in e.kernel_lines() {
        println!("[loop eio] {l}");
    }
    println!("[loop eio] writer: {:?}", e.writer_results);
    let has = |needle: &str| e.kernel_lines().iter().any(|l| l.contains(needle));
    check(has(&format!("I/O error, dev {name}, sector")), || {
        "no block I/O error".into()
    })?;
    check(has("op 0x1:(WRITE)"), || "no WRITE error".into())?;
    check(has("Buffer I/O error on dev"), || {
        "no buffer I/O error".into()
    })?;
    check(has(&format!("EXT4-fs error (device {name})")), || {
        "no EXT4-fs error".into()
    })?;
    check(has("Remounting filesystem read-only"), || {
        "no remount".into()
    })?;
    let mnt = e.mountpoint().map(|m| m.to_path_buf());
    drop(e);
    check(mnt.is_some_and(|m| !m.exists()), || {
        "mount point left".into()
    })
}

/// Env var: build a FrozenFs, report it, and wait to be SIGKILLed (the
/// guardian test runs this binary so).
const CRASH_ENV: &str = "WEDGE_TESTKIT_CRASH_SCENE";

/// A test process SIGKILLed while its filesystem is frozen: the guardian
/// thaws, unmounts, detaches the loop device and removes the scratch files.
fn guardian_cleans_after_sigkill() -> R {
    if !rustix::process::geteuid().is_root() {
        wedge_testkit::skip_or_fail("needs root");
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(CRASH_ENV, scratch_parent())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).map_err(|e| e.to_string())?;
    let _ = child.kill();
    let _ = child.wait();
    if let Some(reason) = line.strip_prefix("skip ") {
        wedge_testkit::skip_or_fail(reason.trim());
        return Ok(());
    }
    let kv: std::collections::BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect();
    let (Some(mnt), Some(dev), Some(dir)) = (kv.get("mnt"), kv.get("dev"), kv.get("dir")) else {
        return Err(format!("crash scene said {line:?}").into());
    };
    let mnt = std::path::PathBuf::from(mnt);
    let dir = std::path::PathBuf::from(dir);
    let img = dir.join("img").display().to_string();
    let clean = wedge_testkit::wait_until(Duration::from_secs(30), || {
        !mounted_at(&mnt) && !dir.exists() && backing_of(dev).as_deref() != Some(img.as_str())
    });
    // The crashed process's helpers were re-parented to this one (a child
    // subreaper): reap them, by pid, once they have exited.
    let helpers: Vec<i32> = kv
        .get("helpers")
        .map(|h| h.split(',').filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    wedge_testkit::wait_until(Duration::from_secs(10), || {
        helpers
            .iter()
            .all(|&p| matches!(proc::state_of(p), None | Some('Z') | Some('X')))
    });
    for &p in &helpers {
        let mut status = 0;
        // SAFETY: waitpid on a specific pid, writing only our int.
        unsafe { libc::waitpid(p, &mut status, libc::WNOHANG | libc::__WALL) };
    }
    check(clean, || {
        format!(
            "after SIGKILL: mounted {} dir {} {dev} on {:?}",
            mounted_at(&mnt),
            dir.exists(),
            backing_of(dev)
        )
    })
}

fn crash_scene(parent: &std::ffi::OsStr) -> ! {
    match FrozenFs::start(FsKind::Ext4, std::path::Path::new(parent)) {
        Ok(f) => {
            let mnt = f.mountpoint().display().to_string();
            let dir = f
                .mountpoint()
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let dev = f
                .loop_device()
                .map(|l| l.name().to_string())
                .unwrap_or_default();
            let helpers: Vec<String> = f
                .writer_pids()
                .into_iter()
                .chain([f.guardian_pid()])
                .map(|p| p.to_string())
                .collect();
            println!(
                "mnt={mnt} dev={dev} dir={dir} helpers={}",
                helpers.join(",")
            );
            // Keep the scene until SIGKILLed; a Drop never runs.
            std::mem::forget(f);
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Err(wedge_testkit::Error::Skip(r)) => {
            println!("skip {r}");
            std::process::exit(0)
        }
        Err(e) => {
            println!("error {e}");
            std::process::exit(1)
        }
    }
}

fn main() {
    wedge_testkit::role_main_if_requested();
    if let Some(parent) = std::env::var_os(CRASH_ENV) {
        crash_scene(&parent);
    }
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("zombie", zombie),
        Trial::test("zombie_stopped_parent", zombie_stopped_parent),
        Trial::test("stopped", stopped),
        Trial::test("traced", traced),
        Trial::test("vfork", vfork),
        Trial::test("pidns_init", pidns_init),
        Trial::test("pidns_init_abort", pidns_init_abort),
        Trial::test("fuse_daemon_basics", fuse_daemon_basics),
        Trial::test("fpos_lock", fpos_lock),
        Trial::test("fuse_reader", fuse_reader),
        Trial::test("fuse_reader_release", fuse_reader_release),
        Trial::test("fuse_reader_after_interrupt", fuse_reader_after_interrupt),
        Trial::test("fuse_abort", fuse_abort),
        Trial::test("mmap_lock", mmap_lock),
        Trial::test("exit_while_flushing", exit_while_flushing),
        Trial::test("pidns_fuse", pidns_fuse),
        Trial::test("uring_plain", || uring(IoUringMode::Plain)),
        Trial::test("uring_async", || uring(IoUringMode::Async)),
        Trial::test("uring_sqpoll", || uring(IoUringMode::Sqpoll)),
        Trial::test("inode_lock", inode_lock),
        Trial::test("fuse_disk_modes", fuse_disk_modes),
        Trial::test("loop_on_fuse", loop_on_fuse),
        Trial::test("frozen_ext4", || frozen(FsKind::Ext4)),
        Trial::test("frozen_xfs", || frozen(FsKind::Xfs)),
        Trial::test("frozen_btrfs", || frozen(FsKind::Btrfs)),
        Trial::test("loop_eio", loop_eio),
        Trial::test(
            "guardian_cleans_after_sigkill",
            guardian_cleans_after_sigkill,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, tests);
    // Nothing of ours may survive the scenarios' Drops.
    let me = std::process::id() as i32;
    let mounts = fuse::kit_mounts();
    let children: Vec<String> = proc::children_of(me)
        .into_iter()
        .map(|c| format!("{c} {:?} {:?}", proc::comm_of(c), proc::state_of(c)))
        .collect();
    if !mounts.is_empty() || !children.is_empty() {
        eprintln!("LEFTOVERS: mounts {mounts:?} children {children:?}");
        std::process::exit(1);
    }
    conclusion.exit();
}
