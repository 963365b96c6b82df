//! Opening the file: the checks both sides make before trusting it, the
//! writer's settings and migrations.

use super::schema::{APPLICATION_ID, MIGRATIONS};
use super::{StoreError, SCHEMA_VERSION};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// An error of the database at `path`, as a sentence naming it.
pub(crate) fn err<'a>(path: &'a Path, what: &str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    let what = what.to_string();
    move |e| StoreError::Other(format!("{}: {what}: {e}", path.display()))
}

/// What the file says it is.
pub(crate) struct Header {
    pub version: u32,
    /// No table and no version: a database nobody initialized yet.
    pub fresh: bool,
}

/// Reads the version and identity, refusing a file that is not SQLite, a
/// SQLite file of something else, or one of a newer wedge.
pub(crate) fn header(conn: &Connection, path: &Path) -> Result<Header, StoreError> {
    let not_db = |e: rusqlite::Error| {
        StoreError::Other(format!(
            "{}: not a wedge history database (SQLite cannot read it: {e})",
            path.display()
        ))
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(not_db)?;
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(not_db)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(not_db)?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if app != APPLICATION_ID {
        if app == 0 && version == 0 && tables == 0 {
            return Ok(Header {
                version: 0,
                fresh: true,
            });
        }
        return Err(StoreError::Other(format!(
            "{}: not a wedge history database (a SQLite file with application_id {app:#x} and \
             {tables} schema objects; wedge's is {APPLICATION_ID:#x}): refusing to use it",
            path.display()
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            version,
        });
    }
    Ok(Header {
        version,
        fresh: false,
    })
}

/// The writer's connection: checked, in WAL mode, migrated to
/// [`SCHEMA_VERSION`].
pub(crate) fn open_writer(
    path: &Path,
    wal_pages: u32,
    wal_limit: u64,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(err(path, "cannot open"))?;
    // The writer waits for nothing but a checkpoint behind a reader's
    // snapshot, and then not long: the next sample retries.
    conn.busy_timeout(std::time::Duration::from_millis(200))
        .map_err(err(path, "busy_timeout"))?;
    // Checked before anything is written: even journal_mode=WAL rewrites
    // the header of a newer wedge's file.
    let h = header(&conn, path)?;
    if h.fresh {
        // Only before the first table: the pointer maps that let
        // incremental_vacuum give freed pages back to the file system.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(err(path, "auto_vacuum"))?;
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err(path, "journal_mode=WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Other(format!(
            "{}: cannot switch to WAL (journal_mode is {mode}): readers would block the recorder",
            path.display()
        )));
    }
    // NORMAL in WAL: a commit is durable once the WAL is synced at the
    // next checkpoint; a power cut may lose the last commits, never
    // corrupt. A kill -9 loses nothing that was committed.
    for (k, v) in [("synchronous", "NORMAL"), ("foreign_keys", "ON")] {
        conn.pragma_update(None, k, v).map_err(err(path, k))?;
    }
    conn.pragma_update(None, "wal_autocheckpoint", wal_pages)
        .map_err(err(path, "wal_autocheckpoint"))?;
    conn.pragma_update(None, "journal_size_limit", wal_limit as i64)
        .map_err(err(path, "journal_size_limit"))?;
    migrate(conn, path, h.version)
}

/// Applies every migration above `from`, each in its own transaction with
/// its `user_version`, so a crash between two leaves a database at one of
/// them.
fn migrate(mut conn: Connection, path: &Path, from: u32) -> Result<Connection, StoreError> {
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        let what = format!("migrating to schema version {}", m.version);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(path, &what))?;
        // Inside the transaction: another writer may have migrated since
        // the header was read (one holds the lock, but the lock is taken
        // by the caller only around this).
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err(path, &what))?;
        if now >= i64::from(m.version) {
            continue;
        }
        tx.execute_batch(m.sql).map_err(err(path, &what))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(err(path, &what))?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(err(path, &what))?;
        tx.commit().map_err(err(path, &what))?;
    }
    Ok(conn)
}
