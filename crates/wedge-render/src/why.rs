//! `wedge why PID`: everything about one process, readable.

use crate::history::Recall;
use crate::{human_ms, printable, ps::notes};
use serde::Serialize;
use std::fmt::Write;
use wedge_analysis::{describe_wait, Finding};
use wedge_kernel::TaskState;
use wedge_model::{FsClass, Process, Snapshot, Thread};

/// Threads that share a state, wait channel and kernel stack. Threads whose
/// stack could not be read are never grouped with others as "identical":
/// they share a group only with threads of the same state and wait channel
/// whose stack was unreadable for the same reason, and the group says so.
#[derive(Debug, Serialize)]
pub struct ThreadGroup {
    pub tids: Vec<i32>,
    pub comms: Vec<String>,
    pub state: TaskState,
    pub wchan: Option<String>,
    pub stack: Vec<String>,
    /// Why the stack is not known, when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_unreadable: Option<String>,
    /// Where the stack was read (/proc, BPF, the ORC unwinder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_source: Option<wedge_model::StackSource>,
    /// The address of the lock the threads wait for, where the kernel
    /// names it (threads on different locks are never one group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<u64>,
    pub waits: String,
}

/// The JSON form of `wedge why`.
#[derive(Serialize)]
pub struct WhyReport<'a> {
    pub process: &'a Process,
    pub summary: Vec<String>,
    /// For each waiting thread, the chains to what it ultimately waits on.
    pub chains: Vec<String>,
    pub thread_groups: Vec<ThreadGroup>,
    /// Each with the episode of its task, when the recorder has one.
    pub findings: Vec<crate::history::FindingView<'a>>,
    pub blocked_reads: Vec<&'a wedge_model::BlockedRead>,
    /// The recorder's ongoing episode of each thread stuck now (absent
    /// without a database).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<crate::history::EpisodeView<'a>>,
    /// Why the recorder's database could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_unreadable: Option<&'a str>,
}

fn stack_names(t: &Thread) -> Vec<String> {
    t.kernel_stack
        .value()
        .map(|s| s.iter().map(|f| f.function.clone()).collect())
        .unwrap_or_default()
}

pub fn groups(snap: &Snapshot, p: &Process) -> Vec<ThreadGroup> {
    let mut out: Vec<ThreadGroup> = Vec::new();
    for t in &p.threads {
        let stack = stack_names(t);
        let wchan = t.wchan_name().map(str::to_string);
        let unreadable = t.kernel_stack.missing_info().map(|m| m.detail.clone());
        // The reason without its path (which names the thread).
        let why = |u: &Option<String>| {
            u.as_deref()
                .map(|d| d.rsplit(": ").next().unwrap_or(d).to_string())
        };
        let lock = t.lock_wait.as_ref().map(|l| l.address);
        if let Some(g) = out.iter_mut().find(|g| {
            g.state == t.state
                && g.wchan == wchan
                && g.stack == stack
                && g.lock == lock
                && why(&g.stack_unreadable) == why(&unreadable)
        }) {
            g.tids.push(t.tid);
            if !g.comms.contains(&t.comm) {
                g.comms.push(t.comm.clone());
            }
            continue;
        }
        out.push(ThreadGroup {
            tids: vec![t.tid],
            comms: vec![t.comm.clone()],
            state: t.state,
            wchan,
            stack,
            stack_unreadable: unreadable,
            stack_source: t.stack_source,
            lock,
            waits: describe_wait(snap, p, t),
        });
    }
    // Stuck groups first.
    out.sort_by_key(|g| match g.state {
        TaskState::DiskSleep => 0,
        TaskState::Zombie => 1,
        TaskState::TracingStop | TaskState::Stopped => 2,
        TaskState::Sleeping => 3,
        _ => 4,
    });
    out
}

/// One sentence per notable thread.
pub fn summary(snap: &Snapshot, p: &Process) -> Vec<String> {
    summary_with(snap, p, None)
}

/// [`summary`], saying since when a thread has been blocked where the
/// recorder's history knows it.
pub fn summary_with(snap: &Snapshot, p: &Process, recall: Option<&Recall<'_>>) -> Vec<String> {
    let mut s = Vec::new();
    for t in &p.threads {
        if wedge_analysis::matters(p, t).is_some() || t.tid == p.pid {
            let who = if t.tid == p.pid {
                format!("{} ({})", p.comm, p.pid)
            } else {
                format!("thread {} ({})", t.tid, t.comm)
            };
            let off = snap
                .off_cpu_ms(t)
                .filter(|_| t.state != TaskState::Running)
                .map(|ms| format!(", off the CPU for {}", human_ms(ms)))
                .unwrap_or_default();
            let since = recall
                .and_then(|r| {
                    r.rec
                        .of_thread(t.tid)
                        .map(|e| format!(", {}", crate::history::blocked_since(e, &r.clock)))
                })
                .unwrap_or_default();
            s.push(format!(
                "{who} is {} ({}){off}{since} and {}",
                t.state.code(),
                t.state.name(),
                describe_wait(snap, p, t)
            ));
        }
    }
    if p.is_nested_pidns_init() {
        s.push(format!(
            "it is PID 1 of its pid namespace (pids {}): signals without a handler, SIGABRT included, are \
             discarded for it, and when it exits the kernel kills the whole namespace",
            p.ns_pids.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" → ")
        ));
    }
    s
}

/// The report on one process; `g` is the snapshot's wait-for graph, the
/// one the findings were drawn from.
pub fn report<'a>(
    snap: &'a Snapshot,
    p: &'a Process,
    findings: &'a [Finding],
    g: &wedge_analysis::graph::Graph,
) -> WhyReport<'a> {
    report_with(snap, p, findings, g, None)
}

/// [`report`] with the recorder's history, when there is a database.
pub fn report_with<'a>(
    snap: &'a Snapshot,
    p: &'a Process,
    findings: &'a [Finding],
    g: &wedge_analysis::graph::Graph,
    recall: Option<&Recall<'a>>,
) -> WhyReport<'a> {
    let mut chains = Vec::new();
    for t in &p.threads {
        let node = wedge_analysis::graph::Node::Task {
            pid: p.pid,
            tid: t.tid,
        };
        if g.out(&node).next().is_none() {
            continue;
        }
        for c in g.chains(&node).into_iter().take(4) {
            let words: Vec<String> = c
                .iter()
                .map(|n| wedge_analysis::graph::describe(snap, n))
                .collect();
            chains.push(words.join(" → "));
        }
    }
    WhyReport {
        process: p,
        summary: summary_with(snap, p, recall),
        chains,
        thread_groups: groups(snap, p),
        findings: crate::history::finding_views(
            snap,
            findings.iter().filter(|f| f.pids.contains(&p.pid)),
            recall,
        ),
        blocked_reads: snap.blocked_reads_of(p.pid).collect(),
        episodes: recall
            .map(|r| {
                p.threads
                    .iter()
                    .filter_map(|t| r.rec.of_thread(t.tid))
                    .map(|e| crate::history::EpisodeView::new(e, r.clock.now_unix_ms))
                    .collect()
            })
            .unwrap_or_default(),
        history_unreadable: recall.and_then(|r| r.rec.error.as_deref()),
    }
}

fn field_text<T: std::fmt::Display>(f: &wedge_model::Field<T>) -> String {
    match f {
        wedge_model::Field::Value(v) => v.to_string(),
        wedge_model::Field::Missing(m) => missing_text(m),
    }
}

/// A value that is not there: "unreadable (why)" when a read failed, the
/// bare reason when there is nothing to read (a kernel thread's exe).
fn missing_text(m: &wedge_model::Missing) -> String {
    match m.reason {
        wedge_model::MissingReason::NotSupported | wedge_model::MissingReason::NotCollected => {
            format!("({})", m.detail)
        }
        _ => format!("unreadable ({})", m.detail),
    }
}

pub fn render(
    snap: &Snapshot,
    p: &Process,
    findings: &[Finding],
    g: &wedge_analysis::graph::Graph,
) -> String {
    render_with(snap, p, findings, g, None)
}

/// [`render`] with the recorder's history: "blocked since" in what each
/// thread is doing, and a section with each episode's start, its window
/// of uncertainty and the system calls that led in.
pub fn render_with(
    snap: &Snapshot,
    p: &Process,
    findings: &[Finding],
    g: &wedge_analysis::graph::Graph,
    recall: Option<&Recall<'_>>,
) -> String {
    let r = report_with(snap, p, findings, g, recall);
    let version = snap.kernel_version();
    let mut o = String::new();
    let leader_state = p.leader().map(|l| l.state).unwrap_or(TaskState::Other('?'));
    let _ = writeln!(
        o,
        "{} (pid {}) — {} ({}), {} thread(s)",
        printable(&p.comm),
        p.pid,
        leader_state.code(),
        leader_state.name(),
        p.threads.len()
    );
    let kthread = p.leader().is_some_and(|l| l.flags.kthread());
    let cmd = match &p.cmdline {
        wedge_model::Field::Value(v) if !v.is_empty() => printable(&v.join(" ")).into_owned(),
        wedge_model::Field::Value(_) if kthread => {
            format!(
                "[{}] (a kernel thread: no command line)",
                printable(&p.comm)
            )
        }
        wedge_model::Field::Value(_) => {
            format!("[{}] (no command line: it has exited)", printable(&p.comm))
        }
        wedge_model::Field::Missing(m) => format!("unreadable ({})", m.detail),
    };
    let _ = writeln!(o, "  command     {cmd}");
    let _ = writeln!(o, "  exe         {}", field_text(&p.exe));
    let _ = writeln!(o, "  cwd         {}", field_text(&p.cwd));
    let parent = match snap.process(p.ppid) {
        Some(pp) => printable(&pp.label()).into_owned(),
        // ppid 0: the kernel started it (PID 1, kthreadd), or its parent
        // lives outside the pid namespace of this view (the init of a
        // container seen from inside; a task moved in with setns).
        None if p.ppid == 0
            && (kthread || (p.pid == 1 && snap.system.pid_ns_nested == Some(false))) =>
        {
            "none — started by the kernel".to_string()
        }
        None if p.ppid == 0 && snap.system.pid_ns_nested == Some(true) => {
            "none visible — the parent is outside this pid namespace".to_string()
        }
        None if p.ppid == 0 => {
            "none — started by the kernel, or by a process outside this pid namespace".to_string()
        }
        None => format!(
            "{} (not visible: it exited, or is hidden from this viewer)",
            p.ppid
        ),
    };
    let _ = writeln!(o, "  parent      {parent}");
    if let Some(w) = wedge_analysis::workload::of(p) {
        let mut words = w.words();
        if let Some(u) = w
            .unit
            .as_ref()
            .filter(|_| w.container.is_some() || w.pod_uid.is_some())
        {
            words.push_str(&format!(", unit {u}"));
        }
        let _ = writeln!(o, "  runs in     {words}");
    }
    let kids: Vec<String> = snap
        .children(p.pid)
        .map(|c| printable(&c.label()).into_owned())
        .collect();
    if !kids.is_empty() {
        let _ = writeln!(o, "  children    {}", kids.join(", "));
    }
    let tracers: Vec<i32> = p.threads.iter().filter_map(|t| t.tracer_pid).collect();
    if let Some(tr) = tracers.first() {
        let who = snap.process(*tr).map(|x| x.comm.as_str()).unwrap_or("?");
        let _ = writeln!(o, "  tracer      {} ({tr})", printable(who));
    }
    if p.ns_pids.len() > 1 {
        let _ = writeln!(
            o,
            "  pid ns      pids by namespace, outermost first: {}{}",
            p.ns_pids
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" → "),
            if p.is_nested_pidns_init() {
                "  (init of its pid namespace)"
            } else {
                ""
            }
        );
    }
    if let Some(ns) = p.namespaces.value() {
        let list: Vec<String> = ns
            .iter()
            .filter(|n| matches!(n.kind.as_str(), "pid" | "mnt" | "net" | "user" | "cgroup"))
            .map(|n| format!("{}:{}", n.kind, n.inode))
            .collect();
        let _ = writeln!(o, "  namespaces  {}", list.join(" "));
    }
    if let Some(cg) = p.cgroup.value() {
        // The line that says most: the unified hierarchy's unless it is
        // the root, else the first v1 line below a root.
        let not_root = |l: &&String| !l.ends_with(":/");
        let shown = cg
            .iter()
            .find(|l| l.starts_with("0::") && not_root(l))
            .or_else(|| cg.iter().find(not_root))
            .or(cg.first());
        if let Some(line) = shown {
            let _ = writeln!(o, "  cgroup      {line}");
        }
    }
    // Unread dispositions are not empty sets: say so rather than print `-`.
    let dispositions = match &p.dispositions_missing {
        Some(m) => format!("ignored/caught ({m})"),
        None => format!("ignored {}  caught {}", p.ignored, p.caught),
    };
    let _ = writeln!(
        o,
        "  signals     pending(group) {}  {dispositions}",
        p.shared_pending
    );
    // Handler addresses (a dump reads them): user addresses, unsymbolised
    // (the program's symbols are not in a kernel dump).
    if !p.handlers.is_empty() {
        let list: Vec<String> = p
            .handlers
            .iter()
            .map(|h| format!("{} {:#x}", h.signal, h.handler))
            .collect();
        let _ = writeln!(o, "  handlers    {}", list.join("  "));
    }
    let _ = writeln!(o, "\nWhat it is doing");
    for line in &r.summary {
        let _ = writeln!(o, "  • {}", printable(line));
    }
    if let Some(rc) = recall {
        recorded_text(&mut o, p, rc);
    }
    if !r.chains.is_empty() {
        let _ = writeln!(o, "\nWaits on (to the root cause)");
        for c in &r.chains {
            let _ = writeln!(o, "  {}", printable(c));
        }
    }
    let _ = writeln!(
        o,
        "\nThreads, grouped by identical kernel stack{}",
        if r.thread_groups.iter().any(|g| g.stack_unreadable.is_some()) {
            " (where it could not be read: by state and wait channel only)"
        } else {
            ""
        }
    );
    for g in &r.thread_groups {
        let tids: Vec<String> = g.tids.iter().take(12).map(|t| t.to_string()).collect();
        let more = if g.tids.len() > 12 {
            format!(" +{}", g.tids.len() - 12)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {} × {} [{}{}] {}  wchan {}",
            g.tids.len(),
            g.state.code(),
            tids.join(","),
            more,
            printable(&g.comms.join(",")),
            g.wchan.as_deref().unwrap_or("-")
        );
        let t = p.threads.iter().find(|t| t.tid == g.tids[0]);
        if let Some(t) = t {
            let flags = t.flags.names(version);
            let notes = notes(p, t);
            if !notes.is_empty() {
                let _ = writeln!(o, "      notes   {notes}");
            }
            let _ = writeln!(o, "      flags   {:#x} {}", t.flags.0, flags.join(" "));
            if !t.pending.is_empty() || !t.blocked.is_empty() {
                let _ = writeln!(
                    o,
                    "      signals pending(thread) {}  blocked {}",
                    t.pending, t.blocked
                );
            }
            match &t.syscall {
                wedge_model::Field::Value(wedge_model::Syscall::InSyscall {
                    nr,
                    name,
                    args,
                    ..
                }) => {
                    let _ = writeln!(
                        o,
                        "      syscall {}({})",
                        name.clone().unwrap_or_else(|| format!("#{nr}")),
                        args.iter()
                            .take(3)
                            .map(|a| format!("{a:#x}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                wedge_model::Field::Value(wedge_model::Syscall::NotInSyscall { .. }) => {
                    let _ = writeln!(o, "      syscall none (blocked outside a system call, e.g. in a page fault or exit)");
                }
                wedge_model::Field::Value(wedge_model::Syscall::Running) => {
                    let _ = writeln!(o, "      syscall - (running)");
                }
                wedge_model::Field::Missing(m)
                    if matches!(
                        m.reason,
                        wedge_model::MissingReason::NotSupported
                            | wedge_model::MissingReason::NotCollected
                    ) =>
                {
                    let _ = writeln!(o, "      syscall none ({})", m.detail);
                }
                wedge_model::Field::Missing(m) => {
                    let _ = writeln!(o, "      syscall unreadable ({})", m.detail);
                }
            }
            // What the kernel itself says of the lock it waits on (a dump,
            // or the live kernel through BPF); how it sleeps is in notes.
            if t.lock_wait.is_some() {
                let _ = writeln!(o, "      lock    {}", wedge_analysis::lock_words(snap, t));
            }
            let joined = t
                .kernel_stack
                .value()
                .is_some_and(|s| s.iter().any(|f| f.origin.is_some()));
            match t.stack_source {
                Some(src @ (wedge_model::StackSource::Bpf | wedge_model::StackSource::Orc))
                    if t.kernel_stack.value().is_some() =>
                {
                    let _ = writeln!(
                        o,
                        "      stack   from {}{}",
                        src.describe(),
                        if joined {
                            "; frames marked (bpf) continue it from bpf_get_task_stack where the unwind stopped"
                        } else {
                            ""
                        }
                    );
                }
                _ => {}
            }
            match &t.kernel_stack {
                wedge_model::Field::Value(s) => {
                    for f in s {
                        let _ = writeln!(
                            o,
                            "        {}{}{}",
                            f.function,
                            f.module
                                .as_ref()
                                .map(|m| format!(" [{m}]"))
                                .unwrap_or_default(),
                            if joined && f.origin == Some(wedge_model::StackSource::Bpf) {
                                "  (bpf)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                wedge_model::Field::Missing(m) => {
                    let _ = writeln!(
                        o,
                        "      stack   unreadable ({}){}",
                        m.detail,
                        if g.tids.len() > 1 {
                            "; grouped by state and wait channel only"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    }
    if let Some(fds) = p.fds.value() {
        let interesting: Vec<_> = fds
            .iter()
            .filter(|f| {
                f.mount_id
                    .and_then(|m| snap.mount(m))
                    .is_some_and(|m| m.is_remote_or_userspace())
                    || matches!(f.kind, wedge_model::FileKind::IoUring)
            })
            .collect();
        let _ = writeln!(
            o,
            "\nOpen files: {} ({} on FUSE/network filesystems or io_uring)",
            fds.len(),
            interesting.len()
        );
        for f in fds
            .iter()
            .filter(|f| f.kind != wedge_model::FileKind::Socket)
            .take(40)
        {
            let fs = f
                .mount_id
                .and_then(|m| snap.mount(m))
                .map(|m| {
                    let class = match m.class() {
                        FsClass::Fuse { connection, .. } => {
                            format!(" FUSE connection {connection}")
                        }
                        FsClass::Nfs { server } => format!(" NFS server {server}"),
                        FsClass::Cifs { server } => format!(" CIFS server {server}"),
                        FsClass::Lustre { server } => format!(" Lustre {server}"),
                        _ => String::new(),
                    };
                    format!("  [{} on {}{}]", m.fs_type, m.mount_point, class)
                })
                .unwrap_or_default();
            let detail = match &f.detail {
                Some(wedge_model::FdDetail::IoUring(u)) => format!(
                    "  sq {} entries, {} unsubmitted; cq {} ready{}",
                    u.sq_entries.map_or("?".into(), |v| v.to_string()),
                    u.sq_pending.map_or("?".into(), |v| v.to_string()),
                    u.cq_ready.map_or("?".into(), |v| v.to_string()),
                    u.sq_thread
                        .map(|t| format!("; SQPOLL thread {t}"))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            let _ = writeln!(o, "  {:>4} {}{fs}{detail}", f.fd, f.target);
        }
        if fds.len() > 40 {
            let _ = writeln!(o, "  … {} more", fds.len() - 40);
        }
    } else if let Some(m) = p.fds.missing_info() {
        let _ = writeln!(o, "\nOpen files: {}", missing_text(m));
    }
    if !r.blocked_reads.is_empty() {
        let _ = writeln!(o, "\nReads that blocked (evidence)");
        for b in &r.blocked_reads {
            let _ = writeln!(
                o,
                "  reading /proc/{}/{} blocked > {} ms: {}",
                b.pid,
                b.what,
                b.blocked_ms(),
                b.blocks_on
            );
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(o, "\nFindings");
        for f in &r.findings {
            o.push_str(&crate::verdict::finding_text(f.finding, true));
        }
    }
    o
}

/// The recorder's episodes of the process's stuck threads: since when,
/// how sure the start is, the calls that led in; or why the database
/// could not be read.
fn recorded_text(o: &mut String, p: &Process, rc: &Recall<'_>) {
    if let Some(e) = &rc.rec.error {
        let _ = writeln!(o, "  (cannot see the recorded history: {})", printable(e));
        return;
    }
    let eps: Vec<_> = p
        .threads
        .iter()
        .filter_map(|t| rc.rec.of_thread(t.tid))
        .collect();
    if eps.is_empty() {
        return;
    }
    let _ = writeln!(o, "\nRecorded history ({})", printable(&rc.rec.db));
    let c = &rc.clock;
    for e in eps {
        let who = if e.tid == e.pid {
            format!("{} ({})", printable(&e.process_comm), e.pid)
        } else {
            format!("thread {} ({})", e.tid, printable(&e.comm))
        };
        // What it waits for is in "What it is doing" above; this says
        // what only the samples know.
        let dated = c.crosses_day(e.start_unix_ms);
        let findings = if e.findings.is_empty() {
            String::new()
        } else {
            format!("; finding {}", e.findings.join(", "))
        };
        let _ = writeln!(
            o,
            "  {who}: {}: first seen {} at {}, last seen at {}{findings}",
            crate::history::blocked_since(e, c),
            printable(&e.state),
            c.time(e.start_unix_ms, dated),
            c.time(e.last_seen_unix_ms, dated)
        );
        if let Some(u) = crate::history::uncertainty(e, c, c.crosses_day(e.start_unix_ms)) {
            let _ = writeln!(o, "      {u}");
        }
        if !e.syscalls.is_empty() {
            let _ = writeln!(o, "      system calls that led in (oldest first):");
            o.push_str(&crate::history::syscall_lines(e, c, "        "));
        }
    }
}
