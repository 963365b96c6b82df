//! The text form of a [`CoreReport`] and of single frames.

use crate::report::{CoreReport, Frame, FrameMark, ThreadReport};
use std::fmt::Write;

/// `#N 0xADDR function+off (file:line) [module]`, with marks.
pub fn frame_line(f: &Frame) -> String {
    let mut s = format!("#{:<2} {:#018x} ", f.index, f.address);
    match &f.function {
        Some(n) => {
            s.push_str(n);
            if let Some(o) = f.offset {
                let _ = write!(s, "+{o:#x}");
            }
            if f.inlined {
                s.push_str(" (inlined)");
            }
        }
        None => s.push_str("??"),
    }
    if let Some(file) = &f.file {
        match f.line {
            Some(l) => {
                let _ = write!(s, " ({file}:{l})");
            }
            None => {
                let _ = write!(s, " ({file})");
            }
        }
    }
    if let Some(m) = &f.module {
        let _ = write!(s, " [{}]", m.rsplit('/').next().unwrap_or(m));
    }
    match &f.mark {
        Some(FrameMark::Unsymbolized { reason }) => {
            let _ = write!(s, "  ! unsymbolized: {reason}");
        }
        Some(FrameMark::BuildIdMismatch) => s.push_str("  ! build-id mismatch: may be wrong"),
        None => {}
    }
    s
}

fn thread(out: &mut String, r: &CoreReport, t: &ThreadReport) {
    let _ = write!(out, "thread {}", t.tid);
    if t.crashed {
        out.push_str(" (crashed");
        if let Some(s) = &r.signal {
            let _ = write!(out, ": {}", s.name);
        }
        out.push(')');
    }
    out.push('\n');
    if let Some(regs) = &t.registers {
        let _ = write!(
            out,
            "  pc {:#x}  sp {:#x}  fp {:#x}",
            regs.pc, regs.sp, regs.fp
        );
        if let Some(i) = &t.instruction {
            let _ = write!(out, "  instruction: {i}");
        }
        out.push('\n');
    }
    if !t.pending.is_empty() {
        let _ = writeln!(out, "  pending: {}", t.pending.join(" "));
    }
    for f in &t.frames {
        let _ = writeln!(out, "  {}", frame_line(f));
    }
    if let Some(s) = &t.unwind_stopped {
        let _ = writeln!(out, "  (backtrace stopped: {s})");
    }
}

/// The whole report as text. `verbose` adds every register and mapping.
pub fn render(r: &CoreReport, verbose: bool) -> String {
    let mut out = String::new();
    let _ = write!(out, "core: {}", r.file);
    if let Some(c) = &r.compression {
        let _ = write!(out, " ({c})");
    }
    let _ = writeln!(out, ", {}", r.arch);
    let p = &r.process;
    if p.pid.is_some() || p.command.is_some() {
        let _ = write!(out, "process:");
        if let Some(pid) = p.pid {
            let _ = write!(out, " pid {pid}");
        }
        if let Some(c) = &p.command {
            let _ = write!(out, " ({})", wedge_kernel::printable(c));
        }
        if let Some(u) = p.uid {
            let _ = write!(out, " uid {u}");
        }
        if let Some(a) = &p.args {
            let _ = write!(out, ": {}", wedge_kernel::printable(a));
        }
        out.push('\n');
    }
    if let Some(e) = &p.executable {
        let _ = writeln!(out, "executable: {e}");
    }
    if let Some(s) = &r.signal {
        let _ = write!(out, "signal: {} ({}: {})", s.name, s.code_name, s.meaning);
        if let Some(a) = s.fault_address {
            let _ = write!(out, ", fault address {a:#x}");
        }
        if let Some(pid) = s.sender_pid {
            let _ = write!(out, ", from pid {pid}");
            if let Some(u) = s.sender_uid {
                let _ = write!(out, " uid {u}");
            }
        }
        out.push('\n');
    }
    if !r.story.is_empty() {
        out.push('\n');
        for s in &r.story {
            let _ = writeln!(out, "{s}.");
        }
    }
    for t in &r.threads {
        out.push('\n');
        thread(&mut out, r, t);
        if verbose {
            if let Some(regs) = &t.registers {
                for chunk in regs.all.chunks(4) {
                    out.push_str("   ");
                    for (n, v) in chunk {
                        let _ = write!(out, " {n:>8} {v:#018x}");
                    }
                    out.push('\n');
                }
            }
        }
    }
    if verbose {
        out.push_str("\nmappings:\n");
        for m in &r.mappings {
            let _ = writeln!(
                out,
                "  {:#x}-{:#x} {:#x} {} {}{}",
                m.start,
                m.end,
                m.offset,
                m.path,
                m.state,
                m.build_id
                    .as_deref()
                    .map(|b| format!(" build-id {b}"))
                    .unwrap_or_default()
            );
        }
        out.push_str("\nauxv:\n");
        for a in &r.auxv {
            let _ = writeln!(
                out,
                "  {:<20} {:#x}",
                a.name.map_or_else(|| a.key.to_string(), str::to_string),
                a.value
            );
        }
    }
    if !r.missing.is_empty() {
        out.push_str("\nmissing:\n");
        for m in &r.missing {
            let _ = writeln!(out, "  - {m}");
        }
    }
    out
}
