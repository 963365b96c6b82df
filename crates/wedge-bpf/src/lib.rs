//! The live kernel through BPF: a source crate.
//!
//! One `iter/task` pass reads, for every task, what /proc summarises or
//! hides: `__state` with the kernel's own distinctions, flags, the lock it
//! sleeps on (`task->blocker`, 6.16+ with CONFIG_DETECT_HUNG_TASK_BLOCKER)
//! and that lock's owner, the kernel stack, scheduler timestamps. A second
//! program copies kernel memory with `bpf_probe_read_kernel`, in batches,
//! for the typed-memory layer and the ORC unwinder. Everything is held by
//! file descriptors only (no pins): when wedge exits, even by SIGKILL, the
//! kernel drops the programs.
//!
//! The programs are C (`bpf/wedge.bpf.c`), compiled by build.rs with clang
//! and loaded with aya, which does the CO-RE relocations against
//! /sys/kernel/btf/vmlinux (a trimmed copy of it: src/btf_trim.rs).
//!
//! The memory reader is a raw_tp program that is never attached: each batch
//! is one `BPF_PROG_TEST_RUN`, which runs it synchronously on the calling
//! CPU. Requests (address, length, status) and the copied bytes live in two
//! mmap-ed array maps, so a batch of up to 128 page-bounded pieces (512 KiB)
//! costs one syscall and no copies through bpf(). The other way — the task
//! iterator filtered to wedge's own thread — needs a link and an iterator
//! fd per batch and walks the task list each time.
//!
//! Kernel facts the records depend on: `__state` (5.14+; `state` before,
//! read through a `___pre514` flavour), `task->cpu` (5.16+;
//! `thread_info.cpu` before), `task->blocker` (6.16+ with
//! CONFIG_DETECT_HUNG_TASK_BLOCKER: the lock address with the type in its
//! low 2 bits, include/linux/hung_task.h), `semaphore.last_holder` (same
//! config), the rq clock through `se.cfs_rq->rq` (CONFIG_FAIR_GROUP_SCHED;
//! otherwise `runqueues` + `__per_cpu_offset` from /proc/kallsyms, which
//! lists data symbols only with CONFIG_KALLSYMS_ALL). What a kernel lacks
//! is named in [`Tasks::missing`].

pub mod live;

use serde::Serialize;

#[cfg_attr(wedge_no_bpf, allow(dead_code))]
mod btf_trim;
mod load;
#[cfg_attr(wedge_no_bpf, allow(dead_code))]
mod record;
pub mod snapshot;
pub mod syscalls;

pub use load::kallsyms_addrs;

/// The task iterator's output parsed into records (for the fuzz target:
/// the bytes come from the kernel, but a record size that changes between
/// the program and wedge, or a short read, must be an error, not a panic).
#[doc(hidden)]
pub fn parse_records(buf: &[u8]) -> Result<Tasks, String> {
    record::parse(buf).map(|(t, _)| t)
}

/// The size of one iterator record, for fuzz seeds.
#[doc(hidden)]
pub const RECORD_SIZE: usize = record::REC_SIZE;

/// Why the BPF source cannot be used here; the snapshot falls back to /proc
/// and lists this as a limitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// One line a user can act on: "not root (BPF task iterators need
    /// CAP_BPF and CAP_PERFMON)", "kernel has no BTF (/sys/kernel/btf/vmlinux
    /// missing)", "kernel lockdown (confidentiality) forbids reading kernel
    /// memory", "wedge was built without its BPF program (clang was not
    /// found at build time)", "the kernel refused the program: …".
    pub reason: String,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The lock a task sleeps on, decoded from `task->blocker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    Mutex,
    Semaphore,
    RwsemReader,
    RwsemWriter,
}

/// `task->blocker` decoded, with what the lock itself says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub kind: BlockerKind,
    /// The lock's address (`blocker` with its type bits masked).
    pub lock: u64,
    /// The owner's `task_struct` address, flag bits masked: a mutex's
    /// `owner`, a writer-held rw-semaphore's `owner`; for a semaphore the
    /// `last_holder` the kernel keeps with CONFIG_DETECT_HUNG_TASK_BLOCKER
    /// (a hint, not an owner). 0 when none.
    pub owner_task: u64,
    /// That task's pid (global, init pid namespace), when it could be read.
    pub owner_pid: Option<i32>,
    /// The rw-semaphore is reader-owned (`owner` bit 0): the pointer is only
    /// the last reader, no single owner is claimed.
    pub reader_owned: bool,
    /// The raw owner word as read (flags included), for evidence.
    pub owner_raw: u64,
}

/// One task as the iterator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    /// The `task_struct` address.
    pub task: u64,
    /// pid and tgid in the initial pid namespace.
    pub pid: i32,
    pub tgid: i32,
    /// The task's tid and tgid in every pid namespace from the initial one
    /// inward, with that namespace's inode number (`ns.inum`): the caller
    /// picks the numbers of the namespace it views from.
    pub ns_tids: Vec<(u32, i32)>,
    pub ns_tgids: Vec<(u32, i32)>,
    /// The parent's tgid (`real_parent->tgid`, global).
    pub ppid: i32,
    pub comm: String,
    /// `__state` (`state` before 5.14) and `exit_state`, raw.
    pub state: u32,
    pub exit_state: u32,
    /// `flags` (PF_*).
    pub flags: u32,
    /// The CPU it is on or last ran on.
    pub cpu: u32,
    pub blocker: Option<Blocker>,
    /// `bpf_get_task_stack`: return addresses, innermost first, as
    /// /proc/PID/stack would show them (scheduler functions skipped by
    /// the kernel's stack_trace_save_tsk).
    pub stack: Vec<u64>,
    /// Where the saved context of a sleeping task is (`thread.sp`) and its
    /// stack (`task->stack`, THREAD_SIZE bytes): the ORC unwinder starts there.
    pub saved_sp: u64,
    pub stack_base: u64,
    /// Scheduler clock values (ns, the clocks of the task's CPU's run
    /// queue): `se.exec_start` (last time its runtime was accounted: when
    /// it last stopped running, for a sleeper), stamped with
    /// `rq->clock_task`; `sched_info.last_arrival` (when it last got a CPU),
    /// stamped with `rq->clock`. Both rq clocks are read in the same pass
    /// (0 when they could not be): off-CPU time is `rq_clock_task_ns -
    /// exec_start_ns`, as crash-dump tools compute it. `clock_task` leaves
    /// out IRQ and steal time, so the two domains drift apart (minutes, in
    /// a VM): never subtract across them.
    pub exec_start_ns: u64,
    pub last_arrival_ns: u64,
    pub rq_clock_task_ns: u64,
    /// `rq->clock` (added to the contract: the domain of last_arrival_ns).
    pub rq_clock_ns: u64,
    /// Context switches (`nvcsw`, `nivcsw`).
    pub nvcsw: u64,
    pub nivcsw: u64,
    /// `start_time` (ns since boot, CLOCK_MONOTONIC).
    pub start_time_ns: u64,
    /// `task->in_iowait`: the task sleeps in io_schedule() (block I/O,
    /// folio locks and writeback, blk-mq tags); `None` where the kernel's
    /// BTF has no such member.
    pub in_iowait: Option<bool>,
    /// `stack` is the previous pass's walk of this task, not a new one:
    /// the task has not run since (only after [`Bpf::reuse_stacks`]).
    pub stack_reused: bool,
}

/// One pass of the task iterator.
#[derive(Debug, Clone, Serialize)]
pub struct Tasks {
    /// `bpf_ktime_get_ns()` at the start of the pass.
    pub now_ns: u64,
    pub records: Vec<TaskRecord>,
    /// What the running kernel lacks, so some fields are empty (e.g.
    /// "task->blocker: needs 6.16 with CONFIG_DETECT_HUNG_TASK_BLOCKER").
    pub missing: Vec<String>,
    /// Wall time of the pass (load excluded), for the benchmark.
    pub pass_ms: f64,
}

/// A failed read of kernel memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFault {
    pub addr: u64,
    pub detail: String,
}

impl std::fmt::Display for ReadFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kernel address {:#x}: {}", self.addr, self.detail)
    }
}

/// The loaded programs (file descriptors only).
pub struct Bpf {
    inner: load::Loaded,
}

impl Bpf {
    /// Loads the embedded programs, or says why it cannot.
    pub fn open() -> Result<Bpf, Unavailable> {
        load::Loaded::open(true).map(|inner| Bpf { inner })
    }

    /// `open()` relocating against the kernel's whole BTF instead of the
    /// trimmed copy (src/btf_trim.rs): for tests that the two agree.
    #[doc(hidden)]
    pub fn open_with_whole_btf() -> Result<Bpf, Unavailable> {
        load::Loaded::open(false).map(|inner| Bpf { inner })
    }

    /// From now on a pass walks only the stacks that can have changed: a
    /// task off CPU that has not been switched in since the last pass
    /// (same nvcsw+nivcsw) keeps that pass's frames. For `wedge record`,
    /// whose passes come every second; a one-shot pass (`ps`, `why`, the
    /// verdict) never calls it and walks every stack. At 10,000 threads the
    /// walks (bpf_get_task_stack: the ORC unwinder over each task's stack)
    /// were most of the pass's kernel time.
    pub fn reuse_stacks(&self) -> Result<(), String> {
        self.inner.reuse_stacks()
    }

    /// One pass over every task.
    pub fn tasks(&self) -> Result<Tasks, String> {
        self.inner.tasks()
    }

    /// Fills `buf` from kernel address `addr` with bpf_probe_read_kernel
    /// (batched internally: any length, split into the program's chunks).
    /// A fault names the first address that could not be read.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadFault> {
        let mut reqs = [(addr, buf)];
        self.read_many(&mut reqs).pop().unwrap_or(Ok(()))
    }

    /// Many reads in as few program runs as possible.
    pub fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> Vec<Result<(), ReadFault>> {
        self.inner.read_many(reqs)
    }

    /// Whether the programs were relocated against the trimmed BTF (true
    /// normally; false after the fallback to the whole BTF).
    #[doc(hidden)]
    pub fn relocated_against_trimmed_btf(&self) -> bool {
        self.inner.trimmed()
    }

    /// The kernel's ids of the loaded programs (`bpftool prog show id N`),
    /// so a test can check that none outlives the process.
    pub fn program_ids(&self) -> Vec<u32> {
        self.inner.program_ids()
    }

    /// Bytes one program run copies at most (the batch the reader moves per
    /// BPF_PROG_TEST_RUN), for callers sizing their reads.
    pub const READ_BATCH_BYTES: usize = load::READ_SLOTS * load::SLOT_SIZE;
}

#[cfg(test)]
mod tests {
    /// scripts/fuzz.sh writes seeds of whole records of this size.
    #[test]
    fn record_size_is_the_fuzz_seeds_size() {
        assert_eq!(super::RECORD_SIZE, 696);
    }

    /// The snapshot and the memory layer share one `Bpf` across threads.
    #[test]
    fn bpf_is_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<super::Bpf>();
    }
}
