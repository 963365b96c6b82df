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
            Detail::BlkIoError(e) => LogDetail::BlockIoError {
                device: e.device.clone(),
                sector: e.sector,
                op: e.op.clone(),
            },
            Detail::BufferIoError(e) => LogDetail::BufferIoError {
                device: e.device.clone(),
                logical_block: e.logical_block,
            },
            Detail::NvmeTimeout(e) => LogDetail::NvmeTimeout {
                controller: e.controller.clone(),
                qid: e.qid,
                action: e.action.clone(),
            },
            Detail::ScsiError(e) => LogDetail::ScsiError {
                device: e.device.clone(),
                hostbyte: e.hostbyte.clone(),
                driverbyte: e.driverbyte.clone(),
            },
            Detail::FsError(e) => LogDetail::FsError {
                fs: e.fs.clone(),
                device: e.device.clone(),
                function: e.function.clone(),
                remount_ro: e.remount_ro,
            },
            Detail::CifsServerUnresponsive(c) => LogDetail::CifsServerUnresponsive {
                server: c.server.clone(),
                seconds: c.seconds,
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

    /// The kernel saw something stuck or broken: a hung task, a lockup
    /// (of a CPU or of a workqueue's worker pool), an RCU stall, an oops, a
    /// BUG (list corruption included) or a panic (`wedge log` exits 1 on
    /// one).
    ///
    /// Storage errors (`blk_io_error`, `buffer_io_error`, `scsi_error`,
    /// `nvme_timeout`, `fs_error`) are not: each is the kernel reporting a
    /// failed request, which it handled (EIO to the caller, a retry, a
    /// reset, a read-only filesystem); a disk with a bad sector logs them
    /// for years on a healthy system.  When the I/O never completes, the
    /// stuck tasks are reported as hung tasks, and that is what makes the
    /// log serious.  Nor are corrected machine checks or page allocation
    /// failures (the allocation fails and the caller copes).
    pub fn is_serious(&self) -> bool {
        matches!(
            self.kind(),
            "hung_task"
                | "soft_lockup"
                | "hard_lockup"
                | "workqueue_lockup"
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
