//! `wedge metrics`, `wedge serve` and `wedge check`: the live scan, its
//! diagnosis and the kernel log handed to wedge-render's metrics and
//! node-problem-detector views; here only files, sockets and signals.

use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wedge_render::metrics::{self, MetricsOptions, MAX_TOP};
use wedge_render::view::{write_out, Status};

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Write the metrics to this file for node_exporter's textfile
    /// collector (name it *.prom), atomically: a temporary file in the
    /// same directory, renamed over it, mode 0644.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    #[command(flatten)]
    pub top: TopArgs,
    #[command(flatten)]
    pub scan: crate::args::ScanArgs,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to serve GET /metrics on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9964")]
    pub listen: String,
    #[command(flatten)]
    pub top: TopArgs,
    #[command(flatten)]
    pub scan: crate::args::ScanArgs,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Also export the N most wedged processes, one series each with pid,
    /// comm and container/pod/unit labels (at most 20: each is a series).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=MAX_TOP as i64))]
    pub top: u8,
}

#[derive(Args, Debug)]
#[command(
    after_help = "node-problem-detector's custom-plugin protocol: one line of at most 80 characters, exit 0 nothing wedged, 1 something wedged, 2 unknown (the scan failed)."
)]
pub struct CheckArgs {
    #[command(flatten)]
    pub scan: crate::args::ScanArgs,
}

/// One scan and what the metrics are made of, as the verdict makes them.
fn scrape(opts: &wedge_procfs::ScanOptions, bpf: bool, top: u8) -> Result<String, String> {
    let mut snap = crate::live_snapshot(opts, bpf)?;
    let events = wedge_klog::live_log_events(&mut snap.limitations);
    let d = wedge_analysis::diagnose(&snap, &events);
    let o = MetricsOptions {
        top: usize::from(top),
        abandoned_readers: Some(wedge_child::outlived(Duration::ZERO).len()),
        task_states: None,
    };
    Ok(metrics::metrics(&snap, &d, &events, &o))
}

pub fn run_metrics(
    a: &MetricsArgs,
    opts: &wedge_procfs::ScanOptions,
    bpf: bool,
    out: &mut dyn Write,
) -> Result<Status, String> {
    // The Prometheus text format: what node_exporter's textfile collector
    // and promtool read (OpenMetrics is served to scrapers that ask).
    let text = metrics::text_format(&scrape(opts, bpf, a.top.top)?);
    match &a.textfile {
        Some(path) => write_atomically(path, &text)?,
        None => write_out(out, &text)?,
    }
    Ok(Status::Clear)
}

/// Writes `text` to `path` so that a reader sees the old file or the new
/// one whole, never a part: a temporary file in the same directory (so
/// rename(2) stays within one filesystem, where it replaces atomically),
/// fsynced, then renamed over `path`. The temporary name does not end in
/// `.prom`, so the textfile collector never reads it.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        // The umask may have taken bits off the mode open() was given.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

pub fn run_check(
    opts: &wedge_procfs::ScanOptions,
    bpf: bool,
    out: &mut dyn Write,
) -> Result<Status, String> {
    let mut snap = crate::live_snapshot(opts, bpf)?;
    let events = wedge_klog::live_log_events(&mut snap.limitations);
    let d = wedge_analysis::diagnose(&snap, &events);
    wedge_render::check::check(&snap, &d, out)
}

/// Whether the scraper takes OpenMetrics (Prometheus asks for it first in
/// its Accept header); others get the Prometheus text format.
fn wants_openmetrics(r: &tiny_http::Request) -> bool {
    r.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    })
}

fn respond(r: tiny_http::Request, body: &Result<String, String>) {
    let om = wants_openmetrics(&r);
    let (code, text, ctype) = match body {
        Ok(t) if om => (200, t.clone(), metrics::CONTENT_TYPE),
        Ok(t) => (200, metrics::text_format(t), metrics::TEXT_CONTENT_TYPE),
        Err(e) => (
            500,
            format!("wedge: the scan failed: {e}\n"),
            "text/plain; charset=utf-8",
        ),
    };
    let mut resp = tiny_http::Response::from_string(text).with_status_code(code);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", ctype) {
        resp.add_header(h);
    }
    // A scraper that went away is not an error of the server.
    let _ = r.respond(resp);
}

/// The metrics of the recorder's last sample, for its `--listen`.
pub type Latest = Arc<Mutex<Result<String, String>>>;

/// `wedge record --listen`: serves GET /metrics from `latest` (the last
/// sample's metrics, made by the recorder's own loop) on a thread, with no
/// scan of its own; ends when `stop` is set.
pub fn serve_latest(
    listen: &str,
    latest: Latest,
    stop: &'static AtomicBool,
) -> Result<std::thread::JoinHandle<()>, String> {
    let server =
        tiny_http::Server::http(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    std::thread::Builder::new()
        .name("wedge-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let r = match server.recv_timeout(Duration::from_millis(200)) {
                    Ok(Some(r)) => r,
                    _ => continue,
                };
                let path = r.url().split('?').next().unwrap_or("");
                if path != "/metrics" || *r.method() != tiny_http::Method::Get {
                    let resp = tiny_http::Response::from_string("not found: GET /metrics\n")
                        .with_status_code(404);
                    let _ = r.respond(resp);
                    continue;
                }
                let body = latest
                    .lock()
                    .map(|b| b.clone())
                    .unwrap_or_else(|_| Err("the recorder's metrics broke".into()));
                respond(r, &body);
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))
}

/// Scrapes that arrive while a scan runs wait for that scan: at most one
/// scan at a time, however many scrapers (Prometheus replicas, a human
/// with curl) ask at once.
type Waiting = Arc<Mutex<Option<Vec<tiny_http::Request>>>>;

pub fn run_serve(
    a: &ServeArgs,
    opts: &wedge_procfs::ScanOptions,
    bpf: bool,
) -> Result<Status, String> {
    // SIGTERM (systemd, the kubelet) and SIGINT end the accept loop, which
    // polls the flag between requests: the recorder's one handler.
    let stop = wedge_record::recorder::stop_on_signals()?;
    let server = tiny_http::Server::http(&a.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    eprintln!("wedge: serving http://{}/metrics", a.listen);
    let waiting: Waiting = Arc::new(Mutex::new(None));
    while !stop.load(Ordering::SeqCst) {
        let r = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            // EINTR from the stop signal, or a connection that failed.
            Err(_) => continue,
        };
        let path = r.url().split('?').next().unwrap_or("");
        if path != "/metrics" || *r.method() != tiny_http::Method::Get {
            let resp =
                tiny_http::Response::from_string("not found: GET /metrics\n").with_status_code(404);
            let _ = r.respond(resp);
            continue;
        }
        let mut w = waiting.lock().map_err(|_| "the scrape queue broke")?;
        if let Some(q) = w.as_mut() {
            q.push(r);
            continue;
        }
        *w = Some(vec![r]);
        drop(w);
        let (waiting, opts, top) = (Arc::clone(&waiting), opts.clone(), a.top.top);
        std::thread::spawn(move || {
            // A scan that panicked must still answer its scrapers and
            // free the queue, or every later scrape would wait forever.
            let body = std::panic::catch_unwind(|| scrape(&opts, bpf, top))
                .unwrap_or_else(|_| Err("the scan panicked".into()));
            let q = waiting.lock().ok().and_then(|mut w| w.take());
            for r in q.into_iter().flatten() {
                respond(r, &body);
            }
        });
    }
    eprintln!("wedge: stopped");
    Ok(Status::Clear)
}
