//! What the database costs on disk: an hour at 1 Hz of a machine with 50
//! stuck tasks (FUSE readers in D, NFS waiters, stopped jobs, zombies),
//! each with its kernel stack, wait, blocker and system call, and the
//! kernel log quiet. A measurement, not a check (ignored by default):
//!
//! ```sh
//! cargo test --release -p wedge-record --test size -- --ignored --nocapture
//! ```
//!
//! Measured here (6.18, 2 shared CPUs under a load of 11): 1,574 bytes per
//! sample, 5.4 MiB per hour (the same in a debug build); writing a sample
//! 1.2 ms median, 40 ms at p99 (the minute's checkpoint fsync).

mod common;

use common::*;
use std::time::Instant;
use wedge_kernel::TaskState;
use wedge_record::{Retention, Writer};

const NFS_WAIT: &[&str] = &[
    "rpc_wait_bit_killable",
    "__wait_on_bit",
    "out_of_line_wait_on_bit",
    "__rpc_execute",
    "rpc_execute",
    "rpc_run_task",
    "nfs4_call_sync_sequence",
    "_nfs4_proc_getattr",
    "nfs4_proc_getattr",
    "__nfs_revalidate_inode",
    "nfs_getattr",
    "vfs_statx",
    "do_statx",
    "__x64_sys_statx",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
];
const STOPPED: &[&str] = &[
    "do_signal_stop",
    "get_signal",
    "arch_do_signal_or_restart",
    "syscall_exit_to_user_mode",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
];

fn machine(unix_ms: i64) -> wedge_model::Snapshot {
    let mut procs = Vec::new();
    for i in 0..20 {
        let pid = 10_000 + i;
        let mut t = thread(pid, TaskState::DiskSleep, FUSE_READ, Some((0, "read")));
        if let wedge_model::Field::Value(s) = &mut t.kernel_stack {
            for f in s.iter_mut().take(4) {
                f.module = Some("fuse".into());
            }
        }
        procs.push(process(pid, "reader", vec![t]));
    }
    for i in 0..10 {
        let pid = 11_000 + i;
        let t = thread(pid, TaskState::Sleeping, NFS_WAIT, Some((332, "statx")));
        procs.push(process(pid, "ls", vec![t]));
    }
    for i in 0..10 {
        let pid = 12_000 + i;
        procs.push(process(
            pid,
            "job",
            vec![thread(pid, TaskState::Stopped, STOPPED, None)],
        ));
    }
    for i in 0..10 {
        let pid = 13_000 + i;
        procs.push(process(
            pid,
            "defunct",
            vec![thread(pid, TaskState::Zombie, &[], None)],
        ));
    }
    // The rest of the machine: 200 idle processes, ignored by the store.
    for i in 0..200 {
        let pid = 20_000 + i;
        procs.push(process(
            pid,
            "idle",
            vec![thread(
                pid,
                TaskState::Sleeping,
                FUTEX,
                Some((202, "futex")),
            )],
        ));
    }
    snap(procs, unix_ms)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn an_hour_at_1_hz_with_50_stuck_tasks() {
    let dir = tempfile::Builder::new()
        .prefix("size-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch");
    let db = dir.path().join("history.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    let samples = 3600;
    let mut write_ms = Vec::with_capacity(samples);
    let mut after_first = 0;
    for i in 0..samples as i64 {
        let t = T0 + i * 1000;
        let s = machine(t);
        let diagnosis = wedge_analysis::diagnose(&s, &[]);
        let start = Instant::now();
        w.sample(&wedge_record::Sample {
            unix_ms: t,
            scan_ms: 20.0,
            source: "bpf",
            interval_ms: 1000,
            snap: &s,
            diagnosis: &diagnosis,
            syscalls: &no_calls(),
        })
        .expect("sample");
        write_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if i == 0 {
            after_first = size(&db);
        }
    }
    w.close(T0 + samples as i64 * 1000).expect("close");
    let total = size(&db);
    write_ms.sort_by(f64::total_cmp);
    let per_sample = (total - after_first) as f64 / (samples - 1) as f64;
    println!(
        "50 stuck tasks, {samples} samples at 1 Hz: {total} bytes ({:.1} MiB); {per_sample:.0} bytes \
         per sample, {:.1} MiB per hour; first sample {after_first} bytes; write median {:.2} ms, \
         p99 {:.2} ms",
        total as f64 / (1 << 20) as f64,
        per_sample * 3600.0 / (1 << 20) as f64,
        write_ms[samples / 2],
        write_ms[samples * 99 / 100]
    );
}

fn size(db: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| std::fs::metadata(format!("{}{s}", db.display())).map_or(0, |m| m.len()))
        .sum()
}
