//! The join on hand-made records: what the iterator gives for the
//! situations the scenes build (a killable vfork parent, a FUSE reader
//! after SIGKILL, a task queued on an rw-semaphore held by another, a
//! reader-owned rw-semaphore, a semaphore), seen from a nested pid
//! namespace as from the initial one.

use super::*;
use wedge_kernel::state::bits::*;
use wedge_kernel::{SignalSet, SleepKind, TaskState, ThreadKind};
use wedge_model::{Process, Source};

/// The initial pid namespace's inode number and a nested one's.
const INIT: u32 = 0xEFFF_FFFC;
const INNER: u32 = 0xF000_0100;

fn thread(tid: i32) -> Thread {
    Thread {
        tid,
        comm: format!("t{tid}"),
        state: TaskState::Sleeping,
        flags: TaskFlags(0),
        kind: ThreadKind::User,
        start_time: 0,
        processor: None,
        ns_tids: vec![tid],
        tracer_pid: None,
        pending: SignalSet(0),
        blocked: SignalSet(0),
        wchan: Field::Value(Some("do_sys_poll".into())),
        kernel_stack: Field::Value(vec![KernelFrame::named("do_sys_poll")]),
        syscall: Field::default(),
        sched: Field::default(),
        utime: 0,
        stime: 0,
        sleep_kind: None,
        lock_wait: None,
        stack_source: Some(StackSource::Proc),
        in_iowait: None,
    }
}

fn process(pid: i32, tids: &[i32]) -> Process {
    Process {
        pid,
        start_time: 0,
        comm: format!("p{pid}"),
        ppid: 1,
        pgrp: 0,
        session: 0,
        tty_nr: 0,
        uid: None,
        ns_pids: vec![pid],
        cmdline: Field::default(),
        exe: Field::default(),
        cwd: Field::default(),
        root: Field::default(),
        namespaces: Field::default(),
        cgroup: Field::default(),
        shared_pending: SignalSet(0),
        ignored: SignalSet(0),
        caught: SignalSet(0),
        dispositions_missing: None,
        handlers: Vec::new(),
        sigq: None,
        cap_effective: None,
        fds: Field::default(),
        fds_via_tid: None,
        threads: tids.iter().map(|&t| thread(t)).collect(),
    }
}

fn snap(procs: Vec<Process>) -> Snapshot {
    let mut s = Snapshot::new(Source::Live {
        root: "/proc".into(),
    });
    s.processes = procs;
    s
}

/// A task seen from the initial namespace only, with global pid = tid.
fn record(pid: i32, tgid: i32, state: u32) -> TaskRecord {
    TaskRecord {
        task: 0xffff_8880_0000_0000 + pid as u64 * 0x1000,
        pid,
        tgid,
        ns_tids: vec![(INIT, pid)],
        ns_tgids: vec![(INIT, tgid)],
        ppid: 1,
        comm: format!("t{pid}"),
        state,
        exit_state: 0,
        flags: 0x0040_0040,
        cpu: 1,
        blocker: None,
        stack: Vec::new(),
        saved_sp: 0,
        stack_base: 0,
        exec_start_ns: 5_000_000_000,
        last_arrival_ns: 4_000_000_000,
        rq_clock_task_ns: 65_000_000_000,
        rq_clock_ns: 66_000_000_000,
        nvcsw: 3,
        nivcsw: 1,
        start_time_ns: 0,
        in_iowait: Some(false),
        stack_reused: false,
    }
}

fn tasks(records: Vec<TaskRecord>) -> Tasks {
    Tasks {
        now_ns: 0,
        records,
        missing: Vec::new(),
        pass_ms: 1.0,
    }
}

fn task_of(pid: i32) -> u64 {
    record(pid, pid, 0).task
}

fn blocker(kind: BlockerKind, owner: i32, reader_owned: bool) -> Blocker {
    Blocker {
        kind,
        lock: 0xffff_8881_2345_6780,
        owner_task: if owner > 0 { task_of(owner) } else { 0 },
        owner_pid: (owner > 0).then_some(owner),
        reader_owned,
        owner_raw: if owner > 0 { task_of(owner) | 1 } else { 0 },
    }
}

fn thread_of(s: &Snapshot, tid: i32) -> &Thread {
    s.thread(tid).map(|(_, t)| t).expect("thread in snapshot")
}

#[test]
fn states_sleep_kinds_and_flags_come_from_the_record() {
    let mut s = snap(vec![
        process(10, &[10]),
        process(20, &[20]),
        process(30, &[30]),
    ]);
    let t = tasks(vec![
        // A vfork parent: TASK_KILLABLE; a FUSE reader after SIGKILL:
        // TASK_UNINTERRUPTIBLE; an idle kthread: TASK_IDLE.
        record(10, 10, TASK_KILLABLE),
        record(20, 20, TASK_UNINTERRUPTIBLE),
        record(30, 30, TASK_IDLE),
    ]);
    let a = apply(&mut s, &t, INIT, None);
    assert_eq!(a.joined, 3);
    let vfork = thread_of(&s, 10);
    assert_eq!(
        (vfork.state, vfork.sleep_kind),
        (TaskState::DiskSleep, Some(SleepKind::Killable))
    );
    let reader = thread_of(&s, 20);
    assert_eq!(
        (reader.state, reader.sleep_kind),
        (TaskState::DiskSleep, Some(SleepKind::Uninterruptible))
    );
    assert_eq!(thread_of(&s, 30).state, TaskState::Idle);
    assert_eq!(vfork.flags, TaskFlags(0x0040_0040));
    assert_eq!(vfork.processor, Some(1));
    // No symbols: /proc's stack stays, and says so.
    assert_eq!(vfork.stack_source, Some(StackSource::Proc));
    let sched = vfork.sched.value().expect("sched");
    assert_eq!(sched.voluntary_switches, Some(3));
    assert_eq!(sched.last_ran_ms, Some(5_000.0));
    // Off the CPU on its own CPU's clock: rq_clock_task - exec_start.
    assert_eq!(s.off_cpu_ms(vfork), Some(60_000.0));
}

#[test]
fn the_later_cpu_clock_wins() {
    // The scan's pinned read of CPU 1 is later than the pass's (an idle
    // NOHZ CPU's rq clock lags until its next scheduler event).
    let mut s = snap(vec![process(10, &[10])]);
    s.system.cpu_sched_clock_ms = vec![Some(1.0), Some(70_000.0)];
    apply(
        &mut s,
        &tasks(vec![record(10, 10, TASK_KILLABLE)]),
        INIT,
        None,
    );
    assert_eq!(s.system.cpu_sched_clock_ms, vec![Some(1.0), Some(70_000.0)]);
    assert_eq!(s.off_cpu_ms(thread_of(&s, 10)), Some(65_000.0));
}

#[test]
fn joins_by_the_tid_of_the_viewers_namespace() {
    // wedge runs inside INNER: its /proc shows tid 5 for global 500.
    let mut s = snap(vec![process(5, &[5, 6])]);
    let inner = |pid: i32, tid: i32| {
        let mut r = record(pid, 500, TASK_UNINTERRUPTIBLE);
        r.ns_tids.push((INNER, tid));
        r.ns_tgids.push((INNER, 5));
        r
    };
    let mut outside = record(77, 77, TASK_INTERRUPTIBLE);
    // Global 77 has no number in INNER: not visible, not joined — and
    // in particular not joined to a viewer's thread that happens to be 77.
    outside.pid = 77;
    let a = apply(
        &mut s,
        &tasks(vec![inner(500, 5), inner(501, 6), outside]),
        INNER,
        None,
    );
    assert_eq!(
        a,
        Applied {
            joined: 2,
            not_visible: 1
        }
    );
    assert_eq!(thread_of(&s, 6).state, TaskState::DiskSleep);
}

#[test]
fn a_reused_tid_is_not_mixed_in() {
    // Thread 11 of process 10 exited after the scan; tid 11 now names a
    // new process's leader.
    let mut s = snap(vec![process(10, &[10, 11])]);
    apply(
        &mut s,
        &tasks(vec![record(11, 11, TASK_UNINTERRUPTIBLE)]),
        INIT,
        None,
    );
    assert_eq!(thread_of(&s, 11).state, TaskState::Sleeping);
}

#[test]
fn a_writer_owned_rwsem_names_its_owner_in_the_viewers_numbers() {
    // The inode-lock scene from inside a pid namespace: B (global 601,
    // inner 3) queued for writing on the directory's i_rwsem that A
    // (global 600, inner 2) holds.
    let mut s = snap(vec![process(2, &[2]), process(3, &[3])]);
    let mut a = record(600, 600, TASK_UNINTERRUPTIBLE);
    a.ns_tids.push((INNER, 2));
    a.ns_tgids.push((INNER, 2));
    let mut b = record(601, 601, TASK_UNINTERRUPTIBLE);
    b.ns_tids.push((INNER, 3));
    b.ns_tgids.push((INNER, 3));
    b.blocker = Some(blocker(BlockerKind::RwsemWriter, 600, false));
    apply(&mut s, &tasks(vec![a, b]), INNER, None);
    let lw = thread_of(&s, 3).lock_wait.clone().expect("lock wait");
    assert_eq!(lw.kind, "rw_semaphore");
    assert_eq!(lw.waits_as.as_deref(), Some("writer"));
    assert_eq!(lw.address, 0xffff_8881_2345_6780);
    assert_eq!(lw.owner_tid, Some(2), "A by its inner tid, not global 600");
    assert_eq!(lw.owner_task, Some(task_of(600)));
    assert!(!lw.reader_owned);
    assert_eq!(lw.waiters, vec![3]);
}

#[test]
fn an_owner_outside_the_namespace_is_not_named() {
    let mut s = snap(vec![process(3, &[3])]);
    let mut b = record(601, 601, TASK_UNINTERRUPTIBLE);
    b.ns_tids.push((INNER, 3));
    b.ns_tgids.push((INNER, 3));
    b.blocker = Some(blocker(BlockerKind::Mutex, 600, false));
    // The owner, global 600, lives outside INNER.
    apply(
        &mut s,
        &tasks(vec![record(600, 600, TASK_UNINTERRUPTIBLE), b]),
        INNER,
        None,
    );
    let lw = thread_of(&s, 3).lock_wait.clone().expect("lock wait");
    assert_eq!((lw.kind.as_str(), lw.owner_tid), ("mutex", None));
    assert_eq!(lw.owner_task, Some(task_of(600)), "the address is kept");
}

#[test]
fn a_reader_owned_rwsem_claims_no_owner() {
    let mut s = snap(vec![process(10, &[10]), process(20, &[20])]);
    let mut w = record(20, 20, TASK_UNINTERRUPTIBLE);
    // The owner word names the last reader (10) with RWSEM_READER_OWNED.
    w.blocker = Some(blocker(BlockerKind::RwsemWriter, 10, true));
    apply(
        &mut s,
        &tasks(vec![record(10, 10, TASK_INTERRUPTIBLE), w]),
        INIT,
        None,
    );
    let lw = thread_of(&s, 20).lock_wait.clone().expect("lock wait");
    assert!(lw.reader_owned);
    assert_eq!((lw.owner_tid, lw.owner_task), (None, None));
}

#[test]
fn a_semaphore_has_no_owner_only_a_last_holder() {
    let mut s = snap(vec![process(10, &[10]), process(20, &[20])]);
    let mut w = record(20, 20, TASK_UNINTERRUPTIBLE);
    w.blocker = Some(blocker(BlockerKind::Semaphore, 10, false));
    apply(
        &mut s,
        &tasks(vec![record(10, 10, TASK_INTERRUPTIBLE), w]),
        INIT,
        None,
    );
    let lw = thread_of(&s, 20).lock_wait.clone().expect("lock wait");
    assert_eq!(lw.kind, "semaphore");
    assert_eq!(lw.owner_tid, None);
    assert_eq!(lw.last_holder_tid, Some(10));
    assert!(!lw.reader_owned);
}

#[test]
fn stacks_come_from_the_provider_with_their_source() {
    // An ORC unwind shows the scheduler and the lock slow path; wchan is
    // still the first frame /proc would name.
    let orc = |r: &TaskRecord| {
        let names: &[&str] = if r.pid == 10 {
            &[
                "__schedule",
                "schedule",
                "rwsem_down_write_slowpath",
                "down_write",
                "open_last_lookups",
                "path_openat",
            ]
        } else {
            &[]
        };
        Some((
            names.iter().map(|n| KernelFrame::named(*n)).collect(),
            StackSource::Orc,
            None,
        ))
    };
    let mut s = snap(vec![process(10, &[10]), process(20, &[20])]);
    let r = record(10, 10, TASK_UNINTERRUPTIBLE);
    let running = record(20, 20, 0);
    apply(&mut s, &tasks(vec![r, running]), INIT, Some(&orc));
    let t = thread_of(&s, 10);
    assert_eq!(t.kernel_stack.value().map(Vec::len), Some(6));
    assert_eq!(
        t.wchan.value(),
        Some(&Some("open_last_lookups".to_string()))
    );
    assert_eq!(t.stack_source, Some(StackSource::Orc));
    // A task on a CPU has no wait channel.
    assert_eq!(thread_of(&s, 20).wchan.value(), Some(&None));
}

#[test]
fn without_symbols_a_skipped_stack_says_why() {
    let mut s = snap(vec![process(10, &[10])]);
    s.processes[0].threads[0].kernel_stack =
        Field::missing(MissingReason::NotCollected, "kernel stacks not requested");
    apply(
        &mut s,
        &tasks(vec![record(10, 10, TASK_UNINTERRUPTIBLE)]),
        INIT,
        None,
    );
    let m = thread_of(&s, 10)
        .kernel_stack
        .missing_info()
        .expect("missing");
    assert!(m.detail.contains("symbols"), "{}", m.detail);
}

#[test]
fn what_the_kernel_lacks_is_a_limitation() {
    let mut s = snap(vec![]);
    let mut t = tasks(vec![]);
    t.missing
        .push("task->blocker: needs 6.16 with CONFIG_DETECT_HUNG_TASK_BLOCKER".into());
    apply(&mut s, &t, INIT, None);
    assert_eq!(s.limitations.len(), 1);
    assert!(s.limitations[0].what.contains("BPF"));
    assert!(s.limitations[0].why.starts_with("task->blocker"));
}

#[test]
fn no_bpf_is_a_limitation_that_names_the_flag() {
    let mut s = snap(vec![]);
    let pass = LivePass::open(false);
    assert!(!pass.replaces_stacks());
    pass.apply(&mut s);
    assert!(s.limitations[0].what.contains("BPF"));
    assert!(s.limitations[0].why.contains("--no-bpf"));
    assert!(s.limitations[0].why.contains("/proc's summaries"));
}

#[test]
fn an_orc_walk_that_stopped_continues_with_bpfs_frames() {
    let f = |name: &str, a: u64| KernelFrame {
        address: Some(a),
        ..KernelFrame::named(name)
    };
    let orc = vec![
        f("__schedule", 1),
        f("schedule", 2),
        f("request_wait_answer", 3),
    ];
    // bpf_get_task_stack leaves the scheduler out and goes on below the
    // module the ORC walk stopped in.
    let bpf = [3, 4, 5];
    let named = |a: u64| f(&format!("fn{a}"), a);
    let joined = join_stacks(orc.clone(), &bpf, true, named);
    let names: Vec<(&str, Option<StackSource>)> = joined
        .iter()
        .map(|f| (f.function.as_str(), f.origin))
        .collect();
    assert_eq!(
        names,
        [
            ("__schedule", Some(StackSource::Orc)),
            ("schedule", Some(StackSource::Orc)),
            ("request_wait_answer", Some(StackSource::Orc)),
            ("fn4", Some(StackSource::Bpf)),
            ("fn5", Some(StackSource::Bpf)),
        ]
    );
    // A complete walk, or one sharing no address, is left as it is.
    assert_eq!(join_stacks(orc.clone(), &bpf, false, named), orc);
    assert_eq!(join_stacks(orc.clone(), &[7, 8], true, named), orc);
}
