//! Findings over a whole snapshot, one module per family of rules. Each
//! family owns its rule ids (a typed enum: a mistyped id does not
//! compile), the explanation of each, and its remedies; [`RuleId`] is the
//! union of the families, and [`analyze_with`] runs every family.

use crate::finding::{BlockedOn, Evidence, Finding};
use crate::graph::{self, Graph, Node};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use wedge_model::{Process, Snapshot, Thread};

/// A family's rule ids: the enum, each id's stable string (as JSON and the
/// views print it), and the list of all of them, from one declaration.
macro_rules! rule_ids {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $id:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every id of the family.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string, e.g. `fuse.unanswered`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $id,)+
                }
            }
        }
    };
}
pub(crate) use rule_ids;

mod blocked_read;
mod cgroup;
mod fuse;
mod io_uring;
mod netfs;
mod signal;
mod stopped;
mod storage;
mod uninterruptible;
mod zombie;

pub use blocked_read::ReadRule;
pub use cgroup::CgroupRule;
pub use fuse::FuseRule;
pub use io_uring::IoUringRule;
pub use netfs::NetFsRule;
pub(crate) use netfs::{server_remedies, wait_mounts, Sleeper};
pub use signal::SignalRule;
pub use stopped::StoppedRule;
pub use storage::StorageRule;
pub use uninterruptible::WaitRule;
pub use zombie::ZombieRule;

use crate::logrules::LogId;

/// The union of the families: every id wedge can conclude, from the
/// snapshot's rules and from the kernel log's.
macro_rules! families {
    ( $( $(#[$vmeta:meta])* $variant:ident($family:ty), )+ ) => {
        /// A finding's stable identifier. Serialised as its string
        /// (`"fuse.unanswered"`), and deserialised only from one of the
        /// known strings: an unknown id is an error, never a fallback.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $( $(#[$vmeta])* $variant($family), )+
        }

        impl RuleId {
            /// The stable string, e.g. `fuse.unanswered`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant(r) => r.as_str(),)+
                }
            }

            /// What the finding means, in kernel terms: the same for every
            /// finding of the id (a finding may lead it with its own
            /// specifics, e.g. how many threads wait).
            pub fn explanation(self) -> &'static str {
                match self {
                    $(RuleId::$variant(r) => r.explanation(),)+
                }
            }

            /// Every id, family by family.
            pub fn all() -> impl Iterator<Item = RuleId> {
                std::iter::empty()
                    $(.chain(<$family>::ALL.iter().map(|&r| RuleId::$variant(r))))+
            }
        }

        $(
            impl From<$family> for RuleId {
                fn from(r: $family) -> RuleId {
                    RuleId::$variant(r)
                }
            }
        )+
    };
}

families! {
    /// `fuse.*`: waits on a FUSE daemon.
    Fuse(FuseRule),
    /// `io_uring.*`: exits held by io_uring cancellation.
    IoUring(IoUringRule),
    /// Uninterruptible and lock waits: `task.uninterruptible`,
    /// `vfork.waiting`, `pidns.init_reaping`, `lock.*`, `wait.cycle`.
    Wait(WaitRule),
    /// Network filesystems: `netfs.*`, `stdio.stale`.
    NetFs(NetFsRule),
    /// `signal.*`: a fatal signal that is not acted on.
    Signal(SignalRule),
    /// `task.stopped`, `ptrace.stopped`.
    Stopped(StoppedRule),
    /// `cgroup.frozen`: tasks held by a frozen cgroup.
    Cgroup(CgroupRule),
    /// `zombie.*`.
    Zombie(ZombieRule),
    /// `storage.*`: frozen filesystems, devices that do not complete I/O,
    /// loop devices on stuck backing files, the kernel's storage errors.
    Storage(StorageRule),
    /// `wedge.read_blocked`: wedge's own read blocked.
    Read(ReadRule),
    /// Ids only the kernel log gives: `kernel.hung_task`, `pidns.init_abort`.
    Log(LogId),
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is no rule's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRuleId(pub String);

impl fmt::Display for UnknownRuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = RuleId::all().map(RuleId::as_str).collect();
        write!(
            f,
            "unknown rule id {:?} (known ids: {})",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownRuleId {}

impl FromStr for RuleId {
    type Err = UnknownRuleId;

    fn from_str(s: &str) -> Result<RuleId, UnknownRuleId> {
        RuleId::all()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRuleId(s.to_string()))
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RuleId, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A task off the CPU for this long in a wait that should be brief is
/// stuck rather than slow. Disk I/O under load stays far below it.
pub const STUCK_AFTER_MS: f64 = 10_000.0;

/// Zombies younger than this, with a parent that could reap them, are not
/// reported.
pub const ZOMBIE_GRACE_MS: f64 = 5_000.0;

/// Attaching succeeds, but the tracer then waits for the tracee to stop,
/// and a task stops only on its way back to user space, which a task in D
/// state does not reach.
pub(crate) const DO_NOT_PTRACE: &str =
    "do not attach gdb or strace: ptrace on a task in D state wedges the tracer too";

pub(crate) fn ev(source: impl Into<String>, fact: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        fact: fact.into(),
    }
}

/// A finding's explanation: its own specifics, then what the rule means.
pub(crate) fn explained(lead: String, id: RuleId) -> String {
    format!("{lead} {}", id.explanation())
}

/// Where a process's facts were read, as evidence cites it (the source
/// knows: its /proc directory live, its task in memory in a crash dump).
pub(crate) fn pid_path(snap: &Snapshot, pid: i32) -> String {
    snap.source.process_locator(pid)
}

/// Where a thread's facts were read, as evidence cites it.
pub(crate) fn task_path(snap: &Snapshot, p: &Process, t: &Thread) -> String {
    snap.source.task_locator(p.pid, t.tid)
}

pub(crate) fn off_cpu(snap: &Snapshot, t: &Thread) -> Option<f64> {
    snap.off_cpu_ms(t)
}

pub(crate) fn stack_evidence(snap: &Snapshot, p: &Process, t: &Thread) -> Option<Evidence> {
    let stack = t.kernel_stack.value()?;
    let frames: Vec<&str> = stack.iter().take(6).map(|f| f.function.as_str()).collect();
    if frames.is_empty() {
        return None;
    }
    // Cite where the frames were read: /proc's file, or the live kernel
    // itself (a dump's own unwind is cited as its task).
    let live = matches!(snap.source, wedge_model::Source::Live { .. });
    let source = match t.stack_source {
        Some(wedge_model::StackSource::Bpf) => {
            format!("BPF: bpf_get_task_stack of thread {}", t.tid)
        }
        Some(wedge_model::StackSource::Orc) if live => {
            format!(
                "BPF + ORC: unwind of thread {} from its saved stack pointer",
                t.tid
            )
        }
        _ => format!("{}/stack", task_path(snap, p, t)),
    };
    Some(ev(source, frames.join(" ← ")))
}

/// Fills what a finding's tasks wait on, and the chains to the root
/// causes, from the wait-for graph.
fn enrich(snap: &Snapshot, g: &Graph, f: &mut Finding) {
    let Some(p) = f.pids.first().and_then(|&pid| snap.process(pid)) else {
        return;
    };
    for t in &p.threads {
        let node = Node::Task {
            pid: p.pid,
            tid: t.tid,
        };
        let direct: Vec<_> = g.out(&node).collect();
        if direct.is_empty() {
            continue;
        }
        for e in &direct {
            let b = BlockedOn {
                kind: e.kind.name().to_string(),
                pid: e.to.pid(),
                detail: format!(
                    "{}: {}{}",
                    graph::describe(snap, &e.to),
                    e.detail,
                    if e.likely { " (likely)" } else { "" }
                ),
            };
            if !f.blocked_on.contains(&b) {
                f.blocked_on.push(b);
            }
        }
        for chain in g.chains(&node).into_iter().take(4) {
            let words: Vec<String> = chain.iter().map(|n| graph::describe(snap, n)).collect();
            let line = words.join(" → ");
            if !f.chain.contains(&line) {
                f.chain.push(line);
            }
        }
    }
}

/// Runs every rule. Findings come out ranked: wedged first, then by
/// confidence.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    let g = graph::build(snap);
    analyze_with(snap, &g)
}

/// [`analyze`] with a graph already built.
pub fn analyze_with(snap: &Snapshot, g: &Graph) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &snap.processes {
        fuse::fuse_waits(snap, p, &mut out);
        signal::fatal_pending(snap, p, &mut out);
        uninterruptible::uninterruptible(snap, g, p, &mut out);
        stopped::stopped(snap, p, &mut out);
    }
    zombie::zombies(snap, &mut out);
    cgroup::frozen(snap, &mut out);
    blocked_read::blocked_reads(snap, &mut out);
    uninterruptible::lock_convoys(snap, g, &mut out);
    uninterruptible::cycles(snap, g, &mut out);
    netfs::stdio_stale(snap, &mut out);
    storage::storage(snap, g, &mut out);
    for f in &mut out {
        // A blocked read names its own lock holders; the graph's edges are
        // about the task, not about wedge's read.
        if f.id != RuleId::Read(ReadRule::Blocked) {
            enrich(snap, g, f);
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.cmp(&a.confidence))
            .then(a.pids.cmp(&b.pids))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_round_trips_and_is_explained() {
        let mut seen = std::collections::BTreeSet::new();
        for id in RuleId::all() {
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.as_str()));
            let back: RuleId = serde_json::from_str(&json).unwrap();
            assert_eq!(back, id, "{json}");
            assert_eq!(id.as_str().parse::<RuleId>(), Ok(id));
            assert_eq!(id.to_string(), id.as_str());
            assert!(
                !id.explanation().trim().is_empty(),
                "{id} has no explanation"
            );
            assert!(seen.insert(id.as_str()), "{id} is the id of two rules");
        }
        // The ids the views, the JSON schema and the tests name.
        assert_eq!(seen.len(), 26, "{seen:?}");
    }

    #[test]
    fn an_unknown_rule_id_does_not_deserialise() {
        let err = serde_json::from_str::<RuleId>("\"fuse.unanswred\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown rule id \"fuse.unanswred\"") && err.contains("fuse.unanswered"),
            "{err}"
        );
        let err = serde_json::from_str::<Finding>(
            r#"{"id": "task.stuck", "title": "", "severity": "critical", "confidence": "high",
                "pids": [1], "evidence": [], "explanation": "", "remedies": []}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown rule id \"task.stuck\""), "{err}");
        assert!(serde_json::from_str::<RuleId>("17").is_err());
    }
}

#[cfg(test)]
mod schema_tests {
    use super::RuleId;

    /// The documented schema lists exactly the ids the code can conclude:
    /// a new rule without its schema entry (or a stale entry) fails here.
    #[test]
    fn the_json_schema_lists_every_rule_id() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema/common.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let listed: Vec<&str> = doc["$defs"]["finding"]["properties"]["id"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: $defs.finding.properties.id.enum missing"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let known: Vec<&str> = RuleId::all().map(RuleId::as_str).collect();
        assert_eq!(
            listed, known,
            "{path}: finding ids differ from RuleId::all()"
        );
    }
}
