//! `wedge log`: kernel-log events grouped by kind and identical stack,
//! counted, newest first, each with its meaning and the lines it rests on.

use std::collections::HashMap;
use std::fmt::Write;
use wedge_klog::{Event, Summary};

/// What the live system says now about a task a log event names.
#[derive(Debug, Clone)]
pub struct LiveTask {
    pub state: char,
    pub wchan: Option<String>,
    pub comm: String,
}

struct Group<'a> {
    signature: String,
    events: Vec<&'a Event>,
}

fn when(e: &Event) -> String {
    match &e.timestamp {
        Some(t) => match (&t.wall, t.monotonic) {
            (Some(w), _) => w.clone(),
            (None, Some(m)) => format!("{m:.3}s after boot"),
            _ => format!("line {}", e.lines.first),
        },
        None => format!("line {}", e.lines.first),
    }
}

fn who(e: &Event) -> String {
    match (&e.task, e.pid) {
        (Some(t), Some(p)) => format!("{t}:{p}"),
        (Some(t), None) => t.clone(),
        (None, Some(p)) => format!("pid {p}"),
        (None, None) => String::new(),
    }
}

/// Renders events (in log order) for people.
pub fn render(events: &[Event], summary: &Summary, live: &HashMap<u32, LiveTask>) -> String {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in events {
        let sig = e.signature();
        match index.get(&sig) {
            Some(&i) => groups[i].events.push(e),
            None => {
                index.insert(sig.clone(), groups.len());
                groups.push(Group {
                    signature: sig,
                    events: vec![e],
                });
            }
        }
    }
    // Newest first: by the last input line of each group's newest event.
    groups.sort_by_key(|g| {
        std::cmp::Reverse(g.events.iter().map(|e| e.lines.last).max().unwrap_or(0))
    });
    let mut o = String::new();
    let mut by_kind: Vec<(&str, usize)> = Vec::new();
    for e in events {
        match by_kind.iter_mut().find(|(k, _)| *k == e.kind()) {
            Some(x) => x.1 += 1,
            None => by_kind.push((e.kind(), 1)),
        }
    }
    by_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(
        o,
        "{} event(s) in {} line(s){}: {}",
        events.len(),
        summary.lines,
        summary
            .formats
            .dominant()
            .map(|f| format!(" ({f} format)"))
            .unwrap_or_default(),
        by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for g in &groups {
        let newest = g.events.iter().max_by_key(|e| e.lines.last).copied();
        let Some(e) = newest else { continue };
        let tasks: Vec<String> = {
            let mut v: Vec<String> = g
                .events
                .iter()
                .map(|e| who(e))
                .filter(|s| !s.is_empty())
                .collect();
            v.dedup();
            v.truncate(6);
            v
        };
        let _ = writeln!(
            o,
            "\n[{}] ×{}  newest at {}{}",
            e.kind(),
            g.events.len(),
            when(e),
            if tasks.is_empty() {
                String::new()
            } else {
                format!("  — {}", tasks.join(", "))
            }
        );
        let _ = writeln!(o, "  {}", e.meaning);
        for n in e.notes.iter().filter(|n| !e.meaning.contains(n.as_str())) {
            let _ = writeln!(o, "  note: {n}");
        }
        if !e.call_trace.is_empty() {
            let frames: Vec<String> = e
                .call_trace
                .iter()
                .take(8)
                .map(|f| {
                    let mut s = String::new();
                    if f.unreliable {
                        s.push_str("? ");
                    }
                    s.push_str(&f.function);
                    if let Some(m) = &f.module {
                        let _ = write!(s, " [{m}]");
                    }
                    s
                })
                .collect();
            let _ = writeln!(o, "  trace: {}", frames.join(" ← "));
        }
        if let Some(code) = &e.code {
            if let Some(fi) = &code.faulting_instruction {
                let _ = writeln!(o, "  faulting instruction: {fi}");
            }
            for i in code.instructions.iter().take(16) {
                let _ = writeln!(
                    o,
                    "   {} {:>+4}  {:<24} {}",
                    if i.faulting { "→" } else { " " },
                    i.offset,
                    i.bytes,
                    i.text
                );
            }
        }
        if let Some(pid) = e.pid {
            if let Some(t) = live.get(&pid) {
                if e.task
                    .as_deref()
                    .is_none_or(|c| c.starts_with(&t.comm) || t.comm.starts_with(c))
                {
                    let _ = writeln!(
                        o,
                        "  now: {} ({pid}) is {} in {}  (live; `wedge why {pid}` for more)",
                        crate::printable(&t.comm),
                        t.state,
                        t.wchan.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        let ranges: Vec<String> = g
            .events
            .iter()
            .rev()
            .take(4)
            .map(|e| format!("{}-{}", e.lines.first, e.lines.last))
            .collect();
        let _ = writeln!(
            o,
            "  lines: {}{}   signature: {}",
            ranges.join(", "),
            if g.events.len() > 4 { " …" } else { "" },
            g.signature
        );
    }
    if !summary.fragments.is_empty() {
        let _ = writeln!(
            o,
            "\nNot understood ({} fragment(s)):",
            summary.fragments.len() as u64 + summary.fragments_dropped
        );
        for f in summary.fragments.iter().take(10) {
            let _ = writeln!(
                o,
                "  lines {}-{}: {}",
                f.lines.first, f.lines.last, f.reason
            );
        }
    }
    if summary.overlong_lines > 0 {
        let _ = writeln!(
            o,
            "{} line(s) longer than 64 KiB were read only in part",
            summary.overlong_lines
        );
    }
    if summary.timestamps_backwards > 0 {
        let _ = writeln!(
            o,
            "timestamps went backwards {} time(s): the log is reversed, merged from several boots, or reordered",
            summary.timestamps_backwards
        );
    }
    o
}
