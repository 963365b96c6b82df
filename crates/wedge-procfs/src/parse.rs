//! Parsers for the small /proc formats that procfs-core does not cover or
//! that wedge needs in a different shape. All take untrusted bytes and
//! never panic.

use std::collections::BTreeMap;
use wedge_model::{FdDetail, IoUringInfo, KernelFrame, Syscall};

/// `/proc/PID/stack`: one `[<ADDR>] FUNC+OFF/SIZE [MODULE]` per line. The
/// address is `0` unless kptr_restrict allows it.
pub fn kernel_stack(text: &str) -> Vec<KernelFrame> {
    // Hot path (one stack per thread): byte searches, no substring
    // searchers built per line.
    // Sized to the line count: 10,000 stacks kept at a guessed capacity
    // would hold megabytes of nothing.
    let mut frames = Vec::with_capacity(memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        if let Some(f) = stack_line(&rest[..end]) {
            frames.push(f);
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    frames
}

/// One line: `[<0>] fuse_wait_answer+0x3c/0x60 [fuse]` (6.x hides the
/// address from everyone: `<0>`), `[<ffffffff81234567>] …` on older
/// kernels, a bare `func+off/size`, or with `? ` for an unreliable frame.
fn stack_line(line: &str) -> Option<KernelFrame> {
    let line = line.trim_ascii();
    let (address, rest) = match line.strip_prefix("[<") {
        Some(r) => {
            let close = memchr::memchr(b'>', r.as_bytes())?;
            let after = r.get(close + 1..)?.strip_prefix(']')?;
            (
                u64::from_str_radix(r[..close].trim_ascii(), 16)
                    .ok()
                    .filter(|&a| a != 0),
                after.trim_ascii(),
            )
        }
        None => (None, line),
    };
    // A module is the bracketed last word; function names hold no '['.
    let (sym, module) = match memchr::memchr(b'[', rest.as_bytes()) {
        Some(i) if i > 0 && rest.as_bytes()[i - 1] == b' ' => (
            rest[..i].trim_ascii(),
            Some(rest[i + 1..].trim_ascii().trim_end_matches(']').to_string()),
        ),
        _ => (rest, None),
    };
    let (unreliable, sym) = match sym.strip_prefix("? ") {
        Some(s) => (true, s.trim_start_matches("? ")),
        None => (false, sym),
    };
    if sym.is_empty() {
        return None;
    }
    let (function, offset, size) = match memchr::memchr(b'+', sym.as_bytes()) {
        Some(i) => {
            let off = &sym[i + 1..];
            let (o, s) = match memchr::memchr(b'/', off.as_bytes()) {
                Some(j) => (&off[..j], &off[j + 1..]),
                None => (off, ""),
            };
            (&sym[..i], hex(o), hex(s))
        }
        None => (sym, None, None),
    };
    Some(KernelFrame {
        function: function.to_string(),
        offset,
        size,
        module,
        address,
        unreliable,
        origin: None,
    })
}

/// A hex number, `0x` or not. By hand: `from_str_radix` checks for signs
/// and overflow in ways that cost more than the stack line it is part of.
pub(crate) fn hex(s: &str) -> Option<u64> {
    let s = s.trim_ascii();
    let digits = s.strip_prefix("0x").unwrap_or(s).as_bytes();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | d as u64;
    }
    Some(v)
}

/// `/proc/PID/wchan`: a symbol, or `0` when the task runs or the kernel
/// will not say (since 4.x non-owners see `0` too).
pub fn wchan(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t == "0" {
        None
    } else {
        Some(t.to_string())
    }
}

/// `/proc/PID/syscall`: `running`, `-1 SP PC` (blocked outside a system
/// call), or `NR ARG0..ARG5 SP PC`, numbers after NR in hex.
pub fn syscall(text: &str, names: impl Fn(i64) -> Option<&'static str>) -> Option<Syscall> {
    let t = text.trim_ascii();
    if t == "running" {
        return Some(Syscall::Running);
    }
    let mut it = t.split_ascii_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    // At most NR and eight numbers; anything else is not this format.
    let mut rest = [0u64; 8];
    let mut n = 0;
    for word in it {
        *rest.get_mut(n)? = hex(word)?;
        n += 1;
    }
    if nr < 0 {
        return match n {
            2 => Some(Syscall::NotInSyscall {
                sp: rest[0],
                pc: rest[1],
            }),
            _ => None,
        };
    }
    if n != 8 {
        return None;
    }
    Some(Syscall::InSyscall {
        nr,
        name: names(nr).map(str::to_string),
        args: rest[..6].to_vec(),
        sp: rest[6],
        pc: rest[7],
    })
}

/// `se.exec_start` from `/proc/PID/sched`, in milliseconds.
pub fn sched_exec_start(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with("se.exec_start"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// The common head of every fdinfo: `pos`, `flags` (octal), `mnt_id`, `ino`.
#[derive(Debug, Default, PartialEq)]
pub struct FdInfoHead {
    pub pos: Option<u64>,
    pub flags: Option<u32>,
    pub mnt_id: Option<u64>,
    pub ino: Option<u64>,
}

pub fn fdinfo_head(text: &str) -> FdInfoHead {
    let mut h = FdInfoHead::default();
    for line in text.lines().take(8) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "pos" => h.pos = v.parse().ok(),
            "flags" => h.flags = u32::from_str_radix(v, 8).ok(),
            "mnt_id" => h.mnt_id = v.parse().ok(),
            "ino" => h.ino = v.parse().ok(),
            _ => {}
        }
    }
    h
}

/// Type-specific fdinfo blocks.
pub fn fdinfo_detail(kind: wedge_model::FileKind, text: &str) -> Option<FdDetail> {
    use wedge_model::FileKind;
    match kind {
        FileKind::IoUring => Some(FdDetail::IoUring(io_uring(text))),
        FileKind::Eventfd => Some(FdDetail::Eventfd {
            count: text
                .lines()
                .find_map(|l| l.strip_prefix("eventfd-count:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok()),
        }),
        FileKind::Epoll => Some(FdDetail::Epoll {
            targets: text
                .lines()
                .filter_map(|l| {
                    let mut it = l.split_ascii_whitespace();
                    if it.next()? != "tfd:" {
                        return None;
                    }
                    let fd = it.next()?.parse().ok()?;
                    if it.next()? != "events:" {
                        return None;
                    }
                    let ev = u32::from_str_radix(it.next()?, 16).ok()?;
                    Some((fd, ev))
                })
                .collect(),
        }),
        FileKind::Inotify => Some(FdDetail::Inotify {
            watches: text
                .lines()
                .filter(|l| l.starts_with("inotify "))
                .filter_map(|l| {
                    let mut ino = None;
                    let mut dev = None;
                    for kv in l.split_ascii_whitespace() {
                        if let Some(v) = kv.strip_prefix("ino:") {
                            ino = u64::from_str_radix(v, 16).ok();
                        } else if let Some(v) = kv.strip_prefix("sdev:") {
                            dev = Some(v.to_string());
                        }
                    }
                    Some((ino?, dev?))
                })
                .collect(),
        }),
        _ => None,
    }
}

/// io_uring's fdinfo (`io_uring_show_fdinfo`). Keys come and go between
/// releases (SqThread since 5.x, SqTotalTime since 6.x), so all `Key: value`
/// lines are kept and the counters analysis needs are derived.
pub fn io_uring(text: &str) -> IoUringInfo {
    let mut raw = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        // SQE/CQE listings are indented or start with a number.
        if k.is_empty() || !k.starts_with(|c: char| c.is_ascii_alphabetic()) || k.contains(' ') {
            continue;
        }
        if matches!(k, "pos" | "flags" | "mnt_id" | "ino") {
            continue;
        }
        raw.insert(k.to_string(), v.trim().to_string());
    }
    // Masks are printed as 0x%x, counters in decimal.
    let num = |k: &str| {
        raw.get(k)
            .and_then(|v: &String| match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse::<u64>().ok(),
            })
    };
    IoUringInfo {
        sq_entries: num("SqMask").map(|m| m + 1),
        cq_entries: num("CqMask").map(|m| m + 1),
        sq_pending: num("SQEs")
            .or_else(|| Some(num("SqTail")?.wrapping_sub(num("SqHead")?) & 0xffff_ffff)),
        cq_ready: num("CQEs")
            .or_else(|| Some(num("CqTail")?.wrapping_sub(num("CqHead")?) & 0xffff_ffff)),
        sq_thread: raw
            .get("SqThread")
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|&p| p > 0),
        overflow: None,
        raw,
    }
}

/// `ns/*` link targets look like `pid:[4026531836]`.
pub fn ns_inode(link: &str) -> Option<u64> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// Boot time in Unix seconds: the `btime` line of `/proc/stat`
/// (`getboottime64()`, whole seconds).
pub fn btime(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_line() {
        assert_eq!(
            btime("cpu  1 2 3\nintr 5\nctxt 9\nbtime 1764578400\nprocesses 7\n"),
            Some(1764578400)
        );
        assert_eq!(btime("cpu 1\n"), None);
    }

    #[test]
    fn stack_lines() {
        let s = kernel_stack(
            "[<0>] request_wait_answer+0x12f/0x210 [fuse]\n[<ffffffff81000000>] do_exit+0x360/0xb80\n\ngarbage\n[<0>] ? foo\n",
        );
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].function, "request_wait_answer");
        assert_eq!(s[0].offset, Some(0x12f));
        assert_eq!(s[0].size, Some(0x210));
        assert_eq!(s[0].module.as_deref(), Some("fuse"));
        assert_eq!(s[1].address, Some(0xffffffff81000000));
        assert_eq!(s[2].function, "garbage");
        assert!(s[3].unreliable);
    }

    #[test]
    fn syscalls() {
        let n = |_| Some("read");
        assert_eq!(syscall("running\n", n), Some(Syscall::Running));
        assert_eq!(
            syscall("-1 0x7ffc 0x7f00\n", n),
            Some(Syscall::NotInSyscall {
                sp: 0x7ffc,
                pc: 0x7f00
            })
        );
        let s = syscall("0 0x3 0x7fbcbf806000 0x20000 0x7fbcbf899b60 0xffffffff 0x0 0x7ffff4118c58 0x7fbcbf9822ad", n).unwrap();
        assert!(matches!(
            s,
            Syscall::InSyscall {
                nr: 0,
                sp: 0x7ffff4118c58,
                ..
            }
        ));
        assert_eq!(syscall("1 2", n), None);
        assert_eq!(syscall("", n), None);
    }

    #[test]
    fn fdinfo() {
        let h = fdinfo_head("pos:\t0\nflags:\t02100002\nmnt_id:\t15\nino:\t1057\n");
        assert_eq!(h.flags, Some(0o2100002));
        assert_eq!(h.mnt_id, Some(15));
        let u = io_uring("pos:\t0\nSqMask:\t0x3f\nSqHead:\t5\nSqTail:\t7\nCachedSqHead:\t5\nCqMask:\t127\nCqHead:\t0\nCqTail:\t0\nSQEs:\t2\nSqThread:\t-1\n");
        assert_eq!(u.sq_pending, Some(2));
        assert_eq!(u.sq_thread, None);
        assert_eq!(u.cq_entries, Some(128));
    }

    #[test]
    fn sched_and_ns() {
        assert_eq!(
            sched_exec_start(
                "x (1, #threads: 1)\n---\nse.exec_start      :        120648.265264\n"
            ),
            Some(120648.265264)
        );
        assert_eq!(ns_inode("pid:[4026531836]"), Some(4026531836));
        assert_eq!(ns_inode("pid:"), None);
    }
}
