//! The recorder's database, end to end on real files: episodes and
//! findings over samples, the one-writer lock, crash safety under a real
//! SIGKILL, migrations from a committed v1 database, retention under a
//! size limit, a reader in a directory it cannot write.

mod common;

use common::*;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use wedge_kernel::TaskState;
use wedge_model::{Ending, SyscallEvent};
use wedge_record::{Reader, Retention, StoreError, Writer};

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch dir")
}

fn read(db: &Path) -> wedge_model::History {
    Reader::open(db)
        .expect("opens")
        .expect("exists")
        .history(None, None)
        .expect("history")
}

fn calls() -> Vec<SyscallEvent> {
    vec![
        SyscallEvent {
            nr: 257,
            name: Some("openat".into()),
            args: vec![0xffff_ff9c, 0x7f00_0000_2000, 0, 0, 0, 0],
            start_unix_ms: T0 + 400,
            duration_ns: Some(52_000),
            ret: Some(3),
        },
        SyscallEvent {
            nr: 0,
            name: Some("read".into()),
            args: vec![3, 0x7f00_0000_1000, 4096, 0, 0, 0],
            start_unix_ms: T0 + 500,
            duration_ns: None,
            ret: None,
        },
    ]
}

/// An episode opens at the first sample that sees the task stuck (not
/// before the previous one), goes on while it stays stuck, and ends at the
/// first sample that sees it otherwise: Resolved while the thread lives,
/// ProcessGone once it is gone. Findings and processes follow.
#[test]
fn episodes_open_continue_and_end() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    let t = |i: i64| T0 + i * 1000;
    write(&mut w, &snap(vec![sleeper()], t(0)), t(0), &no_calls()).expect("sample 0");
    let mut ring = HashMap::new();
    ring.insert(100, calls());
    let scene = || vec![fuse_reader(), zombie(), sleeper()];
    write(&mut w, &snap(scene(), t(1)), t(1), &ring).expect("sample 1");
    write(&mut w, &snap(scene(), t(2)), t(2), &no_calls()).expect("sample 2");
    // The reader is gone (killed and reaped); the zombie's slot now holds
    // a process running normally under the same pid and start: it left Z.
    let mut reaped = zombie();
    reaped.threads[0] = thread(200, TaskState::Sleeping, FUTEX, Some((202, "futex")));
    write(
        &mut w,
        &snap(vec![reaped, sleeper()], t(3)),
        t(3),
        &no_calls(),
    )
    .expect("sample 3");

    let h = read(&db);
    assert_eq!(h.recorder.samples, 4);
    assert_eq!(h.recorder.first_sample_unix_ms, Some(t(0)));
    assert_eq!(h.recorder.last_sample_unix_ms, Some(t(3)));
    assert_eq!(h.recorder.running_pid, Some(std::process::id() as i32));
    assert_eq!(
        h.recorder.schema_version,
        wedge_record::store::SCHEMA_VERSION
    );
    assert_eq!(h.recorder.source.as_deref(), Some("proc"));
    assert_eq!(h.recorder.interval_ms, Some(1000));
    assert_eq!(h.episodes.len(), 2, "{:#?}", h.episodes);
    let reader = h.episodes.iter().find(|e| e.tid == 100).expect("reader");
    assert_eq!(reader.state, "D");
    assert_eq!(reader.comm, "t100");
    assert_eq!(reader.process_comm, "wk-reader");
    assert_eq!(reader.start_unix_ms, t(1));
    assert_eq!(reader.not_before_unix_ms, Some(t(0)));
    assert_eq!(reader.last_seen_unix_ms, t(2));
    assert_eq!(reader.end_unix_ms, Some(t(3)));
    assert_eq!(reader.ending, Some(Ending::ProcessGone));
    assert_eq!(reader.syscall.as_deref(), Some("read"));
    assert_eq!(
        reader.stack.first().map(String::as_str),
        Some("request_wait_answer")
    );
    assert_eq!(reader.stack.len(), FUSE_READ.len());
    assert_eq!(reader.syscalls, calls());
    let wait = reader.wait.as_deref().expect("wait in words");
    assert!(wait.contains("FUSE daemon"), "{wait}");
    assert!(!reader.findings.is_empty(), "the D task's findings");
    let z = h.episodes.iter().find(|e| e.tid == 200).expect("zombie");
    assert_eq!(z.state, "Z");
    assert_eq!(z.ending, Some(Ending::Resolved));
    assert_eq!(z.end_unix_ms, Some(t(3)));
    assert!(
        h.episodes.iter().all(|e| e.tid != 300),
        "an idle sleeper is no episode"
    );

    // Every finding about the reader ended when it went away.
    let spans: Vec<_> = h
        .findings
        .iter()
        .filter(|f| f.pids.contains(&100))
        .collect();
    assert!(!spans.is_empty(), "{:#?}", h.findings);
    for f in spans {
        assert_eq!(f.first_seen_unix_ms, t(1));
        assert_eq!(f.last_seen_unix_ms, t(2));
        assert_eq!(
            (f.end_unix_ms, f.ending),
            (Some(t(3)), Some(Ending::ProcessGone))
        );
        assert!(
            reader.findings.contains(&f.id),
            "{:?} {}",
            reader.findings,
            f.id
        );
    }
    let life = h
        .processes
        .iter()
        .find(|p| p.pid == 100)
        .expect("reader's life");
    assert_eq!(life.comm, "wk-reader");
    assert_eq!(life.exit_unix_ms, Some(t(3)));
    // Booted at T0 - 10 000 s; started 5100 ticks (51 s) after.
    assert_eq!(life.start_unix_ms, Some(T0 - 10_000_000 + 51_000));
    assert!(h.processes.iter().all(|p| p.pid != 300));

    // The pid filter: pid 100's episode, findings and process only.
    let r = Reader::open(&db).expect("opens").expect("exists");
    let mine = r.history(Some(100), None).expect("history of 100");
    assert_eq!(mine.episodes.len(), 1);
    assert!(mine.findings.iter().all(|f| f.pids.contains(&100)));
    assert!(mine.processes.iter().all(|p| p.pid == 100));
    // Since: the zombie's episode ended at t(3), the reader's too; a
    // later `since` keeps neither.
    assert_eq!(
        r.history(None, Some(t(3) + 1))
            .expect("since")
            .episodes
            .len(),
        0
    );
    assert_eq!(
        r.history(None, Some(t(3))).expect("since").episodes.len(),
        2
    );
    let of = r.episodes_of(100).expect("episodes_of");
    assert_eq!(of.len(), 1);
    assert_eq!(of[0].start_unix_ms, t(1));

    // Each distinct stack once: the reader's (two samples) and the
    // sleeper's are never both stored twice.
    drop(w);
    let c = Connection::open(&db).expect("sqlite");
    let stacks: i64 = c
        .query_row("SELECT count(*) FROM stacks", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        stacks, 1,
        "only tasks that matter are kept, each stack once"
    );
    let tasks: i64 = c
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .expect("count");
    assert_eq!(tasks, 4, "reader and zombie in samples 1 and 2");
}

/// `close` ends what lasts as RecorderStopped; the next recorder's first
/// sample decides: still stuck, the same episode goes on (its last_seen
/// jumps the gap, the unwatched time kept apart); gone, it ends then.
#[test]
fn a_clean_stop_and_a_restart() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let t = |i: i64| T0 + i * 1000;
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    write(
        &mut w,
        &snap(vec![fuse_reader(), zombie()], t(0)),
        t(0),
        &no_calls(),
    )
    .expect("s0");
    write(
        &mut w,
        &snap(vec![fuse_reader(), zombie()], t(1)),
        t(1),
        &no_calls(),
    )
    .expect("s1");
    w.close(t(1) + 300).expect("close");
    // Another test of this binary forking (`mount`) between its fork and
    // exec holds a copy of every descriptor, the lock's too: wait for it.
    let mut h = read(&db);
    for _ in 0..100 {
        if h.recorder.running_pid.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        h = read(&db);
    }
    assert_eq!(
        h.recorder.running_pid, None,
        "the lock went with the writer"
    );
    assert!(h
        .episodes
        .iter()
        .all(|e| e.ending == Some(Ending::RecorderStopped) && e.end_unix_ms == Some(t(1) + 300)));
    assert!(h
        .findings
        .iter()
        .all(|f| f.ending == Some(Ending::RecorderStopped)));
    assert_eq!(
        h.episodes[0].not_before_unix_ms, None,
        "stuck at the first sample"
    );

    let mut w = Writer::open(&db, Retention::default()).expect("writer again");
    write(
        &mut w,
        &snap(vec![fuse_reader()], t(60)),
        t(60),
        &no_calls(),
    )
    .expect("s60");
    let h = read(&db);
    assert_eq!(h.episodes.len(), 2, "{:#?}", h.episodes);
    let reader = h.episodes.iter().find(|e| e.tid == 100).expect("reader");
    assert_eq!(
        (reader.start_unix_ms, reader.last_seen_unix_ms),
        (t(0), t(60))
    );
    assert_eq!((reader.end_unix_ms, reader.ending), (None, None));
    let z = h.episodes.iter().find(|e| e.tid == 200).expect("zombie");
    assert_eq!((z.last_seen_unix_ms, z.end_unix_ms), (t(1), Some(t(60))));
    assert_eq!(z.ending, Some(Ending::ProcessGone));
    let r = Reader::open(&db).expect("opens").expect("exists");
    assert_eq!(r.gaps(None).expect("gaps"), [(t(1), t(60))]);
    assert!(r.gaps(Some(t(61))).expect("gaps").is_empty());
    drop(w);
    let c = Connection::open(&db).expect("sqlite");
    let unobserved: i64 = c
        .query_row(
            "SELECT unobserved_ms FROM episodes WHERE tid = 100",
            [],
            |r| r.get(0),
        )
        .expect("unobserved");
    assert_eq!(unobserved, 58_000);
}

/// One writer: a second one is refused, naming the path and the holder;
/// a lock file left by a dead recorder does not block.
#[test]
fn one_writer_per_database() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let w = Writer::open(&db, Retention::default()).expect("writer");
    match Writer::open(&db, Retention::default()) {
        Err(e @ StoreError::Locked { .. }) => {
            let StoreError::Locked { path, pid } = &e else {
                unreachable!()
            };
            assert_eq!(path, &db);
            assert_eq!(*pid, Some(std::process::id() as i32));
            let msg = e.to_string();
            assert!(
                msg.contains(&db.display().to_string()) && msg.contains("pid"),
                "{msg}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a second writer opened"),
    }
    drop(w);
    // A recorder that died: its pid is still in the file, no lock is held.
    std::fs::write(dir.path().join("history.db.lock"), "999999999\n").expect("stale lock");
    let w = Writer::open(&db, Retention::default()).expect("a stale lock file does not block");
    drop(w);
}

/// Kernel-log events are stored once per (boot, sequence number); the
/// highest number survives their deletion.
#[test]
fn log_events_by_sequence_number() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    assert_eq!(w.last_log_seq(BOOT).expect("seq"), None);
    let evs: Vec<_> = (1..=5)
        .map(|i| log_event(i, T0 + i as i64, Some(100 + i as u32 % 2)))
        .collect();
    w.log_events(&evs).expect("write");
    w.log_events(&evs[2..]).expect("again");
    assert_eq!(w.last_log_seq(BOOT).expect("seq"), Some(5));
    assert_eq!(w.last_log_seq("another boot").expect("seq"), None);
    write(
        &mut w,
        &snap(vec![fuse_reader()], T0 + 10),
        T0 + 10,
        &no_calls(),
    )
    .expect("s");
    let h = read(&db);
    assert_eq!(
        h.log_events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(h.log_events[0], evs[0]);
    let r = Reader::open(&db).expect("opens").expect("exists");
    let of100 = r.history(Some(100), None).expect("history");
    assert_eq!(
        of100.log_events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 4]
    );
    let since = r.history(None, Some(T0 + 4)).expect("history");
    assert_eq!(since.log_events.len(), 2);
}

/// A file that is not a wedge database is refused, never written; so is
/// one of a newer wedge (TooNew), by the writer and the reader.
#[test]
fn foreign_and_newer_files_are_refused_untouched() {
    let dir = scratch();
    let other = dir.path().join("other.db");
    {
        let c = Connection::open(&other).expect("sqlite");
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("other");
    }
    let before = std::fs::read(&other).expect("read");
    for e in [
        Writer::open(&other, Retention::default()).err(),
        Reader::open(&other).err(),
    ] {
        match e {
            Some(StoreError::Other(m)) => {
                assert!(
                    m.contains("not a wedge history database") && m.contains("other.db"),
                    "{m}"
                )
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(std::fs::read(&other).expect("read"), before);
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).expect("garbage");
    assert!(matches!(Reader::open(&garbage), Err(StoreError::Other(_))));
    assert!(matches!(
        Writer::open(&garbage, Retention::default()),
        Err(StoreError::Other(_))
    ));

    let db = dir.path().join("newer.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    write(&mut w, &snap(vec![fuse_reader()], T0), T0, &no_calls()).expect("s");
    w.close(T0 + 1).expect("close");
    {
        let c = Connection::open(&db).expect("sqlite");
        c.pragma_update(None, "user_version", 99).expect("bump");
    }
    let before = std::fs::read(&db).expect("read");
    assert!(matches!(
        Writer::open(&db, Retention::default()),
        Err(StoreError::TooNew { version: 99, .. })
    ));
    assert!(matches!(
        Reader::open(&db),
        Err(StoreError::TooNew { version: 99, .. })
    ));
    assert_eq!(
        std::fs::read(&db).expect("read"),
        before,
        "not a byte written"
    );
    assert!(Reader::open(&dir.path().join("none.db"))
        .expect("no file")
        .is_none());
}

/// The committed v1 database (the first cut: no syscalls table, no
/// episodes.syscall) reads as it is, then migrates on the writer's open
/// and keeps everything, with the episodes' system calls filled from their
/// first sample's task rows; the writer then goes on with its open
/// episode.
#[test]
fn a_version_1_database_opens_and_migrates() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    {
        let c = Connection::open(&db).expect("sqlite");
        c.execute_batch(include_str!("fixtures/history-v1.sql"))
            .expect("the v1 fixture builds");
    }
    let check = |h: &wedge_model::History, migrated: bool| {
        assert_eq!(h.recorder.samples, 4);
        assert_eq!(h.episodes.len(), 2, "{:#?}", h.episodes);
        let closed = &h.episodes[0];
        assert_eq!(
            (closed.pid, closed.tid, closed.state.as_str()),
            (4242, 4242, "T")
        );
        assert_eq!(closed.ending, Some(Ending::Resolved));
        let open = &h.episodes[1];
        assert_eq!((open.pid, open.tid, open.state.as_str()), (4300, 4301, "D"));
        assert_eq!(open.ending, None);
        assert_eq!(open.not_before_unix_ms, Some(1_796_169_601_000));
        assert_eq!(
            open.stack.first().map(String::as_str),
            Some("request_wait_answer")
        );
        assert!(open.wait.as_deref().is_some_and(|w| w.contains("FUSE")));
        assert_eq!(open.findings, ["fuse.unanswered"]);
        assert_eq!(
            open.syscall.as_deref(),
            migrated.then_some("read"),
            "filled by the migration from the first sample's task row"
        );
        assert_eq!(h.findings.len(), 1);
        assert_eq!(h.findings[0].id, "fuse.unanswered");
        assert_eq!(h.findings[0].pids, [4300]);
        assert_eq!(h.log_events.len(), 2);
        assert_eq!(h.log_events[0].event.kind, "hung_task");
        assert_eq!(h.processes.len(), 2);
    };
    let r = Reader::open(&db).expect("opens").expect("exists");
    assert_eq!(r.schema_version(), 1);
    check(&r.history(None, None).expect("v1 history"), false);
    drop(r);

    let mut w = Writer::open(&db, Retention::default()).expect("migrates");
    let r = Reader::open(&db).expect("opens").expect("exists");
    assert_eq!(r.schema_version(), 2);
    check(&r.history(None, None).expect("v2 history"), true);
    assert_eq!(
        w.last_log_seq("b00710a0-0000-4000-8000-000000000001")
            .expect("seq"),
        Some(1041)
    );

    // The open episode goes on in the migrated file.
    let mut p = process(
        4300,
        "fuse-reader",
        vec![thread(
            4301,
            TaskState::DiskSleep,
            FUSE_READ,
            Some((0, "read")),
        )],
    );
    p.start_time = 123_456;
    p.threads[0].start_time = 123_460;
    let mut s = snap(vec![p], 1_796_169_605_000);
    s.system.boot_id = Some("b00710a0-0000-4000-8000-000000000001".into());
    write(&mut w, &s, 1_796_169_605_000, &no_calls()).expect("sample");
    let h = r.history(Some(4300), None).expect("history");
    assert_eq!(h.episodes.len(), 1, "{:#?}", h.episodes);
    assert_eq!(h.episodes[0].start_unix_ms, 1_796_169_602_000);
    assert_eq!(h.episodes[0].last_seen_unix_ms, 1_796_169_605_000);
    let c = Connection::open(&db).expect("sqlite");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok");
}

/// The size limit holds while samples and a flood of kernel-log events
/// are written far past it: the main file and its WAL stay under the limit
/// (plus one WAL's worth, 1/32 of it, the slack between the high mark and
/// the vacuum's checkpoint), the oldest go and the newest stay.
#[test]
fn the_size_limit_holds_under_a_flood() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let limit: u64 = 2 << 20;
    let retention = Retention {
        max_age_secs: 7 * 24 * 3600,
        max_bytes: limit,
    };
    let mut w = Writer::open(&db, retention).expect("writer");
    let size = || {
        ["", "-wal"]
            .iter()
            .map(|s| std::fs::metadata(format!("{}{s}", db.display())).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let mut max_seen = 0;
    let mut seq = 0;
    let samples = 700;
    for i in 0..samples {
        let t = T0 + i * 1000;
        // A new D task every sample besides the long one: new stacks,
        // new episodes, so everything the retention must drop grows.
        let mut procs = vec![fuse_reader(), zombie(), sleeper()];
        let mut extra = process(
            1000 + i as i32,
            "flapper",
            vec![thread(
                1000 + i as i32,
                TaskState::DiskSleep,
                FUSE_READ,
                Some((0, "read")),
            )],
        );
        if let wedge_model::Field::Value(stack) = &mut extra.threads[0].kernel_stack {
            stack[0].function = format!("wait_{}", i % 97);
        }
        procs.push(extra);
        write(&mut w, &snap(procs, t), t, &no_calls()).expect("sample");
        let evs: Vec<_> = (0..30)
            .map(|_| {
                seq += 1;
                log_event(seq, t, Some(100))
            })
            .collect();
        w.log_events(&evs).expect("log");
        max_seen = max_seen.max(size());
    }
    // The whole ring buffer at once (a recorder starting on a boot whose
    // log flooded): written in batches, the limit holds too.
    let burst: Vec<_> = (0..6000)
        .map(|_| {
            seq += 1;
            log_event(seq, T0 + samples * 1000, None)
        })
        .collect();
    w.log_events(&burst).expect("burst");
    max_seen = max_seen.max(size());
    let slack = limit / 32;
    assert!(
        max_seen <= limit + slack,
        "the database reached {max_seen} bytes over a {limit}-byte limit"
    );
    let h = read(&db);
    assert!(
        h.recorder.samples < samples as u64,
        "old samples were deleted"
    );
    assert_eq!(
        h.recorder.last_sample_unix_ms,
        Some(T0 + (samples - 1) * 1000)
    );
    assert!(
        h.log_events.last().is_some_and(|e| e.seq == seq),
        "the newest event stays"
    );
    assert!(h.log_events.len() < seq as usize, "old events were deleted");
    // The long episode is open and keeps its start, though its first
    // samples are gone.
    let long = h
        .episodes
        .iter()
        .find(|e| e.tid == 100)
        .expect("the long episode");
    assert_eq!((long.start_unix_ms, long.end_unix_ms), (T0, None));
    assert_eq!(
        long.stack.first().map(String::as_str),
        Some("request_wait_answer")
    );
    println!(
        "size limit {limit}: at most {max_seen} bytes on disk; kept {} of {samples} samples, {} of {seq} log events",
        h.recorder.samples,
        h.log_events.len()
    );
}

/// Samples older than the age limit go, and with them the episodes that
/// ended before.
#[test]
fn the_age_limit_holds() {
    let dir = scratch();
    let db = dir.path().join("history.db");
    let retention = Retention {
        max_age_secs: 60,
        max_bytes: 256 << 20,
    };
    let mut w = Writer::open(&db, retention).expect("writer");
    let t = |i: i64| T0 + i * 1000;
    write(&mut w, &snap(vec![zombie()], t(0)), t(0), &no_calls()).expect("s");
    w.log_events(&[log_event(1, t(0), None)]).expect("log");
    for i in 1..200 {
        write(&mut w, &snap(vec![fuse_reader()], t(i)), t(i), &no_calls()).expect("s");
    }
    let h = read(&db);
    assert_eq!(h.recorder.first_sample_unix_ms, Some(t(199 - 60)));
    assert!(
        h.episodes.iter().all(|e| e.tid == 100),
        "the zombie's episode ended long ago"
    );
    assert!(h.log_events.is_empty());
    assert!(h.processes.iter().all(|p| p.pid == 100));
}

/// A scratch tmpfs of `size` at `dir/name`, unmounted when dropped; None
/// (after skip_or_fail) when it cannot be mounted.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, name: &str, size: &str) -> Option<Tmpfs> {
        let mnt = dir.join(name);
        std::fs::create_dir(&mnt).expect("mkdir");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "wedge-store-test",
            ])
            .arg(&mnt)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            wedge_testkit::skip_or_fail("cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(mnt))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A sample that cannot be written (the file system is full) fails with
/// the path named and changes nothing; once there is room the next one
/// goes on from the last commit: the same episodes, no phantom rows.
#[test]
fn a_full_disk_fails_a_sample_and_the_next_goes_on() {
    let dir = scratch();
    let Some(fs) = Tmpfs::mount(dir.path(), "full", "1m") else {
        return;
    };
    let db = fs.0.join("history.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    let t = |i: i64| T0 + i * 1000;
    write(&mut w, &snap(vec![fuse_reader()], t(0)), t(0), &no_calls()).expect("s0");
    // Fill the rest of the file system.
    let ballast = fs.0.join("ballast");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&ballast).expect("ballast");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
    // New processes stuck at every sample until a write fails.
    let mut failed = None;
    let mut i = 1;
    while i < 500 {
        let mut procs = vec![fuse_reader()];
        for k in 0..20 {
            let pid = 1000 + (i as i32) * 20 + k;
            procs.push(process(
                pid,
                "stuck",
                vec![thread(
                    pid,
                    TaskState::DiskSleep,
                    FUSE_READ,
                    Some((0, "read")),
                )],
            ));
        }
        if let Err(e) = write(&mut w, &snap(procs, t(i)), t(i), &no_calls()) {
            failed = Some((i, e));
            break;
        }
        i += 1;
    }
    let (at, e) = failed.expect("the full file system failed a sample");
    assert!(e.to_string().contains(&db.display().to_string()), "{e}");
    std::fs::remove_file(&ballast).expect("make room");
    write(
        &mut w,
        &snap(vec![fuse_reader()], t(at + 1)),
        t(at + 1),
        &no_calls(),
    )
    .expect("the next sample goes on");
    let h = read(&db);
    assert_eq!(
        h.recorder.samples as i64,
        at + 1,
        "every committed sample, not the failed one"
    );
    let reader: Vec<_> = h.episodes.iter().filter(|e| e.tid == 100).collect();
    assert_eq!(reader.len(), 1, "one episode across the failure");
    assert_eq!(
        (reader[0].start_unix_ms, reader[0].last_seen_unix_ms),
        (t(0), t(at + 1))
    );
    assert!(
        h.episodes.iter().all(|e| e.start_unix_ms < t(at)),
        "nothing of the failed sample"
    );
    drop(w);
    let c = Connection::open(&db).expect("sqlite");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok");
}

/// With WAL, a reader needs the -shm beside the file; in a directory it
/// cannot write (a read-only mount here: root ignores permissions) the
/// reader falls back on `immutable=1` and still reads everything a
/// closed recorder wrote.
#[test]
fn a_reader_in_a_read_only_directory() {
    let dir = scratch();
    let Some(fs) = Tmpfs::mount(dir.path(), "ro", "8m") else {
        return;
    };
    let mnt = fs.0.clone();
    let db = mnt.join("history.db");
    let mut w = Writer::open(&db, Retention::default()).expect("writer");
    write(&mut w, &snap(vec![fuse_reader()], T0), T0, &no_calls()).expect("s");
    w.close(T0 + 1).expect("close");
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .expect("remount");
    assert!(remount.success());
    assert!(
        !mnt.join("history.db-shm").exists(),
        "no -shm left by the writer"
    );
    let r = Reader::open(&db).expect("opens read-only").expect("exists");
    assert!(r.without_wal());
    let h = r.history(None, None).expect("history");
    assert_eq!(h.recorder.samples, 1);
    assert_eq!(h.episodes.len(), 1);
}
