//! Reads relative to an open /proc directory, each one announced to the
//! watchdog before it starts, so a read that hangs is seen and abandoned.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;
use wedge_model::{Field, MissingReason};

/// What a worker is reading right now: the watchdog's view of it.
#[derive(Debug, Clone)]
pub struct Busy {
    pub pid: i32,
    pub tid: Option<i32>,
    pub attempt: u32,
    pub what: String,
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

/// Per-worker reader state.
pub struct TaskReader<'a> {
    pub slot: &'a Slot,
    pub buf: Vec<u8>,
    pub reads: u64,
    pub pid: i32,
    pub attempt: u32,
    /// Reads that blocked on an earlier attempt at this pid: not retried.
    pub skip: &'a HashSet<String>,
}

pub fn classify(errno: Errno, what: &str) -> ReadFailure {
    let (reason, why) = match errno {
        Errno::NOENT | Errno::SRCH => (MissingReason::Vanished, "the task exited"),
        Errno::ACCESS | Errno::PERM => (MissingReason::PermissionDenied, "permission denied"),
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

impl<'a> TaskReader<'a> {
    fn announce(&self, tid: Option<i32>, what: &str) {
        if let Ok(mut b) = self.slot.busy.lock() {
            *b = Some(Busy {
                pid: self.pid,
                tid,
                attempt: self.attempt,
                what: what.to_string(),
                since: Instant::now(),
            });
        }
    }

    fn done(&self) {
        if let Ok(mut b) = self.slot.busy.lock() {
            *b = None;
        }
    }

    /// The key under which a read is remembered when it blocks.
    pub fn key(tid: Option<i32>, name: &str) -> String {
        match tid {
            Some(t) => format!("task/{t}/{name}"),
            None => name.to_string(),
        }
    }

    fn skipped(&self, tid: Option<i32>, name: &str, path: &str) -> Option<ReadFailure> {
        self.skip
            .contains(&Self::key(tid, name))
            .then(|| ReadFailure {
                reason: MissingReason::TimedOut,
                detail: format!("reading {path} blocked past the deadline"),
            })
    }

    /// Reads the file `name` under `dir` into the reader's buffer and
    /// returns it as text. `path` is for messages.
    pub fn read(
        &mut self,
        dir: BorrowedFd<'_>,
        tid: Option<i32>,
        name: &str,
        path: &str,
    ) -> Result<String, ReadFailure> {
        if let Some(f) = self.skipped(tid, name, path) {
            return Err(f);
        }
        self.announce(tid, &Self::key(tid, name));
        let r = self.read_inner(dir, name);
        self.done();
        self.reads += 1;
        r.map_err(|e| classify(e, path))
    }

    fn read_inner(&mut self, dir: BorrowedFd<'_>, name: &str) -> Result<String, Errno> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )?;
        self.buf.clear();
        read_to_end(fd.as_fd(), &mut self.buf)?;
        Ok(String::from_utf8_lossy(&self.buf).into_owned())
    }

    /// readlink(2) of `name` under `dir`.
    pub fn readlink(
        &mut self,
        dir: BorrowedFd<'_>,
        tid: Option<i32>,
        name: &str,
        path: &str,
    ) -> Result<String, ReadFailure> {
        if let Some(f) = self.skipped(tid, name, path) {
            return Err(f);
        }
        self.announce(tid, &Self::key(tid, name));
        let r = rustix::fs::readlinkat(dir, name, Vec::new());
        self.done();
        self.reads += 1;
        r.map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| classify(e, path))
    }

    /// Opens a directory under `dir`.
    pub fn open_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        tid: Option<i32>,
        name: &str,
        path: &str,
    ) -> Result<OwnedFd, ReadFailure> {
        self.announce(tid, &Self::key(tid, name));
        let r = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        self.done();
        r.map_err(|e| classify(e, path))
    }

    /// Numeric entries of a directory (pids, tids, fds), sorted.
    pub fn list_numeric(&mut self, dir: OwnedFd, path: &str) -> Result<Vec<i32>, ReadFailure> {
        self.announce(None, path);
        let r = list_numeric(dir);
        self.done();
        r.map_err(|e| classify(e, path))
    }
}

pub fn read_to_end(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<(), Errno> {
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(4096));
        }
        let spare = buf.spare_capacity_mut();
        let (filled, _) = rustix::io::read(fd, spare)?;
        let n = filled.len();
        if n == 0 {
            return Ok(());
        }
        // SAFETY: `read` initialised the first n bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
    }
}

pub fn list_numeric(dir: OwnedFd) -> Result<Vec<i32>, Errno> {
    let mut out = Vec::new();
    let mut d = rustix::fs::Dir::read_from(&dir)?;
    while let Some(entry) = d.next() {
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
