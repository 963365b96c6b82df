//! `wedge log` on files: the corpus's real excerpts, compressed copies of
//! them, standard input, filters, and damaged input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/kernel-logs");

fn wedge(args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, String, String) {
    // Bounded like every run, with room for the largest corpus file and
    // its decompression in a debug build.
    let opts = common::Opts::within(Duration::from_secs(120)).stdin(stdin.unwrap_or_default());
    let r = common::run(args, opts);
    (r.code, r.stdout, r.stderr)
}

fn corpus(name: &str) -> PathBuf {
    Path::new(CORPUS).join(name)
}

/// Compresses `src` with a command-line tool into `dst`; false if the tool
/// is missing (the test then says SKIPPED, or fails under WEDGE_REQUIRE_ALL).
fn compress(tool: &str, src: &Path, dst: &Path) -> bool {
    let Ok(out) = Command::new(tool).arg("-c").arg(src).output() else {
        let msg = format!("{tool} is not installed");
        if std::env::var_os("WEDGE_REQUIRE_ALL").is_some() {
            panic!("{msg}");
        }
        println!("SKIPPED: {msg}");
        return false;
    };
    std::fs::write(dst, out.stdout).unwrap();
    true
}

#[test]
fn compressed_files_read_like_plain_ones() {
    let src = corpus("hung_task-002.log");
    let (code, plain, _) = wedge(&["log", "--json", src.to_str().unwrap()], None);
    assert_eq!(code, Some(1), "a hung task in the log is exit status 1");
    assert!(plain.contains(r#""kind":"hung_task""#), "{plain}");
    let dir = common::scratch("logtest");
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz"), ("zstd", "zst")] {
        let dst = dir.path().join(format!("h.log.{ext}"));
        if !compress(tool, &src, &dst) {
            continue;
        }
        let (code, out, err) = wedge(&["log", "--json", dst.to_str().unwrap()], None);
        assert_eq!(code, Some(1), "{tool}: {err}");
        assert_eq!(out, plain, "{tool} copy parses differently");
    }
}

#[test]
fn stdin_and_filters() {
    let text = std::fs::read(corpus("mixed-002.log")).unwrap();
    let (_, all, _) = wedge(&["log", "--json", "-"], Some(&text));
    let kinds: Vec<String> = all
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!kinds.is_empty());
    let first = kinds[0].clone();
    let (_, some, _) = wedge(&["log", "--json", "--kind", &first, "-"], Some(&text));
    assert_eq!(
        some.lines().count(),
        kinds.iter().filter(|k| **k == first).count()
    );
    let (_, none, _) = wedge(&["log", "--json", "--pid", "999999999", "-"], Some(&text));
    assert!(none.is_empty(), "{none}");
}

#[test]
fn damaged_input_is_an_error_or_nothing_never_a_panic() {
    // Binary garbage: not a log, said so (exit 2), no "events" from it.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (code, out, err) = wedge(&["log", "-"], Some(&garbage));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("not a text log"), "{err}");
    assert!(out.is_empty(), "{out}");
    // A truncated gzip file: a clear error naming the file, or the events
    // decoded before the cut; never a panic.
    let dir = common::scratch("logtest");
    let gz = dir.path().join("cut.log.gz");
    if compress("gzip", &corpus("mixed-001.log"), &gz) {
        let data = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &data[..data.len() / 2]).unwrap();
        let (code, _, err) = wedge(&["log", gz.to_str().unwrap()], None);
        assert!(!err.contains("panicked"), "{err}");
        if code == Some(2) {
            assert!(
                err.contains("cut.log.gz"),
                "error does not name the file: {err}"
            );
        }
    }
    let (code, _, err) = wedge(&["log", "/nonexistent/kern.log"], None);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/kern.log"), "{err}");
    let (code, _, err) = wedge(&["log", "--since", "someday", "-"], Some(b""));
    assert_eq!(code, Some(2));
    assert!(err.contains("--since"), "{err}");
}

#[test]
fn human_output_groups_identical_stacks() {
    let (code, out, _) = wedge(&["log", corpus("gpf_trap-004.log").to_str().unwrap()], None);
    assert_eq!(code, Some(0), "traps alone are not a wedge");
    assert!(out.contains("[gpf_trap] ×8"), "{out}");
    assert!(out.contains("PID 1 of a pid namespace"), "{out}");
}

/// Seed 000 (io_uring on Linux 6.6.58, SIGKILL does not end `npm ci`):
/// this kernel cannot show that bug, so the test reads the report as the
/// seed quotes it from a real occurrence.
#[test]
fn seed_000_iou_sqp_hung_task() {
    let text = b"INFO: task iou-sqp-1031:1039 blocked for more than 122 seconds.\n   Not tainted 6.6.58 #1-NixOS\n";
    let (code, out, _) = wedge(&["log", "--json", "-"], Some(text));
    assert_eq!(code, Some(1));
    let e: serde_json::Value = serde_json::from_str(out.lines().next().expect("an event")).unwrap();
    assert_eq!(e["kind"], "hung_task");
    assert_eq!(e["task"], "iou-sqp-1031");
    assert_eq!(e["pid"], 1039);
    assert_eq!(e["blocked_seconds"], 122);
    assert_eq!(e["kernel_version"], "6.6.58");
}

/// Runs `wedge ARGS` with `lines` generated into its standard input and
/// returns (exit code, stdout, peak RSS in KiB from wait4's rusage).
fn wedge_rss(
    args: &[&str],
    lines: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
) -> (i32, String, u64) {
    let r = common::run(
        args,
        common::Opts::within(Duration::from_secs(300)).feed(lines),
    );
    (r.code.unwrap_or(-1), r.stdout, r.maxrss_kb as u64)
}

/// A million hung-task lines (250,000 reports) in the text view: the groups
/// are aggregated as the log streams, so peak memory does not grow with it
/// (collecting every event first took 330 MB for this input).
#[test]
fn grouping_a_million_hung_task_lines_keeps_memory_small() {
    let (code, out, rss_kib) = wedge_rss(&["log", "-"], |w| {
        for i in 0..250_000u32 {
            let t = 100.0 + f64::from(i) * 0.001;
            write!(
                w,
                "[{t:12.6}] INFO: task worker-{}:{} blocked for more than 120 seconds.\n\
                 [{t:12.6}]       Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1\n\
                 [{t:12.6}] Call Trace:\n\
                 [{t:12.6}]  <TASK>\n",
                i % 50,
                1000 + i % 5000
            )?;
        }
        Ok(())
    });
    assert_eq!(code, 1, "hung tasks are exit status 1:\n{out}");
    assert!(
        out.starts_with("250000 event(s) in 1000000 line(s)"),
        "{}",
        out.lines().next().unwrap_or("")
    );
    assert!(out.contains("[hung_task] ×250000"), "{out}");
    assert!(
        rss_kib < 100 * 1024,
        "peak RSS {} MiB for a million lines",
        rss_kib / 1024
    );
}

/// A compressed log cut short (a rotated log still being written): the
/// events decoded before the cut are shown, stderr says where it stopped,
/// and the exit status is that of the events found.
#[test]
fn truncated_compressed_logs_keep_what_was_decoded() {
    let dir = common::scratch("logtest");
    // Large enough for several zstd blocks (128 KiB of output each), so a
    // cut leaves whole blocks before it. Each copy has its own pid: copies
    // repeated verbatim compress to a few bytes per block, most of the
    // file would be the first block, and a cut would fall inside it. A
    // zstd block decodes whole or not at all (its sequence bitstream is
    // read backwards from the block's end), so nothing could be kept.
    let one = std::fs::read_to_string(corpus("hung_task-002.log")).unwrap();
    let mut text = Vec::new();
    for pid in 10_000.. {
        if text.len() >= 600 * 1024 {
            break;
        }
        text.extend_from_slice(one.replace("1640", &pid.to_string()).as_bytes());
    }
    let plain = dir.path().join("kern.log");
    std::fs::write(&plain, &text).unwrap();
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz"), ("zstd", "zst")] {
        let full = dir.path().join(format!("kern.log.{ext}"));
        if !compress(tool, &plain, &full) {
            continue;
        }
        let data = std::fs::read(&full).unwrap();
        let cut = dir.path().join(format!("cut.log.{ext}"));
        std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
        let (code, out, err) = wedge(&["log", "--json", cut.to_str().unwrap()], None);
        let n = out
            .lines()
            .filter(|l| l.contains(r#""kind":"hung_task""#))
            .count();
        assert!(n > 0, "{tool}: no events kept: {err}");
        assert_eq!(code, Some(1), "{tool}: hung tasks were found: {err}");
        assert!(
            err.contains(cut.to_str().unwrap()) && err.contains("reading stopped after"),
            "{tool}: stderr does not say where it stopped: {err}"
        );
        let (_, whole, _) = wedge(&["log", "--json", full.to_str().unwrap()], None);
        assert!(
            n < whole.lines().count(),
            "{tool}: the cut kept everything?"
        );
        // The text view too.
        let (code, text, _) = wedge(&["log", cut.to_str().unwrap()], None);
        assert_eq!(code, Some(1));
        assert!(text.starts_with(&format!("{n} event(s)")), "{tool}: {text}");
    }
}

/// An executable is not a kernel log: exit 2 naming the file, not an
/// "oops" found in its strings.
#[test]
fn binary_files_are_refused_by_name() {
    let exe = env!("CARGO_BIN_EXE_wedge");
    let (code, out, err) = wedge(&["log", exe], None);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(exe) && err.contains("not a text log") && err.contains("ELF"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    // A real log with a few damaged bytes (a crash mid-write leaves NULs,
    // a serial line flips bits) is still read.
    let mut text = std::fs::read(corpus("hung_task-002.log")).unwrap();
    text.extend_from_slice(b"[  365.000000] \0\0\0\0\0\0\0\0 serial \xff\xfe noise\n");
    text.extend_from_slice(&[0u8; 24]);
    let (code, out, err) = wedge(&["log", "--json", "-"], Some(&text));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.contains(r#""kind":"hung_task""#), "{out}");
}

/// `--kind` takes only kinds the parser has (its own table), and `--help`
/// lists them.
#[test]
fn unknown_kinds_are_rejected_and_listed() {
    let (code, out, err) = wedge(&["log", "--kind", "bogus", "-"], Some(b""));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("bogus") && err.contains("hung_task"), "{err}");
    assert!(out.is_empty(), "{out}");
    let (code, _, err) = wedge(&["log", "--kind", "nosuch_*", "-"], Some(b""));
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = wedge(&["log", "--kind", "lustre_*", "-"], Some(b""));
    assert_eq!(code, Some(0), "{err}");
    let (_, help, _) = wedge(&["log", "--help"], None);
    for k in wedge_klog::KINDS {
        assert!(help.contains(k), "--help does not list {k}:\n{help}");
    }
}

/// `--since DATE` is never ignored: since-boot stamps are compared through
/// the boot time a syslog line gives, and events it cannot place are left
/// out with a count on stderr.
#[test]
fn since_a_date_on_since_boot_stamps_is_never_ignored() {
    // dmesg: since-boot stamps only, no boot time anywhere.
    let dmesg = std::fs::read(corpus("hung_task-002.log")).unwrap();
    let (code, out, err) = wedge(
        &["log", "--json", "--since", "2099-01-01", "-"],
        Some(&dmesg),
    );
    assert!(
        out.is_empty(),
        "events shown although --since cannot apply:\n{out}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("--since 2099-01-01 cannot apply to") && err.contains("time since boot"),
        "{err}"
    );
    // syslog lines carry both clocks: the boot time is learnt, the filter
    // applies, and nothing is left unexplained.
    let syslog = b"2024-05-22T19:04:47+00:00 host kernel: [  364.324540] INFO: task a:1 blocked for more than 120 seconds.\n\
                   [  424.000000] INFO: task b:2 blocked for more than 180 seconds.\n";
    let (code, out, err) = wedge(
        &["log", "--json", "--since", "2024-05-22T19:05:00", "-"],
        Some(syslog),
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        out.lines().count(),
        1,
        "only b is at or after 19:05:00:\n{out}"
    );
    assert!(out.contains(r#""task":"b""#), "{out}");
    assert!(err.is_empty(), "{err}");
    let (_, out, err) = wedge(
        &["log", "--json", "--since", "2099-01-01", "-"],
        Some(syslog),
    );
    assert!(out.is_empty() && err.is_empty(), "{out}{err}");
    // Classic syslog names no year; a pasted report has no stamp at all.
    let yearless =
        b"May 22 19:04:47 host kernel: INFO: task a:1 blocked for more than 120 seconds.\n\
                     INFO: task c:3 blocked for more than 120 seconds.\n";
    let (_, out, err) = wedge(&["log", "--since", "2024-01-01", "-"], Some(yearless));
    assert!(out.starts_with("0 event(s)"), "{out}");
    assert!(
        err.contains("cannot apply to 2 event(s)")
            && err.contains("1 carry a date without a year")
            && err.contains("1 carry no time stamp"),
        "{err}"
    );
}

/// The live log's since-boot stamps map onto dates exactly (btime of
/// /proc/stat): a date before this boot keeps every event, one far ahead
/// keeps none, and neither needs a warning.
#[test]
fn since_a_date_on_the_live_log_uses_the_boot_time() {
    if std::fs::File::open("/dev/kmsg").is_err() {
        let msg = "/dev/kmsg is not readable (needs root)";
        if std::env::var_os("WEDGE_REQUIRE_ALL").is_some() || std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        println!("SKIPPED: {msg}");
        return;
    }
    let (_, all, _) = wedge(&["log", "--json"], None);
    let (_, before, err) = wedge(&["log", "--json", "--since", "1970-01-02"], None);
    assert!(!err.contains("cannot apply"), "{err}");
    // The ring buffer moves between the two reads: compare emptiness only.
    if !all.is_empty() {
        assert!(!before.is_empty(), "a date before this boot dropped events");
    }
    let (_, ahead, err) = wedge(&["log", "--json", "--since", "2099-01-01"], None);
    assert!(ahead.is_empty(), "{ahead}");
    assert!(!err.contains("cannot apply"), "{err}");
}

/// Scratch files of these tests live under cargo's target dir and go away
/// with their guard even when the test panics (they used to stay in
/// /tmp/wedge-logtest-PID after every run).
#[test]
fn scratch_dirs_leave_nothing_behind() {
    let kept = std::panic::catch_unwind(|| {
        let dir = common::scratch("logtest");
        std::fs::write(dir.path().join("h.log"), b"x").unwrap();
        let p = dir.path().to_path_buf();
        // Under cargo's target dir, not loose in /tmp (the checkout itself
        // may be in /tmp: a clone made with mktemp -d).
        assert!(
            p.starts_with(env!("CARGO_TARGET_TMPDIR")) && p.parent() != Some(&std::env::temp_dir()),
            "{}",
            p.display()
        );
        std::panic::panic_any(p);
    });
    let p = kept
        .expect_err("the closure panics")
        .downcast::<PathBuf>()
        .expect("the panic carries the path");
    assert!(!p.exists(), "{} left behind after a panic", p.display());
}

/// Every event of every corpus log, as `wedge log --json` prints it, matches
/// `docs/schema/log-event.json`; and every schema file is itself a valid
/// draft 2020-12 schema, named in `docs/json-schema.md`.
#[test]
fn corpus_events_match_the_json_schema() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/json-schema.md"
    ))
    .expect("docs/json-schema.md");
    for entry in std::fs::read_dir(common::SCHEMA_DIR).expect("docs/schema") {
        let name = entry.expect("docs/schema entry").file_name();
        let name = name.to_string_lossy();
        common::schema(&name);
        assert!(
            doc.contains(&format!("schema/{name}")),
            "docs/json-schema.md does not describe docs/schema/{name}"
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/kernel-logs");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus/kernel-logs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() > 50, "{} corpus logs", logs.len());
    let mut args = vec!["log", "--json"];
    let names: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let (code, out, err) = wedge(&args, None);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
    let mut kinds = std::collections::BTreeSet::new();
    for (i, line) in out.lines().enumerate() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        if let Err(e) = common::conforms("log-event.json", &format!("event {}", i + 1), &event) {
            panic!("{e}\n{line}");
        }
        kinds.insert(event["kind"].as_str().unwrap_or("").to_string());
    }
    assert!(kinds.len() > 20, "only kinds {kinds:?}");
}
