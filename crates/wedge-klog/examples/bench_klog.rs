//! Throughput benchmark: wedge-klog's full structured parse against
//! `grep -c 'blocked for more than'` on the same generated log.
//!
//! ```text
//! cargo run --release -p wedge-klog --example bench_klog            # 1 GiB
//! KLOG_BENCH_MB=256 cargo run --release -p wedge-klog --example bench_klog
//! ```
//!
//! The log is generated into a temporary file (removed afterwards unless
//! `KLOG_BENCH_KEEP=1`): ordinary dmesg lines with every corpus excerpt
//! mixed in every few thousand lines.  Both tools read the file from the
//! page cache; each is run twice and the faster run counts.  Peak RSS is
//! this process's VmHWM (the parse streams; generation is streamed too).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/kernel-logs");

const ORDINARY: &[&str] = &[
    "usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
    "audit: type=1400 audit(1612345678.123:45): apparmor=\"STATUS\" operation=\"profile_load\" profile=\"unconfined\" name=\"/usr/sbin/cupsd\" pid=1234 comm=\"apparmor_parser\"",
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "br0: port 2(veth1a2b3c4) entered forwarding state",
    "device veth1a2b3c4 entered promiscuous mode",
    "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
    "sd 0:0:0:0: [sda] 976773168 512-byte logical blocks: (500 GB/466 GiB)",
    "xfs filesystem being remounted at /var/lib/docker supports timestamps until 2038 (0x7fffffff)",
    "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.",
    "perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate to 79750",
    "systemd-journald[312]: Received SIGTERM from PID 1 (systemd).",
    "cgroup: fork rejected by pids controller in /system.slice/docker-4f3a.scope",
    "docker0: port 1(vethf00d) entered blocking state",
    "ata1.00: configured for UDMA/133",
];

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn corpus_texts() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(CORPUS) {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().and_then(|x| x.to_str()) == Some("log") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    v.push(t);
                }
            }
        }
    }
    v
}

fn generate(path: &Path, target: u64) -> std::io::Result<(u64, u64)> {
    let corpus = corpus_texts();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut ci = 0usize;
    let mut lines = 0u64;
    while written < target {
        n += 1;
        // ~5000 ordinary lines between excerpts: a busy but healthy host.
        if n.is_multiple_of(5000) && !corpus.is_empty() {
            if let Some(t) = corpus.get(ci % corpus.len()) {
                w.write_all(t.as_bytes())?;
                written += t.len() as u64;
                lines += t.lines().count() as u64;
            }
            ci += 1;
            continue;
        }
        let msg = ORDINARY
            .get((n as usize * 7) % ORDINARY.len())
            .unwrap_or(&"");
        #[allow(clippy::cast_precision_loss)]
        let ts = n as f64 * 0.000_731;
        let line = format!("[{ts:12.6}] {msg}\n");
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
        lines += 1;
    }
    w.flush()?;
    Ok((written, lines))
}

fn time_grep(path: &Path) -> Option<(f64, String)> {
    let t = Instant::now();
    let out = Command::new("grep")
        .arg("-c")
        .arg("blocked for more than")
        .arg(path)
        .output()
        .ok()?;
    Some((
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn time_klog(path: &Path) -> std::io::Result<(f64, u64, u64, u64)> {
    let t = Instant::now();
    let f = File::open(path)?;
    let mut stream = wedge_klog::parse_reader(f);
    let mut events = 0u64;
    let mut hung = 0u64;
    for ev in stream.by_ref() {
        let ev = ev?;
        events += 1;
        if ev.kind() == "hung_task" {
            hung += 1;
        }
    }
    let s = stream.summary();
    Ok((t.elapsed().as_secs_f64(), events, hung, s.inspected_lines))
}

fn main() -> std::io::Result<()> {
    let mb: u64 = std::env::var("KLOG_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let path = std::env::temp_dir().join(format!("wedge-klog-bench-{}.log", std::process::id()));
    let t = Instant::now();
    let (bytes, lines) = generate(&path, mb * 1024 * 1024)?;
    println!(
        "generated {} ({} MiB, {} lines) in {:.1}s",
        path.display(),
        bytes / (1024 * 1024),
        lines,
        t.elapsed().as_secs_f64()
    );
    let hwm_before = vm_hwm_kb();
    let mut best_grep = f64::MAX;
    let mut best_klog = f64::MAX;
    let mut report = String::new();
    for round in 0..2 {
        if let Some((g, count)) = time_grep(&path) {
            best_grep = best_grep.min(g);
            println!("round {round}: grep -c: {g:.3}s (count {count})");
        }
        let (k, events, hung, inspected) = time_klog(&path)?;
        best_klog = best_klog.min(k);
        report = format!("{events} events ({hung} hung_task), {inspected} lines inspected in full");
        println!("round {round}: wedge-klog: {k:.3}s, {report}");
    }
    #[allow(clippy::cast_precision_loss)]
    let mbs = bytes as f64 / (1024.0 * 1024.0) / best_klog;
    println!("---");
    println!("size:            {} MiB", bytes / (1024 * 1024));
    println!("grep -c:         {best_grep:.3}s");
    println!("wedge-klog:      {best_klog:.3}s ({mbs:.0} MiB/s), {report}");
    println!("ratio klog/grep: {:.2}", best_klog / best_grep);
    println!(
        "peak RSS (VmHWM): {} KiB (before parsing: {} KiB)",
        vm_hwm_kb(),
        hwm_before
    );
    if std::env::var("KLOG_BENCH_KEEP").ok().as_deref() != Some("1") {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}
