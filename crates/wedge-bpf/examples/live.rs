//! Opens the running kernel as `LiveKernel` and prints what it found, with
//! timings: `cargo run -p wedge-bpf --example live [PID]`.

fn main() {
    let t0 = std::time::Instant::now();
    let bpf = match wedge_bpf::Bpf::open() {
        Ok(b) => b,
        Err(u) => {
            eprintln!("BPF unavailable: {u}");
            std::process::exit(2);
        }
    };
    let t1 = t0.elapsed();
    let k = match wedge_bpf::live::LiveKernel::with_bpf(bpf) {
        Ok(k) => k,
        Err(u) => {
            eprintln!("{u}");
            std::process::exit(2);
        }
    };
    let t2 = t0.elapsed();
    let d = k.derived();
    let t3 = t0.elapsed();
    dump(&k, "nr_iowait_cpu");
    if let Ok(t) = k.tasks() {
        for r in t.records.iter().take(4) {
            println!(
                "{} {} {} {:#x} sp={:#x} base={:#x} st={} stack={}",
                r.pid,
                r.tgid,
                r.comm,
                r.task,
                r.saved_sp,
                r.stack_base,
                r.state,
                r.stack.len()
            );
        }
    }
    println!(
        "open {t1:?}, kallsyms+btf {:?}, derived {:?}",
        t2 - t1,
        t3 - t2
    );
    for s in &d.syms {
        println!("{} = {:#x} (size {}, {})", s.0, s.1, s.2, s.4);
    }
    for m in &d.missing {
        println!("missing: {m}");
    }
    for w in &k.warnings {
        println!("warning: {w}");
    }
    if let Some(pid) = std::env::args().nth(1).and_then(|p| p.parse::<i64>().ok()) {
        let t = std::time::Instant::now();
        let _ = k.orc();
        println!("orc {:?}", t.elapsed());
        if let Some(r) = k.record(pid) {
            let st = k.stack(r);
            for f in &st.frames {
                println!(
                    "  {:?}+{:#x} {}",
                    f.frame.function,
                    f.frame.offset,
                    f.source.name()
                );
            }
            println!("stopped: {:?} note: {:?}", st.stopped, st.note);
        }
    }
}

#[allow(dead_code)]
fn dump(k: &wedge_bpf::live::LiveKernel, f: &str) {
    let at = k.syms.addr(f).unwrap_or(0);
    let mut code = vec![0u8; 64];
    let _ = k.bpf.read(at, &mut code);
    let mut d = iced_x86::Decoder::with_ip(64, &code, at, iced_x86::DecoderOptions::NONE);
    let mut fm = iced_x86::IntelFormatter::new();
    use iced_x86::Formatter;
    for _ in 0..12 {
        let i = d.decode();
        let mut s = String::new();
        fm.format(&i, &mut s);
        println!("{:#x} {s}", i.ip());
    }
}
