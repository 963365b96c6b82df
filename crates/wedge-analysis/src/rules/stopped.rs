//! Stopped tasks: by a job-control signal, or by a tracer.

use super::{ev, task_path};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use wedge_kernel::TaskState;
use wedge_model::{Process, Snapshot, Thread};

rule_ids! {
    /// The stopped family.
    pub enum StoppedRule {
        /// Stopped by SIGSTOP/SIGTSTP (T).
        Stopped = "task.stopped",
        /// Held in a ptrace stop by its tracer (t).
        Traced = "ptrace.stopped",
    }
}

impl StoppedRule {
    pub fn explanation(self) -> &'static str {
        match self {
            StoppedRule::Stopped => "Stopped by SIGSTOP/SIGTSTP; it does nothing until SIGCONT.",
            StoppedRule::Traced => {
                "The tracer (a debugger, strace) holds the task stopped; it runs again when the \
                 tracer resumes or detaches it."
            }
        }
    }

    /// The way to resume `t` of process `p`.
    pub fn remedies(self, p: &Process, t: &Thread) -> Vec<Remedy> {
        match self {
            StoppedRule::Stopped => vec![Remedy {
                action: "resume it".into(),
                command: Some(format!("kill -CONT {}", p.pid)),
            }],
            StoppedRule::Traced => vec![Remedy {
                action: "let the tracer continue or detach (in its debugger), or end the tracer: a ptrace stop ignores SIGCONT, and the tracee resumes when its tracer goes away".into(),
                command: t.tracer_pid.map(|tr| format!("kill {tr}")),
            }],
        }
    }
}

pub(super) fn stopped(snap: &Snapshot, p: &Process, out: &mut Vec<Finding>) {
    let Some(t) = p.threads.iter().find(|t| t.state.is_stopped()) else {
        return;
    };
    let id = if t.state == TaskState::TracingStop {
        StoppedRule::Traced
    } else {
        StoppedRule::Stopped
    };
    let mut evidence = vec![ev(
        format!("{}/stat", task_path(snap, p, t)),
        format!(
            "thread {} is {} ({})",
            t.tid,
            t.state.code(),
            t.state.name()
        ),
    )];
    if let Some(tr) = t.tracer_pid {
        let who = snap.process(tr).map(|x| x.comm.as_str()).unwrap_or("?");
        evidence.push(ev(
            format!("{}/status", task_path(snap, p, t)),
            format!("TracerPid: {tr} ({who})"),
        ));
    }
    let title = match id {
        StoppedRule::Traced => format!(
            "{} ({}) is stopped by its tracer{}",
            p.comm,
            p.pid,
            t.tracer_pid
                .map(|t| format!(", pid {t}"))
                .unwrap_or_default()
        ),
        StoppedRule::Stopped => format!("{} ({}) is stopped", p.comm, p.pid),
    };
    out.push(Finding {
        severity: Severity::Warning,
        confidence: Confidence::High,
        pids: vec![p.pid],
        evidence,
        explanation: id.explanation().into(),
        remedies: id.remedies(p, t),
        ..Finding::new(id, title)
    });
}
