//! `wedge why PID --user-stacks`: each thread's user-space backtrace,
//! without ptrace.
//!
//! Registers come from /proc/PID/task/TID/syscall (sp, pc); the stacks are
//! copied by the bounded reader child of [`crate::live`]. Symbolizing opens
//! the process's binaries from wedge itself, and an open(2) of a file on a
//! FUSE or network filesystem whose server is gone blocks: so this is asked
//! for, never done by default, and refused when the process touches such a
//! filesystem — a decision of the diagnosis
//! (`wedge_analysis::user_stacks_refusal`), passed in as `refused`.

use serde::Serialize;
use wedge_model::{Field, Process, Snapshot, Syscall};

#[derive(Serialize)]
pub struct UserStacks {
    /// Why no stacks were read, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub threads: Vec<ThreadStack>,
}

#[derive(Serialize)]
pub struct ThreadStack {
    pub tid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<crate::LiveBacktrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads `p`'s user-space stacks, unless `refused` says why not.
pub fn read(
    snap: &Snapshot,
    p: &Process,
    deadline: std::time::Duration,
    refused: Option<String>,
) -> UserStacks {
    if let Some(why) = refused {
        return UserStacks {
            refused: Some(why),
            threads: Vec::new(),
        };
    }
    let live: Vec<crate::LiveThread> = p
        .threads
        .iter()
        .filter_map(|t| match &t.syscall {
            Field::Value(Syscall::InSyscall { sp, pc, .. })
            | Field::Value(Syscall::NotInSyscall { sp, pc }) => Some(crate::LiveThread {
                tid: t.tid,
                sp: *sp,
                pc: *pc,
            }),
            _ => None,
        })
        .collect();
    if live.is_empty() {
        return UserStacks {
            refused: Some("no thread is stopped at a known point (running, a kernel thread, or /proc/PID/syscall unreadable)".into()),
            threads: Vec::new(),
        };
    }
    // A blocked read of this process's cmdline means its mmap_lock is taken:
    // copying its memory would only queue behind it.
    let lock_held = snap
        .blocked_reads
        .iter()
        .any(|b| b.pid == p.pid && b.blocks_on.contains("mmap_lock"));
    let opts = crate::LiveOptions {
        deadline,
        mmap_lock_held: lock_held,
        ..Default::default()
    };
    match crate::live_backtraces(p.pid, &live, &opts) {
        Ok(list) => UserStacks {
            refused: None,
            threads: list
                .into_iter()
                .map(|(tid, r)| match r {
                    Ok(b) => ThreadStack {
                        tid,
                        backtrace: Some(b),
                        error: None,
                    },
                    Err(e) => ThreadStack {
                        tid,
                        backtrace: None,
                        error: Some(e.to_string()),
                    },
                })
                .collect(),
        },
        Err(e) => UserStacks {
            refused: Some(e.to_string()),
            threads: Vec::new(),
        },
    }
}

pub fn render(u: &UserStacks) -> String {
    let mut o = String::from("\nUser-space stacks (no ptrace)\n");
    if let Some(r) = &u.refused {
        o.push_str(&format!("  ({r})\n"));
    }
    for t in &u.threads {
        match (&t.backtrace, &t.error) {
            (Some(b), _) => {
                o.push_str(&format!("  thread {}\n", t.tid));
                for f in &b.frames {
                    o.push_str(&format!("    {}\n", crate::text::frame_line(f)));
                }
                if let Some(s) = &b.unwind_stopped {
                    o.push_str(&format!("    (unwinding stopped: {s})\n"));
                }
            }
            (None, Some(e)) => o.push_str(&format!("  thread {}: {e}\n", t.tid)),
            _ => {}
        }
    }
    o
}
