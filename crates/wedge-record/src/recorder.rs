//! The sampling loop of `wedge record`. CONTRACT STUB: the `recorder`
//! piece fills it in.

use crate::store::Retention;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub struct RecordOptions {
    pub db: PathBuf,
    pub interval_ms: u64,
    pub retention: Retention,
    /// Use BPF (the task pass, the system-call rings) where it works.
    pub bpf: bool,
    /// Stop after this many samples (tests, benchmarks); None: until
    /// SIGINT/SIGTERM.
    pub samples: Option<u64>,
}

/// Samples until `stop` is set (the signal handler sets it) or the sample
/// count is reached.
pub fn run(opts: &RecordOptions, stop: &AtomicBool) -> Result<(), String> {
    let _ = (opts, stop);
    todo!("recorder piece")
}
