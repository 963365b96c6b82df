//! User-space backtraces of live threads without ptrace.
//!
//! `/proc/PID/syscall` gives a blocked thread's user sp and pc (the values
//! saved on kernel entry) without stopping it. The rest is memory: the
//! thread's stack, read with `process_vm_readv`, and its mappings, read from
//! `/proc/PID/maps`. Both take the target's mmap_lock for reading
//! (`mmap_read_lock_killable` on current kernels, a plain `down_read` on
//! old ones), and a stuck process is often stuck precisely because some
//! thread holds or waits for that lock for writing (mmap/munmap blocked
//! behind a page fault on a dead FUSE or NFS server). A wedge thread caught
//! in that `down_read` could never be killed, and would keep wedge from
//! exiting, so the reads are made by a forked child that is abandoned at the
//! deadline (wedge-child: the fork from its long-lived thread, the child's
//! set-up, the deadline wait and the bounded reap). Nothing here
//! uses ptrace: ptrace-attaching a task in D state waits for it to stop,
//! which it never does, and wedges the tracer too.
//!
//! Unwinding and symbolizing then happen in wedge's own process, on the
//! copied stack and the binaries opened through `/proc/PID/root` (so a
//! container's files are found in its own mount namespace).

use crate::binaries::{self, BinaryState, Lookup};
use crate::elf::Arch;
use crate::error::LiveError;
use crate::notes::FileMapping;
use crate::report::Frame;
use crate::unwind::{StartRegs, Walker};
use crate::{insn, symbolize};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How far and how long to look.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The reader child is abandoned after this long.
    pub deadline: Duration,
    /// Bytes of stack copied from sp upwards.
    pub stack_bytes: usize,
    pub max_frames: usize,
    /// The caller knows the target's mmap_lock is held for writing (a
    /// thread of the process sleeps in `rwsem_down_write_slowpath` or in
    /// `mmap_write_lock`): no read is attempted, since it could only block.
    pub mmap_lock_held: bool,
    /// Split debug directories; the usual ones (inside the process's root
    /// first) when empty.
    pub debug_dirs: Vec<PathBuf>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            deadline: Duration::from_millis(250),
            stack_bytes: 256 * 1024,
            max_frames: 128,
            mmap_lock_held: false,
            debug_dirs: Vec::new(),
        }
    }
}

/// A live thread's user-space backtrace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveBacktrace {
    pub frames: Vec<Frame>,
    /// The instruction at pc (for a thread in a system call, the one after
    /// the `syscall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwind_stopped: Option<String>,
    /// Binaries not found, stacks not fully read...
    pub missing: Vec<String>,
}

const MAPS_MAX: usize = 4 << 20;
const CODE_LEN: usize = 16;
const PAGE: u64 = 4096;

/// One thread to walk: its id and the user sp and pc from
/// `/proc/PID/task/TID/syscall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveThread {
    pub tid: i32,
    pub sp: u64,
    pub pc: u64,
}

/// One thread's result: its tid and its backtrace or why there is none.
pub type ThreadBacktrace = (i32, Result<LiveBacktrace, LiveError>);

/// Bytes copied from the target, or the errno of the copy.
type Copied = Result<Vec<u8>, i32>;

/// At most this many threads per call (one shared buffer of
/// `stack_bytes` each).
pub const MAX_THREADS: usize = 256;

/// The user-space backtrace of thread `tid` of process `pid`, starting at
/// `sp`/`pc` (from `/proc/TID/syscall`). Never ptraces and never blocks
/// longer than `opts.deadline` on the target.
pub fn live_backtrace(
    pid: i32,
    tid: i32,
    sp: u64,
    pc: u64,
    opts: &LiveOptions,
) -> Result<LiveBacktrace, LiveError> {
    live_backtraces(pid, &[LiveThread { tid, sp, pc }], opts)?
        .pop()
        .map(|(_, r)| r)
        .unwrap_or(Err(LiveError::Broken("no result".into())))
}

/// Backtraces of several threads of one process: one reader child, one
/// read of the mappings, each binary opened and symbolized once. The outer
/// error is for the process as a whole (lock held, reader timed out); each
/// thread then has its own result. At most [`MAX_THREADS`] threads are
/// walked; the rest are not returned.
pub fn live_backtraces(
    pid: i32,
    threads: &[LiveThread],
    opts: &LiveOptions,
) -> Result<Vec<ThreadBacktrace>, LiveError> {
    if opts.mmap_lock_held {
        return Err(LiveError::MmapLockHeld);
    }
    let Some(arch) = Arch::host() else {
        return Err(LiveError::Unsupported(
            "live backtraces are supported on x86-64 and aarch64".into(),
        ));
    };
    let threads = &threads[..threads.len().min(MAX_THREADS)];
    let stack_len = opts.stack_bytes.clamp(PAGE as usize, 8 << 20);
    let got = read_remote(pid, threads, stack_len, opts.deadline)?;
    let mut missing = Vec::new();
    let (maps, exec) = match got.maps {
        Ok(m) => parse_maps_exec(&m),
        Err(e) => {
            missing.push(format!(
                "/proc/{pid}/maps: {}",
                std::io::Error::from_raw_os_error(e)
            ));
            (Vec::new(), Vec::new())
        }
    };
    let lookup = Lookup {
        root: Some(PathBuf::from(format!("/proc/{pid}/root"))),
    };
    let bins = binaries::load(&maps, &lookup, None);
    for b in bins.iter().filter(|b| exec.contains(&b.path)) {
        if let BinaryState::Missing { reason } | BinaryState::Unusable { reason } = &b.state {
            missing.push(format!("{}: {reason}", b.path));
        }
    }
    let walker = Walker::new(arch, &bins);
    let mut views = Vec::new();
    let mut raws = Vec::new();
    let mut stops = Vec::new();
    let mut errors = Vec::new();
    for (t, (stack, code)) in threads.iter().zip(got.threads) {
        let view = StackCopy {
            base: t.sp,
            bytes: stack.clone().unwrap_or_default(),
            code_at: t.pc,
            code: code.unwrap_or_default(),
        };
        let (raw, stop) = match &stack {
            Err(_) => (Vec::new(), None),
            Ok(_) => walk_guessing_fp(&walker, &bins, &view, t, opts.max_frames),
        };
        errors.push(stack.err());
        views.push(view);
        raws.push(raw);
        stops.push(stop);
    }
    let debug_dirs = if opts.debug_dirs.is_empty() {
        symbolize::default_debug_dirs(lookup.root.as_deref())
    } else {
        opts.debug_dirs.clone()
    };
    let symbolized = symbolize::symbolize(&bins, &raws, &debug_dirs);
    let mut out = Vec::new();
    for ((((t, frames), stop), view), err) in threads
        .iter()
        .zip(symbolized)
        .zip(stops)
        .zip(views)
        .zip(errors)
    {
        if let Some(e) = err {
            out.push((t.tid, Err(LiveError::Os(e))));
            continue;
        }
        let mut m = missing.clone();
        if view.bytes.is_empty() {
            m.push(format!("no stack could be read at sp {:#x}", t.sp));
        }
        let instruction =
            insn::code_at(&view, &bins, t.pc, CODE_LEN).map(|b| insn::decode(arch, &b, t.pc));
        out.push((
            t.tid,
            Ok(LiveBacktrace {
                frames,
                instruction,
                unwind_stopped: stop,
                missing: m,
            }),
        ));
    }
    Ok(out)
}

/// Walks a live stack. `/proc/PID/syscall` gives sp and pc but not the
/// frame pointer, so the walk first runs without one; code whose CFI
/// computes the frame address from rbp (frame-pointer builds, Rust debug
/// builds, functions with variable-sized frames) then stops early. In that
/// case the stack is scanned for saved-rbp candidates, slots whose next
/// word is a return address into a mapped binary, and the walk that goes
/// furthest through known code is kept.
fn walk_guessing_fp(
    walker: &Walker,
    bins: &[binaries::Binary],
    view: &StackCopy,
    t: &LiveThread,
    max_frames: usize,
) -> (Vec<crate::unwind::RawFrame>, Option<String>) {
    let in_code = |a: u64| bins.iter().any(|b| b.range.contains(&a));
    let score = |frames: &[crate::unwind::RawFrame]| {
        frames.iter().take_while(|f| in_code(f.address)).count()
    };
    let walk = |fp: u64| {
        walker.walk(
            StartRegs {
                pc: t.pc,
                sp: t.sp,
                fp,
                lr: None,
            },
            max_frames,
            &mut |a| view.read_u64(a),
        )
    };
    let mut best = walk(0);
    let mut best_score = score(&best.0);
    let mut tried = 0;
    let mut slot = t.sp;
    let end = t.sp.saturating_add(view.bytes.len() as u64);
    while slot + 16 <= end && tried < 48 && best.0.len() < max_frames {
        let ret = view.read_u64(slot + 8).unwrap_or(0);
        let next = view.read_u64(slot).unwrap_or(0);
        // A saved rbp points further up the stack (or is 0 at the end).
        if in_code(ret) && (next == 0 || (next > slot && next < end)) {
            tried += 1;
            let got = walk(slot);
            let s = score(&got.0);
            if s > best_score || (s == best_score && got.1.is_none() && best.1.is_some()) {
                best_score = s;
                best = got;
            }
        }
        slot += 8;
    }
    best
}

/// The stack (and code bytes at pc) copied out of the live process.
struct StackCopy {
    base: u64,
    bytes: Vec<u8>,
    code_at: u64,
    code: Vec<u8>,
}

impl StackCopy {
    fn read_u64(&self, a: u64) -> Option<u64> {
        let b = binaries::MemoryView::read(self, a, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

impl binaries::MemoryView for StackCopy {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        for (base, bytes) in [(self.base, &self.bytes), (self.code_at, &self.code)] {
            let Some(off) = addr.checked_sub(base) else {
                continue;
            };
            let Ok(off) = usize::try_from(off) else {
                continue;
            };
            if let Some(s) = off.checked_add(len).and_then(|end| bytes.get(off..end)) {
                return Some(s);
            }
        }
        None
    }
}

/// Parses `/proc/PID/maps` lines into file mappings. The paths of files
/// with an executable mapping are marked with a leading `x` in `exec`.
pub fn parse_maps(text: &[u8]) -> Vec<FileMapping> {
    parse_maps_exec(text).0
}

fn parse_maps_exec(text: &[u8]) -> (Vec<FileMapping>, Vec<String>) {
    let mut exec = Vec::new();
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(text).lines() {
        let mut it = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off), Some(_dev), Some(_ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let path = it.next().unwrap_or("").trim_start();
        if !path.starts_with('/') {
            continue;
        }
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(s, 16),
            u64::from_str_radix(e, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        if perms.contains('x') && !exec.iter().any(|p| p == path) {
            exec.push(path.to_string());
        }
        out.push(FileMapping {
            start,
            end,
            offset,
            path: path.to_string(),
        });
    }
    (out, exec)
}

struct Remote {
    maps: Copied,
    /// Per thread: its stack and the code at its pc.
    threads: Vec<(Copied, Copied)>,
}

/// Memory shared with the reader child: MAP_SHARED, so the child's writes
/// are seen by wedge without a pipe protocol, and allocated before the fork
/// so the child never allocates.
struct Shared {
    ptr: *mut u8,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> Result<Shared, LiveError> {
        // SAFETY: an anonymous shared mapping; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(LiveError::Broken(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        Ok(Shared { ptr: p.cast(), len })
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as self; the
        // child has exited (or been abandoned, see `read_remote`) before the
        // parent reads.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; an abandoned child keeps its
        // own reference to the pages.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn result_at(head: &[u8], i: usize) -> i64 {
    head.get(i * 8..i * 8 + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(-(libc::EIO as i64), i64::from_ne_bytes)
}

fn read_remote(
    pid: i32,
    threads: &[LiveThread],
    stack_len: usize,
    deadline: Duration,
) -> Result<Remote, LiveError> {
    let maps_path = std::ffi::CString::new(format!("/proc/{pid}/maps"))
        .map_err(|e| LiveError::Broken(e.to_string()))?;
    let n = threads.len();
    // Header: the maps result, then (stack, code) results per thread.
    let head = (8 + 16 * n).next_multiple_of(64);
    let per = stack_len + CODE_LEN;
    let total = head + MAPS_MAX + per * n;
    let shared = Shared::new(total)?;
    // Remote iovecs one page each: process_vm_readv stops at the first
    // iovec it cannot read in full, so a stack that ends (top of the VMA)
    // gives back every page up to there.
    let mut stacks = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    for t in threads {
        let mut remote = Vec::new();
        let mut a = t.sp;
        let end = t.sp.saturating_add(stack_len as u64);
        while a < end {
            let next = ((a / PAGE) + 1).saturating_mul(PAGE);
            let len = next.min(end) - a;
            remote.push(libc::iovec {
                iov_base: a as *mut libc::c_void,
                iov_len: len as usize,
            });
            a = next;
        }
        stacks.push(remote);
        let pc = t.pc;
        let split =
            (((pc / PAGE) + 1).saturating_mul(PAGE)).min(pc.saturating_add(CODE_LEN as u64));
        let first = split.saturating_sub(pc) as usize;
        codes.push([
            libc::iovec {
                iov_base: pc as *mut libc::c_void,
                iov_len: first,
            },
            libc::iovec {
                iov_base: split as *mut libc::c_void,
                iov_len: CODE_LEN.saturating_sub(first),
            },
        ]);
    }
    let (done_r, done_w) = wedge_child::pipe().map_err(|e| LiveError::Broken(e.to_string()))?;
    let plan = Plan {
        done: done_w.as_raw_fd(),
        maps_path: maps_path.as_ptr(),
        pid,
        base: shared.ptr,
        head,
        stack_len,
        stacks: &stacks,
        codes: &codes,
    };
    let setup = wedge_child::Setup::new(c"wedge-stack", &[plan.done])
        .map_err(|e| LiveError::Broken(e.to_string()))?;
    // SAFETY: `child_main` makes raw system calls only, on memory prepared
    // above (the plan's pointers stay valid in the child's copy).
    let child = unsafe { wedge_child::spawn(&setup, || child_main(&plan)) }
        .map_err(|e| LiveError::Broken(e.to_string()))?;
    drop(done_w);
    let until = Instant::now() + deadline;
    // The child holds the pipe's only write end: POLLHUP when it exits. A
    // failed poll counts as the deadline: the child is killed either way.
    if !wedge_child::wait_readable(done_r.as_raw_fd(), until).unwrap_or(false) {
        // Reap what we kill, within one more deadline: a reader SIGKILLed in
        // mmap_read_lock_killable leaves at once; left unreaped, it would
        // outlive wedge as a zombie.
        let stuck = wedge_child::kill_and_reap(&[child], deadline);
        if stuck.is_empty() {
            return Err(LiveError::TimedOut);
        }
        wedge_child::abandon(child);
        return Err(LiveError::TimedOutReaderStuck(child));
    }
    // The child closed its end of the pipe, so it is in _exit (after
    // exit_files only a few steps are left): a short bound is plenty.
    let Some(status) = wedge_child::reap_exiting(child, Duration::from_secs(2)) else {
        return Err(LiveError::Broken(
            "reader did not exit after its work".into(),
        ));
    };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(LiveError::Broken(format!(
            "reader ended with status {status:#x}"
        )));
    }
    let buf = shared.bytes();
    let part = |i: usize, off: usize, cap: usize| -> Copied {
        let r = result_at(buf, i);
        if r < 0 {
            return Err(i32::try_from(-r).unwrap_or(libc::EIO));
        }
        let len = (r as usize).min(cap);
        Ok(buf.get(off..off + len).unwrap_or(&[]).to_vec())
    };
    Ok(Remote {
        maps: part(0, head, MAPS_MAX),
        threads: (0..n)
            .map(|k| {
                let at = head + MAPS_MAX + per * k;
                (
                    part(1 + 2 * k, at, stack_len),
                    part(2 + 2 * k, at + stack_len, CODE_LEN),
                )
            })
            .collect(),
    })
}

/// Everything the reader child needs, prepared before the fork.
struct Plan<'a> {
    done: RawFd,
    maps_path: *const libc::c_char,
    pid: i32,
    base: *mut u8,
    head: usize,
    stack_len: usize,
    stacks: &'a [Vec<libc::iovec>],
    codes: &'a [[libc::iovec; 2]],
}

/// The reader child. Only raw system calls; `_exit` at the end closes the
/// pipe, which tells wedge the results are in.
///
/// # Safety
/// Only in a freshly forked child set up by wedge-child (it holds only the
/// pipe), with a plan whose buffer is laid out as `read_remote` describes.
unsafe fn child_main(p: &Plan) -> ! {
    // SAFETY: plain system calls on memory and fds this process owns.
    unsafe {
        let results = p.base as *mut i64;
        let maps = p.base.add(p.head);
        let result = |n: isize| -> i64 {
            if n < 0 {
                -(*libc::__errno_location()) as i64
            } else {
                n as i64
            }
        };

        // /proc/PID/maps: mmap_read_lock_killable inside.
        let fd = libc::open(p.maps_path, libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            *results = result(-1);
        } else {
            let mut got = 0usize;
            loop {
                let n = libc::read(fd, maps.add(got).cast(), MAPS_MAX - got);
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                if n <= 0 {
                    break;
                }
                got += n as usize;
                if got >= MAPS_MAX {
                    break;
                }
            }
            *results = got as i64;
            libc::close(fd);
        }

        let per = p.stack_len + CODE_LEN;
        for (k, (remote, code)) in p.stacks.iter().zip(p.codes).enumerate() {
            let at = maps.add(MAPS_MAX + per * k);
            let local = libc::iovec {
                iov_base: at.cast(),
                iov_len: p.stack_len,
            };
            // process_vm_readv takes at most IOV_MAX (1024) remote iovecs.
            let n = libc::process_vm_readv(
                p.pid,
                &local,
                1,
                remote.as_ptr(),
                remote.len().min(1024) as libc::c_ulong,
                0,
            );
            *results.add(1 + 2 * k) = result(n);
            let local = libc::iovec {
                iov_base: at.add(p.stack_len).cast(),
                iov_len: CODE_LEN,
            };
            let n = libc::process_vm_readv(p.pid, &local, 1, code.as_ptr(), 2, 0);
            *results.add(2 + 2 * k) = result(n);
        }
        libc::_exit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let m = parse_maps(
            b"55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 123 /usr/bin/cat\n\
              7ffd1000-7ffd3000 rw-p 00000000 00:00 0 [stack]\n\
              7f0000000000-7f0000001000 r-xp 00002000 08:01 9 /lib/x (deleted)\n\
              garbage\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].start, 0x55d0c0a00000);
        assert_eq!(m[1].offset, 0x2000);
        assert_eq!(m[1].path, "/lib/x (deleted)");
    }

    #[test]
    fn backtrace_of_a_sleeping_child() {
        // A child that sleeps in nanosleep: read its /proc/PID/syscall
        // and walk its stack without ptrace.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut regs = None;
        // Only the sleep itself: before it the child may block in execve or
        // in ld.so's reads, whose frame 0 is not in libc.
        let sleeping = [libc::SYS_nanosleep as u64, libc::SYS_clock_nanosleep as u64];
        for _ in 0..500 {
            std::thread::sleep(Duration::from_millis(10));
            regs = syscall_regs(pid as u32, pid).filter(|r| sleeping.contains(&r.0));
            if regs.is_some() {
                break;
            }
        }
        let (_, sp, pc) = regs.expect("child never blocked in nanosleep");
        let bt = live_backtrace(pid, pid, sp, pc, &LiveOptions::default());
        child.kill().ok();
        child.wait().ok();
        let bt = match bt {
            Ok(bt) => bt,
            // Without CAP_SYS_PTRACE over the child (YAMA ptrace_scope 3).
            Err(LiveError::Os(e)) if e == libc::EPERM => return,
            Err(e) => panic!("{e}"),
        };
        assert!(!bt.frames.is_empty());
        assert!(
            bt.frames[0]
                .module
                .as_deref()
                .unwrap_or("")
                .contains("libc"),
            "{:?}",
            bt.frames
        );
    }

    /// (syscall number, sp, pc) of a task blocked in a system call.
    fn syscall_regs(pid: u32, tid: i32) -> Option<(u64, u64, u64)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
        let f: Vec<&str> = s.split_whitespace().collect();
        let h = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok();
        (f.len() == 9)
            .then(|| Some((f[0].parse().ok()?, h(f[7])?, h(f[8])?)))
            .flatten()
    }

    #[inline(never)]
    fn parked_alpha(rx: std::sync::mpsc::Receiver<()>) {
        let _ = rx.recv();
    }

    #[inline(never)]
    fn parked_beta(rx: std::sync::mpsc::Receiver<()>) {
        let _ = rx.recv();
    }

    #[test]
    fn backtraces_of_threads_of_this_process() {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let mut stops = Vec::new();
        let mut joins = Vec::new();
        for which in 0..2 {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            stops.push(tx);
            let tid_tx = tid_tx.clone();
            joins.push(std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send((which, unsafe { libc::gettid() })).unwrap();
                if which == 0 {
                    parked_alpha(rx)
                } else {
                    parked_beta(rx)
                }
            }));
        }
        // The two threads report in whatever order the scheduler runs
        // them (beta first about one run in five): pair each tid with the
        // function it parks in, not with its arrival.
        let mut tids: Vec<(usize, i32)> = (0..2).map(|_| tid_rx.recv().unwrap()).collect();
        tids.sort();
        let pid = std::process::id();
        let mut threads = Vec::new();
        for &(_, tid) in &tids {
            // /proc/PID/task/TID/syscall gives registers only for a task
            // that sleeps (a runnable one reads "running"); once the tid is
            // sent, the only sleep left is the futex wait in recv().
            let mut regs = None;
            for _ in 0..2000 {
                regs = syscall_regs(pid, tid).filter(|r| r.0 == libc::SYS_futex as u64);
                if regs.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let (_, sp, pc) = regs.expect("thread never blocked in futex wait");
            threads.push(LiveThread { tid, sp, pc });
        }
        let got = live_backtraces(pid as i32, &threads, &LiveOptions::default());
        drop(stops);
        for j in joins {
            j.join().unwrap();
        }
        let got = got.unwrap();
        assert_eq!(got.len(), 2);
        for ((tid, r), want) in got.iter().zip(["parked_alpha", "parked_beta"]) {
            let bt = r.as_ref().unwrap();
            assert!(
                bt.frames
                    .iter()
                    .any(|f| f.function.as_deref().is_some_and(|n| n.ends_with(want))),
                "thread {tid}: no {want} in {:?} (stopped: {:?})",
                bt.frames.iter().map(|f| &f.function).collect::<Vec<_>>(),
                bt.unwind_stopped
            );
        }
    }

    #[test]
    fn a_held_mmap_lock_is_not_touched() {
        let o = LiveOptions {
            mmap_lock_held: true,
            ..LiveOptions::default()
        };
        assert_eq!(
            live_backtrace(1, 1, 0, 0, &o).unwrap_err(),
            LiveError::MmapLockHeld
        );
    }
}
