//! Property tests: the parser never panics on arbitrary bytes or on
//! damaged corpus files, and the events of a log do not change when a
//! syslog header is put in front of every line.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/kernel-logs");

fn corpus() -> Vec<(String, String)> {
    let mut v = Vec::new();
    // The corpus is part of the repository: its absence is a failure.
    let rd = std::fs::read_dir(CORPUS).unwrap_or_else(|e| panic!("{CORPUS}: {e}"));
    {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().and_then(|x| x.to_str()) == Some("log") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    v.push((name, t));
                }
            }
        }
    }
    v
}

fn exercise(data: &[u8]) {
    let parsed = wedge_klog::parse_bytes(data);
    for ev in &parsed.events {
        let _ = serde_json::to_string(ev);
        let _ = ev.signature();
        assert!(ev.lines.first <= ev.lines.last);
        assert!(ev.top_frames.len() <= 3);
    }
    // The line API must agree with the chunked scanner.
    let mut p = wedge_klog::Parser::new();
    let mut n = 0;
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    if !data.is_empty() {
        for line in body.split(|&b| b == b'\n') {
            p.push_line(line);
            while p.next_event().is_some() {
                n += 1;
            }
        }
    }
    p.finish();
    while p.next_event().is_some() {
        n += 1;
    }
    assert_eq!(n, parsed.events.len(), "line API and reader API disagree");
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    InsertGarbage(usize, Vec<u8>),
    InterleaveWith(usize, usize),
    CutLineAt(usize, usize),
    JoinWithNext(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(a, b)| Mutation::InsertGarbage(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::InterleaveWith(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::CutLineAt(a, b)),
        any::<usize>().prop_map(Mutation::JoinWithNext),
    ]
}

fn apply(files: &[(String, String)], base: usize, muts: &[Mutation]) -> Vec<u8> {
    let Some((_, text)) = files.get(base % files.len().max(1)) else {
        return Vec::new();
    };
    let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
    for m in muts {
        let n = lines.len().max(1);
        match m {
            Mutation::Truncate(i) => lines.truncate(i % n),
            Mutation::DeleteLine(i) => {
                if !lines.is_empty() {
                    lines.remove(i % n);
                }
            }
            Mutation::DuplicateLine(i) => {
                if let Some(l) = lines.get(i % n).cloned() {
                    lines.insert(i % n, l);
                }
            }
            Mutation::InsertGarbage(i, g) => lines.insert(i % (lines.len() + 1), g.clone()),
            Mutation::InterleaveWith(other, every) => {
                if let Some((_, t)) = files.get(other % files.len().max(1)) {
                    let step = every % 4 + 1;
                    let mut out = Vec::new();
                    let mut o = t.lines();
                    for (k, l) in lines.drain(..).enumerate() {
                        out.push(l);
                        if k % step == 0 {
                            if let Some(x) = o.next() {
                                out.push(x.as_bytes().to_vec());
                            }
                        }
                    }
                    lines = out;
                }
            }
            Mutation::CutLineAt(i, at) => {
                if let Some(l) = lines.get_mut(i % n) {
                    let cut = at % (l.len() + 1);
                    let tail = l.split_off(cut);
                    lines.insert(i % n + 1, tail);
                }
            }
            Mutation::JoinWithNext(i) => {
                let i = i % n;
                if i + 1 < lines.len() {
                    let next = lines.remove(i + 1);
                    if let Some(l) = lines.get_mut(i) {
                        l.extend_from_slice(&next);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l);
        out.push(b'\n');
    }
    out
}

fn without_time(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("timestamp");
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        exercise(&data);
    }

    #[test]
    fn keyword_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("INFO: task a:1 blocked for more than 5 seconds.".to_string()),
        Just("Call Trace:".to_string()),
        Just(" ? schedule+0x1/0x2 [m]".to_string()),
        Just("[<c0000000>] (a) from [<c0000004>] (b+0x1/0x2)".to_string()),
        Just("Code: 48 8b <f4> 00".to_string()),
        Just("traps: x[1] general protection fault ip:1 sp:2 error:0 in l[0,1+2]".to_string()),
        Just("x[2]: segfault at 0 ip 0 sp 0 error 14 likely on CPU 1 (core 1, socket 0)".to_string()),
        Just("potentially unexpected fatal signal 6.".to_string()),
        Just("CPU: 1 PID: 2 Comm: c Tainted: G W 6.1 #1".to_string()),
        Just("Oops: 0000 [#1] SMP".to_string()),
        Just("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:".to_string()),
        Just("(detected by 1, t=2 jiffies, g=3, q=4)".to_string()),
        Just("Name:\tx".to_string()),
        Just("$ ps -eo pid,stat,wchan,cmd".to_string()),
        Just("__CURSOR=s".to_string()),
        Just("{\"MESSAGE\":\"BUG: x\"}".to_string()),
        Just("".to_string()),
        "[ -~]{0,40}",
    ], 0..40)) {
        exercise(parts.join("\n").as_bytes());
    }

    #[test]
    fn damaged_corpus_never_panics(base in any::<usize>(), muts in proptest::collection::vec(mutation(), 0..6)) {
        let files = corpus();
        prop_assume!(!files.is_empty());
        exercise(&apply(&files, base, &muts));
    }
}

/// Pasted `ps`/`/proc` output stops being pasted text once it carries a
/// syslog header, so those files are left out; for kernel logs the events
/// must not change.
#[test]
fn syslog_prefix_keeps_events() {
    let files = corpus();
    assert!(!files.is_empty(), "corpus not found at {CORPUS}");
    for prefix in [
        "Jan  1 00:00:00 relay kernel: ",
        "2024-05-06T07:08:09.123456+00:00 relay kernel: ",
    ] {
        for (name, text) in &files {
            if name.starts_with("proc_stack") {
                continue;
            }
            let plain = wedge_klog::parse_str(text);
            let mut prefixed = String::new();
            for l in text.lines() {
                prefixed.push_str(prefix);
                prefixed.push_str(l);
                prefixed.push('\n');
            }
            let with = wedge_klog::parse_str(&prefixed);
            let a: Vec<Value> = plain
                .events
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .map(|v| without_time(&v))
                .collect();
            let b: Vec<Value> = with
                .events
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .map(|v| without_time(&v))
                .collect();
            assert_eq!(a, b, "{name}: events changed under prefix {prefix:?}");
        }
    }
}
