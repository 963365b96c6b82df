//! Crash safety for real: a child process (this test binary, re-run as
//! `writer_child`) writes samples as fast as it can and says after each
//! commit how many it has committed; the test SIGKILLs it mid-stream.
//! The database must pass `integrity_check`, hold every sample the child
//! reported, and take a new writer at once (the kernel freed the lock)
//! that continues the episodes the dead one left open.

mod common;

use common::*;
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use wedge_model::Ending;
use wedge_record::{Reader, Retention, StoreError, Writer};

const CHILD_ENV: &str = "WEDGE_STORE_CRASH_CHILD_DB";

/// The child's loop; does nothing when run as an ordinary test.
#[test]
fn writer_child() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut w = Writer::open(std::path::Path::new(&db), Retention::default()).expect("writer");
    let mut seq = 0;
    for i in 0..1_000_000i64 {
        let t = T0 + i * 1000;
        let s = snap(vec![fuse_reader(), zombie(), sleeper()], t);
        write(&mut w, &s, t, &no_calls()).expect("sample");
        println!("committed {}", i + 1);
        seq += 1;
        w.log_events(&[log_event(seq, t, Some(100))]).expect("log");
        // The parent went away without killing us: stop.
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } == 1 {
            return;
        }
    }
}

#[test]
fn kill_9_mid_write_keeps_every_committed_sample() {
    let dir = tempfile::Builder::new()
        .prefix("crash-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch");
    let db = dir.path().join("history.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer child");
    let out = child.stdout.take().expect("stdout");
    let mut committed = 0u64;
    let mut refused = None;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.trim().parse().expect("a count");
        }
        if committed == 20 && refused.is_none() {
            // A second recorder while the child writes: refused, naming
            // the child.
            refused = Some(Writer::open(&db, Retention::default()).err());
        }
        if committed >= 200 {
            // SAFETY: kill of our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert!(committed >= 200, "the child stopped early: {status:?}");
    match refused {
        Some(Some(StoreError::Locked { pid, .. })) => assert_eq!(pid, Some(child.id() as i32)),
        other => panic!("a second writer was not refused: {other:?}"),
    }

    let c = Connection::open(&db).expect("opens after kill -9");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
    let (n, max): (u64, i64) = c
        .query_row("SELECT count(*), max(id) FROM samples", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("samples");
    // Every reported commit is there (one more may have committed between
    // the commit and its line).
    assert!(
        n >= committed && n <= committed + 1,
        "{n} samples, {committed} reported"
    );
    assert_eq!(max as u64, n, "no hole");
    drop(c);
    let h = Reader::open(&db)
        .expect("opens")
        .expect("exists")
        .history(None, None)
        .expect("history");
    assert_eq!(
        h.recorder.running_pid, None,
        "the kernel dropped the dead writer's lock"
    );
    let open: Vec<_> = h
        .episodes
        .iter()
        .filter(|e| e.end_unix_ms.is_none())
        .collect();
    assert_eq!(open.len(), 2, "{:#?}", h.episodes);

    // A new writer at once; its first sample, a minute later: the reader
    // is still stuck (its episode goes on across the gap), the zombie was
    // reaped (its episode ends there, ProcessGone, its last_seen the last
    // sample the dead writer committed).
    let last = T0 + (n as i64 - 1) * 1000;
    let later = last + 60_000;
    let mut w = Writer::open(&db, Retention::default()).expect("a new writer takes the lock");
    write(
        &mut w,
        &snap(vec![fuse_reader(), sleeper()], later),
        later,
        &no_calls(),
    )
    .expect("s");
    let h = Reader::open(&db)
        .expect("opens")
        .expect("exists")
        .history(None, None)
        .expect("history");
    assert_eq!(h.episodes.len(), 2, "{:#?}", h.episodes);
    let reader = h.episodes.iter().find(|e| e.tid == 100).expect("reader");
    assert_eq!(
        (reader.start_unix_ms, reader.last_seen_unix_ms),
        (T0, later)
    );
    assert_eq!(reader.ending, None);
    let z = h.episodes.iter().find(|e| e.tid == 200).expect("zombie");
    assert_eq!((z.last_seen_unix_ms, z.end_unix_ms), (last, Some(later)));
    assert_eq!(z.ending, Some(Ending::ProcessGone));
    assert!(h.log_events.len() as u64 >= n - 1);
    w.close(later + 1).expect("close");
}
