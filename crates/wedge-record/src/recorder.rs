//! The sampling loop of `wedge record`.
//!
//! One thread samples: at every tick of a monotonic clock it scans /proc
//! (bounded: every read has a deadline), joins the BPF task pass of the
//! live kernel loaded once at start ([`wedge_bpf::snapshot::KeptPass`]),
//! diagnoses the snapshot with the kernel-log events of this boot, reads
//! the system-call rings of the stuck threads and hands the store one
//! [`Sample`]. A second thread follows /dev/kmsg and passes its events over
//! a channel; the sampler writes them, so the database has one writer.
//!
//! The loop never blocks on the database for long: the store keeps it in
//! WAL mode (a reader never blocks the writer), the writer's lock makes it
//! the only writer, and its busy timeout bounds the one wait left (a
//! checkpoint racing a reader's snapshot).

use crate::store::{Retention, Sample, Writer};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wedge_bpf::snapshot::KeptPass;
use wedge_bpf::syscalls::SyscallTrace;
use wedge_model::{LogEvent, RecordedLogEvent, Snapshot, SyscallEvent};

pub struct RecordOptions {
    pub db: PathBuf,
    pub interval_ms: u64,
    pub retention: Retention,
    /// Use BPF (the task pass, the system-call rings) where it works.
    pub bpf: bool,
    /// Stop after this many samples (tests, benchmarks); None: until
    /// SIGINT/SIGTERM.
    pub samples: Option<u64>,
    /// How /proc is scanned (deadlines, workers, what is read).
    pub scan: wedge_procfs::ScanOptions,
    /// How many system calls of each thread are read; 0: the rings are not
    /// attached at all.
    pub syscalls_per_thread: usize,
    /// Called with every sample's snapshot and diagnosis (`wedge record
    /// --listen` serves its metrics from them, with no scan of its own).
    pub observer: Option<Observer>,
}

/// One sample as an observer sees it.
pub struct Observed<'a> {
    pub snap: &'a Snapshot,
    pub diagnosis: &'a wedge_analysis::Diagnosis,
    /// This boot's kernel-log events so far.
    pub events: &'a [LogEvent],
    /// A full sample (every process read); a light one read only the
    /// processes that matter and those around them (see `Light`), so
    /// counts over every task are the last full sample's.
    pub full: bool,
}

pub type Observer = Box<dyn FnMut(&Observed<'_>) + Send>;

/// The kernel-log events kept in memory for the diagnosis: a boot's log
/// rarely has more than a few hundred; a flood is cut to the latest.
const MAX_LOG_EVENTS: usize = 20_000;

/// Kernel-log events per transaction.
const LOG_BATCH: usize = 64;

/// How long the kmsg follower polls before looking at its stop flag.
const KMSG_POLL_MS: i32 = 200;

/// What the follower thread sends.
enum FromLog {
    /// An event, and whether it is not stored yet.
    Event(Box<wedge_klog::Event>, bool),
    Lost {
        count: u64,
        before_seq: u64,
    },
    Failed(String),
}

/// A recorder ready to sample: the database open and locked, the live
/// kernel loaded, the kernel log followed.
pub struct Recorder {
    writer: Writer,
    opts: RecordOptionsOwned,
    pass: KeptPass,
    trace: Result<SyscallTrace, String>,
    boot_id: String,
    log_rx: mpsc::Receiver<FromLog>,
    log_stop: Arc<AtomicBool>,
    log_thread: Option<std::thread::JoinHandle<()>>,
    /// This boot's events, for the diagnosis.
    events: VecDeque<LogEvent>,
    /// Why the kernel log is not followed, once known.
    log_down: Option<String>,
    resumed_after: Option<u64>,
    /// The light samples' state (see [`Recorder::scan`]).
    light: Light,
}

/// A sample reads /proc for every process only when something changed:
/// at 10,000 threads a full scan is some 30,000 reads (stat, status,
/// syscall of each thread), a third of a CPU at 1 Hz, while the BPF task
/// pass sees every task in one pass. So a light sample reads only the
/// processes of the tasks that matter by the pass alone, their parents and
/// lock owners, the processes the last full sample's findings named (a
/// FUSE daemon found through its fds) and every process that was stuck or
/// named by a finding and lives (the store notes their exit, from a sample
/// that does not list them; a task that got unstuck is read as one).
///
/// A full sample is made when a task got stuck that was not at the last
/// full one (at once for a wait of a subsystem that hangs, FUSE or NFS;
/// for D, a stop or a zombie, of which every I/O, ptrace stop and exit
/// makes one for a moment, once it lasts to a second sample), and every
/// [`FULL_EVERY`] samples (what the pass cannot see: a fatal signal
/// pending in S, a new FUSE daemon).
#[derive(Default)]
struct Light {
    /// The pass's tasks that matter at the last full sample, and at the
    /// last sample.
    at_full: Option<std::collections::BTreeSet<(i32, char)>>,
    prev: std::collections::BTreeSet<(i32, char)>,
    since_full: u32,
    related: std::collections::HashSet<i32>,
    ever_stuck: std::collections::HashSet<i32>,
    /// Counts, for the benchmark's log.
    full: u64,
    light: u64,
}

/// Samples between two full ones at most.
const FULL_EVERY: u32 = 60;

struct RecordOptionsOwned {
    db: PathBuf,
    interval_ms: u64,
    samples: Option<u64>,
    observer: Option<Observer>,
    scan: wedge_procfs::ScanOptions,
}

/// Unix ms now.
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix ms of the moment CLOCK_MONOTONIC was zero: /dev/kmsg stamps
/// records with local_clock(), which like CLOCK_MONOTONIC stops during
/// suspend, so a stamp plus this is its wall time (to the ms, as long as
/// the wall clock is not stepped).
fn monotonic_epoch_ms() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return None;
    }
    let mono_ms = ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6;
    Some(unix_ms() as f64 - mono_ms)
}

/// This boot's id (a random UUID the kernel makes at boot): kmsg sequence
/// numbers restart at every boot, so they are unique only with it.
fn boot_id() -> Result<String, String> {
    let path = "/proc/sys/kernel/random/boot_id";
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{path}: {e}"))
}

/// The threads whose last system calls are read: the ones the store
/// records as stuck (`wedge ps`'s notion, [`wedge_analysis::matters`]).
fn stuck_tids(snap: &Snapshot) -> Vec<i32> {
    snap.processes
        .iter()
        .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
        .filter(|(p, t)| wedge_analysis::matters(p, t).is_some())
        .map(|(_, t)| t.tid)
        .collect()
}

impl Recorder {
    /// Opens the database (a second recorder fails here, before anything
    /// is loaded), the live kernel and the kernel-log follower.
    pub fn open(opts: RecordOptions) -> Result<Recorder, String> {
        let writer = Writer::open(&opts.db, opts.retention).map_err(|e| e.to_string())?;
        let boot_id = boot_id()?;
        let resumed_after = writer.last_log_seq(&boot_id).map_err(|e| e.to_string())?;
        let pass = KeptPass::open(opts.bpf);
        let trace = if !opts.bpf {
            Err("not used (--no-bpf)".to_string())
        } else if opts.syscalls_per_thread == 0 {
            Err("not used (--no-syscalls)".to_string())
        } else if !pass.uses_bpf() {
            Err(pass
                .degraded()
                .unwrap_or_else(|| "BPF is not available".into()))
        } else {
            SyscallTrace::open(opts.syscalls_per_thread)
        };
        let (tx, log_rx) = mpsc::channel();
        let log_stop = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&log_stop);
        let log_thread = std::thread::Builder::new()
            .name("wedge-kmsg".into())
            .spawn(move || follow(resumed_after, &stop, &tx))
            .map_err(|e| format!("cannot start the kernel-log thread: {e}"))?;
        Ok(Recorder {
            writer,
            opts: RecordOptionsOwned {
                db: opts.db,
                interval_ms: opts.interval_ms.max(1),
                samples: opts.samples,
                scan: opts.scan,
                observer: opts.observer,
            },
            pass,
            trace,
            boot_id,
            log_rx,
            log_stop,
            log_thread: Some(log_thread),
            events: VecDeque::new(),
            log_down: None,
            resumed_after,
            light: Light::default(),
        })
    }

    /// `bpf` or `proc`: where the samples' task states come from.
    pub fn source(&self) -> &'static str {
        if self.pass.uses_bpf() {
            "bpf"
        } else {
            "proc"
        }
    }

    /// The line `wedge record` prints at start: the database, the
    /// interval, the source and what is degraded and why.
    pub fn start_line(&self) -> String {
        let mut s = format!(
            "wedge record: {} every {} s from {}",
            self.opts.db.display(),
            self.opts.interval_ms as f64 / 1e3,
            self.source()
        );
        let mut degraded = Vec::new();
        if let Some(d) = self.pass.degraded() {
            degraded.push(format!("the live kernel through BPF: {d}"));
        }
        if let Err(e) = &self.trace {
            degraded.push(format!("no system-call rings: {e}"));
        }
        if let Some(a) = self.resumed_after {
            s.push_str(&format!("; kernel log resumed after record {a}"));
        }
        if degraded.is_empty() {
            s.push_str("; nothing degraded");
        } else {
            s.push_str("; degraded: ");
            s.push_str(&degraded.join("; "));
        }
        s
    }

    /// Takes the follower's events: this boot's for the diagnosis, the
    /// ones not stored before written.
    fn drain_log(&mut self) {
        let epoch = monotonic_epoch_ms();
        let mut fresh = Vec::new();
        while let Ok(m) = self.log_rx.try_recv() {
            match m {
                FromLog::Event(e, is_new) => {
                    let le = e.to_log_event();
                    if is_new {
                        if let Some(seq) = e.seq {
                            fresh.push(RecordedLogEvent {
                                boot_id: self.boot_id.clone(),
                                seq,
                                unix_ms: le
                                    .monotonic
                                    .zip(epoch)
                                    .map(|(m, ep)| (ep + m * 1e3).round() as i64),
                                event: le.clone(),
                            });
                        }
                    }
                    self.events.push_back(le);
                }
                FromLog::Lost { count, before_seq } => eprintln!(
                    "wedge record: /dev/kmsg: {count} record(s) before record {before_seq} were overwritten in the kernel's ring before they could be read: not recorded"
                ),
                FromLog::Failed(e) => {
                    eprintln!("wedge record: the kernel log is not recorded: {e}");
                    self.log_down = Some(e);
                }
            }
        }
        while self.events.len() > MAX_LOG_EVENTS {
            self.events.pop_front();
        }
        // In small transactions: the store enforces its size limit after
        // each, and one transaction of a whole flood would grow the WAL by
        // all of it first.
        for chunk in fresh.chunks(LOG_BATCH) {
            if let Err(e) = self.writer.log_events(chunk) {
                eprintln!(
                    "wedge record: {} kernel-log event(s) not written: {e}",
                    chunk.len()
                );
            }
        }
    }

    /// The snapshot: /proc (all of it, or a light sample's processes) and
    /// the BPF pass joined.
    fn scan(&mut self) -> Result<Snapshot, String> {
        let mut scan = self.opts.scan.clone();
        // One bounded reader serves every sample (not a fork a sample).
        scan.keep_helper = true;
        if self.pass.replaces_stacks() {
            scan.stacks = false;
            scan.wchan = false;
        }
        let l = &mut self.light;
        let view = self.pass.refresh_view();
        let light = match &view {
            Some(v) => {
                let light = l.at_full.as_ref().is_some_and(|at_full| {
                    l.since_full < FULL_EVERY
                        && !v.matter.iter().any(|m| {
                            // New since the last full sample, and not a
                            // blip: a wait of a subsystem that hangs (FUSE,
                            // NFS) at once; D, a stop or a zombie (which
                            // every exit, I/O and ptrace stop makes for a
                            // moment) once it lasts a second sample.
                            !at_full.contains(m) && (m.1 == 'S' || l.prev.contains(m))
                        })
                });
                l.prev = v.matter.clone();
                if !light {
                    l.at_full = Some(v.matter.clone());
                }
                light
            }
            None => false,
        };
        if let (true, Some(v)) = (light, view) {
            l.since_full += 1;
            l.light += 1;
            let mut only = v.pids;
            only.extend(l.related.iter().copied());
            only.extend(l.ever_stuck.iter().filter(|p| v.alive.contains(p)));
            scan.only_pids = Some(only);
            let mut snap = wedge_procfs::scan(&scan)?;
            self.pass.apply_current(&mut snap);
            return Ok(snap);
        }
        l.since_full = 0;
        l.full += 1;
        l.related.clear();
        let mut snap = wedge_procfs::scan(&scan)?;
        // The pass again, after the scan: where the two disagree the
        // later read wins.
        self.pass.apply(&mut snap);
        Ok(snap)
    }

    /// What the next light samples must read: the processes this sample's
    /// findings name and the ones stuck now.
    fn learn(&mut self, snap: &Snapshot, d: &wedge_analysis::Diagnosis) {
        let l = &mut self.light;
        for f in &d.findings {
            l.related.extend(f.pids.iter().copied());
            l.related.extend(f.blocked_on.iter().filter_map(|b| b.pid));
            // The store keeps the life of every process a finding named:
            // a light sample that left one out would end it as exited.
            l.ever_stuck.extend(f.pids.iter().copied());
        }
        for p in &snap.processes {
            if p.threads
                .iter()
                .any(|t| wedge_analysis::matters(p, t).is_some())
            {
                l.ever_stuck.insert(p.pid);
            }
        }
        // Pids the machine no longer has are forgotten (the store saw
        // them go): the set stays as small as what is stuck.
        if l.since_full == 0 {
            let seen: std::collections::HashSet<i32> =
                snap.processes.iter().map(|p| p.pid).collect();
            l.ever_stuck.retain(|p| seen.contains(p));
        }
    }

    /// One sample: scan, pass, diagnosis, rings, written.
    fn sample(&mut self) -> Result<(), String> {
        let started = unix_ms();
        let t0 = Instant::now();
        self.drain_log();
        let mut snap = self.scan()?;
        if let Some(why) = &self.log_down {
            snap.limitations
                .push(wedge_klog::kernel_log_limitation(why.clone()));
        }
        let events = self.events.make_contiguous();
        let d = wedge_analysis::diagnose(&snap, events);
        if let Some(o) = &mut self.opts.observer {
            o(&Observed {
                snap: &snap,
                diagnosis: &d,
                events,
                full: self.light.since_full == 0,
            });
        }
        self.learn(&snap, &d);
        let syscalls: HashMap<i32, Vec<SyscallEvent>> = match &self.trace {
            Ok(t) => t.read(&stuck_tids(&snap)),
            Err(_) => HashMap::new(),
        };
        let scan_ms = t0.elapsed().as_secs_f64() * 1e3;
        let s = Sample {
            unix_ms: started,
            scan_ms,
            source: self.source(),
            interval_ms: self.opts.interval_ms,
            snap: &snap,
            diagnosis: &d,
            syscalls: &syscalls,
        };
        let r = self.writer.sample(&s).map_err(|e| e.to_string());
        // A snapshot of 10,000 threads is freed in one go at the end of
        // the sample; nothing of it is kept.
        drop(d);
        drop(snap);
        r
    }

    /// Samples every interval until `stop` is set or the sample count is
    /// reached, then closes the database (open episodes end as
    /// `RecorderStopped`).
    ///
    /// Ticks are `start + k × interval` on the monotonic clock, so there
    /// is no drift; a sample that overruns its interval delays the next to
    /// the following tick (missed ticks are skipped, never queued).
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), String> {
        let interval = Duration::from_millis(self.opts.interval_ms);
        let start = Instant::now();
        let mut tick: u32 = 0;
        let mut done: u64 = 0;
        let mut failed_in_a_row = 0u32;
        while !stop.load(Ordering::Relaxed) {
            match self.sample() {
                Ok(()) => failed_in_a_row = 0,
                Err(e) => {
                    failed_in_a_row += 1;
                    // Said for the first failures and then every 60th, so
                    // a full disk does not flood the journal.
                    if failed_in_a_row <= 3 || failed_in_a_row.is_multiple_of(60) {
                        eprintln!("wedge record: sample not recorded: {e}");
                    }
                }
            }
            done += 1;
            if self.opts.samples.is_some_and(|n| done >= n) {
                break;
            }
            let elapsed = start.elapsed();
            let due =
                u32::try_from(elapsed.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u32::MAX);
            tick = (tick + 1).max(due.saturating_add(1));
            let next = start + interval.saturating_mul(tick);
            // Slept in slices, so a signal's stop flag is seen within
            // 100 ms (the handler cannot wake a sleeping thread portably).
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::sleep((next - now).min(Duration::from_millis(100)));
            }
        }
        self.finish()
    }

    /// Stops the follower, writes what it read, closes the database.
    fn finish(mut self) -> Result<(), String> {
        self.log_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.log_thread.take() {
            // The follower never blocks (O_NONBLOCK reads, polls of
            // KMSG_POLL_MS): it ends within one poll.
            let _ = h.join();
        }
        self.drain_log();
        if std::env::var_os("WEDGE_RECORD_STATS").is_some() {
            eprintln!(
                "wedge record: {} full and {} light samples",
                self.light.full, self.light.light
            );
        }
        self.writer.close(unix_ms()).map_err(|e| e.to_string())
    }
}

/// The follower thread: each event as it is finished (the channel costs
/// nothing next to the parse).
fn follow(after: Option<u64>, stop: &AtomicBool, tx: &mpsc::Sender<FromLog>) {
    let gone = |_| "the recorder stopped".to_string();
    let r = wedge_klog::follow_kmsg(after, stop, KMSG_POLL_MS, |item| match item {
        wedge_klog::KmsgItem::Event { event, fresh } => {
            tx.send(FromLog::Event(event, fresh)).map_err(gone)
        }
        wedge_klog::KmsgItem::Lost { count, before_seq } => {
            tx.send(FromLog::Lost { count, before_seq }).map_err(gone)
        }
    });
    if let Err(e) = r {
        let _ = tx.send(FromLog::Failed(e));
    }
}

/// Samples until `stop` is set (the signal handler sets it) or the sample
/// count is reached; prints the start line to stderr.
pub fn run(opts: RecordOptions, stop: &AtomicBool) -> Result<(), String> {
    let r = Recorder::open(opts)?;
    eprintln!("{}", r.start_line());
    r.run(stop)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs SIGINT and SIGTERM handlers that set the returned flag, for
/// [`run`]'s `stop`.
pub fn stop_on_signals() -> Result<&'static AtomicBool, String> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores an
        // atomic; sa_mask empty.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(format!(
                "cannot handle signal {sig}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(&STOP)
}
