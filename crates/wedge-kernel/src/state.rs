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
}
