//! User-space faults: x86 trap lines (`traps: COMM[PID] general protection
//! fault ip:..`, arch/x86/kernel/traps.c), `segfault at` (arch/x86/mm/fault.c
//! `show_signal_msg`) and `potentially unexpected fatal signal`
//! (kernel/signal.c with `print-fatal-signals=1`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::decode::PageFaultError;
use crate::decode::{decode_page_fault_error, signal_name};
use crate::event::Detail;
use crate::event::Event;
use crate::parser::{new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{
    after, bounded, is_hex, lead_u32, parse_hex_u64, split_comm_bracket_pid, split_hex,
};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &["traps:", "general protection", "segfault", "fatal signal"];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "gpf_trap",
        text: "[  800.000000] traps: a.out[4242] general protection fault ip:401126 sp:7ffd0a0b0c00 error:0 in a.out[401000+1000]",
    },
    Sample {
        kind: "gpf_trap",
        text: "[  800.000000] a.out[4242] general protection ip:401126 sp:7ffd0a0b0c00 error:0 in a.out[401000+1000]",
    },
    Sample {
        kind: "trap",
        text: "[  900.000000] traps: a.out[5555] trap invalid opcode ip:401126 sp:7ffd0a0b0c00 error:0 in a.out[401000+1000]",
    },
    Sample {
        kind: "segfault",
        text: "[ 14.0] foo[77]: segfault at 0 ip 00000000004004f4 sp 00007fff5fbff8a0 error 4 in foo[400000+1000]",
    },
    Sample {
        kind: "fatal_signal",
        text: "[  700.000000] /usr/bin/foo: foo: potentially unexpected fatal signal 11.",
    },
    Sample {
        kind: "fatal_signal",
        text: "[  700.000000] potentially unexpected fatal signal 6.",
    },
];

// ---- event types ----

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

/// Lines of a user-space fault report besides the shared `Code:` and
/// register lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FaultLine {
    /// `traps: COMM[PID] general protection fault ip:... sp:... error:...`.
    Trap(TrapHdr),
    /// `COMM[PID]: segfault at ADDR ip ... sp ... error N in LIB[...]`.
    Segfault(SegHdr),
    /// `potentially unexpected fatal signal N.` (print_fatal_signal): links
    /// to the trap or segfault just before it.
    FatalSignal {
        task: Option<String>,
        pid: Option<u32>,
        exe: Option<String>,
        signal: u32,
    },
}

// ---- line recognisers (called from `classify`) ----

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

/// `in LIB[BASE+SIZE]` or `in LIB[OFFSET,BASE+SIZE]`; returns the mapping
/// and whatever follows the closing bracket.
pub(crate) fn mapping(s: &str, ip: &str) -> Option<(Mapping, String)> {
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
pub(crate) fn trailing(rest: &str) -> (Option<u32>, Option<u32>, Option<u32>, Option<String>) {
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

pub(crate) fn trap_line(s: &str) -> Option<TrapHdr> {
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

pub(crate) fn segfault_line(s: &str) -> Option<SegHdr> {
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

pub(crate) fn fatal_signal(head: Option<&str>, r: &str) -> Line {
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
    Line::report(FaultLine::FatalSignal {
        task,
        pid,
        exe,
        signal,
    })
}

// ---- meanings ----

/// The one-line explanation of a `gpf_trap, trap` event.
pub(crate) fn meaning_gpf_trap(_ev: &Event, t: &Trap, who: &str) -> String {
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
            mp.lib_offset
                .as_deref()
                .or(mp.lib_ip_offset.as_deref())
                .unwrap_or("?")
        ));
    }
    s
}

/// The one-line explanation of a `segfault` event.
pub(crate) fn meaning_segfault(_ev: &Event, sf: &Segfault, who: &str) -> String {
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
            mp.lib_offset
                .as_deref()
                .or(mp.lib_ip_offset.as_deref())
                .unwrap_or("?")
        ));
    } else if sf.ip.trim_start_matches('0').is_empty() {
        s.push_str(" (jump to a NULL function pointer)");
    }
    s
}

/// The one-line explanation of a `fatal_signal` event.
pub(crate) fn meaning_fatal_signal(_ev: &Event, f: &FatalSignal, who: &str) -> String {
    format!(
        "{who} was killed by signal {}{} that it did not handle",
        f.signal,
        f.signal_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    )
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for FaultLine {
    fn fused_rest(&self) -> Option<String> {
        match self {
            FaultLine::Trap(h) => h.rest.clone(),
            FaultLine::Segfault(h) => h.rest.clone(),
            FaultLine::FatalSignal { .. } => None,
        }
    }

    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            FaultLine::Trap(h) => {
                ps.close_cur(caller);
                let trap = Trap {
                    trap_text: h.text.clone(),
                    ip: h.ip.clone(),
                    sp: h.sp,
                    error: h.error,
                    mapping: h.mapping,
                    signal: None,
                };
                let detail = if h.text.starts_with("general protection") {
                    Detail::GpfTrap(trap)
                } else {
                    Detail::Trap(trap)
                };
                let mut ev = new_event(detail, p, ln);
                ev.task = Some(h.task);
                ev.pid = Some(h.pid);
                let i = ps.open_event(ev, p, 1);
                if let Some(o) = ps.open.get_mut(i) {
                    o.code_ip = parse_hex_u64(&h.ip);
                }
            }
            FaultLine::Segfault(h) => {
                ps.close_cur(caller);
                let bits32 = h.ip.len() == 8;
                let ip = parse_hex_u64(&h.ip);
                let mut ev = new_event(
                    Detail::Segfault(Segfault {
                        error_decoded: decode_page_fault_error(&h.error),
                        fault_addr: h.fault_addr,
                        ip: h.ip,
                        sp: h.sp,
                        error: h.error,
                        mapping: h.mapping,
                        core: h.core,
                        socket: h.socket,
                    }),
                    p,
                    ln,
                );
                ev.task = Some(h.task);
                ev.pid = Some(h.pid);
                ev.cpu = h.cpu;
                let i = ps.open_event(ev, p, 1);
                if let Some(o) = ps.open.get_mut(i) {
                    o.code_ip = ip;
                    o.bits32 = bits32;
                }
            }
            FaultLine::FatalSignal {
                task,
                pid,
                exe,
                signal,
            } => {
                let mut link = None;
                if let Some(i) = ps.cur(caller) {
                    let linkable = ps.open.get(i).is_some_and(|o| {
                        matches!(
                            o.ev.detail,
                            Detail::GpfTrap(_) | Detail::Trap(_) | Detail::Segfault(_)
                        ) && (pid.is_none() || pid == o.ev.pid)
                            && ln.saturating_sub(o.last_line) <= 2
                    });
                    let o = ps.open.remove(i);
                    if linkable {
                        link = Some(o.id);
                    }
                    ps.close_open(o, linkable);
                }
                let mut ev = new_event(
                    Detail::FatalSignal(FatalSignal {
                        signal,
                        signal_name: signal_name(signal),
                        exe,
                    }),
                    p,
                    ln,
                );
                ev.task = task;
                ev.pid = pid;
                let i = ps.open_event(ev, p, 4);
                if let Some(o) = ps.open.get_mut(i) {
                    o.linked_trap = link;
                }
            }
        }
    }
}
