//! The running kernel's log, from /dev/kmsg.

use crate::event::{Event, Since};
use crate::parser::Parser;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Reads every record now in /dev/kmsg (and, with `follow`, those that
/// come), feeding `sink` with each completed event. Returns how many times
/// the ring buffer overwrote records before they were read.
///
/// The device is opened O_NONBLOCK: devkmsg_read then returns EAGAIN at
/// the end of the buffer instead of sleeping in `wait_event_interruptible`
/// for the next record, so a read of the whole log never waits; `follow`
/// waits in poll(2), a second at a time.
pub fn read_kmsg(
    follow: bool,
    parser: &mut Parser,
    mut sink: impl FnMut(Event) -> Result<(), String>,
) -> Result<u64, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| {
            format!("/dev/kmsg: {e} (reading the kernel log needs root or kernel.dmesg_restrict=0)")
        })?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut lost = 0u64;
    loop {
        // SAFETY: read(2) into a valid buffer; one call returns one record.
        let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    if !follow {
                        break;
                    }
                    // Nothing new: a filesystem error held for its
                    // read-only remount (printed in the same instant when
                    // printed at all) is shown now, not after 64 more lines.
                    parser.release_held();
                    while let Some(ev) = parser.next_event() {
                        sink(ev)?;
                    }
                    let mut pfd = libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, 1000) };
                    continue;
                }
                // The ring buffer overwrote records we had not read yet.
                Some(libc::EPIPE) => {
                    lost += 1;
                    continue;
                }
                Some(libc::EINTR) => continue,
                _ => return Err(format!("/dev/kmsg: {e}")),
            }
        }
        let rec = &buf[..n as usize];
        for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            parser.push_line(line);
        }
        while let Some(ev) = parser.next_event() {
            sink(ev)?;
        }
    }
    parser.finish();
    while let Some(ev) = parser.next_event() {
        sink(ev)?;
    }
    Ok(lost)
}

/// The sequence number of a /dev/kmsg record (`PRI,SEQ,TS,FLAGS;msg`).
pub fn kmsg_record_seq(rec: &[u8]) -> Option<u64> {
    let head = rec.split(|&b| b == b';').next()?;
    let mut it = head.splitn(3, |&b| b == b',');
    it.next()?;
    std::str::from_utf8(it.next()?).ok()?.parse().ok()
}

/// What [`follow_kmsg`] hands its caller.
#[derive(Debug)]
pub enum KmsgItem {
    /// A finished event; `fresh` is false for one whose first record's
    /// sequence number is at or below the `after` the follower was given
    /// (a restarted recorder stored it already).
    Event {
        /// The event (boxed: an event with its call trace and code dump
        /// is large, a gap is two numbers).
        event: Box<Event>,
        /// Not stored before.
        fresh: bool,
    },
    /// Records the ring buffer overwrote before they were read, seen as a
    /// gap in the sequence numbers: `count` records before `before_seq`.
    /// With `after`, the gap between it and the oldest record still in the
    /// ring counts too (overwritten while no one followed).
    Lost {
        /// How many records.
        count: u64,
        /// The first record read after the gap.
        before_seq: u64,
    },
}

/// Follows /dev/kmsg from its oldest record until `stop` is set, feeding
/// `sink` every event in order (see [`KmsgItem`]). Every record is parsed,
/// also those at or below `after`, so the parser sees each report whole
/// (a hung-task report printed across the resumption point is not cut in
/// two) and the caller has the whole boot's events for its diagnosis.
///
/// Reads never wait (O_NONBLOCK: devkmsg_read returns EAGAIN at the end of
/// the ring); the follower polls at most `poll_ms` at a time, checking
/// `stop` between polls. After a poll that timed out with nothing new, the
/// parser finishes what it holds: the kernel prints a report in one burst,
/// so a quiet ring means the report is whole, and its event is given now
/// rather than when the next unrelated line arrives.
pub fn follow_kmsg(
    after: Option<u64>,
    stop: &std::sync::atomic::AtomicBool,
    poll_ms: i32,
    mut sink: impl FnMut(KmsgItem) -> Result<(), String>,
) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| {
            format!("/dev/kmsg: {e} (reading the kernel log needs root or kernel.dmesg_restrict=0)")
        })?;
    let mut parser = Parser::new();
    let mut buf = vec![0u8; 16 * 1024];
    // The sequence number of the last record read (or the caller's `after`
    // before the first): the next should be one more.
    let mut prev = after;
    let mut pending = false;
    let give = |parser: &mut Parser, sink: &mut dyn FnMut(KmsgItem) -> Result<(), String>| {
        while let Some(event) = parser.next_event() {
            let fresh = match (event.seq, after) {
                (Some(s), Some(a)) => s > a,
                _ => true,
            };
            sink(KmsgItem::Event {
                event: Box::new(event),
                fresh,
            })?;
        }
        Ok::<(), String>(())
    };
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: read(2) into a valid buffer; one call returns one record.
        let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    parser.release_held();
                    give(&mut parser, &mut sink)?;
                    let mut pfd = libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one valid pollfd.
                    let r = unsafe { libc::poll(&mut pfd, 1, poll_ms) };
                    if r == 0 && pending {
                        parser.finish();
                        pending = false;
                        give(&mut parser, &mut sink)?;
                    }
                    continue;
                }
                // Overwritten before read: the kernel moved this reader to
                // the oldest record, whose sequence number shows the gap.
                Some(libc::EPIPE | libc::EINTR) => continue,
                _ => return Err(format!("/dev/kmsg: {e}")),
            }
        }
        let rec = &buf[..n as usize];
        if let Some(seq) = kmsg_record_seq(rec) {
            // `prev` starts at `after`: the records at or below it are
            // stored already (no gap among them is anyone's loss), and a
            // gap across it (the ring overwrote what came after it while
            // no recorder ran, or while this one replayed the older ones)
            // is counted from it.
            if let Some(p) = prev.filter(|&p| seq > p + 1) {
                sink(KmsgItem::Lost {
                    count: seq - p - 1,
                    before_seq: seq,
                })?;
            }
            prev = Some(seq.max(prev.unwrap_or(0)));
        }
        for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            parser.push_line(line);
        }
        pending = true;
        give(&mut parser, &mut sink)?;
    }
    parser.finish();
    give(&mut parser, &mut sink)
}

/// Every event of the running boot's kernel log, read without waiting.
pub fn live_events() -> Result<Vec<Event>, String> {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    read_kmsg(false, &mut parser, |e| {
        events.push(e);
        Ok(())
    })?;
    Ok(events)
}

impl Since {
    /// `--since`: seconds since boot (`3600`) or a UTC date
    /// (`YYYY-MM-DD[THH:MM[:SS]]`).
    pub fn parse(s: &str) -> Result<Since, String> {
        if let Ok(secs) = s.parse::<f64>() {
            return Ok(Since::Monotonic(secs));
        }
        let bad = || format!("--since {s:?}: expected seconds since boot or YYYY-MM-DD[THH:MM:SS]");
        let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
        let d: Vec<i64> = date
            .split('-')
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let t: Vec<i64> = time
            .split(':')
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [y, m, day] = d[..] else {
            return Err(bad());
        };
        let (hh, mm, ss) = (
            t.first().copied().unwrap_or(0),
            t.get(1).copied().unwrap_or(0),
            t.get(2).copied().unwrap_or(0),
        );
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
            return Err(bad());
        }
        // Days from civil (Howard Hinnant's algorithm, public domain idea).
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146097 + doe - 719468;
        Ok(Since::Epoch(days * 86400 + hh * 3600 + mm * 60 + ss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_seq() {
        assert_eq!(kmsg_record_seq(b"6,1234,5678,-;hello, world"), Some(1234));
        assert_eq!(
            kmsg_record_seq(b"4,7,1,c,caller=T1;x\n SUBSYSTEM=usb"),
            Some(7)
        );
        assert_eq!(kmsg_record_seq(b"garbage"), None);
        assert_eq!(kmsg_record_seq(b""), None);
    }

    #[test]
    fn since_forms() {
        assert!(matches!(Since::parse("3600"), Ok(Since::Monotonic(s)) if s == 3600.0));
        assert!(matches!(
            Since::parse("1970-01-02"),
            Ok(Since::Epoch(86400))
        ));
        assert!(matches!(
            Since::parse("2024-05-22T19:04:47"),
            Ok(Since::Epoch(1716404687))
        ));
        assert!(Since::parse("yesterday").is_err());
        assert!(Since::parse("2024-13-01").is_err());
    }
}
