//! `wedge history`: what the recorder (`wedge record`) saw, as a timeline
//! per process for people and one JSON document for programs; and the
//! parts of it that `why` and the verdict show ("blocked since 03:12:07").
//!
//! Times are stored as Unix ms (UTC). Text shows them in the machine's
//! time zone (jiff reads `TZ`, else /etc/localtime, as libc's localtime
//! does), with the date only when what is shown crosses a day; JSON gives
//! every time twice, as RFC 3339 UTC and as Unix seconds.

use crate::view::{json_line, write_out, Status};
use crate::{human_ms, printable};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use std::fmt::Write;
use wedge_model::{
    Ending, Episode, FindingSpan, History, ProcessLife, SyscallEvent, SCHEMA_VERSION,
};

/// "Now" and the zone times are shown in: the system's for the views, a
/// fixed one in tests (so the golden lines do not depend on the machine).
#[derive(Debug, Clone)]
pub struct Clock {
    pub now_unix_ms: i64,
    pub tz: TimeZone,
}

impl Clock {
    /// The machine's zone; an unreadable zone falls back to UTC (jiff's
    /// own fallback), which the times then say ("Z" in RFC 3339 is JSON's).
    pub fn system(now_unix_ms: i64) -> Clock {
        Clock {
            now_unix_ms,
            tz: TimeZone::system(),
        }
    }

    /// The wall clock now.
    pub fn now() -> Clock {
        Clock::system(Timestamp::now().as_millisecond())
    }

    fn civil(&self, ms: i64) -> Option<jiff::Zoned> {
        Timestamp::from_millisecond(ms)
            .ok()
            .map(|t| t.to_zoned(self.tz.clone()))
    }

    fn date_of(&self, ms: i64) -> Option<jiff::civil::Date> {
        self.civil(ms).map(|z| z.date())
    }

    /// Whether times between `from` and now cross a local day (then each
    /// time carries its date).
    pub fn crosses_day(&self, from_ms: i64) -> bool {
        self.date_of(from_ms) != self.date_of(self.now_unix_ms)
    }

    /// `03:12:07`, or `2026-12-02 03:12:07` with `dated`.
    pub fn time(&self, ms: i64, dated: bool) -> String {
        match self.civil(ms) {
            Some(z) if dated => z.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            Some(z) => z.strftime("%H:%M:%S").to_string(),
            None => format!("@{ms}ms"),
        }
    }

    /// `03:12:07.123` (system calls are milliseconds apart).
    fn time_ms(&self, ms: i64) -> String {
        match self.civil(ms) {
            Some(z) => z.strftime("%H:%M:%S%.3f").to_string(),
            None => format!("@{ms}ms"),
        }
    }
}

/// What `why` and the verdict are given of the recorder's history: the
/// episodes the diagnosis attached, and the clock to tell them with.
pub struct Recall<'a> {
    pub rec: &'a wedge_analysis::Recorded,
    pub clock: Clock,
}

impl<'a> Recall<'a> {
    /// The diagnosis's history, told against the snapshot's time in the
    /// machine's zone; None without a database.
    pub fn of(
        snap: &wedge_model::Snapshot,
        d: &'a wedge_analysis::Diagnosis,
    ) -> Option<Recall<'a>> {
        let rec = d.recorded.as_ref()?;
        Some(Recall {
            rec,
            clock: Clock::system(snap.system.taken_at_unix_ms as i64),
        })
    }

    /// The lines under a finding's title: since when, and the calls that
    /// led in (the last few).
    pub fn finding_lines(&self, e: &Episode) -> String {
        let c = &self.clock;
        let mut o = String::new();
        let who = if e.tid != e.pid {
            format!("thread {} ", e.tid)
        } else {
            String::new()
        };
        let window = uncertainty(e, c, c.crosses_day(e.start_unix_ms))
            .map(|u| format!("; {u}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "      when  {who}{}{window}  — {}",
            blocked_since(e, c),
            printable(&self.rec.db)
        );
        let until = c.now_unix_ms;
        let skip = e.syscalls.len().saturating_sub(3);
        for s in &e.syscalls[skip..] {
            let _ = writeln!(o, "      call  {}", printable(&syscall_text(s, c, until)));
        }
        o
    }
}

/// A finding in JSON, with the episode of its task when the recorder has
/// one (`episode` is absent otherwise: the document is as without a
/// recorder).
#[derive(Serialize)]
pub struct FindingView<'a> {
    #[serde(flatten)]
    pub finding: &'a wedge_analysis::Finding,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeView<'a>>,
    /// The containers and pods its processes run in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadView>,
}

/// A container or pod and the finding's processes in it.
#[derive(Serialize)]
pub struct WorkloadView {
    #[serde(flatten)]
    pub workload: wedge_analysis::workload::Workload,
    /// In words, as the text shows it.
    pub words: String,
    pub pids: Vec<i32>,
}

fn workload_views(snap: &wedge_model::Snapshot, pids: &[i32]) -> Vec<WorkloadView> {
    let mut out: Vec<WorkloadView> = Vec::new();
    for &pid in pids {
        let Some(w) = snap.process(pid).and_then(wedge_analysis::workload::of) else {
            continue;
        };
        if w.container.is_none() && w.pod_uid.is_none() {
            continue;
        }
        match out.iter_mut().find(|v| v.workload == w) {
            Some(v) => v.pids.push(pid),
            None => out.push(WorkloadView {
                words: w.words(),
                workload: w,
                pids: vec![pid],
            }),
        }
    }
    out
}

/// The findings with their episodes.
pub fn finding_views<'a>(
    snap: &wedge_model::Snapshot,
    findings: impl IntoIterator<Item = &'a wedge_analysis::Finding>,
    recall: Option<&Recall<'a>>,
) -> Vec<FindingView<'a>> {
    findings
        .into_iter()
        .map(|f| FindingView {
            finding: f,
            workloads: workload_views(snap, &f.pids),
            episode: recall.and_then(|r| {
                r.rec
                    .of_pids(&f.pids)
                    .map(|e| EpisodeView::new(e, r.clock.now_unix_ms))
            }),
        })
        .collect()
}

/// RFC 3339 in UTC (`2026-12-02T03:12:07.123Z`).
pub fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| format!("@{ms}ms"))
}

/// Unix seconds, with the milliseconds as a fraction.
fn unix_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// How an episode or finding ended, in words.
pub fn ending_words(e: Ending) -> &'static str {
    match e {
        Ending::Resolved => "resolved",
        Ending::ProcessGone => "process gone",
        Ending::RecorderStopped => "recorder stopped (how it went on is unknown)",
    }
}

fn ending_key(e: Ending) -> &'static str {
    match e {
        Ending::Resolved => "resolved",
        Ending::ProcessGone => "process_gone",
        Ending::RecorderStopped => "recorder_stopped",
    }
}

/// The gap between the last sample that did not see a task stuck and the
/// first that did, past which the start is said as a window: at 1 Hz a
/// gap of one interval (plus the scan's jitter) is what the second shown
/// already says; a longer one (a recorder paused, a slow scan, a wider
/// interval) is not.
const UNCERTAIN_AFTER_MS: i64 = 1_500;

/// When the episode began, as far as the samples tell: `None` when the
/// shown second says it (the previous sample is within one interval).
pub fn uncertainty(e: &Episode, c: &Clock, dated: bool) -> Option<String> {
    match e.not_before_unix_ms {
        Some(nb) if e.start_unix_ms - nb > UNCERTAIN_AFTER_MS => Some(format!(
            "began between {} and {}",
            c.time(nb, dated),
            c.time(e.start_unix_ms, dated)
        )),
        Some(_) => None,
        None => Some(format!(
            "already stuck at the recorder's first sample ({}): it began before",
            c.time(e.start_unix_ms, dated)
        )),
    }
}

/// "blocked since 03:12:07 (2h14m)": the words `why` and the verdict use.
pub fn blocked_since(e: &Episode, c: &Clock) -> String {
    let dated = c.crosses_day(e.start_unix_ms);
    format!(
        "blocked since {} ({})",
        c.time(e.start_unix_ms, dated),
        human_ms((c.now_unix_ms - e.start_unix_ms).max(0) as f64)
    )
}

/// One system call: `read(0x3, 0x7ffc…, 0x1000) = 4096` or `… unfinished`
/// (in it until `until_ms`: now, or the last sample of a finished episode).
pub fn syscall_text(s: &SyscallEvent, c: &Clock, until_ms: i64) -> String {
    let name = s.name.clone().unwrap_or_else(|| format!("#{}", s.nr));
    let args: Vec<String> = s.args.iter().take(3).map(|a| format!("{a:#x}")).collect();
    let outcome = match (s.ret, s.duration_ns) {
        // Under a millisecond says nothing next to a hang of seconds
        // (and human_ms has no finer unit).
        (Some(r), Some(ns)) if ns >= 1_000_000 => {
            format!(" = {r}  ({})", human_ms(ns as f64 / 1e6))
        }
        (Some(r), _) => format!(" = {r}"),
        (None, _) => format!(
            "  ← unfinished (in it for {})",
            human_ms((until_ms - s.start_unix_ms).max(0) as f64)
        ),
    };
    format!(
        "{} {name}({}){outcome}",
        c.time_ms(s.start_unix_ms),
        args.join(", ")
    )
}

/// How many of an episode's system calls the text shows (the last ones:
/// those that led in).
const SYSCALLS_SHOWN: usize = 8;

/// The system calls that led in, oldest first, one a line.
pub fn syscall_lines(e: &Episode, c: &Clock, indent: &str) -> String {
    let mut o = String::new();
    let skip = e.syscalls.len().saturating_sub(SYSCALLS_SHOWN);
    if skip > 0 {
        let _ = writeln!(o, "{indent}… {skip} earlier");
    }
    let until = match e.end_unix_ms {
        Some(_) => e.last_seen_unix_ms,
        None => c.now_unix_ms,
    };
    for s in &e.syscalls[skip..] {
        let _ = writeln!(o, "{indent}{}", printable(&syscall_text(s, c, until)));
    }
    o
}

/// What the episode was: `D: waits for a FUSE daemon to answer … — on
/// FUSE connection 41 (/mnt) → wk-fused 981 (S, futex_do_wait); finding
/// fuse.unanswered` (the wait and the chain in the analysis's words, as
/// the recorder stored them at the first sample).
pub fn episode_what(e: &Episode) -> String {
    let mut s = e.state.clone();
    if let Some(w) = &e.wait {
        let _ = write!(s, ": {w}");
    }
    if let Some(b) = &e.blocker {
        let _ = write!(s, " — on {b}");
    }
    if let Some(sc) = e.syscall.as_deref().filter(|_| e.syscalls.is_empty()) {
        let _ = write!(s, "; in {sc}()");
    }
    if !e.findings.is_empty() {
        let _ = write!(
            s,
            "; finding{} {}",
            if e.findings.len() > 1 { "s" } else { "" },
            e.findings.join(", ")
        );
    }
    s
}

/// `03:12:07 → 05:26:31 (2h14m)`, or `since 03:12:07 (2h14m, ongoing)`.
fn span(start: i64, end: Option<i64>, c: &Clock, dated: bool) -> String {
    match end {
        Some(end) => format!(
            "{} → {} ({})",
            c.time(start, dated),
            c.time(end, dated),
            human_ms((end - start).max(0) as f64)
        ),
        None => format!(
            "since {} ({}, ongoing)",
            c.time(start, dated),
            human_ms((c.now_unix_ms - start).max(0) as f64)
        ),
    }
}

fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// How many kernel-log events the text shows (the latest).
const LOG_EVENTS_SHOWN: usize = 40;

/// The text of `wedge history`.
pub fn render(h: &History, c: &Clock) -> String {
    let r = &h.recorder;
    let mut o = String::new();
    let oldest = r
        .first_sample_unix_ms
        .into_iter()
        .chain(h.episodes.iter().map(|e| e.start_unix_ms))
        .min();
    let dated = oldest.is_some_and(|t| c.crosses_day(t));
    let _ = writeln!(
        o,
        "wedge history: {} (schema {}, {})",
        r.db,
        r.schema_version,
        size_text(r.size_bytes)
    );
    let every = r
        .interval_ms
        .map(|i| format!(" every {}", human_ms(i as f64)))
        .unwrap_or_default();
    let from = r
        .source
        .as_deref()
        .map(|s| format!(" from {s}"))
        .unwrap_or_default();
    match r.running_pid {
        Some(pid) => {
            let _ = writeln!(o, "  recorder: running (pid {pid}){every}{from}");
        }
        None => {
            let last = r
                .last_sample_unix_ms
                .map(|t| {
                    format!(
                        "; last sample {} ago",
                        human_ms((c.now_unix_ms - t).max(0) as f64)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  recorder: not running{last} (start it: wedge record, or systemctl start wedge-record)"
            );
        }
    }
    match (r.first_sample_unix_ms, r.last_sample_unix_ms) {
        (Some(a), Some(b)) => {
            let _ = writeln!(
                o,
                "  {} samples, {} → {} ({})",
                r.samples,
                c.time(a, dated),
                c.time(b, dated),
                human_ms((b - a).max(0) as f64)
            );
        }
        _ => {
            let _ = writeln!(o, "  {} samples", r.samples);
        }
    }
    if h.episodes.is_empty() {
        let _ = writeln!(o, "\nNo task was stuck in what was recorded.");
    }
    // One timeline per process, in the order each first got stuck.
    let mut pids: Vec<i32> = Vec::new();
    let mut eps: Vec<&Episode> = h.episodes.iter().collect();
    eps.sort_by_key(|e| (e.start_unix_ms, e.tid));
    for e in &eps {
        if !pids.contains(&e.pid) {
            pids.push(e.pid);
        }
    }
    for pid in pids {
        let mine: Vec<&&Episode> = eps.iter().filter(|e| e.pid == pid).collect();
        let comm = mine.first().map_or("?", |e| e.process_comm.as_str());
        let life = h.processes.iter().find(|p| p.pid == pid);
        let _ = writeln!(
            o,
            "\n{} ({pid}){}",
            printable(comm),
            life.map(|l| life_text(l, c, dated)).unwrap_or_default()
        );
        for e in mine {
            let who = if e.tid != e.pid {
                format!("thread {} ({}) ", e.tid, printable(&e.comm))
            } else {
                String::new()
            };
            let ended = match e.ending {
                Some(end) => format!("; ended: {}", ending_words(end)),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "  {}{} {}{ended}",
                who,
                span(e.start_unix_ms, e.end_unix_ms, c, dated),
                printable(&episode_what(e))
            );
            if let Some(u) = uncertainty(e, c, dated) {
                let _ = writeln!(o, "      {u}");
            }
            if !e.stack.is_empty() {
                let top: Vec<&str> = e.stack.iter().take(6).map(String::as_str).collect();
                let _ = writeln!(
                    o,
                    "      stack {}{}",
                    top.join(" ← "),
                    if e.stack.len() > 6 { " ← …" } else { "" }
                );
            }
            if !e.syscalls.is_empty() {
                let _ = writeln!(o, "      system calls that led in (oldest first):");
                o.push_str(&syscall_lines(e, c, "        "));
            }
        }
    }
    if !h.findings.is_empty() {
        let _ = writeln!(o, "\nFindings");
        let mut fs: Vec<&FindingSpan> = h.findings.iter().collect();
        fs.sort_by_key(|f| f.first_seen_unix_ms);
        for f in fs {
            let pids: Vec<String> = f.pids.iter().map(|p| p.to_string()).collect();
            let ended = match f.ending {
                Some(end) => format!("; ended: {}", ending_words(end)),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "  {} [{}] {}: {} (pid {}){ended}",
                span(f.first_seen_unix_ms, f.end_unix_ms, c, dated),
                f.severity,
                f.id,
                printable(&f.title),
                pids.join(", ")
            );
        }
    }
    if !h.log_events.is_empty() {
        let _ = writeln!(o, "\nKernel log");
        let skip = h.log_events.len().saturating_sub(LOG_EVENTS_SHOWN);
        if skip > 0 {
            let _ = writeln!(o, "  … {skip} earlier (wedge history --json has them all)");
        }
        for l in &h.log_events[skip..] {
            let when = l
                .unix_ms
                .map(|t| c.time(t, dated))
                .unwrap_or_else(|| format!("seq {}", l.seq));
            let who = match (&l.event.task, l.event.pid) {
                (Some(t), Some(p)) => format!(" {} ({p})", printable(t)),
                (None, Some(p)) => format!(" pid {p}"),
                _ => String::new(),
            };
            let _ = writeln!(
                o,
                "  {when} {}{who}: {}",
                l.event.kind,
                printable(&l.event.meaning)
            );
        }
    }
    o
}

fn life_text(l: &ProcessLife, c: &Clock, dated: bool) -> String {
    let mut s = String::new();
    if let Some(t) = l.start_unix_ms {
        let _ = write!(s, ", started {}", c.time(t, dated));
    }
    if let Some(t) = l.exit_unix_ms {
        let _ = write!(s, ", gone by {}", c.time(t, dated));
    }
    s
}

/// A time in JSON: RFC 3339 UTC and Unix seconds, side by side.
fn stamp(ms: Option<i64>) -> (Option<String>, Option<f64>) {
    (ms.map(rfc3339), ms.map(unix_s))
}

/// A system call in JSON.
#[derive(Debug, Serialize)]
pub struct SyscallView<'a> {
    pub nr: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub args: &'a [u64],
    pub start: String,
    pub start_unix: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ret: Option<i64>,
    /// The thread was still in it when the recorder read it.
    pub unfinished: bool,
}

/// An episode in JSON (`wedge history`, and `episode` in `why` and the
/// verdict).
#[derive(Debug, Serialize)]
pub struct EpisodeView<'a> {
    pub pid: i32,
    pub tid: i32,
    pub comm: &'a str,
    pub process_comm: &'a str,
    pub state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocker: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<&'a str>,
    pub findings: &'a [String],
    pub stack: &'a [String],
    pub start: String,
    pub start_unix: f64,
    /// The sample before, which did not see it stuck: it began between the
    /// two. Absent when it was stuck at the recorder's first sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before_unix: Option<f64>,
    pub last_seen: String,
    pub last_seen_unix: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_unix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending: Option<&'static str>,
    pub ongoing: bool,
    /// From start to its end, or to now while it lasts.
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallView<'a>>,
}

impl<'a> EpisodeView<'a> {
    pub fn new(e: &'a Episode, now_unix_ms: i64) -> EpisodeView<'a> {
        let (not_before, not_before_unix) = stamp(e.not_before_unix_ms);
        let (end, end_unix) = stamp(e.end_unix_ms);
        EpisodeView {
            pid: e.pid,
            tid: e.tid,
            comm: &e.comm,
            process_comm: &e.process_comm,
            state: &e.state,
            wait: e.wait.as_deref(),
            blocker: e.blocker.as_deref(),
            syscall: e.syscall.as_deref(),
            findings: &e.findings,
            stack: &e.stack,
            start: rfc3339(e.start_unix_ms),
            start_unix: unix_s(e.start_unix_ms),
            not_before,
            not_before_unix,
            last_seen: rfc3339(e.last_seen_unix_ms),
            last_seen_unix: unix_s(e.last_seen_unix_ms),
            end,
            end_unix,
            ending: e.ending.map(ending_key),
            ongoing: e.end_unix_ms.is_none(),
            duration_s: unix_s((e.end_unix_ms.unwrap_or(now_unix_ms) - e.start_unix_ms).max(0)),
            syscalls: e
                .syscalls
                .iter()
                .map(|s| SyscallView {
                    nr: s.nr,
                    name: s.name.as_deref(),
                    args: &s.args,
                    start: rfc3339(s.start_unix_ms),
                    start_unix: unix_s(s.start_unix_ms),
                    duration_ns: s.duration_ns,
                    ret: s.ret,
                    unfinished: s.ret.is_none(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct RecorderView<'a> {
    db: &'a str,
    /// The database's own schema (`PRAGMA user_version`), not this
    /// document's.
    db_schema_version: u32,
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    running_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_ms: Option<u64>,
    samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_sample: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_sample_unix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_sample: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_sample_unix: Option<f64>,
    size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
}

#[derive(Serialize)]
struct FindingSpanView<'a> {
    id: &'a str,
    severity: &'a str,
    title: &'a str,
    pids: &'a [i32],
    first_seen: String,
    first_seen_unix: f64,
    last_seen: String,
    last_seen_unix: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_unix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending: Option<&'static str>,
    ongoing: bool,
}

#[derive(Serialize)]
struct LogEventView<'a> {
    boot_id: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_unix: Option<f64>,
    event: &'a wedge_model::LogEvent,
}

#[derive(Serialize)]
struct ProcessView<'a> {
    pid: i32,
    comm: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_unix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_unix: Option<f64>,
}

/// `wedge history --json` (docs/schema/history.json).
#[derive(Serialize)]
struct HistoryDoc<'a> {
    schema_version: u32,
    now: String,
    now_unix: f64,
    recorder: RecorderView<'a>,
    episodes: Vec<EpisodeView<'a>>,
    findings: Vec<FindingSpanView<'a>>,
    log_events: Vec<LogEventView<'a>>,
    processes: Vec<ProcessView<'a>>,
}

/// The JSON document of `wedge history`, one line.
pub fn json(h: &History, c: &Clock) -> Result<String, String> {
    let r = &h.recorder;
    let (first_sample, first_sample_unix) = stamp(r.first_sample_unix_ms);
    let (last_sample, last_sample_unix) = stamp(r.last_sample_unix_ms);
    let doc = HistoryDoc {
        schema_version: SCHEMA_VERSION,
        now: rfc3339(c.now_unix_ms),
        now_unix: unix_s(c.now_unix_ms),
        recorder: RecorderView {
            db: &r.db,
            db_schema_version: r.schema_version,
            running: r.running_pid.is_some(),
            running_pid: r.running_pid,
            interval_ms: r.interval_ms,
            samples: r.samples,
            first_sample,
            first_sample_unix,
            last_sample,
            last_sample_unix,
            size_bytes: r.size_bytes,
            source: r.source.as_deref(),
        },
        episodes: h
            .episodes
            .iter()
            .map(|e| EpisodeView::new(e, c.now_unix_ms))
            .collect(),
        findings: h
            .findings
            .iter()
            .map(|f| {
                let (end, end_unix) = stamp(f.end_unix_ms);
                FindingSpanView {
                    id: &f.id,
                    severity: &f.severity,
                    title: &f.title,
                    pids: &f.pids,
                    first_seen: rfc3339(f.first_seen_unix_ms),
                    first_seen_unix: unix_s(f.first_seen_unix_ms),
                    last_seen: rfc3339(f.last_seen_unix_ms),
                    last_seen_unix: unix_s(f.last_seen_unix_ms),
                    end,
                    end_unix,
                    ending: f.ending.map(ending_key),
                    ongoing: f.end_unix_ms.is_none(),
                }
            })
            .collect(),
        log_events: h
            .log_events
            .iter()
            .map(|l| {
                let (time, time_unix) = stamp(l.unix_ms);
                LogEventView {
                    boot_id: &l.boot_id,
                    seq: l.seq,
                    time,
                    time_unix,
                    event: &l.event,
                }
            })
            .collect(),
        processes: h
            .processes
            .iter()
            .map(|p| {
                let (start, start_unix) = stamp(p.start_unix_ms);
                let (exit, exit_unix) = stamp(p.exit_unix_ms);
                ProcessView {
                    pid: p.pid,
                    comm: &p.comm,
                    start,
                    start_unix,
                    exit,
                    exit_unix,
                }
            })
            .collect(),
    };
    json_line(&doc)
}

/// `wedge history`: writes the view; an ongoing episode is something found
/// (exit 1), as a wedged task is for the verdict.
pub fn history(
    h: &History,
    c: &Clock,
    json_out: bool,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    let doc = if json_out { json(h, c)? } else { render(h, c) };
    write_out(out, &doc)?;
    let ongoing = h.episodes.iter().any(|e| e.end_unix_ms.is_none());
    Ok(Status::of(ongoing, false))
}

/// `--since`: RFC 3339 (`2026-12-02T03:12:07Z`), Unix seconds
/// (`1764645127`), or an age before `now` (`2h`, `30m`, `90s`, `1d`).
pub fn parse_since(s: &str, now_unix_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "--since {s:?}: not a time: give RFC 3339 (2026-12-02T03:12:07Z), Unix seconds \
             (1796181127), or an age (2h, 30m, 90s, 1d)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(bad());
        }
        return Ok((secs * 1000.0) as i64);
    }
    if t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        if let Some(secs) = wedge_model::parse_age_secs(t) {
            return Ok(now_unix_ms - (secs * 1000.0) as i64);
        }
    }
    t.parse::<Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wedge_model::{LogDetail, LogEvent, RecordedLogEvent, RecorderInfo};

    /// 2026-12-02T03:12:07Z.
    const T0: i64 = 1_796_181_127_000;

    pub(crate) fn clock(now: i64) -> Clock {
        Clock {
            now_unix_ms: now,
            tz: TimeZone::UTC,
        }
    }

    pub(crate) fn episode(end: Option<i64>) -> Episode {
        Episode {
            pid: 16722,
            tid: 16722,
            comm: "wk-reader".into(),
            process_comm: "wk-reader".into(),
            state: "D".into(),
            wait: Some("in fuse: request_wait_answer".into()),
            blocker: Some("FUSE daemon labfuse (981)".into()),
            syscall: Some("read".into()),
            findings: vec!["fuse.unanswered".into()],
            stack: vec![
                "request_wait_answer".into(),
                "__fuse_simple_request".into(),
                "fuse_direct_io".into(),
            ],
            start_unix_ms: T0,
            not_before_unix_ms: Some(T0 - 1_000),
            last_seen_unix_ms: end.map_or(T0 + 60_000, |e| e - 1_000),
            end_unix_ms: end,
            ending: end.map(|_| Ending::ProcessGone),
            syscalls: vec![
                SyscallEvent {
                    nr: 257,
                    name: Some("openat".into()),
                    args: vec![0xffff_ff9c, 0x5555_0000, 0, 0, 0, 0],
                    start_unix_ms: T0 - 1_200,
                    duration_ns: Some(2_000_000),
                    ret: Some(3),
                },
                SyscallEvent {
                    nr: 0,
                    name: Some("read".into()),
                    args: vec![3, 0x7ffc_0000, 4096, 0, 0, 0],
                    start_unix_ms: T0 - 1_150,
                    duration_ns: None,
                    ret: None,
                },
            ],
        }
    }

    fn history(episodes: Vec<Episode>) -> History {
        History {
            recorder: RecorderInfo {
                db: "/var/lib/wedge/history.db".into(),
                schema_version: 1,
                running_pid: Some(4242),
                interval_ms: Some(1000),
                samples: 8041,
                first_sample_unix_ms: Some(T0 - 600_000),
                last_sample_unix_ms: Some(T0 + 8_064_000),
                size_bytes: 3 << 20,
                source: Some("bpf".into()),
            },
            findings: vec![FindingSpan {
                id: "fuse.unanswered".into(),
                severity: "critical".into(),
                title: "wk-reader (16722) waits for a FUSE daemon that does not answer".into(),
                pids: vec![16722],
                first_seen_unix_ms: T0 + 1_000,
                last_seen_unix_ms: T0 + 8_063_000,
                end_unix_ms: Some(T0 + 8_064_000),
                ending: Some(Ending::ProcessGone),
            }],
            log_events: vec![RecordedLogEvent {
                boot_id: "b00t".into(),
                seq: 812,
                unix_ms: Some(T0 + 123_000),
                event: LogEvent {
                    kind: "hung_task".into(),
                    line: 1,
                    monotonic: Some(4711.5),
                    task: Some("wk-reader".into()),
                    pid: Some(16722),
                    meaning: "task blocked for more than 120 seconds".into(),
                    code_dumped: false,
                    faulting_instruction: None,
                    detail: LogDetail::Other,
                },
            }],
            processes: vec![ProcessLife {
                pid: 16722,
                comm: "wk-reader".into(),
                start_unix_ms: Some(T0 - 2_000),
                exit_unix_ms: Some(T0 + 8_064_000),
            }],
            episodes,
        }
    }

    #[test]
    fn a_finished_episode_reads_as_a_span_with_its_ending() {
        let end = T0 + 8_064_000; // 05:26:31
        let h = history(vec![episode(Some(end))]);
        let text = render(&h, &clock(end + 60_000));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "wedge history: /var/lib/wedge/history.db (schema 1, 3.0 MiB)"
        );
        assert_eq!(
            lines[1],
            "  recorder: running (pid 4242) every 1.0s from bpf"
        );
        assert_eq!(lines[2], "  8041 samples, 03:02:07 → 05:26:31 (2h24m)");
        assert!(
            text.contains("\nwk-reader (16722), started 03:12:05, gone by 05:26:31\n  03:12:07 → 05:26:31 (2h14m) D: in fuse: request_wait_answer — on FUSE daemon labfuse (981); finding fuse.unanswered; ended: process gone\n"),
            "{text}"
        );
        // One interval between the samples: the second shown says it.
        assert!(!text.contains("began between"), "{text}");
        assert!(
            text.contains("      system calls that led in (oldest first):\n        03:12:05.800 openat(0xffffff9c, 0x55550000, 0x0) = 3  (2ms)\n        03:12:05.850 read(0x3, 0x7ffc0000, 0x1000)  ← unfinished (in it for 2h14m)\n"),
            "{text}"
        );
        assert!(
            text.contains("\nFindings\n  03:12:08 → 05:26:31 (2h14m) [critical] fuse.unanswered: wk-reader (16722) waits for a FUSE daemon that does not answer (pid 16722); ended: process gone\n"),
            "{text}"
        );
        assert!(
            text.contains("\nKernel log\n  03:14:10 hung_task wk-reader (16722): task blocked for more than 120 seconds\n"),
            "{text}"
        );
        let mut out = Vec::new();
        let status = super::history(&h, &clock(end), false, &mut out);
        assert_eq!(status, Ok(Status::Clear), "nothing ongoing: exit 0");
    }

    #[test]
    fn an_ongoing_episode_says_since_and_its_window() {
        let mut e = episode(None);
        e.not_before_unix_ms = Some(T0 - 5_000);
        let mut h = history(vec![e]);
        h.recorder.running_pid = None;
        let now = T0 + 8_064_000;
        let text = render(&h, &clock(now));
        assert!(
            text.contains("  recorder: not running; last sample 0ms ago (start it: wedge record, or systemctl start wedge-record)\n"),
            "{text}"
        );
        assert!(
            text.contains("  since 03:12:07 (2h14m, ongoing) D: in fuse"),
            "{text}"
        );
        assert!(
            text.contains("      began between 03:12:02 and 03:12:07\n"),
            "{text}"
        );
        let mut out = Vec::new();
        assert_eq!(
            super::history(&h, &clock(now), false, &mut out),
            Ok(Status::Found),
            "ongoing: exit 1"
        );
        assert_eq!(
            blocked_since(&h.episodes[0], &clock(now)),
            "blocked since 03:12:07 (2h14m)"
        );
        // Stuck at the recorder's first sample: it began before.
        h.episodes[0].not_before_unix_ms = None;
        assert_eq!(
            uncertainty(&h.episodes[0], &clock(now), false).as_deref(),
            Some("already stuck at the recorder's first sample (03:12:07): it began before")
        );
    }

    #[test]
    fn a_span_across_midnight_carries_dates() {
        let h = history(vec![episode(None)]);
        let now = T0 + 24 * 3_600_000;
        let text = render(&h, &clock(now));
        assert!(
            text.contains("  since 2026-12-02 03:12:07 (24h00m, ongoing)"),
            "{text}"
        );
        assert_eq!(
            blocked_since(&h.episodes[0], &clock(now)),
            "blocked since 2026-12-02 03:12:07 (24h00m)"
        );
    }

    #[test]
    fn json_has_every_time_twice_and_the_version_first() {
        let h = history(vec![episode(None)]);
        let doc = json(&h, &clock(T0 + 60_000)).unwrap_or_default();
        assert!(doc.starts_with(r#"{"schema_version":1,"#), "{doc}");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap_or_default();
        let e = &v["episodes"][0];
        assert_eq!(e["start"], "2026-12-02T03:12:07.000Z");
        assert_eq!(e["start_unix"], 1_796_181_127.0);
        assert_eq!(e["not_before_unix"], 1_796_181_126.0);
        assert_eq!(e["ongoing"], true);
        assert_eq!(e["duration_s"], 60.0);
        assert_eq!(e["syscalls"][1]["unfinished"], true);
        assert_eq!(v["findings"][0]["ending"], "process_gone");
        assert_eq!(v["log_events"][0]["time_unix"], 1_796_181_250.0);
        assert_eq!(v["recorder"]["running"], true);
    }

    #[test]
    fn since_takes_rfc3339_unix_seconds_and_ages() {
        let now = T0;
        assert_eq!(parse_since("2026-12-02T03:12:07Z", now), Ok(T0));
        assert_eq!(parse_since("1796181127", now), Ok(T0));
        assert_eq!(parse_since("2h", now), Ok(T0 - 7_200_000));
        assert_eq!(parse_since("30m", now), Ok(T0 - 1_800_000));
        assert_eq!(parse_since("90s", now), Ok(T0 - 90_000));
        for bad in ["", "yesterday", "2x", "-5", "2026-13-40"] {
            let e = parse_since(bad, now).err().unwrap_or_default();
            assert!(
                e.contains("--since") && e.contains("RFC 3339"),
                "{bad}: {e}"
            );
        }
    }

    /// `why` and the verdict on a real captured scene (a FUSE reader
    /// killed while its request is unanswered: D, SIGKILL pending), with
    /// the recorder's episode of its thread: "blocked since" in what it is
    /// doing and under the finding; an ended episode, one of a thread not
    /// stuck now, and one older than the thread (a reused tid) say nothing.
    #[test]
    fn why_and_the_verdict_say_blocked_since() {
        let text = include_str!("../../wedge-analysis/tests/fixtures/fuse-reader-killed.json");
        let snap: wedge_model::Snapshot =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let taken = snap.system.taken_at_unix_ms as i64;
        let mut d = wedge_analysis::diagnose(&snap, &[]);
        let plain_why = {
            let p = snap.process(17516).unwrap_or_else(|| panic!("no reader"));
            crate::why::render(&snap, p, &d.findings, &d.graph)
        };
        let mut reader = episode(None);
        (reader.pid, reader.tid) = (17516, 17516);
        reader.start_unix_ms = taken - 5;
        reader.not_before_unix_ms = Some(taken - 1_005);
        reader.last_seen_unix_ms = taken + 10_000;
        for sc in &mut reader.syscalls {
            sc.start_unix_ms += taken - T0;
        }
        let mut ended = episode(Some(taken));
        (ended.pid, ended.tid) = (17511, 17513);
        let mut not_stuck = episode(None);
        (not_stuck.pid, not_stuck.tid) = (17511, 17511);
        let mut reused = episode(None);
        (reused.pid, reused.tid) = (17516, 17516);
        reused.start_unix_ms = taken - 3_600_000;
        d.attach_history(
            &snap,
            "/tmp/h.db".into(),
            Ok(vec![reused, ended, not_stuck, reader]),
        );
        let rec = d.recorded.as_ref().unwrap_or_else(|| panic!("attached"));
        assert_eq!(rec.episodes.len(), 1, "{:?}", rec.episodes);
        assert_eq!(rec.episodes[0].start_unix_ms, taken - 5);
        let recall = Recall {
            rec,
            clock: clock(taken + 125_000),
        };
        let p = snap.process(17516).unwrap_or_else(|| panic!("no reader"));
        let why = crate::why::render_with(&snap, p, &d.findings, &d.graph, Some(&recall));
        assert!(
            why.contains("SIGKILL pending") || why.contains("is D (disk sleep)"),
            "{why}"
        );
        assert!(
            why.contains(", blocked since 10:22:13 (2m05s) and "),
            "{why}"
        );
        assert!(
            why.contains("\nRecorded history (/tmp/h.db)\n  wk-reader (17516): blocked since 10:22:13 (2m05s): first seen D at 10:22:13, last seen at 10:22:23; finding fuse.unanswered\n"),
            "{why}"
        );
        assert!(
            why.contains("        10:22:12.504 read(0x3, 0x7ffc0000, 0x1000)  ← unfinished (in it for 2m06s)\n"),
            "{why}"
        );
        let verdict =
            crate::verdict::render_recalled(&snap, &d.findings, false, "wedge why", Some(&recall));
        assert!(
            verdict.contains("(fuse.unanswered, confidence High)\n      when  blocked since 10:22:13 (2m05s)  — /tmp/h.db\n"),
            "{verdict}"
        );
        // JSON: the episode under the finding and per thread.
        let views = finding_views(&snap, &d.findings, Some(&recall));
        let j = serde_json::to_value(&views).unwrap_or_default();
        let f = j
            .as_array()
            .and_then(|a| a.iter().find(|f| f["id"] == "fuse.unanswered"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(f["episode"]["tid"], 17516, "{j}");
        assert_eq!(f["episode"]["ongoing"], true, "{j}");
        let r = crate::why::report_with(&snap, p, &d.findings, &d.graph, Some(&recall));
        let j = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(
            j["episodes"][0]["start_unix"],
            (taken - 5) as f64 / 1000.0,
            "{j}"
        );
        // Without a database: exactly as before.
        let plain = crate::why::report(&snap, p, &d.findings, &d.graph);
        let j = serde_json::to_value(&plain).unwrap_or_default();
        assert!(
            j.get("episodes").is_none() && !j.to_string().contains("episode"),
            "{j}"
        );
        assert_eq!(
            crate::why::render(&snap, p, &d.findings, &d.graph),
            plain_why
        );
        // A database that cannot be read says why.
        d.attach_history(
            &snap,
            "/tmp/h.db".into(),
            Err("/tmp/h.db: file is not a database".into()),
        );
        let recall = Recall {
            rec: d.recorded.as_ref().unwrap_or_else(|| panic!("attached")),
            clock: clock(taken),
        };
        let why = crate::why::render_with(&snap, p, &d.findings, &d.graph, Some(&recall));
        assert!(
            why.contains(
                "  (cannot see the recorded history: /tmp/h.db: file is not a database)\n"
            ),
            "{why}"
        );
        assert!(!why.contains("blocked since"), "{why}");
    }
}
