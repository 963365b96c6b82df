//! One BPF snapshot pass: `Bpf::open()` then `tasks()` for every thread,
//! for benches/bpf_vs_ps.py. Prints one line: records, pass and total ms.
//! `--dump` prints every record (tid tgid state comm blocker); `--json`
//! prints the whole pass (`Tasks`) as one JSON line instead, which the
//! 6.1 guest test (tests/guest.rs) reads back from the serial console, and
//! the timing line, with which BTF aya relocated against, on stderr.
//! `--banner` also reads `linux_banner` (kallsyms) with the memory reader
//! (BPF_PROG_TEST_RUN) and prints it as `BANNER text`, for comparison with
//! /proc/version, which prints the same utsname fields.
//! `--kept N [--threads T]` (with T idle threads of its own, default 0)
//! then makes N passes walking every stack and N after
//! `Bpf::reuse_stacks` (what `wedge record` does), and prints each kind's
//! mean wall and system CPU ms per pass and the stacks reused: the cost of
//! the kept pass's stack reuse.

use std::time::Instant;

fn main() {
    let dump = std::env::args().any(|a| a == "--dump");
    let json = std::env::args().any(|a| a == "--json");
    let banner = std::env::args().any(|a| a == "--banner");
    let t0 = Instant::now();
    let bpf = match wedge_bpf::Bpf::open() {
        Ok(b) => b,
        Err(u) => {
            eprintln!("wedge-bpf: unavailable: {u}");
            std::process::exit(2);
        }
    };
    let t1 = Instant::now();
    let tasks = match bpf.tasks() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wedge-bpf: task pass: {e}");
            std::process::exit(1);
        }
    };
    let t2 = Instant::now();
    let timing = format!(
        "records={} pass_ms={:.3} open_ms={:.3} tasks_ms={:.3}",
        tasks.records.len(),
        tasks.pass_ms,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3
    );
    if json {
        match serde_json::to_string(&tasks) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("wedge-bpf: JSON: {e}");
                std::process::exit(1);
            }
        }
        eprintln!(
            "{timing} trimmed_btf={}",
            bpf.relocated_against_trimmed_btf()
        );
        if banner {
            print_banner(&bpf);
        }
        return;
    }
    if let Some(n) = arg_after("--kept") {
        let threads = arg_after("--threads").unwrap_or(0);
        kept(&bpf, n.max(1), threads);
        return;
    }
    if dump {
        for r in &tasks.records {
            println!(
                "{} {} {:#x} {} {:?} stack={}",
                r.pid,
                r.tgid,
                r.state,
                r.comm,
                r.blocker,
                r.stack.len()
            );
        }
        println!("trimmed BTF: {}", bpf.relocated_against_trimmed_btf());
        for m in &tasks.missing {
            println!("missing: {m}");
        }
    }
    println!("{timing}");
}

/// `linux_banner` read through the BPF memory reader, up to its NUL.
fn print_banner(bpf: &wedge_bpf::Bpf) {
    let addr = match wedge_bpf::kallsyms_addrs(&["linux_banner"]) {
        Ok(v) => v[0],
        Err(e) => {
            eprintln!("wedge-bpf: {e}");
            std::process::exit(1);
        }
    };
    let Some(addr) = addr else {
        eprintln!("wedge-bpf: linux_banner not in /proc/kallsyms");
        std::process::exit(1);
    };
    let mut buf = vec![0u8; 512];
    if let Err(f) = bpf.read(addr, &mut buf) {
        eprintln!(
            "wedge-bpf: reading linux_banner at {:#x}: {}",
            f.addr, f.detail
        );
        std::process::exit(1);
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    println!("BANNER {}", String::from_utf8_lossy(&buf[..end]).trim_end());
}

fn arg_after(flag: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

/// This thread's system CPU time (ms).
fn stime_ms() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is always valid (the pass runs on this thread: the iterator's work is charged to the read() that drives it).
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    u.ru_stime.tv_sec as f64 * 1e3 + u.ru_stime.tv_usec as f64 / 1e3
}

fn kept(bpf: &wedge_bpf::Bpf, n: usize, threads: usize) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let mut idle = Vec::new();
    for _ in 0..threads {
        let rx = rx.clone();
        match std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                // Parked on the channel (a futex wait) until the end.
                let _ = rx.lock().map(|r| r.recv());
            }) {
            Ok(h) => idle.push(h),
            Err(e) => {
                eprintln!("wedge-bpf: thread {}: {e}", idle.len());
                break;
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let run = |label: &str| {
        let (mut wall, mut sys, mut reused, mut records) = (0.0, 0.0, 0usize, 0usize);
        for _ in 0..n {
            let s0 = stime_ms();
            match bpf.tasks() {
                Ok(t) => {
                    wall += t.pass_ms;
                    records = t.records.len();
                    reused = t.records.iter().filter(|r| r.stack_reused).count();
                }
                Err(e) => {
                    eprintln!("wedge-bpf: {e}");
                    std::process::exit(1);
                }
            }
            sys += stime_ms() - s0;
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        println!(
            "{label}: records={records} reused={reused} wall_ms={:.2} sys_ms={:.2} (mean of {n})",
            wall / n as f64,
            sys / n as f64
        );
    };
    run("walk every stack");
    if let Err(e) = bpf.reuse_stacks() {
        eprintln!("wedge-bpf: {e}");
        std::process::exit(1);
    }
    run("reuse unchanged stacks");
    drop(tx);
    for h in idle {
        let _ = h.join();
    }
}
