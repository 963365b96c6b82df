//! The whole-system scan: every process and thread under /proc, read by a
//! small pool of workers that a watchdog bounds in time.

use crate::helper::{Helper, HelperError};
use crate::parse;
use crate::read::{Slot, TaskReader};
use crate::ScanOptions;
use procfs_core::FromRead;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use wedge_kernel::{SignalSet, TaskFlags, TaskState, ThreadKind};
use wedge_model::{
    BlockedRead, Field, FileKind, MissingReason, Namespace, OpenFile, Process, SchedInfo, Thread,
};

/// A scan of one pid may be retried this many times, each retry skipping
/// the reads that blocked before.
const MAX_ATTEMPTS: u32 = 4;

/// Namespace links, in the order `ls /proc/PID/ns` gives them.
const NS_KINDS: &[&str] = &[
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "user",
    "uts",
];

/// What one pid's scan produced.
pub(crate) struct PidResult {
    pub process: Option<Process>,
    pub blocked: Vec<BlockedRead>,
    pub reads: u64,
    pub vanished: bool,
    pub reused: bool,
    pub permission_denied: HashSet<&'static str>,
    pub pid: i32,
}

#[derive(Clone)]
struct Job {
    pid: i32,
    attempt: u32,
    skip: Arc<HashSet<String>>,
}

struct Shared {
    opts: ScanOptions,
    proc_fd: OwnedFd,
    pids: Vec<i32>,
    next: AtomicUsize,
    retries: Mutex<VecDeque<Job>>,
    helper: Mutex<Helper>,
    stop: AtomicBool,
}

/// What a blocked read of this file waits for in the kernel.
pub(crate) fn blocks_on(what: &str) -> &'static str {
    let file = what.rsplit('/').next().unwrap_or(what);
    match file {
        "cmdline" | "environ" | "maps" | "smaps" | "mem" | "auxv" => {
            "the process's mmap_lock: a thread holds it while stuck, or a writer is queued behind such a holder"
        }
        "mountinfo" | "mounts" => "namespace_sem: a mount or unmount is stuck in progress",
        "cgroup" => "cgroup_mutex: a cgroup operation is stuck in progress",
        "stack" | "syscall" | "wchan" | "status" | "stat" => {
            "the task's exec_update_lock or its scheduler state: an exec or exit is stuck in progress"
        }
        _ => "a lock or wait of the kernel's",
    }
}

fn helper_read(
    shared: &Shared,
    path: &str,
    pid: i32,
    tid: Option<i32>,
    what: &str,
    blocked: &mut Vec<BlockedRead>,
) -> Result<Vec<u8>, (MissingReason, String)> {
    let deadline = shared.opts.deadline;
    let mut helper = match shared.helper.lock() {
        Ok(h) => h,
        Err(p) => p.into_inner(),
    };
    match helper.read_file(path.as_bytes(), deadline) {
        Ok(data) => Ok(data),
        Err(HelperError::TimedOut(waited)) => {
            let ms = waited.as_millis() as u64;
            blocked.push(BlockedRead {
                pid,
                tid,
                what: what.to_string(),
                waited_ms: ms,
                blocks_on: blocks_on(what).to_string(),
            });
            Err((
                MissingReason::TimedOut,
                format!(
                    "reading {path} blocked > {} ms: {}",
                    deadline.as_millis(),
                    blocks_on(what)
                ),
            ))
        }
        Err(HelperError::Os(e)) => {
            let f = crate::read::classify(rustix::io::Errno::from_raw_os_error(e), path);
            Err((f.reason, f.detail))
        }
        Err(HelperError::Refused(n)) => Err((
            MissingReason::NotCollected,
            format!("not reading {path}: {n} earlier reads already blocked"),
        )),
        Err(HelperError::Broken(e)) => Err((
            MissingReason::Error,
            format!("reading {path}: helper failed: {e}"),
        )),
    }
}

fn scan_pid(shared: &Shared, slot: &Slot, job: &Job) -> PidResult {
    let pid = job.pid;
    let opts = &shared.opts;
    let root = opts.proc_root.display().to_string();
    let mut r = TaskReader {
        slot,
        buf: Vec::with_capacity(16 * 1024),
        reads: 0,
        pid,
        attempt: job.attempt,
        skip: &job.skip,
    };
    let mut out = PidResult {
        pid,
        process: None,
        blocked: Vec::new(),
        reads: 0,
        vanished: false,
        reused: false,
        permission_denied: HashSet::new(),
    };
    let base = format!("{root}/{pid}");
    // Everything below is opened relative to this directory: if the process
    // exits, reads fail with ENOENT/ESRCH instead of silently reading a new
    // process that reused the pid.
    let dir = match r.open_dir(shared.proc_fd.as_fd(), None, &pid.to_string(), &base) {
        Ok(d) => d,
        Err(_) => {
            out.vanished = true;
            return out;
        }
    };
    let stat = match r.read(dir.as_fd(), None, "stat", &format!("{base}/stat")) {
        Ok(text) => procfs_core::process::Stat::from_read(text.as_bytes()).ok(),
        Err(_) => None,
    };
    let Some(stat) = stat else {
        out.vanished = true;
        out.reads = r.reads;
        return out;
    };
    let status = r
        .read(dir.as_fd(), None, "status", &format!("{base}/status"))
        .ok()
        .and_then(|t| procfs_core::process::Status::from_read(t.as_bytes()).ok());

    let mut process = Process {
        pid,
        start_time: stat.starttime,
        comm: stat.comm.clone(),
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        session: stat.session,
        tty_nr: stat.tty_nr,
        uid: status.as_ref().map(|s| s.ruid),
        ns_pids: status
            .as_ref()
            .and_then(|s| s.nstgid.clone())
            .unwrap_or_else(|| vec![pid]),
        cmdline: Field::missing(MissingReason::NotCollected, "not requested"),
        exe: Field::default(),
        cwd: Field::default(),
        root: Field::default(),
        namespaces: Field::default(),
        cgroup: Field::default(),
        shared_pending: SignalSet(status.as_ref().map_or(0, |s| s.shdpnd)),
        ignored: SignalSet(status.as_ref().map_or(0, |s| s.sigign)),
        caught: SignalSet(status.as_ref().map_or(0, |s| s.sigcgt)),
        sigq: status.as_ref().map(|s| s.sigq),
        cap_effective: status.as_ref().map(|s| s.capeff),
        fds: Field::default(),
        threads: Vec::new(),
    };

    for (name, field) in [
        ("exe", &mut process.exe),
        ("cwd", &mut process.cwd),
        ("root", &mut process.root),
    ] {
        *field = match r.readlink(dir.as_fd(), None, name, &format!("{base}/{name}")) {
            Ok(t) => Field::Value(t),
            Err(f) => {
                if f.reason == MissingReason::PermissionDenied {
                    out.permission_denied
                        .insert("exe, cwd, root and open files");
                }
                f.field()
            }
        };
    }
    // Kernel threads have no exe; that is not an error worth showing.
    if stat.flags & TaskFlags::KTHREAD != 0 {
        if let Field::Missing(m) = &mut process.exe {
            m.reason = MissingReason::NotSupported;
            m.detail = "kernel threads have no executable".into();
        }
    }

    let mut namespaces = Vec::new();
    let mut ns_err = None;
    for kind in NS_KINDS {
        match r.readlink(
            dir.as_fd(),
            None,
            &format!("ns/{kind}"),
            &format!("{base}/ns/{kind}"),
        ) {
            Ok(link) => {
                if let Some(inode) = parse::ns_inode(&link) {
                    namespaces.push(Namespace {
                        kind: kind.to_string(),
                        inode,
                    });
                }
            }
            Err(f) if f.reason == MissingReason::Vanished && kind.starts_with("time") => {}
            Err(f) => ns_err = Some(f),
        }
    }
    process.namespaces = match (namespaces.is_empty(), ns_err) {
        (true, Some(f)) => f.field(),
        _ => Field::Value(namespaces),
    };

    // cmdline and cgroup sleep on locks a stuck process may hold (mmap_lock,
    // cgroup_mutex): the sacrificial helper reads them.
    if opts.cmdline {
        process.cmdline = match helper_read(
            shared,
            &format!("{base}/cmdline"),
            pid,
            None,
            "cmdline",
            &mut out.blocked,
        ) {
            Ok(bytes) => Field::Value(split_nul(&bytes)),
            Err((reason, detail)) => Field::missing(reason, detail),
        };
        r.reads += 1;
    }
    process.cgroup = match helper_read(
        shared,
        &format!("{base}/cgroup"),
        pid,
        None,
        "cgroup",
        &mut out.blocked,
    ) {
        Ok(bytes) => Field::Value(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        Err((reason, detail)) => Field::missing(reason, detail),
    };
    r.reads += 1;

    if opts.fds {
        process.fds = read_fds(&mut r, &dir, &base);
        if matches!(&process.fds, Field::Missing(m) if m.reason == MissingReason::PermissionDenied)
        {
            out.permission_denied
                .insert("exe, cwd, root and open files");
        }
    }

    // Threads. The leader is listed under task/ too.
    let tids = match r.open_dir(dir.as_fd(), None, "task", &format!("{base}/task")) {
        Ok(tdir) => r
            .list_numeric(tdir, &format!("{base}/task"))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let tids = if tids.is_empty() { vec![pid] } else { tids };
    for tid in tids {
        let tbase = format!("{base}/task/{tid}");
        let Ok(tdir) = r.open_dir(dir.as_fd(), Some(tid), &format!("task/{tid}"), &tbase) else {
            continue;
        };
        if let Some(t) = scan_thread(shared, &mut r, &tdir, tid, &tbase, &mut out) {
            process.threads.push(t);
        }
    }
    process.threads.sort_by_key(|t| (t.tid != pid, t.tid));

    // Pid reuse: if the process behind our directory fd died during the scan,
    // a fresh lookup through it fails. Values read by path (cmdline, cgroup)
    // could then belong to a new process with the same pid: drop the record.
    if rustix::fs::openat(
        dir.as_fd(),
        "stat",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .is_err()
    {
        out.vanished = true;
        if let Ok(text) = std::fs::read_to_string(format!("{base}/stat")) {
            if let Ok(s) = procfs_core::process::Stat::from_read(text.as_bytes()) {
                out.reused = s.starttime != stat.starttime;
            }
        }
        out.reads = r.reads;
        return out;
    }
    out.reads = r.reads;
    out.process = Some(process);
    out
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn read_fds(r: &mut TaskReader<'_>, dir: &OwnedFd, base: &str) -> Field<Vec<OpenFile>> {
    let fd_path = format!("{base}/fd");
    let fd_dir = match r.open_dir(dir.as_fd(), None, "fd", &fd_path) {
        Ok(d) => d,
        Err(f) => return f.field(),
    };
    let fdinfo_ok = rustix::fs::accessat(
        dir.as_fd(),
        "fdinfo",
        rustix::fs::Access::EXISTS,
        rustix::fs::AtFlags::empty(),
    )
    .is_ok();
    let fds = match r.list_numeric(fd_dir, &fd_path) {
        Ok(f) => f,
        Err(f) => return f.field(),
    };
    let mut out = Vec::with_capacity(fds.len());
    for fd in fds {
        let name = fd.to_string();
        // readlink only: stat(2) through the link would call into the
        // file's filesystem (a FUSE getattr, an NFS GETATTR) and can block.
        let Ok(target) = r.readlink(
            dir.as_fd(),
            None,
            &format!("fd/{name}"),
            &format!("{fd_path}/{name}"),
        ) else {
            continue;
        };
        let kind = FileKind::classify(&target);
        let mut file = OpenFile {
            fd,
            target,
            kind,
            pos: None,
            flags: None,
            mount_id: None,
            inode: None,
            detail: None,
        };
        if fdinfo_ok {
            if let Ok(text) = r.read(
                dir.as_fd(),
                None,
                &format!("fdinfo/{name}"),
                &format!("{base}/fdinfo/{name}"),
            ) {
                let head = parse::fdinfo_head(&text);
                file.pos = head.pos;
                file.flags = head.flags;
                file.mount_id = head.mnt_id;
                file.inode = head.ino;
                file.detail = parse::fdinfo_detail(kind, &text);
            }
        }
        out.push(file);
    }
    Field::Value(out)
}

fn scan_thread(
    shared: &Shared,
    r: &mut TaskReader<'_>,
    tdir: &OwnedFd,
    tid: i32,
    tbase: &str,
    out: &mut PidResult,
) -> Option<Thread> {
    let opts = &shared.opts;
    let t = Some(tid);
    let stat_text = r
        .read(tdir.as_fd(), t, "stat", &format!("{tbase}/stat"))
        .ok()?;
    let stat = procfs_core::process::Stat::from_read(stat_text.as_bytes()).ok()?;
    let status = r
        .read(tdir.as_fd(), t, "status", &format!("{tbase}/status"))
        .ok()
        .and_then(|s| procfs_core::process::Status::from_read(s.as_bytes()).ok());
    let state = TaskState::from_code(stat.state);
    let flags = TaskFlags(stat.flags);
    let wchan = match r.read(tdir.as_fd(), t, "wchan", &format!("{tbase}/wchan")) {
        Ok(w) => Field::Value(parse::wchan(&w)),
        Err(f) => f.field(),
    };
    let kernel_stack = if opts.stacks {
        match r.read(tdir.as_fd(), t, "stack", &format!("{tbase}/stack")) {
            Ok(s) => Field::Value(parse::kernel_stack(&s)),
            Err(f) => {
                if f.reason == MissingReason::PermissionDenied {
                    out.permission_denied.insert("kernel stacks");
                }
                f.field()
            }
        }
    } else {
        Field::missing(MissingReason::NotCollected, "kernel stacks not requested")
    };
    let syscall = match r.read(tdir.as_fd(), t, "syscall", &format!("{tbase}/syscall")) {
        Ok(s) => match parse::syscall(&s, wedge_kernel::syscall_name) {
            Some(sc) => Field::Value(sc),
            None => Field::missing(
                MissingReason::Invalid,
                format!("{tbase}/syscall: cannot parse {:?}", s.trim()),
            ),
        },
        Err(f) => {
            if f.reason == MissingReason::PermissionDenied {
                out.permission_denied.insert("system calls");
            }
            f.field()
        }
    };
    // /proc/PID/sched is long; only tasks that may be stuck need it (for
    // how long they have been off the CPU).
    let interesting = !matches!(state, TaskState::Running | TaskState::Idle)
        && !(state == TaskState::Sleeping && !opts.sched_all && !wedge_kernel_waits(&wchan));
    let mut sched = SchedInfo {
        voluntary_switches: status.as_ref().and_then(|s| s.voluntary_ctxt_switches),
        involuntary_switches: status.as_ref().and_then(|s| s.nonvoluntary_ctxt_switches),
        ..SchedInfo::default()
    };
    if let Ok(text) = r.read(tdir.as_fd(), t, "schedstat", &format!("{tbase}/schedstat")) {
        let mut it = text.split_ascii_whitespace();
        sched.run_ns = it.next().and_then(|v| v.parse().ok());
        sched.wait_ns = it.next().and_then(|v| v.parse().ok());
    }
    if interesting || opts.sched_all {
        if let Ok(text) = r.read(tdir.as_fd(), t, "sched", &format!("{tbase}/sched")) {
            sched.last_ran_ms = parse::sched_exec_start(&text);
        }
    }
    let kind = ThreadKind::classify(&stat.comm, flags);
    Some(Thread {
        tid,
        comm: stat.comm,
        state,
        flags,
        kind,
        start_time: stat.starttime,
        processor: stat.processor,
        ns_tids: status
            .as_ref()
            .and_then(|s| s.nspid.clone())
            .unwrap_or_else(|| vec![tid]),
        tracer_pid: status.as_ref().map(|s| s.tracerpid).filter(|&p| p > 0),
        pending: SignalSet(status.as_ref().map_or(0, |s| s.sigpnd)),
        blocked: SignalSet(status.as_ref().map_or(0, |s| s.sigblk)),
        wchan,
        kernel_stack,
        syscall,
        sched: Field::Value(sched),
        utime: stat.utime,
        stime: stat.stime,
    })
}

/// Sleepers worth the cost of reading `sched`: those in waits that are
/// known to hang (FUSE, NFS, Lustre, io_uring, lock slow paths).
fn wedge_kernel_waits(wchan: &Field<Option<String>>) -> bool {
    wchan
        .value()
        .and_then(|w| w.as_deref())
        .is_some_and(crate::is_known_blocking_wait)
}

/// Runs the pool and collects one result per pid.
pub(crate) fn run(
    opts: &ScanOptions,
    proc_fd: OwnedFd,
    pids: Vec<i32>,
) -> (Vec<PidResult>, Vec<BlockedRead>, Helper) {
    let workers = opts.workers.max(1);
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        proc_fd,
        pids,
        next: AtomicUsize::new(0),
        retries: Mutex::new(VecDeque::new()),
        helper: Mutex::new(Helper::new()),
        stop: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel::<(i32, u32, PidResult)>();
    let mut slots: Vec<Arc<Slot>> = Vec::new();
    let spawn = |slots: &mut Vec<Arc<Slot>>| {
        let slot = Arc::new(Slot::default());
        slots.push(slot.clone());
        let shared = shared.clone();
        let tx = tx.clone();
        let empty = Arc::new(HashSet::new());
        // Detached on purpose: an abandoned worker may never come back.
        let _ = std::thread::Builder::new()
            .name("wedge-scan".into())
            .spawn(move || loop {
                if shared.stop.load(Ordering::Relaxed) || slot.abandoned.load(Ordering::Relaxed) {
                    return;
                }
                let job = match shared.retries.lock().ok().and_then(|mut q| q.pop_front()) {
                    Some(j) => j,
                    None => {
                        let i = shared.next.fetch_add(1, Ordering::Relaxed);
                        match shared.pids.get(i) {
                            Some(&pid) => Job {
                                pid,
                                attempt: 0,
                                skip: empty.clone(),
                            },
                            None => return,
                        }
                    }
                };
                let result = scan_pid(&shared, &slot, &job);
                if slot.abandoned.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((job.pid, job.attempt, result)).is_err() {
                    return;
                }
            });
    };
    for _ in 0..workers {
        spawn(&mut slots);
    }

    let total = shared.pids.len();
    let mut expected: HashMap<i32, (u32, Arc<HashSet<String>>)> = HashMap::with_capacity(total);
    let mut results: HashMap<i32, PidResult> = HashMap::with_capacity(total);
    let mut blocked = Vec::new();
    let tick = (opts.deadline / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
    while results.len() < total {
        match rx.recv_timeout(tick) {
            Ok((pid, attempt, res)) => {
                let want = expected.get(&pid).map_or(0, |e| e.0);
                if attempt == want {
                    results.insert(pid, res);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // The watchdog: a worker that has been inside one read for longer
        // than the deadline is abandoned, the read is recorded as evidence,
        // and the pid is scanned again without that read.
        let mut respawn = 0;
        for slot in &slots {
            if slot.abandoned.load(Ordering::Relaxed) {
                continue;
            }
            let busy = slot.busy.lock().ok().and_then(|b| b.clone());
            let Some(busy) = busy else { continue };
            if busy.since.elapsed() < opts.deadline {
                continue;
            }
            slot.abandoned.store(true, Ordering::Relaxed);
            respawn += 1;
            blocked.push(BlockedRead {
                pid: busy.pid,
                tid: busy.tid,
                what: busy.what.clone(),
                waited_ms: busy.since.elapsed().as_millis() as u64,
                blocks_on: blocks_on(&busy.what).to_string(),
            });
            let prev = expected
                .get(&busy.pid)
                .map(|e| e.1.clone())
                .unwrap_or_default();
            let mut skip: HashSet<String> = (*prev).clone();
            skip.insert(busy.what.clone());
            let attempt = busy.attempt + 1;
            if attempt >= MAX_ATTEMPTS {
                results.insert(
                    busy.pid,
                    PidResult {
                        pid: busy.pid,
                        process: None,
                        blocked: Vec::new(),
                        reads: 0,
                        vanished: false,
                        reused: false,
                        permission_denied: HashSet::new(),
                    },
                );
                continue;
            }
            let skip = Arc::new(skip);
            expected.insert(busy.pid, (attempt, skip.clone()));
            if let Ok(mut q) = shared.retries.lock() {
                q.push_back(Job {
                    pid: busy.pid,
                    attempt,
                    skip,
                });
            }
        }
        for _ in 0..respawn {
            spawn(&mut slots);
        }
        // All workers gone (each exits when the queue is empty) but results
        // missing would mean a lost job: never wait forever for it.
        if Arc::strong_count(&shared) == 1 && results.len() < total {
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let helper = match shared.helper.lock() {
        Ok(mut h) => std::mem::take(&mut *h),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    let mut ordered = Vec::with_capacity(results.len());
    for pid in shared.pids.iter() {
        if let Some(r) = results.remove(pid) {
            ordered.push(r);
        }
    }
    (ordered, blocked, helper)
}
