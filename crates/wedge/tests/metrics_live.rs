//! Issue 16: wedge in a fleet's tools, checked with the real tools.
//!
//! - a real Prometheus (Debian's package, unpacked under target/ by
//!   scripts/prometheus.sh) scrapes `wedge serve` every second during a
//!   real FUSE scene (a killed reader the kit's daemon never answers): its
//!   query API returns the wedged series with the finding's id and the
//!   reader's pid, and the series goes once the scene ends;
//! - `promtool check metrics` on `wedge metrics`, `promtool test rules` on
//!   deploy/prometheus;
//! - `wedge check` (node-problem-detector's plugin) on the scene and after;
//! - the number of series a node without a scene exports;
//! - `wedge metrics --textfile` replaces its file whole.
//!
//! Other people's scenes run on this machine at the same time: assertions
//! are about the scene's own pids, never about the whole machine.

mod common;

use common::{check, run, scratch, wedge, Opts};
use libtest_mimic::{Arguments, Failed, Trial};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wedge_testkit::{setup_or_skip, skip_or_fail, FuseDaemon, FuseReader};

type R = Result<(), Failed>;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Prometheus's binaries as scripts/prometheus.sh leaves them (or
/// $WEDGE_PROMETHEUS_DIR/usr/bin).
fn prometheus_bin(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("WEDGE_PROMETHEUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("../prometheus/root")
                .to_path_buf()
        });
    let p = dir.join("usr/bin").join(name);
    if p.is_file() {
        Some(p)
    } else {
        skip_or_fail(&format!(
            "{} is missing: run scripts/prometheus.sh (Debian's prometheus, unpacked)",
            p.display()
        ));
        None
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16, Failed> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(l.local_addr().map_err(|e| format!("{e}"))?.port())
}

/// One HTTP/1.0 GET, bounded: (status, body).
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!(":{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status in {buf:?}"))?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query.
fn query(port: u16, q: &str) -> Result<Vec<serde_json::Value>, String> {
    let (code, body) = http_get(port, &format!("/api/v1/query?query={}", urlencode(q)))?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("query {q}: {e}: {body}"))?;
    if code != 200 || v["status"] != "success" {
        return Err(format!("query {q}: {code} {body}"));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Polls `cond` until it holds or `limit` passes.
fn until(limit: Duration, mut cond: impl FnMut() -> Result<bool, String>) -> Result<bool, String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(false)
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(name: &'static str, cmd: &mut Command) -> Result<Killed, Failed> {
    let c = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Killed(c))
}

/// `wedge serve` on a free port until its guard drops, or until
/// [`stop_serve`] asks it to stop.
fn serve(extra: &[&str]) -> Result<(Killed, u16), Failed> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wedge"));
    cmd.args(["serve", "--listen", &listen]).args(extra);
    let child = spawn("wedge serve", &mut cmd)?;
    let up = until(Duration::from_secs(20), || {
        Ok(TcpStream::connect(("127.0.0.1", port)).is_ok())
    })?;
    check(up, || format!("wedge serve never listened on {listen}"))?;
    Ok((child, port))
}

/// SIGTERM, as systemd and the kubelet stop it: a clean exit 0.
fn stop_serve(mut s: Killed) -> R {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(s.0.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        match s.0.try_wait() {
            Ok(Some(st)) => return check(st.code() == Some(0), || format!("serve exited {st}")),
            Ok(None) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(None) => return Err("wedge serve did not stop on SIGTERM".into()),
            Err(e) => return Err(format!("wait: {e}").into()),
        }
    }
}

/// Prometheus scrapes `wedge serve --top 5` every second during the scene:
/// the killed reader's series appears with `id="fuse.unanswered"` and its
/// pid, `wedge_findings` counts the critical finding, and the series goes
/// when the scene ends.
fn prometheus_scrapes_the_scene() -> R {
    if !is_root() {
        skip_or_fail("a FUSE scene and BPF need root");
        return Ok(());
    }
    let Some(prom) = prometheus_bin("prometheus") else {
        return Ok(());
    };
    let (srv, port) = serve(&["--top", "5"])?;
    // 404 for anything but GET /metrics.
    let (code, _) = http_get(port, "/")?;
    check(code == 404, || format!("GET / gave {code}"))?;
    let (code, body) = http_get(port, "/metrics")?;
    check(code == 200 && body.contains("wedge_tasks"), || {
        format!("GET /metrics gave {code}: {body}")
    })?;

    let tmp = scratch("prom");
    let conf = tmp.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: wedge\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let pport = free_port()?;
    let mut cmd = Command::new(&prom);
    cmd.arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .current_dir(tmp.path());
    let _prom = spawn("prometheus", &mut cmd)?;
    let up = until(Duration::from_secs(60), || {
        Ok(query(pport, "up{job=\"wedge\"} == 1").is_ok_and(|r| !r.is_empty()))
    })?;
    check(up, || "Prometheus never scraped wedge serve".into())?;

    let fs = setup_or_skip!(FuseDaemon::start());
    let reader = setup_or_skip!(FuseReader::start(&fs));
    reader.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
    let pid = reader.pid;
    let q = format!("wedge_wedged_process_blocked_seconds{{pid=\"{pid}\"}}");
    let mut seen = Vec::new();
    let found = until(Duration::from_secs(60), || {
        seen = query(pport, &q)?;
        Ok(!seen.is_empty())
    })?;
    check(found, || format!("Prometheus has no {q}"))?;
    let m = &seen[0]["metric"];
    check(
        m["id"] == "fuse.unanswered" && m["comm"] == "wk-reader" && m["job"] == "wedge",
        || format!("{q}: {m}"),
    )?;
    let wedged = query(
        pport,
        "wedge_findings{id=\"fuse.unanswered\",severity=\"critical\"} >= 1",
    )?;
    check(!wedged.is_empty(), || {
        "no critical fuse.unanswered in wedge_findings".into()
    })?;
    let fuse = query(pport, "wedge_blocked_tasks{cause=\"fuse\"} >= 1")?;
    check(!fuse.is_empty(), || {
        "wedge_blocked_tasks{cause=\"fuse\"} is 0".into()
    })?;

    drop(reader);
    drop(fs);
    // Once a scrape lacks the series, Prometheus marks it stale and an
    // instant query no longer returns it.
    let gone = until(Duration::from_secs(60), || Ok(query(pport, &q)?.is_empty()))?;
    check(gone, || format!("{q} stayed after the scene ended"))?;
    stop_serve(srv)
}

/// `promtool check metrics` finds nothing to say about `wedge metrics
/// --top 20`, and the deploy rules pass their unit tests.
fn promtool_checks() -> R {
    let Some(promtool) = prometheus_bin("promtool") else {
        return Ok(());
    };
    let m = wedge(&["metrics", "--top", "20"]);
    check(m.code == Some(0), || format!("wedge metrics: {}", m.stderr))?;
    let mut c = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", promtool.display()))?;
    if let Some(mut i) = c.stdin.take() {
        i.write_all(m.stdout.as_bytes())
            .map_err(|e| format!("promtool stdin: {e}"))?;
    }
    let out = c.wait_with_output().map_err(|e| format!("promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    check(out.status.success() && said.trim().is_empty(), || {
        format!("promtool check metrics: {said}\n{}", m.stdout)
    })?;
    let rules = Path::new(ROOT).join("deploy/prometheus");
    let out = Command::new(&promtool)
        .args(["test", "rules", "wedge-rules.test.yml"])
        .current_dir(&rules)
        .output()
        .map_err(|e| format!("promtool: {e}"))?;
    check(out.status.success(), || {
        format!(
            "promtool test rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `wedge check` on the scene: exit 1, one line of at most 80 characters;
/// when it is about the scene's reader it names the daemon. After the
/// scene, the line never names the scene's (gone) pids.
fn npd_check() -> R {
    if !is_root() {
        skip_or_fail("a FUSE scene needs root");
        return Ok(());
    }
    let fs = setup_or_skip!(FuseDaemon::start());
    let reader = setup_or_skip!(FuseReader::start(&fs));
    reader.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
    let (pid, daemon) = (reader.pid, fs.daemon_pid());
    let c = wedge(&["check"]);
    let line = c.stdout.trim_end_matches('\n');
    check(c.code == Some(1), || {
        format!("exit {:?}: {line} {}", c.code, c.stderr)
    })?;
    check(!line.contains('\n') && line.chars().count() <= 80, || {
        format!("not one line of <= 80 chars: {line:?}")
    })?;
    if line.contains(&format!("(pid {pid})")) {
        check(line.contains(&format!("wk-fused {daemon}")), || {
            format!("the line does not name the FUSE daemon {daemon}: {line}")
        })?;
    } else {
        // Another wedge on this shared machine ranks first: the line is
        // about it. Still one line, still exit 1.
        println!("note: wedge check named another wedge first: {line}");
    }
    drop(reader);
    drop(fs);
    let c = wedge(&["check"]);
    let line = c.stdout.trim_end_matches('\n');
    check(matches!(c.code, Some(0 | 1)), || {
        format!("exit {:?}: {line} {}", c.code, c.stderr)
    })?;
    check(
        !line.contains(&format!("pid {pid})")) && !line.contains(&format!(" {daemon} ")),
        || format!("after the scene the line still names it: {line}"),
    )
}

/// A node without a scene of ours exports a bounded number of series (no
/// pids by default); `--top` adds at most 20.
fn bounded_series() -> R {
    let count = |args: &[&str]| -> Result<usize, Failed> {
        let m = wedge(args);
        check(m.code == Some(0), || format!("{args:?}: {}", m.stderr))?;
        Ok(m.stdout
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count())
    };
    let plain = count(&["metrics"])?;
    let top = count(&["metrics", "--top", "20"])?;
    println!("series: {plain} (with --top 20: {top})");
    check(plain < 1000, || format!("{plain} series"))?;
    check(top <= plain + 21, || {
        format!("--top 20 added {}", top - plain)
    })?;
    let bad = wedge(&["metrics", "--top", "21"]);
    check(bad.code == Some(2), || {
        format!("--top 21 accepted: {}", bad.stdout)
    })
}

/// `--textfile` replaces the file whole: the new file, complete, mode
/// 0644, and nothing else in the directory.
fn textfile_atomic() -> R {
    use std::os::unix::fs::PermissionsExt;
    let tmp = scratch("textfile");
    let path = tmp.path().join("wedge.prom");
    std::fs::write(&path, "old\n").map_err(|e| format!("{e}"))?;
    let p = path.to_string_lossy().to_string();
    let r = run(&["metrics", "--textfile", &p], Opts::default());
    check(r.code == Some(0) && r.stdout.is_empty(), || {
        format!("exit {:?}: {} {}", r.code, r.stdout, r.stderr)
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{p}: {e}"))?;
    check(
        text.starts_with("# HELP") && text.contains("wedge_bpf_used") && text.ends_with('\n'),
        || format!("{p} is not the whole exposition: {text}"),
    )?;
    let mode = std::fs::metadata(&path)
        .map_err(|e| format!("{e}"))?
        .permissions()
        .mode()
        & 0o777;
    check(mode == 0o644, || format!("{p}: mode {mode:o}"))?;
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .map_err(|e| format!("{e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    check(names == ["wedge.prom"], || {
        format!("left behind: {names:?}")
    })?;
    let bad = run(
        &["metrics", "--textfile", "/nonexistent-dir/wedge.prom"],
        Opts::default(),
    );
    check(
        bad.code == Some(2) && bad.stderr.contains("/nonexistent-dir/wedge.prom"),
        || format!("exit {:?}: {}", bad.code, bad.stderr),
    )
}

/// The recorder serves the same metrics from its own samples
/// (`wedge record --listen`): no scan per scrape. A scene's wedged series
/// appears within a few samples, with the reader's pid under `--top`.
fn recorder_serves_metrics() -> R {
    if !is_root() {
        skip_or_fail("wedge record needs root (BPF, /dev/kmsg)");
        return Ok(());
    }
    let tmp = scratch("recmetrics");
    let db = tmp.path().join("history.db");
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut rec = Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args([
            "record",
            "--interval",
            "0.5",
            "--top",
            "3",
            "--listen",
            &listen,
            "--db",
        ])
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("wedge record: {e}"))?;
    let result = (|| -> R {
        let fs = setup_or_skip!(FuseDaemon::start());
        let reader = setup_or_skip!(FuseReader::start(&fs));
        reader.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
        let want = r#"wedge_findings{id="fuse.unanswered",severity="critical"}"#;
        let pid_label = format!(r#"pid="{}""#, reader.pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok((200, body)) = http_get(port, "/metrics") {
                if body.contains(want) && body.contains(&pid_label) {
                    return Ok(());
                }
                last = body;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!("the recorder's /metrics never showed {want} with {pid_label}:\n{last}").into())
    })();
    // SAFETY: kill(2) of our own child, not yet reaped.
    unsafe { libc::kill(rec.id() as i32, libc::SIGTERM) };
    let stopped = wedge_testkit::wait_until(Duration::from_secs(10), || {
        matches!(rec.try_wait(), Ok(Some(_)))
    });
    if !stopped {
        let _ = rec.kill();
    }
    let status = rec.wait().map_err(|e| e.to_string())?;
    result?;
    check(status.code() == Some(0), || {
        format!("wedge record on SIGTERM: {status:?}")
    })
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("prometheus_scrapes_the_scene", prometheus_scrapes_the_scene),
        Trial::test("promtool_checks", promtool_checks),
        Trial::test("npd_check", npd_check),
        Trial::test("bounded_series", bounded_series),
        Trial::test("textfile_atomic", textfile_atomic),
        Trial::test("recorder_serves_metrics", recorder_serves_metrics),
    ];
    libtest_mimic::run(&args, tests).exit();
}
