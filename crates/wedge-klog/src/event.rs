//! The typed events the parser produces.
//!
//! Every [`Event`] serializes to one flat JSON object whose keys follow the
//! corpus vocabulary (`kind`, `task`, `pid`, `blocked_seconds`, `ip`, ...):
//! the kind-specific part ([`Detail`]) is flattened next to the fields every
//! report can carry (task, CPU, taint, call trace, source lines, timestamp).
//! Hex values are strings exactly as printed (no `0x` added or removed,
//! leading zeros kept).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::code::CodeDump;
use crate::decode::{PageFaultError, TaintFlag};
use crate::frame::Frame;

/// First and last physical input line (1-based) an event was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineRange {
    /// First line.
    pub first: u64,
    /// Last line.
    pub last: u64,
}

/// When a report was logged, as far as its prefix says.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Timestamp {
    /// Seconds since boot (dmesg `[  12.345678]`, `/dev/kmsg`, journald's
    /// source-monotonic timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monotonic: Option<f64>,
    /// Wall clock exactly as printed (syslog date, `dmesg -T`, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall: Option<String>,
    /// The wall clock as Unix seconds, when the stamp had a year (read as
    /// UTC, since logs rarely name their zone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_epoch: Option<i64>,
}

/// A call trace other than the event's main one (the stack of a lock owner
/// dumped after a hung-task blocker line, an NMI backtrace of another CPU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabeledTrace {
    /// What the trace belongs to (`task kworker/4:1:16648`, `cpu 9`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The frames, in printed order.
    pub frames: Vec<Frame>,
}

/// Who a hung task is waiting for (`is blocked on a mutex likely owned by
/// task COMM:PID`, CONFIG_DETECT_HUNG_TASK_BLOCKER, 6.14+ for mutexes, 6.16+
/// for semaphores and rw-semaphores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// `mutex`, `semaphore` or `rw-semaphore`.
    pub kind: String,
    /// Owner (or last holder, for semaphores) task name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_task: Option<String>,
    /// Owner pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<u32>,
    /// The kernel said the owner is not found.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub owner_not_found: bool,
    /// For rw-semaphores: whether the hung task waits as `reader` or `writer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiter_role: Option<String>,
    /// For rw-semaphores: whether the owner holds it as `reader` or `writer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_role: Option<String>,
}

/// `INFO: task COMM:PID blocked for more than N seconds.` (kernel/hung_task.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HungTask {
    /// Seconds the task has been in D state (rounded down to the check period).
    pub blocked_seconds: u64,
    /// Scheduler state letter from the task dump (`D`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Parent pid from the task dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Lock owner, when the kernel named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocker: Option<Blocker>,
    /// `Blocked by coredump.` (6.x): the task waits for a core dump to finish.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked_by_coredump: bool,
    /// `Future hung task reports are suppressed`: hung_task_warnings hit 0,
    /// so later hangs are not in the log.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub future_reports_suppressed: bool,
}

/// Where a user-space address falls: `in LIB[BASE+SIZE]` or, since 6.2,
/// `in LIB[OFFSET,BASE+SIZE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Mapping {
    /// File name of the mapping.
    pub lib: String,
    /// Start of the mapping.
    pub lib_base: String,
    /// Length of the mapping.
    pub lib_size: String,
    /// File offset the kernel printed (6.2+ form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lib_offset: Option<String>,
    /// `ip - lib_base` computed here (hex, no `0x`); for the old form this
    /// is the offset to feed to `addr2line` for a non-PIE segment start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lib_ip_offset: Option<String>,
}

/// `traps: COMM[PID] general protection fault ip:.. sp:.. error:.. in LIB[..]`
/// and the other user-space traps of arch/x86/kernel/traps.c.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trap {
    /// The trap as printed (`general protection fault`, `general protection`,
    /// `invalid opcode`, `int3`, `divide error`).
    pub trap_text: String,
    /// Instruction pointer.
    pub ip: String,
    /// Stack pointer.
    pub sp: String,
    /// Error code (for #GP a segment selector, usually 0).
    pub error: String,
    /// The mapping `ip` is in.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    /// Signal number from the `potentially unexpected fatal signal` that
    /// followed this trap, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
}

/// `COMM[PID]: segfault at ADDR ip IP sp SP error E in LIB[..] likely on CPU N (core C, socket S)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segfault {
    /// Faulting data address.
    pub fault_addr: String,
    /// Instruction pointer.
    pub ip: String,
    /// Stack pointer.
    pub sp: String,
    /// Page-fault error code, hex as printed.
    pub error: String,
    /// The error code bit by bit (x86 encoding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_decoded: Option<PageFaultError>,
    /// The mapping `ip` is in.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    /// Core of the CPU (`likely on CPU N (core C, socket S)`, 6.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<u32>,
    /// Socket of the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<u32>,
}

/// `potentially unexpected fatal signal N.` (kernel/signal.c, printed when
/// `print-fatal-signals=1`), followed by the task's registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FatalSignal {
    /// Signal number.
    pub signal: u32,
    /// Its name in the generic numbering (see [`crate::signal_name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<String>,
    /// Executable path (6.x prints `PATH: COMM: potentially ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
}

/// A kernel oops: `BUG: ...`/`Unable to handle kernel ...` then
/// `Oops: CODE [#N]`, registers, call trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Oops {
    /// What went wrong (`kernel NULL pointer dereference`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bug: Option<String>,
    /// The bad address, as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Error code from the `Oops:` line (`0000`, ARM `17`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oops_code: Option<String>,
    /// `[#N]`: how many oopses this boot (>1 means an earlier one happened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oops_count: Option<u32>,
    /// Build/config words after `[#N]` (`PREEMPT SMP PTI`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oops_flags: Option<String>,
    /// x86 `#PF:` lines (5.x+): access type and reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub page_fault: Vec<String>,
}

/// A `BUG:` report that is not an oops (`BUG: scheduling while atomic`,
/// `BUG: KASAN: ...`, `BUG: Bad rss-counter state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelBug {
    /// The text after `BUG: `.
    pub bug: String,
}

/// `WARNING: CPU: N PID: P at FILE:LINE FUNC+off/size [module]` (kernel/panic.c `__warn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Warning {
    /// Source file of the WARN_ON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Line of the WARN_ON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Function containing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Offset into the function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Function size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Module, for out-of-vmlinux code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The WARN() message printed between `cut here` and `WARNING:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `watchdog: BUG: soft lockup - CPU#N stuck for Ns! [COMM:PID]` (kernel/watchdog.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SoftLockup {
    /// Seconds the CPU ran kernel code without scheduling.
    pub stuck_seconds: u64,
}

/// `Watchdog detected hard LOCKUP on cpu N` / `Kernel panic - not syncing: Hard LOCKUP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HardLockup {}

/// RCU CPU stall warning (kernel/rcu/tree_stall.h; before 4.20 in tree.c,
/// and before 3.x without the `rcu: ` prefix and with a one-line form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RcuStall {
    /// RCU flavor (`rcu_sched`, `rcu_preempt`, 3.x `rcu_sched_state`).
    pub flavor: String,
    /// CPUs that did not report a quiescent state (other-CPU stall form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_cpus: Option<Vec<u32>>,
    /// CPU that noticed the stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_by: Option<u32>,
    /// Stall duration in jiffies (`t=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jiffies: Option<u64>,
    /// CPU that reported its own stall (`self-detected stall on CPU`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_detected_cpu: Option<u32>,
    /// Grace-period number (`g=`), as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    /// Expedited grace period stall.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expedited: bool,
    /// Pids of tasks blocking the grace period (preemptible RCU).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_tasks: Vec<u32>,
    /// `rcu_sched kthread starved for N jiffies!`: the grace-period kthread
    /// itself could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kthread_starved_jiffies: Option<u64>,
}

/// `COMM invoked oom-killer: gfp_mask=.., order=N, oom_score_adj=N` (mm/oom_kill.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomInvoked {
    /// Allocation flags as printed (`0x100cca(GFP_HIGHUSER_MOVABLE)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_mask: Option<String>,
    /// Allocation order (2^order pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// oom_score_adj of the allocating task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// `constraint=` from the `oom-kill:` summary line (4.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// Memory cgroup of the victim (`task_memcg=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_memcg: Option<String>,
    /// Memory cgroup usage (`memory: usage NkB, limit NkB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_usage_kb: Option<u64>,
    /// Memory cgroup limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_limit_kb: Option<u64>,
}

/// `Out of memory: Killed process PID (COMM) total-vm:..kB, anon-rss:..kB, ...`
/// (and the pre-4.19 two-line `Kill process ... or sacrifice child` form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomKill {
    /// Virtual size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_vm_kb: Option<u64>,
    /// Anonymous resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_kb: Option<u64>,
    /// File-backed resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_rss_kb: Option<u64>,
    /// Shared-memory resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_rss_kb: Option<u64>,
    /// Page tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgtables_kb: Option<u64>,
    /// Owner uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Badness score (pre-4.19 `score N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score: Option<i64>,
    /// oom_score_adj of the victim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// Killed by a memory-cgroup OOM rather than a global one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub memcg: bool,
}

/// `oom_reaper: reaped process PID (COMM), now anon-rss:..kB, ...`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomReaped {
    /// Anonymous RSS left after reaping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_kb: Option<u64>,
    /// File RSS left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_rss_kb: Option<u64>,
    /// Shmem RSS left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_rss_kb: Option<u64>,
}

/// NFS client messages `nfs: server X not responding, still trying|timed out` / `OK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsServer {
    /// Server name or address as printed.
    pub server: String,
    /// `still trying` (hard mount: I/O waits forever) or `timed out` (soft mount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Lustre `ptlrpc_expire_one_request()` messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LustreRpc {
    /// Why the request failed (`network error`, `timed out for slow reply`).
    pub reason: String,
    /// Target of the request (`o250->MGC...@tcp`), when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// `LustreError: ...` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LustreError {
    /// Console message code (`11-0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Target device/import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Operation (`obd_ping`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Peer node (`172.31.126.88@o2ib`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Return code (`-107` = ENOTCONN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i64>,
    /// The message text.
    pub message: String,
}

/// `LNet: Service thread pid N was inactive for S.SSs` (Lustre watchdog).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LustreThread {
    /// Seconds the service thread did not make progress.
    pub inactive_seconds: f64,
}

/// `TARGET: Connection to SERVICE (at NID) was lost` / `Connection restored to ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LustreConnection {
    /// The import that lost (or regained) its server.
    pub target: String,
    /// Server NID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `LNet: ... Timed out tx for PEER: N seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LnetTimeout {
    /// LNet peer NID.
    pub peer: String,
    /// Seconds since last successful transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// `CIFS VFS: Server X has not responded in N seconds. Reconnecting...`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CifsServer {
    /// Server as printed.
    pub server: String,
    /// Seconds without a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// Other `CIFS VFS:` / `CIFS: VFS:` error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CifsError {
    /// The message text.
    pub message: String,
}

/// A pasted `/proc/PID/stack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ProcStack {}

/// A pasted `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ProcStatus {
    /// Parent pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Thread-group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgid: Option<u32>,
    /// State letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Pid of the tracer, 0 if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer_pid: Option<u32>,
    /// Number of threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// `SigQ` queued/limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_q: Option<String>,
    /// Thread-pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_pnd: Option<String>,
    /// Process-shared pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shd_pnd: Option<String>,
    /// Blocked mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_blk: Option<String>,
    /// Ignored mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_ign: Option<String>,
    /// Caught mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_cgt: Option<String>,
    /// Names of pending signals (thread and shared).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_signals: Vec<String>,
    /// Names of blocked signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_signals: Vec<String>,
    /// Names of ignored signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_signals: Vec<String>,
    /// Names of caught signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caught_signals: Vec<String>,
}

/// One row of a pasted `ps` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PsRow {
    /// Single state letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// BSD `STAT` column (`Dl+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Wait channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// Command line (`cmd`/`args`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Parent pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One row of `ps s` (signal masks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PsSignals {
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// BSD STAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Pending mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// Blocked mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Ignored mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Caught mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught: Option<String>,
    /// Names of blocked signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_signals: Vec<String>,
    /// Names of ignored signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_signals: Vec<String>,
    /// Names of pending signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_signals: Vec<String>,
}

/// A task dump with no report header around it (SysRq-w `Show Blocked
/// State`, SysRq-t): `task:COMM state:D ...` plus its call trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TaskDump {
    /// State letter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A `Kernel panic - not syncing:` line that did not belong to another report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Panic {}

/// The kind-specific part of an event; serialized with its `kind` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Detail {
    HungTask(HungTask),
    /// A general-protection trap (`general protection (fault)`).
    GpfTrap(Trap),
    /// Any other user-space trap (`trap invalid opcode`, `trap int3`).
    Trap(Trap),
    Segfault(Segfault),
    FatalSignal(FatalSignal),
    Oops(Oops),
    KernelBug(KernelBug),
    Warning(Warning),
    SoftLockup(SoftLockup),
    HardLockup(HardLockup),
    RcuStall(RcuStall),
    OomInvoked(OomInvoked),
    OomKill(OomKill),
    OomReaped(OomReaped),
    NfsNotResponding(NfsServer),
    NfsServerOk(NfsServer),
    LustreRpcFailed(LustreRpc),
    LustreRpcTimeout(LustreRpc),
    LustreError(LustreError),
    LustreServiceThreadInactive(LustreThread),
    /// A Lustre client lost its connection to a server: I/O waits for recovery.
    LustreConnectionLost(LustreConnection),
    /// The connection came back.
    LustreConnectionRestored(LustreConnection),
    LnetTimeout(LnetTimeout),
    CifsServerUnresponsive(CifsServer),
    CifsError(CifsError),
    ProcStack(ProcStack),
    ProcStatus(ProcStatus),
    PsRow(PsRow),
    PsSignals(PsSignals),
    TaskDump(TaskDump),
    Panic(Panic),
}

/// Writes [`Detail::kind`] and [`KINDS`] from one table, so the list that
/// `--kind` validates against and `--help` prints cannot drift from the
/// kinds the parser emits.
macro_rules! kinds {
    ($($variant:ident => $name:literal,)*) => {
        impl Detail {
            /// The `kind` string this detail serializes with.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Detail::$variant(_) => $name,)*
                }
            }
        }

        /// Every event kind the parser can emit, in declaration order.
        pub const KINDS: &[&str] = &[$($name),*];
    };
}

kinds! {
    HungTask => "hung_task",
    GpfTrap => "gpf_trap",
    Trap => "trap",
    Segfault => "segfault",
    FatalSignal => "fatal_signal",
    Oops => "oops",
    KernelBug => "kernel_bug",
    Warning => "warning",
    SoftLockup => "soft_lockup",
    HardLockup => "hard_lockup",
    RcuStall => "rcu_stall",
    OomInvoked => "oom_invoked",
    OomKill => "oom_kill",
    OomReaped => "oom_reaped",
    NfsNotResponding => "nfs_not_responding",
    NfsServerOk => "nfs_server_ok",
    LustreRpcFailed => "lustre_rpc_failed",
    LustreRpcTimeout => "lustre_rpc_timeout",
    LustreError => "lustre_error",
    LustreServiceThreadInactive => "lustre_service_thread_inactive",
    LustreConnectionLost => "lustre_connection_lost",
    LustreConnectionRestored => "lustre_connection_restored",
    LnetTimeout => "lnet_timeout",
    CifsServerUnresponsive => "cifs_server_unresponsive",
    CifsError => "cifs_error",
    ProcStack => "proc_stack",
    ProcStatus => "proc_status",
    PsRow => "ps_row",
    PsSignals => "ps_signals",
    TaskDump => "task_dump",
    Panic => "panic",
}

/// Is `pattern` a valid `--kind` value: a kind of [`KINDS`], or a prefix of
/// at least one followed by `*` (`lustre_*`)?
pub fn is_known_kind(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => KINDS.iter().any(|k| k.starts_with(p)),
        None => KINDS.contains(&pattern),
    }
}

fn ser_registers<S: Serializer>(regs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(regs.len()))?;
    for (k, v) in regs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// One decoded report from a kernel log (or a pasted `/proc`/`ps` dump).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Kind-specific fields, including the `kind` tag.
    #[serde(flatten)]
    pub detail: Detail,
    /// Task name (comm) exactly as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Process (thread) id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// CPU the report is about (or ran on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Kernel release, without the `#N` build tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// Taint letters with spaces removed; `""` for `Not tainted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tainted: Option<String>,
    /// Each taint letter with its meaning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taint_flags: Vec<TaintFlag>,
    /// `Hardware name:` line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// `Workqueue:` the task was running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workqueue: Option<String>,
    /// Instruction pointer line (`RIP: 0010:func+0x1a/0x30`), the part after the segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rip: Option<String>,
    /// Function of `rip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rip_function: Option<String>,
    /// Module of `rip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rip_module: Option<String>,
    /// Function the program counter was in (ARM `PC is at`, MIPS `epc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc_function: Option<String>,
    /// Function of the link register / return address (ARM `LR is at`, MIPS `ra`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_function: Option<String>,
    /// The report ended in (or was) a panic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic: Option<bool>,
    /// Text after `Kernel panic - not syncing: `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic_message: Option<String>,
    /// First three frames of the call trace, symbol only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_frames: Vec<String>,
    /// The event's call trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub call_trace: Vec<Frame>,
    /// Further traces printed inside the report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_traces: Vec<LabeledTrace>,
    /// Register dump, name to value as printed.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_registers"
    )]
    pub registers: Vec<(String, String)>,
    /// `Code:` bytes, disassembled on x86.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeDump>,
    /// `Modules linked in:` list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    /// Input lines the event was built from.
    pub lines: LineRange,
    /// Timestamp of the first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// `/dev/kmsg` sequence number of the first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// printk level of the first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// printk caller id (`T38`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Decoded insights (e.g. what a `hlt` faulting instruction means).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// One-line human explanation (see [`Event::meaning`]).
    pub meaning: String,
}

impl Event {
    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        self.detail.kind()
    }

    /// First `n` frame names of the call trace (symbol only, `?` frames
    /// included, as the corpus' `top_frames`).
    pub fn top_frames(&self, n: usize) -> Vec<&str> {
        self.call_trace
            .iter()
            .take(n)
            .map(|f| f.function.as_str())
            .collect()
    }

    /// First reliable frame that is neither scheduler/dump plumbing nor a
    /// sleeping primitive (mutex, rwsem, completion, page lock): the code
    /// that waits, or crashed.
    pub fn wait_site(&self) -> Option<&Frame> {
        self.call_trace.iter().find(|f| {
            let b = wedge_kernel::frames::base_function(&f.function);
            !f.unreliable
                && !wedge_kernel::frames::is_trace_plumbing(b)
                && !wedge_kernel::frames::is_wait_primitive(b)
                && !f.function.starts_with("0x")
        })
    }

    /// The sleeping primitive the task is in (`__mutex_lock`,
    /// `rwsem_down_write_slowpath`, `folio_wait_bit_common`), if any.
    pub fn wait_primitive(&self) -> Option<&str> {
        self.call_trace
            .iter()
            .filter(|f| !f.unreliable)
            .map(|f| f.function.as_str())
            .find(|f| {
                wedge_kernel::frames::is_wait_primitive(wedge_kernel::frames::base_function(f))
            })
    }

    /// Grouping key: kind plus the first five reliable frames (or, for
    /// reports without a trace, the crash location), so identical stacks
    /// from different tasks collapse into one group.
    pub fn signature(&self) -> String {
        let mut s = String::from(self.kind());
        let frames: Vec<&str> = self
            .call_trace
            .iter()
            .filter(|f| !f.unreliable)
            .take(5)
            .map(|f| f.function.as_str())
            .collect();
        if !frames.is_empty() {
            s.push(':');
            s.push_str(&frames.join("|"));
            return s;
        }
        let loc = match &self.detail {
            Detail::GpfTrap(t) | Detail::Trap(t) => t.mapping.as_ref().map(|m| {
                format!(
                    "{}+{}",
                    m.lib,
                    m.lib_offset
                        .as_deref()
                        .or(m.lib_ip_offset.as_deref())
                        .unwrap_or("?")
                )
            }),
            Detail::Segfault(t) => t.mapping.as_ref().map(|m| {
                format!(
                    "{}+{}",
                    m.lib,
                    m.lib_offset
                        .as_deref()
                        .or(m.lib_ip_offset.as_deref())
                        .unwrap_or("?")
                )
            }),
            Detail::Warning(w) => w
                .file
                .as_ref()
                .map(|f| format!("{f}:{}", w.line.unwrap_or(0))),
            Detail::NfsNotResponding(n) | Detail::NfsServerOk(n) => Some(n.server.clone()),
            Detail::PsRow(r) => r.wchan.clone(),
            _ => self.rip.clone().or_else(|| self.pc_function.clone()),
        };
        if let Some(l) = loc {
            s.push(':');
            s.push_str(&l);
        }
        s
    }

    fn who(&self) -> String {
        match (&self.task, self.pid) {
            (Some(t), Some(p)) => format!("{t} (pid {p})"),
            (Some(t), None) => t.clone(),
            (None, Some(p)) => format!("pid {p}"),
            (None, None) => "a task".to_string(),
        }
    }

    fn site(&self) -> Option<String> {
        self.wait_site().map(|f| match &f.module {
            Some(m) => format!("{} [{m}]", f.function),
            None => f.function.clone(),
        })
    }

    /// One-line human explanation of the event.
    pub fn meaning(&self) -> String {
        let who = self.who();
        let mut m = match &self.detail {
            Detail::HungTask(h) => {
                let mut s = format!(
                    "{who} has been in uninterruptible sleep (D state) for more than {} s",
                    h.blocked_seconds
                );
                if let Some(site) = self.site() {
                    s.push_str(&format!(", waiting in {site}"));
                    if let Some(p) = self.wait_primitive() {
                        s.push_str(&format!(" (in {p})"));
                    }
                }
                if let Some(b) = &h.blocker {
                    match (&b.owner_task, b.owner_pid) {
                        (Some(t), Some(p)) => {
                            s.push_str(&format!("; the {} it waits for is likely held by {t} (pid {p})", b.kind));
                        }
                        _ => s.push_str(&format!("; it waits for a {} whose owner is unknown", b.kind)),
                    }
                }
                if h.blocked_by_coredump {
                    s.push_str("; blocked by a core dump in progress");
                }
                s
            }
            Detail::GpfTrap(t) | Detail::Trap(t) => {
                let sig = match t.trap_text.as_str() {
                    x if x.starts_with("general protection") => "SIGSEGV",
                    "invalid opcode" => "SIGILL",
                    "int3" => "SIGTRAP",
                    "divide error" => "SIGFPE",
                    _ => "a signal",
                };
                let mut s = format!("{who} hit a {} ({sig}) at ip {}", t.trap_text, t.ip);
                if let Some(mp) = &t.mapping {
                    s.push_str(&format!(
                        " in {}+0x{}",
                        mp.lib,
                        mp.lib_offset.as_deref().or(mp.lib_ip_offset.as_deref()).unwrap_or("?")
                    ));
                }
                s
            }
            Detail::Segfault(sf) => {
                let how = sf
                    .error_decoded
                    .as_ref()
                    .map(|e| format!("{}-mode {} ({})", e.mode, e.access, e.cause))
                    .unwrap_or_else(|| "invalid access".to_string());
                let mut s = format!("{who} segfaulted: {how} at address 0x{}", sf.fault_addr);
                if let Some(mp) = &sf.mapping {
                    s.push_str(&format!(
                        " from code in {}+0x{}",
                        mp.lib,
                        mp.lib_offset.as_deref().or(mp.lib_ip_offset.as_deref()).unwrap_or("?")
                    ));
                } else if sf.ip.trim_start_matches('0').is_empty() {
                    s.push_str(" (jump to a NULL function pointer)");
                }
                s
            }
            Detail::FatalSignal(f) => format!(
                "{who} was killed by signal {}{} that it did not handle",
                f.signal,
                f.signal_name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            Detail::Oops(o) => {
                let mut s = format!(
                    "kernel oops{}: {}",
                    o.oops_count.map(|c| format!(" #{c}")).unwrap_or_default(),
                    o.bug.as_deref().unwrap_or("fault in kernel mode")
                );
                if let Some(a) = &o.address {
                    s.push_str(&format!(" at address {a}"));
                }
                if let Some(f) = self.rip_function.as_ref().or(self.pc_function.as_ref()) {
                    s.push_str(&format!(" in {f}"));
                    if let Some(m) = &self.rip_module {
                        s.push_str(&format!(" [{m}]"));
                    }
                }
                s.push_str(&format!(" while running {who}"));
                if o.oops_count.is_some_and(|c| c > 1) {
                    s.push_str("; an earlier oops already happened, the kernel may be unstable");
                }
                s
            }
            Detail::KernelBug(b) => format!("kernel reported BUG: {} (while running {who})", b.bug),
            Detail::Warning(w) => format!(
                "kernel warning (WARN_ON) at {}:{} in {}; not fatal, but the condition is a kernel bug",
                w.file.as_deref().unwrap_or("?"),
                w.line.unwrap_or(0),
                w.function.as_deref().unwrap_or("?")
            ),
            Detail::SoftLockup(s) => format!(
                "CPU {} ran kernel code for {} s without scheduling (soft lockup) in {who}{}",
                self.cpu.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                s.stuck_seconds,
                self.rip_function
                    .as_ref()
                    .map(|f| format!(", stuck in {f}"))
                    .unwrap_or_default()
            ),
            Detail::HardLockup(_) => format!(
                "CPU {} stopped taking interrupts (hard lockup){}",
                self.cpu.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                if self.task.is_some() { format!(" while running {who}") } else { String::new() }
            ),
            Detail::RcuStall(r) => {
                let mut s = format!("RCU grace period ({}) stalled", r.flavor);
                if let Some(c) = r.self_detected_cpu {
                    s.push_str(&format!(": CPU {c} itself did not pass a quiescent state"));
                } else if let Some(cpus) = &r.stalled_cpus {
                    if cpus.is_empty() {
                        s.push_str(": no CPU listed (tasks or the grace-period kthread hold it up)");
                    } else {
                        let l: Vec<String> = cpus.iter().map(u32::to_string).collect();
                        s.push_str(&format!(": CPUs {} did not report a quiescent state", l.join(", ")));
                    }
                }
                if let Some(j) = r.jiffies {
                    s.push_str(&format!(" for {j} jiffies"));
                }
                if let Some(d) = r.detected_by {
                    s.push_str(&format!(" (detected by CPU {d})"));
                }
                if r.kthread_starved_jiffies.is_some() {
                    s.push_str("; the RCU grace-period kthread was starved of CPU time");
                }
                s
            }
            Detail::OomInvoked(o) => format!(
                "{who} triggered the OOM killer while allocating (order {}, gfp {})",
                o.order.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
                o.gfp_mask.as_deref().unwrap_or("?")
            ),
            Detail::OomKill(k) => format!(
                "the {}OOM killer killed {who}{}",
                if k.memcg { "memory-cgroup " } else { "" },
                match (k.anon_rss_kb, k.file_rss_kb) {
                    (Some(a), Some(f)) => format!(", which used {a} kB anonymous + {f} kB file memory"),
                    _ => String::new(),
                }
            ),
            Detail::OomReaped(_) => format!("the oom_reaper freed the memory of killed {who}"),
            Detail::NfsNotResponding(n) => format!(
                "NFS server {} is not responding ({}); tasks doing I/O on it sit in D state",
                n.server,
                match n.mode.as_deref() {
                    Some("still trying") => "hard mount: the client retries forever",
                    Some("timed out") => "soft mount: I/O fails with EIO",
                    _ => "?",
                }
            ),
            Detail::NfsServerOk(n) => format!("NFS server {} is responding again", n.server),
            Detail::LustreRpcFailed(r) | Detail::LustreRpcTimeout(r) => {
                format!("Lustre RPC failed: {} (client thread {who})", r.reason)
            }
            Detail::LustreError(e) => format!("Lustre error: {}", e.message),
            Detail::LustreServiceThreadInactive(t) => format!(
                "Lustre service thread {who} made no progress for {} s (possibly hung)",
                t.inactive_seconds
            ),
            Detail::LustreConnectionLost(c) => format!(
                "Lustre lost its connection to {}{}; operations on it wait for recovery (tasks block in D state)",
                c.target,
                c.node.as_ref().map(|n| format!(" at {n}")).unwrap_or_default()
            ),
            Detail::LustreConnectionRestored(c) => {
                format!("Lustre connection to {} restored", c.target)
            }
            Detail::LnetTimeout(t) => format!(
                "LNet transmit to {} timed out{}",
                t.peer,
                t.seconds.map(|s| format!(" after {s} s")).unwrap_or_default()
            ),
            Detail::CifsServerUnresponsive(c) => format!(
                "SMB/CIFS server {} did not respond{}; the client is reconnecting and I/O on the mount blocks",
                c.server,
                c.seconds.map(|s| format!(" for {s} s")).unwrap_or_default()
            ),
            Detail::CifsError(c) => format!("CIFS error: {}", c.message),
            Detail::ProcStack(_) => format!(
                "kernel stack of {who}{}",
                self.site().map(|s| format!(": waiting in {s}")).unwrap_or_default()
            ),
            Detail::ProcStatus(p) => {
                let mut s = format!("/proc status of {who}: state {}", p.state.as_deref().unwrap_or("?"));
                if !p.blocked_signals.is_empty() {
                    s.push_str(&format!("; blocks {}", p.blocked_signals.join(" ")));
                }
                if !p.ignored_signals.is_empty() {
                    s.push_str(&format!("; ignores {}", p.ignored_signals.join(" ")));
                }
                s
            }
            Detail::PsRow(r) => {
                let st = r.state.as_deref().or(r.stat.as_deref()).unwrap_or("?");
                let mut s = format!("{who} is in state {st}");
                if st.starts_with('D') {
                    s.push_str(" (uninterruptible sleep)");
                }
                if let Some(w) = &r.wchan {
                    if w != "-" {
                        s.push_str(&format!(", waiting in {w}"));
                    }
                }
                s
            }
            Detail::PsSignals(p) => {
                let mut s = format!("signal masks of {who}");
                if !p.blocked_signals.is_empty() {
                    s.push_str(&format!("; blocks {}", p.blocked_signals.join(" ")));
                }
                if !p.ignored_signals.is_empty() {
                    s.push_str(&format!("; ignores {}", p.ignored_signals.join(" ")));
                }
                s
            }
            Detail::TaskDump(t) => format!(
                "task dump of {who} in state {}{}",
                t.state.as_deref().unwrap_or("?"),
                self.site().map(|s| format!(", waiting in {s}")).unwrap_or_default()
            ),
            Detail::Panic(_) => format!(
                "kernel panic: {}",
                self.panic_message.as_deref().unwrap_or("?")
            ),
        };
        if self.panic == Some(true) && !matches!(self.detail, Detail::Panic(_)) {
            m.push_str("; the kernel panicked");
        }
        for n in &self.notes {
            m.push_str("; ");
            m.push_str(n);
        }
        m
    }
}

/// Lower bound for [`Filter::since`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    /// Seconds since boot.
    Monotonic(f64),
    /// Unix seconds (compared with stamps that carry a year).
    Epoch(i64),
}

/// Simple predicates for `wedge log --kind/--since/--pid/--task`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Accept only these kinds (a trailing `*` matches a prefix: `lustre_*`).
    pub kinds: Vec<String>,
    /// Accept only events at or after this time; see [`Filter::decide`] for
    /// events whose stamp is of the other clock.
    pub since: Option<Since>,
    /// Accept only this pid.
    pub pid: Option<u32>,
    /// Accept only this task name.
    pub task: Option<String>,
}

/// What [`Filter::decide`] says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every predicate holds.
    Keep,
    /// Some predicate fails.
    Drop,
    /// Every other predicate holds, but `since` cannot be compared: the
    /// event's stamp is of the other clock (or there is none) and the boot
    /// time is not known.
    SinceUnknown,
}

/// The wall-clock time of boot, to compare a `--since DATE` with stamps
/// that carry only seconds since boot, and `--since SECONDS` with stamps
/// that carry only a date.
///
/// Learnt from stamps that carry both (syslog or journal lines around a
/// `[  12.345678]` printk stamp): wall − since-boot.  printk's clock
/// (local_clock) stops while the machine is suspended, so the offset grows
/// after each resume; it is re-learnt from every such stamp, and forgotten
/// when the since-boot clock goes backwards (the next boot of a merged
/// log).  For the live `/dev/kmsg` it is `btime` of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BootClock {
    boot_epoch: Option<f64>,
    fixed: bool,
    last_monotonic: Option<f64>,
}

impl BootClock {
    /// A clock for this boot: `btime` (Unix seconds) from `/proc/stat`.
    pub fn known(boot_epoch: i64) -> BootClock {
        BootClock {
            boot_epoch: Some(boot_epoch as f64),
            fixed: true,
            last_monotonic: None,
        }
    }

    /// Learns from one stamp (call in log order).
    pub fn learn(&mut self, ts: &Timestamp) {
        if self.fixed {
            return;
        }
        if let Some(m) = ts.monotonic {
            if self.last_monotonic.is_some_and(|last| m + 1.0 < last) {
                self.boot_epoch = None;
            }
            self.last_monotonic = Some(m);
            if let Some(w) = ts.wall_epoch {
                self.boot_epoch = Some(w as f64 - m);
            }
        }
    }

    /// Unix seconds of boot, when known.
    pub fn boot_epoch(&self) -> Option<f64> {
        self.boot_epoch
    }
}

impl Filter {
    /// Does `e` pass every set predicate?  An event whose time cannot be
    /// compared with `since` passes (use [`Filter::decide`] to tell).
    pub fn matches(&self, e: &Event) -> bool {
        self.decide(e, &mut BootClock::default()) != Decision::Drop
    }

    /// Keep, drop, or cannot tell (`since` on a stamp of the other clock
    /// with no known boot time).  `clock` learns from `e`'s stamp first.
    pub fn decide(&self, e: &Event, clock: &mut BootClock) -> Decision {
        if let Some(ts) = &e.timestamp {
            clock.learn(ts);
        }
        if !self.kinds.is_empty()
            && !self.kinds.iter().any(|k| match k.strip_suffix('*') {
                Some(p) => e.kind().starts_with(p),
                None => k == e.kind(),
            })
        {
            return Decision::Drop;
        }
        if let Some(p) = self.pid {
            if e.pid != Some(p) {
                return Decision::Drop;
            }
        }
        if let Some(t) = &self.task {
            if e.task.as_deref() != Some(t.as_str()) {
                return Decision::Drop;
            }
        }
        let Some(since) = self.since else {
            return Decision::Keep;
        };
        let ts = e.timestamp.as_ref();
        let mono = ts.and_then(|t| t.monotonic);
        let wall = ts.and_then(|t| t.wall_epoch);
        let boot = clock.boot_epoch();
        let after = match since {
            Since::Monotonic(s) => mono.or_else(|| Some(wall? as f64 - boot?)).map(|m| m >= s),
            Since::Epoch(s) => wall
                .map(|w| w >= s)
                .or_else(|| Some(boot? + mono? >= s as f64)),
        };
        match after {
            Some(true) => Decision::Keep,
            Some(false) => Decision::Drop,
            None => Decision::SinceUnknown,
        }
    }
}

/// Events [`Filter::decide`] could not place against `since`, counted by
/// why, for the one line that says so (a filter is never ignored silently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinceUncompared {
    /// Stamps of the other clock only, and no boot time to convert.
    pub other_clock: u64,
    /// Classic syslog (`May 22 19:04:47`) names no year.
    pub no_year: u64,
    /// No stamp at all (pasted reports, console captures).
    pub no_time: u64,
}

impl SinceUncompared {
    /// Counts one event that got [`Decision::SinceUnknown`].
    pub fn count(&mut self, e: &Event) {
        match &e.timestamp {
            Some(t) if t.monotonic.is_some() || t.wall_epoch.is_some() => self.other_clock += 1,
            Some(t) if t.wall.is_some() => self.no_year += 1,
            _ => self.no_time += 1,
        }
    }

    /// The sentence to show, if any event was left out (`when` as the user
    /// wrote it).
    pub fn explain(&self, when: &str, since: Since) -> Option<String> {
        let total = self.other_clock + self.no_year + self.no_time;
        if total == 0 {
            return None;
        }
        let mut why = Vec::new();
        if self.other_clock > 0 {
            why.push(match since {
                Since::Epoch(_) => format!(
                    "{} carry only time since boot (and no line of the log gives the date of that boot)",
                    self.other_clock
                ),
                Since::Monotonic(_) => format!(
                    "{} carry only a date (and no line of the log gives the time since boot with it)",
                    self.other_clock
                ),
            });
        }
        if self.no_year > 0 {
            why.push(format!(
                "{} carry a date without a year (classic syslog)",
                self.no_year
            ));
        }
        if self.no_time > 0 {
            why.push(format!("{} carry no time stamp", self.no_time));
        }
        Some(format!(
            "--since {when} cannot apply to {total} event(s): {}; they are not shown",
            why.join(", ")
        ))
    }
}
