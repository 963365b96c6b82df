//! Recorded history: `wedge record` samples the machine at an interval and
//! keeps what matters in one SQLite database; `wedge history`, `why` and
//! the verdict read it back as [`wedge_model::History`] and
//! [`wedge_model::Episode`]s.
//!
//! Two halves, one per module:
//! - [`store`]: the database — its schema and migrations, the single
//!   writer's lock, one transaction per sample (so a recorder killed in the
//!   middle of a write leaves every committed sample), retention by age and
//!   size, and the queries the views use.
//! - [`recorder`]: the loop — the live snapshot from the fastest source
//!   (BPF kept loaded between samples, bounded /proc otherwise), its
//!   diagnosis, /dev/kmsg followed by sequence number, the system-call
//!   rings, written through the store.

pub mod recorder;
pub mod store;

pub use store::{default_db_path, Reader, Retention, Sample, StoreError, Writer};
