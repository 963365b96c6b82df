//! Events in the model's vocabulary ([`wedge_model::LogEvent`]), for the
//! analysis, and which kinds mean the kernel saw something stuck or broken.

use crate::event::{Detail, Event};
use wedge_model::{LogBlocker, LogDetail, LogEvent};

impl Event {
    /// What the analysis reads of this event.
    pub fn to_log_event(&self) -> LogEvent {
        let detail = match &self.detail {
            Detail::HungTask(h) => LogDetail::HungTask {
                blocked_seconds: h.blocked_seconds,
                blocker: h.blocker.as_ref().map(|b| LogBlocker {
                    kind: b.kind.clone(),
                    owner_task: b.owner_task.clone(),
                    owner_pid: b.owner_pid,
                }),
            },
            Detail::GpfTrap(t) => LogDetail::GpfTrap {
                lib: t.mapping.as_ref().map(|m| m.lib.clone()),
                error: t.error.clone(),
            },
            Detail::NfsNotResponding(s) => LogDetail::NfsNotResponding {
                server: s.server.clone(),
            },
            Detail::NfsServerOk(s) => LogDetail::NfsServerOk {
                server: s.server.clone(),
            },
            _ => LogDetail::Other,
        };
        LogEvent {
            kind: self.kind().to_string(),
            line: self.lines.first,
            monotonic: self.timestamp.as_ref().and_then(|t| t.monotonic),
            task: self.task.clone(),
            pid: self.pid,
            meaning: self.meaning.clone(),
            code_dumped: self.code.is_some(),
            faulting_instruction: self
                .code
                .as_ref()
                .and_then(|c| c.faulting_instruction.clone()),
            detail,
        }
    }

    /// The kernel saw something stuck or broken: a hung task, a lockup, an
    /// RCU stall, an oops, a BUG or a panic (`wedge log` exits 1 on one).
    pub fn is_serious(&self) -> bool {
        matches!(
            self.kind(),
            "hung_task"
                | "soft_lockup"
                | "hard_lockup"
                | "rcu_stall"
                | "oops"
                | "kernel_bug"
                | "panic"
        )
    }
}

/// Every event in the model's vocabulary.
pub fn to_log_events(events: &[Event]) -> Vec<LogEvent> {
    events.iter().map(Event::to_log_event).collect()
}
