//! `wedge core` against cores the kernel makes of small C and Rust programs
//! compiled here: abort, a NULL write, a stack overflow, threads stopped in
//! different functions, abort() as PID 1 of a pid namespace, compressed,
//! truncated, with a binary missing or replaced. Backtraces are compared
//! frame by frame with gdb's on the same core.
//!
//! Cores are made by the kernel, not gdb: `/proc/sys/kernel/core_pattern`
//! is system-wide, so it is pointed at a scratch directory under a lock (a
//! mutex in this process, flock(2) on core_pattern itself across processes
//! and checkouts), saved to a file first and restored by a guard, even on
//! panic; a run killed in between is repaired by the next one, which finds
//! the saved file. The programs and cores live under cargo's
//! `CARGO_TARGET_TMPDIR`, removed when the run ends.
//!
//! Needs root (core_pattern, unshare), gcc, rustc and gdb; what is missing
//! makes a test print `SKIPPED: reason`, or fail under WEDGE_REQUIRE_ALL.

mod common;

use common::{check, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type R = Result<(), Failed>;

const PATTERN: &str = "/proc/sys/kernel/core_pattern";
const MARK: &str = "wedge-core-test";
/// Exists only while a run has core_pattern pointed at its scratch dir: in
/// /tmp, not a target dir, so a run from any checkout repairs a killed one.
const SAVED: &str = "/tmp/wedge-core-test.saved-core-pattern";
/// The kernel truncates core_pattern to CORENAME_MAX_SIZE (128) bytes.
const CORE_PATTERN_MAX: usize = 127;

macro_rules! skip {
    ($($t:tt)*) => {{
        wedge_testkit::skip_or_fail(&format!($($t)*));
        return Ok(());
    }};
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------- fixtures

const ABORT_C: &str = r#"
#include <stdlib.h>
#include <stdio.h>
__attribute__((noinline)) static void inner(int x) { if (x) abort(); }
__attribute__((noinline)) void middle(int x) { inner(x); printf("unreached\n"); }
int main(int argc, char **argv) { (void)argv; middle(argc); return 0; }
"#;

const NULL_C: &str = r#"
__attribute__((noinline)) void poke(int *p) { *p = 42; }
__attribute__((noinline)) void outer(int *p) { poke(p); }
int main(void) { outer((int *)0); return 0; }
"#;

const RECURSE_C: &str = r#"
__attribute__((noinline)) int recurse(int n) {
    volatile char buf[200];
    buf[0] = (char)n;
    return recurse(n + 1) + buf[0];
}
int main(void) { return recurse(0); }
"#;

const THREADS_C: &str = r#"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static pthread_barrier_t ready;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int fds[2];
static volatile int stop;
__attribute__((noinline)) static void *t_sleep(void *a) { pthread_barrier_wait(&ready); for (;;) sleep(100); return a; }
__attribute__((noinline)) static void *t_wait(void *a) {
    pthread_mutex_lock(&mu); pthread_barrier_wait(&ready);
    for (;;) pthread_cond_wait(&cv, &mu); return a; }
__attribute__((noinline)) static void *t_read(void *a) { char c; pthread_barrier_wait(&ready); for (;;) read(fds[0], &c, 1); return a; }
__attribute__((noinline)) static void spin_forever(void) { while (!stop) { } }
__attribute__((noinline)) static void *t_spin(void *a) { pthread_barrier_wait(&ready); spin_forever(); return a; }
__attribute__((noinline)) static void fatal(void) { abort(); }
int main(void) {
    pthread_t t[4];
    if (pipe(fds)) return 1;
    pthread_barrier_init(&ready, 0, 5);
    pthread_create(&t[0], 0, t_sleep, 0);
    pthread_create(&t[1], 0, t_wait, 0);
    pthread_create(&t[2], 0, t_read, 0);
    pthread_create(&t[3], 0, t_spin, 0);
    pthread_barrier_wait(&ready);
    usleep(200 * 1000);
    fatal();
    return 0;
}
"#;

/// C functions whose names are also C++ type encodings (`t` is `unsigned
/// short`, `PKc` is `char const*`), and, at -O2, a function gcc splits into
/// hot and cold parts, which DWARF describes by address ranges.
const NAMES_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) void PKc(int x) { if (x > 0) abort(); }
__attribute__((noinline)) void Ss(int x) { PKc(x); printf(".\n"); }
__attribute__((noinline)) void v(int x) { Ss(x); printf(".\n"); }
__attribute__((noinline)) void i(int x) { v(x); printf(".\n"); }
__attribute__((noinline)) void t(int x) { i(x); printf(".\n"); }
__attribute__((noinline, cold)) void rare(int x) { fprintf(stderr, "rare %d\n", x); }
__attribute__((noinline)) int split(int x) {
    if (x > 1000) {
        rare(x);
        fprintf(stderr, "unlikely %d\n", x);
        fprintf(stderr, "more %d %d\n", x, x * 3);
        x = x * 7 + 1;
    }
    t(x);
    return x + 1;
}
int main(int argc, char **argv) { (void)argv; return split(argc); }
"#;

const RUST_RS: &str = r#"
#[inline(never)]
fn inner(x: usize) { if x > 0 { std::process::abort(); } }
#[inline(never)]
fn middle(x: usize) { inner(x); println!("unreached"); }
fn main() { middle(std::env::args().count()); }
"#;

/// A compiled program and the kernel's core of it.
#[derive(Clone)]
struct Crash {
    exe: PathBuf,
    core: PathBuf,
}

struct Fixtures {
    dir: PathBuf,
    /// name → crash, or why it could not be made.
    crashes: Mutex<HashMap<&'static str, Result<Crash, String>>>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        // The core_pattern naming this dir must fit the kernel's limit; a
        // deep CARGO_TARGET_DIR falls back to /tmp (removed all the same).
        let mut dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{MARK}-{}", std::process::id()));
        if dir.join("cores/%e.%P.core").as_os_str().len() > CORE_PATTERN_MAX {
            dir = std::env::temp_dir().join(format!("{MARK}-{}", std::process::id()));
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Fixtures {
            dir,
            crashes: Mutex::new(HashMap::new()),
        }
    })
}

/// Points core_pattern at a directory while alive; restores it on drop.
struct PatternGuard {
    original: String,
    _lock: std::fs::File,
}

impl PatternGuard {
    fn set(dir: &Path) -> Result<PatternGuard, String> {
        if !is_root() {
            return Err("making kernel cores needs root (core_pattern)".into());
        }
        // The lock is on the sysctl file itself: flock(2) locks the inode,
        // and while this fd pins the dentry every other open of the path
        // gets the same inode, so every test process on the machine
        // (whatever its checkout or target dir) serialises on it, and no
        // lock file is left behind.
        let lock = std::fs::File::open(PATTERN).map_err(|e| format!("{PATTERN}: {e}"))?;
        // SAFETY: flock on an fd we own; blocks until other test processes
        // are done with core_pattern.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        let mut current =
            std::fs::read_to_string(PATTERN).map_err(|e| format!("{PATTERN}: {e}"))?;
        if current.contains(MARK) {
            // A previous run died with the pattern set: put back what it
            // had saved.
            if let Ok(saved) = std::fs::read_to_string(SAVED) {
                current = saved;
            }
        }
        std::fs::write(SAVED, &current).map_err(|e| format!("{SAVED}: {e}"))?;
        let pattern = format!("{}/%e.%P.core", dir.display());
        std::fs::write(PATTERN, &pattern)
            .map_err(|e| format!("cannot set {PATTERN} (read-only /proc/sys?): {e}"))?;
        Ok(PatternGuard {
            original: current,
            _lock: lock,
        })
    }
}

impl Drop for PatternGuard {
    fn drop(&mut self) {
        let _ = std::fs::write(PATTERN, self.original.trim_end());
        let _ = std::fs::remove_file(SAVED);
    }
}

static PATTERN_MUTEX: Mutex<()> = Mutex::new(());

fn compile_c(name: &str, src: &str, dir: &Path, extra: &[&str]) -> Result<PathBuf, String> {
    if !have("gcc") {
        return Err("gcc is not installed".into());
    }
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).map_err(|e| e.to_string())?;
    let exe = dir.join(name);
    let out = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&exe)
        .arg(&c)
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("gcc: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(exe)
}

fn compile_rust(name: &str, src: &str, dir: &Path) -> Result<PathBuf, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rs = dir.join(format!("{name}.rs"));
    std::fs::write(&rs, src).map_err(|e| e.to_string())?;
    let exe = dir.join(name);
    let out = Command::new(&rustc)
        .args(["-g", "-C", "opt-level=0", "-C", "panic=abort", "-o"])
        .arg(&exe)
        .arg(&rs)
        .output()
        .map_err(|e| format!("{rustc}: {e}"))?;
    if !out.status.success() {
        return Err(format!("rustc: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(exe)
}

/// Runs `cmd` with RLIMIT_CORE unlimited and returns the core the kernel
/// wrote for the process whose comm starts with `comm`.
fn dump(mut cmd: Command, comm: &str, dir: &Path) -> Result<PathBuf, String> {
    let _m = PATTERN_MUTEX.lock().unwrap_or_else(|e| e.into_inner());
    let cores = dir.join("cores");
    std::fs::create_dir_all(&cores).map_err(|e| e.to_string())?;
    let guard = PatternGuard::set(&cores)?;
    // SAFETY: setrlimit between fork and exec touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &r);
            Ok(())
        });
    }
    let out = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    // The core is complete when the process has been reaped: the kernel
    // writes it before the task exits.
    drop(guard);
    let _ = out;
    let prefix = format!("{}.", &comm[..comm.len().min(15)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = std::fs::read_dir(&cores)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".core"))
            });
        if let Some(p) = found {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no core from {comm} in {} (is core dumping disabled, e.g. suid_dumpable or a container without core_pattern access?)",
                cores.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn crash(name: &'static str) -> Result<Crash, String> {
    let f = fixtures();
    // Held while making: tests sharing a fixture wait for one build.
    let mut crashes = f.crashes.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = crashes.get(name) {
        return c.clone();
    }
    let made = make(name, &f.dir);
    crashes.insert(name, made.clone());
    made
}

fn make(name: &'static str, dir: &Path) -> Result<Crash, String> {
    let (exe, cmd) = match name {
        "wc-abort" => {
            let exe = compile_c(name, ABORT_C, dir, &[])?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-null" => {
            let exe = compile_c(name, NULL_C, dir, &[])?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-recurse" => {
            let exe = compile_c(name, RECURSE_C, dir, &[])?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-threads" => {
            let exe = compile_c(name, THREADS_C, dir, &[])?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-nsinit" => {
            let exe = compile_c(name, ABORT_C, dir, &[])?;
            if !have("unshare") {
                return Err("unshare (util-linux) is not installed".into());
            }
            let mut c = Command::new("unshare");
            c.args(["--fork", "--pid", "--mount-proc"]).arg(&exe);
            (exe, c)
        }
        "wc-names" => {
            let exe = compile_c(name, NAMES_C, dir, &["-O2"])?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-rust" => {
            let exe = compile_rust(name, RUST_RS, dir)?;
            (exe.clone(), Command::new(&exe))
        }
        "wc-missing" | "wc-replaced" => {
            // Own copies: these tests remove or rebuild the binary.
            let sub = dir.join(name);
            std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
            let exe = compile_c(name, ABORT_C, &sub, &[])?;
            (exe.clone(), Command::new(&exe))
        }
        other => return Err(format!("no fixture {other}")),
    };
    let core = dump(cmd, name, dir)?;
    Ok(Crash { exe, core })
}

macro_rules! crash_or_skip {
    ($name:expr) => {
        match crash($name) {
            Ok(c) => c,
            Err(reason) => skip!("{}: {reason}", $name),
        }
    };
}

// ------------------------------------------------------------ gdb compare

#[derive(Debug, Clone)]
struct GdbFrame {
    address: Option<u64>,
    function: Option<String>,
}

/// `thread apply all bt` of gdb, by LWP.
fn gdb_backtraces(
    exe: &Path,
    core: &Path,
    depth: Option<usize>,
) -> Result<HashMap<i64, Vec<GdbFrame>>, String> {
    if !have("gdb") {
        return Err("gdb is not installed".into());
    }
    let bt = match depth {
        Some(n) => format!("thread apply all bt {n}"),
        None => "thread apply all bt".into(),
    };
    let out = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "set width 0",
            "-ex",
            "set debuginfod enabled off",
            "-ex",
            &bt,
        ])
        .arg(exe)
        .arg(core)
        .output()
        .map_err(|e| format!("gdb: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map: HashMap<i64, Vec<GdbFrame>> = HashMap::new();
    let mut cur: Option<i64> = None;
    for line in text.lines() {
        if line.starts_with("Thread ") {
            cur = line
                .split("LWP ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse().ok());
            if let Some(t) = cur {
                map.entry(t).or_default();
            }
            continue;
        }
        let Some(t) = cur else { continue };
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let rest = rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let (address, rest) = match rest.strip_prefix("0x") {
            Some(r) => {
                let hex: String = r.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                let after = r[hex.len()..]
                    .trim_start()
                    .strip_prefix("in ")
                    .unwrap_or("");
                (u64::from_str_radix(&hex, 16).ok(), after)
            }
            None => (None, rest),
        };
        let name = rest.split(" (").next().unwrap_or("").trim().to_string();
        map.entry(t).or_default().push(GdbFrame {
            address,
            function: (!name.is_empty() && name != "??").then_some(name),
        });
    }
    if map.is_empty() {
        return Err(format!(
            "gdb printed no threads:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(map)
}

/// Names compared without parameters, a Rust hash, or glibc's internal
/// `__GI_` alias prefix.
fn norm(name: &str) -> String {
    let mut n = name.split('(').next().unwrap_or(name).trim().to_string();
    if let Some(i) = n.rfind("::h") {
        if n[i + 3..].len() == 16 && n[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) {
            n.truncate(i);
        }
    }
    n.trim_start_matches("__GI_").to_string()
}

/// Every frame gdb symbolizes must be in wedge's backtrace, at the same
/// address, with the same function, in the same order. gdb may show frames
/// wedge does not: "tail call frames" it reconstructs from DW_TAG_call_site
/// (glibc's `__pthread_kill_internal`, reached by a jmp); those are allowed
/// only when their name is a glibc-internal `__` name, and counted.
fn compare_thread(tid: i64, ours: &[Value], gdb: &[GdbFrame], pc: u64) -> Result<usize, String> {
    let ours: Vec<(u64, String)> = ours
        .iter()
        .map(|f| {
            (
                f["address"].as_u64().unwrap_or(0),
                f["function"].as_str().map(norm).unwrap_or_default(),
            )
        })
        .collect();
    let mut j = 0usize;
    let mut compared = 0;
    for (k, g) in gdb.iter().enumerate() {
        let addr = g.address.unwrap_or(if k == 0 { pc } else { 0 });
        let Some(gname) = g.function.as_deref().map(norm) else {
            // gdb could not name it: still advance past our frame there.
            if let Some(p) = ours[j..].iter().position(|(a, _)| *a == addr) {
                j += p + 1;
            }
            continue;
        };
        match ours[j..].iter().position(|(a, n)| *a == addr && *n == gname) {
            Some(p) if p <= 2 => {
                j += p + 1;
                compared += 1;
            }
            _ if gname.starts_with("__") && !ours.iter().any(|(a, _)| *a == addr) => {
                // A gdb tail-call frame; see above.
            }
            _ => {
                return Err(format!(
                    "thread {tid}: gdb frame #{k} {gname} at {addr:#x} not matched; wedge has from #{j}: {:?}\ngdb: {gdb:?}",
                    &ours[j.min(ours.len())..(j + 4).min(ours.len())]
                ))
            }
        }
    }
    Ok(compared)
}

fn compare_with_gdb(c: &Crash, report: &Value, depth: Option<usize>) -> R {
    let gdb = match gdb_backtraces(&c.exe, &c.core, depth) {
        Ok(g) => g,
        Err(e) if e.contains("not installed") => skip!("{e}"),
        Err(e) => return Err(e.into()),
    };
    let threads = report["threads"].as_array().ok_or("no threads")?;
    check(threads.len() == gdb.len(), || {
        format!("wedge sees {} threads, gdb {}", threads.len(), gdb.len())
    })?;
    let mut total = 0;
    for t in threads {
        let tid = t["tid"].as_i64().unwrap_or(0);
        let g = gdb
            .get(&tid)
            .ok_or_else(|| format!("gdb has no thread {tid}"))?;
        let pc = t["registers"]["pc"].as_u64().unwrap_or(0);
        let frames = t["frames"].as_array().cloned().unwrap_or_default();
        total += compare_thread(tid, &frames, g, pc)?;
    }
    check(total > 0, || "gdb symbolized no frame at all".into())
}

fn core_json(c: &Crash, extra: &[&str]) -> Result<Value, Failed> {
    let mut args = vec!["--json", "core"];
    let core = c.core.display().to_string();
    args.push(&core);
    args.extend_from_slice(extra);
    let run = wedge(&args);
    check(run.code == Some(0), || {
        format!("exit {:?}: {}\n{}", run.code, run.stderr, run.stdout)
    })?;
    // Every core report a test reads is also checked against its schema.
    let report = run.json();
    common::conforms("core.json", &format!("wedge {}", args.join(" ")), &report)?;
    Ok(report)
}

fn functions(t: &Value) -> Vec<String> {
    t["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str().map(str::to_string))
        .collect()
}

fn story(r: &Value) -> String {
    r["story"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

// ------------------------------------------------------------------ tests

fn abort_c() -> R {
    let c = crash_or_skip!("wc-abort");
    let r = core_json(&c, &[])?;
    check(r["signal"]["name"] == "SIGABRT", || {
        format!("{}", r["signal"])
    })?;
    check(r["signal"]["code_name"] == "SI_TKILL", || {
        format!("{}", r["signal"])
    })?;
    let f = functions(&r["threads"][0]);
    for want in ["inner", "middle", "main"] {
        check(f.iter().any(|n| n == want), || {
            format!("no {want} in {f:?}")
        })?;
    }
    let s = story(&r);
    check(
        s.contains("called abort()") && s.contains("in inner →"),
        || s.clone(),
    )?;
    check(r["threads"][0]["crashed"] == true, || {
        "thread 0 not crashed".into()
    })?;
    // Text: one line per frame in the documented shape.
    let text = wedge(&["core", &c.core.display().to_string()]);
    check(text.code == Some(0), || text.stderr.clone())?;
    check(
        text.stdout.lines().any(|l| {
            l.trim_start().starts_with("#")
                && l.contains(" inner+0x")
                && l.contains("wc-abort.c:")
                && l.ends_with("[wc-abort]")
        }),
        || text.stdout.clone(),
    )?;
    compare_with_gdb(&c, &r, None)
}

fn null_dereference() -> R {
    let c = crash_or_skip!("wc-null");
    let r = core_json(&c, &[])?;
    check(
        r["signal"]["name"] == "SIGSEGV" && r["signal"]["code_name"] == "SEGV_MAPERR",
        || format!("{}", r["signal"]),
    )?;
    check(r["signal"]["fault_address"] == 0, || {
        format!("{}", r["signal"])
    })?;
    let t = &r["threads"][0];
    check(
        functions(t).first().map(String::as_str) == Some("poke"),
        || format!("{:?}", functions(t)),
    )?;
    check(
        t["instruction"]
            .as_str()
            .is_some_and(|i| i.starts_with("mov")),
        || format!("{}", t["instruction"]),
    )?;
    let s = story(&r);
    check(
        s.contains("NULL pointer dereference") && s.contains("in poke, called from outer"),
        || s.clone(),
    )?;
    compare_with_gdb(&c, &r, None)
}

fn deep_recursion() -> R {
    let c = crash_or_skip!("wc-recurse");
    let r = core_json(&c, &["--max-frames", "1000"])?;
    let t = &r["threads"][0];
    let f = functions(t);
    check(
        f.len() >= 1000 && f.iter().take(1000).all(|n| n == "recurse"),
        || format!("{} frames: {:?}", f.len(), &f[..f.len().min(5)]),
    )?;
    check(
        t["unwind_stopped"]
            .as_str()
            .is_some_and(|s| s.contains("1000")),
        || format!("{}", t["unwind_stopped"]),
    )?;
    let s = story(&r);
    check(
        s.contains("stack overflow") && s.contains("recursing through recurse"),
        || s.clone(),
    )?;
    // gdb's innermost 40 frames.
    let mut cut = r.clone();
    if let Some(fr) = cut["threads"][0]["frames"].as_array_mut() {
        fr.truncate(60);
    }
    compare_with_gdb(&c, &cut, Some(40))
}

fn threads_in_different_functions() -> R {
    let c = crash_or_skip!("wc-threads");
    let r = core_json(&c, &[])?;
    let threads = r["threads"].as_array().ok_or("no threads")?;
    check(threads.len() == 5, || format!("{} threads", threads.len()))?;
    check(functions(&threads[0]).iter().any(|n| n == "fatal"), || {
        format!("{:?}", functions(&threads[0]))
    })?;
    for want in ["t_sleep", "t_wait", "t_read", "spin_forever"] {
        check(
            threads[1..]
                .iter()
                .any(|t| functions(t).iter().any(|n| n == want)),
            || format!("no thread in {want}"),
        )?;
    }
    let s = story(&r);
    check(s.contains("4 other threads"), || s.clone())?;
    compare_with_gdb(&c, &r, None)
}

fn abort_as_pid1_of_a_pid_namespace() -> R {
    let c = crash_or_skip!("wc-nsinit");
    let r = core_json(&c, &[])?;
    check(r["process"]["pid"] == 1, || format!("{}", r["process"]))?;
    check(
        r["signal"]["name"] == "SIGSEGV" && r["signal"]["code_name"] == "SI_KERNEL",
        || format!("{}", r["signal"]),
    )?;
    check(r["threads"][0]["instruction"] == "hlt", || {
        format!("{}", r["threads"][0]["instruction"])
    })?;
    let s = story(&r);
    check(
        s.contains("for a `hlt` inside libc.so.6's abort()")
            && s.contains("PID 1 of its pid namespace")
            && s.contains("inner"),
        || s.clone(),
    )?;
    compare_with_gdb(&c, &r, None)
}

/// Plain C names stay as they are (they were run through the C++
/// demangler), and every offset is one into its function: never past the
/// ELF symbol's size (a hot/cold split function was given its offset from
/// the start of the file).
fn c_names_and_offsets() -> R {
    let c = crash_or_skip!("wc-names");
    let r = core_json(&c, &[])?;
    let f = functions(&r["threads"][0]);
    let want = ["PKc", "Ss", "v", "i", "t", "split"];
    for w in want {
        check(f.iter().any(|n| n == w), || format!("no {w} in {f:?}"))?;
    }
    check(
        !f.iter()
            .any(|n| n.contains("unsigned") || n.contains("std::") || n.contains("char const")),
        || format!("C names demangled as C++: {f:?}"),
    )?;
    // The sizes of the program's own functions, from its symbol table.
    let out = Command::new("readelf")
        .args(["-sW"])
        .arg(&c.exe)
        .output()
        .map_err(|e| format!("readelf: {e}"))?;
    let mut size: HashMap<String, u64> = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() == 8 && w[3] == "FUNC" {
            size.insert(w[7].to_string(), w[2].parse().unwrap_or(0));
        }
    }
    let mut checked = 0;
    for fr in r["threads"][0]["frames"].as_array().into_iter().flatten() {
        let (Some(name), Some(off)) = (fr["function"].as_str(), fr["offset"].as_u64()) else {
            continue;
        };
        if !fr["module"]
            .as_str()
            .is_some_and(|m| m.ends_with("/wc-names"))
        {
            continue;
        }
        let Some(&sz) = size.get(name) else { continue };
        check(off < sz, || {
            format!("{name}+{off:#x} is past the function's size {sz:#x}")
        })?;
        checked += 1;
    }
    check(checked >= 4, || {
        format!("only {checked} offsets checked in {f:?}")
    })
}

fn rust_abort() -> R {
    let c = crash_or_skip!("wc-rust");
    let r = core_json(&c, &[])?;
    let f = functions(&r["threads"][0]);
    for want in ["wc_rust::inner", "wc_rust::middle", "wc_rust::main"] {
        check(f.iter().any(|n| norm(n) == want), || {
            format!("no {want} in {f:?}")
        })?;
    }
    compare_with_gdb(&c, &r, None)
}

fn compressed_cores() -> R {
    let c = crash_or_skip!("wc-abort");
    let plain = core_json(&c, &[])?;
    for (tool, ext, args) in [
        ("zstd", "zst", vec!["-q", "-f", "-k"]),
        ("xz", "xz", vec!["-f", "-k"]),
        ("lz4", "lz4", vec!["-q", "-f"]),
    ] {
        if !have(tool) {
            skip!("{tool} is not installed");
        }
        let out = PathBuf::from(format!("{}.{ext}", c.core.display()));
        let mut cmd = Command::new(tool);
        cmd.args(&args).arg(&c.core);
        if tool == "lz4" {
            cmd.arg(&out);
        }
        let st = cmd.status().map_err(|e| e.to_string())?;
        check(st.success(), || format!("{tool} failed"))?;
        let run = wedge(&["--json", "core", &out.display().to_string()]);
        check(run.code == Some(0), || format!("{tool}: {}", run.stderr))?;
        let j = run.json();
        common::conforms("core.json", &format!("{tool} core"), &j)?;
        check(j["compression"].as_str().is_some(), || {
            format!("{tool}: no compression field")
        })?;
        check(
            functions(&j["threads"][0]) == functions(&plain["threads"][0]),
            || {
                format!(
                    "{tool}: {:?} vs {:?}",
                    functions(&j["threads"][0]),
                    functions(&plain["threads"][0])
                )
            },
        )?;
        // A cut-off download still yields the notes.
        let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
        let cut = PathBuf::from(format!("{}.cut.{ext}", c.core.display()));
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).map_err(|e| e.to_string())?;
        let run = wedge(&["--json", "core", &cut.display().to_string()]);
        check(run.code == Some(0) || run.code == Some(2), || {
            format!("{tool} cut: {:?}", run.code)
        })?;
    }
    Ok(())
}

fn truncated_cores() -> R {
    let c = crash_or_skip!("wc-abort");
    let bytes = std::fs::read(&c.core).map_err(|e| e.to_string())?;
    let dir = fixtures().dir.join("trunc");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // Every cut must produce a report or a clean error, never a crash.
    let step = (bytes.len() / 23).max(1);
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(step).collect();
    cuts.extend([1, 4, 17, 63, 64, 65, 200, 4096, 8192]);
    let mut saw_partial = false;
    for cut in cuts {
        let p = dir.join(format!("core.{cut}"));
        std::fs::write(&p, &bytes[..cut.min(bytes.len())]).map_err(|e| e.to_string())?;
        let run = wedge(&["--json", "core", &p.display().to_string()]);
        match run.code {
            Some(0) => {
                let j = run.json();
                common::conforms("core.json", &format!("core cut at {cut}"), &j)?;
                let missing = j["missing"].to_string();
                if j["threads"].as_array().is_some_and(|t| !t.is_empty())
                    && missing.contains("truncated")
                {
                    saw_partial = true;
                }
            }
            Some(2) => check(run.stderr.contains(&p.display().to_string()), || {
                format!("cut {cut}: error does not name the file: {}", run.stderr)
            })?,
            other => return Err(format!("cut {cut}: exit {other:?}: {}", run.stderr).into()),
        }
    }
    check(saw_partial, || {
        "no cut gave a partial report that says truncated".into()
    })
}

fn not_a_core() -> R {
    let c = crash_or_skip!("wc-abort");
    let run = wedge(&["core", &c.exe.display().to_string()]);
    check(
        run.code == Some(2) && run.stderr.contains("not a core"),
        || format!("{:?} {}", run.code, run.stderr),
    )?;
    let run = wedge(&["core", "/nonexistent/core.1"]);
    check(
        run.code == Some(2) && run.stderr.contains("/nonexistent/core.1"),
        || run.stderr.clone(),
    )?;
    let junk = fixtures().dir.join("junk");
    std::fs::write(&junk, b"hello, not an ELF file at all").map_err(|e| e.to_string())?;
    let run = wedge(&["core", &junk.display().to_string()]);
    check(
        run.code == Some(2) && run.stderr.contains("not an ELF"),
        || run.stderr.clone(),
    )?;
    // A core of another architecture (an i386 header) is named, not guessed.
    let mut h = std::fs::read(&c.core).map_err(|e| e.to_string())?;
    h[18] = 3;
    h[19] = 0;
    h[4] = 1;
    let other = fixtures().dir.join("core.i386");
    std::fs::write(&other, &h[..4096.min(h.len())]).map_err(|e| e.to_string())?;
    let run = wedge(&["core", &other.display().to_string()]);
    check(run.code == Some(2) && run.stderr.contains("i386"), || {
        run.stderr.clone()
    })
}

fn missing_binary() -> R {
    let c = crash_or_skip!("wc-missing");
    let gone = c.exe.with_extension("gone");
    std::fs::rename(&c.exe, &gone).map_err(|e| e.to_string())?;
    let r = core_json(&c, &[]);
    let _ = std::fs::rename(&gone, &c.exe);
    let r = r?;
    let missing = r["missing"].to_string();
    check(
        missing.contains("wc-missing") && missing.contains("No such file"),
        || missing.clone(),
    )?;
    let t = &r["threads"][0];
    let marked = t["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["mark"]["kind"] == "unsymbolized"
                && f["mark"]["reason"]
                    .as_str()
                    .is_some_and(|s| s.contains("missing"))
        })
        .count();
    check(marked >= 1, || {
        format!("no frame marked unsymbolized: {}", t["frames"])
    })?;
    // libc frames are still named.
    check(functions(t).iter().any(|n| n.contains("abort")), || {
        format!("{:?}", functions(t))
    })
}

fn replaced_binary() -> R {
    let c = crash_or_skip!("wc-replaced");
    // Rebuild with different code: a different build-id at the same path.
    let dir = c.exe.parent().ok_or("no dir")?.to_path_buf();
    compile_c(
        "wc-replaced",
        &format!("{ABORT_C}\nint extra(void) {{ return 7; }}\n"),
        &dir,
        &[],
    )
    .map_err(Failed::from)?;
    let r = core_json(&c, &[])?;
    let m = r["mappings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/wc-replaced"))
        })
        .cloned()
        .ok_or("no mapping of the binary")?;
    check(m["state"] == "build_id_mismatch", || format!("{m}"))?;
    let marked = r["threads"][0]["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["mark"]["kind"] == "build_id_mismatch");
    check(marked, || "no frame marked build_id_mismatch".into())?;
    let text = wedge(&["core", &c.core.display().to_string()]);
    check(text.stdout.contains("build-id mismatch"), || {
        text.stdout.clone()
    })
}

fn json_shape() -> R {
    let c = crash_or_skip!("wc-abort");
    let r = core_json(&c, &[])?;
    for key in ["threads", "mappings", "auxv", "story", "missing"] {
        check(r[key].is_array(), || format!("{key} is not an array"))?;
    }
    check(r["signal"].is_object() && r["process"].is_object(), || {
        "no signal/process".into()
    })?;
    check(r["arch"] == "x86-64" || r["arch"] == "aarch64", || {
        format!("{}", r["arch"])
    })?;
    let m = r["mappings"].as_array().ok_or("mappings")?;
    check(
        m.iter()
            .any(|m| m["build_id"].is_string() && m["state"] == "ok"),
        || format!("{m:?}"),
    )
}

/// The library call `wedge why` uses for user stacks: against a process
/// whose mmap_lock is wedged behind a FUSE wait (reads of its memory queue
/// behind a waiting mmap() writer), it gives up at its deadline instead of
/// hanging, and a process whose lock is known to be held is not touched.
fn live_backtrace_is_bounded_by_a_wedged_mmap_lock() -> R {
    let fs = wedge_testkit::setup_or_skip!(wedge_testkit::FuseDaemon::start());
    let m = wedge_testkit::setup_or_skip!(wedge_testkit::MmapLockHolder::start(&fs));
    let text = std::fs::read_to_string(format!("/proc/{}/task/{}/syscall", m.pid, m.memread_tid))
        .map_err(|e| e.to_string())?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let hex = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).unwrap_or(0);
    check(f.len() == 9, || format!("syscall file: {text}"))?;
    let t = wedge_coredump::LiveThread {
        tid: m.memread_tid,
        sp: hex(f[7]),
        pc: hex(f[8]),
    };
    let opts = wedge_coredump::LiveOptions {
        deadline: Duration::from_millis(300),
        ..Default::default()
    };
    let started = Instant::now();
    let r = wedge_coredump::live_backtraces(m.pid, &[t], &opts);
    let took = started.elapsed();
    check(took < Duration::from_millis(1500), || {
        format!("took {took:?}")
    })?;
    // The reader is killed at the deadline; whether it has left by the end
    // of the bounded reap that follows depends on where in the kernel it
    // waited (the stuck case is reported with its pid).
    check(
        matches!(
            r,
            Err(wedge_coredump::LiveError::TimedOut)
                | Err(wedge_coredump::LiveError::TimedOutReaderStuck(_))
        ),
        || format!("expected a timeout, got {r:?}"),
    )?;
    let held = wedge_coredump::LiveOptions {
        mmap_lock_held: true,
        ..Default::default()
    };
    let r = wedge_coredump::live_backtraces(m.pid, &[t], &held);
    check(
        matches!(r, Err(wedge_coredump::LiveError::MmapLockHeld)),
        || format!("{r:?}"),
    )
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("abort_c", abort_c),
        Trial::test("null_dereference", null_dereference),
        Trial::test("deep_recursion", deep_recursion),
        Trial::test(
            "threads_in_different_functions",
            threads_in_different_functions,
        ),
        Trial::test(
            "abort_as_pid1_of_a_pid_namespace",
            abort_as_pid1_of_a_pid_namespace,
        ),
        Trial::test("rust_abort", rust_abort),
        Trial::test("c_names_and_offsets", c_names_and_offsets),
        Trial::test("compressed_cores", compressed_cores),
        Trial::test("truncated_cores", truncated_cores),
        Trial::test("not_a_core", not_a_core),
        Trial::test("missing_binary", missing_binary),
        Trial::test("replaced_binary", replaced_binary),
        Trial::test("json_shape", json_shape),
        Trial::test(
            "live_backtrace_is_bounded_by_a_wedged_mmap_lock",
            live_backtrace_is_bounded_by_a_wedged_mmap_lock,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, tests);
    let _ = std::fs::remove_dir_all(&fixtures().dir);
    conclusion.exit();
}
