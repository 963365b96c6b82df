//! The crash in words: which thread died of what, where, and what that
//! usually means, in the kernel's terms.

use crate::elf::Memory;
use crate::report::{CoreReport, Frame, ThreadReport};
use crate::signal::*;

/// Binaries whose frames are plumbing rather than the program's own code:
/// the story names the program's function that called into them.
fn is_runtime(module: Option<&str>) -> bool {
    let Some(m) = module else { return false };
    let name = m.rsplit('/').next().unwrap_or(m);
    [
        "libc.so",
        "libc-",
        "ld-linux",
        "ld-musl",
        "libpthread",
        "libstdc++",
        "libgcc_s",
        "libm.so",
        "[vdso]",
        "libc.musl",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// A function's name for prose: glibc's internal `__GI_` aliases are the
/// public functions people know (`__GI_abort` is abort).
fn fname(f: &Frame) -> String {
    match &f.function {
        Some(n) => n.strip_prefix("__GI_").unwrap_or(n).to_string(),
        None => format!("{:#x}", f.address),
    }
}

/// Where the program's own code handed over to the runtime: (the program's
/// function, the runtime function it called, that function's caller).
fn handoff(t: &ThreadReport) -> Option<(String, Option<String>, Option<String>)> {
    let frames = physical(&t.frames);
    let k = frames
        .iter()
        .position(|f| !is_runtime(f.module.as_deref()))?;
    Some((
        fname(frames[k]),
        k.checked_sub(1).map(|i| fname(frames[i])),
        frames.get(k + 1).map(|f| fname(f)),
    ))
}

/// Outermost physical frames only (an inlined chain counts once, by its
/// real function).
fn physical(frames: &[Frame]) -> Vec<&Frame> {
    frames.iter().filter(|f| !f.inlined).collect()
}

/// "in inner → abort, called from middle": where the program's own code
/// handed over to the runtime (or crashed itself).
pub fn where_(t: &ThreadReport) -> Option<String> {
    let frames = physical(&t.frames);
    let first = frames.first()?;
    let k = frames
        .iter()
        .position(|f| !is_runtime(f.module.as_deref()))
        .unwrap_or(frames.len());
    if k == frames.len() {
        // All runtime (or unknown): name the innermost frame.
        return Some(format!("in {}", fname(first)));
    }
    let user = frames[k];
    let mut s = if k > 0 {
        format!("in {} → {}", fname(user), fname(frames[k - 1]))
    } else {
        format!("in {}", fname(user))
    };
    if let Some(c) = frames.get(k + 1) {
        s.push_str(&format!(", called from {}", fname(c)));
    }
    Some(s)
}

fn module_short(f: &Frame) -> String {
    f.module
        .as_deref()
        .map(|m| m.rsplit('/').next().unwrap_or(m).to_string())
        .unwrap_or_else(|| "unknown code".into())
}

pub fn tell(r: &CoreReport, mem: &Memory) -> Vec<String> {
    let mut out = Vec::new();
    let who = r
        .process
        .command
        .as_deref()
        .map(|c| format!(" of {c}"))
        .unwrap_or_default();
    let Some(t) = r.threads.first() else {
        if let Some(s) = &r.signal {
            out.push(format!(
                "the process{who} died of {}; no thread was recorded",
                s.name
            ));
        }
        return out;
    };
    let pid1 = r.process.pid == Some(1);
    let place = where_(t).unwrap_or_else(|| "at an unknown place".into());
    let insn = t.instruction.as_deref();
    let top = physical(&t.frames).first().copied();
    if let Some(s) = &r.signal {
        let by = match (s.code, s.sender_pid) {
            (SI_KERNEL, _) => "raised by the kernel".to_string(),
            (c, Some(p)) if c <= 0 => {
                if Some(p) == r.process.pid || r.threads.iter().any(|t| t.tid == p) {
                    "raised by the process itself".to_string()
                } else {
                    format!(
                        "sent by pid {p}{}",
                        s.sender_uid
                            .map(|u| format!(" (uid {u})"))
                            .unwrap_or_default()
                    )
                }
            }
            _ => s.meaning.clone(),
        };
        let tname = format!("thread {}{who}", t.tid);
        match (s.number, s.code) {
            (SIGSEGV, SI_KERNEL) if insn.is_some_and(crate::insn::is_hlt) => {
                let inside = match top {
                    Some(f) if f.function.as_deref().is_some_and(|n| n.contains("abort")) => {
                        format!("inside {}'s abort()", module_short(f))
                    }
                    Some(f) => format!("inside {} ({})", fname(f), module_short(f)),
                    None => "at an unknown place".into(),
                };
                out.push(format!(
                    "{tname} was killed by SIGSEGV raised by the kernel for a `hlt` {inside}: hlt is privileged, so in user mode it faults (#GP); glibc's abort() executes it only when raise(SIGABRT) came back, i.e. SIGABRT had been discarded"
                ));
                if pid1 {
                    out.push("the process was PID 1 of its pid namespace (NT_PRPSINFO pid 1): the kernel discards signals a namespace's init has no handler for, even from itself, so abort()'s SIGABRT did nothing; a forced SIGSEGV from a fault is the one signal that still kills it. Run it under an init (tini, dumb-init, docker --init) or handle SIGABRT".into());
                } else {
                    out.push("was this PID 1 of a pid namespace (signals without a handler are discarded there), or was SIGABRT blocked or ignored by a handler that returned?".into());
                }
                if let Some((user, _, caller)) = handoff(t) {
                    out.push(format!(
                        "abort() was called from {user}{}",
                        caller.map(|c| format!(" (called from {c})")).unwrap_or_default()
                    ));
                }
            }
            (SIGSEGV, SI_KERNEL) => out.push(format!(
                "{tname} was killed by SIGSEGV raised by the kernel for a general protection fault{} {place}: a privileged instruction, a non-canonical address, or a misaligned SSE access",
                insn.map(|i| format!(" at `{i}`")).unwrap_or_default()
            )),
            (SIGSEGV, c) if c > 0 => {
                let addr = s.fault_address.unwrap_or(0);
                let sp = t.registers.as_ref().map_or(0, |r| r.sp);
                let near_stack = mem.segment_of(addr).is_none()
                    && addr <= sp.saturating_add(4096)
                    && sp.saturating_sub(addr) < (1 << 20);
                let what = if addr < 4096 {
                    format!("a NULL pointer dereference (address {addr:#x} is in the unmapped first page)")
                } else if near_stack || t.frames.len() >= 200 && repeats(t).is_some() {
                    let rec = repeats(t)
                        .map(|f| format!(", recursing through {f}"))
                        .unwrap_or_default();
                    format!(
                        "a stack overflow: the fault address {addr:#x} is just below the stack pointer {sp:#x}, in the guard gap{rec}"
                    )
                } else if c == 2 {
                    format!("an access to {addr:#x} that its mapping does not permit (writing read-only memory, or executing data)")
                } else {
                    format!("an access to {addr:#x}, which is not mapped")
                };
                out.push(format!(
                    "{tname} was killed by SIGSEGV: {what}{} {place}",
                    insn.map(|i| format!(", at `{i}`")).unwrap_or_default()
                ));
            }
            (SIGABRT, _) => {
                let called = physical(&t.frames)
                    .iter()
                    .any(|f| f.function.as_deref().is_some_and(|n| n.contains("abort")));
                if called {
                    out.push(format!("{tname} called abort(): SIGABRT {by}, {place}"));
                } else {
                    out.push(format!("{tname} was killed by SIGABRT {by}, {place}"));
                }
                if let Some(a) = assertion(t) {
                    out.push(a);
                }
            }
            (SIGILL, _) => out.push(format!(
                "{tname} was killed by SIGILL ({}){} {place}{}",
                s.meaning,
                insn.map(|i| format!(" at `{i}`")).unwrap_or_default(),
                if insn == Some("ud2") {
                    ": ud2 is a deliberate trap (__builtin_trap, a failed check compiled to a trap, Rust's abort)"
                } else {
                    ""
                }
            )),
            (SIGTRAP, _) => out.push(format!(
                "{tname} was killed by SIGTRAP ({}) {place}: a breakpoint (int3/brk) with no debugger attached",
                s.meaning
            )),
            (SIGFPE, _) => out.push(format!(
                "{tname} was killed by SIGFPE: {}{} {place}",
                s.meaning,
                insn.map(|i| format!(" at `{i}`")).unwrap_or_default()
            )),
            (SIGBUS, _) => {
                let addr = s.fault_address.unwrap_or(0);
                let file = r
                    .mappings
                    .iter()
                    .find(|m| m.start <= addr && addr < m.end)
                    .map(|m| format!(" in a mapping of {}", m.path))
                    .unwrap_or_default();
                out.push(format!(
                    "{tname} was killed by SIGBUS ({}) at {addr:#x}{file} {place}",
                    s.meaning
                ));
            }
            (SIGSYS, _) => out.push(format!(
                "{tname} was killed by SIGSYS: system call {} denied by seccomp {place}",
                s.syscall.map_or("?".into(), |n| n.to_string())
            )),
            _ => out.push(format!("{tname} was killed by {} {by}, {place}", s.name)),
        }
    } else {
        out.push(format!(
            "thread {}{who}: no fatal signal recorded (a core made by gcore of a live process?), {place}",
            t.tid
        ));
    }
    if let Some(o) = others(r) {
        out.push(o);
    }
    out
}

/// The function that appears most often in a long stack, if it dominates.
fn repeats(t: &ThreadReport) -> Option<String> {
    let frames = physical(&t.frames);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in &frames {
        let n = fname(f);
        match counts.iter_mut().find(|(k, _)| *k == n) {
            Some((_, c)) => *c += 1,
            None => counts.push((n, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let (name, c) = counts.into_iter().next()?;
    (c >= 16 && c * 2 >= frames.len()).then_some(name)
}

/// C's assert() and C++'s std::terminate leave their callers in the stack.
fn assertion(t: &ThreadReport) -> Option<String> {
    let frames = physical(&t.frames);
    for f in &frames {
        let n = f.function.as_deref().unwrap_or("");
        if n.contains("__assert_fail") {
            return Some("an assert() failed: the assertion text went to stderr".into());
        }
        if n.contains("std::terminate") || n.contains("__cxa_throw") && frames.len() > 3 {
            return Some(
                "C++ std::terminate: an exception escaped (uncaught, or thrown through noexcept)"
                    .into(),
            );
        }
        if n.starts_with("std::panicking") || n.starts_with("core::panicking") {
            return Some("a Rust panic with panic=abort (or a panic while panicking)".into());
        }
    }
    None
}

/// One line about the other threads: where each waits, grouped.
fn others(r: &CoreReport) -> Option<String> {
    let rest = r.threads.get(1..)?;
    if rest.is_empty() {
        return None;
    }
    let mut groups: Vec<(String, Vec<i32>)> = Vec::new();
    for t in rest {
        let w = where_(t).unwrap_or_else(|| "(no stack)".into());
        match groups.iter_mut().find(|(k, _)| *k == w) {
            Some((_, v)) => v.push(t.tid),
            None => groups.push((w, vec![t.tid])),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    let parts: Vec<String> = groups
        .iter()
        .take(6)
        .map(|(w, tids)| {
            if tids.len() == 1 {
                format!("thread {} {w}", tids[0])
            } else {
                format!("{} threads {w}", tids.len())
            }
        })
        .collect();
    let more = groups.len().saturating_sub(6);
    Some(format!(
        "{} other thread{}: {}{}",
        rest.len(),
        if rest.len() == 1 { "" } else { "s" },
        parts.join("; "),
        if more > 0 {
            format!("; and {more} more places")
        } else {
            String::new()
        }
    ))
}
