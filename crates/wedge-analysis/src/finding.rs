//! What wedge concludes, with the facts it concluded it from.

use crate::rules::RuleId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    /// Something is wedged: it will not make progress by itself.
    Critical,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    #[default]
    Low,
    Medium,
    High,
}

/// One fact behind a finding, and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `/proc/4242/task/4243/stack`, `status:ShdPnd`, `kernel log line 17`.
    pub source: String,
    pub fact: String,
}

/// Something to do, ready to run where it is a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// A conclusion about one or more tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier, e.g. `fuse.unanswered` (serialised as that
    /// string).
    pub id: RuleId,
    pub title: String,
    pub severity: Severity,
    pub confidence: Confidence,
    /// The processes concerned, the most affected first.
    pub pids: Vec<i32>,
    pub evidence: Vec<Evidence>,
    pub explanation: String,
    pub remedies: Vec<Remedy>,
    /// What would make things worse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub do_not: Vec<String>,
    /// What the tasks wait on, directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_on: Vec<BlockedOn>,
    /// The chain from the task to its root cause, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

/// One thing a finding's task waits on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedOn {
    /// `fuse_request`, `fuse_daemon`, `lock_holder`, `vfork_child`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub detail: String,
}

impl Finding {
    /// A finding of rule `id` with nothing concluded yet: low confidence,
    /// no pids, no evidence; the rule fills in the rest. No `Default`: a
    /// finding without a rule id does not exist.
    pub fn new(id: impl Into<RuleId>, title: String) -> Finding {
        Finding {
            id: id.into(),
            title,
            severity: Severity::default(),
            confidence: Confidence::default(),
            pids: Vec::new(),
            evidence: Vec::new(),
            explanation: String::new(),
            remedies: Vec::new(),
            do_not: Vec::new(),
            blocked_on: Vec::new(),
            chain: Vec::new(),
        }
    }

    pub fn is_wedged(&self) -> bool {
        self.severity == Severity::Critical
    }
}
