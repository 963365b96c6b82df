//! Snapshots for the store's tests: a minimal builder in the shape of
//! wedge-analysis' own test helpers (fuse.rs `thread`/`process`), with
//! stacks as /proc shows them on 6.x for the waits the tests record.

#![allow(dead_code)]

use std::collections::HashMap;
use wedge_kernel::{SignalSet, TaskFlags, TaskState, ThreadKind};
use wedge_model::{
    Field, KernelFrame, MissingReason, Process, SchedInfo, Snapshot, Source, Syscall, SyscallEvent,
    Thread,
};
use wedge_record::{Sample, Writer};

pub const BOOT: &str = "7f1e2d3c-0000-4000-8000-000000000001";
/// 2026-12-02T00:00:00Z.
pub const T0: i64 = 1_796_169_600_000;

/// A FUSE read waiting for its daemon (captured from the test kit's
/// wk-reader under /proc/PID/stack on this machine's 6.18 kernel).
pub const FUSE_READ: &[&str] = &[
    "request_wait_answer",
    "__fuse_simple_request",
    "fuse_direct_io",
    "fuse_file_read_iter",
    "vfs_read",
    "ksys_read",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
];
pub const FUTEX: &[&str] = &[
    "futex_do_wait",
    "__futex_wait",
    "futex_wait",
    "do_futex",
    "__x64_sys_futex",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
];

pub fn thread(tid: i32, state: TaskState, stack: &[&str], call: Option<(i64, &str)>) -> Thread {
    Thread {
        tid,
        comm: format!("t{tid}"),
        state,
        flags: TaskFlags(0),
        kind: ThreadKind::User,
        start_time: 5_000 + tid as u64,
        processor: Some(0),
        ns_tids: vec![tid],
        tracer_pid: None,
        pending: SignalSet(0),
        blocked: SignalSet(0),
        wchan: Field::Value(stack.first().map(|s| s.to_string())),
        kernel_stack: Field::Value(
            stack
                .iter()
                .enumerate()
                .map(|(i, f)| KernelFrame {
                    offset: Some(0x10 + i as u64),
                    size: Some(0x100),
                    ..KernelFrame::named(*f)
                })
                .collect(),
        ),
        syscall: match call {
            Some((nr, name)) => Field::Value(Syscall::InSyscall {
                nr,
                name: Some(name.into()),
                args: vec![3, 0x7f00_0000_1000, 4096, 0, 0, 0],
                sp: 0,
                pc: 0,
            }),
            None => Field::missing(MissingReason::NotCollected, "-"),
        },
        sched: Field::Value(SchedInfo {
            last_ran_ms: Some(1_000.0),
            ..Default::default()
        }),
        utime: 0,
        stime: 0,
        sleep_kind: None,
        lock_wait: None,
        stack_source: None,
        in_iowait: None,
    }
}

pub fn process(pid: i32, comm: &str, threads: Vec<Thread>) -> Process {
    Process {
        pid,
        start_time: 5_000 + pid as u64,
        comm: comm.into(),
        ppid: 1,
        pgrp: pid,
        session: pid,
        tty_nr: 0,
        uid: Some(0),
        ns_pids: vec![pid],
        cmdline: Field::Value(vec![comm.into()]),
        exe: Field::missing(MissingReason::NotCollected, "-"),
        cwd: Field::Value("/".into()),
        root: Field::Value("/".into()),
        namespaces: Field::missing(MissingReason::NotCollected, "-"),
        cgroup: Field::missing(MissingReason::NotCollected, "-"),
        shared_pending: SignalSet(0),
        ignored: SignalSet(0),
        caught: SignalSet(0),
        dispositions_missing: None,
        fds_via_tid: None,
        handlers: Vec::new(),
        sigq: None,
        cap_effective: None,
        fds: Field::Value(Vec::new()),
        threads,
    }
}

/// A FUSE reader in D (pid 100, one thread).
pub fn fuse_reader() -> Process {
    process(
        100,
        "wk-reader",
        vec![thread(
            100,
            TaskState::DiskSleep,
            FUSE_READ,
            Some((0, "read")),
        )],
    )
}

/// A zombie (pid 200).
pub fn zombie() -> Process {
    process(
        200,
        "wk-zombie",
        vec![thread(200, TaskState::Zombie, &[], None)],
    )
}

/// An idle sleeper that does not matter (pid 300).
pub fn sleeper() -> Process {
    process(
        300,
        "sleepy",
        vec![thread(
            300,
            TaskState::Sleeping,
            FUTEX,
            Some((202, "futex")),
        )],
    )
}

pub fn snap(procs: Vec<Process>, unix_ms: i64) -> Snapshot {
    let mut s = Snapshot::new(Source::Live {
        root: "/proc".into(),
    });
    s.system.boot_id = Some(BOOT.into());
    s.system.taken_at_unix_ms = unix_ms as u64;
    // Booted 10 000 s before T0.
    s.system.uptime_secs = (unix_ms - (T0 - 10_000_000)) as f64 / 1000.0;
    s.system.sched_clock_ms = Some(1_000.0 + (unix_ms - T0) as f64);
    s.processes = procs;
    s
}

/// Diagnoses `s` and writes it as a sample at `unix_ms`.
pub fn write(
    w: &mut Writer,
    s: &Snapshot,
    unix_ms: i64,
    syscalls: &HashMap<i32, Vec<SyscallEvent>>,
) -> Result<(), wedge_record::StoreError> {
    let diagnosis = wedge_analysis::diagnose(s, &[]);
    w.sample(&Sample {
        unix_ms,
        scan_ms: 12.5,
        source: "proc",
        interval_ms: 1000,
        snap: s,
        diagnosis: &diagnosis,
        syscalls,
    })
}

pub fn no_calls() -> HashMap<i32, Vec<SyscallEvent>> {
    HashMap::new()
}

/// A kernel-log event of `kind` naming `pid`.
pub fn log_event(seq: u64, unix_ms: i64, pid: Option<u32>) -> wedge_model::RecordedLogEvent {
    wedge_model::RecordedLogEvent {
        boot_id: BOOT.into(),
        seq,
        unix_ms: Some(unix_ms),
        event: wedge_model::LogEvent {
            kind: "hung_task".into(),
            line: seq,
            monotonic: Some(10_000.0 + seq as f64),
            task: pid.map(|p| format!("t{p}")),
            pid,
            meaning: format!(
                "INFO: task t{}:{} blocked for more than 122 seconds (event {seq}, padded so \
                 that a flood weighs what real hung-task reports weigh on disk)",
                pid.unwrap_or(0),
                pid.unwrap_or(0)
            ),
            code_dumped: false,
            faulting_instruction: None,
            detail: wedge_model::LogDetail::HungTask {
                blocked_seconds: 122,
                blocker: None,
            },
        },
    }
}
