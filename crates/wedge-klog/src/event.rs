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
use crate::decode::TaintFlag;
use crate::family::{faults, hung_task, listing, lockup, netfs, oom, oops, rcu, storage};
use crate::frame::Frame;

// The event types live with their report family; re-exported here so
// `crate::event::X` (and the crate root) keep naming them.
pub use crate::family::faults::{FatalSignal, Mapping, Segfault, Trap};
pub use crate::family::hung_task::{Blocker, HungTask};
pub use crate::family::listing::{ProcStack, ProcStatus, PsRow, PsSignals, TaskDump};
pub use crate::family::lockup::{HardLockup, SoftLockup};
pub use crate::family::netfs::{
    CifsMountFailed, CifsServer, CifsVfsError, LnetTimeout, LustreConnection, LustreError,
    LustreRpc, LustreThread, NfsServer,
};
pub use crate::family::oom::{OomInvoked, OomKill, OomReaped};
pub use crate::family::oops::{KernelBug, Oops, Panic, Warning};
pub use crate::family::rcu::RcuStall;
pub use crate::family::storage::{
    BlkIoError, BufferIoError, FsError, Mce, NvmeTimeout, PageAllocFailure, ScsiError,
    WorkqueueLockup,
};

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

/// Writes [`Detail`], [`Detail::kind`], [`KINDS`] and the per-kind
/// explanation from one table, so the list that `--kind` validates against
/// and `--help` prints cannot drift from the kinds the parser emits.  Each
/// row names the kind's variant, its event type and its meaning function,
/// both of which live in the kind's report family (`src/family/*.rs`).
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) => $name:literal, $meaning:path;)*) => {
        /// The kind-specific part of an event; serialized with its `kind` tag.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind")]
        #[allow(missing_docs)]
        pub enum Detail {
            $($(#[$doc])* #[serde(rename = $name)] $variant($ty),)*
        }

        impl Detail {
            /// The `kind` string this detail serializes with.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Detail::$variant(_) => $name,)*
                }
            }

            /// The kind-specific explanation (see [`Event::meaning`]).
            fn explain(&self, ev: &Event, who: &str) -> String {
                match self {
                    $(Detail::$variant(d) => $meaning(ev, d, who),)*
                }
            }
        }

        /// Every event kind the parser can emit, in declaration order.
        pub const KINDS: &[&str] = &[$($name),*];
    };
}

// One row per kind: the registration line.  JSON `kind` names are the
// second column and must never change (tools and the corpus depend on them).
kinds! {
    HungTask(HungTask) => "hung_task", hung_task::meaning_hung_task;
    /// A general-protection trap (`general protection (fault)`).
    GpfTrap(Trap) => "gpf_trap", faults::meaning_gpf_trap;
    /// Any other user-space trap (`trap invalid opcode`, `trap int3`).
    Trap(Trap) => "trap", faults::meaning_gpf_trap;
    Segfault(Segfault) => "segfault", faults::meaning_segfault;
    FatalSignal(FatalSignal) => "fatal_signal", faults::meaning_fatal_signal;
    Oops(Oops) => "oops", oops::meaning_oops;
    KernelBug(KernelBug) => "kernel_bug", oops::meaning_kernel_bug;
    Warning(Warning) => "warning", oops::meaning_warning;
    SoftLockup(SoftLockup) => "soft_lockup", lockup::meaning_soft_lockup;
    HardLockup(HardLockup) => "hard_lockup", lockup::meaning_hard_lockup;
    RcuStall(RcuStall) => "rcu_stall", rcu::meaning_rcu_stall;
    OomInvoked(OomInvoked) => "oom_invoked", oom::meaning_oom_invoked;
    OomKill(OomKill) => "oom_kill", oom::meaning_oom_kill;
    OomReaped(OomReaped) => "oom_reaped", oom::meaning_oom_reaped;
    NfsNotResponding(NfsServer) => "nfs_not_responding", netfs::meaning_nfs_not_responding;
    NfsServerOk(NfsServer) => "nfs_server_ok", netfs::meaning_nfs_server_ok;
    LustreRpcFailed(LustreRpc) => "lustre_rpc_failed", netfs::meaning_lustre_rpc_failed;
    LustreRpcTimeout(LustreRpc) => "lustre_rpc_timeout", netfs::meaning_lustre_rpc_failed;
    LustreError(LustreError) => "lustre_error", netfs::meaning_lustre_error;
    LustreServiceThreadInactive(LustreThread) => "lustre_service_thread_inactive", netfs::meaning_lustre_service_thread_inactive;
    /// A Lustre client lost its connection to a server: I/O waits for recovery.
    LustreConnectionLost(LustreConnection) => "lustre_connection_lost", netfs::meaning_lustre_connection_lost;
    /// The connection came back.
    LustreConnectionRestored(LustreConnection) => "lustre_connection_restored", netfs::meaning_lustre_connection_restored;
    LnetTimeout(LnetTimeout) => "lnet_timeout", netfs::meaning_lnet_timeout;
    CifsServerUnresponsive(CifsServer) => "cifs_server_unresponsive", netfs::meaning_cifs_server_unresponsive;
    /// `CIFS VFS: ...` / `CIFS: VFS: ...` other than the two kinds above
    /// and below (wedge once had one `cifs_error` kind for all three, which
    /// lost the mount's return code; see [`RETIRED_KINDS`]).
    CifsVfsError(CifsVfsError) => "cifs_vfs_error", netfs::meaning_cifs_vfs_error;
    CifsMountFailed(CifsMountFailed) => "cifs_mount_failed", netfs::meaning_cifs_mount_failed;
    BlkIoError(BlkIoError) => "blk_io_error", storage::meaning_blk_io_error;
    BufferIoError(BufferIoError) => "buffer_io_error", storage::meaning_buffer_io_error;
    NvmeTimeout(NvmeTimeout) => "nvme_timeout", storage::meaning_nvme_timeout;
    ScsiError(ScsiError) => "scsi_error", storage::meaning_scsi_error;
    FsError(FsError) => "fs_error", storage::meaning_fs_error;
    Mce(Mce) => "mce", storage::meaning_mce;
    PageAllocFailure(PageAllocFailure) => "page_alloc_failure", storage::meaning_page_alloc_failure;
    WorkqueueLockup(WorkqueueLockup) => "workqueue_lockup", storage::meaning_workqueue_lockup;
    ProcStack(ProcStack) => "proc_stack", listing::meaning_proc_stack;
    ProcStatus(ProcStatus) => "proc_status", listing::meaning_proc_status;
    PsRow(PsRow) => "ps_row", listing::meaning_ps_row;
    PsSignals(PsSignals) => "ps_signals", listing::meaning_ps_signals;
    TaskDump(TaskDump) => "task_dump", listing::meaning_task_dump;
    Panic(Panic) => "panic", oops::meaning_panic;
}

/// Is `pattern` a valid `--kind` value: a kind of [`KINDS`], or a prefix of
/// at least one followed by `*` (`lustre_*`)?
pub fn is_known_kind(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => KINDS.iter().any(|k| k.starts_with(p)),
        None => KINDS.contains(&pattern),
    }
}

/// Kinds that earlier versions emitted, and what their events are now: a
/// `--kind` of one is an error that says so (not silently no events).
pub const RETIRED_KINDS: &[(&str, &str)] = &[(
    "cifs_error",
    "cifs_vfs_error (the message), cifs_mount_failed (the return code) and cifs_server_unresponsive",
)];

/// `--kind`'s value check: a kind no event can have is refused (with the
/// valid ones), so a typo is an error, not `0 event(s)`.
pub fn parse_kind(s: &str) -> Result<String, String> {
    if is_known_kind(s) {
        return Ok(s.to_string());
    }
    if let Some((_, now)) = RETIRED_KINDS.iter().find(|(old, _)| *old == s) {
        return Err(format!(
            "kind {s} is no longer emitted: its events are now {now}"
        ));
    }
    Err(format!(
        "no event has this kind; valid kinds (or a prefix followed by `*`): {}",
        KINDS.join(", ")
    ))
}

/// `--kind`'s help, listing the kinds from this one table.
pub fn kind_help() -> String {
    format!(
        "Only these kinds (repeatable; `lustre_*` matches a prefix). Kinds: {}",
        KINDS.join(", ")
    )
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
            // Storage errors group by what failed, not by sector.
            Detail::BlkIoError(e) => Some(format!("{}:{}", e.device, e.status)),
            Detail::BufferIoError(e) => Some(e.device.clone()),
            Detail::ScsiError(e) => Some(e.device.clone()),
            Detail::NvmeTimeout(e) => Some(e.controller.clone()),
            Detail::FsError(e) => Some(format!("{}:{}", e.fs, e.device)),
            Detail::CifsServerUnresponsive(c) => Some(c.server.clone()),
            Detail::PsRow(r) => r.wchan.clone(),
            _ => self.rip.clone().or_else(|| self.pc_function.clone()),
        };
        if let Some(l) = loc {
            s.push(':');
            s.push_str(&l);
        }
        s
    }

    pub(crate) fn who(&self) -> String {
        match (&self.task, self.pid) {
            (Some(t), Some(p)) => format!("{t} (pid {p})"),
            (Some(t), None) => t.clone(),
            (None, Some(p)) => format!("pid {p}"),
            (None, None) => "a task".to_string(),
        }
    }

    pub(crate) fn site(&self) -> Option<String> {
        self.wait_site().map(|f| match &f.module {
            Some(m) => format!("{} [{m}]", f.function),
            None => f.function.clone(),
        })
    }

    /// One-line human explanation of the event.
    pub fn meaning(&self) -> String {
        let who = self.who();
        let mut m = self.detail.explain(self, &who);
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
