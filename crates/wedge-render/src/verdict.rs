//! `wedge`: the whole-machine verdict.

use crate::printable;
use std::fmt::Write;
use wedge_analysis::{Finding, Severity};
use wedge_model::Snapshot;

fn sev(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "WEDGED",
        Severity::Warning => "WARN",
        Severity::Info => "info",
    }
}

/// One finding; `full` adds explanation, evidence and remedies.
pub fn finding_text(f: &Finding, full: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  [{}] {}  ({}, confidence {:?})",
        sev(f.severity),
        printable(&f.title),
        f.id,
        f.confidence
    );
    if !full {
        return o;
    }
    for e in &f.evidence {
        let _ = writeln!(
            o,
            "      saw   {}  — {}",
            printable(&e.fact),
            printable(&e.source)
        );
    }
    for c in &f.chain {
        let _ = writeln!(o, "      chain {}", printable(c));
    }
    let _ = writeln!(o, "      why   {}", printable(&f.explanation));
    for r in &f.remedies {
        match &r.command {
            Some(c) => {
                let _ = writeln!(
                    o,
                    "      do    {}\n              $ {}",
                    printable(&r.action),
                    printable(c)
                );
            }
            None => {
                let _ = writeln!(o, "      do    {}", printable(&r.action));
            }
        }
    }
    for d in &f.do_not {
        let _ = writeln!(o, "      don't {}", printable(d));
    }
    o
}

/// `      in    pod 8a3c1f2e container 4f1c9e2b7d3a (containerd): web (4242)`
/// for each container or pod a finding's processes run in (three at most).
pub fn workload_lines(snap: &Snapshot, f: &Finding) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for &pid in &f.pids {
        let Some(p) = snap.process(pid) else {
            continue;
        };
        let Some(w) = wedge_analysis::workload::of(p) else {
            continue;
        };
        if w.container.is_none() && w.pod_uid.is_none() {
            continue;
        }
        let who = format!("{} ({pid})", printable(&p.comm));
        match groups.iter_mut().find(|(k, _)| *k == w.words()) {
            Some((_, v)) => v.push(who),
            None => groups.push((w.words(), vec![who])),
        }
    }
    let mut o = String::new();
    for (words, who) in groups.iter().take(3) {
        let _ = writeln!(o, "      in    {words}: {}", who.join(", "));
    }
    if groups.len() > 3 {
        let _ = writeln!(o, "      in    and {} more container(s)", groups.len() - 3);
    }
    o
}

pub fn render(snap: &Snapshot, findings: &[Finding], verbose: bool) -> String {
    render_with(snap, findings, verbose, "wedge why")
}

/// [`render`], with the command that shows one process: `wedge why` on
/// the live machine, `wedge vmcore DUMP why` for a dump.
pub fn render_with(snap: &Snapshot, findings: &[Finding], verbose: bool, why: &str) -> String {
    render_recalled(snap, findings, verbose, why, None)
}

/// [`render_with`], each finding whose task the recorder saw get stuck
/// saying since when ("blocked since 03:12:07 (2h14m)") and the calls
/// that led in, under its title.
pub fn render_recalled(
    snap: &Snapshot,
    findings: &[Finding],
    verbose: bool,
    why: &str,
    recall: Option<&crate::history::Recall<'_>>,
) -> String {
    let mut o = String::new();
    let wedged = findings.iter().filter(|f| f.is_wedged()).count();
    let _ = writeln!(
        o,
        "wedge: {} processes, {} threads scanned in {:.0} ms on {} ({})",
        snap.stats.processes,
        snap.stats.threads,
        snap.stats.duration_ms,
        snap.system.hostname.as_deref().unwrap_or("?"),
        snap.system
            .kernel_release
            .as_deref()
            .unwrap_or("unknown kernel")
    );
    // A partial view (a truncated dump) cannot clear what it did not see.
    let nothing = match &snap.partial {
        Some(p) => format!("nothing found wedged in the part that could be read ({p})"),
        None => "nothing is wedged".to_string(),
    };
    if findings.is_empty() {
        let _ = writeln!(o, "{nothing}.");
    } else if wedged == 0 {
        let _ = writeln!(o, "{nothing}; {} thing(s) worth knowing:", findings.len());
    } else if let Some(p) = &snap.partial {
        let _ = writeln!(
            o,
            "{wedged} wedged, {} other finding(s), in the part that could be read ({p}):",
            findings.len() - wedged
        );
    } else {
        let _ = writeln!(
            o,
            "{wedged} wedged, {} other finding(s):",
            findings.len() - wedged
        );
    }
    for f in findings {
        let full = verbose || f.severity == Severity::Critical;
        let text = finding_text(f, full);
        // After the title line, before the evidence: where the processes
        // run (container, pod) and since when the recorder saw them stuck.
        let (title, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let _ = writeln!(o, "{title}");
        o.push_str(&workload_lines(snap, f));
        if let Some((r, e)) = recall.and_then(|r| Some((r, r.rec.of_pids(&f.pids)?))) {
            o.push_str(&r.finding_lines(e));
        }
        o.push_str(rest);
    }
    for l in &snap.limitations {
        let _ = writeln!(
            o,
            "  (cannot see {}: {})",
            printable(&l.what),
            printable(&l.why)
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(o, "details: {why} PID");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_model::Source;

    #[test]
    fn a_partial_view_is_no_all_clear() {
        let mut snap = Snapshot::new(Source::Vmcore {
            path: "cut.dump".into(),
        });
        assert!(render(&snap, &[], false).contains("nothing is wedged."));
        snap.set_partial(
            "the whole dump",
            "dump truncated: 180 of 269 MB present; 24 of 61 tasks read, 37 unreadable".into(),
        );
        let text = render_with(&snap, &[], false, "wedge vmcore cut.dump why");
        assert!(!text.contains("nothing is wedged"), "{text}");
        assert!(
            text.contains("nothing found wedged in the part that could be read (dump truncated: 180 of 269 MB present; 24 of 61 tasks read, 37 unreadable)"),
            "{text}"
        );
    }
}
