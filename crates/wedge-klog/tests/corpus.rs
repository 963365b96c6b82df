//! One test per file of the kernel-log corpora at the repository's root:
//! `corpus/kernel-logs/` (copied unchanged from the shared corpus) and
//! `corpus/found-logs/` (real public storage, CIFS, machine-check and
//! allocation-failure logs collected for issue 14, in the same conventions).
//! Both directories get the same checks; a trial is named after its
//! directory and file, `kernel-logs/hung_task-012` or `found/mce-001`.
//!
//! For each file, the events listed in `expected.json` must appear in the
//! parser's output as an in-order subsequence; for every expected event,
//! every key present in expected.json must equal the parser's value in the
//! same JSON representation.  Events of a kind that the expectation does
//! not list are allowed anywhere; events of a listed kind are not (the next
//! parsed event of that kind must be the next expected one), so spurious
//! duplicates fail the test.
//!
//! Run one file: `cargo test -p wedge-klog --test corpus -- found/blk_io_error-001`
//! (the filter is a substring, so `-- hung_task-012` still works).

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus");

/// (directory under `corpus/`, prefix of its trials' names).
const CORPORA: [(&str, &str); 2] = [("kernel-logs", "kernel-logs/"), ("found-logs", "found/")];

fn check(path: &Path, expected: &[Value]) -> Result<(), Failed> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Read as `wedge log` reads files: text only, so every real log of the
    // corpus (damaged ones included) must pass the not-a-text-log check.
    let mut events = Vec::new();
    for ev in wedge_klog::parse_reader(bytes.as_slice()).text_only() {
        events.push(ev.map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let actual: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    // Order is compared within each kind: a collector's expectation may list
    // interleaved kinds in a different order (netfs-003 lists the Lustre RPC
    // failure of line 4 before the LNet timeout of line 2), but within one
    // kind the parser must produce exactly the expected events, in order.
    let mut kinds: Vec<&str> = Vec::new();
    for e in expected {
        if let Some(k) = e.get("kind").and_then(Value::as_str) {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    let kind_of = |v: &Value| {
        v.get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let mut problems = Vec::new();
    for kind in kinds {
        let exp: Vec<&Value> = expected.iter().filter(|e| kind_of(e) == kind).collect();
        let act: Vec<&Value> = actual.iter().filter(|a| kind_of(a) == kind).collect();
        for (i, e) in exp.iter().enumerate() {
            let Some(a) = act.get(i) else {
                problems.push(format!(
                    "{kind} #{i}: missing (parser produced {} {kind} events, expected {})",
                    act.len(),
                    exp.len()
                ));
                continue;
            };
            let Some(obj) = e.as_object() else { continue };
            for (k, v) in obj {
                let got = a.get(k);
                if got != Some(v) {
                    problems.push(format!(
                        "{kind} #{i} (lines {}) field `{k}`: expected {v}, got {}",
                        a.get("lines").map_or(String::new(), Value::to_string),
                        got.map_or("nothing".to_string(), Value::to_string)
                    ));
                }
            }
        }
        for extra in act.iter().skip(exp.len()) {
            problems.push(format!(
                "unexpected extra {kind} event at lines {}",
                extra.get("lines").map_or(String::new(), Value::to_string)
            ));
        }
    }
    if expected.is_empty() {
        // Nothing recoverable: no report-level event may be invented.
        for a in &actual {
            problems.push(format!(
                "unexpected {} event at lines {}",
                kind_of(a),
                a.get("lines").map_or(String::new(), Value::to_string)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for (dir, prefix) in CORPORA {
        trials.extend(corpus_trials(&PathBuf::from(ROOT).join(dir), prefix));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The trials of one corpus directory: one per file listed in its
/// expected.json, and `PREFIXcorpus_is_complete`.
fn corpus_trials(dir: &Path, prefix: &str) -> Vec<Trial> {
    // A corpus that cannot be read is a failing test that names the file,
    // never a binary that exits before any test is counted.
    let expected: Vec<Value> = match std::fs::read(dir.join("expected.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(Value::Array(v)) => v,
        Ok(_) => {
            return fail(
                prefix,
                format!("{}/expected.json is not a list", dir.display()),
            )
        }
        Err(e) => {
            return fail(
                prefix,
                format!("cannot read {}/expected.json: {e}", dir.display()),
            )
        }
    };
    let mut listed = std::collections::HashSet::new();
    let mut trials: Vec<Trial> = expected
        .into_iter()
        .filter_map(|entry| {
            let file = entry.get("file")?.as_str()?.to_string();
            let events = entry.get("events")?.as_array()?.clone();
            let path = dir.join(&file);
            let name = format!("{prefix}{}", file.trim_end_matches(".log"));
            listed.insert(file);
            Some(Trial::test(name, move || check(&path, &events)))
        })
        .collect();
    // Every excerpt in the folder has an expectation, and there are some.
    let unlisted: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log") && !listed.contains(n))
                .collect()
        })
        .unwrap_or_default();
    let count = listed.len();
    trials.push(Trial::test(
        format!("{prefix}corpus_is_complete"),
        move || {
            if count == 0 {
                return Err("expected.json lists no file".into());
            }
            if unlisted.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "files without an entry in expected.json: {}",
                    unlisted.join(", ")
                )
                .into())
            }
        },
    ));
    trials
}

fn fail(prefix: &str, why: String) -> Vec<Trial> {
    vec![Trial::test(format!("{prefix}corpus_present"), move || {
        Err(why.clone().into())
    })]
}
