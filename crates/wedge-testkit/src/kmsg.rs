//! Capture kernel log records produced *after* a point in time, from
//! `/dev/kmsg`.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags, SeekFrom};

/// A reader positioned at the end of the kernel log when it was opened: it
/// returns only records logged afterwards.
#[derive(Debug)]
pub struct KmsgTail {
    fd: OwnedFd,
    lines: Vec<String>,
    raw: Vec<String>,
}

impl KmsgTail {
    /// Open `/dev/kmsg` non-blocking and seek to its end (`SEEK_END` on kmsg
    /// means "next record to be logged").
    pub fn open() -> io::Result<KmsgTail> {
        let fd = rustix::fs::open(
            "/dev/kmsg",
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::seek(&fd, SeekFrom::End(0))?;
        Ok(KmsgTail {
            fd,
            lines: Vec::new(),
            raw: Vec::new(),
        })
    }

    /// Read every record available now; each is the message text (prefix
    /// `pri,seq,ts,flags;` and continuation lines stripped).
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let first = rec.lines().next().unwrap_or("");
                    let msg = first.split_once(';').map_or(first, |(_, m)| m);
                    out.push(msg.to_string());
                    self.raw.push(first.to_string());
                }
                // EPIPE: records were overwritten before we read them; the
                // next read continues at the oldest available one.
                Err(rustix::io::Errno::PIPE) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        self.lines.extend(out.iter().cloned());
        out
    }

    /// Poll until a record containing every string in `needles` shows up, for
    /// at most `timeout`.
    pub fn wait_for(&mut self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.read_new();
            if let Some(l) = self
                .lines
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Some(l.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// All records read so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// All records read so far as `/dev/kmsg` gave them
    /// (`PRI,SEQ,USEC,FLAGS;message`, dictionary lines dropped): the format
    /// `wedge log` reads.
    pub fn raw_records(&self) -> &[String] {
        &self.raw
    }
}
