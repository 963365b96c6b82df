//! The few lines of a thread's `status` that wedge needs, parsed without
//! allocation. procfs-core's `Status` (used for processes) builds a map of
//! all ~55 lines; for 10,000 threads that alone costs more than `ps` does.

use wedge_kernel::SignalSet;

#[derive(Debug, Default, PartialEq)]
pub struct ThreadStatus {
    pub tracer_pid: Option<i32>,
    pub ns_tids: Vec<i32>,
    pub pending: SignalSet,
    pub blocked: SignalSet,
    pub voluntary: Option<u64>,
    pub involuntary: Option<u64>,
}

pub fn parse(text: &str) -> ThreadStatus {
    // fs/proc/array.c prints the lines in a fixed order: each key is looked
    // for (SIMD substring search) from where the previous one was found, so
    // the ~1.4 KB text is crossed once. A key an older kernel does not print
    // (NSpid before 4.1) is skipped without moving the cursor.
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // The searchers are built once: building one costs as much as a search.
    static KEYS: LazyLock<[Finder<'static>; 6]> = LazyLock::new(|| {
        [
            Finder::new(b"\nTracerPid:"),
            Finder::new(b"\nNSpid:"),
            Finder::new(b"\nSigPnd:"),
            Finder::new(b"\nSigBlk:"),
            Finder::new(b"\nvoluntary_ctxt_switches:"),
            Finder::new(b"\nnonvoluntary_ctxt_switches:"),
        ]
    });
    let [tracer, nspid, sigpnd, sigblk, vol, nonvol] = &*KEYS;
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut field = |key: &Finder<'_>| -> Option<&str> {
        let start = at + key.find(bytes.get(at..)?)? + key.needle().len();
        let len = memchr::memchr(b'\n', &bytes[start..]).unwrap_or(bytes.len() - start);
        at = start + len;
        text.get(start..start + len).map(str::trim)
    };
    let mut s = ThreadStatus {
        tracer_pid: field(tracer)
            .and_then(|v| v.parse().ok())
            .filter(|&p: &i32| p > 0),
        ..ThreadStatus::default()
    };
    if let Some(v) = field(nspid) {
        s.ns_tids = v
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
    }
    s.pending = field(sigpnd)
        .and_then(SignalSet::from_hex)
        .unwrap_or_default();
    s.blocked = field(sigblk)
        .and_then(SignalSet::from_hex)
        .unwrap_or_default();
    s.voluntary = field(vol).and_then(|v| v.parse().ok());
    s.involuntary = field(nonvol).and_then(|v| v.parse().ok());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thread_lines() {
        let s = parse("Name:\tx\nTracerPid:\t42\nNSpid:\t1865\t1\nSigPnd:\t0000000000000100\nSigBlk:\t0000000000010000\nvoluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t1\n");
        assert_eq!(s.tracer_pid, Some(42));
        assert_eq!(s.ns_tids, vec![1865, 1]);
        assert!(s.pending.has_sigkill());
        assert_eq!(s.voluntary, Some(3));
        assert_eq!(parse("garbage\n\0\0"), ThreadStatus::default());
    }
}

/// The fields of `/proc/PID/stat` wedge uses. Parsed by hand on the
/// per-thread hot path for the same reason as [`parse`]; the comm may hold
/// spaces and parentheses, so fields are counted from the *last* `)`.
#[derive(Debug, Default, PartialEq)]
pub struct TaskStat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i32,
    pub flags: u32,
    pub utime: u64,
    pub stime: u64,
    pub starttime: u64,
    pub processor: Option<i32>,
}

pub fn parse_stat(text: &str) -> Option<TaskStat> {
    let open = memchr::memchr(b'(', text.as_bytes())?;
    let close = memchr::memrchr(b')', text.as_bytes())?;
    let comm = text.get(open + 1..close)?.to_string();
    // The fields after the comm are single-space separated numbers (and
    // the state letter): walk them as bytes.
    let mut f = Fields(text.get(close + 1..)?.as_bytes());
    // Field numbers as in proc(5); field 3 is the first after the comm.
    let state = *f.next()?.first()? as char;
    let mut nth = |skip: usize| -> Option<&[u8]> {
        for _ in 0..skip {
            f.next()?;
        }
        f.next()
    };
    let ppid = num(nth(0)?)?; // 4
    let pgrp = num(nth(0)?)?; // 5
    let session = num(nth(0)?)?; // 6
    let tty_nr = num(nth(0)?)?; // 7
    let flags = num(nth(1)?)?; // 9
    let utime = num(nth(4)?)?; // 14
    let stime = num(nth(0)?)?; // 15
    let starttime = num(nth(6)?)?; // 22
    let processor = nth(16).and_then(num); // 39
    Some(TaskStat {
        comm,
        state,
        ppid,
        pgrp,
        session,
        tty_nr,
        flags,
        utime,
        stime,
        starttime,
        processor,
    })
}

/// A decimal field in the type it is kept in; a value that does not fit
/// (or is negative where it cannot be) is rejected, as `str::parse` would.
fn num<T: TryFrom<i128>>(word: &[u8]) -> Option<T> {
    T::try_from(dec(word)?).ok()
}

/// Whitespace-separated words of a byte string.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &self.0[start..];
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

/// A decimal, optionally negative (tty_nr and a few others can be).
fn dec(word: &[u8]) -> Option<i128> {
    let (neg, digits) = match word.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, word),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: i128 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as i128;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod stat_tests {
    use super::*;

    #[test]
    fn matches_procfs_core() {
        let line = "1861 (a) b) (c) S 1044 1861 1044 34816 1861 4194560 98 0 0 0 1 2 0 0 20 0 1 0 12064 8466432 211 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b) (c");
        assert_eq!(s.state, 'S');
        assert_eq!(
            (s.ppid, s.pgrp, s.session, s.tty_nr),
            (1044, 1861, 1044, 34816)
        );
        assert_eq!(s.flags, 4194560);
        assert_eq!((s.utime, s.stime, s.starttime), (1, 2, 12064));
        assert_eq!(s.processor, Some(1));
        use procfs_core::FromRead;
        let p = procfs_core::process::Stat::from_read(line.as_bytes()).unwrap();
        assert_eq!(
            (p.starttime, p.flags, p.processor),
            (s.starttime, s.flags, s.processor)
        );
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }
}
