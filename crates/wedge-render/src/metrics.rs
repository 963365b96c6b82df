//! `wedge metrics` / `wedge serve`: the snapshot and its diagnosis as
//! Prometheus metrics, in OpenMetrics text (the `prometheus-client`
//! crate's encoder). A pure function of what was scanned, so that the
//! recorder can serve the same text from its own process.
//!
//! Cardinality is bounded by construction: labels are task-state letters,
//! finding ids and severities (fixed sets in wedge-analysis), the six
//! root-cause kinds below, kernel-log event kinds (wedge-klog's fixed
//! tags); no pid or command line, except in the opt-in `--top N` series
//! (N ≤ [`MAX_TOP`]).

use crate::check::oldest_off_cpu_ms;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use wedge_analysis::storage::wait_kind_in;
use wedge_analysis::Diagnosis;
use wedge_analysis::WaitKind;
use wedge_kernel::state::TaskState;
use wedge_model::{LogEvent, Snapshot};

/// The most wedged processes `--top` may list: each is a series with a pid
/// label, and a scrape must stay small however many tasks hang.
pub const MAX_TOP: usize = 20;

/// The MIME type of [`metrics`]'s text, for an HTTP reply.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the caller knows beyond the snapshot.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Series per wedged process (pid, comm, workload), the oldest first;
    /// 0 for none (the default). Capped at [`MAX_TOP`].
    pub top: usize,
    /// Reader processes wedge forked for reads that could block and gave
    /// up on that are still stuck in the kernel past their SIGKILL
    /// (`wedge_child::outlived`); `None` when the caller does not know.
    pub abandoned_readers: Option<usize>,
    /// Threads by state letter, when the caller counted them over more
    /// than the snapshot holds (the recorder's light samples read only the
    /// tasks that matter: it gives the last full sample's counts of the
    /// others); None: counted over the snapshot.
    pub task_states: Option<BTreeMap<char, i64>>,
}

/// Threads by state letter over a snapshot (R, S, D, T and Z always
/// present, at 0 when none).
pub fn task_states(snap: &Snapshot) -> BTreeMap<char, i64> {
    let mut by_state: BTreeMap<char, i64> = "RSDTZ".chars().map(|c| (c, 0)).collect();
    for t in snap.processes.iter().flat_map(|p| &p.threads) {
        *by_state.entry(t.state.code()).or_default() += 1;
    }
    by_state
}

/// The root cause a task in D waits on, in a few fixed words.
fn cause_kind(kind: &WaitKind) -> &'static str {
    match kind {
        WaitKind::FuseRequest { .. } | WaitKind::FuseFlush => "fuse",
        WaitKind::NfsServer | WaitKind::CifsServer | WaitKind::LustreServer => "network_fs",
        WaitKind::FrozenFilesystem { .. } | WaitKind::BlockIo { .. } | WaitKind::Journal { .. } => {
            "block_fs"
        }
        WaitKind::Lock { .. } => "lock",
        WaitKind::Frozen { .. } => "frozen_cgroup",
        _ => "other",
    }
}

const CAUSE_KINDS: [&str; 6] = [
    "fuse",
    "network_fs",
    "block_fs",
    "lock",
    "frozen_cgroup",
    "other",
];

type Labels = Vec<(&'static str, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn severity_word(s: wedge_analysis::Severity) -> &'static str {
    match s {
        wedge_analysis::Severity::Info => "info",
        wedge_analysis::Severity::Warning => "warning",
        wedge_analysis::Severity::Critical => "critical",
    }
}

/// The Prometheus text format (0.0.4) of [`metrics`]'s OpenMetrics text,
/// for readers that take only it: node_exporter's textfile collector and
/// `promtool check metrics`. OpenMetrics names a counter's family without
/// `_total` (`# TYPE x counter`, samples `x_total`) where the text format
/// names family and samples alike; `# UNIT` and `# EOF` are OpenMetrics'
/// own lines.
pub fn text_format(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{p}{name}_total {tail}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The MIME type of [`text_format`]'s text.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole exposition: every metric of this snapshot, then `# EOF`.
pub fn metrics(
    snap: &Snapshot,
    d: &Diagnosis,
    events: &[LogEvent],
    opts: &MetricsOptions,
) -> String {
    let mut reg = Registry::with_prefix("wedge");

    // A gauge at 1 rather than OpenMetrics' info type: the Prometheus
    // text format (node_exporter's textfile collector, promtool) has no
    // info type, and a gauge named *_info is the convention both read.
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            (
                "kernel",
                snap.system
                    .kernel_release
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            ),
        ])
        .set(1);
    reg.register(
        "build_info",
        "Always 1: wedge's version and the kernel release it scanned (uname -r)",
        build,
    );

    // Tasks by state: every thread's letter from /proc/PID/task/TID/stat
    // (or the task_struct's __state through BPF, which tells I from D).
    let tasks = Family::<Labels, Gauge>::default();
    let by_state = opts
        .task_states
        .clone()
        .unwrap_or_else(|| task_states(snap));
    let mut blocked: BTreeMap<&str, i64> = CAUSE_KINDS.iter().map(|k| (*k, 0)).collect();
    for p in &snap.processes {
        for t in &p.threads {
            if t.state == TaskState::DiskSleep {
                *blocked
                    .entry(cause_kind(&wait_kind_in(snap, p, t)))
                    .or_default() += 1;
            }
        }
    }
    for (c, n) in &by_state {
        tasks.get_or_create(&vec![("state", c.to_string())]).set(*n);
    }
    reg.register(
        "tasks",
        "Threads by scheduler state letter (R running, S interruptible sleep, D uninterruptible \
         sleep TASK_UNINTERRUPTIBLE/TASK_KILLABLE, T stopped, t traced, Z zombie, I idle kthread)",
        tasks,
    );

    let causes = Family::<Labels, Gauge>::default();
    for (k, n) in &blocked {
        causes
            .get_or_create(&vec![("cause", k.to_string())])
            .set(*n);
    }
    reg.register(
        "blocked_tasks",
        "Threads in D (uninterruptible sleep) by what they wait on: fuse (a request the FUSE \
         daemon has not answered), network_fs (an NFS, CIFS or Lustre server), block_fs (block \
         I/O, a journal, a frozen filesystem's sb_start_write gate), lock (a mutex, rwsem or \
         inode lock), frozen_cgroup (the cgroup freezer), other",
        causes,
    );

    // Findings: how many of each rule fired, at which severity; critical
    // means wedged (it will not make progress by itself).
    let findings = Family::<Labels, Gauge>::default();
    let oldest = Family::<Labels, FGauge>::default();
    let mut oldest_by_id: BTreeMap<&str, f64> = BTreeMap::new();
    let mut wedged_pids = std::collections::BTreeSet::new();
    for f in &d.findings {
        findings
            .get_or_create(&vec![
                ("id", f.id.as_str().to_string()),
                ("severity", severity_word(f.severity).to_string()),
            ])
            .inc();
        if let Some(ms) = oldest_off_cpu_ms(snap, f) {
            let e = oldest_by_id.entry(f.id.as_str()).or_insert(0.0);
            *e = e.max(ms / 1000.0);
        }
        if f.is_wedged() {
            wedged_pids.extend(f.pids.iter().copied());
        }
    }
    for (id, s) in &oldest_by_id {
        oldest.get_or_create(&vec![("id", id.to_string())]).set(*s);
    }
    reg.register(
        "findings",
        "Findings of wedge's diagnosis by rule id and severity (critical: wedged, will not make \
         progress by itself; warning; info)",
        findings,
    );
    reg.register_with_unit(
        "finding_oldest_blocked",
        "Per rule id, the longest time any thread of a finding's processes has been off the CPU \
         (its CPU's scheduler clock minus the task's last run)",
        Unit::Seconds,
        oldest,
    );
    let wedged = Gauge::<i64>::default();
    wedged.set(wedged_pids.len() as i64);
    reg.register(
        "wedged_processes",
        "Distinct processes named by a critical (wedged) finding",
        wedged,
    );

    // The kernel log of this boot (/dev/kmsg), as typed events.
    let log = Family::<Labels, Counter>::default();
    for e in events {
        log.get_or_create(&vec![("kind", e.kind.clone())]).inc();
    }
    reg.register(
        "kernel_log_events",
        "Kernel-log reports of this boot still in the printk ring buffer (/dev/kmsg), by kind: \
         hung_task (khungtaskd), soft_lockup, oops, oom_kill, I/O errors and the others wedge \
         decodes",
        log,
    );

    // FUSE: fusectl's per-connection `waiting` (fuse_conn.num_waiting).
    let (conns, waiting) = match snap.fuse_connections.value() {
        Some(cs) => cs
            .iter()
            .filter_map(|c| c.waiting.filter(|w| *w > 0))
            .fold((0i64, 0i64), |(n, w), x| (n + 1, w + x as i64)),
        None => (0, 0),
    };
    let g = Gauge::<i64>::default();
    g.set(conns);
    reg.register(
        "fuse_connections_waiting",
        "FUSE connections with requests sent to (or queued for) the daemon and not yet answered \
         (/sys/fs/fuse/connections/N/waiting > 0)",
        g,
    );
    let g = Gauge::<i64>::default();
    g.set(waiting);
    reg.register(
        "fuse_requests_waiting",
        "FUSE requests waiting for their daemon's answer, summed over all connections \
         (fuse_conn.num_waiting)",
        g,
    );

    // The scan itself.
    let g = FGauge::default();
    g.set(snap.stats.duration_ms / 1000.0);
    reg.register_with_unit(
        "scan_duration",
        "Wall time of the scan of /proc behind these metrics (every read bounded by its \
         deadline; the BPF step is wedge_bpf_step_seconds)",
        Unit::Seconds,
        g,
    );
    let g = Gauge::<i64>::default();
    g.set(snap.blocked_reads.len() as i64);
    reg.register(
        "scan_reads_timed_out",
        "Reads of /proc or sysfs that did not finish within the scan's deadline (the kernel \
         blocked wedge where it blocks the stuck tasks: mmap_lock, a dead FUSE or NFS mount)",
        g,
    );
    if let Some(n) = opts.abandoned_readers {
        let g = Gauge::<i64>::default();
        g.set(n as i64);
        reg.register(
            "scan_readers_abandoned",
            "Reader processes wedge forked for a read that could block, gave up on and killed, \
             that are still stuck in the kernel past their SIGKILL",
            g,
        );
    }
    if let Some(b) = &snap.stats.bpf {
        let g = FGauge::default();
        g.set(b.total_ms / 1000.0);
        reg.register_with_unit(
            "bpf_step",
            "Wall time of the BPF step: the task iterator's pass over every task_struct, the \
             symbolisation of kernel stacks and their join to the scan's threads",
            Unit::Seconds,
            g,
        );
    }
    let g = Gauge::<i64>::default();
    g.set(i64::from(snap.stats.bpf.is_some()));
    reg.register(
        "bpf_used",
        "1 when the scan read the live kernel's task objects through BPF (exact states, lock \
         owners, kernel stacks), 0 when it had /proc's summaries only",
        g,
    );

    if opts.top > 0 {
        let top = Family::<Labels, FGauge>::default();
        let mut procs: Vec<(f64, i32, &str)> = Vec::new();
        for f in d.findings.iter().filter(|f| f.is_wedged()) {
            for &pid in &f.pids {
                if procs.iter().any(|(_, p, _)| *p == pid) {
                    continue;
                }
                let ms = snap
                    .process(pid)
                    .into_iter()
                    .flat_map(|p| &p.threads)
                    .filter_map(|t| snap.off_cpu_ms(t))
                    .fold(0.0f64, f64::max);
                procs.push((ms, pid, f.id.as_str()));
            }
        }
        procs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (ms, pid, id) in procs.into_iter().take(opts.top.min(MAX_TOP)) {
            let p = snap.process(pid);
            let comm = p
                .map(|p| crate::printable(&p.comm).into_owned())
                .unwrap_or_default();
            let workload = p
                .and_then(wedge_analysis::workload::of)
                .map(|w| w.words())
                .unwrap_or_default();
            top.get_or_create(&vec![
                ("id", id.to_string()),
                ("pid", pid.to_string()),
                ("comm", comm),
                ("workload", workload),
            ])
            .set(ms / 1000.0);
        }
        reg.register_with_unit(
            "wedged_process_blocked",
            "The most wedged processes (--top N): per process of a critical finding, the \
             longest time one of its threads has been off the CPU",
            Unit::Seconds,
            top,
        );
    }

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real scene captured here: a reader killed while it waits on a
    /// FUSE daemon that does not answer (wedge-analysis's fixture).
    fn scene() -> (Snapshot, Diagnosis) {
        let text = include_str!("../../wedge-analysis/tests/fixtures/fuse-reader-killed.json");
        let snap: Snapshot = serde_json::from_str(text).unwrap();
        let d = wedge_analysis::diagnose(&snap, &[]);
        (snap, d)
    }

    #[test]
    fn no_pids_unless_asked_and_top_is_bounded() {
        let (s, d) = scene();
        let f = d.findings.iter().find(|f| f.is_wedged()).unwrap();
        let pid = f.pids[0];
        let text = metrics(&s, &d, &[], &MetricsOptions::default());
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains(&format!("\"{pid}\"")), "{text}");
        assert!(
            text.contains(r#"wedge_findings{id="fuse.unanswered",severity="critical"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wedge_blocked_tasks{cause="fuse"} 1"#),
            "{text}"
        );
        assert!(text.contains("wedge_wedged_processes 1"), "{text}");
        assert!(text.contains(r#"wedge_build_info{version="#), "{text}");
        assert!(
            text.contains(r#"wedge_finding_oldest_blocked_seconds{id="fuse.unanswered"}"#),
            "{text}"
        );
        let top = MetricsOptions {
            top: 99,
            ..Default::default()
        };
        let counted = MetricsOptions {
            task_states: Some([('S', 9999)].into_iter().collect()),
            ..Default::default()
        };
        assert!(metrics(&s, &d, &[], &counted).contains(r#"wedge_tasks{state="S"} 9999"#));
        let text = metrics(&s, &d, &[], &top);
        assert!(text.contains(&format!(r#"pid="{pid}",comm="#)), "{text}");
    }

    #[test]
    fn log_events_count_by_kind() {
        let (s, d) = scene();
        let e = LogEvent {
            kind: "hung_task".into(),
            line: 1,
            monotonic: None,
            task: None,
            pid: None,
            meaning: String::new(),
            code_dumped: false,
            faulting_instruction: None,
            detail: Default::default(),
        };
        let text = metrics(&s, &d, &[e.clone(), e], &MetricsOptions::default());
        assert!(
            text.contains(r#"wedge_kernel_log_events_total{kind="hung_task"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE wedge_kernel_log_events counter"),
            "{text}"
        );
        let plain = text_format(&text);
        assert!(
            plain.contains("# TYPE wedge_kernel_log_events_total counter"),
            "{plain}"
        );
        assert!(
            plain.contains("# HELP wedge_kernel_log_events_total Kernel"),
            "{plain}"
        );
        assert!(
            !plain.contains("# EOF") && !plain.contains("# UNIT"),
            "{plain}"
        );
    }
}
