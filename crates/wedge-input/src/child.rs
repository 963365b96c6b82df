//! Sacrificial child processes for the system calls that can wait forever.
//!
//! A FUSE request the daemon has already taken cannot be interrupted, not
//! even by SIGKILL: `request_wait_answer` (fs/fuse/dev.c) ends in an
//! uninterruptible `wait_event` once the request is in user space. A thread
//! of wedge stuck there would keep wedge itself from exiting (exit_group
//! waits for every thread), so the open, and every read of a file on a
//! file system that may never answer, is made by a forked child: when it
//! does not finish in time wedge SIGKILLs it and goes on; the child leaves
//! whenever the kernel lets it.
//!
//! After fork(2) in a multi-threaded process the child may only make
//! async-signal-safe calls: everything it needs (the path, its buffer) is
//! prepared before the fork, and it runs raw system calls only. The fork
//! itself, the child's set-up, the deadline waits and the reaping are
//! wedge-child's; this module keeps its protocols (an fd handed back by
//! SCM_RIGHTS, a streamed read, pread requests).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use wedge_child::{abandon, Setup};

/// Reaps a child that has finished its work and is exiting: a bounded
/// wait (it has nothing left to do but `_exit`); abandoned after it.
fn reap(pid: libc::pid_t) -> Option<i32> {
    wedge_child::reap_exiting(pid, Duration::from_secs(2))
}

/// Waits until `fd` is readable (or hung up) or the deadline passes; a
/// failed poll counts as the deadline (the child is abandoned either way).
fn wait_readable(fd: RawFd, until: Instant) -> bool {
    wedge_child::wait_readable(fd, until).unwrap_or(false)
}

/// Forks `child` through wedge-child, named `name`, keeping `keep`.
///
/// # Safety
/// As [`wedge_child::spawn`]: `child` makes raw system calls only, on
/// memory prepared before the call.
unsafe fn fork_child(
    name: &'static std::ffi::CStr,
    keep: &[RawFd],
    child: impl FnOnce() -> i32,
) -> io::Result<libc::pid_t> {
    let setup = Setup::new(name, keep)?;
    // SAFETY: the caller keeps `spawn`'s contract.
    unsafe { wedge_child::spawn(&setup, child) }
}

/// What the open child reports besides the descriptor: errno (0 on
/// success), the file's mode and size (fstat) and its file system's type
/// (fstatfs). Both are made by the child: on FUSE they are GETATTR and
/// STATFS requests to the daemon, which may never answer either.
#[derive(Clone, Copy, Default)]
struct OpenReply {
    errno: i32,
    mode: u32,
    size: u64,
    fs_type: u64,
}

/// A file opened by the child, with what it learnt about it.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) fs_type: u64,
}

/// open(2) with `O_NONBLOCK` in a child, the descriptor handed back over a
/// socket (SCM_RIGHTS); given up after `timeout`.
pub(crate) fn open(path: &std::path::Path, timeout: Duration) -> Result<Opened, String> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())?;
    let (ours, theirs) = wedge_child::socketpair().map_err(|e| format!("socketpair: {e}"))?;
    let theirs_fd = theirs.as_raw_fd();
    // SAFETY: open_child runs only raw system calls on memory prepared
    // above.
    let pid = unsafe {
        fork_child(c"wedge-open", &[theirs_fd], || {
            open_child(&cpath, theirs_fd)
        })
    }
    .map_err(|e| format!("fork: {e}"))?;
    drop(theirs);
    if !wait_readable(ours.as_raw_fd(), Instant::now() + timeout) {
        abandon(pid);
        return Err(format!(
            "opening it did not finish in {} s: its file system does not answer (a stuck FUSE daemon or NFS server?)",
            timeout.as_secs()
        ));
    }
    let got = recv_reply(ours.as_raw_fd());
    reap(pid);
    let (reply, fd) = got.map_err(|e| format!("the opener child failed: {e}"))?;
    if let Some(fd) = fd {
        let file = File::from(fd);
        if reply.errno != 0 {
            return Err(io::Error::from_raw_os_error(reply.errno).to_string());
        }
        return Ok(Opened {
            file,
            mode: reply.mode,
            size: reply.size,
            fs_type: reply.fs_type,
        });
    }
    let e = io::Error::from_raw_os_error(reply.errno);
    if reply.errno == libc::ENXIO && reply.mode & libc::S_IFMT == libc::S_IFSOCK {
        // open(2) of a Unix socket fails with ENXIO (sockets have no open
        // file operation), which names no file type: say what it is.
        return Err(format!("is a socket, not a regular file ({e})"));
    }
    Err(e.to_string())
}

/// # Safety
/// Only in a freshly forked child set up by wedge-child.
unsafe fn open_child(path: &CString, sock: RawFd) -> ! {
    // SAFETY: raw system calls on memory prepared before the fork.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        let mut reply = OpenReply::default();
        if fd >= 0 {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) == 0 {
                reply.mode = st.st_mode;
                reply.size = st.st_size as u64;
            } else {
                reply.errno = *libc::__errno_location();
            }
            let mut fs: libc::statfs = std::mem::zeroed();
            if libc::fstatfs(fd, &mut fs) == 0 {
                // f_type is signed on some targets; the magics are 32-bit.
                reply.fs_type = fs.f_type as u32 as u64;
            }
        } else {
            reply.errno = *libc::__errno_location();
            if reply.errno == libc::ENXIO {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(path.as_ptr(), &mut st) == 0 {
                    reply.mode = st.st_mode;
                }
            }
        }
        wedge_child::send_fd(sock, &reply.to_bytes(), (fd >= 0).then_some(fd));
        libc::_exit(0)
    }
}

/// The reply's bytes (native order: it only crosses a socket to our own
/// child), made without allocation so the child can send them.
impl OpenReply {
    const LEN: usize = 24;

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(&self.errno.to_ne_bytes());
        b[4..8].copy_from_slice(&self.mode.to_ne_bytes());
        b[8..16].copy_from_slice(&self.size.to_ne_bytes());
        b[16..].copy_from_slice(&self.fs_type.to_ne_bytes());
        b
    }

    fn from_bytes(b: &[u8; Self::LEN]) -> OpenReply {
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_ne_bytes(w)
        };
        OpenReply {
            errno: i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            mode: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            size: u64_at(8),
            fs_type: u64_at(16),
        }
    }
}

/// The opener's answer and the descriptor, if it opened one.
fn recv_reply(sock: RawFd) -> io::Result<(OpenReply, Option<OwnedFd>)> {
    let mut b = [0u8; OpenReply::LEN];
    let (n, fd) = wedge_child::recv_fd(sock, &mut b)?;
    if n < OpenReply::LEN {
        return Err(io::Error::other("the opener child died before answering"));
    }
    Ok((OpenReply::from_bytes(&b), fd))
}

const READ_BUF: usize = 256 * 1024;

/// A file read by a child, streamed through a pipe: every wait for the
/// next bytes has the deadline.
pub(crate) struct ChildReader {
    pipe: Option<File>,
    pid: libc::pid_t,
    timeout: Duration,
    done: bool,
}

/// Starts a child that reads `file` from its current offset to the end
/// into a pipe (skipping holes when asked, see `seek_data`).
pub(crate) fn stream(file: &File, timeout: Duration, skip_holes: bool) -> io::Result<ChildReader> {
    let (r, w) = wedge_child::pipe()?;
    let mut buf = vec![0u8; READ_BUF];
    let src = file.as_raw_fd();
    let w_fd = w.as_raw_fd();
    // SAFETY: stream_child runs only raw system calls on the buffer
    // allocated above.
    let pid = unsafe {
        fork_child(c"wedge-read", &[src, w_fd], || {
            stream_child(src, w_fd, &mut buf, skip_holes)
        })
    }?;
    drop(w);
    Ok(ChildReader {
        pipe: Some(File::from(r)),
        pid,
        timeout,
        done: false,
    })
}

/// # Safety
/// Only in a freshly forked child set up by wedge-child.
unsafe fn stream_child(src: RawFd, out: RawFd, buf: &mut [u8], skip_holes: bool) -> ! {
    // SAFETY: raw system calls on fds and memory this process owns.
    unsafe {
        loop {
            if skip_holes {
                let cur = libc::lseek(src, 0, libc::SEEK_CUR);
                if cur >= 0
                    && libc::lseek(src, cur, libc::SEEK_DATA) < 0
                    && *libc::__errno_location() == libc::ENXIO
                {
                    libc::_exit(0);
                }
            }
            let n = libc::read(src, buf.as_mut_ptr().cast(), buf.len());
            if n < 0 {
                let e = *libc::__errno_location();
                if e == libc::EINTR {
                    continue;
                }
                libc::_exit(e.clamp(1, 255));
            }
            if n == 0 {
                libc::_exit(0);
            }
            let mut off = 0usize;
            while off < n as usize {
                let k = libc::write(out, buf.as_ptr().add(off).cast(), n as usize - off);
                if k < 0 {
                    if *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    // wedge stopped reading: nothing more to do.
                    libc::_exit(0);
                }
                off += k as usize;
            }
        }
    }
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let Some(pipe) = &mut self.pipe else {
            return Ok(0);
        };
        if !wait_readable(pipe.as_raw_fd(), Instant::now() + self.timeout) {
            self.done = true;
            self.pipe = None;
            abandon(self.pid);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "a read did not finish in {} s: its file system does not answer (a stuck FUSE daemon or NFS server?)",
                    self.timeout.as_secs()
                ),
            ));
        }
        let n = loop {
            match pipe.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if n == 0 {
            self.done = true;
            self.pipe = None;
            if let Some(st) = reap(self.pid) {
                if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) != 0 {
                    return Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(st)));
                }
            }
        }
        Ok(n)
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        if !self.done {
            // Closing the pipe ends a child that is writing (EPIPE); one
            // stuck in a read is killed.
            self.pipe = None;
            abandon(self.pid);
        }
    }
}

const PREAD_MAX: usize = 1 << 20;

/// A child that answers pread requests over two pipes, for random access
/// to a file on a file system that may never answer.
pub(crate) struct PreadServer {
    req: File,
    reply: File,
    pid: libc::pid_t,
}

pub(crate) fn pread_server(file: &File) -> io::Result<PreadServer> {
    let (req_r, req_w) = wedge_child::pipe()?;
    let (rep_r, rep_w) = wedge_child::pipe()?;
    let mut buf = vec![0u8; PREAD_MAX + 8];
    let (src, rr, rw) = (file.as_raw_fd(), req_r.as_raw_fd(), rep_w.as_raw_fd());
    // SAFETY: pread_child runs only raw system calls on the buffer
    // allocated above.
    let pid = unsafe {
        fork_child(c"wedge-pread", &[src, rr, rw], || {
            pread_child(src, rr, rw, &mut buf)
        })
    }?;
    drop((req_r, rep_w));
    Ok(PreadServer {
        req: File::from(req_w),
        reply: File::from(rep_r),
        pid,
    })
}

/// # Safety
/// Only in a freshly forked child set up by wedge-child; `buf` holds 8 +
/// PREAD_MAX bytes.
unsafe fn pread_child(src: RawFd, req: RawFd, reply: RawFd, buf: &mut [u8]) -> ! {
    // SAFETY: raw system calls on fds and memory this process owns.
    unsafe {
        let mut r = [0u8; 16];
        loop {
            let mut got = 0usize;
            while got < 16 {
                let n = libc::read(req, r.as_mut_ptr().add(got).cast(), 16 - got);
                if n <= 0 {
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    libc::_exit(0);
                }
                got += n as usize;
            }
            let off = u64::from_ne_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]);
            let len = u64::from_ne_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]);
            let len = (len as usize).min(PREAD_MAX);
            let data = buf.as_mut_ptr().add(8);
            let mut done = 0usize;
            let mut res: i64 = 0;
            while done < len {
                let n = libc::pread(
                    src,
                    data.add(done).cast(),
                    len - done,
                    (off + done as u64) as i64,
                );
                if n < 0 {
                    let e = *libc::__errno_location();
                    if e == libc::EINTR {
                        continue;
                    }
                    res = -(e as i64);
                    break;
                }
                if n == 0 {
                    break;
                }
                done += n as usize;
            }
            if res == 0 {
                res = done as i64;
            }
            std::ptr::copy_nonoverlapping(res.to_ne_bytes().as_ptr(), buf.as_mut_ptr(), 8);
            let total = 8 + done * usize::from(res >= 0);
            let mut off = 0usize;
            while off < total {
                let k = libc::write(reply, buf.as_ptr().add(off).cast(), total - off);
                if k < 0 {
                    if *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    libc::_exit(0);
                }
                off += k as usize;
            }
        }
    }
}

impl PreadServer {
    /// One pread of at most PREAD_MAX bytes; `Err(None)` on timeout.
    pub(crate) fn pread(
        &mut self,
        buf: &mut [u8],
        off: u64,
        timeout: Duration,
    ) -> Result<usize, Option<io::Error>> {
        use std::io::Write;
        let len = buf.len().min(PREAD_MAX);
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&off.to_ne_bytes());
        r[8..].copy_from_slice(&(len as u64).to_ne_bytes());
        self.req.write_all(&r).map_err(Some)?;
        let until = Instant::now() + timeout;
        let mut head = [0u8; 8];
        self.read_exact_until(&mut head, until)?;
        let res = i64::from_ne_bytes(head);
        if res < 0 {
            return Err(Some(io::Error::from_raw_os_error(-res as i32)));
        }
        let n = (res as usize).min(len);
        self.read_exact_until(&mut buf[..n], until)?;
        Ok(n)
    }

    fn read_exact_until(
        &mut self,
        buf: &mut [u8],
        until: Instant,
    ) -> Result<(), Option<io::Error>> {
        use wedge_child::ReadError;
        wedge_child::read_exact_until(self.reply.as_raw_fd(), buf, until).map_err(|e| match e {
            ReadError::TimedOut => None,
            ReadError::Closed => Some(io::Error::other("the reader child died")),
            ReadError::Io(e) => Some(e),
        })
    }
}

impl Drop for PreadServer {
    fn drop(&mut self) {
        // Closing the request pipe ends an idle child; one stuck in a
        // pread is killed and left to the kernel.
        abandon(self.pid);
    }
}
