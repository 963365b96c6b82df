//! Fills wedge's source-agnostic snapshot model from a dump, so the live
//! analysis and renderers run on it unchanged.

use crate::mem::VirtMem;
use crate::process::{dev_major_minor, DumpMount, ProcReader};
use crate::stack::Stack;
use crate::tasks::Task;
use crate::Vmcore;
use std::collections::BTreeMap;
use wedge_kernel::{SignalSet, TaskFlags, ThreadKind};
use wedge_model::{
    Field, FileKind, FuseConnection, KernelFrame, Limitation, Missing, MissingReason, Mount,
    Namespace, OpenFile, Process, SchedInfo, SignalHandler, Snapshot, Source, Syscall, Thread,
};

/// THREAD_SIZE on x86-64 without KASAN (16 KiB since 3.15).
const THREAD_SIZE: u64 = 16 << 10;
/// `sizeof(struct pt_regs)` on x86-64.
const PT_REGS_SIZE: u64 = 168;
const USER_HZ: u64 = 100;

fn frames(s: &Stack) -> Vec<KernelFrame> {
    s.frames.iter().map(kernel_frame).collect()
}

/// One unwound frame in the model's terms, as /proc/PID/stack would print
/// it: shared with the live kernel's ORC stacks (wedge-bpf).
pub fn kernel_frame(f: &crate::stack::Frame) -> KernelFrame {
    KernelFrame {
        function: f
            .function
            .clone()
            .unwrap_or_else(|| format!("{:#x}", f.addr)),
        offset: f.function.as_ref().map(|_| f.offset),
        size: f.function.as_ref().map(|_| f.size),
        module: f.module.clone(),
        address: Some(f.addr),
        unreliable: false,
        origin: None,
    }
}

/// The user registers saved at the top of a task's stack on kernel entry:
/// `orig_ax` is the system call number (−1 outside a system call).
fn syscall(v: &Vmcore, t: &Task) -> Field<Syscall> {
    if t.flags & TaskFlags::KTHREAD != 0 || t.stack_base == 0 {
        return Field::missing(MissingReason::NotSupported, "kernel thread or freed stack");
    }
    let regs = t.stack_base + THREAD_SIZE - PT_REGS_SIZE;
    let rd = |i: u64| v.kernel.mem.u64(regs + 8 * i);
    let (Ok(orig_ax), Ok(ip), Ok(sp)) = (rd(15), rd(16), rd(19)) else {
        return Field::missing(
            MissingReason::Error,
            format!("user registers of {} at {regs:#x} unreadable", t.pid),
        );
    };
    let nr = orig_ax as i64;
    if nr < 0 {
        return Field::Value(Syscall::NotInSyscall { sp, pc: ip });
    }
    // Arguments: di, si, dx, r10, r8, r9.
    let args = [14, 13, 12, 7, 9, 8]
        .iter()
        .map(|&i| rd(i).unwrap_or(0))
        .collect();
    Field::Value(Syscall::InSyscall {
        nr,
        name: wedge_kernel::syscall_name(nr).map(str::to_string),
        args,
        sp,
        pc: ip,
    })
}

fn lock_wait(w: &crate::locks::LockWait) -> wedge_model::LockWait {
    wedge_model::LockWait {
        kind: match w.kind {
            crate::locks::LockKind::Mutex => "mutex".into(),
            crate::locks::LockKind::RwSemaphore => "rw_semaphore".into(),
        },
        address: w.lock,
        symbol: w.symbol.clone(),
        owner_tid: w.owner,
        reader_owned: w.reader_owned,
        waiters: w.waiters.clone(),
        last_holder_tid: None,
        owner_task: None,
        waits_as: None,
    }
}

fn thread(v: &Vmcore, t: &Task, stack: Option<&crate::Result<Stack>>) -> Thread {
    let flags = TaskFlags(t.flags);
    let (kernel_stack, wchan) = match stack {
        Some(Ok(s)) => {
            let w = if t.state == wedge_kernel::TaskState::Running {
                None
            } else {
                s.frames
                    .iter()
                    .find(|f| !f.sched)
                    .and_then(|f| f.function.clone())
            };
            (Field::Value(frames(s)), Field::Value(w))
        }
        Some(Err(e)) => (
            Field::missing(MissingReason::Invalid, e.to_string()),
            Field::missing(MissingReason::Invalid, e.to_string()),
        ),
        None => (Field::default(), Field::default()),
    };
    Thread {
        tid: t.pid,
        comm: t.comm.clone(),
        state: t.state,
        flags,
        kind: ThreadKind::classify(&t.comm, flags),
        start_time: t.start_time_ns.unwrap_or(0) / (1_000_000_000 / USER_HZ),
        processor: t.cpu.map(|c| c as i32),
        ns_tids: t.ns_pids.clone(),
        tracer_pid: None,
        pending: SignalSet(t.pending),
        blocked: SignalSet(t.blocked),
        wchan,
        kernel_stack,
        syscall: syscall(v, t),
        sched: Field::Value(SchedInfo {
            voluntary_switches: t.nvcsw,
            involuntary_switches: t.nivcsw,
            run_ns: t.run_ns,
            wait_ns: t.wait_ns,
            last_ran_ms: t.last_arrival_ns.map(|n| n as f64 / 1e6),
        }),
        utime: t.utime_ns.unwrap_or(0) / (1_000_000_000 / USER_HZ),
        stime: t.stime_ns.unwrap_or(0) / (1_000_000_000 / USER_HZ),
        sleep_kind: t.sleep,
        lock_wait: None,
        // The dump's unwinder walks the ORC tables from the saved sp.
        stack_source: stack.map(|_| wedge_model::StackSource::Orc),
        in_iowait: t.in_iowait,
    }
}

/// The scheduler clock at the dump: the latest `rq->clock` of any CPU.
fn sched_clock_ns(v: &Vmcore) -> Option<u64> {
    let k = &v.kernel;
    let rq = k.syms.addr("runqueues")?;
    let off = k.off("rq", "clock").ok()?;
    k.per_cpu_offsets()
        .ok()?
        .iter()
        .filter_map(|o| k.mem.u64(rq.wrapping_add(*o) + off).ok())
        .max()
}

/// Each CPU's `rq->clock_task`, the clock its tasks' `se.exec_start` is
/// on (it leaves out that CPU's IRQ and steal time, so CPUs differ).
fn cpu_clock_task_ns(v: &Vmcore) -> Vec<Option<u64>> {
    let k = &v.kernel;
    let (Some(rq), Ok(off), Ok(offs)) = (
        k.syms.addr("runqueues"),
        k.off("rq", "clock_task"),
        k.per_cpu_offsets(),
    ) else {
        return Vec::new();
    };
    offs.iter()
        .map(|o| k.mem.u64(rq.wrapping_add(*o).wrapping_add(off)).ok())
        .collect()
}

fn hostname(v: &Vmcore) -> Option<String> {
    let k = &v.kernel;
    let uts = k
        .vmcoreinfo
        .symbol("init_uts_ns")
        .or_else(|| k.syms.addr("init_uts_ns"))?;
    let name = k.vmcoreinfo.offset("uts_namespace.name").unwrap_or(4);
    // new_utsname: sysname[65], nodename[65], …
    k.mem.cstr(uts + name + 65, 65).ok()
}

/// Why a read of user memory failed, in the terms a reader needs: a page
/// the process's page tables do not map (never touched, or swapped out:
/// its contents are on the swap device, not in memory) or a page the dump
/// left out (makedumpfile's `-d 31` drops user pages).
fn user_memory_error(what: &str, e: &crate::Error) -> Missing {
    let why = match e {
        crate::Error::Unmapped { .. } => {
            "not present in the process's page tables (swapped out or never touched)"
        }
        crate::Error::PageMissing { .. } => {
            "its page is not in the dump (makedumpfile -d 8 or 31 leaves user pages out; a truncated dump loses them too)"
        }
        _ => "unreadable",
    };
    Missing {
        reason: MissingReason::NotSupported,
        detail: format!("{what} in user memory: {why}: {e}"),
    }
}

/// Fills what `p` owns beyond its tasks' task_structs from kernel objects.
/// Threads share their mm, files, fs and sighand with the leader, except
/// that an exited leader (a zombie) has dropped them while another thread
/// still holds them: then that thread's are read, as /proc's
/// `task/TID/fd` would be. Returns the process's mount namespace.
fn owned(r: &ProcReader, ts: &[&Task], kthread: bool, p: &mut Process) -> Option<u64> {
    let leader = ts[0];
    let missing = |reason, detail: String| Missing { reason, detail };
    let none = |what: &str| {
        Field::missing(
            MissingReason::NotSupported,
            format!("{what}: none (no mm: a kernel thread, or a process that has exited)"),
        )
    };
    if !kthread {
        p.cmdline = match r.cmdline(leader) {
            Ok(None) => Field::Value(Vec::new()),
            Ok(Some(b)) => Field::Value(wedge_kernel::text::split_cmdline(&b)),
            Err(e) => Field::Missing(user_memory_error("command line", &e)),
        };
    }
    p.exe = match r.exe(leader) {
        Ok(Some(x)) => Field::Value(x),
        Ok(None) => none("executable"),
        Err(e) => Field::Missing(missing(MissingReason::Error, format!("executable: {e}"))),
    };
    let fs = ts.iter().find_map(|t| r.cwd_root(t).ok().flatten());
    match fs {
        Some((cwd, root)) => {
            let f = |x: crate::Result<String>, what: &str| match x {
                Ok(v) => Field::Value(v),
                Err(e) => Field::Missing(missing(MissingReason::Error, format!("{what}: {e}"))),
            };
            p.cwd = f(cwd, "cwd");
            p.root = f(root, "root");
        }
        None => {
            let gone = "none: the process has exited (exit_fs() dropped its fs_struct)";
            p.cwd = Field::missing(MissingReason::Vanished, format!("cwd: {gone}"));
            p.root = Field::missing(MissingReason::Vanished, format!("root: {gone}"));
        }
    }
    let ns = ts.iter().find_map(|t| r.mnt_ns(t).ok().filter(|&n| n != 0));
    p.namespaces = match ns.map(|n| r.mnt_ns_inum(n)) {
        // Only the mount namespace is read: the one mount points depend
        // on. The others are not read from dumps yet.
        Some(Ok(inode)) => Field::Value(vec![Namespace {
            kind: "mnt".into(),
            inode,
        }]),
        Some(Err(e)) => {
            Field::Missing(missing(MissingReason::Error, format!("mnt namespace: {e}")))
        }
        None => Field::missing(
            MissingReason::Vanished,
            "namespaces: none (the process has exited: exit_task_namespaces() dropped them)",
        ),
    };
    // The leader's fd table, or a live thread's once the leader exited.
    let table = ts
        .iter()
        .find_map(|t| r.files(t).ok().filter(|&f| f != 0).map(|f| (t, f)));
    p.fds = match table {
        None => Field::Value(Vec::new()),
        Some((t, files)) => {
            if t.pid != leader.pid {
                p.fds_via_tid = Some(t.pid);
            }
            match r.open_files(files) {
                Ok(fs) => Field::Value(
                    fs.into_iter()
                        .map(|f| OpenFile {
                            fd: f.fd,
                            kind: FileKind::classify(&f.target),
                            target: f.target,
                            pos: Some(f.pos),
                            flags: Some(f.flags),
                            mount_id: f.mount_id,
                            inode: f.inode,
                            detail: None,
                        })
                        .collect(),
                ),
                Err(e) => Field::Missing(missing(
                    MissingReason::Error,
                    format!("open files of task {}: {e}", t.pid),
                )),
            }
        }
    };
    // SigIgn/SigCgt as /proc computes them (collect_sigign_sigcatch):
    // SIG_IGN (1) ignored, any other non-SIG_DFL handler caught.
    match r.handlers(leader) {
        Ok(Some(h)) => {
            let (mut ign, mut cgt) = (0u64, 0u64);
            for (i, &a) in h.iter().enumerate() {
                match a {
                    0 => {}
                    1 => ign |= 1 << i,
                    _ => cgt |= 1 << i,
                }
            }
            p.ignored = SignalSet(ign);
            p.caught = SignalSet(cgt);
            p.handlers = h
                .iter()
                .enumerate()
                .filter(|&(_, &a)| a > 1)
                .map(|(i, &a)| SignalHandler {
                    signal: wedge_kernel::Signal(i as u8 + 1),
                    handler: a,
                })
                .collect();
            p.dispositions_missing = None;
        }
        Ok(None) => {
            p.dispositions_missing = Some(missing(
                MissingReason::Vanished,
                "none: the process has exited (its sighand is gone)".into(),
            ))
        }
        Err(e) => {
            p.dispositions_missing = Some(missing(
                MissingReason::Error,
                format!("sighand->action[] unreadable: {e}"),
            ))
        }
    }
    ns
}

/// A mount as mountinfo shows it.
fn mount(m: &DumpMount) -> Mount {
    let (major, minor) = dev_major_minor(m.dev);
    Mount {
        mount_id: m.mount_id,
        parent_id: m.parent_id,
        major,
        minor,
        root: m.root.clone(),
        mount_point: m.mount_point.clone(),
        options: m.options.clone(),
        fs_type: m.fs_type.clone(),
        source: m.source.clone(),
        super_options: m.super_options.clone(),
        mnt_ns: Some(m.mnt_ns),
    }
}

/// Builds the snapshot. `stacks` may be empty (no stacks wanted).
/// The dump's superblocks and their freeze state, walked from pid 1's
/// root filesystem (any task's, if pid 1's cannot be read).
fn superblocks(
    v: &Vmcore,
    limits: &mut Vec<Limitation>,
) -> Field<Vec<wedge_model::SuperBlockState>> {
    let btf = match v.kernel.btf() {
        Ok(b) => b,
        Err(e) => {
            return Field::missing(
                MissingReason::NotSupported,
                format!("superblocks not read from the dump: {e}"),
            )
        }
    };
    let mut starts: Vec<u64> = v
        .tasks
        .iter()
        .filter(|t| t.pid == 1)
        .map(|t| t.addr)
        .collect();
    starts.extend(v.tasks.iter().filter(|t| t.pid > 1).map(|t| t.addr).take(8));
    let head = v.kernel.syms.addr("super_blocks");
    match crate::superblocks::read_all(&v.kernel.mem, btf, &starts, head) {
        Ok((all, errors)) => {
            for e in errors.into_iter().take(8) {
                limits.push(Limitation {
                    what: "superblocks".into(),
                    why: e,
                });
            }
            Field::Value(all)
        }
        Err(e) => Field::missing(
            MissingReason::NotSupported,
            format!("superblocks not read from the dump: {e}"),
        ),
    }
}

pub fn build(v: &Vmcore, with_stacks: bool) -> Snapshot {
    let t0 = std::time::Instant::now();
    let mut snap = Snapshot::new(Source::Vmcore {
        path: v.path.clone(),
    });
    snap.system.kernel_release = v.kernel.release.clone();
    snap.system.hostname = hostname(v);
    snap.system.clock_ticks_per_sec = USER_HZ;
    snap.system.viewer_uid = 0;
    if let Some(ns) = sched_clock_ns(v) {
        snap.system.sched_clock_ms = Some(ns as f64 / 1e6);
        snap.system.uptime_secs = ns as f64 / 1e9;
    }
    snap.system.cpu_sched_clock_ms = cpu_clock_task_ns(v)
        .into_iter()
        .map(|ns| ns.map(|ns| ns as f64 / 1e6))
        .collect();
    if let Some(ct) = v.kernel.vmcoreinfo.crash_time() {
        snap.system.taken_at_unix_ms = (ct.max(0) as u64) * 1000;
    }
    let mut groups: BTreeMap<i32, Vec<&Task>> = BTreeMap::new();
    for t in &v.tasks {
        // pid 0 is the idle task: /proc does not list it either.
        if t.pid == 0 {
            continue;
        }
        groups.entry(t.tgid).or_default().push(t);
    }
    fn not_read<T>(what: &str) -> Field<T> {
        Field::missing(
            MissingReason::NotSupported,
            format!("{what}: not read from crash dumps yet"),
        )
    }
    // What a process owns beyond its task_struct (memory, files, mounts,
    // signal handlers), read from kernel objects through BTF; a kernel
    // whose BTF lacks one of them leaves them all unread, saying which.
    let reader = ProcReader::new(&v.kernel);
    let mut owned_errors: Vec<String> = Vec::new();
    let mut namespaces: Vec<u64> = Vec::new();
    let mut nthreads = 0;
    for (tgid, mut ts) in groups {
        ts.sort_by_key(|t| (t.pid != tgid, t.pid));
        let leader = ts[0];
        let threads: Vec<Thread> = ts
            .iter()
            .map(|t| {
                let s = with_stacks.then(|| v.stack(t));
                thread(v, t, s.as_ref())
            })
            .collect();
        nthreads += threads.len();
        let kthread = leader.flags & TaskFlags::KTHREAD != 0;
        let mut p = Process {
            pid: tgid,
            start_time: leader.start_time_ns.unwrap_or(0) / (1_000_000_000 / USER_HZ),
            comm: leader.comm.clone(),
            ppid: leader.ppid,
            pgrp: 0,
            session: 0,
            tty_nr: 0,
            uid: None,
            ns_pids: leader.ns_pids.clone(),
            // A kernel thread has no mm, hence no command line (what
            // /proc/PID/cmdline shows for it too).
            cmdline: if kthread {
                Field::Value(Vec::new())
            } else {
                not_read("command line (user memory)")
            },
            exe: not_read("executable"),
            cwd: not_read("cwd"),
            root: not_read("root"),
            namespaces: not_read("namespaces"),
            cgroup: not_read("cgroup"),
            shared_pending: SignalSet(leader.shared_pending),
            ignored: SignalSet(0),
            caught: SignalSet(0),
            dispositions_missing: Some(wedge_model::Missing {
                reason: MissingReason::NotSupported,
                detail: "not read from dumps: sighand->action[] is not read yet".into(),
            }),
            handlers: Vec::new(),
            sigq: None,
            cap_effective: None,
            fds: not_read("open files"),
            fds_via_tid: None,
            threads,
        };
        match &reader {
            Ok(r) => {
                if let Some(ns) = owned(r, &ts, kthread, &mut p) {
                    if !namespaces.contains(&ns) {
                        namespaces.push(ns);
                    }
                }
            }
            Err(e) => {
                let why = format!("not read: {e}");
                p.fds = Field::missing(MissingReason::NotSupported, why.clone());
                if !kthread {
                    p.cmdline = Field::missing(MissingReason::NotSupported, why);
                }
            }
        }
        snap.processes.push(p);
    }
    match &reader {
        Ok(r) => {
            let mut all: Vec<DumpMount> = Vec::new();
            for ns in namespaces {
                for m in r.mounts(ns, &mut owned_errors) {
                    if !all.iter().any(|x| x.mount_id == m.mount_id) {
                        all.push(m);
                    }
                }
            }
            snap.mounts = all.iter().map(mount).collect();
            let refs: Vec<&DumpMount> = all.iter().collect();
            snap.fuse_connections =
                match crate::fuse::connections(&v.kernel, &refs, r.layout().sb_fs_info) {
                    Ok(c) => Field::Value(
                        c.into_iter()
                            .map(|c| FuseConnection {
                                id: c.id,
                                waiting: Some(c.waiting),
                                max_background: c.max_background,
                                congestion_threshold: c.congestion_threshold,
                            })
                            .collect(),
                    ),
                    Err(e) => Field::missing(
                        MissingReason::NotSupported,
                        format!("FUSE connections not read from the dump: {e}"),
                    ),
                };
            for e in owned_errors.iter().take(8) {
                snap.limitations.push(Limitation {
                    what: "mounts".into(),
                    why: e.clone(),
                });
            }
        }
        Err(e) => {
            snap.fuse_connections = not_read("FUSE connections");
            snap.limitations.push(Limitation {
                what: "signal handlers, open files, mounts, command lines".into(),
                why: format!("not read from this dump: {e}"),
            });
        }
    }
    snap.superblocks = superblocks(v, &mut snap.limitations);
    snap.block_devices = Field::missing(
        MissingReason::NotSupported,
        "block devices are sysfs's, which a crash dump does not have (the superblocks are read)",
    );
    for w in v.kernel.warnings.iter().chain(&v.task_errors) {
        snap.limitations.push(Limitation {
            what: "dump".into(),
            why: w.clone(),
        });
    }
    if let Some(how_much) = v.completeness().summary() {
        snap.set_partial("the whole dump", how_much);
    }
    snap.stats.processes = snap.processes.len();
    snap.stats.threads = nthreads;
    snap.stats.duration_ms = t0.elapsed().as_secs_f64() * 1e3;
    // What only memory tells: the lock each blocked task waits for, and
    // its owner as the lock records it.
    if with_stacks {
        for w in crate::locks::lock_waits(v) {
            for p in &mut snap.processes {
                if let Some(t) = p.threads.iter_mut().find(|t| t.tid == w.waiter) {
                    t.lock_wait = Some(lock_wait(&w));
                }
            }
        }
    }
    snap
}
