//! Keeping the database inside its limits: by age (`max_age_secs`) and by
//! size (`max_bytes`, the main file and its WAL together).
//!
//! The oldest samples go first, with what only they referenced: their
//! task rows, stacks and sentences no longer used by a kept sample or an
//! episode, closed episodes and finding spans that ended before the new
//! start, processes that exited before it, and kernel-log events as old.
//! Each batch is its own short transaction, so a reader is never held up
//! long and a kill -9 in the middle loses at most the batch.
//!
//! The file shrinks only through `incremental_vacuum` (auto_vacuum =
//! INCREMENTAL is set at creation) followed by a checkpoint: in WAL mode
//! the vacuum's truncation reaches the main file when the WAL is copied
//! back into it.

use super::conn::err;
use super::{Retention, StoreError, Writer};
use rusqlite::{params, TransactionBehavior};

/// The WAL's bounds for a size limit: autocheckpoint pages and
/// `journal_size_limit`, each about 1/32 of the limit (SQLite's default
/// autocheckpoint, 1000 pages = 4 MiB, would alone overrun a small limit),
/// within 16 pages and the default.
pub(super) fn wal_bounds(r: &Retention) -> (u32, u64) {
    let bytes = (r.max_bytes / 32).clamp(16 * 4096, 1000 * 4096);
    ((bytes / 4096) as u32, bytes)
}

/// Samples between two `wal_checkpoint(TRUNCATE)`s: once a minute at 1 Hz.
/// The passive autocheckpoint copies the WAL back but leaves the file at
/// its longest, which `size_bytes` and the size limit count; TRUNCATE
/// resets it to zero. Not at every sample: a checkpoint syncs the main
/// file, a second write of every page the sample touched.
const CHECKPOINT_EVERY: u32 = 60;

/// At most this many samples (and as many log events) per batch.
const BATCH_ROWS: i64 = 512;

/// Above `high` (7/8 of the limit) the oldest are deleted until the live
/// pages are under `low` (3/4): room for the WAL and a batch of slack.
fn marks(r: &Retention) -> (u64, u64) {
    (r.max_bytes / 8 * 7, r.max_bytes / 4 * 3)
}

/// The file and its WAL on disk.
pub(crate) fn size_on_disk(db: &std::path::Path) -> u64 {
    let len = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        std::fs::metadata(std::path::PathBuf::from(s)).map_or(0, |m| m.len())
    };
    len("") + len("-wal")
}

impl Writer {
    /// After each write: age first, then size, then the WAL.
    pub(super) fn enforce_retention(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let cutoff =
            now_ms.saturating_sub((self.retention.max_age_secs as i64).saturating_mul(1000));
        let mut deleted = false;
        // Age: a bounded number of batches per call; a backlog (a week
        // of samples after a long stop) is worked off over the next ones.
        for _ in 0..8 {
            if !self.delete_before(cutoff)? {
                break;
            }
            deleted = true;
        }
        let (high, low) = marks(&self.retention);
        if size_on_disk(&self.path) > high {
            // Size: batch after batch, each a small fraction of history,
            // until the pages in use fit under the low mark; the file
            // itself shrinks at the vacuum and checkpoint below.
            for _ in 0..64 {
                if self.live_bytes()? <= low {
                    break;
                }
                let Some(t) = self.size_cutoff()? else { break };
                if !self.delete_before(t)? {
                    break;
                }
                deleted = true;
            }
        }
        let wal = size_on_disk(&self.path)
            .saturating_sub(std::fs::metadata(&self.path).map_or(0, |m| m.len()));
        if deleted
            || self.since_checkpoint >= CHECKPOINT_EVERY
            || wal > self.retention.max_bytes / 16
        {
            if deleted {
                self.conn
                    .execute_batch("PRAGMA incremental_vacuum")
                    .map_err(err(&self.path, "incremental_vacuum"))?;
            }
            self.checkpoint();
        }
        Ok(())
    }

    /// `wal_checkpoint(TRUNCATE)`; a reader's open snapshot may keep it
    /// from finishing (SQLite then reports busy, not an error): the next
    /// one will.
    pub(super) fn checkpoint(&mut self) {
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.since_checkpoint = 0;
    }

    /// Bytes in pages that hold data (the file minus its free list, as the
    /// WAL shows it).
    fn live_bytes(&self) -> Result<u64, StoreError> {
        let q = |pragma: &str| -> Result<i64, StoreError> {
            self.conn
                .pragma_query_value(None, pragma, |r| r.get(0))
                .map_err(err(&self.path, pragma))
        };
        let pages = q("page_count")? - q("freelist_count")?;
        Ok(pages.max(0) as u64 * q("page_size")?.max(0) as u64)
    }

    /// A time that takes one batch off the oldest end: the time of the
    /// 1/32 oldest sample or log event (at most a batch), whichever is
    /// earlier, so that the older of the two tables goes first.
    fn size_cutoff(&self) -> Result<Option<i64>, StoreError> {
        let p = &self.path;
        let nth = |table: &str| -> Result<Option<i64>, StoreError> {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT max(id) - min(id) FROM {table}"), [], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(err(p, table))?
                .unwrap_or(-1);
            if n < 0 {
                return Ok(None);
            }
            let k = (n / 32).clamp(0, BATCH_ROWS - 1);
            self.conn
                .query_row(
                    &format!(
                        "SELECT unix_ms FROM {table} WHERE unix_ms IS NOT NULL
                         ORDER BY id LIMIT 1 OFFSET ?1"
                    ),
                    [k],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(err(p, table))
        };
        Ok(match (nth("samples")?, nth("log_events")?) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Deletes, in one transaction, up to a batch of samples and of log
    /// events at or before `t` (oldest first, by id: rows are written in
    /// time order) and what only they referenced. Whether anything went.
    fn delete_before(&mut self, t: i64) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let p = path.as_path();
        // The newest id of the oldest run of rows at or before t, within
        // a batch; and whether the run ended inside the batch.
        let prefix = |table: &str| -> Result<Option<(i64, i64, i64)>, StoreError> {
            let mut st = self
                .conn
                .prepare_cached(&format!(
                    "SELECT id, coalesce(unix_ms, 0) FROM {table} ORDER BY id LIMIT ?1"
                ))
                .map_err(err(p, table))?;
            let rows = st
                .query_map([BATCH_ROWS], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(err(p, table))?;
            // (first id, last id, time of the last) of the run.
            let mut run: Option<(i64, i64, i64)> = None;
            for row in rows {
                let (id, ms) = row.map_err(err(p, table))?;
                if ms > t {
                    break;
                }
                run = Some((run.map_or(id, |r| r.0), id, ms));
            }
            Ok(run)
        };
        // Never the sample the writer continues from: new episodes take
        // their `not_before` from it.
        let last_id = self.last.as_ref().map_or(i64::MAX, |l| l.0);
        let samples = prefix("samples")?.filter(|r| r.0 < last_id);
        let samples_upto = samples.map(|r| r.1.min(last_id - 1));
        let logs = prefix("log_events")?;
        let logs_upto = logs.map(|r| r.1);
        if samples.is_none() && logs.is_none() {
            return Ok(false);
        }
        // How far history now starts: closed episodes, spans and exits
        // before it go too.
        let horizon = match (samples.map(|r| r.2), logs.map(|r| r.2)) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(i64::MIN),
        };
        let horizon = horizon.min(t);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(p, "retention"))?;
        if let Some(upto) = samples_upto {
            tx.execute("DELETE FROM tasks WHERE sample_id <= ?1", [upto])
                .map_err(err(p, "retention: tasks"))?;
            tx.execute("DELETE FROM samples WHERE id <= ?1", [upto])
                .map_err(err(p, "retention: samples"))?;
            // Stacks and sentences no kept sample used, and no episode
            // names.
            tx.execute(
                "DELETE FROM stacks WHERE last_sample <= ?1
                   AND id NOT IN (SELECT stack_id FROM episodes WHERE stack_id IS NOT NULL)",
                [upto],
            )
            .map_err(err(p, "retention: stacks"))?;
            tx.execute(
                "DELETE FROM texts WHERE last_sample <= ?1
                   AND id NOT IN (SELECT wait_id FROM episodes WHERE wait_id IS NOT NULL
                                  UNION ALL
                                  SELECT blocker_id FROM episodes WHERE blocker_id IS NOT NULL)",
                [upto],
            )
            .map_err(err(p, "retention: texts"))?;
        }
        if let Some(upto) = logs_upto {
            tx.execute("DELETE FROM log_events WHERE id <= ?1", [upto])
                .map_err(err(p, "retention: log events"))?;
        }
        if horizon > i64::MIN {
            // syscalls go with their episode (ON DELETE CASCADE).
            tx.execute(
                "DELETE FROM episodes WHERE end_unix_ms IS NOT NULL AND end_unix_ms <= ?1",
                [horizon],
            )
            .map_err(err(p, "retention: episodes"))?;
            tx.execute(
                "DELETE FROM finding_spans WHERE end_unix_ms IS NOT NULL AND end_unix_ms <= ?1",
                [horizon],
            )
            .map_err(err(p, "retention: findings"))?;
            tx.execute(
                "DELETE FROM processes WHERE exit_unix_ms IS NOT NULL AND exit_unix_ms <= ?1
                   AND id NOT IN (SELECT process_id FROM episodes WHERE process_id IS NOT NULL)",
                params![horizon],
            )
            .map_err(err(p, "retention: processes"))?;
        }
        tx.commit().map_err(err(p, "retention"))?;
        // Some interned ids may be gone.
        self.stack_ids.clear();
        self.text_ids.clear();
        Ok(true)
    }
}
