//! A snapshot of a live system from /proc that can never hang.
//!
//! wedge is run against the processes that hang everything else, so every
//! read here is bounded in time:
//!
//! * per-task files (`stat`, `status`, `wchan`, `stack`, `syscall`, `fd/*`,
//!   `fdinfo/*`, `ns/*`, `sched`) are read by a small pool of threads whose
//!   current read is watched; a read past its deadline is recorded as
//!   evidence, its worker abandoned and replaced, and the pid scanned again
//!   without that read. These files sleep, if at all, only killably on
//!   current kernels, so an abandoned worker cannot keep wedge from exiting;
//! * files whose read can sleep uninterruptibly on a lock a stuck task holds
//!   (`cmdline`, `cgroup`, `mountinfo`) go through a sacrificial child
//!   process ([`helper`]) that is abandoned at the deadline.
//!
//! Everything is opened relative to an open `/proc/PID` directory, so a pid
//! reused mid-scan yields errors, never a mix of two processes.

#[doc(hidden)]
pub mod block;
pub mod cgroups;
pub mod helper;
mod now;
#[doc(hidden)]
pub mod parse;
mod read;
mod scan;
#[doc(hidden)]
pub mod status;

use procfs_core::FromRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wedge_model::{Field, FuseConnection, Limitation, MissingReason, Mount, Snapshot, Source};

pub use now::{boot_time, task_now, tasks_now, TaskNow};
pub use parse::kernel_stack as parse_kernel_stack;

/// The shortest deadline a scan accepts, in milliseconds. Below it an
/// ordinary read is cut as "blocked": a runnable task waits up to the
/// scheduler's latency (6–24 ms under CFS/EEVDF with a few tasks per CPU)
/// before it runs again, a /proc/PID/stat of a large thread group walks
/// every thread, and the watchdog looks only every deadline/4 (at least
/// 5 ms). With 1 ms, every busy moment became a false WEDGED finding.
pub const MIN_DEADLINE_MS: u64 = 20;

/// What to read, and how long any single read may take.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub proc_root: PathBuf,
    /// Where fusectl is mounted (`/sys/fs/fuse/connections`).
    pub fuse_connections: PathBuf,
    /// The deadline of every single read; [`scan`] raises it to
    /// [`MIN_DEADLINE_MS`] if lower.
    pub deadline: Duration,
    /// Scanning threads (the watchdog adds replacements for stuck ones).
    pub workers: usize,
    pub cmdline: bool,
    pub stacks: bool,
    /// Read each thread's `wchan` where the stack does not give it. Off
    /// (with `stacks`) when the live kernel's BPF pass fills both for every
    /// task: two reads per thread saved.
    pub wchan: bool,
    pub fds: bool,
    /// Read `/proc/PID/sched` (for time off-CPU) for every task, not only
    /// for tasks that look stuck.
    pub sched_all: bool,
    /// Where sysfs is mounted (`/sys`): block devices are read from its
    /// `class/block`.
    pub sys_root: PathBuf,
    /// Read the block devices (stack, requests in flight, two samples of
    /// their counters, queue settings). Off: `block_devices` is Missing.
    pub block_devices: bool,
    /// Read only these processes (tgids), not every one /proc lists: the
    /// recorder's light samples, when its BPF task pass already says which
    /// tasks matter. None: all.
    pub only_pids: Option<std::collections::HashSet<i32>>,
    /// Keep the bounded reader's child alive for the next scan rather than
    /// fork a new one each scan: `wedge record` scans every second, and
    /// fork() copies the page tables of a process holding the kernel's
    /// symbols, BTF and ORC tables (perf: copy_page_range, 12% of the
    /// recorder's CPU). A one-shot command ends it with the scan.
    pub keep_helper: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            proc_root: PathBuf::from("/proc"),
            fuse_connections: PathBuf::from("/sys/fs/fuse/connections"),
            deadline: Duration::from_millis(250),
            // One more worker than CPUs: reads of /proc are system calls
            // that sleep now and then (on a lock of the kernel's), and the
            // spare worker keeps every CPU busy meanwhile.
            workers: std::thread::available_parallelism()
                .map(|n| (n.get() + 1).clamp(2, 5))
                .unwrap_or(3),
            cmdline: true,
            stacks: true,
            wchan: true,
            fds: true,
            sched_all: false,
            sys_root: PathBuf::from("/sys"),
            block_devices: true,
            only_pids: None,
            keep_helper: false,
        }
    }
}

fn read_small(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The scheduler clock now, from the scanning thread's own
/// `se.exec_start`: the thread is running, so its last start is within a
/// time slice of now, on the same clock as every other task's.
fn sched_clock_now(proc_root: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(proc_root.join("thread-self/sched")).ok()?;
    parse::sched_exec_start(&text)
}

/// The scheduler clock of every CPU wedge may run on: a thread pinned to
/// each reads its own `se.exec_start`, which the CPU's `rq->clock_task` set
/// when the thread started running there. The CPUs' clocks differ by the
/// IRQ and steal time each has accounted (seconds on a busy VM), so a
/// task's off-CPU time needs the clock of its own CPU. Bounded: a CPU whose
/// thread has not answered within 100 ms (a CPU hogged by a real-time
/// task) is left `None` and its tasks fall back to the one clock.
fn sched_clocks_per_cpu(proc_root: &std::path::Path) -> Vec<Option<f64>> {
    use std::sync::mpsc;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most its size.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a cpu_set_t of the size passed.
    // SAFETY: `allowed` is a cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) }
        != 0
    {
        return Vec::new();
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &allowed) })
        .collect();
    let Some(&last) = cpus.last() else {
        return Vec::new();
    };
    let (tx, rx) = mpsc::channel();
    for &cpu in &cpus {
        let tx = tx.clone();
        let path = proc_root.join("thread-self/sched");
        let spawned = std::thread::Builder::new()
            .name("wedge-clock".into())
            .stack_size(64 << 10)
            .spawn(move || {
                // SAFETY: a zeroed cpu_set_t is a valid empty set.
                let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                // SAFETY: `cpu` came from CPU_ISSET below CPU_SETSIZE.
                unsafe { libc::CPU_SET(cpu, &mut one) };
                // SAFETY: `one` is a cpu_set_t of the size passed; pid 0 is
                // this thread only.
                if unsafe {
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one)
                } != 0
                {
                    return;
                }
                // The affinity call migrated the thread; yield once so that
                // it is surely running on `cpu` when it reads.
                std::thread::yield_now();
                let at = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| parse::sched_exec_start(&t));
                let _ = tx.send((cpu, at));
            });
        if spawned.is_err() {
            break;
        }
    }
    drop(tx);
    let mut out = vec![None; last + 1];
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((cpu, at)) => out[cpu] = at,
            Err(_) => break,
        }
    }
    out
}

/// The inode of the initial pid namespace: fixed (`PROC_PID_INIT_INO`,
/// 0xEFFFFFFC) since Linux 3.8 gave the init namespaces constant inode
/// numbers.
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;

/// Whether the procfs at `root` shows a pid namespace below the initial
/// one (a container, `unshare -p --mount-proc`): then every process outside
/// it is invisible, and "nothing is wedged" speaks for that namespace only.
///
/// What matters is the namespace of the *procfs mount* — the one whose
/// processes it lists — not the viewer's: `unshare -fp` without
/// `--mount-proc` leaves the viewer nested and the view whole. So:
/// * `/proc/1/ns/pid`, the init of the procfs's namespace, names it
///   directly; but it is behind a ptrace access check, denied to ordinary
///   users and to root facing a more privileged PID 1;
/// * else `/proc/self/ns/pid` (always readable for oneself) is the procfs's
///   namespace exactly when `/proc/self/status` lists one `NStgid`: that
///   line lists the viewer's pids from the procfs's namespace inwards, so a
///   single entry means the two are the same namespace. (More entries only
///   say the viewer is nested below the procfs's namespace, not where that
///   one is; and `pid_for_children` follows `unshare -p` of the viewer,
///   not the mount.)
///
/// Returns the namespace's inode and whether it is nested; `None` when
/// neither file tells.
fn procfs_pid_namespace(root: &std::path::Path) -> Option<(u64, bool)> {
    let inode = |p: std::path::PathBuf| {
        std::fs::read_link(p)
            .ok()
            .and_then(|l| parse::ns_inode(&l.to_string_lossy()))
    };
    let ns = inode(root.join("1/ns/pid")).or_else(|| {
        let status = std::fs::read_to_string(root.join("self/status")).ok()?;
        let nstgid = status.lines().find_map(|l| l.strip_prefix("NStgid:"))?;
        if nstgid.split_whitespace().count() != 1 {
            return None;
        }
        inode(root.join("self/ns/pid"))
    })?;
    Some((ns, ns != INIT_PID_NS_INODE))
}

/// Takes a snapshot of the live system.
pub fn scan(opts: &ScanOptions) -> Result<Snapshot, String> {
    let started = Instant::now();
    let floor = Duration::from_millis(MIN_DEADLINE_MS);
    let raised;
    let opts = if opts.deadline < floor {
        raised = ScanOptions {
            deadline: floor,
            ..opts.clone()
        };
        &raised
    } else {
        opts
    };
    let root = opts.proc_root.display().to_string();
    let proc_fd = rustix::fs::open(
        &opts.proc_root,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot open {root}: {e}"))?;
    let listing = rustix::fs::openat(
        &proc_fd,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot list {root}: {e}"))?;
    let pids = read::list_numeric(listing).map_err(|e| format!("cannot list {root}: {e}"))?;
    if pids.is_empty() {
        return Err(format!(
            "{root} lists no processes: is procfs mounted there?"
        ));
    }

    let pids = match &opts.only_pids {
        Some(only) => pids.into_iter().filter(|p| only.contains(p)).collect(),
        None => pids,
    };

    let mut snap = Snapshot::new(Source::Live { root: root.clone() });
    snap.system.kernel_release = read_small(&format!("{root}/sys/kernel/osrelease"));
    snap.system.hostname = read_small(&format!("{root}/sys/kernel/hostname"));
    snap.system.boot_id = read_small(&format!("{root}/sys/kernel/random/boot_id"));
    snap.system.hung_task_timeout_secs =
        read_small(&format!("{root}/sys/kernel/hung_task_timeout_secs"))
            .and_then(|s| s.parse().ok());
    snap.system.uptime_secs = read_small(&format!("{root}/uptime"))
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    snap.system.viewer_uid = rustix::process::geteuid().as_raw();
    let pid_ns = procfs_pid_namespace(&opts.proc_root);
    snap.system.pid_ns_nested = pid_ns.map(|(_, nested)| nested);
    if let Some((inode, true)) = pid_ns {
        snap.limitations.push(Limitation {
            what: "processes outside this pid namespace".into(),
            why: format!(
                "{root} belongs to pid namespace pid:[{inode}], not the initial one (a container, \
                 or `unshare -p --mount-proc`): only its processes are listed, so a process \
                 wedged elsewhere on the machine cannot be seen; run wedge in the initial pid \
                 namespace (on the host) to see every process"
            ),
        });
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    snap.system.clock_ticks_per_sec = if hz > 0 { hz as u64 } else { 100 };
    snap.system.taken_at_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    // The first sample of the block devices' counters: the scan's own
    // duration is most of the interval over which they must move.
    let devices_first = opts
        .block_devices
        .then(|| block::first_sample(&opts.sys_root));
    let (results, notes, mut helper, abandoned_before) = scan::run(opts, proc_fd, pids);
    let mut denied: std::collections::BTreeMap<&'static str, Vec<i32>> = Default::default();
    let mut blocked = notes.blocked;
    snap.stats.reads += notes.reads;
    for r in results {
        snap.stats.reads += r.notes.reads;
        snap.stats.vanished += r.vanished as u64;
        snap.stats.reused += r.reused as u64;
        blocked.extend(r.notes.blocked);
        // Chunks of a process's threads were denied what its first chunk was.
        for what in r.notes.permission_denied {
            denied.entry(what).or_default().push(r.pid);
        }
        if let Some(p) = r.process {
            snap.processes.push(p);
        }
    }
    snap.system.sched_clock_ms = sched_clock_now(&opts.proc_root);
    snap.system.cpu_sched_clock_ms = sched_clocks_per_cpu(&opts.proc_root);

    // Mounts: one mountinfo per mount namespace. Mount ids are global, so
    // the union resolves every fd's mnt_id.
    // A namespace is read through the first of its processes whose
    // mountinfo can be read: one that exits meanwhile (a short-lived
    // helper) must not leave its namespace's mounts out. A few tries each,
    // so a namespace whose namespace_sem is stuck costs a bounded time.
    let mut loaded_ns = std::collections::HashSet::new();
    let mut tries: std::collections::HashMap<Option<u64>, u32> = Default::default();
    let mut mount_ids = std::collections::HashSet::new();
    for p in &snap.processes {
        let ns = p.namespace("mnt");
        if loaded_ns.contains(&ns) {
            continue;
        }
        let n = tries.entry(ns).or_default();
        if *n >= 3 {
            continue;
        }
        *n += 1;
        let path = format!("{root}/{}/mountinfo", p.pid);
        match helper.read_file(path.as_bytes(), opts.deadline) {
            Ok(bytes) => {
                if let Ok(infos) = procfs_core::process::MountInfos::from_read(&bytes[..]) {
                    loaded_ns.insert(ns);
                    for m in infos.0 {
                        let id = m.mnt_id as u64;
                        if mount_ids.insert(id) {
                            let mut m = convert_mount(m);
                            m.mnt_ns = ns;
                            snap.mounts.push(m);
                        }
                    }
                }
            }
            Err(helper::HelperError::TimedOut(w)) => {
                // namespace_sem is held: every process of the namespace
                // would block the same way.
                tries.insert(ns, u32::MAX);
                blocked.push(wedge_model::BlockedRead {
                    pid: p.pid,
                    tid: None,
                    what: "mountinfo".into(),
                    waited_ms: w.as_millis() as u64,
                    deadline_ms: opts.deadline.as_millis() as u64,
                    blocks_on: scan::blocks_on("mountinfo").into(),
                })
            }
            Err(_) => {}
        }
    }
    snap.mounts.sort_by_key(|m| m.mount_id);
    snap.fuse_connections = fuse_connections(opts);
    // The hierarchies as mounted where wedge runs: the mount namespace of
    // /proc's `self`, the process that writes the thaw the user is told.
    let own_mnt_ns = std::fs::read_link(format!("{root}/self/ns/mnt"))
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
        });
    snap.cgroup_freezes = cgroups::read_freezes(&snap.processes, &snap.mounts, own_mnt_ns);
    snap.block_devices = match devices_first {
        Some(first) => block::read_devices(
            &opts.sys_root,
            first,
            &mut helper,
            opts.deadline,
            &mut blocked,
        ),
        None => Field::missing(
            MissingReason::NotCollected,
            "block devices were not read (--no-devices)",
        ),
    };

    if snap.system.viewer_uid != 0 {
        snap.limitations.push(Limitation {
            what: "wait channels of other users' tasks".into(),
            why: "the kernel prints 0 for them unless the viewer may ptrace the task; run as root"
                .into(),
        });
    }
    for (what, pids) in denied {
        let examples: Vec<String> = pids
            .iter()
            .take(3)
            .map(|pid| {
                let comm = snap.process(*pid).map(|p| p.comm.as_str()).unwrap_or("?");
                format!("{pid} {comm}")
            })
            .collect();
        snap.limitations.push(Limitation {
            what: format!("{what}, for {} process(es) (e.g. {})", pids.len(), examples.join(", ")),
            why: if snap.system.viewer_uid == 0 {
                "denied even to root: the process is not dumpable, belongs to a more privileged user namespace, \
                 or a security module forbids it"
                    .into()
            } else {
                "permission denied; run as root to see them".into()
            },
        });
    }
    let abandoned = helper.abandoned().saturating_sub(abandoned_before);
    // Reap the readers killed at their deadline: a bounded wait of one more
    // read's deadline; those that outlive it cannot be killed at all.
    let stuck = if opts.keep_helper {
        let stuck = helper.reap(opts.deadline);
        helper.keep();
        stuck
    } else {
        helper.finish(opts.deadline)
    };
    if abandoned > 0 {
        snap.limitations.push(Limitation {
            what: format!("{abandoned} reads were abandoned"),
            why: "they blocked in the kernel; the reader processes were killed".into(),
        });
    }
    if !stuck.is_empty() {
        let pids: Vec<String> = stuck.iter().map(|p| p.to_string()).collect();
        snap.limitations.push(Limitation {
            what: format!(
                "{} wedge-reader process(es) that outlive wedge (pid {})",
                stuck.len(),
                pids.join(", ")
            ),
            why: format!(
                "killed at the deadline but still asleep in the kernel after {} ms more: an \
                 uninterruptible wait that SIGKILL cannot end; each exits when its read \
                 returns, and init reaps it",
                opts.deadline.as_millis()
            ),
        });
    }
    snap.stats.timed_out = blocked.len() as u64;
    snap.blocked_reads = blocked;
    snap.stats.processes = snap.processes.len();
    snap.stats.threads = snap.processes.iter().map(|p| p.threads.len()).sum();
    snap.stats.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    snap.stats.deadline_ms = opts.deadline.as_millis() as u64;
    Ok(snap)
}

fn convert_mount(m: procfs_core::process::MountInfo) -> Mount {
    let (major, minor) = m
        .majmin
        .split_once(':')
        .map(|(a, b)| (a.parse().unwrap_or(0), b.parse().unwrap_or(0)))
        .unwrap_or((0, 0));
    let opts = |o: &std::collections::HashMap<String, Option<String>>| {
        let mut v: Vec<String> = o
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        v.sort();
        v.join(",")
    };
    Mount {
        mount_id: m.mnt_id as u64,
        parent_id: m.pid as u64,
        major,
        minor,
        root: m.root,
        mount_point: m.mount_point.display().to_string(),
        options: opts(&m.mount_options),
        fs_type: m.fs_type,
        source: m.mount_source.unwrap_or_default(),
        super_options: opts(&m.super_options),
        mnt_ns: None,
    }
}

/// `SYSFS_MAGIC`: /sys/fs/fuse/connections without fusectl on it.
const SYSFS_MAGIC: i64 = 0x6265_6572;

fn fuse_connections(opts: &ScanOptions) -> Field<Vec<FuseConnection>> {
    let dir = &opts.fuse_connections;
    // Where fusectl is not mounted (the default on many distributions),
    // /sys/fs/fuse/connections is still there, as an empty sysfs
    // directory: listing it would claim "no connection has requests
    // waiting". Its filesystem type tells the two apart. statfs here is
    // answered by sysfs or fusectl themselves, never by a FUSE daemon, so
    // it needs no sacrificial reader (which may be refusing work by now,
    // after reads that blocked on stuck tasks).
    if let Ok(st) = rustix::fs::statfs(dir.as_path()) {
        // f_type is i64 on x86_64 but narrower elsewhere.
        #[allow(clippy::unnecessary_cast)]
        let magic = st.f_type as i64;
        if magic == SYSFS_MAGIC {
            return Field::missing(
                MissingReason::NotSupported,
                format!(
                    "fusectl is not mounted on {} (mount -t fusectl none {0})",
                    dir.display()
                ),
            );
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Field::missing(
                MissingReason::NotSupported,
                format!("cannot list {}: {e} (is fusectl mounted?)", dir.display()),
            )
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // These files are plain counters of the fuse_conn; reading them
        // never calls into the daemon.
        let num = |f: &str| {
            read_small(&entry.path().join(f).display().to_string()).and_then(|s| s.parse().ok())
        };
        out.push(FuseConnection {
            id,
            waiting: num("waiting"),
            max_background: num("max_background"),
            congestion_threshold: num("congestion_threshold"),
        });
    }
    out.sort_by_key(|c| c.id);
    Field::Value(out)
}

/// The live system through /proc, as a [`wedge_model::SnapshotSource`].
#[derive(Debug, Clone, Default)]
pub struct LiveSource(pub ScanOptions);

impl wedge_model::SnapshotSource for LiveSource {
    fn snapshot(&self) -> Result<Snapshot, String> {
        scan(&self.0)
    }
}
