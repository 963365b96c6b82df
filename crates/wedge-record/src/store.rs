//! The recorder's database: one SQLite file in WAL mode, written by one
//! [`Writer`] (the recorder, holding `PATH.lock`) and read by any number of
//! [`Reader`]s (`wedge history`, `why`, the verdict) that never block it.
//!
//! - [`schema`]: the tables and the ordered migrations.
//! - `lock`: the writer's flock.
//! - `write`: one transaction per sample — tasks, episodes, finding spans
//!   and processes together, so a kill -9 leaves every committed sample.
//! - `retention`: age and size limits, in bounded batches.
//! - `read`: the views' queries, into [`wedge_model::History`].

mod conn;
mod lock;
mod read;
mod retention;
pub mod schema;
mod write;

pub use read::Reader;
pub use write::Writer;

use std::collections::HashMap;
use std::path::PathBuf;
use wedge_analysis::Diagnosis;
use wedge_model::{Snapshot, SyscallEvent};

/// The database's schema version (`PRAGMA user_version`); every older
/// version has a migration ([`schema`]). 1: the first cut; 2: the system
/// calls that led into each episode (`syscalls`, `episodes.syscall`).
pub const SCHEMA_VERSION: u32 = 2;

/// Where the database lives when `--db` is not given: `$WEDGE_DB`; for
/// root `/var/lib/wedge/history.db` (systemd's `StateDirectory=wedge`);
/// otherwise `$XDG_STATE_HOME/wedge/history.db` (`~/.local/state/...`).
pub fn default_db_path() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("WEDGE_DB") {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/wedge/history.db");
    }
    // The XDG base-directory spec ignores a relative $XDG_STATE_HOME.
    let state = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    match state {
        Some(dir) => dir.join("wedge/history.db"),
        // No home at all (a stripped-down service environment): the
        // working directory, said plainly by the path itself.
        None => PathBuf::from("wedge-history.db"),
    }
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

impl std::error::Error for StoreError {}
