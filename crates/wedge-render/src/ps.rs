//! `wedge ps`: the tasks that matter, one line each, flat or as a tree.

use crate::{fit, human_ms, printable};
use std::collections::BTreeMap;
use std::fmt::Write;
use wedge_analysis::{matters, Attention};
use wedge_kernel::{Signal, TaskState};
use wedge_model::{Process, Snapshot, Thread};

/// Which tasks to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct PsOptions {
    pub all: bool,
    pub tree: bool,
    pub wide: bool,
}

/// Notes that `ps` cannot show: pending kill, exiting, tracer, pid-ns init.
pub fn notes(p: &Process, t: &Thread) -> String {
    let mut n: Vec<String> = Vec::new();
    // The kernel's own word on a D wait, where the source has it (a dump,
    // the live kernel through BPF): /proc's D folds both.
    if t.state == TaskState::DiskSleep {
        match t.sleep_kind {
            Some(wedge_kernel::SleepKind::Killable) => n.push("killable: kill -9 ends it".into()),
            Some(wedge_kernel::SleepKind::Uninterruptible) => {
                n.push("not even SIGKILL ends it".into())
            }
            _ => {}
        }
    }
    if let Some(lw) = &t.lock_wait {
        match lw.owner_tid {
            Some(o) => n.push(format!("{} owned by {o}", lw.kind)),
            None => n.push(format!("on a {}", lw.kind)),
        }
    }
    let pending = p.shared_pending.union(t.pending);
    if pending.contains(Signal::SIGKILL) && t.state != TaskState::Zombie {
        n.push("SIGKILL pending".into());
    } else {
        let fatal = pending.fatal_given(p.ignored, p.caught);
        if !fatal.is_empty() && t.state != TaskState::Zombie {
            n.push(format!("{fatal} pending"));
        }
    }
    if t.flags.exiting() && t.state != TaskState::Zombie {
        n.push("exiting".into());
    }
    if let Some(tr) = t.tracer_pid {
        n.push(format!("traced by {tr}"));
    }
    if p.is_nested_pidns_init() && t.tid == p.pid {
        n.push("pid-ns init".into());
    }
    if t.kind.is_io_uring() {
        n.push("io_uring worker".into());
    }
    // The container or pod, so "pod X's process waits for …" is one row.
    if let Some(w) = wedge_analysis::workload::of(p) {
        if w.container.is_some() || w.pod_uid.is_some() {
            n.push(format!("in {}", w.words()));
        }
    }
    n.join(", ")
}

fn frame(snap: &Snapshot, t: &Thread) -> String {
    let telling = t.kernel_stack.value().and_then(|s| {
        s.iter()
            .find(|f| !wedge_kernel::frames::is_generic_wait(f.base_name()))
    });
    match telling.or(t.top_frame()) {
        Some(f) => f.function.clone(),
        None => match t.kernel_stack.missing_info() {
            // Root can be refused too (a process holding capabilities
            // wedge lacks, a security module): "need root" would be wrong.
            Some(m)
                if m.reason == wedge_model::MissingReason::PermissionDenied
                    && snap.system.viewer_uid == 0 =>
            {
                "(denied)".into()
            }
            Some(m) if m.reason == wedge_model::MissingReason::PermissionDenied => {
                "(need root)".into()
            }
            Some(m) if m.reason == wedge_model::MissingReason::TimedOut => "(read blocked)".into(),
            _ => "-".into(),
        },
    }
}

fn line(snap: &Snapshot, p: &Process, t: &Thread, prefix: &str, wide: bool) -> String {
    let off = snap
        .off_cpu_ms(t)
        .filter(|_| !matches!(t.state, TaskState::Running))
        .map(human_ms)
        .unwrap_or_else(|| "-".into());
    let wchan = t.wchan_name().unwrap_or("-");
    let cmd = if t.tid == p.pid {
        printable(&p.command()).into_owned()
    } else {
        format!("{} [thread of {}]", printable(&t.comm), printable(&p.comm))
    };
    let cmd = if wide { cmd } else { fit(&cmd, 60) };
    let notes = notes(p, t);
    let mut s = format!(
        "{:>7} {:>7} {:<4} {:>8} {:<24} {:<26} {}{}",
        p.pid,
        t.tid,
        t.state.code(),
        off,
        fit(wchan, 24),
        fit(&frame(snap, t), 26),
        prefix,
        cmd
    );
    if !notes.is_empty() {
        let _ = write!(s, "  ({notes})");
    }
    s
}

pub const HEADER: &str =
    "    PID     TID STAT  OFF-CPU WCHAN                    WAITING IN                 COMMAND";

/// Renders the listing. Returns the text and how many tasks it shows.
pub fn render(snap: &Snapshot, opts: PsOptions) -> (String, usize) {
    let mut out = String::new();
    let mut shown = 0;
    let _ = writeln!(out, "{HEADER}");
    let chosen = |p: &Process, t: &Thread| opts.all || matters(p, t).is_some();
    if !opts.tree {
        let mut rows: Vec<(Attention, &Process, &Thread)> = Vec::new();
        for p in &snap.processes {
            for t in &p.threads {
                if opts.all {
                    rows.push((matters(p, t).unwrap_or(Attention::BlockingWait), p, t));
                } else if let Some(a) = matters(p, t) {
                    rows.push((a, p, t));
                }
            }
        }
        if !opts.all {
            rows.sort_by_key(|(a, p, t)| (*a, p.pid, t.tid));
        }
        for (_, p, t) in rows {
            let _ = writeln!(out, "{}", line(snap, p, t, "", opts.wide));
            shown += 1;
        }
        return (out, shown);
    }
    // Tree: processes under their parents; threads under their process.
    let mut children: BTreeMap<i32, Vec<&Process>> = BTreeMap::new();
    let pids: std::collections::HashSet<i32> = snap.processes.iter().map(|p| p.pid).collect();
    let mut roots = Vec::new();
    for p in &snap.processes {
        if pids.contains(&p.ppid) && p.ppid != p.pid {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    // Without --all, keep only branches that lead to a task that matters.
    let mut keep: std::collections::HashSet<i32> = std::collections::HashSet::new();
    if !opts.all {
        let index = snap.index();
        for p in &snap.processes {
            if p.threads.iter().any(|t| chosen(p, t)) {
                let mut cur = Some(p);
                let mut guard = 0;
                while let Some(c) = cur {
                    if !keep.insert(c.pid) || guard > 4096 {
                        break;
                    }
                    guard += 1;
                    cur = index.get(&c.ppid).map(|&i| &snap.processes[i]);
                }
            }
        }
    }
    let mut tree = Tree {
        snap,
        children: &children,
        keep: &keep,
        opts,
        out: &mut out,
        shown: &mut shown,
    };
    for r in roots {
        tree.walk(r, 0);
    }
    (out, shown)
}

/// The state of one tree rendering.
struct Tree<'a> {
    snap: &'a Snapshot,
    children: &'a BTreeMap<i32, Vec<&'a Process>>,
    keep: &'a std::collections::HashSet<i32>,
    opts: PsOptions,
    out: &'a mut String,
    shown: &'a mut usize,
}

impl Tree<'_> {
    fn walk(&mut self, p: &Process, depth: usize) {
        if !self.opts.all && !self.keep.contains(&p.pid) {
            return;
        }
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}\\_ ", "   ".repeat(depth - 1))
        };
        let Some(leader) = p.leader() else { return };
        let _ = writeln!(
            self.out,
            "{}",
            line(self.snap, p, leader, &indent, self.opts.wide)
        );
        *self.shown += 1;
        for t in p.threads.iter().filter(|t| t.tid != p.pid) {
            if self.opts.all || matters(p, t).is_some() {
                let pad = format!("{}   · ", "   ".repeat(depth));
                let _ = writeln!(self.out, "{}", line(self.snap, p, t, &pad, self.opts.wide));
                *self.shown += 1;
            }
        }
        let kids = self.children.get(&p.pid).cloned().unwrap_or_default();
        for k in kids {
            self.walk(k, depth + 1);
        }
    }
}
