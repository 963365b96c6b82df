//! Waits on a FUSE daemon: a request it does not answer, and the FLUSH of
//! an exiting process's files.

use super::{ev, explained, off_cpu, stack_evidence, task_path, RuleId};
use super::{DO_NOT_PTRACE, STUCK_AFTER_MS};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use crate::fuse::{Candidate, Target, Tie, TieBy};
use crate::wait::{describe_wait, wait_kind, WaitKind};
use wedge_kernel::TaskState;
use wedge_model::{Process, Snapshot, Thread};

rule_ids! {
    /// The FUSE family.
    pub enum FuseRule {
        /// Threads wait in request_wait_answer() for a daemon's reply.
        Unanswered = "fuse.unanswered",
        /// A thread in do_exit() waits for the reply to a FLUSH.
        FlushOnExit = "fuse.flush_on_exit",
    }
}

impl FuseRule {
    pub fn explanation(self) -> &'static str {
        match self {
            FuseRule::Unanswered => {
                "While waiting interruptibly (S) a signal would interrupt them; once a fatal signal \
                 arrives after the daemon has read the request, the wait becomes uninterruptible (D) \
                 until the daemon answers or the connection is aborted."
            }
            FuseRule::FlushOnExit => {
                "A thread of this process is inside do_exit() (PF_EXITING) closing its files, and \
                 closing a FUSE file sends FLUSH to the daemon and waits for the answer. The daemon has \
                 not answered, so the process can neither finish exiting nor be killed: a fatal signal \
                 is already being acted on. If the process is (or is a child of) a pid-namespace init, \
                 the init waits for it in zap_pid_ns_processes too (the deadlock of Netflix's FUSE \
                 report, seed 001). Kernels up to 6.18 still wait here: wedge's test kit reproduces it \
                 on 6.18; aborting the FUSE connection is the way out."
            }
        }
    }
}

pub(super) fn fuse_waits(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    let waiting: Vec<&Thread> = p
        .threads
        .iter()
        .filter(|t| {
            matches!(
                wait_kind(t),
                WaitKind::FuseRequest { .. } | WaitKind::FuseFlush
            )
        })
        .collect();
    let Some(first) = waiting.first() else {
        return;
    };
    let flush = waiting
        .iter()
        .any(|t| wait_kind(t) == WaitKind::FuseFlush && t.flags.exiting());
    let longest = waiting
        .iter()
        .filter_map(|t| off_cpu(snap, t))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let mut evidence = Vec::new();
    for t in &waiting {
        evidence.push(ev(
            format!("{}/stat", task_path(snap, p, t)),
            format!(
                "thread {} ({}) is {} and {}",
                t.tid,
                t.comm,
                t.state.code(),
                describe_wait(snap, p, t)
            ),
        ));
        if let Some(e) = stack_evidence(snap, p, t) {
            evidence.push(e);
        }
        if let Some(ms) = off_cpu(snap, t) {
            evidence.push(ev(
                format!("{}/sched", task_path(snap, p, t)),
                format!("off the CPU for {}", wedge_model::human_ms(ms)),
            ));
        }
    }
    // Each waiting thread is tied to its own connection (or not at all);
    // only tied connections get a remedy.
    let mut tied: Vec<Tie> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for t in &waiting {
        match crate::fuse::target(snap, p, t) {
            Target::Tied(tie) => {
                let (source, fact) = tie.evidence(snap, p, t);
                evidence.push(ev(source, fact));
                if !tied.iter().any(|x| x.connection == tie.connection) {
                    tied.push(tie);
                }
            }
            Target::Candidates { candidates: c, why } => {
                evidence.push(ev(
                    format!("{}/syscall", task_path(snap, p, t)),
                    format!(
                        "thread {} cannot be tied to a FUSE connection: {why}",
                        t.tid
                    ),
                ));
                for c in c {
                    if !candidates.iter().any(|x| x.connection == c.connection) {
                        candidates.push(c);
                    }
                }
            }
        }
    }
    candidates.retain(|c| !tied.iter().any(|t| t.connection == c.connection));
    for c in &candidates {
        evidence.push(ev(
            "candidate (not tied)",
            format!("candidate: {}", c.describe()),
        ));
    }
    for tie in &tied {
        let connection = tie.connection;
        if let Some(w) = crate::fuse::waiting(snap, connection) {
            evidence.push(ev(
                snap.source.fuse_locator(Some(connection)),
                format!(
                    "{w} requests waiting on connection {connection} ({})",
                    tie.mount_point
                ),
            ));
        }
    }
    let remedies = remedies(snap, &tied, &candidates);
    let in_d = waiting.iter().any(|t| t.state == TaskState::DiskSleep);
    let stuck = in_d || longest.is_some_and(|ms| ms >= STUCK_AFTER_MS);
    let (id, title, explanation) = if flush {
        let id = FuseRule::FlushOnExit;
        (
            id,
            format!(
                "{} ({}) cannot finish exiting: a thread is flushing a FUSE file",
                p.comm, p.pid
            ),
            id.explanation().to_string(),
        )
    } else {
        let id = FuseRule::Unanswered;
        (
            id,
            format!(
                "{} ({}) waits for a FUSE daemon that does not answer",
                p.comm, p.pid
            ),
            explained(
                format!(
                    "{} thread(s) of this process sent a request to a FUSE daemon and wait for \
                     its reply.",
                    waiting.len()
                ),
                RuleId::Fuse(id),
            ),
        )
    };
    out.push(Finding {
        severity: if stuck {
            Severity::Critical
        } else {
            Severity::Warning
        },
        confidence: if first.kernel_stack.value().is_some() {
            Confidence::High
        } else {
            Confidence::Medium
        },
        pids: vec![p.pid],
        evidence,
        explanation,
        remedies,
        do_not: vec![DO_NOT_PTRACE.into()],
        ..Finding::new(id, title)
    });
}

/// The way out for the tied connections, and what to find out first for
/// the untied candidates.
fn remedies(snap: &Snapshot, tied: &[Tie], candidates: &[Candidate]) -> Vec<Remedy> {
    let mut remedies = Vec::new();
    if snap.source.machine_gone() {
        // A dump: the connection died with the machine. Say what would
        // have ended the wait there; no command (run here, an abort would
        // hit this machine's own connection of that number).
        for tie in tied {
            remedies.push(Remedy {
                action: format!(
                    "on the machine this dump was taken from, aborting FUSE connection {} ({}) \
                     (echo 1 > /sys/fs/fuse/connections/{}/abort) would have failed the waiting \
                     requests and woken the waiters; nothing to run now: find out why its daemon \
                     stopped answering",
                    tie.connection, tie.mount_point, tie.connection
                ),
                command: None,
            });
        }
    }
    if !tied.is_empty() {
        remedies.extend(fusectl_remedy(snap));
    }
    for tie in tied.iter().filter(|_| !snap.source.machine_gone()) {
        let connection = tie.connection;
        let mp = &tie.mount_point;
        let how = if tie.sure() {
            String::new()
        } else {
            match &tie.by {
                TieBy::Cwd { .. } => " — tied by the working directory only: check that the stuck call is on this mount".into(),
                _ => " — a likely tie (see the evidence)".into(),
            }
        };
        remedies.extend(abort_remedies(connection, mp, &how, ""));
    }
    if !candidates.is_empty() {
        // Aborting a connection fails every request of every process on
        // it: never offered for one that is not tied to this process.
        remedies.push(Remedy {
            action: format!(
                "find which of the candidate connections ({}) this process waits on before aborting any: \
                 its daemon's log, or which mount the process was using; the others belong to other processes",
                candidates
                    .iter()
                    .map(|c| c.connection.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            command: None,
        });
    }
    remedies
}

/// Mounting fusectl, where it is not mounted and the machine is this one:
/// the connection number is the mount's device minor (mountinfo's `0:N`),
/// known without fusectl, but aborting goes through fusectl's files.
pub(super) fn fusectl_remedy(snap: &Snapshot) -> Option<Remedy> {
    (snap.fuse_connections.value().is_none() && !snap.source.machine_gone()).then(|| Remedy {
        action: "mount fusectl first: it is not mounted here, and aborting a connection goes through its files".into(),
        command: Some("mount -t fusectl none /sys/fs/fuse/connections".into()),
    })
}

/// Aborting one FUSE connection, then detaching its dead mount: the one
/// way out of an unanswered request, for every family whose waiters lead
/// to a connection. `how` qualifies the tie (empty when sure); `also`
/// says what else fails with it (a loop device's I/O on a backing file).
/// fuse_abort_conn() ends every pending request with ECONNABORTED and
/// every later one fails with ENOTCONN. (`umount -l` before the abort
/// only detaches the name: the stuck tasks stay stuck.)
pub(super) fn abort_remedies(connection: u32, mp: &str, how: &str, also: &str) -> Vec<Remedy> {
    vec![
        Remedy {
            action: format!(
                "abort FUSE connection {connection} ({mp}): every waiting request fails (ECONNABORTED) and the waiters wake{also}{how}"
            ),
            command: Some(format!("echo 1 > /sys/fs/fuse/connections/{connection}/abort")),
        },
        Remedy {
            action: format!(
"then detach the dead mount {mp}"),
            command: Some(format!("umount -l {mp}")),
        },
    ]
}
