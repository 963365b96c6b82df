//! Kernel oopses, `BUG:` reports, `WARNING:` (kernel/panic.c `__warn`) and
//! `Kernel panic - not syncing:`.

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::{Identity, Line};
use crate::event::Event;
use crate::event::{Detail, HardLockup};
use crate::frame::parse_frame_line;
use crate::parser::{finish_trace, new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{bounded, is_hex, lead_u32, split_hex, token};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &[
    "BUG",
    "Unable to handle kernel",
    "Oops",
    "WARNING:",
    "cut here",
    "Kernel panic",
    // `list_add corruption. ...`, `list_del corruption, ...` (the `_`
    // is a cheap first byte for the prefilter, see storage's keywords)
    "_add corruption",
    "_del corruption",
];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "oops",
        text: "[   10.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
               [   10.000001] Oops: 0000 [#1] PREEMPT SMP NOPTI",
    },
    Sample {
        kind: "oops",
        text: "[   10.000000] Unable to handle kernel NULL pointer dereference at virtual address 00000000\n\
               [   10.000001] Internal error: Oops: 17 [#1] ARM",
    },
    Sample {
        kind: "oops",
        text: "[   10.000000] general protection fault: 0000 [#1] SMP PTI",
    },
    Sample {
        kind: "kernel_bug",
        text: "[144894.234313] BUG: Bad rss-counter state mm:cc046680 idx:1 val:1",
    },
    Sample {
        kind: "kernel_bug",
        text: "[  100.000002] kernel BUG at mm/slub.c:1234!\n\
               [  100.000003] invalid opcode: 0000 [#1] SMP PTI",
    },
    Sample {
        kind: "kernel_bug",
        text: "[  100.000001] list_add corruption. next->prev should be prev (ffff88810b3e1d28), but was ffff88810b3e1d00. (next=ffff88810b3e1d28).",
    },
    Sample {
        kind: "kernel_bug",
        text: "[  100.000001] list_del corruption, ffff88800c2ff4c8->next is LIST_POISON1 (dead000000000100)",
    },
    Sample {
        kind: "warning",
        text: "[59435.843939] WARNING: CPU: 2 PID: 0 at net/ipv4/tcp_input.c:4375 tcp_data_queue+0x1e0/0x408",
    },
    Sample {
        kind: "panic",
        text: "[  500.000000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    },
];

// ---- event types ----

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
/// `BUG: KASAN: ...`, `BUG: Bad rss-counter state`), a `BUG_ON()` that
/// fired (`kernel BUG at mm/slub.c:1234!`, with the `invalid opcode` /
/// `Oops - BUG` line that follows it), or a list corruption caught by
/// CONFIG_DEBUG_LIST (lib/list_debug.c: `list_add corruption. ...`,
/// `list_del corruption, ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct KernelBug {
    /// The text after `BUG: `, `kernel BUG at FILE:LINE!`, or
    /// `list_add corruption` / `list_del corruption`.
    pub bug: String,
    /// Source file of the `BUG_ON()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The corruption message (`next->prev should be prev (...), but was ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Error code of the oops line after a `BUG_ON()` (`0000`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oops_code: Option<String>,
    /// `[#N]` of that oops line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oops_count: Option<u32>,
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

/// A `Kernel panic - not syncing:` line that did not belong to another report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Panic {}

/// Lines of an oops, `BUG:`, warning or panic report besides the shared
/// trace, register and `Code:` lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OopsReport {
    /// `BUG: unable to handle ...`, `kernel BUG at ...`: opens an oops.
    Bug {
        bug: String,
        address: Option<String>,
    },
    /// Other `BUG: ...` lines (an `Oops:` line may follow and make it one).
    KernelBug(String),
    /// `kernel BUG at FILE:LINE!`: a `BUG_ON()`; joins an open list
    /// corruption report (lib/list_debug.c BUGs right after printing it).
    BugAt {
        text: String,
        file: Option<String>,
        line: Option<u32>,
    },
    /// `list_add corruption. ...` / `list_del corruption, ...`.
    Corruption { bug: &'static str, message: String },
    /// `Oops: 0000 [#1] SMP`, `Internal error: ...`, `general protection fault: ...`.
    Oops(OopsLine),
    /// `#PF: supervisor read access in kernel mode` (5.x x86).
    PageFault(String),
    /// `WARNING: CPU: N PID: P at FILE:LINE FUNC`.
    Warning(Warning, Identity),
    /// `Kernel panic - not syncing: MSG`.
    Panic(String),
}

// ---- line recognisers (called from `classify`) ----

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OopsLine {
    pub code: Option<String>,
    pub count: Option<u32>,
    pub flags: Option<String>,
    pub text: Option<String>,
    pub address: Option<String>,
}

pub(crate) fn split_address(text: &str) -> (String, Option<String>) {
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

pub(crate) fn unable_to_handle(s: &str) -> Line {
    // MIPS prefixes "CPU 0 "; ARM/arm64 print it bare.
    let t = match s.find("Unable to handle") {
        Some(i) => s.get(i..).unwrap_or(s),
        None => s,
    };
    let t = t.split(", epc ==").next().unwrap_or(t);
    let (bug, address) = split_address(t);
    Line::report(OopsReport::Bug { bug, address })
}

/// `kernel BUG at FILE:LINE!` (the text after `kernel BUG at `).
pub(crate) fn bug_at(r: &str) -> Line {
    let loc = r.trim().trim_end_matches('!');
    let (file, line) = match loc.rsplit_once(':') {
        Some((f, l)) if !f.is_empty() && !f.contains(' ') => {
            (Some(bounded(f, 256)), l.parse().ok())
        }
        _ => (None, None),
    };
    Line::report(OopsReport::BugAt {
        text: bounded(&format!("kernel BUG at {}", r.trim()), 256),
        file,
        line,
    })
}

/// `list_add corruption. ...` / `list_del corruption, ...` (lib/list_debug.c).
pub(crate) fn list_corruption(s: &str) -> Option<Line> {
    let bug = ["list_add corruption", "list_del corruption"]
        .into_iter()
        .find(|b| s.starts_with(b))?;
    let message = s
        .get(bug.len()..)
        .unwrap_or("")
        .trim_start_matches(['.', ','])
        .trim();
    Some(Line::report(OopsReport::Corruption {
        bug,
        message: bounded(message, 256),
    }))
}

pub(crate) fn bug_line(r: &str) -> Line {
    if r.starts_with("workqueue lockup") {
        return super::storage::workqueue_lockup(r);
    }
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
        return Line::report(OopsReport::Bug { bug, address });
    }
    Line::report(OopsReport::KernelBug(bounded(r.trim(), 256)))
}

/// `Oops: 0000 [#1] PREEMPT SMP PTI`, `Internal error: Oops: 17 [#2] ARM`,
/// `Oops[#1]:` (MIPS), `general protection fault, probably for
/// non-canonical address 0x..: 0000 [#1] SMP`, 6.x `Oops: Oops: 0002 [#1]`.
pub(crate) fn oops_line(s: &str) -> Option<OopsLine> {
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

pub(crate) fn warning(r: &str) -> Option<Line> {
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
    Some(Line::report(OopsReport::Warning(w, id)))
}

// ---- meanings ----

/// The one-line explanation of a `oops` event.
pub(crate) fn meaning_oops(ev: &Event, o: &Oops, who: &str) -> String {
    let mut s = format!(
        "kernel oops{}: {}",
        o.oops_count.map(|c| format!(" #{c}")).unwrap_or_default(),
        o.bug.as_deref().unwrap_or("fault in kernel mode")
    );
    if let Some(a) = &o.address {
        s.push_str(&format!(" at address {a}"));
    }
    if let Some(f) = ev.rip_function.as_ref().or(ev.pc_function.as_ref()) {
        s.push_str(&format!(" in {f}"));
        if let Some(m) = &ev.rip_module {
            s.push_str(&format!(" [{m}]"));
        }
    }
    s.push_str(&format!(" while running {who}"));
    if o.oops_count.is_some_and(|c| c > 1) {
        s.push_str("; an earlier oops already happened, the kernel may be unstable");
    }
    s
}

/// The one-line explanation of a `kernel_bug` event.
pub(crate) fn meaning_kernel_bug(_ev: &Event, b: &KernelBug, who: &str) -> String {
    if b.message.is_some() {
        return format!(
            "the kernel found a corrupted linked list ({}): memory was overwritten or freed while in use, a kernel bug; the kernel is no longer trustworthy (while running {who})",
            b.bug
        );
    }
    if let Some(f) = &b.file {
        return format!(
            "a kernel assertion failed (BUG_ON at {f}:{}): the task running it was killed and any lock it held stays held (while running {who})",
            b.line.map_or_else(|| "?".to_string(), |l| l.to_string())
        );
    }
    format!("kernel reported BUG: {} (while running {who})", b.bug)
}

/// The one-line explanation of a `warning` event.
pub(crate) fn meaning_warning(_ev: &Event, w: &Warning, _who: &str) -> String {
    format!(
        "kernel warning (WARN_ON) at {}:{} in {}; not fatal, but the condition is a kernel bug",
        w.file.as_deref().unwrap_or("?"),
        w.line.unwrap_or(0),
        w.function.as_deref().unwrap_or("?")
    )
}

/// The one-line explanation of a `panic` event.
pub(crate) fn meaning_panic(ev: &Event, _d: &Panic, _who: &str) -> String {
    format!(
        "kernel panic: {}",
        ev.panic_message.as_deref().unwrap_or("?")
    )
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for OopsReport {
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            OopsReport::Bug { bug, address } => {
                ps.close_cur(caller);
                let ev = new_event(
                    Detail::Oops(Oops {
                        bug: Some(bug),
                        address,
                        ..Oops::default()
                    }),
                    p,
                    ln,
                );
                ps.open_event(ev, p, 12);
            }
            OopsReport::KernelBug(text) => {
                ps.close_cur(caller);
                let ev = new_event(
                    Detail::KernelBug(KernelBug {
                        bug: text,
                        ..KernelBug::default()
                    }),
                    p,
                    ln,
                );
                ps.open_event(ev, p, 8);
            }
            OopsReport::BugAt { text, file, line } => {
                // The corruption report printed just before (CONFIG_BUG_ON_DATA_CORRUPTION)
                // is the same BUG: it gains the location.
                let joined = ps
                    .cur(caller)
                    .and_then(|i| ps.touch(i))
                    .is_some_and(|o| match &mut o.ev.detail {
                        Detail::KernelBug(b) if b.message.is_some() && b.file.is_none() => {
                            b.file.clone_from(&file);
                            b.line = line;
                            true
                        }
                        _ => false,
                    });
                if !joined {
                    ps.close_cur(caller);
                    let ev = new_event(
                        Detail::KernelBug(KernelBug {
                            bug: text,
                            file,
                            line,
                            ..KernelBug::default()
                        }),
                        p,
                        ln,
                    );
                    ps.open_event(ev, p, 12);
                }
            }
            OopsReport::Corruption { bug, message } => {
                // 4.9's WARN() prints `WARNING: ... at lib/list_debug.c:N`
                // first and the message after it: the warning's report goes
                // on (its identity and trace follow), the corruption is an
                // event of its own and the warning's message.
                let warned = ps
                    .cur(caller)
                    .and_then(|i| ps.touch(i))
                    .is_some_and(|o| match &mut o.ev.detail {
                        Detail::Warning(w)
                            if w.message.is_none()
                                && w.file
                                    .as_deref()
                                    .is_some_and(|f| f.ends_with("list_debug.c")) =>
                        {
                            w.message = Some(format!("{bug}. {message}"));
                            true
                        }
                        _ => false,
                    });
                if warned {
                    ps.push_single(new_event(
                        Detail::KernelBug(KernelBug {
                            bug: bug.to_string(),
                            message: Some(message),
                            ..KernelBug::default()
                        }),
                        p,
                        ln,
                    ));
                    return;
                }
                ps.close_cur(caller);
                let ev = new_event(
                    Detail::KernelBug(KernelBug {
                        bug: bug.to_string(),
                        message: Some(message),
                        ..KernelBug::default()
                    }),
                    p,
                    ln,
                );
                ps.open_event(ev, p, 12);
            }
            OopsReport::Oops(ol) => attach_oops(ps, ol, p),
            OopsReport::PageFault(t) => {
                if let Some(i) = ps.cur(caller) {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::Oops(x) = &mut o.ev.detail {
                            if x.page_fault.len() < 4 {
                                x.page_fault.push(t);
                            }
                        }
                    }
                }
            }
            OopsReport::Warning(w, id) => {
                ps.close_cur(caller);
                let mut ev = new_event(Detail::Warning(w), p, ln);
                ev.cpu = id.cpu;
                ev.pid = id.pid;
                ps.open_event(ev, p, 12);
            }
            OopsReport::Panic(msg) => panic_line(ps, msg, p),
        }
    }
}

/// An `Oops: ...` line: it completes the open oops or `BUG:` report of the
/// caller (x86 prints `BUG: unable to handle ...` first), or opens one.
fn attach_oops(ps: &mut Parser, ol: OopsLine, p: &Prefix<'_>) {
    let caller = p.caller;
    let ln = ps.line_no;
    let attach = ps.cur(caller).filter(|&i| {
        ps.open.get(i).is_some_and(|o| match &o.ev.detail {
            Detail::Oops(x) => x.oops_count.is_none(),
            Detail::KernelBug(_) => true,
            _ => false,
        })
    });
    let fill = |x: &mut Oops, ol: OopsLine| {
        x.oops_code = ol.code;
        x.oops_count = ol.count;
        x.oops_flags = ol.flags;
        if x.bug.is_none() {
            x.bug = ol.text;
        }
        if x.address.is_none() {
            x.address = ol.address;
        }
    };
    if let Some(i) = attach {
        if let Some(o) = ps.touch(i) {
            // A BUG_ON() or list corruption stays a kernel_bug: the oops line
            // after it only says how the trap was taken.
            if let Detail::KernelBug(b) = &mut o.ev.detail {
                if b.file.is_some() || b.message.is_some() {
                    if b.oops_code.is_none() {
                        b.oops_code = ol.code;
                        b.oops_count = ol.count;
                    }
                    return;
                }
            }
            if let Detail::KernelBug(b) = &o.ev.detail {
                let bug = b.bug.clone();
                o.ev.detail = Detail::Oops(Oops {
                    bug: Some(bug),
                    ..Oops::default()
                });
            }
            if let Detail::Oops(x) = &mut o.ev.detail {
                fill(x, ol);
            }
        }
        return;
    }
    ps.close_cur(caller);
    let mut x = Oops::default();
    fill(&mut x, ol);
    let ev = new_event(Detail::Oops(x), p, ln);
    ps.open_event(ev, p, 12);
}

/// `Kernel panic - not syncing: MSG`: ends the open report (`Hard LOCKUP`
/// opens a hard-lockup report first), or is a report of its own.
fn panic_line(ps: &mut Parser, msg: String, p: &Prefix<'_>) {
    let caller = p.caller;
    let ln = ps.line_no;
    let lower = msg.to_ascii_lowercase();
    if lower.contains("hard lockup") {
        let cpu =
            crate::util::after(&msg, "on cpu ").and_then(|c| crate::util::lead_u32(c).map(|v| v.0));
        let is_hl = ps
            .cur(caller)
            .and_then(|i| ps.open.get(i))
            .is_some_and(|o| matches!(o.ev.detail, Detail::HardLockup(_)));
        if !is_hl {
            ps.close_cur(caller);
            let mut ev = new_event(Detail::HardLockup(HardLockup {}), p, ln);
            ev.cpu = cpu;
            ps.open_event(ev, p, 12);
        }
    }
    if let Some(i) = ps.cur(caller) {
        if let Some(o) = ps.touch(i) {
            finish_trace(o);
            if o.ev.panic_message.is_none() {
                o.ev.panic = Some(true);
                o.ev.panic_message = Some(msg);
            }
            return;
        }
    }
    let mut ev = new_event(Detail::Panic(Panic {}), p, ln);
    ev.panic = Some(true);
    ev.panic_message = Some(msg);
    ps.open_event(ev, p, 8);
}
