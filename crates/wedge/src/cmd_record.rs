//! `wedge record` and `wedge history`: arguments and dispatch. CONTRACT
//! STUB: the `recorder` piece fills it in.

use clap::Args;
use std::path::Path;
use wedge_render::view::Status;

#[derive(Args, Debug)]
pub struct RecordArgs {
    /// Seconds between samples (fractions allowed).
    #[arg(long, default_value = "1")]
    pub interval: f64,
    /// Stop after this many samples (default: run until SIGINT/SIGTERM).
    #[arg(long, hide = true)]
    pub samples: Option<u64>,
    #[command(flatten)]
    pub scan: crate::args::ScanArgs,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this process (or thread).
    pub pid: Option<i32>,
    /// From this time on: RFC 3339 (`2026-12-02T03:12:07Z`), Unix seconds,
    /// or an age (`2h`, `30m`).
    #[arg(long)]
    pub since: Option<String>,
}

pub fn record(
    a: &RecordArgs,
    opts: &wedge_procfs::ScanOptions,
    bpf: bool,
    db: Option<&Path>,
) -> Result<Status, String> {
    let _ = (a, opts, bpf, db);
    Err("wedge record is not built yet".into())
}

pub fn history(
    json: bool,
    a: &HistoryArgs,
    db: Option<&Path>,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    let _ = (json, a, db, out);
    Err("wedge history is not built yet".into())
}
