//! `wedge why PID --user-stacks`: each thread's user-space backtrace,
//! without ptrace.
//!
//! Registers come from /proc/PID/task/TID/syscall (sp, pc); the stacks are
//! copied by wedge-coredump's bounded reader child. Symbolizing opens the
//! process's binaries from wedge itself, and an open(2) of a file on a FUSE
//! or network filesystem whose server is gone blocks: so this is asked for,
//! never done by default, and refused when the process touches such a
//! filesystem.

use serde::Serialize;
use wedge_model::{Field, FsClass, Process, Snapshot, Syscall};

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
    pub backtrace: Option<wedge_coredump::LiveBacktrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A filesystem the process uses that could block wedge's open(2) of its
/// binaries, if any.
fn risky_filesystem(snap: &Snapshot, p: &Process) -> Option<String> {
    let remote = |m: &wedge_model::Mount| {
        matches!(
            m.class(),
            FsClass::Fuse { .. }
                | FsClass::Nfs { .. }
                | FsClass::Cifs { .. }
                | FsClass::Lustre { .. }
                | FsClass::Network { .. }
        )
    };
    if let Some(m) = snap.mounts_of(p).into_iter().find(|m| remote(m)) {
        return Some(format!(
            "it has files open on {} ({})",
            m.mount_point, m.fs_type
        ));
    }
    // The executable's filesystem: the longest mount point that prefixes it.
    if let Some(exe) = p.exe.value() {
        let m = snap
            .mounts
            .iter()
            .filter(|m| exe.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len());
        if let Some(m) = m.filter(|m| remote(m)) {
            return Some(format!(
                "its executable is on {} ({})",
                m.mount_point, m.fs_type
            ));
        }
    }
    if p.threads.iter().any(|t| {
        matches!(
            wedge_analysis::wait_kind(t),
            wedge_analysis::WaitKind::FuseRequest { .. }
                | wedge_analysis::WaitKind::FuseFlush
                | wedge_analysis::WaitKind::NfsServer
                | wedge_analysis::WaitKind::LustreServer
                | wedge_analysis::WaitKind::CifsServer
        )
    }) {
        return Some("a thread waits on a FUSE or network filesystem".into());
    }
    None
}

pub fn read(snap: &Snapshot, p: &Process, deadline: std::time::Duration) -> UserStacks {
    // Asking process_vm_readv for a kernel thread's memory fails with
    // ESRCH (it has no mm), which read as "No such process".
    if p.leader().is_some_and(|l| l.flags.kthread()) {
        return UserStacks {
            refused: Some(
                "a kernel thread has no user-space stack: it runs only in the kernel (its kernel \
                 stack is above)"
                    .into(),
            ),
            threads: Vec::new(),
        };
    }
    if let Some(why) = risky_filesystem(snap, p) {
        return UserStacks {
            refused: Some(format!(
                "not reading user-space stacks: {why}, and opening the binaries there could block wedge"
            )),
            threads: Vec::new(),
        };
    }
    let live: Vec<wedge_coredump::LiveThread> = p
        .threads
        .iter()
        .filter_map(|t| match &t.syscall {
            Field::Value(Syscall::InSyscall { sp, pc, .. })
            | Field::Value(Syscall::NotInSyscall { sp, pc }) => Some(wedge_coredump::LiveThread {
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
    let opts = wedge_coredump::LiveOptions {
        deadline,
        mmap_lock_held: lock_held,
        ..Default::default()
    };
    match wedge_coredump::live_backtraces(p.pid, &live, &opts) {
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
                    o.push_str(&format!("    {}\n", wedge_coredump::text::frame_line(f)));
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
