//! The database's layout, one migration per schema version.
//!
//! Normalized so that an hour at 1 Hz stays small: each distinct kernel
//! stack and each distinct sentence (a wait, a blocker) is stored once and
//! referenced by id from the per-sample `tasks` rows, which hold only
//! integers and a short state and system-call name. The reader's queries
//! go through `episodes` and `finding_spans` (a few rows per stuck task),
//! never through `tasks`, so the big table carries no index beyond its key.
//!
//! Foreign keys are declared only where the child side is indexed by the
//! key (`tasks` by sample, `syscalls` by episode): SQLite checks a parent
//! delete by looking the child up, and a `tasks.stack_id` reference would
//! turn each stack the retention drops into a scan of every task row.

/// `PRAGMA application_id` of a wedge history database (`wedg`): a SQLite
/// file without it is refused rather than written into.
pub const APPLICATION_ID: i32 = 0x7765_6467;

/// One step of the schema: what turns version `version - 1` into
/// `version`, applied in one transaction with the new `user_version`.
pub(crate) struct Migration {
    pub version: u32,
    pub sql: &'static str,
}

/// Every migration, oldest first. The last one's version is
/// [`super::SCHEMA_VERSION`].
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: V1,
    },
    Migration {
        version: 2,
        sql: V2,
    },
];

/// The first cut (before the BPF system-call rings): no `syscalls` table,
/// no `episodes.syscall`. Kept verbatim: databases written by that wedge
/// start from here (tests/fixtures/history-v1.sql is one).
const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE samples (
    id          INTEGER PRIMARY KEY,
    unix_ms     INTEGER NOT NULL,
    scan_ms     REAL NOT NULL,
    source      TEXT NOT NULL,
    interval_ms INTEGER NOT NULL,
    boot_id     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE stacks (
    id          INTEGER PRIMARY KEY,
    hash        INTEGER NOT NULL,
    frames      TEXT NOT NULL,
    last_sample INTEGER NOT NULL
);
CREATE INDEX stacks_hash ON stacks(hash);

CREATE TABLE texts (
    id          INTEGER PRIMARY KEY,
    hash        INTEGER NOT NULL,
    text        TEXT NOT NULL,
    last_sample INTEGER NOT NULL
);
CREATE INDEX texts_hash ON texts(hash);

CREATE TABLE tasks (
    sample_id  INTEGER NOT NULL REFERENCES samples(id),
    tid        INTEGER NOT NULL,
    pid        INTEGER NOT NULL,
    state      TEXT NOT NULL,
    wait_id    INTEGER,
    blocker_id INTEGER,
    syscall    TEXT,
    off_cpu_ms INTEGER,
    stack_id   INTEGER,
    PRIMARY KEY (sample_id, tid)
) WITHOUT ROWID;

CREATE TABLE processes (
    id            INTEGER PRIMARY KEY,
    boot_id       TEXT NOT NULL DEFAULT '',
    pid           INTEGER NOT NULL,
    start_ticks   INTEGER NOT NULL,
    comm          TEXT NOT NULL,
    start_unix_ms INTEGER,
    exit_unix_ms  INTEGER,
    UNIQUE (boot_id, pid, start_ticks)
);
CREATE INDEX processes_pid ON processes(pid);

CREATE TABLE episodes (
    id                 INTEGER PRIMARY KEY,
    process_id         INTEGER,
    boot_id            TEXT NOT NULL DEFAULT '',
    pid                INTEGER NOT NULL,
    tid                INTEGER NOT NULL,
    tid_start_ticks    INTEGER NOT NULL,
    comm               TEXT NOT NULL,
    process_comm       TEXT NOT NULL,
    state              TEXT NOT NULL,
    wait_id            INTEGER,
    blocker_id         INTEGER,
    stack_id           INTEGER,
    findings           TEXT NOT NULL DEFAULT '[]',
    start_unix_ms      INTEGER NOT NULL,
    not_before_unix_ms INTEGER,
    last_seen_unix_ms  INTEGER NOT NULL,
    end_unix_ms        INTEGER,
    ending             TEXT,
    unobserved_ms      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX episodes_pid ON episodes(pid, start_unix_ms);
CREATE INDEX episodes_tid ON episodes(tid, start_unix_ms);
CREATE INDEX episodes_open ON episodes(tid) WHERE end_unix_ms IS NULL;

CREATE TABLE finding_spans (
    id                 INTEGER PRIMARY KEY,
    finding            TEXT NOT NULL,
    pids               TEXT NOT NULL,
    severity           TEXT NOT NULL,
    title              TEXT NOT NULL,
    first_seen_unix_ms INTEGER NOT NULL,
    last_seen_unix_ms  INTEGER NOT NULL,
    end_unix_ms        INTEGER,
    ending             TEXT
);
CREATE INDEX finding_spans_open ON finding_spans(finding) WHERE end_unix_ms IS NULL;

CREATE TABLE log_events (
    id        INTEGER PRIMARY KEY,
    boot_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    unix_ms   INTEGER,
    kind      TEXT NOT NULL,
    pid       INTEGER,
    owner_pid INTEGER,
    event     TEXT NOT NULL,
    UNIQUE (boot_id, seq)
);
CREATE INDEX log_events_time ON log_events(unix_ms);
CREATE INDEX log_events_pid ON log_events(pid) WHERE pid IS NOT NULL;
CREATE INDEX log_events_owner ON log_events(owner_pid) WHERE owner_pid IS NOT NULL;
";

/// The BPF system-call rings: each episode keeps the calls that led into
/// it (read at its first sample), and carries the name of the call it was
/// stuck in. Episodes recorded before get theirs from their first sample's
/// task row, which v1 already kept.
const V2: &str = "
ALTER TABLE episodes ADD COLUMN syscall TEXT;

CREATE TABLE syscalls (
    episode_id INTEGER PRIMARY KEY REFERENCES episodes(id) ON DELETE CASCADE,
    sample_id  INTEGER NOT NULL,
    calls      TEXT NOT NULL
);

-- A passing index: each episode finds its first sample by time.
CREATE INDEX migrate_samples_time ON samples(unix_ms);
UPDATE episodes SET syscall = (
    SELECT t.syscall FROM tasks t JOIN samples s ON s.id = t.sample_id
    WHERE t.tid = episodes.tid AND s.unix_ms = episodes.start_unix_ms
    LIMIT 1
);
DROP INDEX migrate_samples_time;
";
