//! `wedge check`: node-problem-detector's custom-plugin protocol — one
//! line of at most 80 characters naming the problem and its cause, and the
//! exit status 0 (OK), 1 (problem), 2 (unknown: the binary's error exit).
//! NPD keeps the line as the node condition's message, so it must say who
//! waits on what, and for how long, by itself.

use crate::view::{write_out, Status};
use std::io::Write;
use wedge_analysis::{Diagnosis, Finding};
use wedge_model::Snapshot;

/// NPD's default `max_output_length`.
pub const MAX_LINE: usize = 80;

/// A chain element without its trailing state in parentheses:
/// `wk-fused 17511 (S, futex_do_wait)` → `wk-fused 17511`.
fn bare(s: &str) -> &str {
    match s.rfind(" (") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Who: the first process of the finding, with its container or pod.
fn who(snap: &Snapshot, f: &Finding) -> String {
    let Some(&pid) = f.pids.first() else {
        return String::new();
    };
    let Some(p) = snap.process(pid) else {
        return format!("pid {pid}");
    };
    match wedge_analysis::workload::of(p) {
        Some(w) if w.pod_uid.is_some() || w.container.is_some() => {
            format!("{} {} (pid {pid})", w.words(), p.comm)
        }
        _ => format!("{} (pid {pid})", p.comm),
    }
}

/// Who, with only the pod (a pod's UID prefix is 8 characters, its
/// container's id 12 more) or, outside a pod, without the container:
/// `pod 8a3c1f2e comm (pid N)`, `comm (pid N)`.
fn short_who(snap: &Snapshot, f: &Finding) -> String {
    match f.pids.first() {
        Some(&pid) => match snap.process(pid) {
            Some(p) => match wedge_analysis::workload::of(p).and_then(|w| w.pod_uid) {
                Some(uid) => format!(
                    "pod {} {} (pid {pid})",
                    uid.split('-').next().unwrap_or(&uid),
                    p.comm
                ),
                None => format!("{} (pid {pid})", p.comm),
            },
            None => format!("pid {pid}"),
        },
        None => String::new(),
    }
}

/// Who, bare: `comm (pid N)`.
fn bare_who(snap: &Snapshot, f: &Finding) -> String {
    match f.pids.first() {
        Some(&pid) => match snap.process(pid) {
            Some(p) => format!("{} (pid {pid})", p.comm),
            None => format!("pid {pid}"),
        },
        None => String::new(),
    }
}

/// How long, in ms, the finding's longest-waiting thread has been off the
/// CPU (the scheduler clock of its CPU minus its last run): the line's
/// "for 3 h" and the metrics' oldest blocked time, one measure.
pub fn oldest_off_cpu_ms(snap: &Snapshot, f: &Finding) -> Option<f64> {
    f.pids
        .iter()
        .filter_map(|&pid| snap.process(pid))
        .flat_map(|p| &p.threads)
        .filter_map(|t| snap.off_cpu_ms(t))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
}

/// How long the finding's longest-waiting thread has been off the CPU.
fn how_long(snap: &Snapshot, f: &Finding) -> Option<String> {
    oldest_off_cpu_ms(snap, f)
        .filter(|ms| *ms >= 1000.0)
        .map(wedge_model::human_ms)
}

/// The one line for the worst wedged finding, or the all-clear.
pub fn line(snap: &Snapshot, d: &Diagnosis) -> (Status, String) {
    let wedged: Vec<&Finding> = d.findings.iter().filter(|f| f.is_wedged()).collect();
    let Some(f) = wedged.first() else {
        return (Status::Clear, "no process is wedged in the kernel".into());
    };
    let more = match wedged.len() - 1 {
        0 => String::new(),
        n => format!(" (+{n} more)"),
    };
    let long = how_long(snap, f)
        .map(|d| format!(" for {d}"))
        .unwrap_or_default();
    let who = who(snap, f);
    // The cause: the first chain past the task itself, else the finding's
    // title. Each chain is one line, its steps joined with " → "
    // (rules::mod's chain), the task first.
    let steps: Vec<&str> = f
        .chain
        .first()
        .map(|c| c.split(" → ").collect())
        .unwrap_or_default();
    let tail = format!("{long}{more}");
    let room = MAX_LINE.saturating_sub(tail.chars().count());
    let cause = if steps.len() > 1 {
        let tail: Vec<&str> = steps[1..].iter().map(|s| bare(s)).collect();
        let last = tail.last().copied().unwrap_or_default();
        let short = short_who(snap, f);
        // The first that fits: the whole chain; the root cause (the
        // chain's last step) with the steps between elided; without the
        // ellipsis; without the container words (a pod and container id
        // take 40 characters). The root cause matters more than the steps
        // between, and more than the container.
        let bare = bare_who(snap, f);
        let candidates = [
            format!("{who} waits on {}", tail.join(" → ")),
            format!("{who} waits on … → {last}"),
            format!("{who} waits on {last}"),
            format!("{short} waits on {}", tail.join(" → ")),
            format!("{short} waits on {last}"),
            format!("{bare} waits on {last}"),
        ];
        let fits = |c: &&String| c.chars().count() <= room;
        candidates
            .iter()
            .find(fits)
            .unwrap_or(&candidates[5])
            .clone()
    } else {
        f.title.clone()
    };
    (Status::Found, format!("{}{tail}", cut(&cause, room)))
}

pub fn check(snap: &Snapshot, d: &Diagnosis, out: &mut dyn Write) -> Result<Status, String> {
    let (status, text) = line(snap, d);
    write_out(out, &format!("{text}\n"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_cut() {
        assert_eq!(bare("wk-fused 17511 (S, futex_do_wait)"), "wk-fused 17511");
        assert_eq!(bare("FUSE connection 41 (/mnt/x)"), "FUSE connection 41");
        assert_eq!(bare("loop0"), "loop0");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    /// The killed FUSE reader captured here: the line names the daemon
    /// past the connection, from the finding's one chain line.
    #[test]
    fn names_the_daemon() {
        let text = include_str!("../../wedge-analysis/tests/fixtures/fuse-reader-killed.json");
        let snap: Snapshot = serde_json::from_str(text).unwrap();
        let d = wedge_analysis::diagnose(&snap, &[]);
        let (status, line) = line(&snap, &d);
        assert_eq!(status, Status::Found);
        assert!(line.chars().count() <= MAX_LINE, "{line}");
        assert!(line.contains(" → wk-fused 17511"), "{line}");
    }
}
