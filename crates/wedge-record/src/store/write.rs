//! The writer: one transaction per sample.
//!
//! What a sample changes — its task rows, the episodes it opens, continues
//! and closes, the finding spans, the processes' exits — commits together
//! or not at all, so a recorder killed in the middle of a write leaves the
//! database as it was after the previous sample. The writer keeps in
//! memory only what it can rebuild from the file (the open episodes and
//! spans, the processes not yet seen to exit, the ids of stacks and
//! sentences), and rebuilds it at open: after a kill -9 the next writer
//! picks up where the last commit left.

use super::conn::{self, err};
use super::lock::{self, WriterLock};
use super::{Retention, Sample, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use wedge_analysis::graph::{self, Node};
use wedge_analysis::{Diagnosis, Severity};
use wedge_model::{Ending, KernelFrame, Process, RecordedLogEvent, Snapshot, Syscall, Thread};

/// Kernel-log events per transaction.
pub const LOG_BATCH: usize = 256;

/// The one writer of a database (holds its lock while it lives).
pub struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) retention: Retention,
    /// The previous sample: its id, time and boot.
    pub(super) last: Option<(i64, i64, String)>,
    /// Open episodes by tid.
    open_eps: HashMap<i32, OpenEpisode>,
    /// Open finding spans by (finding id, its sorted pids).
    open_spans: HashMap<(String, Vec<i32>), i64>,
    /// Processes not yet seen to exit, by (boot, pid, start ticks).
    procs: HashMap<(String, i32, u64), i64>,
    /// Row ids of stacks and sentences already stored (cleared whenever
    /// the retention may have deleted some).
    pub(super) stack_ids: HashMap<String, i64>,
    pub(super) text_ids: HashMap<String, i64>,
    /// The interval and source last written to `meta`.
    meta_written: Option<(u64, String)>,
    pub(super) since_checkpoint: u32,
    _lock: WriterLock,
}

struct OpenEpisode {
    id: i64,
    pid: i32,
    tid_start: u64,
    boot: String,
    last_seen: i64,
    findings: BTreeSet<String>,
    has_syscalls: bool,
}

pub(super) fn ending_str(e: Ending) -> &'static str {
    match e {
        Ending::Resolved => "resolved",
        Ending::ProcessGone => "process_gone",
        Ending::RecorderStopped => "recorder_stopped",
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// FNV-1a: a hash that stays the same across Rust versions and machines
/// (the table outlives the binary that wrote it); collisions are harmless,
/// the lookup compares the text too.
pub(super) fn fnv(s: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// A frame as /proc/PID/stack prints it (`? ` for an unreliable one).
fn frame_line(f: &KernelFrame, out: &mut String) {
    if f.unreliable {
        out.push_str("? ");
    }
    out.push_str(&f.function);
    if let (Some(o), Some(sz)) = (f.offset, f.size) {
        let _ = write!(out, "+{o:#x}/{sz:#x}");
    }
    if let Some(m) = &f.module {
        let _ = write!(out, " [{m}]");
    }
}

/// The stack's text, one frame a line; None when it was not read.
fn stack_text(t: &Thread) -> Option<String> {
    let frames = t.kernel_stack.value()?;
    if frames.is_empty() {
        return None;
    }
    let mut s = String::new();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        frame_line(f, &mut s);
    }
    Some(s)
}

fn syscall_name(t: &Thread) -> Option<String> {
    match t.syscall.value()? {
        Syscall::InSyscall { nr, name, .. } => {
            Some(name.clone().unwrap_or_else(|| format!("syscall {nr}")))
        }
        _ => None,
    }
}

/// What the task ultimately waits on, in words: its chain in the
/// wait-for graph after the task itself (`FUSE connection 40 (/mnt/x) →
/// wk-fused 24136 (S, futex_do_wait)`), as the verdict's `chain` line.
fn blocker_words(snap: &Snapshot, diag: &Diagnosis, p: &Process, t: &Thread) -> Option<String> {
    let start = Node::Task {
        pid: p.pid,
        tid: t.tid,
    };
    diag.graph.out(&start).next()?;
    let chain = diag.graph.chains(&start).into_iter().next()?;
    let words: Vec<String> = chain
        .iter()
        .skip(1)
        .map(|n| graph::describe(snap, n))
        .collect();
    (!words.is_empty()).then(|| words.join(" → "))
}

/// The row id of `text` in `table` (`stacks` or `texts`), stored once;
/// marks it used by `sample_id` so the retention keeps it.
fn intern(
    tx: &Transaction<'_>,
    path: &Path,
    table: &str,
    cache: &mut HashMap<String, i64>,
    used: &mut HashSet<(&'static str, i64)>,
    text: &str,
    sample_id: i64,
) -> Result<i64, StoreError> {
    let col = if table == "stacks" { "frames" } else { "text" };
    let tag: &'static str = if table == "stacks" { "stacks" } else { "texts" };
    if let Some(&id) = cache.get(text) {
        used.insert((tag, id));
        return Ok(id);
    }
    let hash = fnv(text);
    let found: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT id FROM {table} WHERE hash = ?1 AND {col} = ?2"
        ))
        .and_then(|mut st| st.query_row(params![hash, text], |r| r.get(0)).optional())
        .map_err(err(path, table))?;
    let id = match found {
        Some(id) => {
            used.insert((tag, id));
            id
        }
        None => tx
            .prepare_cached(&format!(
                "INSERT INTO {table} (hash, {col}, last_sample) VALUES (?1, ?2, ?3) RETURNING id"
            ))
            .and_then(|mut st| st.query_row(params![hash, text, sample_id], |r| r.get(0)))
            .map_err(err(path, table))?,
    };
    // Bounded: a machine whose stacks never repeat must not grow the
    // writer without end.
    if cache.len() > 4096 {
        cache.clear();
    }
    cache.insert(text.to_string(), id);
    Ok(id)
}

/// Unix ms of the boot, from the snapshot's own clock pair, and the
/// ticks per second of start times.
fn boot_unix_ms(snap: &Snapshot) -> Option<(f64, f64)> {
    (snap.system.uptime_secs > 0.0 && snap.system.taken_at_unix_ms > 0).then(|| {
        (
            snap.system.taken_at_unix_ms as f64 - snap.system.uptime_secs * 1000.0,
            snap.system.clock_ticks_per_sec.max(1) as f64,
        )
    })
}

impl Writer {
    /// Opens (creating, migrating) `path` and takes the writer's lock.
    pub fn open(path: &Path, retention: Retention) -> Result<Writer, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("{}: cannot create: {e}", dir.display())))?;
        }
        // The lock first: the migrations below run with it held, so two
        // wedges never migrate one file at once. Nothing of the database
        // is written before its version is checked (conn::open_writer).
        let lock = lock::acquire(path)?;
        let (wal_pages, wal_limit) = super::retention::wal_bounds(&retention);
        let conn = conn::open_writer(path, wal_pages, wal_limit)?;
        let mut w = Writer {
            conn,
            path: path.to_path_buf(),
            retention,
            last: None,
            open_eps: HashMap::new(),
            open_spans: HashMap::new(),
            procs: HashMap::new(),
            stack_ids: HashMap::new(),
            text_ids: HashMap::new(),
            meta_written: None,
            since_checkpoint: 0,
            _lock: lock,
        };
        w.load()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let p = &w.path;
        w.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES
                 ('recorder_pid', ?1), ('recorder_started_unix_ms', ?2), ('wedge_version', ?3)",
                params![
                    std::process::id().to_string(),
                    now.to_string(),
                    env!("CARGO_PKG_VERSION")
                ],
            )
            .map_err(err(p, "writing meta"))?;
        Ok(w)
    }

    /// Rebuilds the in-memory state from the file: the last sample, the
    /// episodes and spans still open (a writer killed with them open), and
    /// those a clean stop ended while they lasted (`RecorderStopped` at
    /// the last sample) — the next sample decides whether each goes on
    /// (the same thread still stuck: the episode continues, its
    /// `last_seen` jumping over the gap) or ended meanwhile.
    fn load(&mut self) -> Result<(), StoreError> {
        let p = &self.path;
        self.last = self
            .conn
            .query_row(
                "SELECT id, unix_ms, boot_id FROM samples ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err(p, "reading the last sample"))?;
        let last_ms = self.last.as_ref().map_or(i64::MIN, |l| l.1);
        let mut st = self
            .conn
            .prepare(
                "SELECT e.id, e.pid, e.tid, e.tid_start_ticks, e.boot_id, e.last_seen_unix_ms,
                        e.findings, EXISTS (SELECT 1 FROM syscalls s WHERE s.episode_id = e.id)
                 FROM episodes e
                 WHERE e.end_unix_ms IS NULL
                    OR (e.ending = 'recorder_stopped' AND e.last_seen_unix_ms = ?1)",
            )
            .map_err(err(p, "reading open episodes"))?;
        let rows = st
            .query_map([last_ms], |r| {
                let findings: String = r.get(6)?;
                Ok((
                    r.get::<_, i32>(2)?,
                    OpenEpisode {
                        id: r.get(0)?,
                        pid: r.get(1)?,
                        tid_start: r.get::<_, i64>(3)? as u64,
                        boot: r.get(4)?,
                        last_seen: r.get(5)?,
                        findings: serde_json::from_str(&findings).unwrap_or_default(),
                        has_syscalls: r.get(7)?,
                    },
                ))
            })
            .map_err(err(p, "reading open episodes"))?;
        for row in rows {
            let (tid, ep) = row.map_err(err(p, "reading open episodes"))?;
            self.open_eps.insert(tid, ep);
        }
        drop(st);
        let mut st = self
            .conn
            .prepare(
                "SELECT id, finding, pids FROM finding_spans
                 WHERE end_unix_ms IS NULL
                    OR (ending = 'recorder_stopped' AND last_seen_unix_ms = ?1)",
            )
            .map_err(err(p, "reading open findings"))?;
        let rows = st
            .query_map([last_ms], |r| {
                let pids: String = r.get(2)?;
                Ok((
                    (
                        r.get::<_, String>(1)?,
                        serde_json::from_str(&pids).unwrap_or_default(),
                    ),
                    r.get::<_, i64>(0)?,
                ))
            })
            .map_err(err(p, "reading open findings"))?;
        for row in rows {
            let (k, id) = row.map_err(err(p, "reading open findings"))?;
            self.open_spans.insert(k, id);
        }
        drop(st);
        let mut st = self
            .conn
            .prepare(
                "SELECT id, boot_id, pid, start_ticks FROM processes WHERE exit_unix_ms IS NULL",
            )
            .map_err(err(p, "reading processes"))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    (
                        r.get::<_, String>(1)?,
                        r.get::<_, i32>(2)?,
                        r.get::<_, i64>(3)? as u64,
                    ),
                    r.get::<_, i64>(0)?,
                ))
            })
            .map_err(err(p, "reading processes"))?;
        for row in rows {
            let (k, id) = row.map_err(err(p, "reading processes"))?;
            self.procs.insert(k, id);
        }
        Ok(())
    }

    /// Writes one sample in one transaction.
    pub fn sample(&mut self, s: &Sample<'_>) -> Result<(), StoreError> {
        match self.write_sample(s) {
            Ok(()) => self.enforce_retention(s.unix_ms),
            Err(e) => {
                // The transaction rolled back (a full disk, an I/O error):
                // what this sample changed in memory did not happen in the
                // file. Rebuild from the file, so the next sample goes on
                // from the last commit.
                self.forget();
                let _ = self.load();
                Err(e)
            }
        }
    }

    /// Drops everything kept in memory about the file.
    fn forget(&mut self) {
        self.last = None;
        self.open_eps.clear();
        self.open_spans.clear();
        self.procs.clear();
        self.stack_ids.clear();
        self.text_ids.clear();
        self.meta_written = None;
    }

    fn write_sample(&mut self, s: &Sample<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let p = path.as_path();
        let snap = s.snap;
        let boot = snap.system.boot_id.clone().unwrap_or_default();
        let now = s.unix_ms;
        let boot_ms = boot_unix_ms(snap);
        let prev_ms = self.last.as_ref().map(|l| l.1);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(p, "beginning a sample"))?;
        let sample_id: i64 = tx
            .prepare_cached(
                "INSERT INTO samples (unix_ms, scan_ms, source, interval_ms, boot_id)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![now, s.scan_ms, s.source, s.interval_ms as i64, boot],
                    |r| r.get(0),
                )
            })
            .map_err(err(p, "writing the sample"))?;
        if self.meta_written.as_ref() != Some(&(s.interval_ms, s.source.to_string())) {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('interval_ms', ?1), ('source', ?2)",
                params![s.interval_ms.to_string(), s.source],
            )
            .map_err(err(p, "writing meta"))?;
            self.meta_written = Some((s.interval_ms, s.source.to_string()));
        }

        // Who is here, and who is stuck (wedge ps's notion: D, Z, T, t, a
        // fatal signal pending, a sleep known to hang).
        let mut threads: HashMap<i32, (&Process, &Thread)> = HashMap::new();
        let mut present: HashSet<(i32, u64)> = HashSet::new();
        let mut by_pid: HashMap<i32, &Process> = HashMap::new();
        let mut stuck: Vec<(&Process, &Thread)> = Vec::new();
        for proc_ in &snap.processes {
            present.insert((proc_.pid, proc_.start_time));
            by_pid.insert(proc_.pid, proc_);
            for t in &proc_.threads {
                threads.insert(t.tid, (proc_, t));
                if wedge_analysis::matters(proc_, t).is_some() {
                    stuck.push((proc_, t));
                }
            }
        }
        let mut findings_of: HashMap<i32, Vec<&'static str>> = HashMap::new();
        for f in &s.diagnosis.findings {
            for &pid in &f.pids {
                findings_of.entry(pid).or_default().push(f.id.as_str());
            }
        }

        let mut used: HashSet<(&'static str, i64)> = HashSet::new();
        let mut stuck_tids: HashSet<i32> = HashSet::new();
        for &(proc_, t) in &stuck {
            stuck_tids.insert(t.tid);
            let stack_id = match stack_text(t) {
                Some(text) => Some(intern(
                    &tx,
                    p,
                    "stacks",
                    &mut self.stack_ids,
                    &mut used,
                    &text,
                    sample_id,
                )?),
                None => None,
            };
            let wait = wedge_analysis::describe_wait(snap, proc_, t);
            let wait_id = intern(
                &tx,
                p,
                "texts",
                &mut self.text_ids,
                &mut used,
                &wait,
                sample_id,
            )?;
            let blocker_id = match blocker_words(snap, s.diagnosis, proc_, t) {
                Some(b) => Some(intern(
                    &tx,
                    p,
                    "texts",
                    &mut self.text_ids,
                    &mut used,
                    &b,
                    sample_id,
                )?),
                None => None,
            };
            let syscall = syscall_name(t);
            let off_cpu = snap.off_cpu_ms(t).map(|ms| ms.round() as i64);
            let state = t.state.code().to_string();
            tx.prepare_cached(
                "INSERT OR REPLACE INTO tasks
                 (sample_id, tid, pid, state, wait_id, blocker_id, syscall, off_cpu_ms, stack_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    sample_id, t.tid, proc_.pid, state, wait_id, blocker_id, syscall, off_cpu,
                    stack_id
                ])
            })
            .map_err(err(p, "writing a task"))?;

            let names: BTreeSet<String> = findings_of
                .get(&proc_.pid)
                .into_iter()
                .flatten()
                .map(|s| s.to_string())
                .collect();
            let continues = self.open_eps.get(&t.tid).is_some_and(|ep| {
                ep.pid == proc_.pid && ep.tid_start == t.start_time && ep.boot == boot
            });
            if continues {
                let Some(ep) = self.open_eps.get_mut(&t.tid) else {
                    continue;
                };
                // A gap longer than two intervals: the recorder was not
                // running (killed, restarted); the thread is stuck on both
                // sides, so the episode goes on, with the time nobody
                // watched kept apart.
                let gap = now - ep.last_seen;
                let unobserved = if gap > 2 * s.interval_ms as i64 {
                    gap - s.interval_ms as i64
                } else {
                    0
                };
                let grew = !names.is_subset(&ep.findings);
                ep.findings.extend(names);
                let findings_json = grew
                    .then(|| serde_json::to_string(&ep.findings).unwrap_or_else(|_| "[]".into()));
                tx.prepare_cached(
                    "UPDATE episodes SET last_seen_unix_ms = ?2, end_unix_ms = NULL, ending = NULL,
                        unobserved_ms = unobserved_ms + ?3,
                        wait_id = coalesce(wait_id, ?4), blocker_id = coalesce(blocker_id, ?5),
                        stack_id = coalesce(stack_id, ?6), syscall = coalesce(syscall, ?7),
                        findings = coalesce(?8, findings)
                     WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        ep.id,
                        now,
                        unobserved,
                        wait_id,
                        blocker_id,
                        stack_id,
                        syscall,
                        findings_json
                    ])
                })
                .map_err(err(p, "continuing an episode"))?;
                ep.last_seen = now;
                if !ep.has_syscalls {
                    ep.has_syscalls = write_syscalls(&tx, p, ep.id, sample_id, s, t.tid)?;
                }
                continue;
            }
            // Another thread under a reused tid, or a new boot: the old
            // one is gone.
            if let Some(old) = self.open_eps.remove(&t.tid) {
                close_episode(&tx, p, old.id, now, Ending::ProcessGone)?;
            }
            let process_id = ensure_process(&tx, p, &mut self.procs, &boot, proc_, boot_ms)?;
            let findings_json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO episodes (process_id, boot_id, pid, tid, tid_start_ticks, comm,
                        process_comm, state, wait_id, blocker_id, stack_id, findings,
                        start_unix_ms, not_before_unix_ms, last_seen_unix_ms, syscall)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?13, ?15)
                     RETURNING id",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            process_id,
                            boot,
                            proc_.pid,
                            t.tid,
                            t.start_time as i64,
                            t.comm,
                            proc_.comm,
                            state,
                            wait_id,
                            blocker_id,
                            stack_id,
                            findings_json,
                            now,
                            prev_ms,
                            syscall
                        ],
                        |r| r.get(0),
                    )
                })
                .map_err(err(p, "opening an episode"))?;
            let has_syscalls = write_syscalls(&tx, p, id, sample_id, s, t.tid)?;
            self.open_eps.insert(
                t.tid,
                OpenEpisode {
                    id,
                    pid: proc_.pid,
                    tid_start: t.start_time,
                    boot: boot.clone(),
                    last_seen: now,
                    findings: names,
                    has_syscalls,
                },
            );
        }
        // Episodes this sample did not continue: the thread left the state
        // (Resolved) or is no longer there (ProcessGone).
        let ended: Vec<i32> = self
            .open_eps
            .keys()
            .copied()
            .filter(|tid| !stuck_tids.contains(tid))
            .collect();
        for tid in ended {
            let Some(ep) = self.open_eps.remove(&tid) else {
                continue;
            };
            let alive = ep.boot == boot
                && threads
                    .get(&tid)
                    .is_some_and(|(proc_, t)| proc_.pid == ep.pid && t.start_time == ep.tid_start);
            let ending = if alive {
                Ending::Resolved
            } else {
                Ending::ProcessGone
            };
            close_episode(&tx, p, ep.id, now, ending)?;
        }

        // Finding spans.
        let mut seen_spans: HashSet<(String, Vec<i32>)> = HashSet::new();
        for f in &s.diagnosis.findings {
            let mut pids = f.pids.clone();
            pids.sort_unstable();
            pids.dedup();
            let key = (f.id.as_str().to_string(), pids);
            if !seen_spans.insert(key.clone()) {
                continue;
            }
            for pid in &key.1 {
                if let Some(proc_) = by_pid.get(pid) {
                    ensure_process(&tx, p, &mut self.procs, &boot, proc_, boot_ms)?;
                }
            }
            let sev = severity_str(f.severity);
            match self.open_spans.get(&key) {
                Some(&id) => {
                    tx.prepare_cached(
                        "UPDATE finding_spans SET last_seen_unix_ms = ?2, severity = ?3,
                            title = ?4, end_unix_ms = NULL, ending = NULL WHERE id = ?1",
                    )
                    .and_then(|mut st| st.execute(params![id, now, sev, f.title]))
                    .map_err(err(p, "continuing a finding"))?;
                }
                None => {
                    let pids_json = serde_json::to_string(&key.1).unwrap_or_else(|_| "[]".into());
                    let id: i64 = tx
                        .prepare_cached(
                            "INSERT INTO finding_spans (finding, pids, severity, title,
                                first_seen_unix_ms, last_seen_unix_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
                        )
                        .and_then(|mut st| {
                            st.query_row(params![key.0, pids_json, sev, f.title, now], |r| r.get(0))
                        })
                        .map_err(err(p, "opening a finding"))?;
                    self.open_spans.insert(key, id);
                }
            }
        }
        let gone_spans: Vec<(String, Vec<i32>)> = self
            .open_spans
            .keys()
            .filter(|k| !seen_spans.contains(*k))
            .cloned()
            .collect();
        for key in gone_spans {
            let Some(id) = self.open_spans.remove(&key) else {
                continue;
            };
            let gone = !key.1.is_empty()
                && (self.last.as_ref().is_some_and(|l| l.2 != boot)
                    || key.1.iter().all(|pid| !by_pid.contains_key(pid)));
            let ending = if gone {
                Ending::ProcessGone
            } else {
                Ending::Resolved
            };
            tx.prepare_cached(
                "UPDATE finding_spans SET end_unix_ms = ?2, ending = ?3 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, now, ending_str(ending)]))
            .map_err(err(p, "closing a finding"))?;
        }

        // Processes that were ever wedged and are gone now.
        let exited: Vec<(String, i32, u64)> = self
            .procs
            .keys()
            .filter(|(b, pid, start)| *b != boot || !present.contains(&(*pid, *start)))
            .cloned()
            .collect();
        for k in exited {
            if let Some(id) = self.procs.remove(&k) {
                tx.prepare_cached("UPDATE processes SET exit_unix_ms = ?2 WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![id, now]))
                    .map_err(err(p, "writing a process exit"))?;
            }
        }

        // What this sample used, so the retention keeps it.
        for (table, id) in used {
            tx.prepare_cached(&format!(
                "UPDATE {table} SET last_sample = ?2 WHERE id = ?1"
            ))
            .and_then(|mut st| st.execute(params![id, sample_id]))
            .map_err(err(p, table))?;
        }
        tx.commit().map_err(err(p, "committing the sample"))?;
        self.last = Some((sample_id, now, boot));
        self.since_checkpoint += 1;
        Ok(())
    }

    /// Writes kernel-log events; ones already stored (same boot, same
    /// sequence number) are skipped. A flood is written in transactions of
    /// [`LOG_BATCH`] events with the retention between them, so one call
    /// with the whole ring buffer cannot carry the file past its limit.
    pub fn log_events(&mut self, events: &[RecordedLogEvent]) -> Result<(), StoreError> {
        // Chunks are bounded in bytes too: the retention runs between
        // transactions, so one transaction may overshoot the high mark by
        // what it writes. At a small limit (the test's 512 KiB) 256 events
        // of a few hundred bytes each, with their index entries, were a
        // fifth of it; a 64th of the limit keeps the overshoot inside the
        // slack between the high mark and the limit.
        let budget = (self.retention.max_bytes / 64).max(4096) as usize;
        let mut start = 0;
        let mut bytes = 0usize;
        for (i, e) in events.iter().enumerate() {
            // The event's JSON and its row's other columns and index
            // entries (about as much again).
            let size = serde_json::to_vec(&e.event).map_or(512, |v| v.len()) * 2 + 64;
            if i > start && (i - start >= LOG_BATCH || bytes + size > budget) {
                self.log_chunk(&events[start..i])?;
                start = i;
                bytes = 0;
            }
            bytes += size;
        }
        self.log_chunk(&events[start..])
    }

    fn log_chunk(&mut self, events: &[RecordedLogEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let p = path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(p, "beginning log events"))?;
        let mut high: Option<(&str, u64)> = None;
        for e in events {
            let json = serde_json::to_string(&e.event).map_err(|x| {
                StoreError::Other(format!("{}: cannot encode a log event: {x}", p.display()))
            })?;
            let owner = match &e.event.detail {
                wedge_model::LogDetail::HungTask {
                    blocker: Some(b), ..
                } => b.owner_pid,
                _ => None,
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO log_events (boot_id, seq, unix_ms, kind, pid, owner_pid, event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    e.boot_id,
                    e.seq as i64,
                    e.unix_ms,
                    e.event.kind,
                    e.event.pid,
                    owner,
                    json
                ])
            })
            .map_err(err(p, "writing a log event"))?;
            if high.is_none_or(|(b, s)| b != e.boot_id || e.seq > s) {
                high = Some((&e.boot_id, e.seq));
            }
        }
        // The high-water mark outlives the events themselves: once the
        // retention drops them, the kernel's ring may still hold them, and
        // a restarted recorder must not store them again.
        if let Some((b, s)) = high {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('log_boot_id', ?1), ('log_seq', ?2)",
                params![b, s.to_string()],
            )
            .map_err(err(p, "writing meta"))?;
        }
        tx.commit().map_err(err(p, "committing log events"))?;
        let now = self.last.as_ref().map_or_else(
            || events.iter().filter_map(|e| e.unix_ms).max().unwrap_or(0),
            |l| l.1,
        );
        self.enforce_retention(now)
    }

    /// The highest kmsg sequence number stored for this boot.
    pub fn last_log_seq(&self, boot_id: &str) -> Result<Option<u64>, StoreError> {
        let p = &self.path;
        let stored: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(seq) FROM log_events WHERE boot_id = ?1",
                [boot_id],
                |r| r.get(0),
            )
            .map_err(err(p, "reading log sequence numbers"))?;
        let meta = |k: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(err(p, "reading meta"))
        };
        let mark = match meta("log_boot_id")? {
            Some(b) if b == boot_id => meta("log_seq")?.and_then(|s| s.parse::<u64>().ok()),
            _ => None,
        };
        Ok(stored.map(|s| s as u64).max(mark))
    }

    /// A clean stop: open episodes and findings end as `RecorderStopped`.
    pub fn close(mut self, unix_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let p = path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(p, "closing"))?;
        let stopped = ending_str(Ending::RecorderStopped);
        tx.execute(
            "UPDATE episodes SET end_unix_ms = ?1, ending = ?2 WHERE end_unix_ms IS NULL",
            params![unix_ms, stopped],
        )
        .map_err(err(p, "closing episodes"))?;
        tx.execute(
            "UPDATE finding_spans SET end_unix_ms = ?1, ending = ?2 WHERE end_unix_ms IS NULL",
            params![unix_ms, stopped],
        )
        .map_err(err(p, "closing findings"))?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('recorder_stopped_unix_ms', ?1)",
            [unix_ms.to_string()],
        )
        .map_err(err(p, "writing meta"))?;
        tx.commit().map_err(err(p, "closing"))?;
        self.open_eps.clear();
        self.open_spans.clear();
        // Leave no WAL behind: a reader that cannot create the -shm (its
        // directory not writable) then reads the main file alone.
        self.checkpoint();
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn close_episode(
    tx: &Transaction<'_>,
    p: &Path,
    id: i64,
    now: i64,
    ending: Ending,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE episodes SET end_unix_ms = ?2, ending = ?3 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![id, now, ending_str(ending)]))
        .map(|_| ())
        .map_err(err(p, "closing an episode"))
}

/// Stores the calls that led into episode `id`, when the sample has them.
fn write_syscalls(
    tx: &Transaction<'_>,
    p: &Path,
    id: i64,
    sample_id: i64,
    s: &Sample<'_>,
    tid: i32,
) -> Result<bool, StoreError> {
    let Some(calls) = s.syscalls.get(&tid).filter(|c| !c.is_empty()) else {
        return Ok(false);
    };
    let json = serde_json::to_string(calls).map_err(|e| {
        StoreError::Other(format!("{}: cannot encode system calls: {e}", p.display()))
    })?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO syscalls (episode_id, sample_id, calls) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut st| st.execute(params![id, sample_id, json]))
    .map_err(err(p, "writing system calls"))?;
    Ok(true)
}

/// The row of a process that is (now) wedged or named by a finding, made
/// once per (boot, pid, start time).
fn ensure_process(
    tx: &Transaction<'_>,
    p: &Path,
    procs: &mut HashMap<(String, i32, u64), i64>,
    boot: &str,
    proc_: &Process,
    boot_ms: Option<(f64, f64)>,
) -> Result<i64, StoreError> {
    let key = (boot.to_string(), proc_.pid, proc_.start_time);
    if let Some(&id) = procs.get(&key) {
        return Ok(id);
    }
    // start_time is in USER_HZ ticks since boot.
    let start_ms =
        boot_ms.map(|(b, hz)| (b + proc_.start_time as f64 * 1000.0 / hz).round() as i64);
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO processes (boot_id, pid, start_ticks, comm, start_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (boot_id, pid, start_ticks) DO UPDATE SET exit_unix_ms = NULL
             RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(
                params![
                    boot,
                    proc_.pid,
                    proc_.start_time as i64,
                    proc_.comm,
                    start_ms
                ],
                |r| r.get(0),
            )
        })
        .map_err(err(p, "writing a process"))?;
    procs.insert(key, id);
    Ok(id)
}
