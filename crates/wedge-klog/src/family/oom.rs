//! The OOM killer (mm/oom_kill.c): `invoked oom-killer`, the `oom-kill:`
//! constraint line, `Out of memory: Killed process` (and the pre-4.19
//! `Kill process ... or sacrifice child` form) and `oom_reaper: reaped`.

use serde::Serialize;

use super::Sample;
use crate::classify::Line;
use crate::event::{Detail, Event};
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
    Some(Line::OomKill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: true,
    })
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
    Some(Line::OomKill {
        pid,
        task: bounded(comm, 64),
        kill,
        old_select: false,
    })
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
    Line::OomConstraint {
        constraint: get("constraint="),
        memcg: get("task_memcg="),
        pid: get("pid=").and_then(|p| p.parse().ok()),
        task: get("task="),
    }
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
