//! The reader: `wedge history`, `why` and the verdict.
//!
//! Read-only and never in the recorder's way: the file is opened with
//! SQLITE_OPEN_READ_ONLY and, in WAL mode, a reader reads its snapshot
//! while the writer appends — neither waits for the other. The reader
//! never takes the writer's lock (it only probes it, to say whether a
//! recorder runs) and never migrates: a database of an older version is
//! read in its own layout.

use super::conn::{self, err};
use super::{lock, retention, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, ToSql};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use wedge_model::{
    Ending, Episode, FindingSpan, History, LogEvent, ProcessLife, RecordedLogEvent, RecorderInfo,
    SyscallEvent,
};

/// A read-only view of a database (never blocks a running recorder).
pub struct Reader {
    conn: Connection,
    path: PathBuf,
    version: u32,
    /// Opened with `immutable=1` (see [`Reader::open`]).
    immutable: bool,
}

fn parse_ending(s: Option<String>) -> Option<Ending> {
    match s.as_deref()? {
        "resolved" => Some(Ending::Resolved),
        "process_gone" => Some(Ending::ProcessGone),
        "recorder_stopped" => Some(Ending::RecorderStopped),
        _ => None,
    }
}

/// A stack's function names from its stored lines
/// (`? request_wait_answer+0x1f/0x90 [fuse]` → `request_wait_answer`).
fn functions(frames: &str) -> Vec<String> {
    frames
        .lines()
        .map(|l| {
            let l = l.strip_prefix("? ").unwrap_or(l);
            l.split(['+', ' ']).next().unwrap_or(l).to_string()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// `path` as an SQLite URI filename: `%`, `?` and `#` escaped.
fn uri(path: &Path) -> String {
    let mut s = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3f"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s
}

impl Reader {
    /// None when there is no database at `path` (no file, an empty one,
    /// or one a recorder created but has not initialized yet).
    pub fn open(path: &Path) -> Result<Option<Reader>, StoreError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Other(format!("{}: {e}", path.display()))),
            Ok(m) if m.len() == 0 => return Ok(None),
            Ok(_) => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |name: String| -> Result<(Connection, conn::Header), StoreError> {
            let c = Connection::open_with_flags(name, flags).map_err(err(path, "cannot open"))?;
            // Only a WAL reset or recovery makes a reader wait; never long.
            c.busy_timeout(std::time::Duration::from_millis(300))
                .map_err(err(path, "busy_timeout"))?;
            let h = conn::header(&c, path)?;
            Ok((c, h))
        };
        let (conn, header, immutable) = match open(uri(path)) {
            Ok((c, h)) => (c, h, false),
            Err(e @ StoreError::TooNew { .. }) => return Err(e),
            Err(first) => {
                // A WAL reader needs the -shm beside the file, and creates
                // it (and an empty -wal) when no recorder left one: in a
                // directory it cannot write (root's /var/lib/wedge read by
                // a user, a read-only mount) that fails. With no recorder
                // running, the last one checkpointed its WAL into the main
                // file at its close, so `immutable=1` — no -shm, no WAL,
                // no locks — reads all of it. (After a kill -9 the WAL's
                // last commits are not seen this way.)
                match open(format!("{}?immutable=1", uri(path))) {
                    Ok((c, h)) => (c, h, true),
                    Err(e @ StoreError::TooNew { .. }) => return Err(e),
                    Err(_) => return Err(first),
                }
            }
        };
        if header.fresh {
            return Ok(None);
        }
        Ok(Some(Reader {
            conn,
            path: path.to_path_buf(),
            version: header.version,
            immutable,
        }))
    }

    /// The schema version of the file (as written; never migrated by a
    /// reader).
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// Whether the file had to be read without its WAL (`immutable=1`: its
    /// directory is not writable): the last commits of a recorder that was
    /// killed are then missing.
    pub fn without_wal(&self) -> bool {
        self.immutable
    }

    fn recorder(&self) -> Result<RecorderInfo, StoreError> {
        let p = &self.path;
        let last: Option<(i64, String, i64)> = self
            .conn
            .query_row(
                "SELECT unix_ms, source, interval_ms FROM samples ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err(p, "reading samples"))?;
        let first: Option<i64> = self
            .conn
            .query_row("SELECT unix_ms FROM samples ORDER BY id LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err(p, "reading samples"))?;
        let samples: i64 = self
            .conn
            .query_row("SELECT count(*) FROM samples", [], |r| r.get(0))
            .map_err(err(p, "reading samples"))?;
        Ok(RecorderInfo {
            db: p.display().to_string(),
            schema_version: self.version,
            running_pid: lock::holder(p),
            interval_ms: last.as_ref().map(|l| l.2.max(0) as u64),
            samples: samples.max(0) as u64,
            first_sample_unix_ms: first,
            last_sample_unix_ms: last.as_ref().map(|l| l.0),
            size_bytes: retention::size_on_disk(p),
            source: last.map(|l| l.1),
        })
    }

    /// Episodes matching `filter` (an SQL condition on `e`), by start.
    fn episodes(
        &self,
        filter: &str,
        args: &[&dyn ToSql],
    ) -> Result<Vec<(Option<i64>, Episode)>, StoreError> {
        let p = &self.path;
        // Version 1 has no syscall column and no syscalls table.
        let (syscall, calls, join) = if self.version >= 2 {
            (
                "e.syscall",
                "c.calls",
                "LEFT JOIN syscalls c ON c.episode_id = e.id",
            )
        } else {
            ("NULL", "NULL", "")
        };
        let sql = format!(
            "SELECT e.pid, e.tid, e.comm, e.process_comm, e.state, w.text, b.text, {syscall},
                    e.findings, s.frames, e.start_unix_ms, e.not_before_unix_ms,
                    e.last_seen_unix_ms, e.end_unix_ms, e.ending, {calls}, e.process_id
             FROM episodes e
             LEFT JOIN texts w ON w.id = e.wait_id
             LEFT JOIN texts b ON b.id = e.blocker_id
             LEFT JOIN stacks s ON s.id = e.stack_id
             {join}
             WHERE {filter}
             ORDER BY e.start_unix_ms, e.tid"
        );
        let mut st = self
            .conn
            .prepare(&sql)
            .map_err(err(p, "reading episodes"))?;
        let rows = st
            .query_map(args, |r| {
                let findings: String = r.get(8)?;
                let frames: Option<String> = r.get(9)?;
                let calls: Option<String> = r.get(15)?;
                Ok((
                    r.get::<_, Option<i64>>(16)?,
                    Episode {
                        pid: r.get(0)?,
                        tid: r.get(1)?,
                        comm: r.get(2)?,
                        process_comm: r.get(3)?,
                        state: r.get(4)?,
                        wait: r.get(5)?,
                        blocker: r.get(6)?,
                        syscall: r.get(7)?,
                        findings: serde_json::from_str(&findings).unwrap_or_default(),
                        stack: frames.as_deref().map(functions).unwrap_or_default(),
                        start_unix_ms: r.get(10)?,
                        not_before_unix_ms: r.get(11)?,
                        last_seen_unix_ms: r.get(12)?,
                        end_unix_ms: r.get(13)?,
                        ending: parse_ending(r.get(14)?),
                        syscalls: calls
                            .and_then(|c| serde_json::from_str::<Vec<SyscallEvent>>(&c).ok())
                            .unwrap_or_default(),
                    },
                ))
            })
            .map_err(err(p, "reading episodes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(err(p, "reading episodes"))
    }

    /// Everything, or what concerns `pid`, from `since_unix_ms` on.
    ///
    /// `pid` is a process or a thread: the episodes of its threads (or of
    /// that thread), the findings naming its process, the log events
    /// naming any of its threads, its processes (one per pid reuse).
    /// `since` keeps what lasted until then or began after.
    pub fn history(
        &self,
        pid: Option<i32>,
        since_unix_ms: Option<i64>,
    ) -> Result<History, StoreError> {
        let p = &self.path;
        let recorder = self.recorder()?;
        let episodes: Vec<Episode> = self
            .episodes(
                "(?1 IS NULL OR e.pid = ?1 OR e.tid = ?1)
                 AND (?2 IS NULL OR e.end_unix_ms IS NULL OR e.end_unix_ms >= ?2)",
                &[&pid, &since_unix_ms],
            )?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        // The ids a pid stands for: itself, its process and its threads.
        let ids: Option<BTreeSet<i32>> = pid.map(|pid| {
            let mut s: BTreeSet<i32> = BTreeSet::from([pid]);
            for e in &episodes {
                s.insert(e.pid);
                s.insert(e.tid);
            }
            s
        });
        let ids_json = ids
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "[]".into()));

        let mut findings = Vec::new();
        {
            let mut st = self
                .conn
                .prepare(
                    "SELECT finding, severity, title, pids, first_seen_unix_ms,
                            last_seen_unix_ms, end_unix_ms, ending
                     FROM finding_spans
                     WHERE (?1 IS NULL OR end_unix_ms IS NULL OR end_unix_ms >= ?1)
                       AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(pids)
                                                  WHERE value IN (SELECT value FROM json_each(?2))))
                     ORDER BY first_seen_unix_ms, id",
                )
                .map_err(err(p, "reading findings"))?;
            let rows = st
                .query_map(params![since_unix_ms, ids_json], |r| {
                    let pids: String = r.get(3)?;
                    Ok(FindingSpan {
                        id: r.get(0)?,
                        severity: r.get(1)?,
                        title: r.get(2)?,
                        pids: serde_json::from_str(&pids).unwrap_or_default(),
                        first_seen_unix_ms: r.get(4)?,
                        last_seen_unix_ms: r.get(5)?,
                        end_unix_ms: r.get(6)?,
                        ending: parse_ending(r.get(7)?),
                    })
                })
                .map_err(err(p, "reading findings"))?;
            for f in rows {
                findings.push(f.map_err(err(p, "reading findings"))?);
            }
        }

        let mut log_events = Vec::new();
        {
            let mut st = self
                .conn
                .prepare(
                    "SELECT boot_id, seq, unix_ms, event FROM log_events
                     WHERE (?1 IS NULL OR unix_ms >= ?1)
                       AND (?2 IS NULL OR pid IN (SELECT value FROM json_each(?2))
                                       OR owner_pid IN (SELECT value FROM json_each(?2)))
                     ORDER BY id",
                )
                .map_err(err(p, "reading log events"))?;
            let rows = st
                .query_map(params![since_unix_ms, ids_json], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(err(p, "reading log events"))?;
            for row in rows {
                let (boot_id, seq, unix_ms, event) = row.map_err(err(p, "reading log events"))?;
                // An event this wedge cannot decode (a newer kind's
                // fields) is skipped, not fatal to the whole history.
                let Ok(event) = serde_json::from_str::<LogEvent>(&event) else {
                    continue;
                };
                log_events.push(RecordedLogEvent {
                    boot_id,
                    seq: seq.max(0) as u64,
                    unix_ms,
                    event,
                });
            }
        }

        let mut processes = Vec::new();
        {
            let mut st = self
                .conn
                .prepare(
                    "SELECT pid, comm, start_unix_ms, exit_unix_ms FROM processes
                     WHERE (?1 IS NULL OR exit_unix_ms IS NULL OR exit_unix_ms >= ?1)
                       AND (?2 IS NULL OR pid IN (SELECT value FROM json_each(?2)))
                     ORDER BY id",
                )
                .map_err(err(p, "reading processes"))?;
            let rows = st
                .query_map(params![since_unix_ms, ids_json], |r| {
                    Ok(ProcessLife {
                        pid: r.get(0)?,
                        comm: r.get(1)?,
                        start_unix_ms: r.get(2)?,
                        exit_unix_ms: r.get(3)?,
                    })
                })
                .map_err(err(p, "reading processes"))?;
            for row in rows {
                processes.push(row.map_err(err(p, "reading processes"))?);
            }
        }
        Ok(History {
            recorder,
            episodes,
            findings,
            log_events,
            processes,
        })
    }

    /// The ongoing (else the latest) episode of each thread of `pid`, by
    /// tid: of the newest process that had this pid (an earlier process
    /// whose pid was reused is not this one).
    pub fn episodes_of(&self, pid: i32) -> Result<Vec<Episode>, StoreError> {
        let p = &self.path;
        let newest: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM processes WHERE pid = ?1", [pid], |r| {
                r.get(0)
            })
            .map_err(err(p, "reading processes"))?;
        let all = self.episodes(
            "e.pid = ?1 AND (?2 IS NULL OR e.process_id = ?2)",
            &[&pid, &newest],
        )?;
        let mut by_tid: HashMap<i32, Episode> = HashMap::new();
        for (_, e) in all {
            match by_tid.get(&e.tid) {
                // An ongoing one stays; otherwise the later start wins
                // (rows come by start).
                Some(kept) if kept.end_unix_ms.is_none() => {}
                _ => {
                    by_tid.insert(e.tid, e);
                }
            }
        }
        let mut v: Vec<Episode> = by_tid.into_values().collect();
        v.sort_by_key(|e| e.tid);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::write::fnv;
    use super::*;

    #[test]
    fn stack_lines_give_their_functions() {
        assert_eq!(
            functions(
                "request_wait_answer+0x1f/0x90 [fuse]\n? fuse_simple_request\nvfs_read+0x9/0x20"
            ),
            ["request_wait_answer", "fuse_simple_request", "vfs_read"]
        );
        // The hash the stacks table is keyed by is FNV-1a, fixed forever.
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
    }

    #[test]
    fn paths_become_uris() {
        assert_eq!(uri(Path::new("/a b/h%?#.db")), "file:/a b/h%25%3f%23.db");
    }
}
