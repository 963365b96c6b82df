//! What kind of task a thread is, from its name and flags: io_uring workers
//! tied to the thread that created them, kworkers and the kernel's other
//! named threads.

use crate::flags::TaskFlags;
use serde::{Deserialize, Serialize};

/// A thread's role, as far as its comm and flags tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThreadKind {
    /// A user thread.
    User,
    /// `iou-wrk-N`: an io-wq worker that runs blocking io_uring requests;
    /// since 5.12 it is a thread of the ring owner's process, and N is the
    /// tid of the task that submitted (and owns the io-wq).
    IoUringWorker { owner_tid: Option<i32> },
    /// `iou-sqp-N`: the SQPOLL thread of a ring set up with IORING_SETUP_SQPOLL.
    IoUringSqPoll { owner_tid: Option<i32> },
    /// `kworker/CPU:ID[H]` or `kworker/uPOOL:ID`, optionally `-workqueue`
    /// (the name of the workqueue it last ran, 4.x+) or `+workqueue` (a
    /// work item of that workqueue is running now: wq_worker_comm()).
    Kworker {
        unbound: bool,
        highpri: bool,
        workqueue: Option<String>,
        /// `+`: executing a work item of `workqueue` now.
        running: bool,
    },
    /// Any other kernel thread: `kswapd0`, `jbd2/sda1-8`, `nfsd`, `ll_ost*`…
    Kernel { family: String },
}

impl ThreadKind {
    /// Classifies a thread. `flags` come from /proc/PID/stat field 9.
    pub fn classify(comm: &str, flags: TaskFlags) -> ThreadKind {
        if let Some(rest) = comm.strip_prefix("iou-wrk-") {
            return ThreadKind::IoUringWorker {
                owner_tid: rest.parse().ok(),
            };
        }
        if let Some(rest) = comm.strip_prefix("iou-sqp-") {
            return ThreadKind::IoUringSqPoll {
                owner_tid: rest.parse().ok(),
            };
        }
        if !flags.kthread() {
            return ThreadKind::User;
        }
        if let Some(rest) = comm.strip_prefix("kworker/") {
            let (pool, workqueue, running) = match rest.find(['-', '+']) {
                Some(i) => (
                    &rest[..i],
                    Some(rest[i + 1..].to_string()),
                    rest.as_bytes()[i] == b'+',
                ),
                None => (rest, None, false),
            };
            return ThreadKind::Kworker {
                unbound: pool.starts_with('u'),
                highpri: pool.ends_with('H'),
                workqueue,
                running,
            };
        }
        // `jbd2/sda1-8`, `irq/24-ahci`: the family is before the slash;
        // `kswapd0`, `nfsd`: per-node or per-instance digits are trailing.
        let family = match comm.split_once('/') {
            Some((head, _)) => head,
            None => comm.trim_end_matches(|c: char| c.is_ascii_digit()),
        }
        .to_string();
        ThreadKind::Kernel { family }
    }

    pub fn is_io_uring(&self) -> bool {
        matches!(
            self,
            ThreadKind::IoUringWorker { .. } | ThreadKind::IoUringSqPoll { .. }
        )
    }

    pub fn is_kernel(&self) -> bool {
        matches!(self, ThreadKind::Kworker { .. } | ThreadKind::Kernel { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            ThreadKind::classify("iou-sqp-1031", TaskFlags(0x10 | 0x4000)),
            ThreadKind::IoUringSqPoll {
                owner_tid: Some(1031)
            }
        );
        assert_eq!(
            ThreadKind::classify("kworker/u8:0-events_unbound", TaskFlags(0x200000)),
            ThreadKind::Kworker {
                unbound: true,
                highpri: false,
                workqueue: Some("events_unbound".into()),
                running: false,
            }
        );
        // Captured here: a loop device's worker inside its backing file's
        // FUSE read.
        assert_eq!(
            ThreadKind::classify("kworker/u8:8+loop1", TaskFlags(0x200000)),
            ThreadKind::Kworker {
                unbound: true,
                highpri: false,
                workqueue: Some("loop1".into()),
                running: true,
            }
        );
        assert_eq!(
            ThreadKind::classify("jbd2/sda1-8", TaskFlags(0x200000)),
            ThreadKind::Kernel {
                family: "jbd2".into()
            }
        );
        assert_eq!(ThreadKind::classify("node", TaskFlags(0)), ThreadKind::User);
    }
}
