//! Recognising one kernel message (prefix already stripped) and pulling out
//! its fields.  Pure functions: no parser state.

use crate::decode::{self, find_taint};
use crate::event::{
    Blocker, CifsError, CifsServer, LnetTimeout, LustreConnection, LustreError, LustreRpc, Mapping,
    NfsServer, OomKill, OomReaped, RcuStall, Warning,
};
use crate::frame::{parse_frame_line, FrameLine};
use crate::util::{
    after, bounded, is_hex, kv, lead_u32, lead_u64, parse_hex_u64, split_comm_bracket_pid,
    split_comm_pid, split_digits, split_hex, token,
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
pub(crate) struct TrapHdr {
    pub task: String,
    pub pid: u32,
    pub text: String,
    pub ip: String,
    pub sp: String,
    pub error: String,
    pub mapping: Option<Mapping>,
    /// Text glued after the report (a fused following log line).
    pub rest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegHdr {
    pub task: String,
    pub pid: u32,
    pub fault_addr: String,
    pub ip: String,
    pub sp: String,
    pub error: String,
    pub mapping: Option<Mapping>,
    pub cpu: Option<u32>,
    pub core: Option<u32>,
    pub socket: Option<u32>,
    pub rest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OopsLine {
    pub code: Option<String>,
    pub count: Option<u32>,
    pub flags: Option<String>,
    pub text: Option<String>,
    pub address: Option<String>,
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

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskDumpLine {
    pub task: String,
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub state: Option<String>,
}

/// What a kernel message line is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    Blank,
    HungTask {
        task: String,
        pid: u32,
        secs: u64,
    },
    Blocker {
        task: String,
        pid: u32,
        blocker: Blocker,
    },
    HungSuppressed,
    BlockedByCoredump,
    Trap(TrapHdr),
    Segfault(SegHdr),
    FatalSignal {
        task: Option<String>,
        pid: Option<u32>,
        exe: Option<String>,
        signal: u32,
    },
    OopsBug {
        bug: String,
        address: Option<String>,
    },
    KernelBug(String),
    Oops(OopsLine),
    PageFault(String),
    Warning(Warning, Identity),
    SoftLockup {
        cpu: u32,
        secs: u64,
        task: String,
        pid: Option<u32>,
    },
    HardLockup {
        cpu: Option<u32>,
    },
    Panic(String),
    Rcu(RcuStall),
    RcuCpu(u32),
    RcuDetectedBy {
        by: Option<u32>,
        jiffies: Option<u64>,
        g: Option<String>,
    },
    RcuTasks(Vec<u32>),
    RcuStarved(u64),
    OomInvoked {
        task: String,
        gfp: Option<String>,
        order: Option<u32>,
        adj: Option<i64>,
    },
    OomKill {
        pid: u32,
        task: String,
        kill: OomKill,
        old_select: bool,
    },
    OomReaped {
        pid: u32,
        task: String,
        r: OomReaped,
    },
    OomConstraint {
        constraint: Option<String>,
        memcg: Option<String>,
        pid: Option<u32>,
        task: Option<String>,
    },
    MemcgUsage {
        usage: u64,
        limit: Option<u64>,
    },
    NfsNotResponding(NfsServer),
    NfsOk(NfsServer),
    LustreConnLost(LustreConnection),
    LustreConnRestored(LustreConnection),
    SysrqShow,
    LustreRpcFailed {
        pid: Option<u32>,
        rpc: LustreRpc,
    },
    LustreRpcTimeout {
        pid: Option<u32>,
        rpc: LustreRpc,
    },
    LustreError {
        pid: Option<u32>,
        e: LustreError,
    },
    LustreThread {
        pid: u32,
        secs: f64,
    },
    LnetTimeout {
        pid: Option<u32>,
        t: LnetTimeout,
    },
    CifsUnresponsive(CifsServer),
    CifsError(CifsError),
    TraceHeader,
    Frame(FrameLine),
    Code(String),
    Identity(Identity),
    Hardware(String),
    Modules(Vec<String>),
    Workqueue(String),
    TaskDump(TaskDumpLine),
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
                return oops_line(r).map_or(Line::Other, Line::Oops);
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
                return trap_line(r).map_or(Line::Other, Line::Trap);
            }
            if let Some(r) = s.strip_prefix("task:") {
                return task_dump_new(r).map_or(Line::Other, Line::TaskDump);
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
                return Line::BlockedByCoredump;
            }
            if s == "Backtrace:" {
                return Line::TraceHeader;
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
                return Line::OopsBug {
                    bug: bounded(&format!("kernel BUG at {r}"), 256),
                    address: None,
                };
            }
        }
        b'O' => {
            if s.starts_with("Oops") {
                return oops_line(s).map_or(Line::Other, Line::Oops);
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
                return Line::Panic(bounded(r.trim(), 256));
            }
            if let Some(r) = s.strip_prefix("Killed process ") {
                return oom_killed_process(r, false).unwrap_or(Line::Other);
            }
            if let Some(r) = s.strip_prefix("Kernel panic - not syncing") {
                return Line::Panic(bounded(r.trim_start_matches(':').trim(), 256));
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
            if let Some(r) = s
                .strip_prefix("CIFS VFS: ")
                .or_else(|| s.strip_prefix("CIFS: VFS: "))
            {
                return cifs(r);
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
                return Line::HungSuppressed;
            }
        }
        b'R' | b'E' => {
            if s.starts_with("RIP: ") || s.starts_with("EIP: ") || s.starts_with("EIP is at ") {
                return rip_line(s).map_or(Line::Register(Vec::new()), Line::Rip);
            }
        }
        b's' | b'S' if s.contains("Show Blocked State") || s.contains("Show State") => {
            return Line::SysrqShow;
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
                return Line::PageFault(bounded(r, 128));
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
            if let Some(r) = s.strip_prefix("memory: usage ") {
                let (u, rest) = split_digits(r);
                if let Ok(usage) = u.parse() {
                    let limit = after(rest, "limit ").and_then(|l| lead_u64(l).map(|x| x.0));
                    return Line::MemcgUsage { usage, limit };
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
            if let Some(l @ Line::RcuCpu(_)) = rcu_body(s) {
                return l;
            }
        }
        _ => {}
    }
    generic(s)
}

/// Checks that need a substring search rather than a prefix.
fn generic(s: &str) -> Line {
    if let Some((head, r)) = s.split_once(" invoked oom-killer: ") {
        return Line::OomInvoked {
            task: bounded(head.trim(), 64),
            gfp: kv(r, "gfp_mask=").map(|v| bounded(v, 128)),
            order: kv(r, "order=").and_then(|v| v.parse().ok()),
            adj: kv(r, "oom_score_adj=").and_then(|v| v.parse().ok()),
        };
    }
    if let Some((head, r)) = s.split_once(": potentially unexpected fatal signal ") {
        return fatal_signal(Some(head), r);
    }
    if s.contains("]: segfault at ") {
        if let Some(h) = segfault_line(s) {
            return Line::Segfault(h);
        }
    }
    if (s.contains("] general protection") || s.contains("] trap ")) && s.contains(" ip:") {
        if let Some(h) = trap_line(s) {
            return Line::Trap(h);
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
            return Line::Oops(o);
        }
    }
    if let Some(f) = parse_frame_line(s) {
        return Line::Frame(f);
    }
    if let Some(r) = register_line(s) {
        return r;
    }
    if let Some(t) = task_dump_old(s) {
        return Line::TaskDump(t);
    }
    if is_hex_dump(s) {
        return Line::Related;
    }
    Line::Other
}

fn hung_or_blocker(r: &str) -> Option<Line> {
    if let Some((who, rest)) = r.split_once(" blocked for more than ") {
        let (task, pid) = split_comm_pid(who)?;
        let (secs, _) = lead_u64(rest)?;
        return Some(Line::HungTask {
            task: bounded(task, 64),
            pid,
            secs,
        });
    }
    // Blocker lines (kernel/hung_task.c debug_show_blocker, 6.14+):
    //   COMM:PID is blocked on a mutex likely owned by task COMM:PID.
    //   COMM:PID is blocked on a mutex, but the owner is not found.
    //   COMM:PID blocked on a semaphore likely last held by task COMM:PID
    //   COMM:PID is blocked on a semaphore, but the last holder is not found.
    //   COMM:PID <reader> blocked on an rw-semaphore likely owned by task COMM:PID <writer>
    let (who, rest) = r
        .split_once(" is blocked on ")
        .or_else(|| r.split_once(" blocked on "))?;
    let mut who = who.trim();
    let mut waiter_role = None;
    if let Some((w, role)) = who.rsplit_once(" <") {
        waiter_role = role.strip_suffix('>').map(|x| x.to_string());
        who = w;
    }
    let (task, pid) = split_comm_pid(who)?;
    let rest = rest.trim_start_matches("a ").trim_start_matches("an ");
    let (kind_tok, tail) = rest
        .split_once([' ', ','])
        .unwrap_or((rest.trim_end_matches('.'), ""));
    let kind = match kind_tok {
        "mutex" => "mutex",
        "semaphore" => "semaphore",
        "rw-semaphore" | "rwsem" => "rw-semaphore",
        other => other,
    };
    let mut blocker = Blocker {
        kind: bounded(kind, 32),
        owner_task: None,
        owner_pid: None,
        owner_not_found: tail.contains("not found"),
        waiter_role,
        owner_role: None,
    };
    if let Some(owner) = after(tail, " by task ").or_else(|| tail.strip_prefix("by task ")) {
        let mut owner = owner.trim().trim_end_matches('.');
        if let Some((o, role)) = owner.rsplit_once(" <") {
            blocker.owner_role = role.strip_suffix('>').map(|x| x.to_string());
            owner = o;
        }
        if let Some((t, p)) = split_comm_pid(owner) {
            blocker.owner_task = Some(bounded(t, 64));
            blocker.owner_pid = Some(p);
        }
    }
    Some(Line::Blocker {
        task: bounded(task, 64),
        pid,
        blocker,
    })
}

/// `in LIB[BASE+SIZE]` or `in LIB[OFFSET,BASE+SIZE]`; returns the mapping
/// and whatever follows the closing bracket.
fn mapping(s: &str, ip: &str) -> Option<(Mapping, String)> {
    let mut search_from = 0usize;
    // A file name rarely holds brackets; looking at a bounded number of
    // candidates keeps a hostile line of '[' from costing quadratic time.
    let mut tries = 0;
    while let Some(rel) = s.get(search_from..).and_then(|t| t.find('[')) {
        tries += 1;
        if tries > 8 {
            break;
        }
        let open = search_from + rel;
        let name = s.get(..open)?;
        let inner_and_rest = s.get(open + 1..)?;
        if let Some((inner, rest)) = inner_and_rest.split_once(']') {
            let (off, range) = match inner.split_once(',') {
                Some((o, r)) => (Some(o), r),
                None => (None, inner),
            };
            if let Some((base, size)) = range.split_once('+') {
                if is_hex(base) && is_hex(size) && off.is_none_or(is_hex) {
                    let ip_off = match (parse_hex_u64(ip), parse_hex_u64(base)) {
                        (Some(i), Some(b)) if i >= b => Some(format!("{:x}", i - b)),
                        _ => None,
                    };
                    return Some((
                        Mapping {
                            lib: bounded(name.trim(), 256),
                            lib_base: base.to_string(),
                            lib_size: size.to_string(),
                            lib_offset: off.map(|o| o.to_string()),
                            lib_ip_offset: ip_off,
                        },
                        rest.to_string(),
                    ));
                }
            }
        }
        search_from = open + 1;
    }
    None
}

/// What follows a trap/segfault report on the same line: `likely on CPU`
/// is part of it; anything else is a fused next line.
fn trailing(rest: &str) -> (Option<u32>, Option<u32>, Option<u32>, Option<String>) {
    let r = rest.trim();
    if let Some(x) = r.strip_prefix("likely on CPU ") {
        let (cpu, x) = match lead_u32(x) {
            Some((c, x)) => (Some(c), x),
            None => (None, x),
        };
        let core = after(x, "core ").and_then(|c| lead_u32(c).map(|v| v.0));
        let socket = after(x, "socket ").and_then(|c| lead_u32(c).map(|v| v.0));
        let tail = x.split_once(')').map(|(_, t)| t.trim()).unwrap_or("");
        let fused = (!tail.is_empty()).then(|| bounded(tail, 65_536));
        return (cpu, core, socket, fused);
    }
    let fused = (!r.is_empty()).then(|| bounded(r, 65_536));
    (None, None, None, fused)
}

fn trap_line(s: &str) -> Option<TrapHdr> {
    // COMM[PID] TEXT ip:IP sp:SP error:ERR[ in LIB[..]]
    let (head, tail) = s.split_once(" ip:")?;
    let close = head.find("] ")?;
    let who = head.get(..=close)?;
    let (task, pid) = split_comm_bracket_pid(who)?;
    let text = head.get(close + 2..)?.trim();
    let text = text.strip_prefix("trap ").unwrap_or(text);
    let (ip, t) = split_hex(tail);
    let t = t.trim_start().strip_prefix("sp:")?;
    let (sp, t) = split_hex(t);
    let t = t.trim_start().strip_prefix("error:")?;
    let (err, t) = split_hex(t);
    let (mapping, rest) = match t.trim_start().strip_prefix("in ") {
        Some(m) => match mapping(m, ip) {
            Some((mp, r)) => (Some(mp), r),
            None => (None, String::new()),
        },
        None => (None, t.to_string()),
    };
    let (_, _, _, fused) = trailing(&rest);
    Some(TrapHdr {
        task: bounded(task.trim(), 64),
        pid,
        text: bounded(text, 64),
        ip: ip.to_string(),
        sp: sp.to_string(),
        error: err.to_string(),
        mapping,
        rest: fused,
    })
}

fn segfault_line(s: &str) -> Option<SegHdr> {
    let (who, r) = s.split_once(": segfault at ")?;
    let who = who.rsplit_once(' ').map_or(who, |(_, w)| w);
    let (task, pid) = split_comm_bracket_pid(who)
        .or_else(|| split_comm_bracket_pid(s.split_once(": segfault at ")?.0))?;
    let (addr, t) = split_hex(r);
    // 2.6.2x x86-64 printed "rip"/"rsp" instead of "ip"/"sp".
    let t = t.trim_start();
    let t = t.strip_prefix("ip ").or_else(|| t.strip_prefix("rip "))?;
    let (ip, t) = split_hex(t.trim_start());
    let t = t.trim_start();
    let t = t.strip_prefix("sp ").or_else(|| t.strip_prefix("rsp "))?;
    let (sp, t) = split_hex(t.trim_start());
    let t = t.trim_start().strip_prefix("error ")?;
    let (err, t) = split_hex(t.trim_start());
    let (mapping, rest) = match t.trim_start().strip_prefix("in ") {
        Some(m) => match mapping(m, ip) {
            Some((mp, r)) => (Some(mp), r),
            None => (None, String::new()),
        },
        None => (None, t.to_string()),
    };
    let (cpu, core, socket, fused) = trailing(&rest);
    // The task name can itself hold a space ("Web Content"), so prefer the
    // whole head when it parses.
    let full_who = s.split_once(": segfault at ").map(|x| x.0).unwrap_or(who);
    let (task, pid) = split_comm_bracket_pid(full_who).unwrap_or((task, pid));
    Some(SegHdr {
        task: bounded(task.trim(), 64),
        pid,
        fault_addr: addr.to_string(),
        ip: ip.to_string(),
        sp: sp.to_string(),
        error: err.to_string(),
        mapping,
        cpu,
        core,
        socket,
        rest: fused,
    })
}

fn fatal_signal(head: Option<&str>, r: &str) -> Line {
    let Some((signal, _)) = lead_u32(r) else {
        return Line::Other;
    };
    let (mut task, mut pid, mut exe) = (None, None, None);
    if let Some(h) = head {
        // 3.x-5.x: "comm/pid: potentially ..."; 6.x: "/path/exe: comm: potentially ..."
        if let Some((path, comm)) = h.rsplit_once(": ") {
            exe = Some(bounded(path, 256));
            task = Some(bounded(comm, 64));
        } else if let Some((comm, p)) = h.rsplit_once('/') {
            if let Ok(v) = p.parse() {
                task = Some(bounded(comm, 64));
                pid = Some(v);
            } else {
                task = Some(bounded(h, 64));
            }
        } else {
            task = Some(bounded(h, 64));
        }
    }
    Line::FatalSignal {
        task,
        pid,
        exe,
        signal,
    }
}

fn split_address(text: &str) -> (String, Option<String>) {
    for pat in [
        ", address: ",
        " for address: ",
        " at virtual address ",
        " at ",
    ] {
        if let Some((bug, a)) = text.split_once(pat) {
            let (addr, _) = split_hex(crate::util::strip_0x(a.trim()));
            if !addr.is_empty() {
                return (bounded(bug.trim(), 256), Some(addr.to_string()));
            }
        }
    }
    (bounded(text.trim(), 256), None)
}

fn unable_to_handle(s: &str) -> Line {
    // MIPS prefixes "CPU 0 "; ARM/arm64 print it bare.
    let t = match s.find("Unable to handle") {
        Some(i) => s.get(i..).unwrap_or(s),
        None => s,
    };
    let t = t.split(", epc ==").next().unwrap_or(t);
    let (bug, address) = split_address(t);
    Line::OopsBug { bug, address }
}

fn bug_line(r: &str) -> Line {
    // x86 page faults (arch/x86/mm/fault.c): before 5.1 "unable to handle
    // kernel NULL pointer dereference at ADDR", since then "kernel NULL
    // pointer dereference, address: ADDR" / "unable to handle page fault
    // for address: ADDR".
    if r.starts_with("unable to handle")
        || r.starts_with("kernel NULL pointer")
        || r.starts_with("Unable to handle")
        || r.starts_with("kernel paging request")
    {
        let (bug, address) = split_address(r);
        return Line::OopsBug { bug, address };
    }
    Line::KernelBug(bounded(r.trim(), 256))
}

/// `Oops: 0000 [#1] PREEMPT SMP PTI`, `Internal error: Oops: 17 [#2] ARM`,
/// `Oops[#1]:` (MIPS), `general protection fault, probably for
/// non-canonical address 0x..: 0000 [#1] SMP`, 6.x `Oops: Oops: 0002 [#1]`.
fn oops_line(s: &str) -> Option<OopsLine> {
    let (before, after_hash) = s.split_once("[#")?;
    let (count, rest) = lead_u32(after_hash)?;
    let rest = rest.strip_prefix(']')?;
    let flags = rest.trim().trim_start_matches(':').trim();
    let mut b = before.trim();
    while let Some(x) = b.strip_prefix("Oops:") {
        b = x.trim();
    }
    let b = b.strip_prefix("Oops").unwrap_or(b).trim();
    let (text, code) = match b.rsplit_once(' ') {
        Some((t, c)) if is_hex(c.trim_end_matches(':')) => {
            (t.trim().trim_end_matches(':'), Some(c))
        }
        _ if is_hex(b.trim_end_matches(':')) => ("", Some(b)),
        _ => (b.trim_end_matches(':'), None),
    };
    let text = text.trim();
    let (text, address) = if text.is_empty() {
        (None, None)
    } else {
        let (t, a) = match text.split_once(", probably for non-canonical address ") {
            Some((t, a)) => (
                t,
                Some(crate::util::strip_0x(a.trim_end_matches(':')).to_string()),
            ),
            None => (text, None),
        };
        (Some(bounded(t, 256)), a)
    };
    Some(OopsLine {
        code: code.map(|c| c.trim_end_matches(':').to_string()),
        count: Some(count),
        flags: (!flags.is_empty()).then(|| bounded(flags, 128)),
        text,
        address,
    })
}

fn warning(r: &str) -> Option<Line> {
    let mut id = Identity::default();
    let mut w = Warning::default();
    let mut rest = r;
    if let Some(x) = rest.strip_prefix("CPU: ") {
        let (cpu, x) = lead_u32(x)?;
        id.cpu = Some(cpu);
        let x = x.trim_start();
        let x = match x.strip_prefix("UID: ") {
            Some(u) => lead_u32(u)?.1.trim_start(),
            None => x,
        };
        let x = x.strip_prefix("PID: ")?;
        let (pid, x) = lead_u32(x)?;
        id.pid = Some(pid);
        rest = x.trim_start();
    }
    let at = rest.strip_prefix("at ")?;
    let (loc, tail) = token(at);
    let (file, line) = loc.rsplit_once(':')?;
    w.file = Some(bounded(file, 512));
    w.line = line.parse().ok();
    let (sym, tail2) = token(tail);
    if let Some(fl) = parse_frame_line(&format!("{sym} {tail2}"))
        .and_then(|f| f.frame)
        .or_else(|| parse_frame_line(sym).and_then(|f| f.frame))
    {
        w.function = Some(fl.function);
        w.offset = fl.offset;
        w.size = fl.size;
        w.module = fl.module;
    } else {
        let f = sym.split('+').next().unwrap_or(sym).trim_end_matches("()");
        if !f.is_empty() {
            w.function = Some(bounded(f, 256));
        }
        if let Some(m) = tail2.strip_prefix('[').and_then(|m| m.split_once(']')) {
            w.module = Some(bounded(m.0, 64));
        }
    }
    Some(Line::Warning(w, id))
}

fn soft_lockup(s: &str) -> Option<Line> {
    // "BUG: soft lockup - CPU#0 stuck for 186s! [kworker/u3:3:2073]"
    let r = after(s, "CPU#")?;
    let (cpu, r) = lead_u32(r)?;
    let r = after(r, "stuck for ")?;
    let (secs, r) = lead_u64(r)?;
    let inner = after(r, "[")?;
    let inner = inner.rsplit_once(']').map_or(inner, |x| x.0);
    let (task, pid) = match split_comm_pid(inner) {
        Some((t, p)) => (t, Some(p)),
        None => (inner, None),
    };
    Some(Line::SoftLockup {
        cpu,
        secs,
        task: bounded(task, 64),
        pid,
    })
}

fn hard_lockup(s: &str) -> Line {
    let cpu = after(s, "LOCKUP on cpu ").and_then(|r| lead_u32(r).map(|x| x.0));
    Line::HardLockup { cpu }
}

fn rcu_header(r: &str) -> Option<Line> {
    // r: "rcu_sched detected stalls on CPUs/tasks:[ { 2} (detected by 7, t=15002 jiffies)]"
    //    "rcu_sched_state detected stall on CPU 0 (t=105060 jiffies)"
    //    "rcu_sched self-detected stall on CPU[ { 3}  (t=5250 jiffies g=.. c=.. q=..)]"
    //    "rcu_preempt detected expedited stalls on CPUs/tasks: { 3-... } 21009 jiffies s: .."
    let (flavor, rest) = token(r);
    let mut st = RcuStall {
        flavor: bounded(flavor, 32),
        ..RcuStall::default()
    };
    st.expedited = rest.contains("expedited");
    let self_detected =
        rest.starts_with("self-detected") || rest.starts_with("detected stall on CPU");
    let braces = after(rest, "{")
        .and_then(|b| b.split_once('}'))
        .map(|x| x.0);
    let cpus: Vec<u32> = braces
        .map(|b| {
            b.split([' ', ','])
                .filter_map(|t| split_digits(t.trim()).0.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if self_detected {
        st.self_detected_cpu = after(rest, "on CPU ")
            .and_then(|c| lead_u32(c.trim_start()).map(|x| x.0))
            .or_else(|| cpus.first().copied());
    } else {
        st.stalled_cpus = Some(cpus);
    }
    if let Some(d) = after(rest, "detected by ") {
        st.detected_by = lead_u32(d).map(|x| x.0);
    }
    if let Some(t) = after(rest, "t=") {
        st.jiffies = lead_u64(t).map(|x| x.0);
    } else if st.expedited {
        if let Some(b) = after(rest, "}") {
            st.jiffies = lead_u64(b.trim_start()).map(|x| x.0);
        }
    }
    if let Some(g) = after(rest, "g=") {
        let g = g.split([',', ' ', ')']).next().unwrap_or("");
        st.grace_period = (!g.is_empty()).then(|| bounded(g, 32));
    }
    Some(Line::Rcu(st))
}

/// Lines starting `rcu: ` (4.20+), or the same content without it.
fn rcu_line(r: &str) -> Line {
    if let Some(x) = r.strip_prefix("INFO: ") {
        if let Some(l) = rcu_header(x) {
            return l;
        }
    }
    rcu_body(r).unwrap_or(Line::Related)
}

fn rcu_body(r: &str) -> Option<Line> {
    let r = r.trim();
    if let Some(x) = r.strip_prefix('(') {
        if x.starts_with("detected by") || x.starts_with("t=") {
            let by = after(x, "detected by ").and_then(|d| lead_u32(d).map(|v| v.0));
            let jiffies = after(x, "t=").and_then(|t| lead_u64(t).map(|v| v.0));
            let g = after(x, "g=")
                .map(|g| g.split([',', ' ', ')']).next().unwrap_or(""))
                .filter(|g| !g.is_empty())
                .map(|g| bounded(g, 32));
            return Some(Line::RcuDetectedBy { by, jiffies, g });
        }
    }
    if let Some(x) = r.strip_prefix("Tasks blocked on") {
        let pids = after(x, "):")
            .map(|p| {
                p.split_whitespace()
                    .filter_map(|t| t.strip_prefix('P').and_then(|n| n.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        return Some(Line::RcuTasks(pids));
    }
    if let Some(x) = after(r, "kthread starved for ") {
        return lead_u64(x).map(|v| Line::RcuStarved(v.0));
    }
    // Per-CPU line "  9-...!: (0 ticks this GP) idle=..." / "3-....: (5249 ticks ..."
    let (d, x) = split_digits(r);
    if !d.is_empty() {
        if let Some(x) = x.strip_prefix('-') {
            let flags: &str = x.split(':').next().unwrap_or("");
            if flags.len() <= 8 && x.contains(": (") {
                return d.parse().ok().map(Line::RcuCpu);
            }
        }
    }
    None
}

fn oom_kill(r: &str, memcg: bool) -> Option<Line> {
    // "Killed process PID (COMM) ..." (4.19+) or "Kill process PID (COMM) score N or sacrifice child"
    if let Some(x) = r.strip_prefix("Killed process ") {
        return oom_killed_process(x, memcg);
    }
    let x = r.strip_prefix("Kill process ")?;
    let (pid, x) = lead_u32(x)?;
    let x = x.trim_start().strip_prefix('(')?;
    let (comm, tail) = x.rsplit_once(") score ").or_else(|| x.rsplit_once(')'))?;
    let kill = OomKill {
        oom_score: lead_u64(tail.trim_start()).and_then(|v| i64::try_from(v.0).ok()),
        memcg,
        ..OomKill::default()
    };
    Some(Line::OomKill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: true,
    })
}

fn kb(s: &str, key: &str) -> Option<u64> {
    kv(s, key).and_then(|v| v.trim_end_matches("kB").trim_end_matches(',').parse().ok())
}

/// The comm inside `(COMM)` where COMM may itself contain parentheses:
/// the closing parenthesis is the one followed by one of `ends`.
fn paren_comm<'a>(x: &'a str, ends: &[&str]) -> Option<(&'a str, &'a str)> {
    let x = x.trim_start().strip_prefix('(')?;
    for e in ends {
        if let Some(i) = x.find(e) {
            let comm = x.get(..i)?;
            let tail = x.get(i + 1..)?;
            return Some((comm, tail));
        }
    }
    let i = x.rfind(')')?;
    Some((x.get(..i)?, x.get(i + 1..)?))
}

fn oom_killed_process(x: &str, memcg: bool) -> Option<Line> {
    let (pid, x) = lead_u32(x)?;
    // RHEL 6/7 print "Killed process 1234, UID 0, (comm) total-vm:...".
    let mut uid_before = None;
    let mut x = x;
    if let Some(r) = x.strip_prefix(", UID ") {
        let (u, r) = lead_u32(r)?;
        uid_before = Some(u);
        x = r.trim_start_matches(',').trim_start();
    }
    let (comm, tail) = paren_comm(x, &[") total-vm", "), UID", ") score", "),", ")"])?;
    let uid = kv(tail, "UID:")
        .and_then(|v| v.parse().ok())
        .or_else(|| after(tail, "UID ").and_then(|u| lead_u32(u).map(|v| v.0)))
        .or(uid_before);
    let kill = OomKill {
        total_vm_kb: kb(tail, "total-vm:"),
        anon_rss_kb: kb(tail, "anon-rss:"),
        file_rss_kb: kb(tail, "file-rss:"),
        shmem_rss_kb: kb(tail, "shmem-rss:"),
        pgtables_kb: kb(tail, "pgtables:"),
        uid,
        oom_score: None,
        oom_score_adj: kv(tail, "oom_score_adj:").and_then(|v| v.parse().ok()),
        memcg,
    };
    Some(Line::OomKill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: false,
    })
}

fn oom_reaped(x: &str) -> Option<Line> {
    let (pid, x) = lead_u32(x)?;
    let (comm, tail) = paren_comm(x, &["), now", ")"])?;
    Some(Line::OomReaped {
        pid,
        task: bounded(comm, 64),
        r: OomReaped {
            anon_rss_kb: kb(tail, "anon-rss:"),
            file_rss_kb: kb(tail, "file-rss:"),
            shmem_rss_kb: kb(tail, "shmem-rss:"),
        },
    })
}

fn oom_constraint(r: &str) -> Line {
    let get = |k: &str| -> Option<String> {
        r.split(',')
            .find_map(|p| p.strip_prefix(k))
            .map(|v| bounded(v, 256))
    };
    Line::OomConstraint {
        constraint: get("constraint="),
        memcg: get("task_memcg="),
        pid: get("pid=").and_then(|p| p.parse().ok()),
        task: get("task="),
    }
}

fn nfs(r: &str) -> Line {
    // "SERVER not responding, still trying" / "SERVER not responding, timed out" / "SERVER OK"
    if let Some((server, mode)) = r.split_once(" not responding") {
        let mode = mode.trim_start_matches(',').trim();
        return Line::NfsNotResponding(NfsServer {
            server: bounded(server, 256),
            mode: (!mode.is_empty()).then(|| bounded(mode, 32)),
        });
    }
    if let Some(server) = r.strip_suffix(" OK") {
        return Line::NfsOk(NfsServer {
            server: bounded(server, 256),
            mode: None,
        });
    }
    Line::Other
}

/// `PID:EXT:(file.c:123:func()) message` → (pid, message).
fn lustre_header(r: &str) -> (Option<u32>, &str) {
    let Some((pid, x)) = lead_u32(r) else {
        return (None, r);
    };
    if let Some(x) = x.strip_prefix(':') {
        if let Some((_, msg)) = x.split_once(") ") {
            return (Some(pid), msg.trim());
        }
    }
    (None, r)
}

fn lustre(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    if let Some(x) = msg.strip_prefix("@@@ Request sent has ") {
        let (reason, tail) = x.split_once(':').unwrap_or((x, ""));
        let reason = reason.trim();
        let request = tail
            .split_whitespace()
            .find(|t| t.starts_with('o') && t.contains("->"))
            .map(|t| bounded(t, 128));
        if let Some(rs) = reason.strip_prefix("failed due to ") {
            return Line::LustreRpcFailed {
                pid,
                rpc: LustreRpc {
                    reason: bounded(rs, 64),
                    request,
                },
            };
        }
        return Line::LustreRpcTimeout {
            pid,
            rpc: LustreRpc {
                reason: bounded(reason, 64),
                request,
            },
        };
    }
    if let Some(x) = msg.strip_prefix("Service thread pid ") {
        return lustre_thread(x);
    }
    // "TARGET: Connection to SERVICE (at NID) was lost; in progress
    // operations using this service will wait for recovery to complete"
    // and "TARGET: Connection restored to SERVICE (at NID)".
    if let Some((target, rest)) = msg.split_once(": Connection ") {
        let node = after(rest, "(at ")
            .and_then(|n| n.split_once(')'))
            .map(|n| bounded(n.0, 128));
        let c = LustreConnection {
            target: bounded(target, 128),
            node,
        };
        if rest.contains(" was lost") {
            return Line::LustreConnLost(c);
        }
        if rest.starts_with("restored") {
            return Line::LustreConnRestored(c);
        }
    }
    Line::Other
}

fn lustre_thread(x: &str) -> Line {
    let Some((pid, x)) = lead_u32(x) else {
        return Line::Other;
    };
    let Some(t) = after(x, "inactive for ") else {
        return Line::Other;
    };
    let num: String = t
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    match num.parse() {
        Ok(secs) => Line::LustreThread { pid, secs },
        Err(_) => Line::Other,
    }
}

fn lustre_error(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    let mut e = LustreError {
        message: bounded(msg, 512),
        ..LustreError::default()
    };
    // "11-0: TARGET: operation OP to node NODE failed: rc = -107"
    let (code, rest) = token(msg);
    if let Some(c) = code.strip_suffix(':') {
        if c.contains('-') && c.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            e.code = Some(c.to_string());
            let (target, rest2) = token(rest);
            if let Some(t) = target.strip_suffix(':') {
                e.target = Some(bounded(t, 128));
            }
            if let Some(op) = after(rest2, "operation ") {
                e.operation = Some(bounded(token(op).0, 64));
            }
            if let Some(n) = after(rest2, " to node ") {
                e.node = Some(bounded(token(n).0, 128));
            }
        }
    }
    if let Some(rc) = after(msg, "rc = ").or_else(|| after(msg, "failed with ")) {
        let t = token(rc).0.trim_end_matches([',', '.']);
        e.rc = t.parse().ok();
    }
    if e.node.is_none() {
        if let Some(n) = after(msg, "Communicating with ") {
            e.node = Some(bounded(token(n).0.trim_end_matches(','), 128));
        }
    }
    Line::LustreError { pid, e }
}

fn lnet(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    if let Some(x) = msg.strip_prefix("Service thread pid ") {
        return lustre_thread(x);
    }
    if let Some(x) = msg.strip_prefix("Timed out tx for ") {
        let (peer, tail) = x.split_once(": ").unwrap_or((x, ""));
        return Line::LnetTimeout {
            pid,
            t: LnetTimeout {
                peer: bounded(peer, 128),
                seconds: lead_u64(tail).map(|v| v.0),
            },
        };
    }
    if let Some(x) = msg.strip_prefix("Timed out RDMA with ") {
        let (peer, tail) = token(x);
        let secs = tail
            .strip_prefix('(')
            .and_then(|t| lead_u64(t).map(|v| v.0));
        return Line::LnetTimeout {
            pid,
            t: LnetTimeout {
                peer: bounded(peer, 128),
                seconds: secs,
            },
        };
    }
    Line::Other
}

fn cifs(r: &str) -> Line {
    // "Server X has not responded in N seconds. Reconnecting..." (pre-5.x
    // "CIFS VFS:", later "CIFS: VFS: \\server has not responded ...")
    if let Some((who, tail)) = r.split_once(" has not responded in ") {
        let server = who.strip_prefix("Server ").unwrap_or(who).trim();
        return Line::CifsUnresponsive(CifsServer {
            server: bounded(server, 256),
            seconds: lead_u64(tail).map(|v| v.0),
        });
    }
    Line::CifsError(CifsError {
        message: bounded(r.trim(), 512),
    })
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

/// `task:COMM state:D stack:0 pid:1531 tgid:1531 ppid:2 flags:0x00004000` (5.10+)
fn task_dump_new(r: &str) -> Option<TaskDumpLine> {
    let (comm, rest) = r.split_once(" state:")?;
    let state = rest.get(..1).map(|s| s.to_string());
    let pid = after(rest, " pid:").and_then(|p| lead_u32(p.trim_start()).map(|v| v.0));
    let ppid = after(rest, " ppid:").and_then(|p| lead_u32(p.trim_start()).map(|v| v.0));
    Some(TaskDumpLine {
        task: bounded(comm.trim_end(), 64),
        pid,
        ppid,
        state,
    })
}

/// Pre-5.10 sched_show_task: `COMM  STATE  [stack/addr]  free  PID  PPID 0xFLAGS`,
/// comm padded to 15 columns (`%-15.15s`), e.g.
/// `nfsd            D ffffffff8181d000     0  2777      2 0x00000000`.
fn task_dump_old(s: &str) -> Option<TaskDumpLine> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    if toks.len() < 5 || toks.len() > 16 {
        return None;
    }
    let n = toks.len();
    let flags = toks.get(n - 1)?;
    if !(flags.starts_with("0x") && is_hex(flags.get(2..)?)) {
        return None;
    }
    let ppid: u32 = toks.get(n - 2)?.parse().ok()?;
    let pid: u32 = toks.get(n - 3)?.parse().ok()?;
    // Comm is the first 15 columns when the padding survived, else the
    // first token (spaces collapsed by a renderer).
    let (comm, rest) = match (s.get(..15), s.get(15..)) {
        (Some(c), Some(r)) if r.starts_with(' ') && !c.trim().is_empty() => {
            (c.trim(), r.trim_start())
        }
        _ => token(s),
    };
    let state = rest.chars().next()?;
    if !"RSDTtXZPIKWN".contains(state) {
        return None;
    }
    Some(TaskDumpLine {
        task: bounded(comm, 64),
        pid: Some(pid),
        ppid: Some(ppid),
        state: Some(state.to_string()),
    })
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
            Line::HungTask {
                task: "bch_copygc[dm-7".into(),
                pid: 1942,
                secs: 122
            }
        );
        match classify("INFO: task systemd-shutdow:1 is blocked on a mutex likely owned by task kworker/4:1:16648.") {
            Line::Blocker { pid, blocker, .. } => {
                assert_eq!(pid, 1);
                assert_eq!(blocker.kind, "mutex");
                assert_eq!(blocker.owner_task.as_deref(), Some("kworker/4:1"));
                assert_eq!(blocker.owner_pid, Some(16648));
            }
            other => panic!("{other:?}"),
        }
        match classify("INFO: task NvmlTaskRunner:11290 <reader> blocked on an rw-semaphore likely owned by task VLLM::EngineCor:46249 <writer>") {
            Line::Blocker { blocker, .. } => {
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
            Line::Blocker { blocker, .. } => {
                assert_eq!(blocker.kind, "semaphore");
                assert!(blocker.owner_not_found);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn traps() {
        match classify("traps: srs-hybrid-2[1388834] general protection fault ip:5f14ab3aed82 sp:70845c5c7f20 error:0 in srs[57ad82,5f14ab129000+643000]") {
            Line::Trap(t) => {
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
            Line::Trap(t) => assert_eq!(t.text, "invalid opcode"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oopses() {
        match classify("Oops: 0000 [#1] PREEMPT SMP PTI") {
            Line::Oops(o) => {
                assert_eq!(o.code.as_deref(), Some("0000"));
                assert_eq!(o.count, Some(1));
            }
            other => panic!("{other:?}"),
        }
        match classify("Oops[#1]:") {
            Line::Oops(o) => assert_eq!((o.code, o.count), (None, Some(1))),
            other => panic!("{other:?}"),
        }
        match classify("general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN") {
            Line::Oops(o) => {
                assert_eq!(o.text.as_deref(), Some("general protection fault"));
                assert_eq!(o.address.as_deref(), Some("dffffc0000000000"));
            }
            other => panic!("{other:?}"),
        }
    }
}
