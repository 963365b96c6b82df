//! RCU CPU stall warnings (kernel/rcu/tree_stall.h since 4.20, tree.c before):
//! the header, per-CPU lines, `(detected by N, t=J jiffies ...)` and the
//! grace-period kthread starvation line.

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::Detail;
use crate::event::Event;
use crate::parser::{finish_trace, new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, lead_u32, lead_u64, split_digits, token};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &["INFO: ", "detected stall", "detected expedited"];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "rcu_stall",
        text: "Nov 24 20:21:30 gsan1-coy kernel: [ 5914.420208] INFO: rcu_sched_state detected stall on CPU 1 (t=15000 jiffies)",
    },
    Sample {
        kind: "rcu_stall",
        text: "[ 1000.000000] rcu: INFO: rcu_sched self-detected stall on CPU\n\
               [ 1000.000001] rcu: \t3-....: (5249 ticks this GP) idle=a6e/1/0x4000000000000002 softirq=1/1 fqs=2600\n\
               [ 1000.000002] \t(t=5250 jiffies g=9 q=85)",
    },
];

// ---- event types ----

/// RCU CPU stall warning (kernel/rcu/tree_stall.h; before 4.20 in tree.c,
/// and before 3.x without the `rcu: ` prefix and with a one-line form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RcuStall {
    /// RCU flavor (`rcu_sched`, `rcu_preempt`, 3.x `rcu_sched_state`).
    pub flavor: String,
    /// CPUs that did not report a quiescent state (other-CPU stall form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_cpus: Option<Vec<u32>>,
    /// CPU that noticed the stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_by: Option<u32>,
    /// Stall duration in jiffies (`t=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jiffies: Option<u64>,
    /// CPU that reported its own stall (`self-detected stall on CPU`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_detected_cpu: Option<u32>,
    /// Grace-period number (`g=`), as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    /// Expedited grace period stall.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expedited: bool,
    /// Pids of tasks blocking the grace period (preemptible RCU).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_tasks: Vec<u32>,
    /// `rcu_sched kthread starved for N jiffies!`: the grace-period kthread
    /// itself could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kthread_starved_jiffies: Option<u64>,
}

/// Lines of an RCU stall report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RcuLine {
    /// `rcu: INFO: rcu_sched detected stalls on CPUs/tasks:`: opens a report.
    Header(RcuStall),
    /// A per-CPU line `\t3-....: (5249 ticks this GP) ...`.
    Cpu(u32),
    /// `(detected by N, t=J jiffies, g=G, q=Q)`.
    DetectedBy {
        by: Option<u32>,
        jiffies: Option<u64>,
        g: Option<String>,
    },
    /// `Tasks blocked on level-0 rcu_node (CPUs 0-7): P1234 P5678`.
    Tasks(Vec<u32>),
    /// `rcu_sched kthread starved for N jiffies!`.
    Starved(u64),
}

// ---- line recognisers (called from `classify`) ----

pub(crate) fn rcu_header(r: &str) -> Option<Line> {
    // r: "rcu_sched detected stalls on CPUs/tasks:[ { 2} (detected by 7, t=15002 jiffies)]"
    //    "rcu_sched_state detected stall on CPU 0 (t=105060 jiffies)"
    //    "rcu_sched self-detected stall on CPU[ { 3}  (t=5250 jiffies g=.. c=.. q=..)]"
    //    "rcu_preempt detected expedited stalls on CPUs/tasks: { 3-... } 21009 jiffies s: .."
    let (flavor, rest) = token(r);
    let mut st = RcuStall {
        flavor: bounded(flavor, 32),
        ..RcuStall::default()
    };
    st.expedited = rest.contains("expedited");
    let self_detected =
        rest.starts_with("self-detected") || rest.starts_with("detected stall on CPU");
    let braces = after(rest, "{")
        .and_then(|b| b.split_once('}'))
        .map(|x| x.0);
    let cpus: Vec<u32> = braces
        .map(|b| {
            b.split([' ', ','])
                .filter_map(|t| split_digits(t.trim()).0.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if self_detected {
        st.self_detected_cpu = after(rest, "on CPU ")
            .and_then(|c| lead_u32(c.trim_start()).map(|x| x.0))
            .or_else(|| cpus.first().copied());
    } else {
        st.stalled_cpus = Some(cpus);
    }
    if let Some(d) = after(rest, "detected by ") {
        st.detected_by = lead_u32(d).map(|x| x.0);
    }
    if let Some(t) = after(rest, "t=") {
        st.jiffies = lead_u64(t).map(|x| x.0);
    } else if st.expedited {
        if let Some(b) = after(rest, "}") {
            st.jiffies = lead_u64(b.trim_start()).map(|x| x.0);
        }
    }
    if let Some(g) = after(rest, "g=") {
        let g = g.split([',', ' ', ')']).next().unwrap_or("");
        st.grace_period = (!g.is_empty()).then(|| bounded(g, 32));
    }
    Some(Line::report(RcuLine::Header(st)))
}

/// Lines starting `rcu: ` (4.20+), or the same content without it.
pub(crate) fn rcu_line(r: &str) -> Line {
    if let Some(x) = r.strip_prefix("INFO: ") {
        if let Some(l) = rcu_header(x) {
            return l;
        }
    }
    rcu_body(r).unwrap_or(Line::Related)
}

pub(crate) fn rcu_body(r: &str) -> Option<Line> {
    let r = r.trim();
    if let Some(x) = r.strip_prefix('(') {
        if x.starts_with("detected by") || x.starts_with("t=") {
            let by = after(x, "detected by ").and_then(|d| lead_u32(d).map(|v| v.0));
            let jiffies = after(x, "t=").and_then(|t| lead_u64(t).map(|v| v.0));
            let g = after(x, "g=")
                .map(|g| g.split([',', ' ', ')']).next().unwrap_or(""))
                .filter(|g| !g.is_empty())
                .map(|g| bounded(g, 32));
            return Some(Line::report(RcuLine::DetectedBy { by, jiffies, g }));
        }
    }
    if let Some(x) = r.strip_prefix("Tasks blocked on") {
        let pids = after(x, "):")
            .map(|p| {
                p.split_whitespace()
                    .filter_map(|t| t.strip_prefix('P').and_then(|n| n.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        return Some(Line::report(RcuLine::Tasks(pids)));
    }
    if let Some(x) = after(r, "kthread starved for ") {
        return lead_u64(x).map(|v| Line::report(RcuLine::Starved(v.0)));
    }
    // Per-CPU line "  9-...!: (0 ticks this GP) idle=..." / "3-....: (5249 ticks ..."
    let (d, x) = split_digits(r);
    if !d.is_empty() {
        if let Some(x) = x.strip_prefix('-') {
            let flags: &str = x.split(':').next().unwrap_or("");
            if flags.len() <= 8 && x.contains(": (") {
                return d.parse().ok().map(|n| Line::report(RcuLine::Cpu(n)));
            }
        }
    }
    None
}

// ---- meanings ----

/// The one-line explanation of a `rcu_stall` event.
pub(crate) fn meaning_rcu_stall(_ev: &Event, r: &RcuStall, _who: &str) -> String {
    let mut s = format!("RCU grace period ({}) stalled", r.flavor);
    if let Some(c) = r.self_detected_cpu {
        s.push_str(&format!(": CPU {c} itself did not pass a quiescent state"));
    } else if let Some(cpus) = &r.stalled_cpus {
        if cpus.is_empty() {
            s.push_str(": no CPU listed (tasks or the grace-period kthread hold it up)");
        } else {
            let l: Vec<String> = cpus.iter().map(u32::to_string).collect();
            s.push_str(&format!(
                ": CPUs {} did not report a quiescent state",
                l.join(", ")
            ));
        }
    }
    if let Some(j) = r.jiffies {
        s.push_str(&format!(" for {j} jiffies"));
    }
    if let Some(d) = r.detected_by {
        s.push_str(&format!(" (detected by CPU {d})"));
    }
    if r.kthread_starved_jiffies.is_some() {
        s.push_str("; the RCU grace-period kthread was starved of CPU time");
    }
    s
}

// ---- report assembly (called from the parser for `Line::Report`) ----

/// A continuation line of the RCU report open for `caller`: it ends the
/// trace the report was reading (per-CPU backtraces come between them).
fn with_rcu(ps: &mut Parser, caller: Option<&str>, f: impl FnOnce(&mut RcuStall)) {
    if let Some(i) = ps.cur(caller) {
        if let Some(o) = ps.touch(i) {
            finish_trace(o);
            if let Detail::RcuStall(r) = &mut o.ev.detail {
                f(r);
            }
        }
    }
}

impl Assemble for RcuLine {
    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            RcuLine::Header(st) => {
                ps.close_cur(caller);
                let ev = new_event(Detail::RcuStall(st), p, ln);
                ps.open_event(ev, p, 12);
            }
            RcuLine::Cpu(n) => with_rcu(ps, caller, |r| {
                if let Some(v) = &mut r.stalled_cpus {
                    if v.len() < 4096 && !v.contains(&n) {
                        v.push(n);
                    }
                } else if r.self_detected_cpu.is_none() {
                    r.self_detected_cpu = Some(n);
                }
            }),
            RcuLine::DetectedBy { by, jiffies, g } => with_rcu(ps, caller, |r| {
                if r.detected_by.is_none() {
                    r.detected_by = by;
                }
                if r.jiffies.is_none() {
                    r.jiffies = jiffies;
                }
                if r.grace_period.is_none() {
                    r.grace_period = g;
                }
            }),
            RcuLine::Tasks(pids) => with_rcu(ps, caller, |r| {
                for pid in pids {
                    if r.blocked_tasks.len() < 4096 {
                        r.blocked_tasks.push(pid);
                    }
                }
            }),
            RcuLine::Starved(j) => with_rcu(ps, caller, |r| {
                r.kthread_starved_jiffies = Some(j);
            }),
        }
    }
}
