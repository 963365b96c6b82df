//! From a snapshot to conclusions: which tasks matter, what each waits for,
//! and findings with evidence, confidence and remedies.
//!
//! Reads only [`wedge_model::Snapshot`], so live scans, crash dumps and
//! recordings get the same analysis.

pub mod cgroup;
mod diagnosis;
mod finding;
pub mod fuse;
pub mod graph;
mod logrules;
mod rules;
pub mod storage;
mod wait;
pub mod workload;

pub use diagnosis::{diagnose, user_stacks_refusal, Diagnosis, Recorded};
pub use finding::{BlockedOn, Confidence, Evidence, Finding, Remedy, Severity};
pub use logrules::{analyze_log, LogId, LogRule};
pub use rules::{
    analyze, analyze_with, FuseRule, IoUringRule, NetFsRule, ReadRule, RuleId, SignalRule,
    StoppedRule, StorageRule, UnknownRuleId, WaitRule, ZombieRule,
};
pub use wait::{describe_wait, lock_words, matters, wait_kind, Attention, WaitKind};
