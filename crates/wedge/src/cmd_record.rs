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

/// `wedge history`: the database at `--db` (else the default path) read
/// back, filtered by pid and `--since`, through wedge-render's view.
pub fn history(
    json: bool,
    a: &HistoryArgs,
    db: Option<&Path>,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    let path = db
        .map(Path::to_path_buf)
        .unwrap_or_else(wedge_record::default_db_path);
    let clock = wedge_render::history::Clock::now();
    let since = a
        .since
        .as_deref()
        .map(|s| wedge_render::history::parse_since(s, clock.now_unix_ms))
        .transpose()?;
    let reader = wedge_record::Reader::open(&path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| no_database(&path))?;
    let h = reader.history(a.pid, since).map_err(|e| e.to_string())?;
    wedge_render::history::history(&h, &clock, json, out)
}

/// What to say when there is no database: where it was looked for, and
/// how to start the recorder that writes it.
pub fn no_database(path: &Path) -> String {
    format!(
        "{}: no history database: nothing has been recorded there. Start the recorder with \
         `wedge record` (add --db {} if that is not its default path), or install \
         deploy/wedge-record.service as a systemd unit and `systemctl enable --now \
         wedge-record`; or point --db (or $WEDGE_DB) at another database",
        path.display(),
        path.display()
    )
}

/// The recorder's episodes of `pids` joined to a live diagnosis, for the
/// verdict and `why`: nothing when there is no database (the views are as
/// without a recorder); a database that cannot be read is a limitation
/// that says why. The read is the store's (SQLite in WAL mode: a reader
/// never waits for the running recorder).
pub fn attach_history(
    snap: &mut wedge_model::Snapshot,
    d: &mut wedge_analysis::Diagnosis,
    db: Option<&Path>,
    pids: &[i32],
) {
    let path = db
        .map(Path::to_path_buf)
        .unwrap_or_else(wedge_record::default_db_path);
    let name = path.display().to_string();
    let episodes = match wedge_record::Reader::open(&path) {
        Ok(None) => return,
        Ok(Some(r)) => {
            let mut all = Vec::new();
            let mut err = None;
            for &pid in pids {
                match r.episodes_of(pid) {
                    Ok(e) => all.extend(e),
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(all),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = &episodes {
        snap.limitations.push(wedge_model::Limitation {
            what: format!("the recorded history ({name})"),
            why: e.clone(),
        });
    }
    d.attach_history(snap, name, episodes);
}
