//! The system-call rings on this machine's live kernel: a child makes
//! known calls and the trace shows them in order with their results, the
//! read it is stuck in last and unfinished (a pipe nobody writes, then a
//! FUSE read the daemon parks); a thread that exited stays harmlessly;
//! the calls of the process that opened the trace are not recorded.

use libtest_mimic::{Arguments, Failed, Trial};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wedge_bpf::syscalls::{Attach, SyscallTrace, SLOTS};
use wedge_model::SyscallEvent;
use wedge_testkit::{setup_or_skip, skip_or_fail, wait_until, FuseDaemon, FuseReader};

type R = Result<(), Failed>;

/// This test binary re-executed for one job (see `main`).
const ROLE: &str = "WEDGE_SC_TEST_ROLE";

const SYS_READ: i64 = libc::SYS_read;
const SYS_WRITE: i64 = libc::SYS_write;
const SYS_OPENAT: i64 = libc::SYS_openat;
const SYS_GETPID: i64 = libc::SYS_getpid;
const SYS_GETTID: i64 = libc::SYS_gettid;

/// The path the `calls` role opens (any file every machine has).
const KNOWN_PATH: &[u8] = b"/proc/self/stat\0";

fn check(ok: bool, what: impl FnOnce() -> String) -> R {
    if ok {
        Ok(())
    } else {
        Err(what().into())
    }
}

fn open(attach: Option<Attach>) -> Option<SyscallTrace> {
    match SyscallTrace::open_with(SLOTS, attach) {
        Ok(t) => Some(t),
        Err(e) => {
            skip_or_fail(&format!("system-call tracing unavailable: {e}"));
            None
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What /proc/PID/syscall says the task is in (its first field, the call
/// number), when it is blocked in one.
fn in_syscall(tid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn show(ev: &[SyscallEvent]) -> String {
    ev.iter()
        .map(|e| {
            format!(
                "{}({:#x},{:#x},{:#x})={:?}/{:?}",
                e.name.as_deref().unwrap_or("?"),
                e.args[0],
                e.args[1],
                e.args[2],
                e.ret,
                e.duration_ns
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kills and reaps a child on every way out of a test.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns this binary as `role` with stdin a pipe nobody writes and
/// stdout a pipe; returns it and its first line.
fn spawn(role: &str) -> Result<(Reap, String), Failed> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning role {role}: {e}"))?;
    let out = child.stdout.take().ok_or("no stdout pipe")?;
    let child = Reap(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| format!("role {role}: {e}"))?;
    Ok((child, line.trim().to_string()))
}

/// The `calls` role's calls, in order: getpid, openat of KNOWN_PATH,
/// write of "ready\n" (6 bytes) to stdout, read of 1 byte from stdin,
/// which nobody writes. Each through syscall(2), so that libc adds no
/// call of its own between them.
fn a_child_shows_its_calls_in_order(attach: Attach) -> R {
    let Some(trace) = open(Some(attach)) else {
        return Ok(());
    };
    check(trace.attach() == attach, || {
        format!("asked {attach:?}, got {:?}", trace.attach())
    })?;
    let t0 = now_ms();
    let (child, line) = spawn("calls")?;
    let pid = child.0.id() as i32;
    check(line == "ready", || format!("child said {line:?}"))?;
    let parked = wait_until(Duration::from_secs(10), || {
        in_syscall(pid) == Some(SYS_READ)
    });
    check(parked, || format!("child {pid} never sat in read(0)"))?;
    let got = trace.read(&[pid]);
    let ev = got
        .get(&pid)
        .ok_or_else(|| format!("no calls recorded for child {pid}"))?;
    check(ev.len() >= 4, || format!("too few calls: {}", show(ev)))?;
    let last4 = &ev[ev.len() - 4..];
    let nrs: Vec<i64> = last4.iter().map(|e| e.nr).collect();
    check(nrs == [SYS_GETPID, SYS_OPENAT, SYS_WRITE, SYS_READ], || {
        format!("last four calls: {}", show(ev))
    })?;
    let [getpid, openat, write, read] = last4 else {
        return Err("four calls".into());
    };
    let names: Vec<&str> = last4.iter().filter_map(|e| e.name.as_deref()).collect();
    check(names == ["getpid", "openat", "write", "read"], || {
        format!("names: {names:?}")
    })?;
    check(getpid.ret == Some(pid as i64), || {
        format!("getpid returned {:?}, the child is {pid}", getpid.ret)
    })?;
    // openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC): the first argument as
    // the register held it (an int sign-extended to 64 bits).
    check(
        openat.args[0] == libc::AT_FDCWD as i64 as u64
            && openat.args[2] == (libc::O_RDONLY | libc::O_CLOEXEC) as u64
            && openat.ret.is_some_and(|fd| fd >= 0),
        || format!("openat: {}", show(std::slice::from_ref(openat))),
    )?;
    check(
        write.args[0] == 1 && write.args[2] == 6 && write.ret == Some(6),
        || format!("write: {}", show(std::slice::from_ref(write))),
    )?;
    check(
        read.args[0] == 0 && read.args[2] == 1 && read.ret.is_none() && read.duration_ns.is_none(),
        || format!("read: {}", show(std::slice::from_ref(read))),
    )?;
    // Every finished call has its duration; starts never go backwards and
    // are this run's (Unix ms, from the boot clock: a wrong conversion is
    // off by the boot time, i.e. days or years).
    check(
        ev.iter()
            .all(|e| e.duration_ns.is_some() == e.ret.is_some())
            && ev
                .windows(2)
                .all(|w| w[0].start_unix_ms <= w[1].start_unix_ms)
            && ev.iter().all(|e| e.start_unix_ms >= t0 - 60_000)
            && ev.iter().all(|e| e.start_unix_ms <= now_ms() + 60_000),
        || format!("times (test began at {t0} ms): {ev:?}"),
    )?;
    check(ev.len() <= trace.per_thread(), || {
        format!("{} calls, more than the ring holds", ev.len())
    })?;

    // The dead thread's ring stays until evicted, and reading it is
    // harmless: the read is still there, finished by however the kernel
    // woke it (-ERESTARTSYS for the SIGKILL, or 0 when std's wait closed
    // the pipe's write end first: pipe_read checks writers before
    // signals).
    drop(child);
    let after = trace.read(&[pid]);
    if let Some(ev) = after.get(&pid) {
        check(
            ev.iter()
                .any(|e| e.nr == SYS_READ && e.args[0] == 0 && e.args[2] == 1),
            || format!("after SIGKILL: {}", show(ev)),
        )?;
    }
    Ok(())
}

fn tp_btf_shows_calls_in_order() -> R {
    a_child_shows_its_calls_in_order(Attach::BtfTracePoint)
}

fn raw_tp_shows_calls_in_order() -> R {
    a_child_shows_its_calls_in_order(Attach::RawTracePoint)
}

/// A second thread of the child calls gettid, prints its tid and exits;
/// its ring then either aged out or still holds gettid with that tid as
/// its result (and the exit it did not return from, unfinished).
fn an_exited_thread_stays_harmlessly() -> R {
    let Some(trace) = open(None) else {
        return Ok(());
    };
    let (child, line) = spawn("thread")?;
    let pid = child.0.id() as i32;
    let tid: i32 = line
        .strip_prefix("tid ")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("child said {line:?}"))?;
    let gone = wait_until(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
    });
    check(gone, || format!("thread {tid} of {pid} did not exit"))?;
    let got = trace.read(&[tid, pid, i32::MAX, -1, 0]);
    if let Some(ev) = got.get(&tid) {
        check(
            ev.iter()
                .any(|e| e.nr == SYS_GETTID && e.ret == Some(tid as i64)),
            || format!("exited thread {tid}: {}", show(ev)),
        )?;
        check(ev.last().is_some_and(|e| e.ret.is_none()), || {
            format!(
                "exited thread {tid}: its last call (exit) returned: {}",
                show(ev)
            )
        })?;
    }
    check(
        !got.contains_key(&i32::MAX) && !got.contains_key(&-1) && !got.contains_key(&0),
        || format!("rings for threads that never ran: {:?}", got.keys()),
    )?;
    Ok(())
}

/// The process that opened the trace: its threads' calls are not kept.
fn own_calls_are_not_traced() -> R {
    let Some(trace) = open(None) else {
        return Ok(());
    };
    let me = std::process::id() as i32;
    let tid = std::thread::spawn(|| {
        for _ in 0..100 {
            // SAFETY: getppid takes no arguments and cannot fail.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_gettid) as i32 }
    })
    .join()
    .map_err(|_| "thread panicked")?;
    // SAFETY: as above.
    let main_tid = unsafe { libc::syscall(libc::SYS_gettid) as i32 };
    let got = trace.read(&[me, main_tid, tid]);
    check(got.is_empty(), || {
        format!("this process's calls were recorded: {got:?}")
    })
}

/// A reader stuck in a FUSE read the daemon parks (seed 000's situation):
/// its last call is that read, unfinished, of the file it opened.
fn a_parked_fuse_read_is_the_last_call() -> R {
    let Some(trace) = open(None) else {
        return Ok(());
    };
    let fs = setup_or_skip!(FuseDaemon::start());
    let reader = setup_or_skip!(FuseReader::start(&fs));
    let pid = reader.pid;
    let got = trace.read(&[pid]);
    let ev = got
        .get(&pid)
        .ok_or_else(|| format!("no calls recorded for the FUSE reader {pid}"))?;
    let last = ev.last().ok_or("no calls")?;
    check(
        last.nr == SYS_READ && last.ret.is_none() && last.args[2] == 4096,
        || format!("the reader's calls: {}", show(ev)),
    )?;
    // The fd it reads is the one the last openat returned (the FUSE file).
    if let Some(o) = ev.iter().rev().find(|e| e.nr == SYS_OPENAT) {
        check(o.ret == Some(last.args[0] as i64), || {
            format!("read fd vs openat: {}", show(ev))
        })?;
    }
    drop(reader);
    drop(fs);
    Ok(())
}

fn role(role: &str) -> ! {
    let mut buf = [0u8; 8];
    match role {
        "calls" => {
            // SAFETY: raw system calls with valid arguments: a
            // NUL-terminated path, a buffer of the length passed.
            unsafe {
                libc::syscall(libc::SYS_getpid);
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD as libc::c_long,
                    KNOWN_PATH.as_ptr(),
                    (libc::O_RDONLY | libc::O_CLOEXEC) as libc::c_long,
                );
                libc::syscall(
                    libc::SYS_write,
                    1 as libc::c_long,
                    b"ready\n".as_ptr(),
                    6usize,
                );
                libc::syscall(libc::SYS_read, 0 as libc::c_long, buf.as_mut_ptr(), 1usize);
            }
        }
        "thread" => {
            let t = std::thread::spawn(|| {
                // SAFETY: gettid takes no arguments and cannot fail.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) };
                println!("tid {tid}");
            });
            let _ = t.join();
            // SAFETY: a read into a buffer of the length passed.
            unsafe { libc::syscall(libc::SYS_read, 0 as libc::c_long, buf.as_mut_ptr(), 1usize) };
        }
        other => eprintln!("unknown role {other}"),
    }
    std::process::exit(0)
}

fn main() {
    if let Ok(r) = std::env::var(ROLE) {
        role(&r);
    }
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("tp_btf_shows_calls_in_order", tp_btf_shows_calls_in_order),
        Trial::test("raw_tp_shows_calls_in_order", raw_tp_shows_calls_in_order),
        Trial::test(
            "an_exited_thread_stays_harmlessly",
            an_exited_thread_stays_harmlessly,
        ),
        Trial::test("own_calls_are_not_traced", own_calls_are_not_traced),
        Trial::test(
            "a_parked_fuse_read_is_the_last_call",
            a_parked_fuse_read_is_the_last_call,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
