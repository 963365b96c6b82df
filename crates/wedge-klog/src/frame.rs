//! Stack frames as printed by the kernel's unwinders.
//!
//! Forms recognised (all with an optional leading `? ` that marks a frame the
//! unwinder could not verify, which the kernel prints since 2.6.2x):
//!
//! * x86 since 4.x (ORC unwinder, addresses hidden): `__schedule+0x2de/0x890 [mod]`
//! * x86/MIPS/arm64 before that and `/proc/PID/stack`:
//!   `[<ffffffff816442f9>] schedule+0x29/0x70` (since 4.x `/proc/PID/stack`
//!   prints `[<0>]` because addresses are hashed)
//! * 32-bit ARM: `[<807762c0>] (__schedule) from [<80776938>] (schedule+0x50/0xa8)`
//!   (before 4.x the callee carried the offset: `(unwind_backtrace+0x0/0xe0) from`)
//! * powerpc: `[c0000000f0f9c0] [c000000000a0a4a8] dump_stack+0xb0/0xf4 (unreliable)`
//! * arm64 6.x: `__switch_to+0xdc/0x108 (T)`
//! * stack-boundary markers `<IRQ>`, `</IRQ>`, `<NMI>`, `<EOE>`, `<<EOE>>`,
//!   `<TASK>`, `</TASK>`, possibly followed by a frame on the same line.

use serde::Serialize;

use crate::util::{is_hex, strip_0x, token};

/// One call-trace frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// Symbol name (`schedule`, `sched_show_task.cold.14`), or a bare
    /// `0x...` address when the kernel could not symbolize it.
    pub function: String,
    /// Offset into the function, as printed (`0x29`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Size of the function, as printed (`0x70`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Module name for symbols outside vmlinux (`[nfsd]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Frame printed with `?`: found on the stack but not verified by the
    /// unwinder; often a stale return address.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreliable: bool,
    /// Address when printed (`[<ffffffff816442f9>]`), without `0x`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `file:line` when the trace was symbolized with line info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Frame {
    fn bare(function: &str) -> Frame {
        Frame {
            function: crate::util::bounded(function, 256),
            offset: None,
            size: None,
            module: None,
            unreliable: false,
            address: None,
            source: None,
        }
    }

    /// `function+offset/size [module]` as the kernel prints it.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if self.unreliable {
            s.push_str("? ");
        }
        s.push_str(&self.function);
        if let Some(o) = &self.offset {
            s.push('+');
            s.push_str(o);
            if let Some(z) = &self.size {
                s.push('/');
                s.push_str(z);
            }
        }
        if let Some(m) = &self.module {
            s.push_str(" [");
            s.push_str(m);
            s.push(']');
        }
        s
    }
}

/// What one line of a call trace contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameLine {
    /// A stack-boundary marker such as `<IRQ>` or `</TASK>`.
    pub marker: Option<String>,
    /// The frame on this line.
    pub frame: Option<Frame>,
    /// For ARM `(callee) from (caller)` lines: the caller.
    pub arm_caller: Option<Frame>,
}

fn is_marker(tok: &str) -> bool {
    tok.len() >= 3
        && tok.len() <= 12
        && tok.starts_with('<')
        && tok.ends_with('>')
        && tok
            .bytes()
            .all(|b| b.is_ascii_uppercase() || matches!(b, b'<' | b'>' | b'/'))
}

fn valid_symbol_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b'@'))
}

/// Parse `name+0xOFF/0xSIZE`, `name+0xOFF`, `name()`, `name` or `0xADDR`.
/// `strict` requires an offset (used where nothing else says "this is a
/// frame").
fn parse_symbol(tok: &str, strict: bool) -> Option<Frame> {
    let tok = tok.strip_suffix("()").unwrap_or(tok);
    if let Some((name, off)) = tok.split_once('+') {
        if !valid_symbol_name(name) {
            return None;
        }
        let (o, z) = match off.split_once('/') {
            Some((o, z)) => (o, Some(z)),
            None => (off, None),
        };
        if !(o.starts_with("0x") && is_hex(strip_0x(o))) {
            return None;
        }
        if let Some(z) = z {
            if !(z.starts_with("0x") && is_hex(strip_0x(z))) {
                return None;
            }
        }
        let mut f = Frame::bare(name);
        f.offset = Some(crate::util::bounded(o, 24));
        f.size = z.map(|z| crate::util::bounded(z, 24));
        return Some(f);
    }
    if tok.starts_with("0x") && is_hex(strip_0x(tok)) && tok.len() <= 18 {
        return Some(Frame::bare(tok));
    }
    if !strict && valid_symbol_name(tok) {
        return Some(Frame::bare(tok));
    }
    None
}

/// Parse what follows the symbol: ` [module]`, ` [module buildid]`,
/// ` (T)`, ` (unreliable)`, ` file.c:123`, ` [inline]`.
fn parse_trailer(f: &mut Frame, mut rest: &str) -> Option<()> {
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(());
        }
        if let Some(r) = rest.strip_prefix('[') {
            let (inner, after) = r.split_once(']')?;
            let m = inner.split_whitespace().next().unwrap_or("");
            if m != "inline" && f.module.is_none() && valid_module(m) {
                f.module = Some(m.to_string());
            }
            rest = after.strip_prefix("()").unwrap_or(after);
            continue;
        }
        if let Some(r) = rest.strip_prefix('(') {
            let (inner, after) = r.split_once(')')?;
            if inner.len() > 16 {
                return None;
            }
            rest = after;
            continue;
        }
        let (tok, r) = token(rest);
        if tok.contains(':') && (tok.contains('/') || tok.contains('.')) && !tok.contains("0x") {
            f.source = Some(crate::util::bounded(tok, 256));
            rest = r;
            continue;
        }
        return None;
    }
}

fn valid_module(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 64
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// `(symbol [module])` of the ARM unwinder.
fn parse_arm_paren(s: &str) -> Option<(Frame, &str)> {
    let r = s.strip_prefix('(')?;
    let (inner, after) = r.split_once(')')?;
    let (sym, trailer) = token(inner);
    let mut f = parse_symbol(sym, false)?;
    parse_trailer(&mut f, trailer)?;
    Some((f, after))
}

/// Parse one line of a call trace (prefix already stripped).  Returns `None`
/// when the line is not a frame or marker.
pub(crate) fn parse_frame_line(line: &str) -> Option<FrameLine> {
    let mut s = line.trim();
    let mut marker: Option<String> = None;
    for _ in 0..3 {
        let (tok, rest) = token(s);
        if is_marker(tok) {
            marker = Some(tok.to_string());
            s = rest;
        } else {
            break;
        }
    }
    if s.is_empty() {
        return marker.map(|m| FrameLine {
            marker: Some(m),
            frame: None,
            arm_caller: None,
        });
    }
    let mut address: Option<String> = None;
    if let Some(r) = s.strip_prefix("[<") {
        let (addr, after) = r.split_once(">]")?;
        if !is_hex(addr) || addr.len() > 16 {
            return None;
        }
        address = Some(addr.to_string());
        s = after.trim_start();
        if s.starts_with('(') {
            // ARM: "(callee) from [<addr>] (caller+off/size)"
            let (mut callee, after) = parse_arm_paren(s)?;
            callee.address = address;
            let after = after.trim_start();
            let after = after.strip_prefix("from")?.trim_start();
            let after = after.strip_prefix("[<")?;
            let (caddr, after) = after.split_once(">]")?;
            let (mut caller, tail) = parse_arm_paren(after.trim_start())?;
            if !tail.trim().is_empty() {
                return None;
            }
            caller.address = Some(crate::util::bounded(caddr, 16));
            return Some(FrameLine {
                marker,
                frame: Some(callee),
                arm_caller: Some(caller),
            });
        }
    } else if s.starts_with('[') {
        // powerpc: one or two "[hexaddr]" groups (stack pointer, return address).
        for _ in 0..2 {
            if let Some(r) = s.strip_prefix('[') {
                let (a, after) = r.split_once(']')?;
                if !is_hex(a) || a.len() > 16 {
                    return None;
                }
                address = Some(a.to_string());
                s = after.trim_start();
            }
        }
    }
    let mut unreliable = false;
    if let Some(r) = s.strip_prefix("? ") {
        unreliable = true;
        s = r.trim_start();
    }
    let (tok, rest) = token(s);
    let strict = address.is_none() && !unreliable;
    let mut f = parse_symbol(tok, strict)?;
    if tok.starts_with("0x") && address.is_none() && !unreliable {
        return None;
    }
    parse_trailer(&mut f, rest)?;
    f.unreliable = unreliable;
    f.address = address;
    Some(FrameLine {
        marker,
        frame: Some(f),
        arm_caller: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(l: &str) -> Option<(String, bool, Option<String>)> {
        parse_frame_line(l)
            .and_then(|f| f.frame)
            .map(|f| (f.function, f.unreliable, f.module))
    }

    #[test]
    fn forms() {
        assert_eq!(
            func("__schedule+0x2de/0x890"),
            Some(("__schedule".into(), false, None))
        );
        assert_eq!(
            func("? nfsd_pool_stats_release+0x60/0x60 [nfsd]"),
            Some(("nfsd_pool_stats_release".into(), true, Some("nfsd".into())))
        );
        assert_eq!(
            func("[<ffffffffa066d930>] ? nfsd_pool_stats_release+0x60/0x60 [nfsd]"),
            Some(("nfsd_pool_stats_release".into(), true, Some("nfsd".into())))
        );
        assert_eq!(
            func("<NMI>  [<ffffffff814a2759>] ? dump_stack+0xc/0x15"),
            Some(("dump_stack".into(), true, None))
        );
        assert_eq!(
            func("seq_open+0x9c/0xa8()"),
            Some(("seq_open".into(), false, None))
        );
        assert_eq!(
            func("__switch_to+0xdc/0x108 (T)"),
            Some(("__switch_to".into(), false, None))
        );
        assert_eq!(
            func("[c000000000f0f9c0] [c000000000a0a4a8] dump_stack+0xb0/0xf4 (unreliable)"),
            Some(("dump_stack".into(), false, None))
        );
        let arm = parse_frame_line(
            "[<7f4ba618>] (fuse_writepages [fuse]) from [<8022e284>] (do_writepages+0x30/0x8c)",
        )
        .expect("arm");
        assert_eq!(arm.frame.map(|f| f.module), Some(Some("fuse".into())));
        assert_eq!(
            arm.arm_caller.map(|f| f.function),
            Some("do_writepages".into())
        );
        assert!(parse_frame_line("RIP: 0010:relid2channel+0x1a/0x30 [hv_vmbus]").is_none());
        assert!(parse_frame_line("schedule").is_none());
        assert!(parse_frame_line("hello world+0x1/0x2").is_none());
        assert_eq!(
            parse_frame_line("</TASK>").and_then(|f| f.marker),
            Some("</TASK>".into())
        );
    }
}
