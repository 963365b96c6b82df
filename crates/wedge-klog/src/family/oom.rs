//! The OOM killer (mm/oom_kill.c): `invoked oom-killer`, the `oom-kill:`
//! constraint line, `Out of memory: Killed process` (and the pre-4.19
//! `Kill process ... or sacrifice child` form) and `oom_reaper: reaped`.

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::{Detail, Event};
use crate::parser::{new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, kv, lead_u32, lead_u64};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &[
    "invoked oom-killer",
    "Kill",
    "ut of memory",
    "oom_reaper",
    "oom-kill:",
];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "oom_invoked",
        text: "Apr 18 02:17:55 mdw kernel: tuned invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
    },
    Sample {
        kind: "oom_kill",
        text: "[ 13.0] Out of memory: Killed process 4321 (httpd) total-vm:100kB, anon-rss:10kB, file-rss:1kB, shmem-rss:0kB, UID:48 pgtables:40kB oom_score_adj:0",
    },
    Sample {
        kind: "oom_kill",
        text: "[ 13.0] Memory cgroup out of memory: Killed process 4321 (httpd) total-vm:100kB, anon-rss:10kB, file-rss:1kB, shmem-rss:0kB",
    },
    Sample {
        kind: "oom_kill",
        text: "[ 13.0] Killed process 4321, UID 48, (httpd) total-vm:100kB, anon-rss:10kB, file-rss:1kB",
    },
    Sample {
        kind: "oom_reaped",
        text: "[  518.053407] oom_reaper: reaped process 15784 (python3), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    },
];

// ---- event types ----

/// `COMM invoked oom-killer: gfp_mask=.., order=N, oom_score_adj=N` (mm/oom_kill.c)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomInvoked {
    /// Allocation flags as printed (`0x100cca(GFP_HIGHUSER_MOVABLE)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_mask: Option<String>,
    /// Allocation order (2^order pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// oom_score_adj of the allocating task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// `constraint=` from the `oom-kill:` summary line (4.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// Memory cgroup of the victim (`task_memcg=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_memcg: Option<String>,
    /// Memory cgroup usage (`memory: usage NkB, limit NkB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_usage_kb: Option<u64>,
    /// Memory cgroup limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_limit_kb: Option<u64>,
}

/// `Out of memory: Killed process PID (COMM) total-vm:..kB, anon-rss:..kB, ...`
/// (and the pre-4.19 two-line `Kill process ... or sacrifice child` form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomKill {
    /// Virtual size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_vm_kb: Option<u64>,
    /// Anonymous resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_kb: Option<u64>,
    /// File-backed resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_rss_kb: Option<u64>,
    /// Shared-memory resident memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_rss_kb: Option<u64>,
    /// Page tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgtables_kb: Option<u64>,
    /// Owner uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Badness score (pre-4.19 `score N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score: Option<i64>,
    /// oom_score_adj of the victim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// Killed by a memory-cgroup OOM rather than a global one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub memcg: bool,
}

/// `oom_reaper: reaped process PID (COMM), now anon-rss:..kB, ...`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OomReaped {
    /// Anonymous RSS left after reaping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_kb: Option<u64>,
    /// File RSS left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_rss_kb: Option<u64>,
    /// Shmem RSS left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_rss_kb: Option<u64>,
}

/// Lines of an OOM-killer report besides the shared trace lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OomLine {
    /// `COMM invoked oom-killer: gfp_mask=..., order=N, oom_score_adj=N`.
    Invoked {
        task: String,
        gfp: Option<String>,
        order: Option<u32>,
        adj: Option<i64>,
    },
    /// `Out of memory: Killed process ...` / `Killed process ...` (and the
    /// pre-4.19 `Kill process ... or sacrifice child` selection line).
    Kill {
        pid: u32,
        task: String,
        kill: OomKill,
        old_select: bool,
    },
    /// `oom-kill:constraint=...,task_memcg=...` (4.19+).
    Constraint {
        constraint: Option<String>,
        memcg: Option<String>,
    },
    /// `memory: usage NkB, limit NkB, failcnt N` of a memcg OOM.
    MemcgUsage { usage: u64, limit: Option<u64> },
}

// ---- line recognisers (called from `classify`) ----

pub(crate) fn oom_kill(r: &str, memcg: bool) -> Option<Line> {
    // "Killed process PID (COMM) ..." (4.19+) or "Kill process PID (COMM) score N or sacrifice child"
    if let Some(x) = r.strip_prefix("Killed process ") {
        return oom_killed_process(x, memcg);
    }
    let x = r.strip_prefix("Kill process ")?;
    let (pid, x) = lead_u32(x)?;
    let x = x.trim_start().strip_prefix('(')?;
    let (comm, tail) = x.rsplit_once(") score ").or_else(|| x.rsplit_once(')'))?;
    let kill = OomKill {
        oom_score: lead_u64(tail.trim_start()).and_then(|v| i64::try_from(v.0).ok()),
        memcg,
        ..OomKill::default()
    };
    Some(Line::report(OomLine::Kill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: true,
    }))
}

pub(crate) fn kb(s: &str, key: &str) -> Option<u64> {
    kv(s, key).and_then(|v| v.trim_end_matches("kB").trim_end_matches(',').parse().ok())
}

/// The comm inside `(COMM)` where COMM may itself contain parentheses:
/// the closing parenthesis is the one followed by one of `ends`.
pub(crate) fn paren_comm<'a>(x: &'a str, ends: &[&str]) -> Option<(&'a str, &'a str)> {
    let x = x.trim_start().strip_prefix('(')?;
    for e in ends {
        if let Some(i) = x.find(e) {
            let comm = x.get(..i)?;
            let tail = x.get(i + 1..)?;
            return Some((comm, tail));
        }
    }
    let i = x.rfind(')')?;
    Some((x.get(..i)?, x.get(i + 1..)?))
}

pub(crate) fn oom_killed_process(x: &str, memcg: bool) -> Option<Line> {
    let (pid, x) = lead_u32(x)?;
    // RHEL 6/7 print "Killed process 1234, UID 0, (comm) total-vm:...".
    let mut uid_before = None;
    let mut x = x;
    if let Some(r) = x.strip_prefix(", UID ") {
        let (u, r) = lead_u32(r)?;
        uid_before = Some(u);
        x = r.trim_start_matches(',').trim_start();
    }
    let (comm, tail) = paren_comm(x, &[") total-vm", "), UID", ") score", "),", ")"])?;
    let uid = kv(tail, "UID:")
        .and_then(|v| v.parse().ok())
        .or_else(|| after(tail, "UID ").and_then(|u| lead_u32(u).map(|v| v.0)))
        .or(uid_before);
    let kill = OomKill {
        total_vm_kb: kb(tail, "total-vm:"),
        anon_rss_kb: kb(tail, "anon-rss:"),
        file_rss_kb: kb(tail, "file-rss:"),
        shmem_rss_kb: kb(tail, "shmem-rss:"),
        pgtables_kb: kb(tail, "pgtables:"),
        uid,
        oom_score: None,
        oom_score_adj: kv(tail, "oom_score_adj:").and_then(|v| v.parse().ok()),
        memcg,
    };
    Some(Line::report(OomLine::Kill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: false,
    }))
}

pub(crate) fn oom_reaped(x: &str) -> Option<Line> {
    let (pid, x) = lead_u32(x)?;
    let (comm, tail) = paren_comm(x, &["), now", ")"])?;
    Some(Line::Single {
        detail: Detail::OomReaped(OomReaped {
            anon_rss_kb: kb(tail, "anon-rss:"),
            file_rss_kb: kb(tail, "file-rss:"),
            shmem_rss_kb: kb(tail, "shmem-rss:"),
        }),
        pid: Some(pid),
        task: Some(bounded(comm, 64)),
    })
}

pub(crate) fn oom_constraint(r: &str) -> Line {
    let get = |k: &str| -> Option<String> {
        r.split(',')
            .find_map(|p| p.strip_prefix(k))
            .map(|v| bounded(v, 256))
    };
    Line::report(OomLine::Constraint {
        constraint: get("constraint="),
        memcg: get("task_memcg="),
    })
}

// ---- meanings ----

/// The one-line explanation of a `oom_invoked` event.
pub(crate) fn meaning_oom_invoked(_ev: &Event, o: &OomInvoked, who: &str) -> String {
    format!(
        "{who} triggered the OOM killer while allocating (order {}, gfp {})",
        o.order.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
        o.gfp_mask.as_deref().unwrap_or("?")
    )
}

/// The one-line explanation of a `oom_kill` event.
pub(crate) fn meaning_oom_kill(_ev: &Event, k: &OomKill, who: &str) -> String {
    format!(
        "the {}OOM killer killed {who}{}",
        if k.memcg { "memory-cgroup " } else { "" },
        match (k.anon_rss_kb, k.file_rss_kb) {
            (Some(a), Some(f)) => format!(", which used {a} kB anonymous + {f} kB file memory"),
            _ => String::new(),
        }
    )
}

/// The one-line explanation of a `oom_reaped` event.
pub(crate) fn meaning_oom_reaped(_ev: &Event, _d: &OomReaped, who: &str) -> String {
    format!("the oom_reaper freed the memory of killed {who}")
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for OomLine {
    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            OomLine::Invoked {
                task,
                gfp,
                order,
                adj,
            } => {
                ps.close_cur(caller);
                let mut ev = new_event(
                    Detail::OomInvoked(OomInvoked {
                        gfp_mask: gfp,
                        order,
                        oom_score_adj: adj,
                        ..OomInvoked::default()
                    }),
                    p,
                    ln,
                );
                ev.task = Some(task);
                ps.open_event(ev, p, 40);
            }
            OomLine::Kill {
                pid,
                task,
                kill,
                old_select,
            } => {
                // Pre-4.19: "Kill process P (C) score N or sacrifice child"
                // then "Killed process P (C) total-vm:..." — one kill.
                let merge = ps.cur(caller).filter(|&i| {
                    ps.open.get(i).is_some_and(|o| {
                        o.ev.pid == Some(pid)
                            && matches!(&o.ev.detail, Detail::OomKill(k) if k.total_vm_kb.is_none())
                    })
                });
                if let (Some(i), false) = (merge, old_select) {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::OomKill(k) = &mut o.ev.detail {
                            let score = k.oom_score;
                            let memcg = k.memcg;
                            *k = kill;
                            k.oom_score = score;
                            k.memcg |= memcg;
                        }
                        o.explicit_end = true;
                    }
                    let o = ps.open.remove(i);
                    ps.close_open(o, false);
                } else {
                    if ps
                        .cur(caller)
                        .and_then(|i| ps.open.get(i))
                        .is_some_and(|o| {
                            matches!(o.ev.detail, Detail::OomInvoked(_) | Detail::OomKill(_))
                        })
                    {
                        ps.close_cur(caller);
                    }
                    let mut ev = new_event(Detail::OomKill(kill), p, ln);
                    ev.task = Some(task);
                    ev.pid = Some(pid);
                    if old_select {
                        ps.open_event(ev, p, 3);
                    } else {
                        ps.push_single(ev);
                    }
                }
            }
            OomLine::Constraint { constraint, memcg } => {
                if let Some(i) = ps
                    .open
                    .iter()
                    .rposition(|o| matches!(o.ev.detail, Detail::OomInvoked(_)))
                {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::OomInvoked(x) = &mut o.ev.detail {
                            x.constraint = constraint;
                            x.task_memcg = memcg;
                        }
                    }
                }
            }
            OomLine::MemcgUsage { usage, limit } => {
                if let Some(i) = ps.cur(caller) {
                    if let Some(o) = ps.touch(i) {
                        if let Detail::OomInvoked(x) = &mut o.ev.detail {
                            if x.memcg_usage_kb.is_none() {
                                x.memcg_usage_kb = Some(usage);
                                x.memcg_limit_kb = limit;
                            }
                        }
                    }
                }
            }
        }
    }
}
