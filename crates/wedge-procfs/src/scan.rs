//! The whole-system scan: every process and thread under /proc, read by a
//! small pool of workers that a watchdog bounds in time.
//!
//! Work is cut into jobs: one per process (its own files and its first
//! threads) and, for processes with many threads, one per further chunk of
//! threads, so a single process with 10,000 threads keeps every worker busy.

use crate::helper::{Helper, HelperError};
use crate::parse;
use crate::read::{Slot, Target, TaskReader};
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

/// A job may be retried this many times, each retry skipping the reads
/// that blocked before.
const MAX_ATTEMPTS: u32 = 4;
/// Threads per job.
const THREAD_CHUNK: usize = 128;

/// Namespace links, in the order `ls /proc/PID/ns` gives them.
const NS_KINDS: &[(&str, &str)] = &[
    ("cgroup", "ns/cgroup"),
    ("ipc", "ns/ipc"),
    ("mnt", "ns/mnt"),
    ("net", "ns/net"),
    ("pid", "ns/pid"),
    ("pid_for_children", "ns/pid_for_children"),
    ("time", "ns/time"),
    ("user", "ns/user"),
    ("uts", "ns/uts"),
];

/// A unit of work: a process (chunk 0) or a further chunk of its threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct JobId {
    pid: i32,
    chunk: u32,
}

#[derive(Clone)]
enum Work {
    Process,
    Threads { tids: Arc<[i32]>, start_time: u64 },
}

#[derive(Clone)]
struct Job {
    id: JobId,
    attempt: u32,
    skip: Arc<HashSet<String>>,
    work: Work,
}

/// Facts collected along the way, merged by the coordinator.
#[derive(Default)]
pub(crate) struct Notes {
    pub blocked: Vec<BlockedRead>,
    pub reads: u64,
    pub permission_denied: HashSet<&'static str>,
}

/// What one process's scan produced.
pub(crate) struct PidResult {
    pub pid: i32,
    pub process: Option<Process>,
    pub vanished: bool,
    pub reused: bool,
    pub notes: Notes,
}

enum Output {
    Process(Box<PidResult>),
    Threads { threads: Vec<Thread>, notes: Notes },
}

struct Shared {
    opts: ScanOptions,
    root: String,
    proc_fd: OwnedFd,
    pids: Vec<i32>,
    next: AtomicUsize,
    queue: Mutex<VecDeque<Job>>,
    /// Thread-chunk jobs by id, so the watchdog can retry them.
    chunks: Mutex<HashMap<JobId, Work>>,
    helper: Mutex<Helper>,
    stop: AtomicBool,
}

/// What a blocked read of this file waits for in the kernel.
pub(crate) fn blocks_on(what: &str) -> &'static str {
    let file = what.trim_end_matches(|c: char| c.is_ascii_digit() || c == '/');
    let file = file.rsplit('/').next().unwrap_or(file);
    match file {
        "cmdline" | "environ" | "maps" | "smaps" | "mem" | "auxv" => {
            "the process's mmap_lock: a thread holds it while stuck, or a writer is queued behind such a holder"
        }
        "mountinfo" | "mounts" => "namespace_sem: a mount or unmount is stuck in progress",
        "cgroup" => "cgroup_mutex: a cgroup operation is stuck in progress",
        "stack" | "syscall" | "wchan" | "status" | "stat" | "sched" | "schedstat" => {
            "the task's exec_update_lock or its scheduler state: an exec or exit is stuck in progress"
        }
        _ => "a lock or wait of the kernel's",
    }
}

fn helper_read(
    shared: &Shared,
    pid: i32,
    name: &str,
    notes: &mut Notes,
) -> Result<Vec<u8>, (MissingReason, String)> {
    let deadline = shared.opts.deadline;
    let path = format!("{}/{pid}/{name}", shared.root);
    notes.reads += 1;
    let result = match shared.helper.lock() {
        Ok(mut h) => h.read_file(path.as_bytes(), deadline),
        Err(p) => p.into_inner().read_file(path.as_bytes(), deadline),
    };
    match result {
        Ok(data) => Ok(data),
        Err(HelperError::TimedOut(waited)) => {
            notes.blocked.push(BlockedRead {
                pid,
                tid: None,
                what: name.to_string(),
                waited_ms: waited.as_millis() as u64,
                deadline_ms: deadline.as_millis() as u64,
                blocks_on: blocks_on(name).to_string(),
            });
            Err((
                MissingReason::TimedOut,
                format!(
                    "reading {path} blocked > {} ms: {}",
                    deadline.as_millis(),
                    blocks_on(name)
                ),
            ))
        }
        Err(HelperError::Os(e)) => {
            let f = crate::read::classify(rustix::io::Errno::from_raw_os_error(e), &path);
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

fn reader<'a>(shared: &'a Shared, slot: &'a Slot, job: &'a Job) -> TaskReader<'a> {
    TaskReader {
        slot,
        root: &shared.root,
        buf: Vec::with_capacity(8 * 1024),
        reads: 0,
        pid: job.id.pid,
        job: ((job.id.chunk as u64) << 32) | job.attempt as u64,
        skip: &job.skip,
    }
}

fn open_pid_dir(shared: &Shared, r: &mut TaskReader<'_>, pid: i32) -> Option<OwnedFd> {
    r.open_dir(shared.proc_fd.as_fd(), &pid.to_string(), Target::proc("."))
        .ok()
}

fn scan_process(shared: &Shared, slot: &Slot, job: &Job) -> (PidResult, usize) {
    let pid = job.id.pid;
    let opts = &shared.opts;
    let mut r = reader(shared, slot, job);
    let mut notes = Notes::default();
    let mut out = PidResult {
        pid,
        process: None,
        vanished: false,
        reused: false,
        notes: Notes::default(),
    };
    // Everything below is opened relative to this directory: if the process
    // exits, reads fail with ENOENT/ESRCH instead of silently reading a new
    // process that reused the pid.
    let Some(dir) = open_pid_dir(shared, &mut r, pid) else {
        out.vanished = true;
        return (out, 0);
    };
    let stat = r
        .read(dir.as_fd(), Target::proc("stat"))
        .ok()
        .and_then(|t| procfs_core::process::Stat::from_read(t.as_bytes()).ok());
    let Some(stat) = stat else {
        out.vanished = true;
        out.notes.reads = r.reads;
        return (out, 0);
    };

    // Threads first: the listing of a 10,000-thread process is the one
    // serial step of its scan, and the other workers can only help once its
    // chunks are queued. The leader is listed under task/ too.
    let tids = match r.open_dir(dir.as_fd(), "task", Target::proc("task")) {
        Ok(tdir) => r
            .list_numeric(tdir, Target::proc("task"))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let tids: Arc<[i32]> = if tids.is_empty() {
        Arc::from(vec![pid])
    } else {
        Arc::from(tids)
    };
    let first = tids.len().min(THREAD_CHUNK);
    let chunks = queue_chunks(shared, pid, &tids[first..], stat.starttime);
    // /proc/PID/status and task/PID/status are the same text (both print
    // the leader): parse it once for the process and once for the leader
    // thread, and do not read it again.
    let (status, mut leader_status) = match r.read(dir.as_fd(), Target::proc("status")) {
        Ok(t) => (
            procfs_core::process::Status::from_read(t.as_bytes()).ok(),
            Some(crate::status::parse(t)),
        ),
        Err(_) => (None, None),
    };

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
        dispositions_missing: None,
        handlers: Vec::new(),
        sigq: status.as_ref().map(|s| s.sigq),
        cap_effective: status.as_ref().map(|s| s.capeff),
        fds: Field::default(),
        fds_via_tid: None,
        threads: Vec::new(),
    };
    let kthread = stat.flags & TaskFlags::KTHREAD != 0;

    for (name, field) in [
        ("exe", &mut process.exe),
        ("cwd", &mut process.cwd),
        ("root", &mut process.root),
    ] {
        *field = match r.readlink(dir.as_fd(), Target::proc(name)) {
            Ok(t) => Field::Value(t),
            Err(f) if kthread && f.reason == MissingReason::Vanished => Field::missing(
                MissingReason::NotSupported,
                format!("kernel threads have no {name}"),
            ),
            Err(f) => {
                if f.reason == MissingReason::PermissionDenied {
                    notes
                        .permission_denied
                        .insert("exe, cwd, root and open files");
                }
                f.field()
            }
        };
    }

    let mut namespaces = Vec::new();
    let mut ns_err = None;
    for (kind, link) in NS_KINDS {
        match r.readlink(dir.as_fd(), Target::proc(link)) {
            Ok(l) => {
                if let Some(inode) = parse::ns_inode(&l) {
                    namespaces.push(Namespace {
                        kind: kind.to_string(),
                        inode,
                    });
                }
            }
            // time namespaces exist from 5.6 on.
            Err(f) if f.reason == MissingReason::Vanished && kind.starts_with("time") => {}
            Err(f) => ns_err = Some(f),
        }
    }
    process.namespaces = match (namespaces.is_empty(), ns_err) {
        (true, Some(f)) => f.field(),
        _ => Field::Value(namespaces),
    };

    // cmdline and cgroup sleep on locks a stuck process may hold (mmap_lock,
    // cgroup_mutex): the sacrificial helper reads them. A kernel thread has
    // neither an mm nor an empty-able cmdline worth a round trip.
    if opts.cmdline {
        process.cmdline = if kthread {
            Field::Value(Vec::new())
        } else {
            match helper_read(shared, pid, "cmdline", &mut notes) {
                Ok(bytes) => Field::Value(wedge_kernel::text::split_cmdline(&bytes)),
                Err((reason, detail)) => Field::missing(reason, detail),
            }
        };
    }
    if !kthread {
        process.cgroup = match helper_read(shared, pid, "cgroup", &mut notes) {
            Ok(bytes) => Field::Value(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect(),
            ),
            Err((reason, detail)) => Field::missing(reason, detail),
        };
    } else {
        process.cgroup = Field::missing(MissingReason::NotCollected, "not read for kernel threads");
    }

    if opts.fds {
        process.fds = read_fds(&mut r, &dir, None);
        if matches!(&process.fds, Field::Missing(m) if m.reason == MissingReason::PermissionDenied)
        {
            notes
                .permission_denied
                .insert("exe, cwd, root and open files");
        }
    }

    for &tid in &tids[..first] {
        let known = if tid == pid {
            leader_status.take()
        } else {
            None
        };
        if let Some(t) = scan_thread(shared, &mut r, &dir, tid, known, &mut notes) {
            process.threads.push(t);
        }
    }

    // Threads past the first chunk are not consulted: a zombie leader with
    // more than THREAD_CHUNK live threads is not worth a second pass.
    if opts.fds {
        if let Some(tid) = fd_table_thread(&process) {
            let via = read_fds(&mut r, &dir, Some(tid));
            if via.value().is_some_and(|v| !v.is_empty()) {
                process.fds = via;
                process.fds_via_tid = Some(tid);
            }
        }
    }

    // Pid reuse: if the process behind our directory fd died during the scan,
    // a fresh lookup through it fails. Values read by path (cmdline, cgroup)
    // could then belong to a new process with the same pid: drop the record.
    let alive = rustix::fs::accessat(
        dir.as_fd(),
        "stat",
        rustix::fs::Access::EXISTS,
        rustix::fs::AtFlags::empty(),
    )
    .is_ok();
    notes.reads += r.reads;
    out.notes = notes;
    if !alive {
        out.vanished = true;
        if let Ok(text) = std::fs::read_to_string(format!("{}/{pid}/stat", shared.root)) {
            if let Ok(s) = procfs_core::process::Stat::from_read(text.as_bytes()) {
                out.reused = s.starttime != stat.starttime;
            }
        }
        return (out, chunks);
    }
    out.process = Some(process);
    (out, chunks)
}

/// Queues the threads past the first chunk as jobs of their own, and
/// registers them for the watchdog's retries. Returns how many.
fn queue_chunks(shared: &Shared, pid: i32, tids: &[i32], start_time: u64) -> usize {
    let jobs: Vec<Job> = tids
        .chunks(THREAD_CHUNK)
        .enumerate()
        .map(|(i, chunk)| Job {
            id: JobId {
                pid,
                chunk: i as u32 + 1,
            },
            attempt: 0,
            skip: Arc::new(HashSet::new()),
            work: Work::Threads {
                tids: Arc::from(chunk),
                start_time,
            },
        })
        .collect();
    let n = jobs.len();
    if n > 0 {
        if let Ok(mut c) = shared.chunks.lock() {
            for j in &jobs {
                c.insert(j.id, j.work.clone());
            }
        }
        if let Ok(mut q) = shared.queue.lock() {
            q.extend(jobs);
        }
    }
    n
}

fn scan_chunk(
    shared: &Shared,
    slot: &Slot,
    job: &Job,
    tids: &[i32],
    start_time: u64,
) -> (Vec<Thread>, Notes) {
    let mut r = reader(shared, slot, job);
    let mut notes = Notes::default();
    let mut threads = Vec::new();
    let Some(dir) = open_pid_dir(shared, &mut r, job.id.pid) else {
        return (threads, notes);
    };
    // The same process, not a new one under a reused pid. The leader's own
    // task/PID/stat carries the process's start time; /proc/PID/stat would
    // too, but for the whole thread group do_task_stat() walks every thread
    // (fault counts, thread_group_cputime): with 10,000 threads in 79
    // chunks that made the scan quadratic.
    let same = r
        .read(dir.as_fd(), Target::thread(job.id.pid, "stat"))
        .ok()
        .and_then(crate::status::parse_stat)
        .is_some_and(|s| s.starttime == start_time);
    if same {
        for &tid in tids {
            if let Some(t) = scan_thread(shared, &mut r, &dir, tid, None, &mut notes) {
                threads.push(t);
            }
        }
    }
    notes.reads += r.reads;
    (threads, notes)
}

/// The open files of a process (`fd/`), or of one of its threads
/// (`task/TID/fd/`).
fn read_fds(r: &mut TaskReader<'_>, dir: &OwnedFd, tid: Option<i32>) -> Field<Vec<OpenFile>> {
    let at = |name: &'static str, fd: Option<i32>| match (tid, fd) {
        (Some(t), Some(fd)) => Target::thread_fd(t, name, fd),
        (Some(t), None) => Target::thread(t, name),
        (None, Some(fd)) => Target::fd(name, fd),
        (None, None) => Target::proc(name),
    };
    let dir_name = match tid {
        Some(t) => format!("task/{t}/fd"),
        None => "fd".to_string(),
    };
    let fd_dir = match r.open_dir(dir.as_fd(), &dir_name, at("fd", None)) {
        Ok(d) => d,
        Err(f) => return f.field(),
    };
    let fds = match r.list_numeric(fd_dir, at("fd", None)) {
        Ok(f) => f,
        Err(f) => return f.field(),
    };
    let mut out = Vec::with_capacity(fds.len());
    for fd in fds {
        // readlink only: stat(2) through the link would call into the
        // file's filesystem (a FUSE getattr, an NFS GETATTR) and can block.
        let target = match r.readlink(dir.as_fd(), at("fd", Some(fd))) {
            Ok(t) => t,
            // The fd was closed since the listing.
            Err(f) if f.reason == MissingReason::Vanished => continue,
            // Listing fd/ needs only the directory's permission, but each
            // readlink passes ptrace_may_access(PTRACE_MODE_READ_FSCREDS)
            // (proc_fd_access_allowed): a refused one is refused for all,
            // and "0 open files" would be a lie.
            Err(f) if out.is_empty() => return f.field(),
            Err(_) => continue,
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
        if let Ok(text) = r.read(dir.as_fd(), at("fdinfo", Some(fd))) {
            let head = parse::fdinfo_head(text);
            file.pos = head.pos;
            file.flags = head.flags;
            file.mount_id = head.mnt_id;
            file.inode = head.ino;
            file.detail = parse::fdinfo_detail(kind, text);
        }
        out.push(file);
    }
    Field::Value(out)
}

/// The thread whose own fd table stands in for the process's, when the
/// process's came back empty or unreadable because its leader has exited
/// (exit_files() cleared the zombie leader's `files`, so `/proc/PID/fd`
/// lists nothing) while another thread lives on, typically stuck in a
/// system call on one of those files. Prefers a thread asleep in a
/// filesystem or network wait: it is the one whose fds the analysis needs.
/// Only such processes pay for the extra directory.
fn fd_table_thread(p: &Process) -> Option<i32> {
    let leader_dead = p
        .threads
        .iter()
        .find(|t| t.tid == p.pid)
        .is_some_and(|l| l.state == TaskState::Zombie);
    let empty = match &p.fds {
        Field::Value(v) => v.is_empty(),
        Field::Missing(m) => m.reason != MissingReason::NotCollected,
    };
    if !leader_dead || !empty {
        return None;
    }
    let live = || p.threads.iter().filter(|t| t.state != TaskState::Zombie);
    let blocked = live().find(|t| {
        t.kernel_stack.value().is_some_and(|s| {
            s.iter()
                .any(|f| wedge_kernel::waits::names_a_blocking_subsystem(&f.function))
        }) || t
            .wchan_name()
            .is_some_and(wedge_kernel::waits::names_a_blocking_subsystem)
    });
    blocked.or_else(|| live().next()).map(|t| t.tid)
}

fn scan_thread(
    shared: &Shared,
    r: &mut TaskReader<'_>,
    pdir: &OwnedFd,
    tid: i32,
    known_status: Option<crate::status::ThreadStatus>,
    notes: &mut Notes,
) -> Option<Thread> {
    let opts = &shared.opts;
    let tdir = pdir.as_fd();
    let stat = crate::status::parse_stat(r.read(tdir, Target::thread(tid, "stat")).ok()?)?;
    let status = match known_status {
        Some(s) => s,
        None => r
            .read(tdir, Target::thread(tid, "status"))
            .ok()
            .map(crate::status::parse)
            .unwrap_or_default(),
    };
    let state = TaskState::from_code(stat.state);
    let flags = TaskFlags(stat.flags);
    let kernel_stack: Field<Vec<wedge_model::KernelFrame>> = if opts.stacks {
        match r.read(tdir, Target::thread(tid, "stack")) {
            Ok(s) => Field::Value(parse::kernel_stack(s)),
            Err(f) => {
                if f.reason == MissingReason::PermissionDenied {
                    notes.permission_denied.insert("kernel stacks");
                }
                f.field()
            }
        }
    } else {
        Field::missing(MissingReason::NotCollected, "kernel stacks not requested")
    };
    // Since 5.16 wchan is the first frame of the task's stack outside the
    // scheduler, and on kernels whose /proc/PID/stack also leaves the
    // scheduler out (as 6.18 does) that is the stack's top frame: reuse it
    // rather than unwind the stack a second time. Where the stack still
    // starts in the scheduler (older kernels) or could not be read, ask.
    let derived = match kernel_stack.value() {
        // A task on a CPU has no wait channel (get_wchan() says 0).
        _ if state == TaskState::Running => Some(None),
        Some(frames) => match frames.first() {
            Some(top)
                if !wedge_model::is_scheduler_plumbing(top.base_name()) && !top.unreliable =>
            {
                Some(Some(top.function.clone()))
            }
            _ => None,
        },
        None => None,
    };
    let wchan = match derived {
        Some(w) => Field::Value(w),
        None if !opts.wchan => {
            Field::missing(MissingReason::NotCollected, "wait channel not requested")
        }
        None => match r.read(tdir, Target::thread(tid, "wchan")) {
            Ok(w) => Field::Value(parse::wchan(w)),
            Err(f) => f.field(),
        },
    };
    // A kernel thread never entered from user space: its pt_regs are
    // zeroed, so /proc/PID/syscall reads "0 0x0 …", which parses as read(0,
    // 0, 0) (6.18; older kernels print -1 or the same zeros).
    // A kernel thread never entered from user space: its pt_regs are
    // zeroed, so /proc/PID/syscall reads "0 0x0 …", which would parse as
    // read(0x0, 0x0, 0x0) (seen on 6.18). Not read at all.
    let syscall = if flags.kthread() {
        Field::missing(
            MissingReason::NotSupported,
            "a kernel thread makes no system calls",
        )
    } else {
        match r.read(tdir, Target::thread(tid, "syscall")) {
            Ok(s) => match parse::syscall(s, wedge_kernel::syscall_name) {
                Some(sc) => Field::Value(sc),
                None => {
                    let text = s.trim().to_string();
                    let path = r.path(Target::thread(tid, "syscall"));
                    Field::missing(
                        MissingReason::Invalid,
                        format!("{path}: cannot parse {text:?}"),
                    )
                }
            },
            Err(f) => {
                if f.reason == MissingReason::PermissionDenied {
                    notes.permission_denied.insert("system calls");
                }
                f.field()
            }
        }
    };
    let mut sched = SchedInfo {
        voluntary_switches: status.voluntary,
        involuntary_switches: status.involuntary,
        ..SchedInfo::default()
    };
    // schedstat and sched cost two more reads per thread; only tasks that
    // may be stuck need them (for how long they have been off the CPU).
    let interesting = match state {
        TaskState::Running | TaskState::Idle => false,
        TaskState::Sleeping => {
            wchan
                .value()
                .and_then(|w| w.as_deref())
                .is_some_and(wedge_kernel::waits::names_a_blocking_subsystem)
                || !SignalSet(status.pending.0).is_empty()
        }
        _ => true,
    };
    if interesting || opts.sched_all {
        if let Ok(text) = r.read(tdir, Target::thread(tid, "schedstat")) {
            let mut it = text.split_ascii_whitespace();
            sched.run_ns = it.next().and_then(|v| v.parse().ok());
            sched.wait_ns = it.next().and_then(|v| v.parse().ok());
        }
        if let Ok(text) = r.read(tdir, Target::thread(tid, "sched")) {
            sched.last_ran_ms = parse::sched_exec_start(text);
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
        ns_tids: if status.ns_tids.is_empty() {
            vec![tid]
        } else {
            status.ns_tids
        },
        tracer_pid: status.tracer_pid,
        pending: status.pending,
        blocked: status.blocked,
        wchan,
        kernel_stack,
        syscall,
        sched: Field::Value(sched),
        utime: stat.utime,
        stime: stat.stime,
        // /proc folds the sleep kinds into S/D and shows no lock owner.
        sleep_kind: None,
        lock_wait: None,
        stack_source: if opts.stacks {
            Some(wedge_model::StackSource::Proc)
        } else {
            None
        },
        in_iowait: None,
    })
}

/// Runs one job; also says how many chunk jobs it queued.
fn run_job(shared: &Shared, slot: &Slot, job: &Job) -> (Output, usize) {
    match &job.work {
        Work::Process => {
            let (r, chunks) = scan_process(shared, slot, job);
            (Output::Process(Box::new(r)), chunks)
        }
        Work::Threads { tids, start_time } => {
            let (threads, notes) = scan_chunk(shared, slot, job, tids, *start_time);
            (Output::Threads { threads, notes }, 0)
        }
    }
}

/// Runs the pool and collects one result per pid.
pub(crate) fn run(
    opts: &ScanOptions,
    proc_fd: OwnedFd,
    pids: Vec<i32>,
) -> (Vec<PidResult>, Notes, Helper, usize) {
    let workers = opts.workers.max(1);
    // Readers still stuck from an earlier scan that kept its helper: not
    // this scan's abandoned reads.
    let helper = Helper::for_scan(opts.keep_helper);
    let abandoned_before = helper.abandoned();
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        root: opts.proc_root.display().to_string(),
        proc_fd,
        pids,
        next: AtomicUsize::new(0),
        queue: Mutex::new(VecDeque::new()),
        chunks: Mutex::new(HashMap::new()),
        helper: Mutex::new(helper),
        stop: AtomicBool::new(false),
    });
    type Msg = (JobId, u32, Output, usize);
    let (tx, rx) = mpsc::channel::<Msg>();
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
                let job = match shared.queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    Some(j) => j,
                    None => {
                        let i = shared.next.fetch_add(1, Ordering::Relaxed);
                        match shared.pids.get(i) {
                            Some(&pid) => Job {
                                id: JobId { pid, chunk: 0 },
                                attempt: 0,
                                skip: empty.clone(),
                                work: Work::Process,
                            },
                            None => {
                                // Chunks queued by other workers may still come.
                                if shared.next.load(Ordering::Relaxed) > shared.pids.len() + 64 {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(1));
                                continue;
                            }
                        }
                    }
                };
                let (output, n) = run_job(&shared, &slot, &job);
                if slot.abandoned.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((job.id, job.attempt, output, n)).is_err() {
                    return;
                }
            });
    };
    for _ in 0..workers {
        spawn(&mut slots);
    }

    // Jobs whose result is still to come. A process's chunks are queued
    // (and may finish) before the process's own result reports how many
    // there are, so the count may dip below zero meanwhile; it is only
    // trusted once every pid has reported.
    let mut pids_left: usize = shared.pids.len();
    let mut outstanding: isize = shared.pids.len() as isize;
    // The attempt whose result counts, and the reads it must skip.
    let mut expected: HashMap<JobId, (u32, Arc<HashSet<String>>)> = HashMap::new();
    let mut finished: HashSet<JobId> = HashSet::new();
    let mut results: HashMap<i32, PidResult> = HashMap::with_capacity(pids_left);
    // Chunks arrive in any order; kept with their index, put in order once.
    let mut extra_threads: HashMap<i32, Vec<(u32, Vec<Thread>)>> = HashMap::new();
    let mut notes = Notes::default();
    let tick = (opts.deadline / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
    while pids_left > 0 || outstanding > 0 {
        match rx.recv_timeout(tick) {
            Ok((id, attempt, output, chunks)) => {
                let want = expected.get(&id).map_or(0, |e| e.0);
                if attempt != want || !finished.insert(id) {
                    continue;
                }
                outstanding += chunks as isize - 1;
                match output {
                    Output::Process(r) => {
                        pids_left -= 1;
                        results.insert(id.pid, *r);
                    }
                    Output::Threads { threads, notes: n } => {
                        extra_threads
                            .entry(id.pid)
                            .or_default()
                            .push((id.chunk, threads));
                        merge(&mut notes, n);
                    }
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // The watchdog: a worker that has been inside one read for longer
        // than the deadline is abandoned, the read is recorded as evidence,
        // and the job is run again without that read.
        let mut respawn = 0;
        for slot in &slots {
            if slot.abandoned.load(Ordering::Relaxed) {
                continue;
            }
            let Some(busy) = slot.busy.lock().ok().and_then(|b| *b) else {
                continue;
            };
            if busy.since.elapsed() < opts.deadline {
                continue;
            }
            slot.abandoned.store(true, Ordering::Relaxed);
            respawn += 1;
            let key = busy.target.key();
            notes.blocked.push(BlockedRead {
                pid: busy.pid,
                tid: busy.target.tid,
                what: key.clone(),
                waited_ms: busy.since.elapsed().as_millis() as u64,
                deadline_ms: opts.deadline.as_millis() as u64,
                blocks_on: blocks_on(&key).to_string(),
            });
            let id = JobId {
                pid: busy.pid,
                chunk: (busy.job >> 32) as u32,
            };
            let attempt = (busy.job & 0xffff_ffff) as u32 + 1;
            let mut skip: HashSet<String> = expected
                .get(&id)
                .map(|e| (*e.1).clone())
                .unwrap_or_default();
            skip.insert(key);
            let work = if id.chunk == 0 {
                Some(Work::Process)
            } else {
                shared.chunks.lock().ok().and_then(|c| c.get(&id).cloned())
            };
            match work {
                Some(work) if attempt < MAX_ATTEMPTS => {
                    let skip = Arc::new(skip);
                    expected.insert(id, (attempt, skip.clone()));
                    if let Ok(mut q) = shared.queue.lock() {
                        q.push_back(Job {
                            id,
                            attempt,
                            skip,
                            work,
                        });
                    }
                }
                _ => {
                    // Give up on this job: it is accounted for, empty.
                    if finished.insert(id) {
                        outstanding -= 1;
                        if id.chunk == 0 {
                            pids_left -= 1;
                        }
                    }
                }
            }
        }
        for _ in 0..respawn {
            spawn(&mut slots);
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let helper = match shared.helper.lock() {
        Ok(mut h) => std::mem::take(&mut *h),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    let mut ordered = Vec::with_capacity(results.len());
    for pid in shared.pids.iter() {
        if let Some(mut r) = results.remove(pid) {
            if let (Some(p), Some(mut more)) = (r.process.as_mut(), extra_threads.remove(pid)) {
                // Each chunk is in tid order and the chunks follow each
                // other: no need to sort 10,000 large records (5 ms).
                more.sort_unstable_by_key(|(chunk, _)| *chunk);
                for (_, threads) in more {
                    p.threads.extend(threads);
                }
                let key = |t: &Thread| (t.tid != p.pid, t.tid);
                if !p.threads.is_sorted_by_key(key) {
                    p.threads.sort_by_key(key);
                }
            }
            ordered.push(r);
        }
    }
    (ordered, notes, helper, abandoned_before)
}

pub(crate) fn merge(into: &mut Notes, from: Notes) {
    into.blocked.extend(from.blocked);
    into.reads += from.reads;
    into.permission_denied.extend(from.permission_denied);
}
