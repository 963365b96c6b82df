//! Helper processes: spawning roles, talking to them over pipes, killing and
//! reaping them, and the process-wide safety nets (child subreaper, `atexit`
//! cleanup, sweeping what a crashed earlier run left behind).

use std::collections::BTreeMap;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::{proc, Error, Result};

/// Env var naming the role a re-executed test binary must run.
pub const ROLE_ENV: &str = "WEDGE_TESTKIT_ROLE";
/// Env var carrying the pid of the process that spawned a role, so the role can
/// detect that its parent died before `PR_SET_PDEATHSIG` was armed.
pub(crate) const PARENT_ENV: &str = "WEDGE_TESTKIT_PARENT";
/// Prefix of the fsname of every FUSE mount the kit makes; the test process
/// pid follows, so a later run can recognise mounts left by a crashed run.
pub(crate) const FSNAME_PREFIX: &str = "wedge-testkit.";
/// Prefix of every temporary directory the kit makes under the temp dir.
pub(crate) const TMPDIR_PREFIX: &str = "wedge-testkit-";

fn pid_of(raw: i32) -> Option<Pid> {
    Pid::from_raw(raw)
}

/// Send `sig` to `pid`, ignoring errors (the task may already be gone).
pub(crate) fn signal(pid: i32, sig: Signal) {
    if let Some(p) = pid_of(pid) {
        let _ = kill_process(p, sig);
    }
}

/// How a reaped child ended, decoded from the raw `wait` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The raw status word `waitpid` returned.
    pub raw: i32,
}

impl ExitInfo {
    /// `WIFSIGNALED` then `WTERMSIG`.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.raw).then(|| libc::WTERMSIG(self.raw))
    }
    /// `WIFEXITED` then `WEXITSTATUS`.
    pub fn code(&self) -> Option<i32> {
        libc::WIFEXITED(self.raw).then(|| libc::WEXITSTATUS(self.raw))
    }
    /// `WCOREDUMP`.
    pub fn core_dumped(&self) -> bool {
        libc::WIFSIGNALED(self.raw) && libc::WCOREDUMP(self.raw)
    }
    /// What a shell would print as `$?`: the code, or 128 + signal.
    pub fn shell_status(&self) -> i32 {
        self.code()
            .unwrap_or_else(|| 128 + self.signal().unwrap_or(0))
    }
}

/// Outcome of one non-blocking `waitpid`.
enum Reap {
    Done(ExitInfo),
    NotYet,
    NotOurs,
}

fn try_reap(pid: i32) -> Reap {
    let mut status = 0;
    // SAFETY: waitpid only writes the status int we own; WNOHANG keeps it from
    // blocking and __WALL also reaps clone() children that signal with
    // something other than SIGCHLD.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    match r {
        0 => Reap::NotYet,
        r if r == pid => Reap::Done(ExitInfo { raw: status }),
        _ => Reap::NotOurs,
    }
}

/// Reap `pid` (which must be our child, possibly adopted through the child
/// subreaper), polling for at most `timeout`. `None` if it did not die in
/// time or is not (any longer) our child.
pub(crate) fn reap(pid: i32, timeout: Duration) -> Option<ExitInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        match try_reap(pid) {
            Reap::Done(info) => {
                unregister_pid(pid);
                return Some(info);
            }
            Reap::NotOurs => {
                unregister_pid(pid);
                return None;
            }
            Reap::NotYet if Instant::now() >= deadline => return None,
            Reap::NotYet => thread::sleep(Duration::from_millis(2)),
        }
    }
}

// ---------------------------------------------------------------------------
// Process-wide registry, used by the atexit hook.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Registry {
    pids: Vec<i32>,
    mounts: BTreeMap<u64, (PathBuf, Option<u32>)>,
    dirs: BTreeMap<u64, PathBuf>,
    /// Frozen cgroups made by the kit: thawed before helpers are killed
    /// (a v1-frozen task acts on SIGKILL only once thawed), removed after.
    cgroups: BTreeMap<u64, (PathBuf, bool)>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn next_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn register_pid(pid: i32) {
    if let Ok(mut r) = registry().lock() {
        r.pids.push(pid);
    }
}

fn unregister_pid(pid: i32) {
    if let Ok(mut r) = registry().lock() {
        r.pids.retain(|&p| p != pid);
    }
}

pub(crate) fn register_mount(path: &Path, conn: Option<u32>) -> u64 {
    let id = next_id();
    if let Ok(mut r) = registry().lock() {
        r.mounts.insert(id, (path.to_path_buf(), conn));
    }
    id
}

pub(crate) fn unregister_mount(id: u64) {
    if let Ok(mut r) = registry().lock() {
        r.mounts.remove(&id);
    }
}

/// Abort a FUSE connection through fusectl: every request waiting on it ends
/// with ECONNABORTED and the daemon's `/dev/fuse` reads fail with ENODEV.
pub(crate) fn abort_conn(conn: u32) -> io::Result<()> {
    fs::write(format!("/sys/fs/fuse/connections/{conn}/abort"), "1")
}

/// Lazily detach a mount (`umount2(MNT_DETACH)`): succeeds even while tasks
/// are blocked inside it.
pub(crate) fn detach(path: &Path) -> io::Result<()> {
    rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH).map_err(io::Error::from)
}

extern "C" fn cleanup_at_exit() {
    cleanup_all();
}

/// Tear down everything the kit still has alive in this process: abort FUSE
/// connections, detach mounts, SIGKILL helpers, reap every child, remove temp
/// dirs. Runs automatically at `exit()`; scenario `Drop`s make it a no-op in
/// the normal case. Safe to call more than once.
pub fn cleanup_all() {
    // try_lock: at exit a test thread could in theory hold the lock forever.
    let Ok(mut r) = registry().try_lock() else {
        return;
    };
    let mounts = std::mem::take(&mut r.mounts);
    let pids = std::mem::take(&mut r.pids);
    let dirs = std::mem::take(&mut r.dirs);
    let cgroups = std::mem::take(&mut r.cgroups);
    drop(r);
    for (dir, v1) in cgroups.values() {
        crate::cgroup::thaw(dir, *v1);
    }
    for (path, conn) in mounts.values() {
        if let Some(c) = conn {
            let _ = abort_conn(*c);
        }
        let _ = detach(path);
    }
    for &pid in &pids {
        signal(pid, Signal::KILL);
    }
    for &pid in &pids {
        let _ = reap(pid, Duration::from_millis(500));
    }
    // Orphans adopted through the subreaper (zombies of killed helpers).
    reap_adopted_orphans();
    for d in dirs.values() {
        let _ = fs::remove_dir(d);
    }
    for (dir, _) in cgroups.values() {
        crate::cgroup::remove(dir);
    }
}

pub(crate) fn register_cgroup(dir: &Path, v1: bool) -> u64 {
    let id = next_id();
    if let Ok(mut r) = registry().lock() {
        r.cgroups.insert(id, (dir.to_path_buf(), v1));
    }
    id
}

pub(crate) fn unregister_cgroup(id: u64) {
    if let Ok(mut r) = registry().lock() {
        r.cgroups.remove(&id);
    }
}

/// Reap every child that is already dead; used at exit to collect zombies that
/// were re-parented to us through `PR_SET_CHILD_SUBREAPER`.
fn reap_adopted_orphans() {
    for _ in 0..1000 {
        let mut status = 0;
        // SAFETY: as in try_reap; -1 means "any child".
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            break;
        }
    }
}

/// One-time process setup done before the first helper is spawned.
fn process_setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Become a child subreaper: when a helper that itself has children
        // (zombie parent, vfork parent, pid-namespace launcher) is killed, its
        // children are re-parented to us instead of PID 1, which on these
        // machines reaps orphans only lazily (about once a second), so they
        // would linger as zombies after the scenario is gone. We reap them
        // by pid.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
        sweep_stale();
    });
}

/// Remove what a previous, crashed run of a test binary left: FUSE mounts
/// whose owning test process is gone (abort + detach), and empty temp dirs.
fn sweep_stale() {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in info.lines() {
        let Some(m) = crate::fuse::parse_mountinfo_line(line) else {
            continue;
        };
        let Some(owner) = m.source.strip_prefix(FSNAME_PREFIX) else {
            continue;
        };
        let Ok(owner) = owner.parse::<i32>() else {
            continue;
        };
        if owner == std::process::id() as i32 || proc::exists(owner) {
            continue;
        }
        let _ = abort_conn(m.minor);
        let _ = detach(Path::new(&m.mount_point));
        let _ = fs::remove_dir(&m.mount_point);
    }
    if let Ok(rd) = fs::read_dir(env::temp_dir()) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMPDIR_PREFIX)) else {
                continue;
            };
            let owner: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
            if owner.is_some_and(|o| !proc::exists(o)) {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Temp dirs.
// ---------------------------------------------------------------------------

/// An empty directory under the temp dir, removed (if empty) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    id: u64,
}

impl TempDir {
    pub(crate) fn new(tag: &str) -> Result<TempDir> {
        process_setup();
        let id = next_id();
        let path =
            env::temp_dir().join(format!("{TMPDIR_PREFIX}{}-{id}-{tag}", std::process::id()));
        fs::create_dir(&path).map_err(|e| Error::setup(format!("mkdir {path:?}: {e}")))?;
        if let Ok(mut r) = registry().lock() {
            r.dirs.insert(id, path.clone());
        }
        Ok(TempDir { path, id })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
        if let Ok(mut r) = registry().lock() {
            r.dirs.remove(&self.id);
        }
    }
}

// ---------------------------------------------------------------------------
// Spawning.
// ---------------------------------------------------------------------------

type SpawnJob = (Command, mpsc::SyncSender<io::Result<std::process::Child>>);

/// All helpers are spawned from one long-lived thread. Roles arm
/// `PR_SET_PDEATHSIG`, which fires when the *thread* that forked them exits;
/// spawning from a test's own (short-lived, pooled) thread would kill helpers
/// that outlive it. This thread lives until the process exits.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static S: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("wk-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn wk-spawner thread");
        Mutex::new(tx)
    })
}

fn spawn_command(cmd: Command, from_spawner: bool) -> io::Result<std::process::Child> {
    if !from_spawner {
        let mut cmd = cmd;
        return cmd.spawn();
    }
    let (tx, rx) = mpsc::sync_channel(1);
    spawner()
        .lock()
        .map_err(|_| io::Error::other("spawner poisoned"))?
        .send((cmd, tx))
        .map_err(|_| io::Error::other("spawner gone"))?;
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| io::Error::other("spawner did not answer"))?
}

#[derive(Default)]
struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    cv: Condvar,
}

/// A re-executed copy of the current binary running one role, with its stdin
/// (commands) and stdout (line-oriented reports) piped to us. Drop SIGKILLs
/// and reaps it.
pub struct Helper {
    pid: i32,
    role: String,
    stdin: Mutex<Option<ChildStdin>>,
    lines: Arc<Lines>,
    reaped: Mutex<Option<ExitInfo>>,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper")
            .field("pid", &self.pid)
            .field("role", &self.role)
            .finish()
    }
}

impl Helper {
    /// Spawn `current_exe()` with `WEDGE_TESTKIT_ROLE=role` and `args`.
    pub(crate) fn spawn(role: &str, args: &[OsString]) -> Result<Helper> {
        Self::spawn_inner(role, args, true)
    }

    fn spawn_inner(role: &str, args: &[OsString], from_spawner: bool) -> Result<Helper> {
        if from_spawner {
            process_setup();
        }
        let exe = env::current_exe().map_err(|e| Error::setup(format!("current_exe: {e}")))?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env(ROLE_ENV, role)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_command(cmd, from_spawner)
            .map_err(|e| Error::setup(format!("spawn role {role}: {e}")))?;
        let pid = child.id() as i32;
        register_pid(pid);
        let lines = Arc::new(Lines::default());
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            let name = format!("wk-out-{pid}");
            let _ = thread::Builder::new().name(name).spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let mut st = lines.state.lock().unwrap_or_else(|e| e.into_inner());
                    st.0.push(line);
                    lines.cv.notify_all();
                }
                let mut st = lines.state.lock().unwrap_or_else(|e| e.into_inner());
                st.1 = true;
                lines.cv.notify_all();
            });
        }
        let stdin = child.stdin.take();
        // Dropping std's Child neither waits nor kills; we reap by pid.
        drop(child);
        Ok(Helper {
            pid,
            role: role.to_string(),
            stdin: Mutex::new(stdin),
            lines,
            reaped: Mutex::new(None),
        })
    }

    /// The helper's pid (host pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Every line the helper printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Wait for the first line satisfying `pred` (looking at all lines printed
    /// so far, then new ones), for at most `timeout`.
    pub(crate) fn wait_line_by(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_line_from(0, timeout, what, pred)
    }

    /// Like [`Helper::wait_line_by`] but ignores the first `from` lines.
    pub(crate) fn wait_line_from(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lines.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(l) = st.0.iter().skip(from).find(|l| pred(l)) {
                return Ok(l.clone());
            }
            if let Some(l) = st.0.iter().find(|l| l.starts_with("skip ")) {
                return Err(Error::Skip(format!("{}: {}", self.role, &l[5..])));
            }
            if let Some(l) = st.0.iter().find(|l| l.starts_with("error ")) {
                return Err(Error::setup(format!("{}: {}", self.role, &l[6..])));
            }
            let now = Instant::now();
            if st.1 || now >= deadline {
                return Err(Error::setup(format!(
                    "{} (pid {}): no line {what:?} within {timeout:?}{}; got {:?}",
                    self.role,
                    self.pid,
                    if st.1 { " (stdout closed)" } else { "" },
                    st.0
                )));
            }
            st = self
                .lines
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Wait for a line starting with `prefix` and return the rest of it.
    pub(crate) fn wait_line(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let l = self.wait_line_by(timeout, prefix, |l| l.starts_with(prefix))?;
        Ok(l[prefix.len()..].trim().to_string())
    }

    /// Wait for `key=value` pairs on a line starting with `prefix`.
    pub(crate) fn wait_kv(
        &self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<BTreeMap<String, String>> {
        Ok(parse_kv(&self.wait_line(prefix, timeout)?))
    }

    /// Write one command line to the helper's stdin.
    pub(crate) fn send(&self, line: &str) -> Result<()> {
        let mut g = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stdin) = g.as_mut() else {
            return Err(Error::setup(format!("{}: stdin closed", self.role)));
        };
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| Error::setup(format!("{}: write stdin: {e}", self.role)))
    }

    /// Send a signal.
    pub(crate) fn signal(&self, sig: Signal) {
        if self.reaped.lock().map(|r| r.is_none()).unwrap_or(true) {
            signal(self.pid, sig);
        }
    }

    /// SIGKILL and reap; false if it would not die within `timeout`.
    pub(crate) fn kill(&self, timeout: Duration) -> bool {
        let mut g = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            return true;
        }
        signal(self.pid, Signal::KILL);
        *g = reap(self.pid, timeout);
        g.is_some() || !proc::exists(self.pid)
    }

    /// Close our end of its stdin (roles treat EOF as "exit now").
    pub(crate) fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.close_stdin();
        if !self.kill(Duration::from_secs(2)) {
            eprintln!(
                "wedge-testkit: helper {} (pid {}) would not die: {}",
                self.role,
                self.pid,
                proc::describe(self.pid)
            );
        }
    }
}

/// Parse `a=1 b=two` into a map (tokens without `=` are ignored).
pub(crate) fn parse_kv(s: &str) -> BTreeMap<String, String> {
    s.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Fetch an integer value from a parsed `key=value` line.
pub(crate) fn kv_i32(kv: &BTreeMap<String, String>, key: &str) -> Result<i32> {
    kv.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::setup(format!("missing {key} in {kv:?}")))
}
