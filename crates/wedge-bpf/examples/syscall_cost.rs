//! What the system-call rings cost (src/syscalls.rs), for the README's
//! benchmark section:
//!
//! - per call: a child process (this example re-executed: the trace never
//!   records the process that opened it) times, in its own CPU time
//!   (CLOCK_THREAD_CPUTIME_ID, so that waiting for a CPU on a busy machine
//!   does not count), a tight loop of getppid(2)
//!   with no trace attached, then with the tp_btf, raw_tp and classic
//!   tracepoint programs attached; the median of `--runs` runs each, in ns
//!   per call, and the ratio to the untraced loop;
//!   the same loop in the tracing process, whose calls the programs skip
//!   at once, shows what the tracepoint path alone costs;
//! - per read (CPU time too): a child with 1,000 threads, each of which made a few calls
//!   and is parked in a read of a pipe, and the time of one
//!   `SyscallTrace::read` of all 1,000 tids (median of `--runs`);
//! - the rings' kernel memory (the map is preallocated);
//! - the programs' own run time per call, from the kernel's BPF statistics
//!   (BPF_ENABLE_STATS, held by an fd for the run: nothing global is left
//!   switched on), which separates them from the cost of the tracepoint
//!   path itself (with any program on raw_syscalls, every task takes the
//!   slow system-call entry and exit: SYSCALL_WORK_SYSCALL_TRACEPOINT).
//!
//! The classic tracepoint needs tracefs; where it is not mounted the
//! example mounts it in a private mount namespace of its own, which
//! vanishes with it.
//!
//! `cargo run -p wedge-bpf --example syscall_cost [-- --calls N --runs N --no-stats]`
//! as root. Numbers only: nothing here asserts a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;
use wedge_bpf::syscalls::{Attach, SyscallTrace, SLOTS};

const ROLE: &str = "WEDGE_SC_COST_ROLE";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

/// The child's loop: `calls` getppid, timed; prints ns per call.
fn child_loop(calls: u64) -> ! {
    println!("{}", timed_loop(calls));
    std::process::exit(0)
}

/// This thread's CPU time (ns): a loop timed by it is not charged for the
/// time it waited for a CPU, which on a shared machine is most of the wall
/// time.
fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// ns of CPU per getppid over `calls` calls.
fn timed_loop(calls: u64) -> f64 {
    // Warm up (page faults, the ring's first insertion).
    for _ in 0..10_000 {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    let t = thread_cpu_ns();
    for _ in 0..calls {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    (thread_cpu_ns() - t) / calls as f64
}

/// The child with `n` threads parked in read(2) of its stdin.
fn child_threads(n: u64) -> ! {
    let mut hs = Vec::new();
    for _ in 1..n {
        let h = std::thread::Builder::new().stack_size(64 << 10).spawn(|| {
            let mut b = [0u8; 1];
            // SAFETY: a read into a buffer of the length passed; fd 0
            // is the pipe the parent never writes.
            unsafe {
                libc::syscall(libc::SYS_getppid);
                libc::syscall(libc::SYS_read, 0 as libc::c_long, b.as_mut_ptr(), 1usize)
            };
        });
        match h {
            Ok(h) => hs.push(h),
            Err(e) => {
                eprintln!("thread: {e}");
                break;
            }
        }
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut b = [0u8; 1];
    let _ = std::io::stdin().read(&mut b);
    std::process::exit(0)
}

/// BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run time and count are kept
/// while the returned fd is open.
fn enable_stats() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const BPF_ENABLE_STATS: libc::c_long = 32;
    let mut attr = [0u32; 4]; // enable_stats.type = BPF_STATS_RUN_TIME (0)
                              // SAFETY: bpf(2) with a zeroed attr of a size the kernel accepts (it
                              // checks the unused tail is zero); the result is a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as libc::c_uint,
        )
    };
    // SAFETY: a fresh fd owned by nobody else.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// tracefs for the classic tracepoint: mounted in a mount namespace of
/// this process only (unshare, make everything private so nothing
/// propagates back, mount), when the host has not mounted it.
fn private_tracefs() {
    let dir = std::path::Path::new("/sys/kernel/tracing");
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return;
    }
    // SAFETY: unshare and mount with valid NUL-terminated strings; they
    // affect only this process's new mount namespace.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            eprintln!("unshare: {}", std::io::Error::last_os_error());
            return;
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            eprintln!("making / private: {}", std::io::Error::last_os_error());
            return;
        }
        if libc::mount(
            c"tracefs".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        ) != 0
        {
            eprintln!("mounting tracefs: {}", std::io::Error::last_os_error());
        }
    }
}

fn run_loop(calls: u64) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .env(ROLE, format!("loop {calls}"))
        .output()
        .map_err(|e| format!("child: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("child said {:?}: {e}", out.stdout))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    if let Ok(r) = std::env::var(ROLE) {
        let mut it = r.split_whitespace();
        let (what, n) = (it.next(), it.next().and_then(|n| n.parse().ok()));
        match (what, n) {
            (Some("loop"), Some(n)) => child_loop(n),
            (Some("threads"), Some(n)) => child_threads(n),
            _ => std::process::exit(2),
        }
    }
    let calls = arg("--calls", 2_000_000);
    let runs = arg("--runs", 5) as usize;
    let tids_n = arg("--threads", 1000);
    private_tracefs();
    // The statistics cost two clock reads per program run: `--no-stats`
    // for the per-call numbers without them.
    let stats = if std::env::args().any(|a| a == "--no-stats") {
        None
    } else {
        enable_stats()
    };
    if stats.is_none() && !std::env::args().any(|a| a == "--no-stats") {
        eprintln!("BPF_ENABLE_STATS: {}", std::io::Error::last_os_error());
    }

    let mut base = Vec::new();
    let mut own = Vec::new();
    let mut with: Vec<(Attach, Vec<f64>, Vec<f64>)> = [
        Attach::BtfTracePoint,
        Attach::RawTracePoint,
        Attach::TracePoint,
    ]
    .into_iter()
    .map(|a| (a, Vec::new(), Vec::new()))
    .collect();
    // Interleaved, so that a burst of load on the machine hits all kinds.
    for _ in 0..runs {
        match run_loop(calls) {
            Ok(ns) => base.push(ns),
            Err(e) => eprintln!("untraced run: {e}"),
        }
        for (a, v, prog) in with.iter_mut() {
            let t = match SyscallTrace::open_with(SLOTS, Some(*a)) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{}: {e}", a.name());
                    continue;
                }
            };
            match run_loop(calls) {
                Ok(ns) => v.push(ns),
                Err(e) => eprintln!("{} run: {e}", a.name()),
            }
            // In this process the programs return at the tgid check: the
            // tracepoint path with next to no program.
            if *a == Attach::BtfTracePoint {
                own.push(timed_loop(calls));
            }
            // Both programs' time over the calls they ran (every task's
            // calls: the loop's and the rest of the machine's).
            let st = t.program_stats();
            let ns: u64 = st.iter().map(|s| s.1).sum();
            let n: u64 = st.iter().map(|s| s.2).sum();
            if n > 0 {
                prog.push(2.0 * ns as f64 / n as f64);
            }
            drop(t);
        }
    }
    let b = median(base);
    println!("getppid, {calls} calls, median of {runs} runs:");
    println!("  untraced      {b:7.1} ns/call");
    for (a, v, prog) in &with {
        let m = median(v.clone());
        println!(
            "  {:<12}  {m:7.1} ns/call  (+{:.1} ns, {:.2}x; the two programs: {:.1} ns per call)",
            a.name(),
            m - b,
            m / b,
            median(prog.clone())
        );
    }
    let o = median(own);
    println!(
        "  tp_btf, skipped (the tracing process's own calls: the tracepoint path, no ring) {o:7.1} ns/call (+{:.1} ns)",
        o - b
    );
    drop(stats);

    // The read of 1,000 parked threads.
    let t_open = Instant::now();
    let trace = match SyscallTrace::open(SLOTS) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("trace: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "open ({}): {:.0} ms",
        trace.attach().name(),
        t_open.elapsed().as_secs_f64() * 1e3
    );
    if let Some(bytes) = trace.kernel_bytes() {
        println!(
            "rings: {} slots x {} threads, map memlock {:.1} MiB",
            SLOTS,
            wedge_bpf::syscalls::MAX_THREADS,
            bytes as f64 / (1 << 20) as f64
        );
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut child = match Command::new(exe)
        .env(ROLE, format!("threads {tids_n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("child: {e}");
            std::process::exit(1);
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    // Give the threads time to reach their read.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut times = Vec::new();
    let mut found = 0;
    let mut events = 0;
    for _ in 0..runs.max(3) {
        let t = thread_cpu_ns();
        let got = trace.read(&tids);
        times.push((thread_cpu_ns() - t) / 1e6);
        found = got.len();
        events = got.values().map(Vec::len).sum();
    }
    let _ = child.kill();
    let _ = child.wait();
    let m = median(times);
    println!(
        "read of {} tids ({found} with rings, {events} calls): {m:.2} ms of CPU ({:.2} us per tid)",
        tids.len(),
        m * 1e3 / tids.len().max(1) as f64
    );
}
