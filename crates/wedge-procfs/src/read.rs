//! Reads relative to an open /proc directory, each one announced to the
//! watchdog before it starts, so a read that hangs is seen and abandoned.
//!
//! This is the hot path of a scan (six files per thread, 10,000 threads on
//! a busy machine): announcing a read allocates nothing, and paths for
//! messages are only formatted when a read fails.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;
use wedge_model::{Field, MissingReason};

/// A file of a task: `stat`, `task/TID/stack`, `fd/7`, `fdinfo/7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub tid: Option<i32>,
    pub name: &'static str,
    pub fd: Option<i32>,
}

impl Target {
    pub fn proc(name: &'static str) -> Self {
        Target {
            tid: None,
            name,
            fd: None,
        }
    }

    pub fn thread(tid: i32, name: &'static str) -> Self {
        Target {
            tid: Some(tid),
            name,
            fd: None,
        }
    }

    pub fn fd(name: &'static str, fd: i32) -> Self {
        Target {
            tid: None,
            name,
            fd: Some(fd),
        }
    }

    /// `task/TID/NAME/FD`: a descriptor of one thread's own file table.
    pub fn thread_fd(tid: i32, name: &'static str, fd: i32) -> Self {
        Target {
            tid: Some(tid),
            name,
            fd: Some(fd),
        }
    }

    /// The path relative to /proc/PID, which is also the key under which a
    /// blocked read is remembered.
    pub fn key(&self) -> String {
        let mut s = String::new();
        if let Some(t) = self.tid {
            s.push_str(&format!("task/{t}/"));
        }
        s.push_str(self.name);
        if let Some(fd) = self.fd {
            s.push_str(&format!("/{fd}"));
        }
        s
    }
}

/// What a worker is reading right now: the watchdog's view of it.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    pub pid: i32,
    pub job: u64,
    pub target: Target,
    pub since: Instant,
}

/// One worker's announcement board.
#[derive(Default)]
pub struct Slot {
    pub busy: Mutex<Option<Busy>>,
    pub abandoned: std::sync::atomic::AtomicBool,
}

/// A failed read, classified.
#[derive(Debug, Clone)]
pub struct ReadFailure {
    pub reason: MissingReason,
    pub detail: String,
}

impl ReadFailure {
    pub fn field<T>(self) -> Field<T> {
        Field::missing(self.reason, self.detail)
    }
}

pub fn classify(errno: Errno, what: &str) -> ReadFailure {
    let (reason, why) = match errno {
        Errno::NOENT | Errno::SRCH => (MissingReason::Vanished, "the task exited"),
        // Root is refused too: the per-task files (stack, fd/*, exe, ns/*)
        // pass ptrace_may_access(), which also fails when the task holds
        // capabilities the viewer lacks (cap_ptrace_access_check), is not
        // dumpable, or a security module protects it — PID 1 of a VM's
        // init with a fuller capability set than our shell, for one.
        Errno::ACCESS | Errno::PERM if rustix::process::geteuid().is_root() => (
            MissingReason::PermissionDenied,
            "permission denied even to root (the kernel's ptrace access check refused: the \
             task holds capabilities wedge lacks, is not dumpable, or a security module \
             protects it)",
        ),
        Errno::ACCESS | Errno::PERM => (
            MissingReason::PermissionDenied,
            "permission denied (not readable without root)",
        ),
        Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP => {
            (MissingReason::NotSupported, "not supported by this kernel")
        }
        _ => (MissingReason::Error, ""),
    };
    let detail = if why.is_empty() {
        format!("reading {what}: {errno}")
    } else {
        format!("reading {what}: {why}")
    };
    ReadFailure { reason, detail }
}

/// Per-worker reader state for one job.
pub struct TaskReader<'a> {
    pub slot: &'a Slot,
    pub root: &'a str,
    pub buf: Vec<u8>,
    pub reads: u64,
    pub pid: i32,
    pub job: u64,
    /// Reads that blocked on an earlier attempt at this job: not retried.
    pub skip: &'a HashSet<String>,
}

impl<'a> TaskReader<'a> {
    pub fn path(&self, t: Target) -> String {
        format!("{}/{}/{}", self.root, self.pid, t.key())
    }

    fn announce(&self, target: Target) {
        if let Ok(mut b) = self.slot.busy.lock() {
            *b = Some(Busy {
                pid: self.pid,
                job: self.job,
                target,
                since: Instant::now(),
            });
        }
    }

    fn done(&self) {
        if let Ok(mut b) = self.slot.busy.lock() {
            *b = None;
        }
    }

    fn skipped(&self, t: Target) -> Option<ReadFailure> {
        if self.skip.is_empty() || !self.skip.contains(&t.key()) {
            return None;
        }
        Some(ReadFailure {
            reason: MissingReason::TimedOut,
            detail: format!(
                "reading {} blocked past the deadline: {}",
                self.path(t),
                crate::scan::blocks_on(t.name)
            ),
        })
    }

    /// The name to open relative to the process's directory fd, built in
    /// a fixed buffer (no allocation: this runs 40,000 times a scan). A
    /// thread's files are reached as `task/TID/NAME` through the open
    /// `/proc/PID` directory: the process cannot be swapped for another under
    /// us, and opening a directory per thread would cost two more system
    /// calls per thread (a sixth of a scan of 10,000 threads).
    fn rel(t: Target, buf: &mut RelPath) -> &str {
        buf.len = 0;
        match (t.tid, t.fd) {
            (Some(tid), fd) => {
                buf.push(b"task/");
                buf.push_num(tid);
                buf.push(b"/");
                buf.push(t.name.as_bytes());
                if let Some(fd) = fd {
                    buf.push(b"/");
                    buf.push_num(fd);
                }
            }
            (None, Some(fd)) => {
                buf.push(t.name.as_bytes());
                buf.push(b"/");
                buf.push_num(fd);
            }
            (None, None) => buf.push(t.name.as_bytes()),
        }
        buf.as_str()
    }

    /// Reads a whole file under `dir` (the process's or the thread's
    /// directory) into the reader's buffer.
    pub fn read(&mut self, dir: BorrowedFd<'_>, t: Target) -> Result<&str, ReadFailure> {
        if let Some(f) = self.skipped(t) {
            return Err(f);
        }
        self.announce(t);
        let mut rel = RelPath::default();
        let r = open_read(dir, Self::rel(t, &mut rel), &mut self.buf);
        self.done();
        self.reads += 1;
        match r {
            // /proc text is ASCII but for comm and paths; lossy is fine.
            Ok(()) => {
                // Validated once; a comm or path that is not UTF-8 is
                // replaced lossily and then validated again.
                if std::str::from_utf8(&self.buf).is_err() {
                    let owned = String::from_utf8_lossy(&self.buf).into_owned();
                    self.buf = owned.into_bytes();
                    return std::str::from_utf8(&self.buf).map_err(|_| ReadFailure {
                        reason: MissingReason::Invalid,
                        detail: format!("{}: not text", self.path(t)),
                    });
                }
                // SAFETY: just validated as UTF-8 above, and not changed since.
                Ok(unsafe { std::str::from_utf8_unchecked(&self.buf) })
            }
            Err(e) => Err(classify(e, &self.path(t))),
        }
    }

    /// readlink(2) under `dir`.
    pub fn readlink(&mut self, dir: BorrowedFd<'_>, t: Target) -> Result<String, ReadFailure> {
        if let Some(f) = self.skipped(t) {
            return Err(f);
        }
        self.announce(t);
        let mut rel = RelPath::default();
        let r = rustix::fs::readlinkat(dir, Self::rel(t, &mut rel), Vec::new());
        self.done();
        self.reads += 1;
        r.map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| classify(e, &self.path(t)))
    }

    /// Opens a directory under `dir` (`task/TID`, `fd`).
    pub fn open_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &str,
        t: Target,
    ) -> Result<OwnedFd, ReadFailure> {
        self.announce(t);
        let r = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        self.done();
        r.map_err(|e| classify(e, &self.path(t)))
    }

    /// Numeric entries of a directory (tids, fds), sorted.
    pub fn list_numeric(&mut self, dir: OwnedFd, t: Target) -> Result<Vec<i32>, ReadFailure> {
        self.announce(t);
        let r = list_numeric(dir);
        self.done();
        r.map_err(|e| classify(e, &self.path(t)))
    }
}

/// `task/2147483647/schedstat` and the like: names wedge builds are far
/// shorter than this; a longer one is cut (and then fails to open).
pub struct RelPath {
    bytes: [u8; 64],
    len: usize,
}

impl Default for RelPath {
    fn default() -> Self {
        RelPath {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl RelPath {
    fn push(&mut self, b: &[u8]) {
        let n = b.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }

    fn push_num(&mut self, v: i32) {
        let mut digits = [0u8; 11];
        let mut i = digits.len();
        let mut n = v.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.push(b"-");
        }
        self.push(&digits[i..]);
    }

    fn as_str(&self) -> &str {
        // Only ASCII names and digits are ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

pub(crate) fn open_read(dir: BorrowedFd<'_>, name: &str, buf: &mut Vec<u8>) -> Result<(), Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    buf.clear();
    read_to_end(fd.as_fd(), buf)
}

/// Reads a /proc file. The per-task files wedge reads are `single_open`
/// seq files: one read(2) with room to spare returns the whole text, so a
/// short read ends the loop without the extra read(2) that would only
/// return 0 (a tenth of a scan's system calls).
pub fn read_to_end(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<(), Errno> {
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(4096));
        }
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        let (filled, _) = rustix::io::read(fd, spare)?;
        let n = filled.len();
        // SAFETY: `read` initialised the first n bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        if n == 0 || n < room {
            return Ok(());
        }
    }
}

pub fn list_numeric(dir: OwnedFd) -> Result<Vec<i32>, Errno> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}
