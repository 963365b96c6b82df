//! Reads that may block a thread forever go through a sacrificial process.
//!
//! Some reads of /proc and of mounts sleep on locks the stuck task holds:
//! `/proc/PID/cmdline`, `environ`, `maps` and `mem` take the target's
//! mmap_lock (killably since 5.x, with a plain `down_read` on older kernels);
//! `mountinfo` takes `namespace_sem` with a plain `down_read`; `statfs` and
//! `stat` on a FUSE or NFS mount wait for the daemon or server, and a FUSE
//! request that the daemon has already read waits in TASK_UNINTERRUPTIBLE
//! even after SIGKILL. A wedge thread caught there would keep the whole wedge
//! process from exiting (exit_group waits for every thread), so such reads
//! are done by a forked child that wedge can abandon: at the deadline it is
//! sent SIGKILL and wedge moves on. At the end of the scan wedge reaps what
//! it killed, waiting a bounded time ([`Helper::finish`]): a reader SIGKILLed
//! in a killable wait (`mmap_read_lock_killable`, a FUSE request not yet
//! read by the daemon) leaves at once, and only one caught in a truly
//! uninterruptible wait outlives wedge — it is reported, and init reaps it
//! once the read ends. Without that wait, wedge could exit between the kill
//! and the child's exit and leave a zombie `wedge-reader` to init.
//!
//! The fork, the child's set-up (close_range, stdio, `PR_SET_PDEATHSIG`
//! from the long-lived `wedge-forker` thread), the deadline waits and the
//! bounded reaping are wedge-child's; this module keeps only its protocol:
//! requests of (op, path) down one pipe, framed replies up another.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use wedge_child::{Abandoned, ReadError};

/// Largest chunk the child sends at a time.
const CHUNK: usize = 64 * 1024;
/// Longest path a request may carry.
const MAX_PATH: usize = 4096;
/// At most this many children may be left behind, stuck, in one scan; after
/// that risky reads are refused rather than piling up stuck processes.
const MAX_ABANDONED: usize = 16;

const OP_READ: u8 = 1;
const OP_STATFS: u8 = 2;

/// Why a bounded read produced no data.
#[derive(Debug)]
pub enum HelperError {
    /// The read did not finish in time; the child was abandoned.
    TimedOut(Duration),
    /// The kernel answered with an error (`errno`).
    Os(i32),
    /// Too many earlier reads blocked; this one was not attempted.
    Refused(usize),
    /// The helper could not be started or talked to.
    Broken(String),
}

struct Child {
    pid: libc::pid_t,
    requests: OwnedFd,
    replies: OwnedFd,
}

/// The sacrificial reader. One child serves reads until one of them blocks.
pub struct Helper {
    child: Option<Child>,
    abandoned: Abandoned,
}

impl Default for Helper {
    fn default() -> Self {
        Self::new()
    }
}

impl Helper {
    pub fn new() -> Self {
        Helper {
            child: None,
            abandoned: Abandoned::new(),
        }
    }

    /// How many children were abandoned so far.
    pub fn abandoned(&self) -> usize {
        self.abandoned.len()
    }

    /// Reads a whole file, giving up at `deadline`.
    pub fn read_file(&mut self, path: &[u8], deadline: Duration) -> Result<Vec<u8>, HelperError> {
        self.request(OP_READ, path, deadline)
    }

    /// statfs(2) on a path; returns the raw `f_type` magic.
    pub fn statfs(&mut self, path: &[u8], deadline: Duration) -> Result<i64, HelperError> {
        let data = self.request(OP_STATFS, path, deadline)?;
        let bytes: [u8; 8] = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| HelperError::Broken("short statfs reply".into()))?;
        Ok(i64::from_ne_bytes(bytes))
    }

    fn request(&mut self, op: u8, path: &[u8], deadline: Duration) -> Result<Vec<u8>, HelperError> {
        if path.len() >= MAX_PATH || path.contains(&0) {
            return Err(HelperError::Os(libc::ENAMETOOLONG));
        }
        if self.abandoned.len() >= MAX_ABANDONED {
            return Err(HelperError::Refused(self.abandoned.len()));
        }
        if self.child.is_none() {
            self.abandoned.reap_dead();
            self.child = Some(spawn().map_err(|e| HelperError::Broken(e.to_string()))?);
        }
        let started = Instant::now();
        let result = self.exchange(op, path, started + deadline);
        match &result {
            Err(HelperError::TimedOut(_)) | Err(HelperError::Broken(_)) => self.abandon(),
            _ => {}
        }
        result.map_err(|e| match e {
            HelperError::TimedOut(_) => HelperError::TimedOut(started.elapsed()),
            e => e,
        })
    }

    fn exchange(&mut self, op: u8, path: &[u8], until: Instant) -> Result<Vec<u8>, HelperError> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| HelperError::Broken("no child".into()))?;
        let mut req = Vec::with_capacity(3 + path.len());
        req.push(op);
        req.extend_from_slice(&(path.len() as u16).to_ne_bytes());
        req.extend_from_slice(path);
        wedge_child::write_all(child.requests.as_raw_fd(), &req)
            .map_err(|e| HelperError::Broken(e.to_string()))?;

        // Replies: [i32 status][u32 len][len bytes]… repeated, ending with
        // a frame of len 0. A negative status is -errno.
        let fd = child.replies.as_raw_fd();
        let mut out = Vec::new();
        loop {
            let mut head = [0u8; 8];
            read_exact_until(fd, &mut head, until)?;
            let status = i32::from_ne_bytes([head[0], head[1], head[2], head[3]]);
            let len = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if status < 0 {
                return Err(HelperError::Os(-status));
            }
            if len == 0 {
                return Ok(out);
            }
            if len > CHUNK {
                return Err(HelperError::Broken(format!("oversized reply frame {len}")));
            }
            let start = out.len();
            out.resize(start + len, 0);
            read_exact_until(fd, &mut out[start..], until)?;
        }
    }

    fn abandon(&mut self) {
        if let Some(child) = self.child.take() {
            self.abandoned.kill(child.pid);
        }
    }

    /// Reaps the readers killed at their deadline (at most `bound`) and
    /// keeps the idle one for the next scan; returns those still alive.
    pub fn reap(&mut self, bound: Duration) -> Vec<libc::pid_t> {
        self.abandoned.finish(bound)
    }

    /// Ends the helper: the idle reader exits on EOF of its request pipe,
    /// killed ones are reaped. Waits at most `bound` in all; returns the
    /// readers still alive then — stuck in an uninterruptible wait that
    /// even SIGKILL cannot end. They exit when their read ends, and init
    /// reaps them if wedge is gone by then.
    pub fn finish(&mut self, bound: Duration) -> Vec<libc::pid_t> {
        if let Some(child) = self.child.take() {
            // Closing the request pipe makes an idle child _exit at once;
            // it is reaped with the killed ones.
            drop(child.requests);
            drop(child.replies);
            self.abandoned.keep(child.pid);
        }
        // Those left are still our children: a later finish (or Drop)
        // tries again.
        self.abandoned.finish(bound)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Most callers finish() first; this only catches the rest.
        self.finish(Duration::from_millis(250));
    }
}

/// The reader kept between scans that ask for it
/// ([`crate::ScanOptions::keep_helper`]).
static KEPT: std::sync::Mutex<Option<Helper>> = std::sync::Mutex::new(None);

impl Helper {
    /// The kept reader when `keep` (a new one when none is kept), else a
    /// new one.
    pub(crate) fn for_scan(keep: bool) -> Helper {
        if !keep {
            return Helper::new();
        }
        KEPT.lock()
            .ok()
            .and_then(|mut k| k.take())
            .unwrap_or_default()
    }

    /// Keeps this reader for the next scan (a kept one already there, from
    /// a concurrent scan, is ended).
    pub(crate) fn keep(self) {
        if let Ok(mut k) = KEPT.lock() {
            *k = Some(self);
        }
    }
}

/// Sends SIGKILL to readers and reaps them within `bound`; returns those
/// still alive. Kept for callers of the old path; the logic is
/// [`wedge_child::kill_and_reap`].
pub fn kill_and_reap(pids: &[libc::pid_t], bound: Duration) -> Vec<libc::pid_t> {
    wedge_child::kill_and_reap(pids, bound)
}

/// Forks one reader (from wedge-child's forker thread).
fn spawn() -> std::io::Result<Child> {
    let (req_r, req_w) = wedge_child::pipe()?;
    let (rep_r, rep_w) = wedge_child::pipe()?;
    // Memory the child works in, allocated before the fork so the child
    // never allocates; the parent's copy is dropped on return.
    let mut buf = vec![0u8; CHUNK + MAX_PATH + 16];
    let (buf_ptr, buf_len) = (buf.as_mut_ptr(), buf.len());
    let (req, rep) = (req_r.as_raw_fd(), rep_w.as_raw_fd());
    let setup = wedge_child::Setup::new(c"wedge-reader", &[req, rep])?;
    // SAFETY: `child_main` makes raw system calls only, on the two pipes
    // and the buffer allocated above (the child's copy of it).
    let pid = unsafe { wedge_child::spawn(&setup, || child_main(req, rep, buf_ptr, buf_len)) }?;
    drop(buf);
    drop(req_r);
    drop(rep_w);
    Ok(Child {
        pid,
        requests: req_w,
        replies: rep_r,
    })
}

fn read_exact_until(fd: RawFd, buf: &mut [u8], until: Instant) -> Result<(), HelperError> {
    wedge_child::read_exact_until(fd, buf, until).map_err(|e| match e {
        ReadError::TimedOut => HelperError::TimedOut(Duration::ZERO),
        ReadError::Closed => HelperError::Broken("helper closed its pipe".into()),
        ReadError::Io(e) => HelperError::Broken(e.to_string()),
    })
}

/// The child's whole life. Only raw system calls from here on.
///
/// # Safety
/// Must be called only in a freshly forked child set up by wedge-child;
/// `buf` must point to `len` writable bytes (the child's copy of the
/// parent's buffer).
unsafe fn child_main(req: RawFd, rep: RawFd, buf: *mut u8, len: usize) -> ! {
    // SAFETY: all calls below are plain system calls on fds and memory this
    // process owns; no allocation, no locks.
    unsafe {
        let buf = std::slice::from_raw_parts_mut(buf, len);
        loop {
            let (head, rest) = buf.split_at_mut(3);
            if !child_read_exact(req, head) {
                libc::_exit(0);
            }
            let op = head[0];
            let plen = u16::from_ne_bytes([head[1], head[2]]) as usize;
            if plen >= MAX_PATH || plen + 1 > rest.len() {
                libc::_exit(1);
            }
            let (path, data) = rest.split_at_mut(plen + 1);
            if !child_read_exact(req, &mut path[..plen]) {
                libc::_exit(0);
            }
            path[plen] = 0;
            let cpath = path.as_ptr() as *const libc::c_char;
            match op {
                OP_READ => {
                    let fd = libc::open(cpath, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY);
                    if fd < 0 {
                        child_reply(rep, -errno(), &[]);
                        continue;
                    }
                    let chunk = data.len().min(CHUNK);
                    loop {
                        let n = libc::read(fd, data.as_mut_ptr().cast(), chunk);
                        if n < 0 {
                            let e = errno();
                            if e == libc::EINTR {
                                continue;
                            }
                            child_reply(rep, -e, &[]);
                            break;
                        }
                        if n == 0 {
                            child_reply(rep, 0, &[]);
                            break;
                        }
                        child_reply(rep, 0, &data[..n as usize]);
                    }
                    libc::close(fd);
                }
                OP_STATFS => {
                    let mut st: libc::statfs = std::mem::zeroed();
                    if libc::statfs(cpath, &mut st) != 0 {
                        child_reply(rep, -errno(), &[]);
                    } else {
                        let magic = (st.f_type as i64).to_ne_bytes();
                        child_reply(rep, 0, &magic);
                        child_reply(rep, 0, &[]);
                    }
                }
                _ => libc::_exit(1),
            }
        }
    }
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn child_read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled tail of a valid buffer.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        got += n as usize;
    }
    true
}

fn child_reply(fd: RawFd, status: i32, data: &[u8]) {
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&status.to_ne_bytes());
    head[4..].copy_from_slice(&(data.len() as u32).to_ne_bytes());
    for part in [&head[..], data] {
        let mut off = 0;
        while off < part.len() {
            // SAFETY: writing from a valid slice.
            let n = unsafe { libc::write(fd, part[off..].as_ptr().cast(), part.len() - off) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                // wedge is gone or gave up on us.
                // SAFETY: leaving the child.
                unsafe { libc::_exit(0) };
            }
            off += n as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_errors() {
        let mut h = Helper::new();
        let d = Duration::from_secs(2);
        let data = h.read_file(b"/proc/self/stat", d).unwrap();
        // The child reads its *own* stat: its comm is wedge-reader.
        assert!(String::from_utf8_lossy(&data).contains("(wedge-reader)"));
        match h.read_file(b"/nonexistent/file", d) {
            Err(HelperError::Os(e)) => assert_eq!(e, libc::ENOENT),
            other => panic!("{other:?}"),
        }
        let big = h.read_file(b"/proc/self/smaps", d).unwrap();
        assert!(big.len() > 1000);
        assert!(h.statfs(b"/proc", d).unwrap() == 0x9fa0);
    }

    /// PR_SET_PDEATHSIG follows the thread that forked: a reader forked
    /// while a scan worker made the first read must survive that worker.
    #[test]
    fn the_reader_outlives_the_thread_that_first_used_it() {
        let h = std::sync::Mutex::new(Helper::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut h = h.lock().unwrap();
                h.read_file(b"/proc/self/stat", Duration::from_secs(2))
                    .unwrap();
            });
        });
        // The worker is gone; give a PDEATHSIG time to land.
        std::thread::sleep(Duration::from_millis(50));
        let mut h = h.into_inner().unwrap();
        let r = h.read_file(b"/proc/self/stat", Duration::from_secs(2));
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(h.abandoned(), 0, "the first reader was lost");
        assert!(h.finish(Duration::from_secs(2)).is_empty());
    }

    #[test]
    fn a_blocked_read_is_abandoned() {
        // A FIFO with no writer blocks open(2) forever: the shape of a read
        // that never returns.
        // Removed when the guard drops, also if an assertion below fails.
        let dir = tempfile::Builder::new()
            .prefix("wedge-helper-")
            .tempdir()
            .unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        let mut h = Helper::new();
        let t = Instant::now();
        let r = h.read_file(
            fifo.as_os_str().as_encoded_bytes(),
            Duration::from_millis(100),
        );
        assert!(matches!(r, Err(HelperError::TimedOut(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(h.abandoned(), 1);
        let killed = h.abandoned.pids()[0];
        // The next read gets a fresh child.
        assert!(h
            .read_file(b"/proc/self/stat", Duration::from_secs(2))
            .is_ok());
        // The killed reader (asleep in a killable FIFO open) is reaped,
        // not left to init: finish waits for it.
        assert!(h.finish(Duration::from_secs(2)).is_empty());
        assert!(!std::path::Path::new(&format!("/proc/{killed}")).exists());
    }
}
