//! Watchdog lockups (kernel/watchdog.c): soft lockups (`BUG: soft lockup -
//! CPU#N stuck for Ns!`) and hard lockups (`Watchdog detected hard LOCKUP`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::Detail;
use crate::event::Event;
use crate::parser::{new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, lead_u32, lead_u64, split_comm_pid};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &["LOCKUP", "BUG"];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "soft_lockup",
        text: "[920305.624468] watchdog: BUG: soft lockup - CPU#6 stuck for 2295s! [cifsd:18190]",
    },
    Sample {
        kind: "soft_lockup",
        text:
            "[ 5000.000000] NMI watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:345]",
    },
    Sample {
        kind: "hard_lockup",
        text: "[ 1200.000000] NMI watchdog: Watchdog detected hard LOCKUP on cpu 3",
    },
];

// ---- event types ----

/// `watchdog: BUG: soft lockup - CPU#N stuck for Ns! [COMM:PID]` (kernel/watchdog.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SoftLockup {
    /// Seconds the CPU ran kernel code without scheduling.
    pub stuck_seconds: u64,
}

/// `Watchdog detected hard LOCKUP on cpu N` / `Kernel panic - not syncing: Hard LOCKUP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HardLockup {}

/// First lines of the watchdog's reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LockupLine {
    /// `BUG: soft lockup - CPU#N stuck for Ns! [COMM:PID]`.
    Soft {
        cpu: u32,
        secs: u64,
        task: String,
        pid: Option<u32>,
    },
    /// `Watchdog detected hard LOCKUP on cpu N` (and its NMI variants).
    Hard { cpu: Option<u32> },
}

// ---- line recognisers (called from `classify`) ----

pub(crate) fn soft_lockup(s: &str) -> Option<Line> {
    // "BUG: soft lockup - CPU#0 stuck for 186s! [kworker/u3:3:2073]"
    let r = after(s, "CPU#")?;
    let (cpu, r) = lead_u32(r)?;
    let r = after(r, "stuck for ")?;
    let (secs, r) = lead_u64(r)?;
    let inner = after(r, "[")?;
    let inner = inner.rsplit_once(']').map_or(inner, |x| x.0);
    let (task, pid) = match split_comm_pid(inner) {
        Some((t, p)) => (t, Some(p)),
        None => (inner, None),
    };
    Some(Line::report(LockupLine::Soft {
        cpu,
        secs,
        task: bounded(task, 64),
        pid,
    }))
}

pub(crate) fn hard_lockup(s: &str) -> Line {
    let cpu = after(s, "LOCKUP on cpu ").and_then(|r| lead_u32(r).map(|x| x.0));
    Line::report(LockupLine::Hard { cpu })
}

// ---- meanings ----

/// The one-line explanation of a `soft_lockup` event.
pub(crate) fn meaning_soft_lockup(ev: &Event, s: &SoftLockup, who: &str) -> String {
    format!(
        "CPU {} ran kernel code for {} s without scheduling (soft lockup) in {who}{}",
        ev.cpu.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
        s.stuck_seconds,
        ev.rip_function
            .as_ref()
            .map(|f| format!(", stuck in {f}"))
            .unwrap_or_default()
    )
}

/// The one-line explanation of a `hard_lockup` event.
pub(crate) fn meaning_hard_lockup(ev: &Event, _d: &HardLockup, who: &str) -> String {
    format!(
        "CPU {} stopped taking interrupts (hard lockup){}",
        ev.cpu.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
        if ev.task.is_some() {
            format!(" while running {who}")
        } else {
            String::new()
        }
    )
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for LockupLine {
    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            LockupLine::Soft {
                cpu,
                secs,
                task,
                pid,
            } => {
                ps.close_cur(caller);
                let mut ev = new_event(
                    Detail::SoftLockup(SoftLockup {
                        stuck_seconds: secs,
                    }),
                    p,
                    ln,
                );
                ev.cpu = Some(cpu);
                ev.task = Some(task);
                ev.pid = pid;
                ps.open_event(ev, p, 12);
            }
            LockupLine::Hard { cpu } => {
                let same = ps
                    .cur(caller)
                    .and_then(|i| ps.open.get(i))
                    .is_some_and(|o| {
                        matches!(o.ev.detail, Detail::HardLockup(_))
                            && (cpu.is_none() || o.ev.cpu.is_none() || o.ev.cpu == cpu)
                    });
                if same {
                    if let Some(i) = ps.cur(caller) {
                        if let Some(o) = ps.touch(i) {
                            if o.ev.cpu.is_none() {
                                o.ev.cpu = cpu;
                            }
                        }
                    }
                } else {
                    ps.close_cur(caller);
                    let mut ev = new_event(Detail::HardLockup(HardLockup {}), p, ln);
                    ev.cpu = cpu;
                    ps.open_event(ev, p, 12);
                }
            }
        }
    }
}
