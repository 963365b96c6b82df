//! One BPF snapshot pass: `Bpf::open()` then `tasks()` for every thread,
//! for benches/bpf_vs_ps.py. Prints one line: records, pass and total ms.
//! `--dump` prints every record (tid tgid state comm blocker); `--json`
//! prints the whole pass (`Tasks`) as one JSON line instead, which the
//! 6.1 guest test (tests/guest.rs) reads back from the serial console, and
//! the timing line, with which BTF aya relocated against, on stderr.
//! `--banner` also reads `linux_banner` (kallsyms) with the memory reader
//! (BPF_PROG_TEST_RUN) and prints it as `BANNER text`, for comparison with
//! /proc/version, which prints the same utsname fields.

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
