//! The block-device reading's own cost on this machine, without the rest
//! of the scan: `first_sample` + `read_devices` against /sys (the bounded
//! reader started once, as the scan has it), N times; prints the median.
//! benches/storage_cost.py measures the whole verdict with and without it.
//!
//! `cargo run --release -p wedge-procfs --example block_cost [N]`

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut helper = wedge_procfs::helper::Helper::new();
    let sys = Path::new("/sys");
    let mut times = Vec::with_capacity(n);
    let mut devices = 0;
    for _ in 0..n {
        let t = Instant::now();
        let first = wedge_procfs::block::first_sample(sys);
        let d = wedge_procfs::block::read_devices(
            sys,
            first,
            &mut helper,
            Duration::from_millis(250),
            &mut Vec::new(),
        );
        times.push(t.elapsed());
        devices = d.value().map_or(0, |v| v.len());
    }
    helper.finish(Duration::from_secs(1));
    times.sort();
    println!(
        "{devices} block devices: median {:.3} ms, min {:.3} ms over {n} runs",
        times[n / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
