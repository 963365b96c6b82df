//! The sacrificial child: a forked process that makes the one system call
//! which may never return, so that wedge itself never waits on it.
//!
//! Some reads sleep on something the stuck target holds: `/proc/PID/cmdline`,
//! `environ`, `maps`, `mem` and `process_vm_readv` take the target's
//! mmap_lock (`mmap_read_lock_killable` on current kernels, a plain
//! `down_read` on old ones); `mountinfo` takes `namespace_sem`; `open`,
//! `stat`, `statfs` and `read` on a FUSE or NFS mount wait for the daemon or
//! server, and a FUSE request the daemon has already read waits in
//! `request_wait_answer` (fs/fuse/dev.c) uninterruptibly, even after
//! SIGKILL. A wedge thread caught there would keep wedge from exiting
//! (exit_group waits for every thread), so such calls are made by a child
//! that wedge can give up on: it waits for the child's pipe or socket with a
//! deadline ([`wait_readable`], [`read_exact_until`]), SIGKILLs it when the
//! deadline passes and reaps it within a bound ([`reap_within`]). A child
//! SIGKILLed in a killable wait leaves at once; one in a truly
//! uninterruptible wait cannot be reaped until the wait ends — it is kept in
//! an [`Abandoned`] list and reported ([`outlived`]), and init reaps it if
//! wedge has exited by then.
//!
//! Every child is forked by one thread that lives as long as the process
//! (`wedge-forker`, see [`spawn`]): `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked the child exits, not the process, so a child forked
//! from a scan worker was killed as soon as that worker finished.
//!
//! The child is forked without exec. Between fork and `_exit` it may use
//! only raw system calls and memory allocated before the fork: other wedge
//! threads may have held the allocator's locks at the moment of fork, and
//! only the forking thread exists in the child.
//!
//! Each user keeps its own protocol on top (procfs's request pipe, the
//! stack copier's shared mapping, the opener's SCM_RIGHTS socket).

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A child's process id.
pub type Pid = libc::pid_t;

/// At most this many descriptors survive into the child.
pub const MAX_KEEP: usize = 4;

/// How a child starts: its name in ps and the descriptors it keeps.
/// Built before the fork, so the child needs no allocation to follow it.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    name: &'static CStr,
    keep: [RawFd; MAX_KEEP],
    n: usize,
}

impl Setup {
    /// A child named `name` (at most 15 bytes show, the size of `comm`)
    /// that keeps `keep` open and nothing else. More than [`MAX_KEEP`]
    /// descriptors is an error.
    pub fn new(name: &'static CStr, keep: &[RawFd]) -> io::Result<Setup> {
        if keep.len() > MAX_KEEP || keep.iter().any(|&fd| fd < 0) {
            return Err(io::Error::other(format!(
                "a child keeps at most {MAX_KEEP} valid descriptors, not {keep:?}"
            )));
        }
        let mut s = Setup {
            name,
            keep: [0; MAX_KEEP],
            n: keep.len(),
        };
        s.keep[..keep.len()].copy_from_slice(keep);
        s.keep[..keep.len()].sort_unstable();
        Ok(s)
    }

    fn kept(&self) -> &[RawFd] {
        &self.keep[..self.n]
    }

    /// The child's first steps. Raw system calls only.
    ///
    /// # Safety
    /// Only in a freshly forked child, with `parent` the pid of the process
    /// that forked it.
    unsafe fn apply(&self, parent: Pid) {
        // SAFETY: plain system calls on this process's own fds; no
        // allocation, no locks.
        unsafe {
            // Die with wedge: the forker thread lives as long as the
            // process, so this fires at wedge's exit and not before.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // wedge may have died between fork and prctl: then no signal
            // comes, and nobody would read what this child produces.
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            libc::prctl(libc::PR_SET_NAME, self.name.as_ptr());
            // Hold nothing of wedge's open but `keep`: an inherited stdout
            // would keep `wedge | less` or a test's output pipe open while
            // this child is stuck, hanging whoever waits for EOF.
            // close_range(2) (5.9+) closes the gaps in a few calls; older
            // kernels get the loop over the first 1,024.
            let mut next = 0u32;
            let mut ranged = true;
            for &k in self.kept() {
                let k = k as u32;
                if k > next {
                    ranged &= libc::syscall(libc::SYS_close_range, next, k - 1, 0u32) == 0;
                }
                next = k.saturating_add(1);
            }
            ranged &= libc::syscall(libc::SYS_close_range, next, u32::MAX, 0u32) == 0;
            if !ranged {
                for fd in 0..1024 {
                    if !self.kept().contains(&fd) {
                        libc::close(fd);
                    }
                }
            }
            // stdio that is not kept goes to /dev/null, so a stray write
            // (or a library's) lands nowhere rather than on a reused fd.
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..=2 {
                    if fd != null && !self.kept().contains(&fd) {
                        libc::dup2(null, fd);
                    }
                }
                if null > 2 {
                    libc::close(null);
                }
            }
        }
    }
}

/// A fork to run on the forker thread. The pointer is to a closure on the
/// stack of the thread that asked, which waits for the answer.
struct Job(*mut (dyn FnMut() -> io::Result<Pid> + 'static));

// SAFETY: the asking thread blocks in `on_forker` until the forker thread
// has run the closure and answered, so the closure is used by one thread at
// a time and outlives every use.
unsafe impl Send for Job {}

type Request = (Job, mpsc::Sender<io::Result<Pid>>);

/// The thread that forks every child (see the module's comment on
/// `PR_SET_PDEATHSIG`): started with the first child, never ended, so it
/// exits only with the process.
fn forker() -> io::Result<&'static Mutex<mpsc::Sender<Request>>> {
    static FORKER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(f) = FORKER.get() {
        return Ok(f);
    }
    let _once = START.lock().map_err(|_| gone())?;
    if let Some(f) = FORKER.get() {
        return Ok(f);
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("wedge-forker".into())
        .spawn(move || {
            for (job, reply) in rx {
                // SAFETY: see `Job`: the closure is alive and nobody else
                // uses it until we answer.
                let r = unsafe { (*job.0)() };
                let _ = reply.send(r);
            }
        })?;
    Ok(FORKER.get_or_init(|| Mutex::new(tx)))
}

fn gone() -> io::Error {
    io::Error::other("the wedge-forker thread is gone")
}

/// Runs `f` (which forks) on the forker thread and returns its result.
fn on_forker(f: &mut dyn FnMut() -> io::Result<Pid>) -> io::Result<Pid> {
    let (tx, rx) = mpsc::channel();
    // SAFETY: only the lifetime is erased; we wait below for the forker to
    // be done with `f` (it answers after the call, or drops `tx` if it
    // died), so `f` outlives every use.
    let job = Job(unsafe {
        std::mem::transmute::<
            *mut (dyn FnMut() -> io::Result<Pid> + '_),
            *mut (dyn FnMut() -> io::Result<Pid> + 'static),
        >(f)
    });
    forker()?
        .lock()
        .map_err(|_| gone())?
        .send((job, tx))
        .map_err(|_| gone())?;
    rx.recv().map_err(|_| gone())?
}

/// Forks a child from the forker thread, sets it up as `setup` says, runs
/// `child` in it and `_exit`s with its result. Returns the child's pid.
///
/// # Safety
/// `child` runs in a forked copy of a multi-threaded process: it may make
/// only async-signal-safe calls (raw system calls) and use memory allocated
/// before the fork; it must not allocate, take locks or unwind.
pub unsafe fn spawn<F: FnOnce() -> i32>(setup: &Setup, child: F) -> io::Result<Pid> {
    let setup = *setup;
    let mut child = Some(child);
    let mut fork_here = || -> io::Result<Pid> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: fork(2). The child runs only the set-up's raw system
        // calls and `child`, whose contract the caller of `spawn` keeps,
        // then `_exit`s: it never returns into Rust code of the parent.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: the freshly forked child of `parent`.
            unsafe {
                setup.apply(parent);
                let code = match child.take() {
                    Some(f) => f(),
                    None => 1,
                };
                libc::_exit(code)
            }
        }
        Ok(pid)
    };
    on_forker(&mut fork_here)
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pair of connected `SOCK_SEQPACKET` Unix sockets, close-on-exec (one
/// message per send, and SCM_RIGHTS to hand back a descriptor).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds into the array on success.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room for one control message carrying one descriptor.
const CMSG_SPACE: usize = 64;

/// A msghdr of one iovec over `data` and, when `control` is given, the
/// control buffer (its length set by the caller).
fn msghdr(iov: &mut libc::iovec, control: Option<&mut [u64; CMSG_SPACE / 8]>) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; all-zero is an empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    if let Some(c) = control {
        msg.msg_control = c.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_SPACE as _;
    }
    msg
}

/// Sends `data` and, with it, descriptor `fd` (SCM_RIGHTS) on a Unix
/// socket: how a child hands back a file it opened, so that the open (which
/// may wait forever on a FUSE or NFS mount) happens in the child. No
/// allocation: callable in a forked child. Returns whether sendmsg took it.
pub fn send_fd(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> bool {
    let mut iov = libc::iovec {
        // sendmsg only reads through it.
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; CMSG_SPACE / 8];
    let mut msg = msghdr(&mut iov, fd.is_some().then_some(&mut cbuf));
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is a pure computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
        // SAFETY: the control buffer (64 bytes, aligned for cmsghdr) holds
        // one header and one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        }
    }
    // SAFETY: msg points at live buffers for the call. MSG_NOSIGNAL: a
    // parent that gave up gives EPIPE, not a SIGPIPE in the child.
    (unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) }) >= 0
}

/// Receives what [`send_fd`] sent: the bytes into `data` (how many came)
/// and the descriptor, if one came, close-on-exec and owned by the caller.
pub fn recv_fd(sock: RawFd, data: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; CMSG_SPACE / 8];
    let mut msg = msghdr(&mut iov, Some(&mut cbuf));
    // SAFETY: msg points at live buffers for the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fd = None;
    // SAFETY: walking the control messages recvmsg filled in; an
    // SCM_RIGHTS fd is a new descriptor in this process, ours alone.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, fd))
}

/// Waits until `fd` is readable or hung up (the child wrote, or exited and
/// so closed its end) or `until` passes: `Ok(true)` when it is, `Ok(false)`
/// at the deadline.
pub fn wait_readable(fd: RawFd, until: Instant) -> io::Result<bool> {
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(false);
        }
        let ms = (until - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(true);
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Why [`read_exact_until`] stopped short.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed first.
    TimedOut,
    /// The child closed its end (it died or exited) before all came.
    Closed,
    Io(io::Error),
}

/// Fills `buf` from `fd`, every wait bounded by `until`.
pub fn read_exact_until(fd: RawFd, buf: &mut [u8], until: Instant) -> Result<(), ReadError> {
    let mut got = 0;
    while got < buf.len() {
        if !wait_readable(fd, until).map_err(ReadError::Io)? {
            return Err(ReadError::TimedOut);
        }
        // SAFETY: reading into the unfilled tail of a valid buffer.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock {
                continue;
            }
            return Err(ReadError::Io(e));
        }
        if n == 0 {
            return Err(ReadError::Closed);
        }
        got += n as usize;
    }
    Ok(())
}

/// Writes all of `buf` to `fd` (a pipe to a child, which reads it or dies:
/// a dead reader gives EPIPE, ignored as SIGPIPE is by Rust's runtime).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Sends SIGKILL to a child of ours.
pub fn kill(pid: Pid) {
    // SAFETY: kill(2) on our own child, not yet reaped (we reap only what
    // we then forget), so the pid cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Reaps `pid` if it has exited, without waiting: its wait status, or
/// `None` while it runs (or if it is not our child any more).
pub fn try_reap(pid: Pid) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on our own child never blocks.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (r == pid).then_some(status)
}

/// Whether `pid` is still ours to wait for: waitpid says 0 (running).
/// -1 (ECHILD) means reaped already or not ours: nothing to wait for.
fn still_running(pid: Pid) -> bool {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on our own child never blocks.
    (unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }) == 0
}

/// Waits for children to exit, polling, for at most `bound` in all; returns
/// those still alive. A bounded wait rather than a blocking waitpid(2): a
/// child in TASK_UNINTERRUPTIBLE (a FUSE request the daemon has already
/// read) does not die of SIGKILL, and waiting for it would hang wedge in
/// turn.
pub fn reap_within(pids: &[Pid], bound: Duration) -> Vec<Pid> {
    let until = Instant::now() + bound;
    let mut left: Vec<Pid> = pids.to_vec();
    let mut pause = Duration::from_micros(100);
    loop {
        left.retain(|&pid| still_running(pid));
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Sends SIGKILL to children and reaps them within `bound`; returns those
/// still alive (stuck in an uninterruptible wait).
pub fn kill_and_reap(pids: &[Pid], bound: Duration) -> Vec<Pid> {
    for &pid in pids {
        kill(pid);
    }
    reap_within(pids, bound)
}

/// Reaps a child that has done its work and is exiting (it closed or wrote
/// its last answer): its wait status, or `None` if it is not gone within
/// `bound` — then it is killed and kept in the process's [`Abandoned`]
/// list rather than waited for.
pub fn reap_exiting(pid: Pid, bound: Duration) -> Option<i32> {
    let until = Instant::now() + bound;
    loop {
        let mut st = 0;
        // SAFETY: WNOHANG on our own child never blocks.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Some(st);
        }
        if r < 0 || Instant::now() >= until {
            abandon(pid);
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Children killed at their deadline and not reaped yet.
#[derive(Debug, Default)]
pub struct Abandoned {
    pids: Vec<Pid>,
}

impl Abandoned {
    pub const fn new() -> Abandoned {
        Abandoned { pids: Vec::new() }
    }

    /// SIGKILLs `pid` and keeps it to reap later.
    pub fn kill(&mut self, pid: Pid) {
        kill(pid);
        self.pids.push(pid);
    }

    /// Keeps `pid` to reap later, without a signal (a child told to exit
    /// by closing its pipe).
    pub fn keep(&mut self, pid: Pid) {
        self.pids.push(pid);
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.pids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    pub fn pids(&self) -> &[Pid] {
        &self.pids
    }

    /// Forgets those that have died since, reaping them, without waiting.
    pub fn reap_dead(&mut self) {
        self.pids.retain(|&p| still_running(p));
    }

    /// Reaps within `bound`; returns (and keeps, for a later call) the
    /// children that outlived their kill.
    pub fn finish(&mut self, bound: Duration) -> Vec<Pid> {
        self.pids = reap_within(&self.pids, bound);
        self.pids.clone()
    }
}

static ABANDONED: Mutex<Abandoned> = Mutex::new(Abandoned::new());

/// SIGKILLs a child that overran its deadline and keeps it in the
/// process-wide list, reaping those that have since died (a child stuck in
/// the kernel dies once its wait ends; if wedge exits first, init reaps
/// it).
pub fn abandon(pid: Pid) {
    let Ok(mut a) = ABANDONED.lock() else {
        kill(pid);
        return;
    };
    a.kill(pid);
    a.reap_dead();
}

/// The children given up on through [`abandon`] that are still alive after
/// waiting at most `bound`: they outlived their SIGKILL, stuck in an
/// uninterruptible wait. They stay in the list for a later call.
pub fn outlived(bound: Duration) -> Vec<Pid> {
    match ABANDONED.lock() {
        Ok(mut a) => a.finish(bound),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn comm(pid: Pid) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
    }

    #[test]
    fn child_keeps_only_what_it_is_given_and_is_named() {
        let (r, w) = pipe().unwrap();
        let wfd = w.as_raw_fd();
        let setup = Setup::new(c"wedge-test", &[wfd]).unwrap();
        // SAFETY: the child makes raw system calls only.
        let pid = unsafe {
            spawn(&setup, || {
                // Count the open descriptors by probing with fcntl: the
                // kept pipe and stdio (on /dev/null) only.
                let mut open = 0u8;
                for fd in 0..256 {
                    if libc::fcntl(fd, libc::F_GETFD) >= 0 {
                        open += 1;
                    }
                }
                libc::write(wfd, (&raw const open).cast(), 1);
                // Wait to be killed.
                libc::pause();
                0
            })
        }
        .unwrap();
        drop(w);
        let mut b = [0u8; 1];
        read_exact_until(
            r.as_raw_fd(),
            &mut b,
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(b[0], 4, "stdio and the pipe");
        assert_eq!(comm(pid).trim(), "wedge-test");
        let stdout = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
        assert_eq!(stdout, std::path::Path::new("/dev/null"));
        assert!(kill_and_reap(&[pid], Duration::from_secs(5)).is_empty());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    /// PR_SET_PDEATHSIG follows the forking thread: a child spawned from a
    /// thread that then ends must live on.
    #[test]
    fn child_outlives_the_thread_that_asked() {
        let (r, w) = pipe().unwrap();
        let wfd = w.as_raw_fd();
        let setup = Setup::new(c"wedge-test", &[wfd]).unwrap();
        let pid = std::thread::spawn(move || {
            // SAFETY: the child only pauses.
            unsafe {
                spawn(&setup, || {
                    libc::pause();
                    0
                })
            }
        })
        .join()
        .unwrap()
        .unwrap();
        drop(w);
        std::thread::sleep(Duration::from_millis(50));
        // The pipe is still open in the child: no EOF, a timeout.
        let mut b = [0u8; 1];
        let got = read_exact_until(
            r.as_raw_fd(),
            &mut b,
            Instant::now() + Duration::from_millis(50),
        );
        assert!(matches!(got, Err(ReadError::TimedOut)), "{got:?}");
        assert!(kill_and_reap(&[pid], Duration::from_secs(5)).is_empty());
        // Now it is gone, and its end with it.
        let got = read_exact_until(
            r.as_raw_fd(),
            &mut b,
            Instant::now() + Duration::from_secs(1),
        );
        assert!(matches!(got, Err(ReadError::Closed)), "{got:?}");
    }

    #[test]
    fn a_descriptor_comes_back_over_the_socket() {
        let (ours, theirs) = socketpair().unwrap();
        let t = theirs.as_raw_fd();
        let setup = Setup::new(c"wedge-test", &[t]).unwrap();
        // SAFETY: the child opens a file and sends it with raw calls only.
        let pid = unsafe {
            spawn(&setup, || {
                let fd = libc::open(c"/proc/version".as_ptr(), libc::O_RDONLY);
                send_fd(t, b"ok", (fd >= 0).then_some(fd));
                0
            })
        }
        .unwrap();
        drop(theirs);
        assert!(wait_readable(ours.as_raw_fd(), Instant::now() + Duration::from_secs(5)).unwrap());
        let mut b = [0u8; 8];
        let (n, fd) = recv_fd(ours.as_raw_fd(), &mut b).unwrap();
        assert_eq!(&b[..n], b"ok");
        let text = std::io::read_to_string(std::fs::File::from(fd.unwrap())).unwrap();
        assert!(text.starts_with("Linux version"), "{text}");
        assert!(reap_exiting(pid, Duration::from_secs(5)).is_some());
    }

    #[test]
    fn exit_status_and_abandon() {
        let setup = Setup::new(c"wedge-test", &[]).unwrap();
        // SAFETY: the child returns at once.
        let pid = unsafe { spawn(&setup, || 7) }.unwrap();
        let st = reap_exiting(pid, Duration::from_secs(5)).unwrap();
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7);
        // SAFETY: the child only pauses.
        let pid = unsafe {
            spawn(&setup, || {
                libc::pause();
                0
            })
        }
        .unwrap();
        abandon(pid);
        // A pause(2) is interruptible: SIGKILL ends it, nothing outlives.
        assert!(!outlived(Duration::from_secs(5)).contains(&pid));
        assert!(Setup::new(c"x", &[1, 2, 3, 4, 5]).is_err());
    }
}
