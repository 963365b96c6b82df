//! The recorder's database. CONTRACT STUB: the `store` piece fills it in;
//! names and signatures may grow, not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wedge_analysis::Diagnosis;
use wedge_model::{Episode, History, RecordedLogEvent, Snapshot, SyscallEvent};

/// The database's schema version (`PRAGMA user_version`); every older
/// version has a migration.
pub const SCHEMA_VERSION: u32 = 1;

/// Where the database lives when `--db` is not given: `$WEDGE_DB`; for
/// root `/var/lib/wedge/history.db` (systemd's `StateDirectory=wedge`);
/// otherwise `$XDG_STATE_HOME/wedge/history.db` (`~/.local/state/...`).
pub fn default_db_path() -> PathBuf {
    todo!("store piece")
}

/// How much history is kept: older samples, and the oldest beyond the
/// size, are deleted as the recorder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_secs: u64,
    pub max_bytes: u64,
}

impl Default for Retention {
    /// A week, and 256 MiB.
    fn default() -> Self {
        Retention {
            max_age_secs: 7 * 24 * 3600,
            max_bytes: 256 << 20,
        }
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// Another recorder holds the database.
    Locked { path: PathBuf, pid: Option<i32> },
    /// A database written by a newer wedge.
    TooNew { path: PathBuf, version: u32 },
    /// Anything else, in a sentence naming the path.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Locked { path, pid } => write!(
                f,
                "{}: another recorder{} is writing this database; one recorder per database",
                path.display(),
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            StoreError::TooNew { path, version } => write!(
                f,
                "{}: schema version {version} is newer than this wedge's {SCHEMA_VERSION}",
                path.display()
            ),
            StoreError::Other(s) => f.write_str(s),
        }
    }
}

/// One sample, as the recorder hands it to the store.
pub struct Sample<'a> {
    /// When the scan started (Unix ms).
    pub unix_ms: i64,
    /// How long the scan and its diagnosis took.
    pub scan_ms: f64,
    /// `bpf` or `proc`.
    pub source: &'a str,
    pub interval_ms: u64,
    pub snap: &'a Snapshot,
    pub diagnosis: &'a Diagnosis,
    /// The last system calls per thread id, when BPF traces them.
    pub syscalls: &'a HashMap<i32, Vec<SyscallEvent>>,
}

/// The one writer of a database (holds its lock while it lives).
pub struct Writer {
    _private: (),
}

impl Writer {
    /// Opens (creating, migrating) `path` and takes the writer's lock.
    pub fn open(path: &Path, retention: Retention) -> Result<Writer, StoreError> {
        let _ = (path, retention);
        todo!("store piece")
    }

    /// Writes one sample in one transaction.
    pub fn sample(&mut self, s: &Sample<'_>) -> Result<(), StoreError> {
        let _ = s;
        todo!("store piece")
    }

    /// Writes kernel-log events; ones already stored (same boot, same
    /// sequence number) are skipped.
    pub fn log_events(&mut self, events: &[RecordedLogEvent]) -> Result<(), StoreError> {
        let _ = events;
        todo!("store piece")
    }

    /// The highest kmsg sequence number stored for this boot.
    pub fn last_log_seq(&self, boot_id: &str) -> Result<Option<u64>, StoreError> {
        let _ = boot_id;
        todo!("store piece")
    }

    /// A clean stop: open episodes and findings end as `RecorderStopped`.
    pub fn close(self, unix_ms: i64) -> Result<(), StoreError> {
        let _ = unix_ms;
        todo!("store piece")
    }
}

/// A read-only view of a database (never blocks a running recorder).
pub struct Reader {
    _private: (),
}

impl Reader {
    /// None when there is no database at `path`.
    pub fn open(path: &Path) -> Result<Option<Reader>, StoreError> {
        let _ = path;
        todo!("store piece")
    }

    /// Everything, or what concerns `pid`, from `since_unix_ms` on.
    pub fn history(
        &self,
        pid: Option<i32>,
        since_unix_ms: Option<i64>,
    ) -> Result<History, StoreError> {
        let _ = (pid, since_unix_ms);
        todo!("store piece")
    }

    /// The ongoing (else the latest) episode of each thread of `pid`.
    pub fn episodes_of(&self, pid: i32) -> Result<Vec<Episode>, StoreError> {
        let _ = pid;
        todo!("store piece")
    }
}
