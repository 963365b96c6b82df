//! `wedge log` on files: the corpus's real excerpts, compressed copies of
//! them, standard input, filters, and damaged input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/kernel-logs");

fn wedge(args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wedge");
    let mut input = c.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    let out = c.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    // Binary garbage: no events, exit 0.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (code, out, err) = wedge(&["log", "-"], Some(&garbage));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
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

/// Scratch files of these tests live under cargo's target dir and go away
/// with their guard even when the test panics (they used to stay in
/// /tmp/wedge-logtest-PID after every run).
#[test]
fn scratch_dirs_leave_nothing_behind() {
    let kept = std::panic::catch_unwind(|| {
        let dir = common::scratch("logtest");
        std::fs::write(dir.path().join("h.log"), b"x").unwrap();
        let p = dir.path().to_path_buf();
        assert!(!p.starts_with(std::env::temp_dir()), "{}", p.display());
        std::panic::panic_any(p);
    });
    let p = kept
        .expect_err("the closure panics")
        .downcast::<PathBuf>()
        .expect("the panic carries the path");
    assert!(!p.exists(), "{} left behind after a panic", p.display());
}
