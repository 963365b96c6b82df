//! Processes (thread groups) and their threads.

use crate::field::{Field, Missing};
use crate::files::OpenFile;
use serde::{Deserialize, Serialize};
use wedge_kernel::{SignalSet, SleepKind, TaskFlags, TaskState, ThreadKind};

/// A thread group: what the kernel shares among its threads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    /// The thread-group id in the viewer's pid namespace.
    pub pid: i32,
    /// Start time in clock ticks since boot; with `pid` it names the process
    /// unambiguously even when pids are reused.
    pub start_time: u64,
    pub comm: String,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i32,
    pub uid: Option<u32>,
    /// The pid in each pid namespace, from the viewer's outward to the
    /// innermost (`NStgid`). `[.., 1]` is the init of its namespace.
    pub ns_pids: Vec<i32>,
    pub cmdline: Field<Vec<String>>,
    pub exe: Field<String>,
    pub cwd: Field<String>,
    pub root: Field<String>,
    pub namespaces: Field<Vec<Namespace>>,
    /// Lines of the cgroup membership (`0::/system.slice/x.service`).
    pub cgroup: Field<Vec<String>>,
    /// Signals pending for the whole thread group (`ShdPnd`).
    pub shared_pending: SignalSet,
    pub ignored: SignalSet,
    pub caught: SignalSet,
    /// Why `ignored` and `caught` are unknown, when they are: a crash dump
    /// does not read `sighand->action[]`, so there they are not empty sets
    /// but unread. `None` when they were read (`SigIgn`/`SigCgt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispositions_missing: Option<Missing>,
    /// The handler of each caught signal, where the source can read them:
    /// a crash dump reads `sighand->action[]`; /proc shows only the set
    /// (`SigCgt`), so a live snapshot leaves this empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<SignalHandler>,
    /// Queued signals and the RLIMIT_SIGPENDING limit (`SigQ`).
    pub sigq: Option<(u64, u64)>,
    pub cap_effective: Option<u64>,
    pub fds: Field<Vec<OpenFile>>,
    /// The thread whose own `task/TID/fd` table `fds` was read through,
    /// when the leader's could not serve: a thread-group leader that has
    /// exited is a zombie whose `files` pointer exit_files() cleared, so its
    /// fd directory lists nothing, while a thread still stuck in a system
    /// call holds the shared table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_via_tid: Option<i32>,
    /// Every thread, the leader (tid == pid) first.
    pub threads: Vec<Thread>,
}

/// A caught signal and the user-space address of its handler
/// (`sa_handler`: SIG_DFL and SIG_IGN are the sets, not handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalHandler {
    pub signal: wedge_kernel::Signal,
    pub handler: u64,
}

/// One task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    pub tid: i32,
    pub comm: String,
    pub state: TaskState,
    pub flags: TaskFlags,
    pub kind: ThreadKind,
    pub start_time: u64,
    /// The CPU it last ran on.
    pub processor: Option<i32>,
    /// The tid in each pid namespace (`NSpid`).
    pub ns_tids: Vec<i32>,
    /// The tracer's pid, when ptraced.
    pub tracer_pid: Option<i32>,
    /// Signals pending for this thread only (`SigPnd`).
    pub pending: SignalSet,
    pub blocked: SignalSet,
    /// The kernel function it sleeps in; `None` when running or when the
    /// kernel reports no wait channel.
    pub wchan: Field<Option<String>>,
    pub kernel_stack: Field<Vec<KernelFrame>>,
    pub syscall: Field<Syscall>,
    pub sched: Field<SchedInfo>,
    /// User and system CPU time, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// How the kernel says it sleeps, where the source can tell (a crash
    /// dump can; /proc shows only S or D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_kind: Option<SleepKind>,
    /// The lock it waits for, read from the lock itself (crash dumps; the
    /// live kernel's `task->blocker` through BPF, 6.16+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_wait: Option<LockWait>,
    /// Where `kernel_stack` was read; `None` in snapshots recorded before
    /// the sources were told apart (then: /proc live, memory for a dump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_source: Option<StackSource>,
    /// The kernel's own `task->in_iowait` (set by io_schedule() for a
    /// sleep that waits for I/O), read live through BPF; `None` where the
    /// source cannot read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_iowait: Option<bool>,
}

/// Where a kernel stack came from, so a reader knows which frames it can
/// hold: /proc/PID/stack and bpf_get_task_stack both leave out the
/// scheduler and the lock slow paths (`__sched` functions, skipped by
/// stack_trace_save_tsk), an ORC unwind from the saved stack pointer shows
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackSource {
    /// `/proc/PID/task/TID/stack`.
    Proc,
    /// `bpf_get_task_stack` in the live kernel's task iterator, symbolised
    /// through /proc/kallsyms.
    Bpf,
    /// The kernel's ORC tables, unwound from the task's saved stack pointer
    /// over kernel memory (a live kernel through BPF, or a crash dump).
    Orc,
}

impl StackSource {
    /// Where the frames came from, in words for the views.
    pub fn describe(self) -> &'static str {
        match self {
            StackSource::Proc => "/proc (scheduler and lock slow-path frames hidden)",
            StackSource::Bpf => {
                "BPF (bpf_get_task_stack; scheduler and lock slow-path frames hidden, as in /proc)"
            }
            StackSource::Orc => "the kernel's ORC unwinder (every frame)",
        }
    }
}

/// A lock a task waits for, with its owner as the lock records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockWait {
    /// `mutex`, `rw_semaphore`.
    pub kind: String,
    pub address: u64,
    /// The lock's symbol when it is a global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The holder, for a mutex or a writer-held rw-semaphore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_tid: Option<i32>,
    /// Held by readers: no single owner can be named.
    #[serde(default)]
    pub reader_owned: bool,
    /// Every waiter, in queue order (a crash dump walks `wait_list`); the
    /// live kernel gives the tasks whose `blocker` names the lock, by tid.
    #[serde(default)]
    pub waiters: Vec<i32>,
    /// A semaphore has no owner; with CONFIG_DETECT_HUNG_TASK_BLOCKER
    /// (6.16+) it remembers its `last_holder`: the task that last took it,
    /// a hint, never an owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_holder_tid: Option<i32>,
    /// The owner's `task_struct` address, when the lock names one: the
    /// evidence behind `owner_tid`, and all there is when the owner is not
    /// visible in the viewer's pid namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_task: Option<u64>,
    /// How the waiter waits on an rw-semaphore: `reader` (down_read) or
    /// `writer` (down_write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_as: Option<String>,
}

/// One frame of a kernel stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFrame {
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u64>,
    /// Printed with `?`: found on the stack but not proven to be a return
    /// address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreliable: bool,
    /// Where this frame was read, when a stack joins two sources (an ORC
    /// unwind that stopped in a module, continued with bpf_get_task_stack's
    /// frames); `None`: the thread's `stack_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<StackSource>,
}

impl KernelFrame {
    /// The function without GCC's clone suffixes: `fuse_do_readfolio.isra.0`
    /// and `put_files_struct.part.0` are the functions of the source.
    pub fn base_name(&self) -> &str {
        base_function(&self.function)
    }

    pub fn named(function: impl Into<String>) -> Self {
        KernelFrame {
            function: function.into(),
            offset: None,
            size: None,
            module: None,
            address: None,
            unreliable: false,
            origin: None,
        }
    }
}

/// What a task is doing at the system-call boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Syscall {
    /// On a CPU: the kernel cannot tell.
    Running,
    /// Blocked outside any system call (a page fault, or a kernel thread).
    NotInSyscall { sp: u64, pc: u64 },
    /// Inside system call `nr`.
    InSyscall {
        nr: i64,
        name: Option<String>,
        args: Vec<u64>,
        sp: u64,
        pc: u64,
    },
}

/// Scheduler accounting for one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedInfo {
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
    /// Total time on CPU, nanoseconds.
    pub run_ns: Option<u64>,
    /// Total time runnable but waiting for a CPU, nanoseconds.
    pub wait_ns: Option<u64>,
    /// When the task last started running, on the scheduler clock
    /// ([`crate::SystemInfo::sched_clock_ms`]), milliseconds.
    pub last_ran_ms: Option<f64>,
}

/// One namespace membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// `mnt`, `pid`, `net`, `user`, …
    pub kind: String,
    pub inode: u64,
}

impl Process {
    pub fn leader(&self) -> Option<&Thread> {
        self.threads
            .iter()
            .find(|t| t.tid == self.pid)
            .or(self.threads.first())
    }

    /// `comm (pid, S)`: the process as a parent, child or holder is named
    /// in reports.
    pub fn label(&self) -> String {
        format!(
            "{} ({}, {})",
            self.comm,
            self.pid,
            self.leader().map_or('?', |l| l.state.code())
        )
    }

    /// Whether this process is the init (pid 1) of a pid namespace nested
    /// below the viewer's.
    pub fn is_nested_pidns_init(&self) -> bool {
        self.ns_pids.len() > 1 && self.ns_pids.last() == Some(&1)
    }

    pub fn namespace(&self, kind: &str) -> Option<u64> {
        self.namespaces
            .value()?
            .iter()
            .find(|n| n.kind == kind)
            .map(|n| n.inode)
    }

    /// Pending signals of the group and of any of its threads.
    pub fn all_pending(&self) -> SignalSet {
        self.threads
            .iter()
            .fold(self.shared_pending, |acc, t| acc.union(t.pending))
    }

    /// A readable command line: argv joined; `[comm]` when it is empty
    /// (kernel threads, zombies); when it could not be read, `comm`, in
    /// brackets only for a kernel thread.
    pub fn command(&self) -> String {
        match &self.cmdline {
            Field::Value(argv) if !argv.is_empty() => argv.join(" "),
            // An empty command line, as ps(1) brackets it: a kernel thread
            // (no mm) or a process whose mm is gone (zombie, exiting).
            Field::Value(_) => format!("[{}]", self.comm),
            // Not read (a crash dump does not read user memory; a read that
            // timed out): brackets would pass a user task off as a kernel
            // thread, so they mark real kernel threads only (PF_KTHREAD).
            Field::Missing(_) if self.leader().is_some_and(|l| l.flags.kthread()) => {
                format!("[{}]", self.comm)
            }
            Field::Missing(_) => self.comm.clone(),
        }
    }
}

impl Thread {
    /// The top frame worth naming: the first that is not scheduler
    /// plumbing. On 6.x kernels /proc hides `schedule` & co. already.
    pub fn top_frame(&self) -> Option<&KernelFrame> {
        let stack = self.kernel_stack.value()?;
        stack
            .iter()
            .find(|f| !is_scheduler_plumbing(f.base_name()))
            .or(stack.first())
    }

    /// The wait channel without clone suffixes.
    pub fn wchan_name(&self) -> Option<&str> {
        self.wchan
            .value()
            .and_then(|w| w.as_deref())
            .map(base_function)
    }

    /// Whether any frame's function matches one of `names`, ignoring the
    /// compiler's clone suffixes (`.isra.0`, `.part.0`, `.constprop.0`).
    pub fn stack_has(&self, names: &[&str]) -> bool {
        self.kernel_stack
            .value()
            .is_some_and(|s| s.iter().any(|f| names.contains(&f.base_name())))
    }
}

// The frame vocabulary is the kernel's, shared with the log reader and
// the views: kept in wedge-kernel, re-exported here for existing callers.
pub use wedge_kernel::frames::{base_function, is_scheduler_plumbing};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::MissingReason;

    /// Each CPU's scheduler clock leaves out its own IRQ and steal time,
    /// so a task's off-CPU time is taken against the clock of the CPU it
    /// last ran on, and against the one clock when that is unknown.
    #[test]
    fn off_cpu_is_measured_on_the_tasks_own_cpu() {
        let mut p = process(Field::default(), 0);
        p.threads[0].sched = Field::Value(SchedInfo {
            last_ran_ms: Some(1_000.0),
            ..Default::default()
        });
        let mut snap = crate::Snapshot::new(crate::Source::Live {
            root: "/proc".into(),
        });
        snap.system.sched_clock_ms = Some(9_000.0);
        snap.system.cpu_sched_clock_ms = vec![Some(9_000.0), Some(7_100.0), None];
        let mut at = |cpu: Option<i32>| {
            p.threads[0].processor = cpu;
            snap.off_cpu_ms(&p.threads[0])
        };
        assert_eq!(at(Some(1)), Some(6_100.0));
        assert_eq!(at(Some(0)), Some(8_000.0));
        assert_eq!(at(Some(2)), Some(8_000.0), "an unread CPU clock");
        assert_eq!(at(Some(9)), Some(8_000.0), "a CPU past the list");
        assert_eq!(at(None), Some(8_000.0));
    }

    fn process(cmdline: Field<Vec<String>>, flags: u32) -> Process {
        let thread = Thread {
            tid: 7,
            comm: "bash".into(),
            state: TaskState::Sleeping,
            flags: TaskFlags(flags),
            kind: ThreadKind::User,
            start_time: 0,
            processor: None,
            ns_tids: vec![7],
            tracer_pid: None,
            pending: SignalSet(0),
            blocked: SignalSet(0),
            wchan: Field::default(),
            kernel_stack: Field::default(),
            syscall: Field::default(),
            sched: Field::default(),
            utime: 0,
            stime: 0,
            sleep_kind: None,
            lock_wait: None,
            stack_source: None,
            in_iowait: None,
        };
        Process {
            pid: 7,
            start_time: 0,
            comm: "bash".into(),
            ppid: 1,
            pgrp: 0,
            session: 0,
            tty_nr: 0,
            uid: None,
            ns_pids: vec![7],
            cmdline,
            exe: Field::default(),
            cwd: Field::default(),
            root: Field::default(),
            namespaces: Field::default(),
            cgroup: Field::default(),
            shared_pending: SignalSet(0),
            ignored: SignalSet(0),
            caught: SignalSet(0),
            dispositions_missing: None,
            fds_via_tid: None,
            handlers: Vec::new(),
            sigq: None,
            cap_effective: None,
            fds: Field::default(),
            threads: vec![thread],
        }
    }

    #[test]
    fn brackets_only_for_kernel_threads_and_empty_command_lines() {
        let unread = || Field::missing(MissingReason::NotSupported, "not read from crash dumps");
        assert_eq!(process(unread(), 0).command(), "bash");
        assert_eq!(
            process(unread(), TaskFlags::KTHREAD).command(),
            "[bash]",
            "a kernel thread"
        );
        assert_eq!(process(Field::Value(vec![]), 0).command(), "[bash]");
        assert_eq!(
            process(Field::Value(vec!["bash".into(), "-l".into()]), 0).command(),
            "bash -l"
        );
    }
}
