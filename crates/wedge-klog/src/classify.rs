//! Recognising one kernel message (prefix already stripped) and pulling out
//! its fields.  Pure functions: no parser state.

use crate::decode::{self, find_taint};
use crate::event::Detail;
use crate::family::Report;
// The recognisers of each report family live in its file; `classify` only
// dispatches on the first byte (one pass, most lines cost a compare or two).
use crate::family::faults::{fatal_signal, segfault_line, trap_line, FaultLine};
use crate::family::hung_task::{hung_or_blocker, HungLine};
use crate::family::listing::{task_dump_new, task_dump_old, ListingLine};
use crate::family::lockup::{hard_lockup, soft_lockup};
use crate::family::netfs::{cifs, lnet, lustre, lustre_error, nfs};
use crate::family::oom::{oom_constraint, oom_kill, oom_killed_process, oom_reaped, OomLine};
use crate::family::oops::{
    bug_at, bug_line, list_corruption, oops_line, unable_to_handle, warning, OopsReport,
};
use crate::family::rcu::{rcu_body, rcu_header, rcu_line, RcuLine};
use crate::family::storage::{
    blk_io_error, buffer_io_error, fs_line, mce, nvme, page_alloc_failure, scsi_error,
};
use crate::frame::{parse_frame_line, FrameLine};
use crate::util::{
    after, bounded, is_hex, kv, lead_u32, lead_u64, parse_hex_u64, split_digits, token,
};

/// Identity fields from a `CPU: N PID: P Comm: C Tainted: ...` style line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Identity {
    pub cpu: Option<u32>,
    pub pid: Option<u32>,
    pub task: Option<String>,
    pub tainted: Option<String>,
    pub release: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RipLine {
    pub rip: String,
    pub function: Option<String>,
    pub module: Option<String>,
    pub address: Option<u64>,
    pub user: bool,
    pub bits32: bool,
}

/// What a kernel message line is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    Blank,
    /// A report that is complete in one line (NFS, Lustre, CIFS messages,
    /// `oom_reaper`): the family's recogniser builds the detail itself, so
    /// such a kind needs no `Line` variant and no parser arm of its own.
    Single {
        detail: Detail,
        pid: Option<u32>,
        task: Option<String>,
    },
    /// A line of a multi-line report: its family recognised it and
    /// assembles the event (`family::Report`, one registration line per
    /// family), so a new kind needs no variant here and no parser arm.
    Report(Report),
    TraceHeader,
    Frame(FrameLine),
    Code(String),
    Identity(Identity),
    Hardware(String),
    Modules(Vec<String>),
    Workqueue(String),
    Rip(RipLine),
    Pc {
        function: Option<String>,
        lr: bool,
    },
    Register(Vec<(String, String)>),
    EndTrace,
    CutHere,
    LinuxVersion(String),
    /// Lines that belong inside a report but carry nothing we keep.
    Related,
    Other,
}

impl Line {
    /// A line of a family's multi-line report.
    pub(crate) fn report(r: impl Into<Report>) -> Line {
        Line::Report(r.into())
    }

    /// A one-line report with no identity of its own.
    pub(crate) fn single(detail: Detail) -> Line {
        Line::Single {
            detail,
            pid: None,
            task: None,
        }
    }

    /// A one-line report naming the pid of the thread that logged it.
    pub(crate) fn single_pid(detail: Detail, pid: Option<u32>) -> Line {
        Line::Single {
            detail,
            pid,
            task: None,
        }
    }
}

/// Classify a message body.
///
/// Dispatches on the first byte so most lines cost one or two prefix
/// compares; an arm that does not match falls through to the substring
/// checks in [`generic`].  (Clippy's `collapsible_match` would turn the
/// single-`if` arms into guards, scattering the per-byte groups.)
#[allow(clippy::collapsible_match, clippy::too_many_lines)]
pub(crate) fn classify(body: &str) -> Line {
    let s = body.trim();
    let Some(&b0) = s.as_bytes().first() else {
        return Line::Blank;
    };
    match b0 {
        b'I' => {
            if let Some(r) = s.strip_prefix("INFO: task ") {
                return hung_or_blocker(r).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("INFO: ") {
                if r.contains("detected stall") || r.contains("detected expedited stall") {
                    if let Some(l) = rcu_header(r) {
                        return l;
                    }
                }
            }
            if let Some(r) = s.strip_prefix("Internal error: ") {
                return oops_line(r).map_or(Line::Other, |o| Line::report(OopsReport::Oops(o)));
            }
            if s.starts_with("IP: ") {
                return rip_line(s).map_or(Line::Related, Line::Rip);
            }
        }
        b'r' => {
            if let Some(r) = s.strip_prefix("rcu: ") {
                return rcu_line(r.trim_start());
            }
            if s.starts_with("rcu:\t") {
                return rcu_line(s.get(4..).unwrap_or("").trim_start());
            }
        }
        b't' => {
            if let Some(r) = s.strip_prefix("traps: ") {
                return trap_line(r).map_or(Line::Other, |h| Line::report(FaultLine::Trap(h)));
            }
            if let Some(r) = s.strip_prefix("task:") {
                return task_dump_new(r)
                    .map_or(Line::Other, |t| Line::report(ListingLine::TaskDump(t)));
            }
        }
        b'B' => {
            if s.contains("BUG: soft lockup") {
                return soft_lockup(s).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("BUG: ") {
                return bug_line(r);
            }
            if s.starts_with("Blocked by coredump") {
                return Line::report(HungLine::BlockedByCoredump);
            }
            if s == "Backtrace:" {
                return Line::TraceHeader;
            }
            if let Some(r) = s.strip_prefix("Buffer I/O error on ") {
                return buffer_io_error(r);
            }
            if s.starts_with("BadVA") {
                return Line::Register(Vec::new());
            }
        }
        b'U' => {
            if s.starts_with("Unable to handle kernel") {
                return unable_to_handle(s);
            }
        }
        b'k' => {
            if let Some(r) = s.strip_prefix("kernel BUG at ") {
                return bug_at(r);
            }
        }
        b'O' => {
            if s.starts_with("Oops") {
                return oops_line(s).map_or(Line::Other, |o| Line::report(OopsReport::Oops(o)));
            }
            if let Some(r) = s.strip_prefix("Out of memory: ") {
                return oom_kill(r, false).unwrap_or(Line::Other);
            }
        }
        b'W' => {
            if let Some(r) = s.strip_prefix("WARNING: ") {
                return warning(r).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("Workqueue: ") {
                return Line::Workqueue(bounded(r, 128));
            }
            if s.contains("hard LOCKUP") {
                return hard_lockup(s);
            }
        }
        b'K' => {
            if let Some(r) = s.strip_prefix("Kernel panic - not syncing: ") {
                return Line::report(OopsReport::Panic(bounded(r.trim(), 256)));
            }
            if let Some(r) = s.strip_prefix("Killed process ") {
                return oom_killed_process(r, false).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("Kernel panic - not syncing") {
                return Line::report(OopsReport::Panic(bounded(
                    r.trim_start_matches(':').trim(),
                    256,
                )));
            }
        }
        b'M' => {
            if let Some(r) = s.strip_prefix("Memory cgroup out of memory: ") {
                return oom_kill(r, true).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("Modules linked in:") {
                return Line::Modules(modules(r));
            }
            if s.starts_with("Mem-Info") {
                return Line::Related;
            }
        }
        b'N' => {
            if s.contains("hard LOCKUP") {
                return hard_lockup(s);
            }
            if let Some(r) = s.strip_prefix("NMI watchdog: ") {
                if r.contains("BUG: soft lockup") {
                    return soft_lockup(r).unwrap_or(Line::Other);
                }
            }
            if s.starts_with("Not tainted") || s.starts_with("Not tained") {
                return Line::Identity(identity_from_taint(s));
            }
            if s.starts_with("NMI backtrace") {
                return Line::Related;
            }
        }
        b'w' => {
            if let Some(r) = s.strip_prefix("watchdog: ") {
                if r.contains("BUG: soft lockup") {
                    return soft_lockup(r).unwrap_or(Line::Other);
                }
                if r.contains("hard LOCKUP") {
                    return hard_lockup(r);
                }
            }
        }
        b'C' => {
            if s == "Call Trace:" || s == "Call trace:" || s.starts_with("Call Trace:") {
                return Line::TraceHeader;
            }
            if let Some(r) = s.strip_prefix("Code: ") {
                return Line::Code(bounded(r, 1024));
            }
            if s == "Code:" {
                return Line::Code(String::new());
            }
            if let Some(r) = s.strip_prefix("CPU: ") {
                return cpu_line(r);
            }
            // 2.6/3.x `CPU 0: Machine Check Exception: ...` (no `mce: `).
            if s.starts_with("CPU ") && s.contains(": Machine Check") {
                return mce(s);
            }
            // The space after the colon is lost in some transcriptions.
            if let Some(r) = s
                .strip_prefix("CIFS VFS:")
                .or_else(|| s.strip_prefix("CIFS: VFS:"))
            {
                return cifs(r.trim_start());
            }
            if s.contains("Unable to handle kernel") {
                return unable_to_handle(s);
            }
        }
        b'P' => {
            if let Some(r) = s.strip_prefix("Pid: ") {
                return pid_comm_line(r);
            }
            if let Some(r) = s.strip_prefix("Process ") {
                return process_line(r);
            }
            if let Some(r) = s.strip_prefix("PC is at ") {
                return Line::Pc {
                    function: symbol_function(r),
                    lr: false,
                };
            }
        }
        b'L' => {
            if let Some(r) = s.strip_prefix("Linux version ") {
                let (v, _) = token(r);
                return Line::LinuxVersion(bounded(v, 128));
            }
            if let Some(r) = s.strip_prefix("LR is at ") {
                return Line::Pc {
                    function: symbol_function(r),
                    lr: true,
                };
            }
            if let Some(r) = s.strip_prefix("LustreError: ") {
                return lustre_error(r);
            }
            if let Some(r) = s.strip_prefix("Lustre: ") {
                return lustre(r);
            }
            if let Some(r) = s
                .strip_prefix("LNet: ")
                .or_else(|| s.strip_prefix("LNetError: "))
            {
                return lnet(r);
            }
        }
        b'T' => {
            if s.starts_with("Tainted:") {
                return Line::Identity(identity_from_taint(s));
            }
            if s.starts_with("Task dump for CPU") {
                return Line::Related;
            }
        }
        b'H' => {
            if let Some(r) = s.strip_prefix("Hardware name: ") {
                return Line::Hardware(bounded(r, 256));
            }
        }
        b'F' => {
            if s.starts_with("Future hung task reports are suppressed") {
                return Line::report(HungLine::Suppressed);
            }
        }
        b'R' | b'E' => {
            if s.starts_with("RIP: ") || s.starts_with("EIP: ") || s.starts_with("EIP is at ") {
                return rip_line(s).map_or(Line::Register(Vec::new()), Line::Rip);
            }
        }
        b's' | b'S' if s.contains("Show Blocked State") || s.contains("Show State") => {
            return Line::report(ListingLine::SysrqShow);
        }
        b'S' => {
            if s.starts_with("Showing all locks held")
                || s.starts_with("Sending NMI")
                || s.starts_with("Stack :")
                || s.starts_with("Stack:")
            {
                return Line::Related;
            }
        }
        b'#' => {
            if let Some(r) = s.strip_prefix("#PF: ") {
                return Line::report(OopsReport::PageFault(bounded(r, 128)));
            }
            // lockdep "#0: ffff... (lock){....}" lines
            if s.get(1..2)
                .is_some_and(|c| c.as_bytes().first().is_some_and(u8::is_ascii_digit))
            {
                return Line::Related;
            }
        }
        b'-' => {
            if s.starts_with("---[ end") {
                return Line::EndTrace;
            }
            if s.starts_with("------------[ cut here ]") {
                return Line::CutHere;
            }
        }
        b'n' => {
            if let Some(r) = s.strip_prefix("nfs: server ") {
                return nfs(r);
            }
            if let Some(r) = s.strip_prefix("nvme ") {
                if let Some(l) = nvme(r) {
                    return l;
                }
            }
        }
        b'o' => {
            if let Some(r) = s.strip_prefix("oom_reaper: reaped process ") {
                return oom_reaped(r).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("oom-kill:") {
                return oom_constraint(r);
            }
        }
        b'm' => {
            if let Some(r) = s.strip_prefix("mce: ") {
                return mce(r);
            }
            if let Some(r) = s.strip_prefix("memory: usage ") {
                let (u, rest) = split_digits(r);
                if let Ok(usage) = u.parse() {
                    let limit = after(rest, "limit ").and_then(|l| lead_u64(l).map(|x| x.0));
                    return Line::report(OomLine::MemcgUsage { usage, limit });
                }
            }
        }
        b'p' => {
            if let Some(r) = s.strip_prefix("potentially unexpected fatal signal ") {
                return fatal_signal(None, r);
            }
            if let Some(r) = s.strip_prefix("pc : ") {
                return Line::Pc {
                    function: symbol_function(r),
                    lr: false,
                };
            }
        }
        b'l' => {
            if let Some(l) = list_corruption(s) {
                return l;
            }
            if let Some(r) = s.strip_prefix("lr : ") {
                return Line::Pc {
                    function: symbol_function(r),
                    lr: true,
                };
            }
        }
        b'e' => {
            if let Some(r) = s.strip_prefix("epc") {
                let r = r.trim_start().strip_prefix(':').unwrap_or(r).trim_start();
                let (_, sym) = token(r);
                return Line::Pc {
                    function: symbol_function(sym),
                    lr: false,
                };
            }
        }
        b'"' => {
            if s.contains("hung_task_timeout_secs") {
                return Line::Related;
            }
        }
        b'[' => {
            // Machine-check records before 4.x carry no `mce: `.
            if let Some(r) = s.strip_prefix("[Hardware Error]: ") {
                return mce(r);
            }
        }
        b'.' => {
            if s == "..." {
                return Line::Related;
            }
        }
        b'(' => {
            // RCU "(detected by N, t=J jiffies, g=G, q=Q)" continuation,
            // printed without the "rcu: " prefix before 4.20 and by some
            // 5.x paths.
            if let Some(l) = rcu_body(s) {
                return l;
            }
        }
        b'0'..=b'9' => {
            // Pre-4.20 per-CPU RCU stall line "\t1-...!: (0 ticks this GP) ...".
            if let Some(l @ Line::Report(Report::Rcu(RcuLine::Cpu(_)))) = rcu_body(s) {
                return l;
            }
        }
        _ => {}
    }
    generic(s)
}

/// Checks that need a substring search rather than a prefix.
fn generic(s: &str) -> Line {
    if let Some(l) = fs_line(s) {
        return l;
    }
    if s.contains(" error, dev ") {
        if let Some(l) = blk_io_error(s) {
            return l;
        }
    }
    if s.contains("Result: hostbyte=") {
        if let Some(l) = scsi_error(s) {
            return l;
        }
    }
    if let Some((head, r)) = s.split_once(": page allocation failure") {
        if r.starts_with([':', '.']) {
            return page_alloc_failure(head, r);
        }
    }
    if let Some((head, r)) = s.split_once(" invoked oom-killer: ") {
        return Line::report(OomLine::Invoked {
            task: bounded(head.trim(), 64),
            gfp: kv(r, "gfp_mask=").map(|v| bounded(v, 128)),
            order: kv(r, "order=").and_then(|v| v.parse().ok()),
            adj: kv(r, "oom_score_adj=").and_then(|v| v.parse().ok()),
        });
    }
    if let Some((head, r)) = s.split_once(": potentially unexpected fatal signal ") {
        return fatal_signal(Some(head), r);
    }
    if s.contains("]: segfault at ") {
        if let Some(h) = segfault_line(s) {
            return Line::report(FaultLine::Segfault(h));
        }
    }
    if (s.contains("] general protection") || s.contains("] trap ")) && s.contains(" ip:") {
        if let Some(h) = trap_line(s) {
            return Line::report(FaultLine::Trap(h));
        }
    }
    if s.contains("hard LOCKUP") {
        return hard_lockup(s);
    }
    if s.contains("Unable to handle kernel") {
        return unable_to_handle(s);
    }
    if s.starts_with("general protection fault")
        || s.starts_with("invalid opcode:")
        || s.starts_with("stack segment:")
        || s.starts_with("double fault:")
    {
        if let Some(o) = oops_line(s) {
            return Line::report(OopsReport::Oops(o));
        }
    }
    if let Some(f) = parse_frame_line(s) {
        return Line::Frame(f);
    }
    if let Some(r) = register_line(s) {
        return r;
    }
    if let Some(t) = task_dump_old(s) {
        return Line::report(ListingLine::TaskDump(t));
    }
    if is_hex_dump(s) {
        return Line::Related;
    }
    Line::Other
}

fn identity_from_taint(s: &str) -> Identity {
    let mut id = Identity::default();
    if let Some((t, rel)) = find_taint(s) {
        id.tainted = Some(t);
        id.release = rel;
    }
    id
}

/// `CPU: N [UID: U] PID: P Comm: COMM [Kdump: loaded] Tainted: ... REL #N`
/// and the 3.x ARM `CPU: 0    Tainted: G O  (3.7.1 #1)`.
fn cpu_line(r: &str) -> Line {
    let Some((cpu, x)) = lead_u32(r) else {
        return Line::Other;
    };
    let mut id = identity_from_taint(x);
    id.cpu = Some(cpu);
    if let Some(p) = after(x, "PID: ") {
        id.pid = lead_u32(p).map(|v| v.0);
    }
    if let Some(c) = after(x, "Comm: ") {
        let end = [" Kdump:", " Tainted:", " Not tainted", " ("]
            .iter()
            .filter_map(|m| c.find(m))
            .min()
            .unwrap_or(c.len());
        id.task = c.get(..end).map(|t| bounded(t.trim_end(), 64));
    }
    Line::Identity(id)
}

/// `Pid: 14711, comm:      serial-starter.` (ARM 3.x, Lustre) or 2.6-era
/// `Pid: 1, comm: swapper Not tainted 2.6.32 #1 HW`.
fn pid_comm_line(r: &str) -> Line {
    let Some((pid, x)) = lead_u32(r) else {
        return Line::Other;
    };
    let mut id = identity_from_taint(x);
    id.pid = Some(pid);
    if let Some(c) = after(x, "comm:") {
        let c = c.trim_start();
        let end = [" Tainted:", " Not tainted"]
            .iter()
            .filter_map(|m| c.find(m))
            .min()
            .unwrap_or(c.len());
        id.task = c.get(..end).map(|t| bounded(t.trim_end(), 64));
    }
    Line::Identity(id)
}

/// `Process swapper (pid: 1, threadinfo=..., task=...)` (ARM/MIPS oops).
fn process_line(r: &str) -> Line {
    let Some((comm, x)) = r.split_once(" (pid: ") else {
        return Line::Other;
    };
    let mut id = Identity {
        task: Some(bounded(comm, 64)),
        ..Identity::default()
    };
    id.pid = lead_u32(x).map(|v| v.0);
    Line::Identity(id)
}

fn symbol_function(s: &str) -> Option<String> {
    let t = s.trim();
    if t.starts_with("0x") || t.starts_with("[<") || t.is_empty() || t.starts_with('(') {
        return None;
    }
    let (sym, _) = token(t);
    let f = sym.split('+').next().unwrap_or(sym);
    let ok = !f.is_empty()
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$'))
        && !is_hex(f);
    ok.then(|| bounded(f, 256))
}

/// `RIP: 0010:func+0x1a/0x30 [mod]`, `RIP: 0033:0x7f0291cb7196`,
/// 3.x `RIP: 0010:[<ffffffff813a9e68>]  [<ffffffff813a9e68>] func+0x1c/0x27`,
/// pre-4.x `IP: [<ffffffff813a9e68>] func+0x1c/0x27`, 32-bit `EIP: ...`.
fn rip_line(s: &str) -> Option<RipLine> {
    let bits32 = s.starts_with("EIP");
    let (_, r) = s.split_once(':')?;
    let r = r.trim();
    let r = r.strip_prefix("is at ").unwrap_or(r);
    let (seg, r2) = match r.split_once(':') {
        Some((seg, rest)) if seg.len() == 4 && is_hex(seg) => (Some(seg), rest),
        _ => (None, r),
    };
    let user = seg.is_some_and(|s| s.ends_with('3'));
    let mut t = r2.trim();
    let mut address = None;
    while let Some(x) = t.strip_prefix("[<") {
        let (a, rest) = x.split_once(">]")?;
        address = parse_hex_u64(a);
        t = rest.trim_start();
    }
    let (sym, tail) = token(t);
    let sym = sym.split_once(" EFLAGS").map_or(sym, |x| x.0);
    if sym.is_empty() {
        return None;
    }
    if let Some(a) = sym.strip_prefix("0x") {
        return Some(RipLine {
            rip: bounded(sym, 32),
            function: None,
            module: None,
            address: parse_hex_u64(a),
            user,
            bits32,
        });
    }
    let function = symbol_function(sym);
    let module = tail
        .strip_prefix('[')
        .and_then(|m| m.split_once(']'))
        .map(|m| bounded(m.0.split_whitespace().next().unwrap_or(""), 64))
        .filter(|m| !m.is_empty());
    Some(RipLine {
        rip: bounded(sym, 256),
        function,
        module,
        address,
        user,
        bits32,
    })
}

fn modules(r: &str) -> Vec<String> {
    r.split_whitespace()
        .take(1024)
        .map(|m| bounded(m.trim_end_matches('$'), 64))
        .filter(|m| !m.is_empty())
        .collect()
}

/// Register dumps of the supported architectures: `RAX: ...`, `R13: ...`,
/// `FS:  ...`, ARM `r7 : ..`, ` r10:00000000 r9:...`, MIPS `$ 0   : ...`,
/// `Hi    : ...`, OpenRISC `GPR00: ...`, arm64 `x29: ...`, `Flags: nzCv`,
/// `Exception stack(0x.. to 0x..)`, and hex dumps `dfa0: 0000 ...`.
fn register_line(s: &str) -> Option<Line> {
    if s.starts_with("Exception stack(") || s.starts_with("Flags: ") || s.starts_with("Control: ") {
        return Some(Line::Register(Vec::new()));
    }
    let mut regs = Vec::new();
    let mut rest = s;
    while !rest.is_empty() && regs.len() < 8 {
        let Some((key, val)) = rest.split_once(':') else {
            break;
        };
        let key = key.trim();
        let key_ok = !key.is_empty()
            && key.len() <= 7
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b' ' | b'_'));
        let (v, r) = token(val.trim_start());
        let v = v.trim_start_matches("[<").trim_end_matches(">]");
        let core = v.split('(').next().unwrap_or("");
        let vhex = !core.is_empty() && core.split(':').all(is_hex);
        if !key_ok || !vhex {
            break;
        }
        regs.push((bounded(key, 16), bounded(v, 40)));
        // Hex dumps carry several words per key ("dfa0: 0000 0000 ...").
        let mut r = r;
        loop {
            let (tok, r2) = token(r);
            if tok.is_empty() || tok.ends_with(':') || !is_hex(tok) {
                break;
            }
            r = r2;
        }
        rest = r.trim_start();
    }
    if regs.is_empty() {
        return None;
    }
    Some(Line::Register(regs))
}

fn is_hex_dump(s: &str) -> bool {
    let mut n = 0;
    for t in s.split_whitespace() {
        if !(is_hex(t) && t.len() >= 4 || t == "...") {
            return false;
        }
        n += 1;
    }
    n >= 1
}

/// Decode a signal mask into names, or nothing if it is not hex.
pub(crate) fn mask_names(hex: &str) -> Vec<String> {
    decode::decode_signal_mask(hex).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hung() {
        assert_eq!(
            classify("INFO: task bch_copygc[dm-7:1942 blocked for more than 122 seconds."),
            Line::report(HungLine::Header {
                task: "bch_copygc[dm-7".into(),
                pid: 1942,
                secs: 122
            })
        );
        match classify("INFO: task systemd-shutdow:1 is blocked on a mutex likely owned by task kworker/4:1:16648.") {
            Line::Report(Report::HungTask(HungLine::Blocker { pid, blocker })) => {
                assert_eq!(pid, 1);
                assert_eq!(blocker.kind, "mutex");
                assert_eq!(blocker.owner_task.as_deref(), Some("kworker/4:1"));
                assert_eq!(blocker.owner_pid, Some(16648));
            }
            other => panic!("{other:?}"),
        }
        match classify("INFO: task NvmlTaskRunner:11290 <reader> blocked on an rw-semaphore likely owned by task VLLM::EngineCor:46249 <writer>") {
            Line::Report(Report::HungTask(HungLine::Blocker { blocker, .. })) => {
                assert_eq!(blocker.kind, "rw-semaphore");
                assert_eq!(blocker.owner_pid, Some(46249));
                assert_eq!(blocker.owner_role.as_deref(), Some("writer"));
                assert_eq!(blocker.waiter_role.as_deref(), Some("reader"));
            }
            other => panic!("{other:?}"),
        }
        match classify(
            "INFO: task a:1 is blocked on a semaphore, but the last holder is not found.",
        ) {
            Line::Report(Report::HungTask(HungLine::Blocker { blocker, .. })) => {
                assert_eq!(blocker.kind, "semaphore");
                assert!(blocker.owner_not_found);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn traps() {
        match classify("traps: srs-hybrid-2[1388834] general protection fault ip:5f14ab3aed82 sp:70845c5c7f20 error:0 in srs[57ad82,5f14ab129000+643000]") {
            Line::Report(Report::Faults(FaultLine::Trap(t))) => {
                assert_eq!(t.task, "srs-hybrid-2");
                let m = t.mapping.expect("mapping");
                assert_eq!(m.lib_offset.as_deref(), Some("57ad82"));
                assert_eq!(m.lib_ip_offset.as_deref(), Some("285d82"));
            }
            other => panic!("{other:?}"),
        }
        match classify(
            "a.out[1] trap invalid opcode ip:4005d6 sp:7ffd error:0 in a.out[400000+1000]",
        ) {
            Line::Report(Report::Faults(FaultLine::Trap(t))) => {
                assert_eq!(t.text, "invalid opcode")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oopses() {
        match classify("Oops: 0000 [#1] PREEMPT SMP PTI") {
            Line::Report(Report::Oops(OopsReport::Oops(o))) => {
                assert_eq!(o.code.as_deref(), Some("0000"));
                assert_eq!(o.count, Some(1));
            }
            other => panic!("{other:?}"),
        }
        match classify("Oops[#1]:") {
            Line::Report(Report::Oops(OopsReport::Oops(o))) => {
                assert_eq!((o.code, o.count), (None, Some(1)))
            }
            other => panic!("{other:?}"),
        }
        match classify("general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN") {
            Line::Report(Report::Oops(OopsReport::Oops(o))) => {
                assert_eq!(o.text.as_deref(), Some("general protection fault"));
                assert_eq!(o.address.as_deref(), Some("dffffc0000000000"));
            }
            other => panic!("{other:?}"),
        }
    }
}
