//! Bodies of the helper processes. Each role runs in a freshly exec'ed copy of
//! the test binary (so it starts single-threaded), sets its comm to a
//! recognisable `wk-*` name, and reports to the test process with one line per
//! event on stdout (`key=value` pairs). Lines starting with `error ` or `skip `
//! make the waiting constructor fail or skip.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;

use crate::helper::{PARENT_ENV, ROLE_ENV};

/// Dispatch to the role named by `WEDGE_TESTKIT_ROLE`. Never returns.
pub(crate) fn run(role: &str, args: &[OsString]) -> ! {
    // A panicking role must not unwind into the test harness's main().
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(io::stderr(), "wedge-testkit role panicked: {info}");
        say(&format!("error panic: {info}"));
        std::process::exit(101);
    }));
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match role {
        "wk-fused" => {
            prologue("wk-fused");
            crate::fuse::daemon_main(args)
        }
        "wk-sleeper" => {
            let name = arg(0);
            prologue(&name.to_string_lossy());
            say(&format!("ready pid={}", host_tid()));
            sleep_forever()
        }
        "wk-tracer" => tracer(&arg(0)),
        "wk-zombie-par" => zombie_parent(),
        "wk-zombie" => {
            prologue("wk-zombie");
            std::process::exit(0)
        }
        "wk-vfork" => vfork_parent(),
        "wk-pidns-launch" => crate::pidns::launcher_main(args),
        "wk-reader" => reader(&arg(0)),
        "wk-mtreader" => thread_reader(&arg(0)),
        "wk-statter" => statter(&arg(0), &arg(1)),
        "wk-mmaplock" => mmaplock(&arg(0)),
        "wk-cmdline" => cmdline_reader(&arg(0)),
        "wk-flusher" => flusher(&arg(0)),
        "wk-creator" => creator(&arg(0)),
        "wk-lister" => lister(&arg(0)),
        "wk-uring" => crate::uring::uring_main(&arg(0), &arg(1)),
        "wk-setns" => crate::pidns::setns_fork_main(&arg(0)),
        "wk-guardian" => crate::storage::guardian_main(),
        "wk-blkreader" => crate::storage::blkreader_main(&arg(0)),
        "wk-fswriter" => crate::storage::fswriter_main(&arg(0), &arg(1)),
        "wk-eiowriter" => crate::storage::eiowriter_main(&arg(0)),
        other => {
            say(&format!("error unknown role {other}"));
            std::process::exit(2)
        }
    }
}

/// Set the calling thread's comm (`prctl(PR_SET_NAME)`, truncated to 15 bytes).
pub(crate) fn set_comm(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    bytes.push(0);
    if let Ok(c) = CStr::from_bytes_with_nul(&bytes) {
        let _ = rustix::thread::set_name(c);
    }
}

/// Common start of every role: comm, and die with the spawner.
pub(crate) fn prologue(comm: &str) {
    set_comm(comm);
    // SIGKILL us when the thread that forked us exits, so a crashed test
    // process does not leave helpers behind (PID 1 here reaps nothing).
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    // If the parent died before the line above, PDEATHSIG will never fire.
    if let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    {
        let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        if ppid != parent {
            std::process::exit(0);
        }
    }
}

/// Print one line to the test process and flush it.
pub(crate) fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// This thread's tid in the *host* pid namespace. `/proc` here is the host's
/// procfs, so `/proc/thread-self` resolves to `<host pid>/task/<host tid>`
/// even inside a child pid namespace, where `gettid()` would give the
/// namespace-local number.
pub(crate) fn host_tid() -> i32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or_else(|| rustix::thread::gettid().as_raw_nonzero().get())
}

pub(crate) fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Read one byte from `fd` with a raw `read(2)` into a stack buffer: no heap
/// allocation, so it cannot block on `mmap_lock` through `brk`/`mmap`.
fn read_byte(fd: BorrowedFd<'_>) -> Option<u8> {
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(fd, &mut b) {
            Ok(1) => return Some(b[0]),
            Ok(_) => return None,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

pub(crate) fn fail(msg: impl std::fmt::Display) -> ! {
    say(&format!("error {msg}"));
    std::process::exit(1)
}

/// Spawn another role from inside a role process (from its main thread).
pub(crate) fn spawn_role(role: &str, args: &[&OsStr], stdout_inherit: bool) -> io::Result<u32> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args)
        .env(ROLE_ENV, role)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null());
    if !stdout_inherit {
        cmd.stdout(Stdio::null());
    }
    // Dropping the Child neither waits nor kills.
    Ok(cmd.spawn()?.id())
}

// --- processes -------------------------------------------------------------

fn tracer(target: &OsStr) -> ! {
    prologue("wk-tracer");
    let pid: i32 = target
        .to_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail("bad pid"));
    // SAFETY: PTRACE_ATTACH takes no pointers; the kernel checks permission.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            say(&format!("skip ptrace(PTRACE_ATTACH): {e}"));
            std::process::exit(0);
        }
        fail(format!("ptrace attach {pid}: {e}"));
    }
    // The attach queues SIGSTOP; wait for the resulting ptrace-stop so the
    // tracee is in TASK_TRACED before we report.
    let mut status = 0;
    // SAFETY: waitpid writes only our status int.
    let w = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    if w != pid {
        fail(format!("waitpid tracee: {}", io::Error::last_os_error()));
    }
    say(&format!(
        "attached tracer={} status={status:#x}",
        host_tid()
    ));
    sleep_forever()
}

fn zombie_parent() -> ! {
    prologue("wk-zombie-par");
    let child = spawn_role("wk-zombie", &[], false).unwrap_or_else(|e| fail(e));
    say(&format!("child pid={child}"));
    // Never wait(): the child stays a zombie while we sleep.
    sleep_forever()
}

/// Stack for the vfork child; it runs on its own stack so it cannot clobber
/// the parent's frames (the reason plain vfork() is hazardous from Rust).
const VFORK_STACK: usize = 64 * 1024;

extern "C" fn vfork_child(_arg: *mut libc::c_void) -> libc::c_int {
    // Only raw syscalls here: we share the parent's memory and TLS.
    // SAFETY: prctl with a static NUL-terminated name and plain integers.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"wk-vfork-child".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    loop {
        // SAFETY: pause() has no arguments and only returns on a signal.
        unsafe { libc::pause() };
    }
}

fn vfork_parent() -> ! {
    prologue("wk-vfork");
    let mut stack = vec![0u8; VFORK_STACK];
    // x86-64 wants a 16-byte aligned stack top.
    let top = ((stack.as_mut_ptr() as usize + VFORK_STACK) & !15) as *mut libc::c_void;
    say(&format!("vforking pid={}", host_tid()));
    // clone(CLONE_VM | CLONE_VFORK | SIGCHLD) is exactly what vfork(2) does in
    // kernel_clone(); we pass our own child stack. The parent sleeps in
    // kernel_clone() -> wait_for_vfork_done() until the child execs or exits,
    // which it never does.
    // SAFETY: the child runs `vfork_child` on `stack`, which outlives it from
    // our point of view: we are suspended until the child exits or execs.
    let r = unsafe {
        libc::clone(
            vfork_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        fail(format!(
            "clone(CLONE_VFORK): {}",
            io::Error::last_os_error()
        ));
    }
    say(&format!("vfork-returned child={r}"));
    std::mem::forget(stack);
    sleep_forever()
}

// --- FUSE clients ------------------------------------------------------------

fn reader(path: &OsStr) -> ! {
    prologue("wk-reader");
    let mut f = File::open(path).unwrap_or_else(|e| fail(format!("open {path:?}: {e}")));
    say(&format!("opened tid={}", host_tid()));
    let mut buf = [0u8; 4096];
    let r = f.read(&mut buf);
    say(&format!("read-done result={r:?}"));
    sleep_forever()
}

/// A reader whose read runs on a second thread (`wk-mtread`), so that a
/// SIGKILL lets the leader exit (zombie) while that thread stays in the
/// FUSE wait.
fn thread_reader(path: &OsStr) -> ! {
    prologue("wk-mtreader");
    let mut f = File::open(path).unwrap_or_else(|e| fail(format!("open {path:?}: {e}")));
    let leader = host_tid();
    let _t = std::thread::Builder::new()
        .name("wk-mtread".into())
        .spawn(move || {
            say(&format!("opened leader={leader} thread={}", host_tid()));
            let mut buf = [0u8; 4096];
            let r = f.read(&mut buf);
            say(&format!("read-done result={r:?}"));
        })
        .unwrap_or_else(|e| fail(e));
    sleep_forever()
}

/// `stat()` of `rel` (a relative path) from the working directory `dir`:
/// a path lookup with no file open on the mount.
fn statter(dir: &OsStr, rel: &OsStr) -> ! {
    prologue("wk-statter");
    std::env::set_current_dir(dir).unwrap_or_else(|e| fail(format!("chdir {dir:?}: {e}")));
    say(&format!("stating tid={}", host_tid()));
    let r = std::fs::metadata(rel).map(|m| m.len());
    say(&format!("stat-done result={r:?}"));
    sleep_forever()
}

fn mmaplock(path: &OsStr) -> ! {
    prologue("wk-mmaplock");
    let file = File::open(path).unwrap_or_else(|e| fail(format!("open {path:?}: {e}")));
    let page = rustix::param::page_size();
    // MAP_PRIVATE: `stall` is FOPEN_DIRECT_IO, which refuses shared mappings
    // unless the daemon negotiated FUSE_DIRECT_IO_ALLOW_MMAP.
    // SAFETY: fresh read-only private mapping at a kernel-chosen address; we
    // never form Rust references into it, only pass its address to pread().
    let addr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            page,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            file.as_fd(),
            0,
        )
    }
    .unwrap_or_else(|e| fail(format!("mmap: {e}")));
    // MADV_RANDOM disables fault-around/readahead for this VMA, so the fault
    // calls fuse_read_folio() synchronously instead of waiting on the page
    // lock behind an asynchronous readahead request.
    // SAFETY: advisory call on the mapping we just created.
    let _ = unsafe { rustix::mm::madvise(addr, page, rustix::mm::Advice::Random) };
    let addr = addr as usize;
    let mem = File::open("/proc/self/mem").unwrap_or_else(|e| fail(format!("open mem: {e}")));
    let (a_r, a_w) = rustix::pipe::pipe().unwrap_or_else(|e| fail(e));
    let (b_r, b_w) = rustix::pipe::pipe().unwrap_or_else(|e| fail(e));
    let tid_a = Arc::new(AtomicI32::new(0));
    let tid_b = Arc::new(AtomicI32::new(0));
    // Both threads are created up front: creating a thread needs mmap_lock
    // for write (its stack), impossible once the reader holds it.
    let ta = Arc::clone(&tid_a);
    let _a = std::thread::Builder::new()
        .name("wk-memread".into())
        .spawn(move || {
            ta.store(host_tid(), Ordering::SeqCst);
            read_byte(a_r.as_fd());
            // Reading our own /proc/self/mem goes through access_remote_vm():
            // mmap_read_lock_killable() then get_user_pages_remote() without a
            // `locked` pointer, so the fault may not drop mmap_lock
            // (no FAULT_FLAG_ALLOW_RETRY) and fuse_read_folio() waits for the
            // daemon with mmap_lock read-held.
            let mut buf = [0u8; 64];
            let _ = mem.read_at(&mut buf, addr as u64);
            std::thread::sleep(Duration::from_secs(3600));
        })
        .unwrap_or_else(|e| fail(e));
    let tb = Arc::clone(&tid_b);
    let _b = std::thread::Builder::new()
        .name("wk-mmapper".into())
        .spawn(move || {
            tb.store(host_tid(), Ordering::SeqCst);
            read_byte(b_r.as_fd());
            // mmap() takes mmap_write_lock_killable(): queued behind the reader.
            // SAFETY: anonymous private mapping at a kernel-chosen address.
            let _ = unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    4096,
                    rustix::mm::ProtFlags::READ,
                    rustix::mm::MapFlags::PRIVATE,
                )
            };
            std::thread::sleep(Duration::from_secs(3600));
        })
        .unwrap_or_else(|e| fail(e));
    while tid_a.load(Ordering::SeqCst) == 0 || tid_b.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    say(&format!(
        "tids main={} memread={} mmapper={} addr={addr:#x}",
        host_tid(),
        tid_a.load(Ordering::SeqCst),
        tid_b.load(Ordering::SeqCst)
    ));
    // From here on: no allocation, no printing. Forward 'a'/'b' from stdin.
    let stdin = io::stdin();
    loop {
        match read_byte(stdin.as_fd()) {
            Some(b'a') => {
                let _ = rustix::io::write(&a_w, b"a");
            }
            Some(b'b') => {
                let _ = rustix::io::write(&b_w, b"b");
            }
            Some(_) => {}
            None => {
                // SAFETY: exit_group(2) via libc's _exit, no Rust state needed.
                unsafe { libc::_exit(0) }
            }
        }
    }
}

fn cmdline_reader(pid: &OsStr) -> ! {
    prologue("wk-cmdline");
    let path = format!("/proc/{}/cmdline", pid.to_string_lossy());
    say(&format!("reading tid={}", host_tid()));
    let r = std::fs::read(&path).map(|v| v.len());
    say(&format!("read-done result={r:?}"));
    sleep_forever()
}

/// Open `flushstall`, then make the thread-group leader exit alone (it stays a
/// zombie while the group lives) and let a second thread call exit_group():
/// that thread drops the last reference to the fd table in do_exit() ->
/// exit_files(), so it runs filp_close() -> fuse_flush() with PF_EXITING set
/// (the Netflix case).
fn flusher(path: &OsStr) -> ! {
    prologue("wk-flusher");
    let f = File::open(path).unwrap_or_else(|e| fail(format!("open {path:?}: {e}")));
    // Keep the file open until exit: leak the fd.
    let _fd = std::os::fd::IntoRawFd::into_raw_fd(f);
    let leader = host_tid();
    let (r, w) = rustix::pipe::pipe().unwrap_or_else(|e| fail(e));
    let _t = std::thread::Builder::new()
        .name("wk-flush-thr".into())
        .spawn(move || {
            say(&format!("threads leader={leader} thread={}", host_tid()));
            let _ = rustix::io::write(&w, b"x");
            // Wait (bounded) until the leader is a zombie so this thread is
            // the one that drops the fd table.
            for _ in 0..2000 {
                if crate::proc::state_of(leader) == Some('Z') {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: _exit is exit_group(2); nothing to clean up.
            unsafe { libc::_exit(0) }
        })
        .unwrap_or_else(|e| fail(e));
    read_byte(r.as_fd());
    // SAFETY: SYS_exit ends only this (leader) thread; the process lives on
    // in the other thread, which never touches this thread's stack.
    unsafe {
        libc::syscall(libc::SYS_exit, 0);
    }
    unreachable!("SYS_exit returned")
}

fn creator(path: &OsStr) -> ! {
    prologue("wk-creator");
    say(&format!("creating tid={}", host_tid()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map(|f| f.as_raw_fd());
    say(&format!("create-done result={r:?}"));
    sleep_forever()
}

/// `getdents64(2)` of `fd` into a stack buffer; the byte count or the errno.
fn getdents(fd: BorrowedFd<'_>) -> Result<usize, i32> {
    let mut buf = [0u8; 4096];
    // SAFETY: the kernel writes at most `buf.len()` bytes into our buffer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as usize)
    }
}

/// Two threads (`wk-list-a`, `wk-list-b`) list the directory `path` through
/// one shared fd, each when told (`a`, `b` on stdin). getdents64() takes the
/// file's `f_pos_lock` in fdget_pos() before iterate_dir() sends READDIR, so
/// while the daemon holds the first thread's READDIR the second queues on
/// that mutex.
fn lister(path: &OsStr) -> ! {
    prologue("wk-lister");
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .unwrap_or_else(|e| fail(format!("opendir {path:?}: {e}")));
    let dir = Arc::new(dir);
    let mut go = Vec::new();
    let mut tids = Vec::new();
    for name in ["wk-list-a", "wk-list-b"] {
        let (r, w) = rustix::pipe::pipe().unwrap_or_else(|e| fail(e));
        let tid = Arc::new(AtomicI32::new(0));
        let (t, d) = (Arc::clone(&tid), Arc::clone(&dir));
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                t.store(host_tid(), Ordering::SeqCst);
                read_byte(r.as_fd());
                let res = getdents(d.as_fd());
                say(&format!("listed thread={} result={res:?}", host_tid()));
                sleep_forever()
            })
            .unwrap_or_else(|e| fail(e));
        go.push(w);
        tids.push(tid);
    }
    while tids.iter().any(|t| t.load(Ordering::SeqCst) == 0) {
        std::thread::sleep(Duration::from_millis(1));
    }
    say(&format!(
        "tids main={} first={} second={}",
        host_tid(),
        tids[0].load(Ordering::SeqCst),
        tids[1].load(Ordering::SeqCst)
    ));
    let stdin = io::stdin();
    loop {
        match read_byte(stdin.as_fd()) {
            Some(b'a') => {
                let _ = rustix::io::write(&go[0], b"a");
            }
            Some(b'b') => {
                let _ = rustix::io::write(&go[1], b"b");
            }
            Some(_) => {}
            // SAFETY: exit_group(2) via libc's _exit, no Rust state needed.
            None => unsafe { libc::_exit(0) },
        }
    }
}
