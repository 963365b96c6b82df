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
    // The lines come in a fixed order (fs/proc/array.c): look each key up
    // from where the previous one was found, so the text is scanned once.
    // A key an older kernel does not print (NSpid before 4.1) is skipped
    // without moving the cursor.
    let mut at = 0;
    let mut field = |key: &str| -> Option<&str> {
        let rest = text.get(at..)?;
        let start = at + rest.find(key)? + key.len();
        let len = text.get(start..)?.find('\n').unwrap_or(text.len() - start);
        at = start + len;
        text.get(start..start + len).map(str::trim)
    };
    let mut s = ThreadStatus {
        tracer_pid: field("\nTracerPid:")
            .and_then(|v| v.parse().ok())
            .filter(|&p: &i32| p > 0),
        ..ThreadStatus::default()
    };
    if let Some(v) = field("\nNSpid:") {
        s.ns_tids = v
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
    }
    s.pending = field("\nSigPnd:")
        .and_then(SignalSet::from_hex)
        .unwrap_or_default();
    s.blocked = field("\nSigBlk:")
        .and_then(SignalSet::from_hex)
        .unwrap_or_default();
    s.voluntary = field("\nvoluntary_ctxt_switches:").and_then(|v| v.parse().ok());
    s.involuntary = field("\nnonvoluntary_ctxt_switches:").and_then(|v| v.parse().ok());
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
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut f = text.get(close + 1..)?.split_ascii_whitespace();
    // Field numbers as in proc(5); field 3 is the first after the comm.
    let state = f.next()?.chars().next()?;
    let mut nth = |skip: usize| -> Option<&str> {
        for _ in 0..skip {
            f.next()?;
        }
        f.next()
    };
    let ppid = nth(0)?.parse().ok()?; // 4
    let pgrp = nth(0)?.parse().ok()?; // 5
    let session = nth(0)?.parse().ok()?; // 6
    let tty_nr = nth(0)?.parse().ok()?; // 7
    let flags = nth(1)?.parse().ok()?; // 9
    let utime = nth(4)?.parse().ok()?; // 14
    let stime = nth(0)?.parse().ok()?; // 15
    let starttime = nth(6)?.parse().ok()?; // 22
    let processor = nth(16).and_then(|v| v.parse().ok()); // 39
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
