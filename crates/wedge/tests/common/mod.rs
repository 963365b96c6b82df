//! Running the real `wedge` binary from tests, never waiting forever on it.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of wedge did.
pub struct Run {
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Peak resident set, KiB, from wait4(2)'s rusage of the child.
    pub maxrss_kb: i64,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "wedge printed no JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Fills wedge's standard input as it reads it.
pub type Feed = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// What wedge reads on standard input.
pub enum Stdin {
    /// /dev/null: a test never lets wedge read the harness's own stdin.
    Null,
    Bytes(Vec<u8>),
    /// Written as wedge reads (a generated input larger than memory wants).
    Stream(Feed),
}

/// How to run wedge: time limit, standard input, how much output to keep.
pub struct Opts {
    /// Killed (and an error) past this.
    pub limit: Duration,
    pub stdin: Stdin,
    /// Bytes kept of stdout and of stderr; the rest is read and dropped, so a
    /// runaway output cannot eat the test's memory.
    pub keep: u64,
    /// Environment variables set for the run (HOME pointed at a scratch
    /// directory, so nothing wedge writes lands in the user's own).
    pub env: Vec<(String, std::ffi::OsString)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            limit: Duration::from_secs(30),
            stdin: Stdin::Null,
            keep: u64::MAX,
            env: Vec::new(),
        }
    }
}

impl Opts {
    pub fn within(limit: Duration) -> Self {
        Opts {
            limit,
            ..Opts::default()
        }
    }

    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Stdin::Bytes(data.to_vec());
        self
    }

    pub fn feed(
        mut self,
        f: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        self.stdin = Stdin::Stream(Box::new(f));
        self
    }

    pub fn keep(mut self, bytes: u64) -> Self {
        self.keep = bytes;
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<std::ffi::OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }
}

fn drain(mut pipe: impl Read + Send + 'static, keep: u64) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = (&mut pipe).take(keep).read_to_end(&mut v);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The one runner of the real binary: runs wedge with `args`, kills it past
/// `opts.limit`, and measures its peak RSS (wait4's rusage). An error says
/// what went wrong: a timeout, a wedge that survives SIGKILL (a thread stuck
/// in the kernel: left unreaped, the test's cleanup frees it), or output
/// pipes still open after exit (something wedge left behind holds them).
pub fn try_run(args: &[&str], opts: Opts) -> Result<Run, String> {
    // WEDGE_TEST_BIN runs the tests against another build of wedge (another
    // branch's, before it is merged); cargo's own binary otherwise.
    let bin = std::env::var_os("WEDGE_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wedge").into());
    try_run_program(&bin, args, opts)
}

/// [`try_run`] for another program (drgn, to compare wedge with): the same
/// time limit, output bounds and rusage.
pub fn try_run_program(
    program: &std::path::Path,
    args: &[&str],
    opts: Opts,
) -> Result<Run, String> {
    let started = Instant::now();
    let limit = opts.limit;
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // Reaped by wait4 below (for its rusage), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(program)
        .args(args)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(match opts.stdin {
            Stdin::Null => Stdio::null(),
            _ => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", program.display()))?;
    // Read both pipes to EOF on threads: EOF also proves that nothing wedge
    // left behind (a stuck reader process) still holds them.
    let t_out = drain(child.stdout.take().ok_or("no stdout")?, opts.keep);
    let t_err = drain(child.stderr.take().ok_or("no stderr")?, opts.keep);
    if let Some(input) = child.stdin.take() {
        // Fed on a thread of its own, never joined: a wedge that stops
        // reading (refused input, killed) ends the write with EPIPE, and
        // the exit code and output say what happened.
        let stdin = opts.stdin;
        std::thread::spawn(move || {
            let mut w = std::io::BufWriter::new(input);
            let _ = match stdin {
                Stdin::Null => Ok(()),
                Stdin::Bytes(b) => w.write_all(&b),
                Stdin::Stream(f) => f(&mut w),
            };
            let _ = w.flush();
        });
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: waits for our own child, with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        if !killed && started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        if killed && started.elapsed() > limit + Duration::from_secs(5) {
            return Err(format!(
                "{name} {args:?} did not exit within {limit:?} and survives SIGKILL (a thread of {name} is stuck in the kernel)"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    if killed {
        return Err(format!(
            "{name} {args:?} did not exit within {limit:?} (killed)"
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(t_out.is_finished() && t_err.is_finished()) {
        if Instant::now() > deadline {
            return Err(format!(
                "{name} {args:?} exited but its output pipes stayed open (a child of {name} holds them)"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = std::process::ExitStatus::from_raw(status);
    Ok(Run {
        code: st.code(),
        signal: st.signal(),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        took,
        maxrss_kb: ru.ru_maxrss,
    })
}

/// [`try_run`], failing the test on any error.
pub fn run(args: &[&str], opts: Opts) -> Run {
    try_run(args, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs wedge with `args`; kills it and fails if it has not exited (and
/// closed its output) within `limit`.
pub fn wedge_within(args: &[&str], limit: Duration) -> Run {
    run(args, Opts::within(limit))
}

pub fn wedge(args: &[&str]) -> Run {
    run(args, Opts::default())
}

/// The snapshot's process `pid`, from `wedge ps --all --json`.
pub fn process(snap: &Value, pid: i32) -> Option<&Value> {
    snap["processes"]
        .as_array()?
        .iter()
        .find(|p| p["pid"].as_i64() == Some(pid as i64))
}

pub fn thread(snap: &Value, tid: i32) -> Option<&Value> {
    snap["processes"]
        .as_array()?
        .iter()
        .flat_map(|p| p["threads"].as_array().into_iter().flatten())
        .find(|t| t["tid"].as_i64() == Some(tid as i64))
}

pub fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), libtest_mimic::Failed> {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

/// The finding `id` about `pid` in a verdict's JSON.
pub fn finding<'a>(v: &'a Value, id: &str, pid: i32) -> Option<&'a Value> {
    v["findings"].as_array()?.iter().find(|f| {
        f["id"] == id
            && f["pids"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x == pid))
    })
}

/// The "Waits on" section of `wedge why`'s text, if it has one.
pub fn chains(why: &str) -> Option<&str> {
    why.split("Waits on (to the root cause)").nth(1)
}

/// The events `wedge log ARGS --json` prints, one JSON object a line.
pub fn log_events(args: &[&str]) -> (Run, Vec<Value>) {
    let mut all = vec!["log"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = wedge(&all);
    let events = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (run, events)
}

/// The findings of a verdict's JSON that say something is wedged.
pub fn critical(v: &Value) -> Vec<Value> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] == "critical")
        .cloned()
        .collect()
}

/// A scratch directory for one test under cargo's `CARGO_TARGET_TMPDIR`
/// (`target/tmp`), never /tmp: removed when the guard drops, also when the
/// test panics, so a run leaves nothing behind.
pub fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("wedge-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap_or_else(|e| panic!("scratch dir in {}: {e}", env!("CARGO_TARGET_TMPDIR")))
}

/// Where the JSON Schemas of every `--json` document live (one file per
/// document kind, sharing `common.json`; `docs/json-schema.md` explains them).
pub const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema");

/// Resolves the schemas' `$ref`s to `common.json` (and any sibling) from
/// `docs/schema/` on disk: the `$id`s are names, never fetched.
struct SchemaDir;

impl jsonschema::Retrieve for SchemaDir {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().rsplit('/').next().unwrap_or_default();
        let path = std::path::Path::new(SCHEMA_DIR).join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
    }
}

/// The validator of `docs/schema/NAME` (say `snapshot.json`), built once.
pub fn schema(name: &str) -> &'static jsonschema::Validator {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(name) {
        return v;
    }
    let path = std::path::Path::new(SCHEMA_DIR).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_retriever(SchemaDir)
        .build(&doc)
        .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()));
    let v: &'static jsonschema::Validator = Box::leak(Box::new(v));
    cache.insert(name.to_string(), v);
    v
}

/// Checks a real output against `docs/schema/NAME`; the error lists every
/// violation with its JSON pointer, and `what` says which output it was.
pub fn conforms(name: &str, what: &str, doc: &Value) -> Result<(), String> {
    let errors: Vec<String> = schema(name)
        .iter_errors(doc)
        .take(20)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} does not match docs/schema/{name}:\n{}",
            errors.join("\n")
        ))
    }
}
