//! Running the real `wedge` binary from tests, never waiting forever on it.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
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

/// Runs wedge with `args`; kills it and fails if it has not exited (and
/// closed its output) within `limit`.
pub fn wedge_within(args: &[&str], limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wedge");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    // Read both pipes to EOF on threads: EOF also proves that nothing wedge
    // left behind (a stuck reader process) still holds them.
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait wedge") {
            break st.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wedge {args:?} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(t_out.is_finished() && t_err.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "wedge {args:?} exited but its output pipes stayed open (a child of wedge holds them)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Run {
        code,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: started.elapsed(),
    }
}

pub fn wedge(args: &[&str]) -> Run {
    wedge_within(args, Duration::from_secs(30))
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
