//! Per-task flags (`task_struct.flags`, the `PF_*` bits of
//! `include/linux/sched.h`), printed as field 9 of `/proc/PID/stat`.
//!
//! Several bits were reassigned over the years, so decoding takes the kernel
//! version: 0x8 was PF_EXITPIDONE until 5.10 and is PF_POSTCOREDUMP from
//! 5.17; 0x10 was PF_VCPU until io-wq took it for PF_IO_WORKER (5.5, when
//! PF_VCPU moved to 0x1); 0x4000 was PF_USED_ASYNC and is PF_USER_WORKER
//! from 6.4.

use crate::version::KernelVersion;
use serde::{Deserialize, Serialize};

/// One decoded flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskFlag {
    pub bit: u32,
    pub name: &'static str,
    pub meaning: &'static str,
}

struct Def {
    bit: u32,
    name: &'static str,
    meaning: &'static str,
    /// First release with this meaning (inclusive), as (major, minor).
    since: (u32, u32),
    /// First release without it (exclusive).
    until: (u32, u32),
}

const ALWAYS: (u32, u32) = (0, 0);
const NEVER: (u32, u32) = (u32::MAX, 0);

const DEFS: &[Def] = &[
    Def {
        bit: 0x1,
        name: "PF_VCPU",
        meaning: "running a virtual CPU",
        since: (5, 5),
        until: NEVER,
    },
    Def {
        bit: 0x2,
        name: "PF_IDLE",
        meaning: "an idle thread",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x4,
        name: "PF_EXITING",
        meaning: "exiting: inside do_exit()",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x8,
        name: "PF_EXITPIDONE",
        meaning: "PI-futex exit cleanup done",
        since: ALWAYS,
        until: (5, 10),
    },
    Def {
        bit: 0x8,
        name: "PF_POSTCOREDUMP",
        meaning: "past its core dump; core dumps ignore it",
        since: (5, 17),
        until: NEVER,
    },
    Def {
        bit: 0x10,
        name: "PF_VCPU",
        meaning: "running a virtual CPU",
        since: ALWAYS,
        until: (5, 5),
    },
    Def {
        bit: 0x10,
        name: "PF_IO_WORKER",
        meaning: "an io_uring/io-wq worker",
        since: (5, 5),
        until: NEVER,
    },
    Def {
        bit: 0x20,
        name: "PF_WQ_WORKER",
        meaning: "a workqueue worker (kworker)",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x40,
        name: "PF_FORKNOEXEC",
        meaning: "forked but did not exec",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x80,
        name: "PF_MCE_PROCESS",
        meaning: "per-process machine-check policy",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x100,
        name: "PF_SUPERPRIV",
        meaning: "used super-user privileges",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x200,
        name: "PF_DUMPCORE",
        meaning: "dumped core",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x400,
        name: "PF_SIGNALED",
        meaning: "killed by a signal",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x800,
        name: "PF_MEMALLOC",
        meaning: "allocating memory to free memory (reclaim)",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x1000,
        name: "PF_NPROC_EXCEEDED",
        meaning: "RLIMIT_NPROC was exceeded",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x2000,
        name: "PF_USED_MATH",
        meaning: "has used the FPU",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x4000,
        name: "PF_USED_ASYNC",
        meaning: "used async_schedule()",
        since: ALWAYS,
        until: (5, 19),
    },
    Def {
        bit: 0x4000,
        name: "PF_USER_WORKER",
        meaning: "kernel worker cloned from a user thread (io_uring, vhost)",
        since: (6, 4),
        until: NEVER,
    },
    Def {
        bit: 0x8000,
        name: "PF_NOFREEZE",
        meaning: "never frozen",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x10000,
        name: "PF_FROZEN",
        meaning: "frozen for suspend or by the cgroup freezer",
        since: ALWAYS,
        until: (6, 1),
    },
    Def {
        bit: 0x20000,
        name: "PF_KSWAPD",
        meaning: "kswapd",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x40000,
        name: "PF_MEMALLOC_NOFS",
        meaning: "allocations may not recurse into filesystems",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x80000,
        name: "PF_MEMALLOC_NOIO",
        meaning: "allocations may not start I/O",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x100000,
        name: "PF_LOCAL_THROTTLE",
        meaning: "throttled only against its own backing device",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x200000,
        name: "PF_KTHREAD",
        meaning: "a kernel thread",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x400000,
        name: "PF_RANDOMIZE",
        meaning: "address space randomized",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x800000,
        name: "PF_SWAPWRITE",
        meaning: "allowed to write to swap",
        since: ALWAYS,
        until: (5, 19),
    },
    Def {
        bit: 0x800000,
        name: "PF_MEMALLOC_NORECLAIM",
        meaning: "allocations may not reclaim",
        since: (6, 11),
        until: (6, 12),
    },
    Def {
        bit: 0x1000000,
        name: "PF_MEMSTALL",
        meaning: "stalled on memory",
        since: ALWAYS,
        until: (5, 13),
    },
    Def {
        bit: 0x2000000,
        name: "PF_UMH",
        meaning: "a usermode helper",
        since: ALWAYS,
        until: (5, 10),
    },
    Def {
        bit: 0x4000000,
        name: "PF_NO_SETAFFINITY",
        meaning: "CPU affinity fixed by the kernel",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x8000000,
        name: "PF_MCE_EARLY",
        meaning: "early machine-check kill",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x10000000,
        name: "PF_MEMALLOC_PIN",
        meaning: "allocations restricted to pinnable zones",
        since: ALWAYS,
        until: NEVER,
    },
    Def {
        bit: 0x20000000,
        name: "PF_BLOCK_TS",
        meaning: "block plug timestamp to update",
        since: (6, 9),
        until: NEVER,
    },
    Def {
        bit: 0x40000000,
        name: "PF_FREEZER_SKIP",
        meaning: "freezer does not count it",
        since: ALWAYS,
        until: (6, 1),
    },
    Def {
        bit: 0x80000000,
        name: "PF_SUSPEND_TASK",
        meaning: "called freeze_processes()",
        since: ALWAYS,
        until: NEVER,
    },
];

/// The raw `PF_*` word of a task, with version-aware decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskFlags(pub u32);

impl TaskFlags {
    pub const EXITING: u32 = 0x4;
    pub const WQ_WORKER: u32 = 0x20;
    pub const DUMPCORE: u32 = 0x200;
    pub const SIGNALED: u32 = 0x400;
    pub const KTHREAD: u32 = 0x200000;

    /// The flags of a task, decoded for `version` (the newest layout when the
    /// version is unknown).
    pub fn decode(self, version: Option<KernelVersion>) -> Vec<TaskFlag> {
        let v = version
            .map(|v| (v.major, v.minor))
            .unwrap_or((u32::MAX - 1, 0));
        let mut out = Vec::new();
        for bit in (0..32).map(|i| 1u32 << i) {
            if self.0 & bit == 0 {
                continue;
            }
            let def = DEFS
                .iter()
                .find(|d| d.bit == bit && d.since <= v && v < d.until);
            out.push(match def {
                Some(d) => TaskFlag {
                    bit,
                    name: d.name,
                    meaning: d.meaning,
                },
                None => TaskFlag {
                    bit,
                    name: "PF_?",
                    meaning: "unassigned on this kernel",
                },
            });
        }
        out
    }

    pub fn contains(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Inside do_exit(): the task has begun to die (PF_EXITING).
    pub fn exiting(self) -> bool {
        self.contains(Self::EXITING)
    }

    pub fn kthread(self) -> bool {
        self.contains(Self::KTHREAD)
    }

    /// An io_uring worker (iou-wrk, iou-sqp): PF_IO_WORKER from 5.5.
    pub fn io_worker(self, version: Option<KernelVersion>) -> bool {
        self.contains(0x10) && version.is_none_or(|v| v.at_least(5, 5))
    }

    /// Names only, for compact display.
    pub fn names(self, version: Option<KernelVersion>) -> Vec<&'static str> {
        self.decode(version).into_iter().map(|f| f.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_dependent_bits() {
        let f = TaskFlags(0x8 | 0x10 | 0x4);
        let new = f.names(Some(KernelVersion::new(6, 18, 0)));
        assert_eq!(new, ["PF_EXITING", "PF_POSTCOREDUMP", "PF_IO_WORKER"]);
        let old = f.names(Some(KernelVersion::new(4, 15, 0)));
        assert_eq!(old, ["PF_EXITING", "PF_EXITPIDONE", "PF_VCPU"]);
        let gap = TaskFlags(0x8).names(Some(KernelVersion::new(5, 12, 0)));
        assert_eq!(gap, ["PF_?"]);
    }

    #[test]
    fn exiting_flag() {
        // A user thread inside do_exit() after a fatal signal.
        let f = TaskFlags(0x0040_4544);
        assert!(f.exiting() && f.contains(TaskFlags::SIGNALED) && !f.kthread());
    }
}
