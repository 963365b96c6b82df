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
