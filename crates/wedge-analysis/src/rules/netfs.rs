//! Network filesystems: a task waiting for a server's reply (found by the
//! uninterruptible rule, with this id), and stdio on files the server
//! deleted.

use super::{ev, pid_path};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use wedge_model::{FsClass, Snapshot};

rule_ids! {
    /// The network-filesystem family.
    pub enum NetFsRule {
        /// A task (or, from the kernel log, the NFS client) waits for a
        /// server that does not answer.
        ServerUnreachable = "netfs.server_unreachable",
        /// stdio on deleted files of a network filesystem.
        StdioStale = "stdio.stale",
    }
}

impl NetFsRule {
    pub fn explanation(self) -> &'static str {
        match self {
            NetFsRule::ServerUnreachable => {
                "The task waits for a network filesystem server's reply. With a hard mount the \
                 client retries forever; the wait ends when the server answers."
            }
            NetFsRule::StdioStale => {
                "A file deleted on the NFS server is stale for this client: fstat() and write() on \
                 the descriptor fail with ESTALE. Runtimes that check their stdio at exit (Node.js's \
                 ResetStdio) abort on it; as PID 1 of a container that abort ends in a general \
                 protection fault (seed 002)."
            }
        }
    }

    pub fn remedies(self) -> Vec<Remedy> {
        match self {
            NetFsRule::ServerUnreachable => vec![Remedy {
                action: "bring the server back, or force-unmount the mount (umount -f, then umount -l)".into(),
                command: None,
            }],
            NetFsRule::StdioStale => vec![Remedy {
                action: "give the process pipes for stdio (the container runtime's log driver) instead of files on NFS".into(),
                command: None,
            }],
        }
    }
}

/// stdio on files of a network filesystem that were deleted: after the
/// server removes the file, fstat() on the descriptor fails with ESTALE
/// (NFSv3), which some runtimes treat as fatal — Node.js aborts in
/// ResetStdio (seed 002).
pub(super) fn stdio_stale(snap: &Snapshot, out: &mut Vec<Finding>) {
    let id = NetFsRule::StdioStale;
    for p in &snap.processes {
        let Some(fds) = p.fds.value() else { continue };
        let risky: Vec<String> = fds
            .iter()
            .filter(|f| f.fd <= 2)
            .filter(|f| {
                f.mount_id.and_then(|m| snap.mount(m)).is_some_and(|m| {
                    matches!(m.class(), FsClass::Nfs { .. } | FsClass::Cifs { .. })
                })
            })
            .filter(|f| f.kind == wedge_model::FileKind::Deleted)
            .map(|f| format!("fd {} → {}", f.fd, f.target))
            .collect();
        if risky.is_empty() {
            continue;
        }
        out.push(Finding {
            severity: Severity::Warning,
            confidence: Confidence::Medium,
            pids: vec![p.pid],
            evidence: risky
                .into_iter()
                .map(|r| ev(format!("{}/fd", pid_path(snap, p.pid)), r))
                .collect(),
            explanation: id.explanation().into(),
            remedies: id.remedies(),
            ..Finding::new(
                id,
                format!(
                    "{} ({}) writes its stdio to deleted files on a network filesystem",
                    p.comm, p.pid
                ),
            )
        });
    }
}
