//! One BPF snapshot pass: `Bpf::open()` then `tasks()` for every thread,
//! for benches/bpf_vs_ps.py. Prints one line: records, pass and total ms.
//! `--dump` prints every record (tid tgid state comm blocker); `--json`
//! prints the whole pass (`Tasks`) as one JSON line instead, which the
//! 6.1 guest test (tests/guest.rs) reads back from the serial console, and
//! the timing line, with which BTF aya relocated against, on stderr.

use std::time::Instant;

fn main() {
    let dump = std::env::args().any(|a| a == "--dump");
    let json = std::env::args().any(|a| a == "--json");
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
