//! Task states as the kernel reports them in `/proc/PID/stat` field 3 and the
//! `State:` line of `/proc/PID/status` (`fs/proc/array.c`, `task_state_array`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One task's scheduler state, as the one-letter code the kernel prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// `R`: on a run queue or on a CPU.
    Running,
    /// `S`: TASK_INTERRUPTIBLE, any signal wakes it.
    Sleeping,
    /// `D`: TASK_UNINTERRUPTIBLE (which includes TASK_KILLABLE and, for
    /// /proc before 4.14, TASK_IDLE): signals are queued, not acted on.
    DiskSleep,
    /// `T`: stopped by SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU (job control).
    Stopped,
    /// `t`: stopped under ptrace (signal-delivery or syscall stop).
    TracingStop,
    /// `Z`: exited, waiting for its parent to reap it.
    Zombie,
    /// `X`: being reaped; rarely seen.
    Dead,
    /// `P`: a parked kernel thread (4.14+ shows it; earlier kernels said D).
    Parked,
    /// `I`: an idle kernel thread (TASK_IDLE, 4.14+); not a hang.
    Idle,
    /// `K`, `W`, `x` and other letters of 3.x kernels, kept verbatim.
    Other(char),
}

impl TaskState {
    /// Decodes the state letter. Unknown letters are kept, never dropped.
    pub fn from_code(c: char) -> Self {
        match c {
            'R' => TaskState::Running,
            'S' => TaskState::Sleeping,
            'D' => TaskState::DiskSleep,
            'T' => TaskState::Stopped,
            't' => TaskState::TracingStop,
            'Z' => TaskState::Zombie,
            'X' | 'x' => TaskState::Dead,
            'P' => TaskState::Parked,
            'I' => TaskState::Idle,
            other => TaskState::Other(other),
        }
    }

    /// The letter `ps` and /proc print.
    pub fn code(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Sleeping => 'S',
            TaskState::DiskSleep => 'D',
            TaskState::Stopped => 'T',
            TaskState::TracingStop => 't',
            TaskState::Zombie => 'Z',
            TaskState::Dead => 'X',
            TaskState::Parked => 'P',
            TaskState::Idle => 'I',
            TaskState::Other(c) => c,
        }
    }

    /// The kernel's own word for the state.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Sleeping => "sleeping",
            TaskState::DiskSleep => "uninterruptible sleep",
            TaskState::Stopped => "stopped",
            TaskState::TracingStop => "tracing stop",
            TaskState::Zombie => "zombie",
            TaskState::Dead => "dead",
            TaskState::Parked => "parked",
            TaskState::Idle => "idle",
            TaskState::Other(_) => "unknown",
        }
    }

    /// What `kill -9` does to a task in this state.
    pub fn sigkill_effect(self) -> &'static str {
        match self {
            TaskState::Running => "dies the next time it returns to user mode",
            TaskState::Sleeping => "is woken and dies",
            TaskState::DiskSleep => {
                "is queued but not acted on until the wait ends; killable waits \
                 (TASK_KILLABLE) end at once, others only when the awaited event happens"
            }
            TaskState::Stopped => "is woken from the stop and dies",
            TaskState::TracingStop => "dies; the tracer sees it exit",
            TaskState::Zombie => {
                "does nothing: the task is already dead; only its parent's wait() \
                 (or the parent's own exit) removes it"
            }
            TaskState::Dead => "does nothing: the task is being reaped",
            TaskState::Parked | TaskState::Idle => "does nothing: kernel threads ignore signals",
            TaskState::Other(_) => "is unknown for this state letter",
        }
    }

    /// States in which the task cannot act on a fatal signal right now.
    pub fn is_uninterruptible(self) -> bool {
        matches!(self, TaskState::DiskSleep)
    }

    /// Stopped by job control or by a tracer.
    pub fn is_stopped(self) -> bool {
        matches!(self, TaskState::Stopped | TaskState::TracingStop)
    }
}

/// How a sleeping task sleeps, in the kernel's own terms: the distinctions
/// /proc folds into `S` and `D` (a crash dump shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SleepKind {
    /// TASK_INTERRUPTIBLE: any signal wakes it.
    Interruptible,
    /// TASK_KILLABLE: uninterruptible, but a fatal signal ends the wait.
    Killable,
    /// TASK_UNINTERRUPTIBLE proper: only the awaited event ends it.
    Uninterruptible,
    /// TASK_IDLE: an idle kernel thread, not counted as load.
    Idle,
    /// Frozen by the freezer (TASK_FROZEN, 6.1+).
    Frozen,
}

/// Scheduler state bits of `task_struct.__state` (`state`, a long, before
/// 5.14) and `exit_state` (`include/linux/sched.h`; stable since 4.14, with
/// TASK_RTLOCK_WAIT from 5.15 and TASK_FROZEN from 6.1; TASK_TRACED lost
/// its TASK_WAKEKILL bit in 5.19, which the decoding never relied on).
pub mod bits {
    pub const TASK_INTERRUPTIBLE: u32 = 0x1;
    pub const TASK_UNINTERRUPTIBLE: u32 = 0x2;
    pub const TASK_STOPPED: u32 = 0x4;
    pub const TASK_TRACED: u32 = 0x8;
    pub const EXIT_DEAD: u32 = 0x10;
    pub const EXIT_ZOMBIE: u32 = 0x20;
    pub const TASK_PARKED: u32 = 0x40;
    pub const TASK_DEAD: u32 = 0x80;
    pub const TASK_WAKEKILL: u32 = 0x100;
    pub const TASK_NOLOAD: u32 = 0x400;
    pub const TASK_RTLOCK_WAIT: u32 = 0x1000;
    pub const TASK_FROZEN: u32 = 0x8000;
    /// The bits /proc reports (TASK_REPORT).
    pub const TASK_REPORT: u32 = 0x7f;
    /// TASK_KILLABLE: uninterruptible, but a fatal signal wakes it.
    pub const TASK_KILLABLE: u32 = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE;
    /// TASK_IDLE: uninterruptible without counting as load.
    pub const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;
}

/// The state letter /proc would print for raw `__state` and `exit_state`
/// (`__task_state_index` in include/linux/sched.h), plus the finer sleep
/// kind /proc folds away. Shared by the crash-dump reader and the live BPF
/// source, which read the same two words.
pub fn decode_state(state: u32, exit_state: u32) -> (TaskState, Option<SleepKind>) {
    use bits::*;
    let rep = (state | exit_state) & TASK_REPORT;
    let kind = if state & TASK_FROZEN != 0 {
        Some(SleepKind::Frozen)
    } else if state & TASK_IDLE == TASK_IDLE {
        Some(SleepKind::Idle)
    } else if state & TASK_UNINTERRUPTIBLE != 0 {
        Some(if state & TASK_WAKEKILL != 0 {
            SleepKind::Killable
        } else {
            SleepKind::Uninterruptible
        })
    } else if state & TASK_INTERRUPTIBLE != 0 {
        Some(SleepKind::Interruptible)
    } else {
        None
    };
    if kind == Some(SleepKind::Idle) && exit_state == 0 {
        return (TaskState::Idle, kind);
    }
    // An rt-mutex sleeper (PREEMPT_RT's spinlocks, 5.15+) is reported as a
    // plain D; so is a frozen task (6.1 moved the freezer to TASK_FROZEN,
    // whose __state carries no TASK_REPORT bit, and /proc says D for it).
    if state & TASK_RTLOCK_WAIT != 0 && exit_state == 0 {
        return (TaskState::DiskSleep, Some(SleepKind::Uninterruptible));
    }
    if state & TASK_FROZEN != 0 && exit_state == 0 {
        return (TaskState::DiskSleep, kind);
    }
    // fls(): the highest reported bit picks the letter.
    let letter = match 32 - rep.leading_zeros() {
        0 => TaskState::Running,
        1 => TaskState::Sleeping,
        2 => TaskState::DiskSleep,
        3 => TaskState::Stopped,
        4 => TaskState::TracingStop,
        5 => TaskState::Dead,
        6 => TaskState::Zombie,
        _ => TaskState::Parked,
    };
    (letter, kind)
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_letter() {
        for c in "RSDTtZXPIK".chars() {
            assert_eq!(TaskState::from_code(c).code(), c);
        }
        assert_eq!(TaskState::from_code('x'), TaskState::Dead);
    }

    /// Every combination the kernel sets, as /proc would letter it and
    /// with the sleep kind /proc folds away.
    #[test]
    fn decodes_every_raw_state() {
        use bits::*;
        use SleepKind::*;
        let cases: &[(u32, u32, TaskState, Option<SleepKind>)] = &[
            (0, 0, TaskState::Running, None),
            (
                TASK_INTERRUPTIBLE,
                0,
                TaskState::Sleeping,
                Some(Interruptible),
            ),
            (
                TASK_UNINTERRUPTIBLE,
                0,
                TaskState::DiskSleep,
                Some(Uninterruptible),
            ),
            (TASK_KILLABLE, 0, TaskState::DiskSleep, Some(Killable)),
            (TASK_IDLE, 0, TaskState::Idle, Some(Idle)),
            (TASK_PARKED, 0, TaskState::Parked, None),
            // TASK_STOPPED is __TASK_STOPPED | TASK_WAKEKILL: not killable
            // sleep, a stop.
            (TASK_STOPPED | TASK_WAKEKILL, 0, TaskState::Stopped, None),
            (TASK_TRACED, 0, TaskState::TracingStop, None),
            (TASK_TRACED | TASK_WAKEKILL, 0, TaskState::TracingStop, None),
            (TASK_FROZEN, 0, TaskState::DiskSleep, Some(Frozen)),
            (
                TASK_RTLOCK_WAIT,
                0,
                TaskState::DiskSleep,
                Some(Uninterruptible),
            ),
            (TASK_DEAD, EXIT_ZOMBIE, TaskState::Zombie, None),
            (TASK_DEAD, EXIT_DEAD, TaskState::Dead, None),
            (0, EXIT_ZOMBIE, TaskState::Zombie, None),
        ];
        for &(state, exit, letter, kind) in cases {
            assert_eq!(
                decode_state(state, exit),
                (letter, kind),
                "__state {state:#x} exit_state {exit:#x}"
            );
        }
    }
}
