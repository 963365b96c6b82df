//! The BPF task pass applied to a /proc snapshot: a source→model step.
//!
//! /proc gives what BPF does not (open files, mounts, fdinfo, command
//! lines); the task iterator gives what /proc folds or hides: the exact
//! state (killable vs uninterruptible, idle, parked, frozen), the lock a
//! task sleeps on and that lock's owner, the scheduler's timestamps and the
//! kernel stack. Each record is joined to the snapshot's thread by its tid
//! in the viewer's pid namespace.
//!
//! The pass runs after the scan. Where the two disagree (a task woke, slept
//! again or took a lock in between), BPF wins: it is the later read, and an
//! exact one — one pass under RCU rather than a file per thread read over
//! hundreds of milliseconds.

use crate::live::{FrameSource, LiveKernel};
use crate::{Blocker, BlockerKind, Bpf, TaskRecord, Tasks};
use std::collections::HashMap;
use wedge_kernel::TaskFlags;
use wedge_model::{
    BpfStats, Field, KernelFrame, Limitation, LockWait, MissingReason, SchedInfo, Snapshot,
    StackSource, Thread,
};

/// Whether /proc/kallsyms shows addresses to this user, from its first
/// line (kptr_restrict zeroes them all).
fn kallsyms_shows_addresses() -> Result<(), String> {
    use std::io::Read;
    let path = "/proc/kallsyms";
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|f| f.take(64).read(&mut head))
        .map_err(|e| format!("{path}: {e}"))?;
    let head = String::from_utf8_lossy(&head[..n]);
    match head
        .split_ascii_whitespace()
        .next()
        .map(|a| u64::from_str_radix(a, 16))
    {
        Some(Ok(a)) if a != 0 => Ok(()),
        _ => Err(format!(
            "{path} shows no addresses (kptr_restrict hides them from this user)"
        )),
    }
}

/// What every limitation of this source starts with.
const WHAT: &str = "the live kernel through BPF";
/// What falls back to /proc when BPF is not used, for the limitation.
const FALLBACK: &str =
    "task states, lock owners and full kernel stacks come from /proc's summaries";

/// A thread's kernel stack from its record, and where it came from; `None`
/// when the frames cannot be named.
/// The third value is the wait channel when the provider knows the
/// kernel's `__sched` text range (/proc's get_wchan skips exactly it);
/// `None` derives it from the frames' names.
pub type Stacks<'a> =
    &'a dyn Fn(&TaskRecord) -> Option<(Vec<KernelFrame>, StackSource, Option<String>)>;

/// The inode number of the pid namespace wedge itself runs in: the
/// namespace whose numbers /proc shows it (nsfs gives each namespace file
/// the namespace's `ns.inum` as its inode number).
pub fn viewer_pid_ns() -> Result<u32, String> {
    use std::os::unix::fs::MetadataExt;
    let path = "/proc/self/ns/pid";
    let ino = std::fs::metadata(path)
        .map_err(|e| format!("{path}: {e}"))?
        .ino();
    u32::try_from(ino).map_err(|_| format!("{path}: inode {ino} is not a namespace number"))
}

/// The record's number in namespace `ns`, if it is visible there.
fn in_ns(ids: &[(u32, i32)], ns: u32) -> Option<i32> {
    ids.iter().find(|(inum, _)| *inum == ns).map(|&(_, id)| id)
}

/// The kind names the crash-dump path uses, so views and rules read one
/// vocabulary whichever source filled the snapshot.
fn kind_name(k: BlockerKind) -> (&'static str, Option<&'static str>) {
    match k {
        BlockerKind::Mutex => ("mutex", None),
        BlockerKind::Semaphore => ("semaphore", None),
        BlockerKind::RwsemReader => ("rw_semaphore", Some("reader")),
        BlockerKind::RwsemWriter => ("rw_semaphore", Some("writer")),
    }
}

/// How records are found by the owner fields of locks: by `task_struct`
/// address (what a lock's `owner` holds) and by global pid, each to the
/// tid the viewer knows it by.
struct Owners {
    by_task: HashMap<u64, Option<i32>>,
    by_pid: HashMap<i32, Option<i32>>,
}

impl Owners {
    fn new(tasks: &Tasks, ns: u32) -> Owners {
        let mut o = Owners {
            by_task: HashMap::with_capacity(tasks.records.len()),
            by_pid: HashMap::with_capacity(tasks.records.len()),
        };
        for r in &tasks.records {
            let tid = in_ns(&r.ns_tids, ns);
            o.by_task.insert(r.task, tid);
            o.by_pid.insert(r.pid, tid);
        }
        o
    }

    /// The viewer's tid of the task at `task` (global pid `pid`): `None`
    /// when it is not visible from the viewer's namespace or not known.
    fn tid(&self, task: u64, pid: Option<i32>) -> Option<i32> {
        if task != 0 {
            if let Some(t) = self.by_task.get(&task) {
                return *t;
            }
        }
        pid.and_then(|p| self.by_pid.get(&p).copied().flatten())
    }
}

/// `task->blocker` in the model's terms. A mutex's or writer-held
/// rw-semaphore's owner is named; a reader-owned rw-semaphore's owner word
/// is only its last reader and a semaphore has no owner at all (its
/// `last_holder`, 6.16+, is a hint): neither is claimed as an owner.
fn lock_wait(b: &Blocker, owners: &Owners) -> LockWait {
    let (kind, waits_as) = kind_name(b.kind);
    let named = b.owner_task != 0 || b.owner_pid.is_some();
    let (owner_tid, owner_task, last_holder_tid) = match b.kind {
        BlockerKind::Semaphore => (
            None,
            None,
            named
                .then(|| owners.tid(b.owner_task, b.owner_pid))
                .flatten(),
        ),
        _ if b.reader_owned => (None, None, None),
        _ if named => (
            owners.tid(b.owner_task, b.owner_pid),
            (b.owner_task != 0).then_some(b.owner_task),
            None,
        ),
        _ => (None, None, None),
    };
    LockWait {
        kind: kind.into(),
        address: b.lock,
        symbol: None,
        owner_tid,
        reader_owned: b.reader_owned && b.kind != BlockerKind::Semaphore,
        waiters: Vec::new(),
        last_holder_tid,
        owner_task,
        waits_as: waits_as.map(str::to_string),
    }
}

/// What the pass did, for the snapshot's stats.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub joined: usize,
    pub not_visible: usize,
}

/// Joins `tasks` into `snap`: for every thread the pass also saw, the
/// state, sleep kind, flags, CPU, lock wait, scheduler times and (with
/// `stacks`) the kernel stack and wait channel. `ns` is the viewer's pid
/// namespace ([`viewer_pid_ns`]).
pub fn apply(snap: &mut Snapshot, tasks: &Tasks, ns: u32, stacks: Option<Stacks<'_>>) -> Applied {
    let owners = Owners::new(tasks, ns);
    let mut applied = Applied::default();
    let mut joined: std::collections::HashSet<i32> = std::collections::HashSet::new();
    // Where each thread is, by the tid the viewer knows it by.
    let mut at: HashMap<i32, (usize, usize)> = HashMap::new();
    for (pi, p) in snap.processes.iter().enumerate() {
        for (ti, t) in p.threads.iter().enumerate() {
            at.insert(t.tid, (pi, ti));
        }
    }
    // Each CPU's rq->clock_task as the pass saw it (the latest of its
    // tasks' reads). On an idle NOHZ CPU that clock is only updated on the
    // CPU's next scheduler event, so it can lag: the scan's own per-CPU
    // clock (read by a thread pinned there) is kept where it is later.
    let mut clocks: Vec<Option<f64>> = snap.system.cpu_sched_clock_ms.clone();
    for r in &tasks.records {
        let (Some(tid), Some(tgid)) = (in_ns(&r.ns_tids, ns), in_ns(&r.ns_tgids, ns)) else {
            applied.not_visible += 1;
            continue;
        };
        if r.rq_clock_task_ns > 0 {
            let cpu = r.cpu as usize;
            if cpu < 4096 {
                if clocks.len() <= cpu {
                    clocks.resize(cpu + 1, None);
                }
                let ms = r.rq_clock_task_ns as f64 / 1e6;
                clocks[cpu] = Some(clocks[cpu].map_or(ms, |c: f64| c.max(ms)));
            }
        }
        let Some(&(pi, ti)) = at.get(&tid) else {
            // Started after the scan listed its process, or exited before:
            // /proc's facts (files, mounts) are what a thread needs to be
            // shown, so it is left out, as a scan racing an exit leaves it.
            continue;
        };
        let p = &mut snap.processes[pi];
        // The tid was reused by another process between the scan and the
        // pass: never mix two tasks.
        if p.pid != tgid {
            continue;
        }
        fill(&mut p.threads[ti], r, &owners, stacks);
        joined.insert(tid);
        applied.joined += 1;
    }
    // A thread the scan listed and the pass did not see: what the scan
    // left to the pass (stack, wchan) says why it is missing.
    let unseen =
        "not in the BPF task pass: the task exited or started between the /proc scan and the pass";
    for t in snap.processes.iter_mut().flat_map(|p| &mut p.threads) {
        if joined.contains(&t.tid) {
            continue;
        }
        let skipped = |f: &Option<&wedge_model::Missing>| {
            f.is_some_and(|m| m.reason == MissingReason::NotCollected)
        };
        if skipped(&t.kernel_stack.missing_info()) {
            t.kernel_stack = Field::missing(MissingReason::Vanished, unseen);
        }
        if skipped(&t.wchan.missing_info()) {
            t.wchan = Field::missing(MissingReason::Vanished, unseen);
        }
    }
    // The tasks queued on each lock, as waiters of every wait on it.
    let mut queues: HashMap<u64, Vec<i32>> = HashMap::new();
    for t in snap.processes.iter().flat_map(|p| &p.threads) {
        if let Some(lw) = &t.lock_wait {
            queues.entry(lw.address).or_default().push(t.tid);
        }
    }
    for t in snap.processes.iter_mut().flat_map(|p| &mut p.threads) {
        if let Some(lw) = &mut t.lock_wait {
            if let Some(q) = queues.get(&lw.address) {
                lw.waiters.clone_from(q);
                lw.waiters.sort_unstable();
            }
        }
    }
    if clocks.iter().any(Option::is_some) {
        snap.system.sched_clock_ms = clocks
            .iter()
            .flatten()
            .copied()
            .fold(snap.system.sched_clock_ms, |m, c| {
                Some(m.map_or(c, |m: f64| m.max(c)))
            });
        snap.system.cpu_sched_clock_ms = clocks;
    }
    for m in &tasks.missing {
        snap.limitations.push(Limitation {
            what: WHAT.into(),
            why: format!("{m}: those fields come from /proc"),
        });
    }
    applied
}

/// One thread from its record.
fn fill(t: &mut Thread, r: &TaskRecord, owners: &Owners, stacks: Option<Stacks<'_>>) {
    let (state, kind) = wedge_kernel::state::decode_state(r.state, r.exit_state);
    t.state = state;
    t.sleep_kind = kind;
    t.flags = TaskFlags(r.flags);
    t.in_iowait = r.in_iowait;
    t.processor = i32::try_from(r.cpu).ok();
    t.lock_wait = r.blocker.as_ref().map(|b| lock_wait(b, owners));
    // se.exec_start: when its runtime was last accounted, which for a
    // sleeper is when it stopped running, on its CPU's rq->clock_task (the
    // clock /proc/PID/sched prints too).
    let mut sched = t.sched.value().cloned().unwrap_or_default();
    sched.voluntary_switches = Some(r.nvcsw);
    sched.involuntary_switches = Some(r.nivcsw);
    if r.exec_start_ns > 0 {
        sched.last_ran_ms = Some(r.exec_start_ns as f64 / 1e6);
    }
    t.sched = Field::Value(SchedInfo { ..sched });
    match stacks.and_then(|f| f(r)) {
        Some((frames, source, known)) => {
            // As /proc derives it since 5.16: the first frame outside the
            // scheduler's and locks' `__sched` text, none for a task on a
            // CPU (get_wchan() says 0).
            let wchan = if state == wedge_kernel::TaskState::Running {
                None
            } else {
                known.or_else(|| {
                    frames
                        .iter()
                        .find(|f| {
                            !wedge_model::is_scheduler_plumbing(f.base_name())
                                && !wedge_kernel::frames::is_sleeping_lock(f.base_name())
                        })
                        .map(|f| f.function.clone())
                })
            };
            t.kernel_stack = Field::Value(frames);
            t.wchan = Field::Value(wchan);
            t.stack_source = Some(source);
        }
        None if t.kernel_stack.value().is_none() => {
            let why = "the live kernel's symbols could not be read, so BPF's stack addresses cannot be named";
            t.kernel_stack = Field::missing(MissingReason::NotSupported, why);
            if t.wchan.value().is_none() {
                t.wchan = Field::missing(MissingReason::NotSupported, why);
            }
        }
        None => {}
    }
}

/// Whether a task's stack is worth the ORC unwind (a copy of its whole
/// stack through BPF, ~16 KiB) rather than bpf_get_task_stack's summary:
/// the tasks the diagnosis reads frames of — asleep in D, on a lock,
/// stopped or traced, or in a wait of a subsystem that hangs (FUSE, NFS,
/// io_uring). The thousands of ordinary sleepers (futex, poll) keep the
/// summary, which is what /proc would have shown.
fn wants_orc(r: &TaskRecord, k: &LiveKernel) -> bool {
    use wedge_kernel::state::bits::*;
    if r.exit_state != 0 {
        return false;
    }
    r.state & (TASK_UNINTERRUPTIBLE | TASK_STOPPED | TASK_TRACED) != 0
        || r.blocker.is_some()
        || r.stack.iter().any(|&a| {
            k.frame(a)
                .function
                .as_deref()
                .is_some_and(wedge_kernel::waits::names_a_blocking_subsystem)
        })
}

/// [`wants_orc`] with each address's verdict kept in `cache`.
fn wants_orc_cached(r: &TaskRecord, k: &LiveKernel, cache: &mut HashMap<u64, bool>) -> bool {
    use wedge_kernel::state::bits::*;
    if r.exit_state != 0 {
        return false;
    }
    r.state & (TASK_UNINTERRUPTIBLE | TASK_STOPPED | TASK_TRACED) != 0
        || r.blocker.is_some()
        || r.stack.iter().any(|&a| {
            *cache.entry(a).or_insert_with(|| {
                k.frame(a)
                    .function
                    .as_deref()
                    .is_some_and(wedge_kernel::waits::names_a_blocking_subsystem)
            })
        })
}

/// A record's stack through the live kernel: ORC for the tasks that matter
/// ([`wants_orc`]), bpf_get_task_stack's return addresses named through
/// its kallsyms for the rest, and whenever the unwind cannot be made.
fn live_stack(
    k: &LiveKernel,
    r: &TaskRecord,
) -> Option<(Vec<KernelFrame>, StackSource, Option<String>)> {
    let named = |a: u64| wedge_vmcore::snapshot::kernel_frame(&k.frame(a));
    // The first frame outside `__sched` text: what /proc's wchan names.
    fn wchan<'f>(mut fs: impl Iterator<Item = &'f wedge_vmcore::stack::Frame>) -> Option<String> {
        fs.find(|f| !f.sched).and_then(|f| f.function.clone())
    }
    let summary = || {
        let frames: Vec<wedge_vmcore::stack::Frame> = r.stack.iter().map(|&a| k.frame(a)).collect();
        Some((
            frames
                .iter()
                .map(wedge_vmcore::snapshot::kernel_frame)
                .collect(),
            StackSource::Bpf,
            wchan(frames.iter()),
        ))
    };
    if !wants_orc(r, k) {
        return summary();
    }
    let s = k.stack(r);
    let walked: Vec<&wedge_vmcore::stack::Frame> = s
        .frames
        .iter()
        .filter(|f| f.source == FrameSource::Orc)
        .map(|f| &f.frame)
        .collect();
    if walked.is_empty() {
        return summary();
    }
    let orc = walked
        .iter()
        .map(|f| wedge_vmcore::snapshot::kernel_frame(f))
        .collect();
    let w = wchan(walked.iter().copied());
    Some((
        join_stacks(orc, &r.stack, s.stopped.is_some(), named),
        StackSource::Orc,
        w,
    ))
}

/// An ORC unwind, continued where it stopped early (in a module whose ORC
/// tables are not read, say) with bpf_get_task_stack's frames below the
/// last one both share; each frame then says where it came from. The
/// kernel's own stack walk and the ORC walk see the same return addresses,
/// so the join is by address.
fn join_stacks(
    mut orc: Vec<KernelFrame>,
    bpf: &[u64],
    stopped: bool,
    named: impl Fn(u64) -> KernelFrame,
) -> Vec<KernelFrame> {
    if !stopped {
        return orc;
    }
    let last = orc.last().and_then(|f| f.address);
    let below = match last.and_then(|a| bpf.iter().position(|&b| b == a)) {
        Some(i) => &bpf[i + 1..],
        // Nothing shared: the BPF frames below the deepest ORC frame
        // cannot be placed, and guessing would misorder them.
        None => &[][..],
    };
    if below.is_empty() {
        return orc;
    }
    for f in &mut orc {
        f.origin = Some(StackSource::Orc);
    }
    orc.extend(below.iter().map(|&a| KernelFrame {
        origin: Some(StackSource::Bpf),
        ..named(a)
    }));
    orc
}

/// Every superblock of the running kernel and its freeze state, walked
/// from pid 1's root filesystem (the pass's task addresses) by the walker
/// crash dumps use, over BPF's reads of kernel memory.
pub fn live_superblocks(
    k: &LiveKernel,
    tasks: &Tasks,
    limits: &mut Vec<Limitation>,
) -> Field<Vec<wedge_model::SuperBlockState>> {
    let mut starts: Vec<u64> = tasks
        .records
        .iter()
        .filter(|r| r.pid == 1)
        .map(|r| r.task)
        .collect();
    starts.extend(
        tasks
            .records
            .iter()
            .filter(|r| r.pid > 1 && r.exit_state == 0)
            .map(|r| r.task)
            .take(8),
    );
    let head = k.symbol("super_blocks");
    match wedge_vmcore::superblocks::read_all(&k.bpf, &k.btf, &starts, head) {
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
            MissingReason::Error,
            format!("superblocks not read from kernel memory: {e}"),
        ),
    }
}

/// The live kernel for one snapshot: the programs loaded before the scan
/// (so the scan can skip what the pass replaces), applied after it.
pub enum LivePass {
    /// Loaded; the kernel's symbols, BTF and ORC tables are read on a
    /// thread while /proc is scanned (their parse costs about what a small
    /// machine's whole scan does): stacks are named and unwound.
    Kernel(std::thread::JoinHandle<Result<LiveKernel, crate::Unavailable>>),
    /// Loaded, but the symbols cannot be read (kptr_restrict): states and
    /// locks from BPF, stacks from /proc. Says why.
    Tasks(Bpf, String),
    /// Not used, and why (a limitation of the snapshot).
    Off(Limitation),
}

impl LivePass {
    /// Loads the BPF programs unless `wanted` is false (`--no-bpf`).
    pub fn open(wanted: bool) -> LivePass {
        if !wanted {
            return LivePass::Off(Limitation {
                what: WHAT.into(),
                why: format!("not used (--no-bpf): {FALLBACK}"),
            });
        }
        let bpf = match Bpf::open() {
            Ok(b) => b,
            Err(e) => {
                return LivePass::Off(Limitation {
                    what: WHAT.into(),
                    why: format!("{}; {FALLBACK}", e.reason),
                })
            }
        };
        // Whether stacks can be named at all is known from kallsyms' first
        // line, before the scan decides to skip /proc's.
        if let Err(why) = kallsyms_shows_addresses() {
            return LivePass::Tasks(bpf, why);
        }
        LivePass::Kernel(std::thread::spawn(move || LiveKernel::with_bpf(bpf)))
    }

    /// Whether the scan may leave per-thread `stack` and `wchan` unread:
    /// the pass fills both for every task it sees.
    pub fn replaces_stacks(&self) -> bool {
        matches!(self, LivePass::Kernel(_))
    }

    /// Runs the pass and joins it into `snap`, or lists why not. A pass
    /// that fails after the scan skipped /proc's stacks leaves them missing
    /// with the reason, never guessed.
    pub fn apply(self, snap: &mut Snapshot) {
        let t0 = std::time::Instant::now();
        let ns = match viewer_pid_ns() {
            Ok(ns) => ns,
            Err(e) => return fail(snap, format!("wedge's own pid namespace is unknown: {e}")),
        };
        let (tasks, a) = match self {
            LivePass::Off(l) => return off(snap, &l),
            LivePass::Kernel(h) => {
                let k = match h.join() {
                    Ok(Ok(k)) => k,
                    Ok(Err(e)) => {
                        return fail(snap, format!("the live kernel could not be read: {e}"))
                    }
                    Err(_) => return fail(snap, "reading the live kernel failed".into()),
                };
                let tasks = match k.tasks() {
                    Ok(t) => t,
                    Err(e) => return fail(snap, format!("the task pass failed: {e}")),
                };
                apply_kernel(snap, &k, tasks, ns)
            }
            LivePass::Tasks(bpf, why) => {
                let tasks = match bpf.tasks() {
                    Ok(t) => t,
                    Err(e) => return fail(snap, format!("the task pass failed: {e}")),
                };
                apply_tasks(snap, &tasks, ns, &why)
            }
        };
        stats(snap, t0, tasks, a);
    }
}

/// A pass that could not run: what the scan left to it (stacks) is
/// missing with the reason, never guessed.
fn fail(snap: &mut Snapshot, why: String) {
    for t in snap.processes.iter_mut().flat_map(|p| &mut p.threads) {
        if t.kernel_stack.value().is_none() {
            t.kernel_stack = Field::missing(MissingReason::Error, why.clone());
        }
    }
    snap.superblocks = Field::missing(
        MissingReason::NotSupported,
        format!("superblocks are kernel memory, not read: {why}"),
    );
    snap.limitations.push(Limitation {
        what: WHAT.into(),
        why: format!("{why}; {FALLBACK}"),
    });
}

fn off(snap: &mut Snapshot, l: &Limitation) {
    snap.superblocks = Field::missing(
        MissingReason::NotSupported,
        format!(
            "superblocks are kernel memory, read through BPF, which is {}",
            l.why
        ),
    );
    snap.limitations.push(l.clone());
}

/// What one task pass says by itself about the tasks that matter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassView {
    /// Each task that matters by the pass alone (a zombie; D, stopped or
    /// traced; on a lock; in a wait of a subsystem that hangs), by the
    /// viewer's tid, with its class (`Z`, `D`, `T`, `S`).
    pub matter: std::collections::BTreeSet<(i32, char)>,
    /// Their processes, their parents and the owners of the locks they
    /// wait on (the viewer's tgids): what a diagnosis of them reads.
    pub pids: std::collections::HashSet<i32>,
    /// Every process the pass saw.
    pub alive: std::collections::HashSet<i32>,
}

/// The live kernel kept loaded across snapshots, for `wedge record`: a
/// [`LivePass`] is made for one snapshot (the programs loaded, kallsyms'
/// 120,000 lines, 5 MiB of BTF and the ORC tables parsed, then dropped),
/// which at one sample a second would cost more than the samples. This one
/// loads once and re-runs only the task iterator at each [`KeptPass::apply`].
pub enum KeptPass {
    /// The kernel, and for each kernel text address seen in a stack whether
    /// its function is a wait of a subsystem that hangs: 10,000 threads
    /// share a few hundred return addresses, and naming each one through
    /// kallsyms at every sample was most of a light sample's time. Text
    /// addresses do not move while the kernel runs (a module loaded again
    /// at the same address is the exception; the cache is cleared when
    /// large).
    Kernel(Box<LiveKernel>, HashMap<u64, bool>),
    Tasks(Bpf, String),
    Off(Limitation),
}

impl KeptPass {
    /// Loads the programs and reads the kernel's symbols now (it blocks for
    /// what [`LivePass::open`] does on a thread).
    pub fn open(wanted: bool) -> KeptPass {
        match LivePass::open(wanted) {
            LivePass::Kernel(h) => match h.join() {
                Ok(Ok(k)) => {
                    // Samples a second apart: walk only the stacks of
                    // tasks that ran since. If the switch cannot be set
                    // every stack is walked, as in a one-shot pass: the
                    // same records, only dearer.
                    let _ = k.reuse_stacks();
                    KeptPass::Kernel(Box::new(k), HashMap::new())
                }
                Ok(Err(e)) => KeptPass::Off(Limitation {
                    what: WHAT.into(),
                    why: format!("the live kernel could not be read: {e}; {FALLBACK}"),
                }),
                Err(_) => KeptPass::Off(Limitation {
                    what: WHAT.into(),
                    why: format!("reading the live kernel failed; {FALLBACK}"),
                }),
            },
            LivePass::Tasks(b, why) => KeptPass::Tasks(b, why),
            LivePass::Off(l) => KeptPass::Off(l),
        }
    }

    /// As [`LivePass::replaces_stacks`].
    pub fn replaces_stacks(&self) -> bool {
        matches!(self, KeptPass::Kernel(..))
    }

    /// Whether the task pass runs at all.
    pub fn uses_bpf(&self) -> bool {
        !matches!(self, KeptPass::Off(_))
    }

    /// What is degraded and why, in a sentence; `None` when nothing is.
    pub fn degraded(&self) -> Option<String> {
        match self {
            KeptPass::Kernel(..) => None,
            KeptPass::Tasks(_, why) => Some(format!("kernel stacks stay /proc's: {why}")),
            KeptPass::Off(l) => Some(l.why.clone()),
        }
    }

    /// The loaded kernel, for what else reads it between samples.
    pub fn kernel(&self) -> Option<&LiveKernel> {
        match self {
            KeptPass::Kernel(k, _) => Some(k),
            _ => None,
        }
    }

    /// A fresh task pass, and what it says by itself (before any /proc
    /// read) about the tasks that matter: the recorder reads /proc only
    /// for their processes while that set stays the same. `None` without
    /// the kernel's symbols (the stack names decide part of it) or when
    /// the pass fails.
    pub fn refresh_view(&mut self) -> Option<PassView> {
        let KeptPass::Kernel(k, blocking) = self else {
            return None;
        };
        let ns = viewer_pid_ns().ok()?;
        k.refresh_tasks().ok()?;
        let k: &LiveKernel = k;
        if blocking.len() > 100_000 {
            blocking.clear();
        }
        let tasks = k.tasks().ok()?;
        // Global pid → the viewer's tgid, for parents and lock owners.
        let tgid_of: HashMap<i32, i32> = tasks
            .records
            .iter()
            .filter_map(|r| Some((r.pid, in_ns(&r.ns_tgids, ns)?)))
            .collect();
        let mut v = PassView::default();
        for r in &tasks.records {
            let (Some(tid), Some(tgid)) = (in_ns(&r.ns_tids, ns), in_ns(&r.ns_tgids, ns)) else {
                continue;
            };
            v.alive.insert(tgid);
            let class = if r.exit_state != 0 {
                'Z'
            } else if wants_orc_cached(r, k, blocking) {
                use wedge_kernel::state::bits::*;
                match r.state {
                    s if s & TASK_UNINTERRUPTIBLE != 0 => 'D',
                    s if s & (TASK_STOPPED | TASK_TRACED) != 0 => 'T',
                    _ => 'S',
                }
            } else {
                continue;
            };
            v.matter.insert((tid, class));
            v.pids.insert(tgid);
            if let Some(&pp) = tgid_of.get(&r.ppid) {
                v.pids.insert(pp);
            }
            if let Some(owner) = r.blocker.as_ref().and_then(|b| b.owner_pid) {
                if let Some(&o) = tgid_of.get(&owner) {
                    v.pids.insert(o);
                }
            }
        }
        Some(v)
    }

    /// Joins the pass [`KeptPass::refresh_view`] made into `snap` (no new
    /// pass: the light sample's /proc reads came right after it).
    pub fn apply_current(&mut self, snap: &mut Snapshot) {
        let t0 = std::time::Instant::now();
        let KeptPass::Kernel(k, _) = self else {
            return self.apply(snap);
        };
        let ns = match viewer_pid_ns() {
            Ok(ns) => ns,
            Err(e) => return fail(snap, format!("wedge's own pid namespace is unknown: {e}")),
        };
        let k: &LiveKernel = k;
        let (tasks, a) = match k.tasks() {
            Ok(tasks) => apply_kernel(snap, k, tasks, ns),
            Err(e) => return fail(snap, format!("the task pass failed: {e}")),
        };
        stats(snap, t0, tasks, a);
    }

    /// A fresh task pass joined into `snap`, as [`LivePass::apply`].
    pub fn apply(&mut self, snap: &mut Snapshot) {
        let t0 = std::time::Instant::now();
        let ns = match viewer_pid_ns() {
            Ok(ns) => ns,
            Err(e) => return fail(snap, format!("wedge's own pid namespace is unknown: {e}")),
        };
        let (tasks, a) = match self {
            KeptPass::Off(l) => return off(snap, l),
            KeptPass::Kernel(k, _) => {
                if let Err(e) = k.refresh_tasks() {
                    return fail(snap, format!("the task pass failed: {e}"));
                }
                let k: &LiveKernel = k;
                match k.tasks() {
                    Ok(tasks) => apply_kernel(snap, k, tasks, ns),
                    Err(e) => return fail(snap, format!("the task pass failed: {e}")),
                }
            }
            KeptPass::Tasks(bpf, why) => match bpf.tasks() {
                Ok(tasks) => apply_tasks(snap, &tasks, ns, why),
                Err(e) => return fail(snap, format!("the task pass failed: {e}")),
            },
        };
        stats(snap, t0, tasks, a);
    }
}

/// The pass with the kernel's symbols: stacks named and unwound, the
/// superblocks walked.
fn apply_kernel(snap: &mut Snapshot, k: &LiveKernel, tasks: &Tasks, ns: u32) -> PassDone {
    snap.superblocks = live_superblocks(k, tasks, &mut snap.limitations);
    let stacks = |r: &TaskRecord| live_stack(k, r);
    let a = apply(snap, tasks, ns, Some(&stacks));
    // The unwinder's own gaps matter only where a stack ran into them (an
    // unwind continued with BPF's frames).
    let joined_stacks = snap
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .filter_map(|t| t.kernel_stack.value())
        .any(|s| s.iter().any(|f| f.origin == Some(StackSource::Bpf)));
    for w in k.warnings.iter().filter(|_| joined_stacks) {
        snap.limitations.push(Limitation {
            what: "kernel stacks (ORC)".into(),
            why: w.clone(),
        });
    }
    ((tasks.pass_ms, tasks.records.len()), a)
}

/// The pass without the kernel's symbols: states and locks only.
fn apply_tasks(snap: &mut Snapshot, tasks: &Tasks, ns: u32, why: &str) -> PassDone {
    snap.limitations.push(Limitation {
        what: WHAT.into(),
        why: format!("kernel stacks stay /proc's: {why}"),
    });
    snap.superblocks = Field::missing(
        MissingReason::NotSupported,
        format!("superblocks not read: the kernel's symbols and types are not read: {why}"),
    );
    let a = apply(snap, tasks, ns, None);
    ((tasks.pass_ms, tasks.records.len()), a)
}

/// The pass's wall time and task count, and what [`apply`] joined.
type PassDone = ((f64, usize), Applied);

fn stats(snap: &mut Snapshot, t0: std::time::Instant, tasks: (f64, usize), a: Applied) {
    snap.stats.bpf = Some(BpfStats {
        pass_ms: tasks.0,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
        tasks: tasks.1,
        joined: a.joined,
        not_visible: a.not_visible,
    });
}

#[cfg(test)]
mod tests;
