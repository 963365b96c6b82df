//! `wedge record` and `wedge history`: arguments and dispatch.

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
    /// Keep this much history: seconds, or with a unit (`30m`, `12h`,
    /// `7d`) [default: 7d].
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// Keep the database under this size: bytes, or with a unit (`64M`,
    /// `1G`) [default: 256M]; the oldest samples go first.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Do not keep each thread's last system calls in the kernel (the
    /// BPF rings on raw_syscalls that show what a stuck task did just
    /// before).
    #[arg(long)]
    pub no_syscalls: bool,
    /// Also serve the metrics of `wedge metrics` over HTTP (GET /metrics)
    /// from the recorder's own samples, e.g. 127.0.0.1:9964: no second
    /// scan. Threads by state come from the last full sample (every 60
    /// samples, and whenever a task gets stuck); everything else from the
    /// last sample.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// With --listen: a series per wedged process (pid, comm, workload),
    /// the oldest first, at most 20.
    #[arg(long, value_name = "N", default_value = "0")]
    pub top: u8,
    #[command(flatten)]
    pub scan: crate::args::ScanArgs,
}

/// `7d`, `12h`, `30m`, `45s`, `3600` → seconds.
fn parse_age(s: &str) -> Result<u64, String> {
    let bad = || format!("--max-age {s:?}: expected seconds or a number with s, m, h or d");
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|&v| v > 0).ok_or_else(bad)
}

/// `256M`, `1G`, `64k`, `1048576` → bytes (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("--max-size {s:?}: expected bytes or a number with K, M or G");
    let t = s
        .trim()
        .trim_end_matches(['B', 'b'])
        .trim_end_matches(['i']);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (
            &t[..i],
            match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => return Err(bad()),
            },
        ),
        _ => (t, 0),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&v| v > 0).ok_or_else(bad)
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

/// `wedge record`: samples until SIGINT/SIGTERM (exit 0) or `--samples`;
/// a database another recorder holds is an error (exit 2) naming it.
pub fn record(
    a: &RecordArgs,
    opts: &wedge_procfs::ScanOptions,
    bpf: bool,
    db: Option<&Path>,
) -> Result<Status, String> {
    if !(a.interval.is_finite() && a.interval >= 0.01 && a.interval <= 86_400.0) {
        return Err(format!(
            "--interval {}: expected seconds between 0.01 and 86400",
            a.interval
        ));
    }
    let mut retention = wedge_record::Retention::default();
    if let Some(s) = &a.max_age {
        retention.max_age_secs = parse_age(s)?;
    }
    if let Some(s) = &a.max_size {
        retention.max_bytes = parse_size(s)?;
    }
    let db = db
        .map(Path::to_path_buf)
        .unwrap_or_else(wedge_record::default_db_path);
    let stop = wedge_record::recorder::stop_on_signals()?;
    let observer = match &a.listen {
        None => None,
        Some(addr) => {
            if usize::from(a.top) > wedge_render::metrics::MAX_TOP {
                return Err(format!(
                    "--top {}: at most {} series per wedged process",
                    a.top,
                    wedge_render::metrics::MAX_TOP
                ));
            }
            let latest: crate::cmd_metrics::Latest =
                std::sync::Arc::new(std::sync::Mutex::new(Err("no sample yet".into())));
            crate::cmd_metrics::serve_latest(addr, std::sync::Arc::clone(&latest), stop)?;
            eprintln!("wedge record: serving http://{addr}/metrics");
            let top = usize::from(a.top);
            let mut full_counts: Option<std::collections::BTreeMap<char, i64>> = None;
            let o: wedge_record::recorder::Observer = Box::new(move |s| {
                let now = wedge_render::metrics::task_states(s.snap);
                // A light sample holds every task that matters (D, T, t,
                // Z) but not the rest: those are the last full sample's.
                let counts = match (&full_counts, s.full) {
                    (Some(f), false) => {
                        let mut c = f.clone();
                        for st in ['D', 'T', 't', 'Z'] {
                            c.insert(st, now.get(&st).copied().unwrap_or(0));
                        }
                        c
                    }
                    _ => {
                        full_counts = Some(now.clone());
                        now
                    }
                };
                let text = wedge_render::metrics::metrics(
                    s.snap,
                    s.diagnosis,
                    s.events,
                    &wedge_render::metrics::MetricsOptions {
                        top,
                        abandoned_readers: None,
                        task_states: Some(counts),
                    },
                );
                if let Ok(mut l) = latest.lock() {
                    *l = Ok(text);
                }
            });
            Some(o)
        }
    };
    wedge_record::recorder::run(
        wedge_record::recorder::RecordOptions {
            db,
            interval_ms: (a.interval * 1e3).round() as u64,
            retention,
            bpf,
            samples: a.samples,
            scan: opts.clone(),
            syscalls_per_thread: if a.no_syscalls {
                0
            } else {
                wedge_bpf::syscalls::SLOTS
            },
            observer,
        },
        stop,
    )?;
    Ok(Status::Clear)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_flags() {
        assert_eq!(parse_age("7d"), Ok(7 * 86_400));
        assert_eq!(parse_age("90"), Ok(90));
        assert_eq!(parse_age("30m"), Ok(1800));
        assert!(parse_age("0").is_err());
        assert!(parse_age("1w").is_err());
        assert!(parse_age("").is_err());
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("-1").is_err());
    }
}
