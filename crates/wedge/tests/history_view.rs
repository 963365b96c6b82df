//! Issue 15 (the views piece): `wedge history`, and "blocked since" in
//! `why` and the verdict, against a real database written through
//! `wedge_record::Writer` from real snapshots of this machine while a real
//! scene runs (a FUSE reader stuck on a daemon that never answers, then
//! SIGKILLed: D). The recorder's loop is the recorder piece's; here the
//! samples are taken by hand so that the episode's bounds are known: one
//! sample before the scene, two while it lasts.

mod common;

use common::{check, conforms, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wedge_testkit::{setup_or_skip, FuseDaemon, FuseReader};

type R = Result<(), Failed>;

/// A scratch directory of this test under CARGO_TARGET_TMPDIR, removed on
/// drop.
fn scratch(name: &str) -> Result<tempfile::TempDir, Failed> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).map_err(|e| format!("{}: {e}", base.display()))?;
    Ok(tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .map_err(|e| format!("{}: {e}", base.display()))?)
}

/// One real sample of this machine (the /proc scan, as `wedge record`
/// falls back to), written through the store.
fn sample(w: &mut wedge_record::Writer) -> Result<i64, Failed> {
    let opts = wedge_procfs::ScanOptions::default();
    let snap = wedge_model::SnapshotSource::snapshot(&wedge_procfs::LiveSource(opts))?;
    let d = wedge_analysis::diagnose(&snap, &[]);
    let at = snap.system.taken_at_unix_ms as i64;
    w.sample(&wedge_record::Sample {
        unix_ms: at,
        scan_ms: snap.stats.duration_ms,
        source: "proc",
        interval_ms: 1000,
        snap: &snap,
        diagnosis: &d,
        syscalls: &HashMap::new(),
    })
    .map_err(|e| e.to_string())?;
    Ok(at)
}

fn episode_of(doc: &Value, key: &str, tid: i32) -> Option<Value> {
    doc[key]
        .as_array()?
        .iter()
        .find(|e| e["tid"] == tid)
        .cloned()
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn a_recorded_fuse_reader_is_blocked_since() -> R {
    let dir = scratch("history-view")?;
    let db: PathBuf = dir.path().join("history.db");
    let dbs = db.display().to_string();
    let mut w = wedge_record::Writer::open(&db, wedge_record::Retention::default())
        .map_err(|e| e.to_string())?;
    let before = sample(&mut w)?;
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    setup_or_skip!(r.sigkill());
    let first = sample(&mut w)?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let last = sample(&mut w)?;
    let tid = r.pid;
    let pid = tid.to_string();
    // The writer is alive (a running recorder): the episode is ongoing.
    let hist_json = wedge(&["history", "--db", &dbs, "--json"]);
    let hist_pid = wedge(&["history", &pid, "--db", &dbs, "--json"]);
    let hist_text = wedge(&["history", &pid, "--db", &dbs]);
    let since_future = wedge(&["history", "--db", &dbs, "--json", "--since", "0s"]);
    let why_text = wedge(&["why", &pid, "--db", &dbs]);
    let why_json = wedge(&["why", &pid, "--db", &dbs, "--json"]);
    let verdict_json = wedge(&["--db", &dbs, "--json"]);
    let verdict_text = wedge(&["--db", &dbs]);
    let now = now_unix();
    drop(r);
    drop(fs);
    w.close(now as i64 * 1000).map_err(|e| e.to_string())?;
    let after_close = wedge(&["history", &pid, "--db", &dbs, "--json"]);

    // wedge history --json: conforms, and has the reader's episode,
    // begun between the sample before the scene and the first in it.
    let doc = hist_json.json();
    conforms("history.json", "wedge history --json", &doc)?;
    check(hist_json.code == Some(1), || {
        format!(
            "an ongoing episode is exit 1: {:?} {}",
            hist_json.code, hist_json.stderr
        )
    })?;
    let e =
        episode_of(&doc, "episodes", tid).ok_or_else(|| format!("no episode of {pid}: {doc}"))?;
    let start = e["start_unix"].as_f64().unwrap_or(f64::MAX);
    check(start <= now && start * 1000.0 >= before as f64, || {
        format!("{e}")
    })?;
    check(start * 1000.0 <= first as f64 + 1.0, || {
        format!("start after the first stuck sample {first}: {e}")
    })?;
    check(
        e["not_before_unix"]
            .as_f64()
            .is_some_and(|nb| nb * 1000.0 <= before as f64 + 1.0),
        || format!("{e}"),
    )?;
    check(e["ongoing"] == true && e["end"].is_null(), || {
        format!("{e}")
    })?;
    check(
        e["last_seen_unix"]
            .as_f64()
            .is_some_and(|t| (t * 1000.0 - last as f64).abs() < 2.0),
        || format!("{e}"),
    )?;
    check(
        e["start"].as_str().is_some_and(|s| s.ends_with('Z')),
        || format!("{e}"),
    )?;
    check(
        doc["recorder"]["running"] == true && doc["recorder"]["samples"].as_u64() >= Some(3),
        || format!("{}", doc["recorder"]),
    )?;
    let docp = hist_pid.json();
    conforms("history.json", "wedge history PID --json", &docp)?;
    check(
        docp["episodes"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|e| e["pid"] == tid)),
        || format!("history {pid} shows other processes: {docp}"),
    )?;
    // --since 0s: from now on, nothing began (the ongoing episode began
    // before): the filter is the store's; the document still conforms.
    conforms(
        "history.json",
        "wedge history --since 0s --json",
        &since_future.json(),
    )?;

    // The text: a timeline line for the reader, ongoing.
    check(
        hist_text
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("since ") && l.contains("ongoing")),
        || hist_text.stdout.clone(),
    )?;
    check(
        hist_text
            .stdout
            .starts_with(&format!("wedge history: {dbs} (")),
        || hist_text.stdout.clone(),
    )?;

    // why: "blocked since", the section, and the episode in JSON.
    check(why_text.stdout.contains(", blocked since "), || {
        why_text.stdout.clone()
    })?;
    check(
        why_text
            .stdout
            .contains(&format!("\nRecorded history ({dbs})\n")),
        || why_text.stdout.clone(),
    )?;
    let wj = why_json.json();
    conforms("why.json", "wedge why PID --json (with a database)", &wj)?;
    let we =
        episode_of(&wj, "episodes", tid).ok_or_else(|| format!("why --json: no episode: {wj}"))?;
    check(we["start_unix"].as_f64().is_some_and(|s| s <= now), || {
        format!("{we}")
    })?;
    check(
        wj["findings"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["id"] == "fuse.unanswered" && f["episode"]["tid"] == tid)
        }),
        || format!("why --json: no episode under fuse.unanswered: {wj}"),
    )?;

    // The verdict: the finding carries its episode; the text says since.
    let vj = verdict_json.json();
    conforms("verdict.json", "wedge --json (with a database)", &vj)?;
    check(
        vj["findings"].as_array().is_some_and(|fs| {
            fs.iter().any(|f| {
                f["pids"][0] == tid
                    && f["episode"]["start_unix"]
                        .as_f64()
                        .is_some_and(|s| s <= now)
            })
        }),
        || format!("verdict --json: no episode for {pid}: {vj}"),
    )?;
    check(
        verdict_text.stdout.contains("      when  blocked since "),
        || verdict_text.stdout.clone(),
    )?;

    // After the reader is gone and the recorder closed, nothing is
    // ongoing: exit 0, and the episode has its end.
    let ac = after_close.json();
    conforms("history.json", "wedge history PID --json (closed)", &ac)?;
    let e = episode_of(&ac, "episodes", tid).ok_or_else(|| format!("{ac}"))?;
    check(e["ongoing"] == false && e["end_unix"].is_number(), || {
        format!("{e}")
    })?;
    check(after_close.code == Some(0), || {
        format!("exit {:?}: {}", after_close.code, after_close.stderr)
    })?;
    Ok(())
}

/// No database: a clear error naming the path and how to start the
/// recorder, exit 2; `why` and the verdict are as without a recorder.
fn no_database_says_how_to_record() -> R {
    let dir = scratch("history-none")?;
    let db = dir.path().join("none.db");
    let dbs = db.display().to_string();
    let h = wedge(&["history", "--db", &dbs]);
    check(h.code == Some(2), || format!("exit {:?}", h.code))?;
    check(
        h.stderr.contains(&dbs)
            && h.stderr.contains("wedge record")
            && h.stderr.contains("deploy/wedge-record.service"),
        || h.stderr.clone(),
    )?;
    check(!db.exists(), || format!("{dbs} was created by a reader"))?;
    let v = wedge(&["--db", &dbs, "--json"]).json();
    check(!v.to_string().contains("\"episode\""), || format!("{v}"))?;
    check(!v.to_string().contains("recorded history"), || {
        format!("{v}")
    })?;
    Ok(())
}

/// A file that is not a database: history fails naming it; the verdict
/// says among its limitations why it cannot see the history.
fn an_unreadable_database_is_a_limitation() -> R {
    let dir = scratch("history-bad")?;
    let db = dir.path().join("garbage.db");
    std::fs::write(&db, vec![0x5a; 8192]).map_err(|e| format!("{}: {e}", db.display()))?;
    let dbs = db.display().to_string();
    let h = wedge(&["history", "--db", &dbs]);
    check(h.code == Some(2) && h.stderr.contains(&dbs), || {
        format!("exit {:?}: {}", h.code, h.stderr)
    })?;
    let v = wedge(&["--db", &dbs, "--json"]);
    let vj = v.json();
    conforms("verdict.json", "wedge --json (unreadable database)", &vj)?;
    check(
        vj["limitations"].as_array().is_some_and(|ls| {
            ls.iter().any(|l| {
                l["what"]
                    .as_str()
                    .is_some_and(|w| w.contains("recorded history") && w.contains(&dbs))
            })
        }),
        || format!("{}", vj["limitations"]),
    )?;
    let t = wedge(&["--db", &dbs]);
    check(
        t.stdout.contains("(cannot see the recorded history ("),
        || t.stdout.clone(),
    )?;
    Ok(())
}

fn bad_since_is_a_clear_error() -> R {
    let h = wedge(&[
        "history",
        "--since",
        "yesterday",
        "--db",
        "/nonexistent/h.db",
    ]);
    check(h.code == Some(2), || format!("exit {:?}", h.code))?;
    check(
        h.stderr.contains("--since \"yesterday\"") && h.stderr.contains("RFC 3339"),
        || h.stderr.clone(),
    )?;
    Ok(())
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test(
            "a_recorded_fuse_reader_is_blocked_since",
            a_recorded_fuse_reader_is_blocked_since,
        ),
        Trial::test(
            "no_database_says_how_to_record",
            no_database_says_how_to_record,
        ),
        Trial::test(
            "an_unreadable_database_is_a_limitation",
            an_unreadable_database_is_a_limitation,
        ),
        Trial::test("bad_since_is_a_clear_error", bad_since_is_a_clear_error),
    ];
    libtest_mimic::run(&args, tests).exit();
}
