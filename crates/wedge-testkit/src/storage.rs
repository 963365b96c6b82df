//! Storage wedges (issue 14): loop devices whose I/O stops completing,
//! frozen filesystems, and a device that fails I/O so the kernel prints its
//! real storage messages.
//!
//! Every scene here changes machine-wide state that outlives a process (a
//! loop device, a mount, a frozen superblock), so besides its `Drop` each one
//! has a [`Guardian`]: a helper that holds a pipe from the test process and,
//! when that pipe reaches EOF without being disarmed (the test was SIGKILLed,
//! aborted, or exited without dropping the scene), undoes what was recorded:
//! thaw, unmount, `losetup -d`, remove scratch files.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::fuse::{DiskMode, FuseDaemon, INO_DISK};
use crate::helper::Helper;
use crate::kmsg::KmsgTail;
use crate::roles::{fail, host_tid, say, set_comm, sleep_forever};
use crate::{establish, proc, Error, Result, SETUP_TIMEOUT};

/// Bound for external commands (mkfs of a 320 MiB sparse xfs image takes
/// well under a second here; a shared 2-CPU machine can be much slower).
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for a blocked task to reach its wait.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// External commands.
// ---------------------------------------------------------------------------

/// Run `prog args`, bounded by `timeout`; its stdout on success. A program
/// that is not installed is a skip; a failure names the command and its
/// stderr.
pub(crate) fn run_cmd(prog: &str, args: &[&OsStr], timeout: Duration) -> Result<String> {
    let shown = || {
        let mut s = prog.to_string();
        for a in args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::skip(format!("{prog} is not installed")))
        }
        Err(e) => return Err(Error::setup(format!("{}: {e}", shown()))),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::setup(format!(
                    "{}: timed out after {timeout:?}",
                    shown()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Error::setup(format!("{}: wait: {e}", shown()))),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        return Err(Error::setup(format!(
            "{}: {status}: {}",
            shown(),
            err.trim()
        )));
    }
    Ok(out)
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A program must be on PATH (a skip otherwise).
fn require_program(prog: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Error::skip(format!("{prog} is not installed")))
    }
}

fn next_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// The guardian.
// ---------------------------------------------------------------------------

/// A helper process (`wk-guardian`) that undoes a scene's machine-wide state
/// if the test process dies without doing it.
///
/// The test sends it one line per thing to undo as soon as the thing exists
/// (`thaw MOUNTPOINT`, `umount MOUNTPOINT`, `detach MOUNTPOINT`, `abort
/// CONN`, `losetup-d /dev/loopN`, `rm FILE`, `rmdir DIR`). Unlike the other
/// roles it does not arm `PR_SET_PDEATHSIG` and it calls `setsid()`, so it
/// survives the test process's SIGKILL, a panic=abort and a Ctrl-C of the
/// `scene` example. When its stdin reaches EOF (every writer, i.e. the test
/// process, is gone) it performs the recorded actions in reverse order, each
/// one bounded, and exits. A scene's `Drop` cleans up itself and then sends
/// `disarm`, after which EOF does nothing.
#[derive(Debug)]
pub struct Guardian {
    helper: Helper,
}

impl Guardian {
    /// Start a guardian with nothing to undo yet.
    pub fn start() -> Result<Guardian> {
        let helper = Helper::spawn("wk-guardian", &[])?;
        helper.wait_line("ready", SETUP_TIMEOUT)?;
        Ok(Guardian { helper })
    }

    /// Record `action ARG` to undo on EOF.
    pub fn arm(&self, action: &str, arg: &Path) -> Result<()> {
        let line = format!("{action} {}", arg.display());
        let before = self.helper.lines().len();
        self.helper.send(&line)?;
        self.helper
            .wait_line_from(before, SETUP_TIMEOUT, "ack", |l| l.starts_with("ack "))
            .map(|_| ())
    }

    /// Pid of the guardian.
    pub fn pid(&self) -> i32 {
        self.helper.pid()
    }

    /// The scene cleaned up itself: forget everything and exit.
    pub fn disarm(&self) {
        let before = self.helper.lines().len();
        if self.helper.send("disarm").is_ok() {
            let _ = self
                .helper
                .wait_line_from(before, SETUP_TIMEOUT, "ack disarm", |l| l == "ack disarm");
        }
    }
}

/// Body of role `wk-guardian`.
pub(crate) fn guardian_main() -> ! {
    set_comm("wk-guardian");
    // Own session: a Ctrl-C (SIGINT to the terminal's foreground process
    // group) or a hangup that ends the scene must not end its guardian.
    let _ = rustix::process::setsid();
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    say("ready");
    let mut actions: Vec<(String, PathBuf)> = Vec::new();
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line == "disarm" {
            say("ack disarm");
            std::process::exit(0);
        }
        if let Some((a, arg)) = line.split_once(' ') {
            actions.push((a.to_string(), PathBuf::from(arg)));
        }
        say(&format!("ack {line}"));
    }
    // EOF without disarm: the test process is gone. Stdout may be a closed
    // pipe now; report to stderr (the terminal or the test's log) instead.
    for (action, arg) in actions.iter().rev() {
        undo(action, arg);
        eprintln!("wk-guardian: undid {action} {}", arg.display());
    }
    std::process::exit(0)
}

fn undo(action: &str, arg: &Path) {
    let short = Duration::from_secs(10);
    match action {
        "thaw" => {
            let _ = run_cmd("fsfreeze", &[os("-u"), arg.as_os_str()], short);
        }
        "umount" => unmount_retrying(arg),
        "detach" => {
            let _ = crate::helper::detach(arg);
        }
        "abort" => {
            if let Some(c) = arg.to_str().and_then(|s| s.parse().ok()) {
                let _ = crate::helper::abort_conn(c);
            }
        }
        "losetup-d" => {
            // `DEV\tBACKING`: detach only while DEV is still ours (still on
            // BACKING), never a device someone attached after we let go.
            let a = arg.to_string_lossy();
            let (dev, backing) = a.split_once('\t').unwrap_or((&a, ""));
            let name = dev.trim_start_matches("/dev/");
            let now = fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
                .unwrap_or_default();
            if !backing.is_empty() && now.trim_end() == backing {
                let _ = run_cmd("losetup", &[os("-d"), os(dev)], short);
            }
        }
        "rm" => {
            let _ = fs::remove_file(arg);
        }
        "rmdir" => {
            let _ = fs::remove_dir(arg);
        }
        _ => {}
    }
}

/// Unmount `path`; while tasks that were blocked in it are still exiting the
/// mount is busy, so retry for a while, then detach it lazily.
fn unmount_retrying(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rustix::mount::unmount(path, rustix::mount::UnmountFlags::empty()) {
            Ok(()) => return,
            Err(rustix::io::Errno::BUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(rustix::io::Errno::BUSY) => {
                let _ = crate::helper::detach(path);
                return;
            }
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Loop devices.
// ---------------------------------------------------------------------------

/// A loop device, the one type of this kit: either over a sparse image of
/// its own with partitions ([`LoopDevice::new`]) or attached to an existing
/// file ([`LoopDevice::attach`]). Drop detaches it (`losetup -d`, which the
/// kernel defers to the last close if the device is still open) and removes
/// the image if it made it.
///
/// Drop does not run if the test process dies: [`LoopDevice::guard`] has a
/// [`Guardian`] detach it (and remove its image) then. The scenes of this
/// module guard theirs; a test binary that calls
/// [`crate::role_main_if_requested`] can guard its own.
#[derive(Debug)]
pub struct LoopDevice {
    name: String,
    major: u32,
    minor: u32,
    backing: PathBuf,
    partitions: Vec<String>,
    /// The backing file is this kit's scratch image, removed on drop.
    owns_image: bool,
    attached: bool,
}

impl LoopDevice {
    /// Attach a new sparse `size_mib` MiB image under `dir` (created if
    /// missing; the image is removed on drop) with partition scanning on
    /// (`losetup -P`), and add the partitions given as (start, length) in
    /// 512-byte sectors with BLKPG (`addpart`): that works on a kernel
    /// without any partition-table parser (CONFIG_*_PARTITION unset). They
    /// are `loopNp1`, `loopNp2`, … ([`LoopDevice::partitions`]).
    pub fn new(dir: &Path, size_mib: u64, partitions: &[(u64, u64)]) -> Result<LoopDevice> {
        require_loop()?;
        if !partitions.is_empty() {
            require_program("addpart")?;
        }
        fs::create_dir_all(dir).map_err(|e| Error::setup(format!("mkdir {dir:?}: {e}")))?;
        let image = dir.join(format!("loop-{}-{}.img", std::process::id(), next_id()));
        sparse_image(&image, size_mib << 20)?;
        let out = run_cmd(
            "losetup",
            &[os("-P"), os("--find"), os("--show"), image.as_os_str()],
            CMD_TIMEOUT,
        );
        let mut l = match out.and_then(|out| LoopDevice::found(&out, &image)) {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_file(&image);
                return Err(e);
            }
        };
        l.owns_image = true;
        for (i, (start, len)) in partitions.iter().enumerate() {
            let n = i + 1;
            run_cmd(
                "addpart",
                &[
                    l.dev_path().as_os_str(),
                    os(&n.to_string()),
                    os(&start.to_string()),
                    os(&len.to_string()),
                ],
                CMD_TIMEOUT,
            )?;
            l.partitions.push(format!("{}p{n}", l.name));
        }
        Ok(l)
    }

    /// Attach `backing` (an existing file, on a FUSE mount say; left in
    /// place on drop) to the first free loop device, without partition
    /// scanning (attaching reads nothing from it) and in buffered mode
    /// (`--direct-io=off`): loop's worker then calls the backing file's
    /// `->read_iter`/`->write_iter` synchronously, so on FUSE it is the
    /// worker that waits for the daemon.
    pub fn attach(backing: &Path) -> Result<LoopDevice> {
        require_loop()?;
        let out = run_cmd(
            "losetup",
            &[
                os("--find"),
                os("--show"),
                os("--direct-io=off"),
                backing.as_os_str(),
            ],
            CMD_TIMEOUT,
        )?;
        LoopDevice::found(&out, backing)
    }

    /// The device `losetup --show` printed, attached to `backing`.
    fn found(out: &str, backing: &Path) -> Result<LoopDevice> {
        let dev = out.trim();
        let name = dev
            .strip_prefix("/dev/")
            .filter(|n| n.starts_with("loop"))
            .ok_or_else(|| Error::setup(format!("losetup printed {out:?}")))?
            .to_string();
        let mut me = LoopDevice {
            name,
            major: 0,
            minor: 0,
            backing: backing.to_path_buf(),
            partitions: Vec::new(),
            owns_image: false,
            attached: true,
        };
        // From here on Drop detaches it.
        let sys = format!("/sys/block/{}/dev", me.name);
        let mm = fs::read_to_string(&sys).unwrap_or_default();
        (me.major, me.minor) = mm
            .trim()
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| Error::setup(format!("{sys}: {mm:?}")))?;
        Ok(me)
    }

    /// Detach it now (once: the number may be reused by the next
    /// `losetup --find` of anyone on the machine right after).
    pub fn detach(&mut self) {
        if std::mem::take(&mut self.attached) {
            let dev = self.dev_path();
            let _ = run_cmd("losetup", &[os("-d"), dev.as_os_str()], CMD_TIMEOUT);
        }
    }

    /// Have `guardian` detach it (and remove its image, if it made one) if
    /// the test process dies first. Its Drop does not disarm `guardian`:
    /// whoever started it disarms it once everything it guards is undone.
    pub fn guard(&self, guardian: &Guardian) -> Result<()> {
        if self.owns_image {
            guardian.arm("rm", &self.backing)?;
        }
        let arg = format!("{}\t{}", self.dev_path().display(), self.backing.display());
        guardian.arm("losetup-d", Path::new(&arg))
    }

    /// The file it was attached to (its image, for [`LoopDevice::new`]).
    pub fn backing_file(&self) -> &Path {
        &self.backing
    }

    /// `loopN`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/dev/loopN`.
    pub fn dev_path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/{}", self.name))
    }

    /// The partitions [`LoopDevice::new`] added: `loopNp1`, …
    pub fn partitions(&self) -> &[String] {
        &self.partitions
    }

    /// The block device's major number (7 for loop).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The block device's minor number.
    pub fn minor(&self) -> u32 {
        self.minor
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        self.detach();
        if self.owns_image {
            let _ = fs::remove_file(&self.backing);
        }
    }
}

/// What every loop device needs: root, `losetup`, the loop driver.
fn require_loop() -> Result<()> {
    crate::require_root()?;
    require_program("losetup")?;
    if !Path::new("/dev/loop-control").exists() {
        return Err(Error::skip("no /dev/loop-control (loop driver missing)"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Mounted (and frozen) filesystems.
// ---------------------------------------------------------------------------

/// A filesystem mounted on a directory, perhaps frozen; Drop thaws it (an
/// unmount of a frozen filesystem would wait), unmounts it (retrying while
/// it is busy, then lazily) and removes the mount point if it made it.
///
/// Like [`LoopDevice`] it does not arm a guardian itself: a scene arms
/// `umount MNT` before [`MountedFs::mount`] and `thaw MNT` before
/// [`MountedFs::freeze`].
#[derive(Debug)]
pub struct MountedFs {
    mnt: PathBuf,
    kind: FsKind,
    made_dir: bool,
    frozen: bool,
}

impl MountedFs {
    /// Make a `kind` filesystem on `dev` (destroying what is on it) and
    /// mount it on `mnt` (made if missing).
    pub fn make(dev: &Path, mnt: &Path, kind: FsKind) -> Result<MountedFs> {
        kind.make(dev)?;
        MountedFs::mount(dev, mnt, kind, "")
    }

    /// Mount the `kind` filesystem on `dev` on `mnt` (made if missing, and
    /// then removed on drop) with mount(2) `data` (`""` for none).
    pub fn mount(dev: &Path, mnt: &Path, kind: FsKind, data: &str) -> Result<MountedFs> {
        let made_dir = !mnt.exists();
        if made_dir {
            fs::create_dir_all(mnt).map_err(|e| Error::setup(format!("mkdir {mnt:?}: {e}")))?;
        }
        if let Err(e) = mount_dev(dev, mnt, kind.name(), data) {
            if made_dir {
                let _ = fs::remove_dir(mnt);
            }
            return Err(e);
        }
        Ok(MountedFs {
            mnt: mnt.to_path_buf(),
            kind,
            made_dir,
            frozen: false,
        })
    }

    /// `fsfreeze -f`: the superblock goes to SB_FREEZE_COMPLETE. Thawed on
    /// drop.
    pub fn freeze(&mut self) -> Result<()> {
        require_program("fsfreeze")?;
        run_cmd("fsfreeze", &[os("-f"), self.mnt.as_os_str()], CMD_TIMEOUT)?;
        self.frozen = true;
        Ok(())
    }

    /// `fsfreeze -u`, if frozen.
    pub fn thaw(&mut self) {
        if std::mem::take(&mut self.frozen) {
            let _ = run_cmd("fsfreeze", &[os("-u"), self.mnt.as_os_str()], CMD_TIMEOUT);
        }
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mnt
    }

    /// The filesystem type.
    pub fn kind(&self) -> FsKind {
        self.kind
    }
}

impl Drop for MountedFs {
    fn drop(&mut self) {
        self.thaw();
        unmount_retrying(&self.mnt);
        if self.made_dir {
            let _ = fs::remove_dir(&self.mnt);
        }
    }
}

// ---------------------------------------------------------------------------
// Roles.
// ---------------------------------------------------------------------------

/// A 4 KiB buffer aligned for O_DIRECT.
#[repr(C, align(4096))]
struct Aligned([u8; 4096]);

/// Body of role `wk-blkreader`: argv = [device]. Reads 4 KiB at offset 0
/// with O_DIRECT, so the read is a bio of its own that no page cache (a
/// udev probe's, an earlier mkfs's) can satisfy: the task waits for that
/// bio in `__blkdev_direct_IO_simple`.
pub(crate) fn blkreader_main(dev: &OsStr) -> ! {
    crate::roles::prologue("wk-blkreader");
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)
        .unwrap_or_else(|e| fail(format!("open {dev:?}: {e}")));
    say(&format!("opened tid={}", host_tid()));
    let mut buf = Box::new(Aligned([0; 4096]));
    let r = std::os::unix::fs::FileExt::read_at(&f, &mut buf.0, 0);
    say(&format!("read-done result={r:?}"));
    sleep_forever()
}

/// Body of role `wk-fswriter`: argv = [kind, path]. `write` opens `path`
/// (which exists) at once; every kind then waits for a byte on stdin and
/// does its one modification: `create` opens `path` with O_CREAT, `write`
/// writes to the fd it already has, `mkdir` makes `path`.
pub(crate) fn fswriter_main(kind: &OsStr, path: &OsStr) -> ! {
    let kind = kind.to_string_lossy().into_owned();
    crate::roles::prologue(&format!("wk-{kind}"));
    let held = (kind == "write").then(|| {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap_or_else(|e| fail(format!("open {path:?}: {e}")))
    });
    say(&format!("ready tid={}", host_tid()));
    let mut b = [0u8; 1];
    let _ = io::stdin().read(&mut b);
    let r: io::Result<()> = match (kind.as_str(), held) {
        ("create", _) => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(drop),
        ("write", Some(mut f)) => f.write_all(b"written while frozen\n"),
        ("mkdir", _) => fs::create_dir(path),
        _ => fail(format!("unknown writer kind {kind}")),
    };
    say(&format!("done result={r:?}"));
    sleep_forever()
}

/// Body of role `wk-eiowriter`: argv = [dir]. Writes a file in `dir` and
/// fsyncs it (the data write and the journal commit both fail: jbd2 aborts
/// the journal), then `syncfs`, then a `mkdir`: its journal handle finds the
/// journal aborted, which is the `EXT4-fs error … Detected aborted journal`
/// that remounts the filesystem read-only (without it only ext4lazyinit's
/// next pass would log it, seconds later). Reports each result.
pub(crate) fn eiowriter_main(dir: &OsStr) -> ! {
    crate::roles::prologue("wk-eiowriter");
    let path = Path::new(dir).join("after-eio");
    let r = fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0x5a; 64 << 10])?;
        f.sync_all()
    });
    say(&format!("fsync-done result={r:?}"));
    let r = fs::File::open(dir).and_then(|d| rustix::fs::syncfs(&d).map_err(io::Error::from));
    say(&format!("syncfs-done result={r:?}"));
    let r = fs::create_dir(Path::new(dir).join("after-abort"));
    say(&format!("mkdir-done result={r:?}"));
    sleep_forever()
}

// ---------------------------------------------------------------------------
// Scratch space.
// ---------------------------------------------------------------------------

/// A directory of this scene's own under `parent`; Drop removes it and
/// everything in it (sparse images).
#[derive(Debug)]
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(parent: &Path, tag: &str) -> Result<Scratch> {
        let path = parent.join(format!(
            "wedge-testkit-{}-{}-{tag}",
            std::process::id(),
            next_id()
        ));
        fs::create_dir_all(&path).map_err(|e| Error::setup(format!("mkdir {path:?}: {e}")))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A sparse file of `size` bytes.
fn sparse_image(path: &Path, size: u64) -> Result<()> {
    fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .map_err(|e| Error::setup(format!("create {path:?}: {e}")))
}

fn mount_dev(dev: &Path, mnt: &Path, fstype: &str, data: &str) -> Result<()> {
    let data = std::ffi::CString::new(data).map_err(|e| Error::setup(e.to_string()))?;
    rustix::mount::mount(
        dev,
        mnt,
        fstype,
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::NODEV {
            Error::skip(format!("the kernel has no {fstype}"))
        } else {
            Error::setup(format!("mount {} on {}: {e}", dev.display(), mnt.display()))
        }
    })
}

// ---------------------------------------------------------------------------
// Loop device on the FUSE disk, daemon parked.
// ---------------------------------------------------------------------------

/// A loop device on the FUSE daemon's `disk`, and a reader of the loop
/// device while the daemon parks disk requests: reader → `loopN` → loop
/// worker → FUSE connection → daemon.
///
/// The reader (`wk-blkreader`) reads `/dev/loopN` with O_DIRECT and sleeps
/// `D` waiting for its bio; the loop driver's worker (a `kworker/…+loopN`,
/// the `loopN` workqueue) issued the FUSE READ synchronously and waits in
/// `request_wait_answer`. The READ's `fuse_in_header.pid` is the worker's
/// tid, which the daemon reports.
///
/// Observed on 6.18.44: the reader `D`, wchan `submit_bio_wait`, stack
/// `submit_bio_wait, __blkdev_direct_IO_simple, blkdev_read_iter, vfs_read,
/// __x64_sys_pread64, …`; the worker `kworker/u8:1+loop0`, `S` (no signal
/// ever reaches a kworker, so it stays in the interruptible phase), wchan
/// `request_wait_answer`, stack `request_wait_answer, __fuse_simple_request,
/// fuse_direct_io, fuse_file_read_iter, lo_rw_aio, loop_process_work,
/// process_one_work, worker_thread, kthread, …`; `losetup -a` shows
/// `/dev/loop0: [0041]:7 (…/disk)`; fusectl `waiting` 1.
///
/// Drop: the daemon passes the parked READ through (the reader's read
/// completes), the reader is killed, the loop device detached, the daemon
/// stopped; then the guardian is disarmed.
#[derive(Debug)]
pub struct LoopOnFuse {
    // Field order is drop order after Drop::drop: reader, loop, daemon,
    // guardian.
    reader: Helper,
    loopdev: LoopDevice,
    daemon: Option<FuseDaemon>,
    guardian: Guardian,
    /// The reader of `/dev/loopN` (single-threaded: pid == tid).
    pub reader_pid: i32,
    /// The loop worker (a kworker) waiting for the daemon.
    pub worker_tid: i32,
}

impl LoopOnFuse {
    /// Build the scene and return once the reader is `D` and the daemon
    /// holds the worker's READ.
    pub fn start() -> Result<LoopOnFuse> {
        crate::require_root()?;
        require_program("losetup")?;
        let guardian = Guardian::start()?;
        let daemon = FuseDaemon::start()?;
        guardian.arm("rmdir", daemon.mountpoint())?;
        guardian.arm("detach", daemon.mountpoint())?;
        let loopdev = LoopDevice::attach(&daemon.path("disk"))?;
        guardian.arm("abort", Path::new(&daemon.conn().to_string()))?;
        loopdev.guard(&guardian)?;
        daemon.set_disk_mode(DiskMode::Park)?;
        let reader = Helper::spawn("wk-blkreader", &[loopdev.dev_path().into()])?;
        let reader_pid = reader.pid();
        let mut me = LoopOnFuse {
            reader,
            loopdev,
            daemon: Some(daemon),
            guardian,
            reader_pid,
            worker_tid: 0,
        };
        me.reader.wait_line("opened", SETUP_TIMEOUT)?;
        let parked = me
            .daemon()
            .wait_parked_by("READ of disk", WAIT_TIMEOUT, |p| {
                p.op == "READ" && p.ino == INO_DISK
            })?;
        me.worker_tid = parked.pid;
        let (r, w) = (me.reader_pid, me.worker_tid);
        establish(
            "loop reader D, loop worker in request_wait_answer",
            WAIT_TIMEOUT,
            &[r, w],
            || {
                proc::state_of(r) == Some('D')
                    && proc::asleep(r)
                    && proc::blocked_in(w, "request_wait_answer")
            },
        )?;
        Ok(me)
    }

    /// The FUSE daemon.
    pub fn daemon(&self) -> &FuseDaemon {
        // Some from construction until Drop.
        self.daemon
            .as_ref()
            .unwrap_or_else(|| unreachable!("daemon taken before drop"))
    }

    /// The loop device.
    pub fn loop_device(&self) -> &LoopDevice {
        &self.loopdev
    }

    /// Pid of the guardian.
    pub fn guardian_pid(&self) -> i32 {
        self.guardian.pid()
    }
}

impl Drop for LoopOnFuse {
    fn drop(&mut self) {
        if let Some(d) = &self.daemon {
            let _ = d.set_disk_mode(DiskMode::Answer);
        }
        self.reader.signal(Signal::KILL);
        let r = self.reader_pid;
        if !crate::wait_until(Duration::from_secs(3), || {
            matches!(proc::state_of(r), None | Some('Z') | Some('X'))
        }) {
            if let Some(d) = &self.daemon {
                let _ = d.abort_connection();
            }
        }
        self.reader.kill(Duration::from_secs(2));
        self.loopdev.detach();
        self.daemon.take();
        self.guardian.disarm();
    }
}

// ---------------------------------------------------------------------------
// Frozen filesystems.
// ---------------------------------------------------------------------------

/// The filesystems a [`FrozenFs`] can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// ext4 (64 MiB image).
    Ext4,
    /// XFS (320 MiB: mkfs.xfs refuses less than 300 MiB).
    Xfs,
    /// btrfs (128 MiB: mkfs.btrfs refuses less than about 110 MiB).
    Btrfs,
}

impl FsKind {
    /// The filesystem type as mount(2) and /proc/mounts name it.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
        }
    }

    fn image_size(self) -> u64 {
        match self {
            FsKind::Ext4 => 64 << 20,
            FsKind::Xfs => 320 << 20,
            FsKind::Btrfs => 128 << 20,
        }
    }

    fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            FsKind::Ext4 => ("mkfs.ext4", &["-q", "-F", "-E", "nodiscard"]),
            FsKind::Xfs => ("mkfs.xfs", &["-q", "-f", "-K"]),
            FsKind::Btrfs => ("mkfs.btrfs", &["-q", "-f", "--nodiscard"]),
        }
    }

    /// Make this filesystem on `target` (a device or an image file),
    /// destroying what is on it, without discarding.
    pub fn make(self, target: &Path) -> Result<()> {
        let (mkfs, mkfs_args) = self.mkfs();
        require_program(mkfs)?;
        let mut args: Vec<&OsStr> = mkfs_args.iter().map(|a| os(a)).collect();
        args.push(target.as_os_str());
        run_cmd(mkfs, &args, CMD_TIMEOUT).map(drop)
    }
}

/// How a writer on a frozen filesystem modifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterKind {
    /// `open(O_CREAT)` of a new file (`wk-create`): blocks in
    /// `mnt_want_write` before the lookup.
    Create,
    /// `write(2)` to a file opened before the freeze (`wk-write`): blocks in
    /// `file_start_write`.
    Write,
    /// `mkdir(2)` (`wk-mkdir`): blocks in `filename_create`'s
    /// `mnt_want_write`.
    Mkdir,
}

impl WriterKind {
    fn arg(self) -> &'static str {
        match self {
            WriterKind::Create => "create",
            WriterKind::Write => "write",
            WriterKind::Mkdir => "mkdir",
        }
    }
}

/// One writer waiting on a frozen filesystem.
#[derive(Debug)]
pub struct FrozenWriter {
    /// What it does.
    pub kind: WriterKind,
    /// Its pid (single-threaded: pid == tid).
    pub pid: i32,
    helper: Helper,
}

/// A filesystem on a loop device over a sparse image in a scratch directory,
/// mounted in that directory, frozen with `fsfreeze -f`, and three writers
/// blocked on it: one each of [`WriterKind`].
///
/// The writers sleep `D` in `percpu_rwsem_wait` (`sb_start_write` takes
/// `sb->s_writers.rw_sem[SB_FREEZE_WRITE]` for read, which `freeze_super`
/// holds for write). Observed on 6.18.44, the same for ext4, xfs and btrfs:
/// `wk-create` and `wk-mkdir` in `percpu_rwsem_wait, mnt_want_write,
/// path_openat` / `filename_create`, `wk-write` in `percpu_rwsem_wait,
/// vfs_write, ksys_write` (`__percpu_down_read` is inlined in /proc's
/// stack; the ORC unwinder shows it). Drop thaws (`fsfreeze -u`), lets the writers finish and
/// kills them, unmounts, detaches the loop device and removes the scratch
/// directory; then disarms the guardian.
#[derive(Debug)]
pub struct FrozenFs {
    kind: FsKind,
    writers: Vec<FrozenWriter>,
    mnt: PathBuf,
    fs: Option<MountedFs>,
    loopdev: Option<LoopDevice>,
    scratch: Option<Scratch>,
    guardian: Guardian,
}

impl FrozenFs {
    /// Build the scene under `scratch_parent` (a test's
    /// `CARGO_TARGET_TMPDIR`; never a filesystem the scene does not own is
    /// frozen: only the loop device's).
    pub fn start(kind: FsKind, scratch_parent: &Path) -> Result<FrozenFs> {
        crate::require_root()?;
        require_program("losetup")?;
        require_program("fsfreeze")?;
        require_program(kind.mkfs().0)?;
        let guardian = Guardian::start()?;
        let scratch = Scratch::new(scratch_parent, &format!("frozen-{}", kind.name()))?;
        guardian.arm("rmdir", &scratch.path)?;
        let img = scratch.path.join("img");
        let mnt = scratch.path.join("mnt");
        guardian.arm("rm", &img)?;
        sparse_image(&img, kind.image_size())?;
        kind.make(&img)?;
        fs::create_dir(&mnt).map_err(|e| Error::setup(format!("mkdir {mnt:?}: {e}")))?;
        guardian.arm("rmdir", &mnt)?;
        let mut me = FrozenFs {
            kind,
            writers: Vec::new(),
            mnt: mnt.clone(),
            fs: None,
            loopdev: None,
            scratch: Some(scratch),
            guardian,
        };
        let loopdev = LoopDevice::attach(&img)?;
        loopdev.guard(&me.guardian)?;
        let dev = loopdev.dev_path();
        me.loopdev = Some(loopdev);
        me.guardian.arm("umount", &mnt)?;
        me.fs = Some(MountedFs::mount(&dev, &mnt, kind, "")?);
        let existing = mnt.join("existing");
        fs::write(&existing, b"before the freeze\n")
            .map_err(|e| Error::setup(format!("write {existing:?}: {e}")))?;
        for (wk, path) in [
            (WriterKind::Create, mnt.join("created-while-frozen")),
            (WriterKind::Write, existing),
            (WriterKind::Mkdir, mnt.join("dir-made-while-frozen")),
        ] {
            let helper = Helper::spawn("wk-fswriter", &[wk.arg().into(), path.into()])?;
            let pid = helper.pid();
            helper.wait_line("ready", SETUP_TIMEOUT)?;
            me.writers.push(FrozenWriter {
                kind: wk,
                pid,
                helper,
            });
        }
        me.guardian.arm("thaw", &mnt)?;
        if let Some(f) = &mut me.fs {
            f.freeze()?;
        }
        for w in &me.writers {
            w.helper.send("go")?;
        }
        let pids: Vec<i32> = me.writers.iter().map(|w| w.pid).collect();
        establish(
            "writers D on the frozen filesystem",
            WAIT_TIMEOUT,
            &pids,
            || {
                pids.iter()
                    .all(|&p| proc::state_of(p) == Some('D') && proc::asleep(p))
            },
        )?;
        Ok(me)
    }

    /// The filesystem type.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mnt
    }

    /// The loop device it lives on.
    pub fn loop_device(&self) -> Option<&LoopDevice> {
        self.loopdev.as_ref()
    }

    /// The writers waiting on it.
    pub fn writers(&self) -> &[FrozenWriter] {
        &self.writers
    }

    /// Pids of the writers.
    pub fn writer_pids(&self) -> Vec<i32> {
        self.writers.iter().map(|w| w.pid).collect()
    }

    /// Pid of the guardian.
    pub fn guardian_pid(&self) -> i32 {
        self.guardian.pid()
    }
}

impl Drop for FrozenFs {
    fn drop(&mut self) {
        if let Some(f) = &mut self.fs {
            f.thaw();
        }
        for w in &self.writers {
            let _ = w.helper.wait_line("done", Duration::from_secs(5));
            w.helper.kill(Duration::from_secs(2));
        }
        // Unmounts.
        self.fs.take();
        if let Some(mut l) = self.loopdev.take() {
            l.detach();
        }
        self.scratch.take();
        self.guardian.disarm();
    }
}

// ---------------------------------------------------------------------------
// Loop device that fails I/O.
// ---------------------------------------------------------------------------

/// ext4 (`errors=remount-ro`) on a loop device on the FUSE `disk`, made and
/// mounted while the daemon passes I/O through; then the daemon answers
/// every READ/WRITE with EIO and a writer (`wk-eiowriter`) writes a file,
/// fsyncs and syncfs's. The kernel logs what a failing disk makes it log:
/// `I/O error, dev loopN, sector … op 0x1:(WRITE)`, `Buffer I/O error on
/// dev loopN …`, jbd2's `Aborting journal on device loopN-8`, `EXT4-fs
/// error (device loopN)` and `Remounting filesystem read-only`.
///
/// [`LoopEio::kernel_lines`] are those records as `/dev/kmsg` gave them
/// (`PRI,SEQ,USEC,FLAGS;message`), filtered to this loop device.
///
/// Drop: the daemon passes I/O through again, the filesystem is unmounted,
/// the loop device detached, the daemon stopped, the guardian disarmed.
#[derive(Debug)]
pub struct LoopEio {
    writer: Option<Helper>,
    mnt: Option<Scratch>,
    fs: Option<MountedFs>,
    loopdev: LoopDevice,
    daemon: Option<FuseDaemon>,
    guardian: Guardian,
    lines: Vec<String>,
    /// The writer's `fsync-done …`, `syncfs-done …` and `mkdir-done …`
    /// reports.
    pub writer_results: Vec<String>,
}

impl LoopEio {
    /// Build the scene (the mount point is made under `scratch_parent`) and
    /// return once the kernel has logged the EXT4-fs error for the device.
    pub fn start(scratch_parent: &Path) -> Result<LoopEio> {
        crate::require_root()?;
        require_program("losetup")?;
        require_program("mkfs.ext4")?;
        let guardian = Guardian::start()?;
        let daemon = FuseDaemon::start()?;
        guardian.arm("rmdir", daemon.mountpoint())?;
        guardian.arm("detach", daemon.mountpoint())?;
        let loopdev = LoopDevice::attach(&daemon.path("disk"))?;
        guardian.arm("abort", Path::new(&daemon.conn().to_string()))?;
        loopdev.guard(&guardian)?;
        let mut me = LoopEio {
            writer: None,
            mnt: None,
            fs: None,
            loopdev,
            daemon: Some(daemon),
            guardian,
            lines: Vec::new(),
            writer_results: Vec::new(),
        };
        let dev = me.loopdev.dev_path();
        FsKind::Ext4.make(&dev)?;
        let scratch = Scratch::new(scratch_parent, "eio")?;
        let mnt = scratch.path.clone();
        me.guardian.arm("rmdir", &mnt)?;
        me.mnt = Some(scratch);
        me.guardian.arm("umount", &mnt)?;
        me.fs = Some(MountedFs::mount(
            &dev,
            &mnt,
            FsKind::Ext4,
            "errors=remount-ro",
        )?);
        fs::write(mnt.join("before-eio"), b"written while the disk worked\n")
            .and_then(|_| fs::File::open(&mnt))
            .and_then(|d| rustix::fs::syncfs(&d).map_err(io::Error::from))
            .map_err(|e| Error::setup(format!("write and sync {}: {e}", mnt.display())))?;
        let mut kmsg =
            KmsgTail::open().map_err(|e| Error::skip(format!("cannot read /dev/kmsg: {e}")))?;
        me.daemon().set_disk_mode(DiskMode::Eio)?;
        let writer = Helper::spawn("wk-eiowriter", &[mnt.clone().into()])?;
        let w1 = writer.wait_line_by(WAIT_TIMEOUT, "fsync-done", |l| l.starts_with("fsync-done"));
        let w2 = writer.wait_line_by(WAIT_TIMEOUT, "syncfs-done", |l| {
            l.starts_with("syncfs-done")
        });
        let w3 = writer.wait_line_by(WAIT_TIMEOUT, "mkdir-done", |l| l.starts_with("mkdir-done"));
        me.writer_results = [w1, w2, w3].into_iter().filter_map(|r| r.ok()).collect();
        me.writer = Some(writer);
        let name = me.loopdev.name().to_string();
        let dev_word = format!("(device {name})");
        let got = kmsg.wait_for(&["EXT4-fs error", &dev_word], WAIT_TIMEOUT);
        // The remount and the buffer errors follow within the same call
        // chain; give them a moment to be logged, bounded.
        kmsg.wait_for(
            &[&format!("EXT4-fs ({name})"), "read-only"],
            Duration::from_secs(3),
        );
        kmsg.wait_for(&["Buffer I/O error", &name], Duration::from_secs(2));
        me.lines = kmsg
            .raw_records()
            .iter()
            .filter(|r| mentions_device(r, &name))
            .cloned()
            .collect();
        if got.is_none() {
            return Err(Error::setup(format!(
                "no EXT4-fs error for {name} within {WAIT_TIMEOUT:?}; writer: {:?}; kernel said: {:?}",
                me.writer_results, me.lines
            )));
        }
        Ok(me)
    }

    /// The kernel's records about this loop device, raw `/dev/kmsg` lines.
    pub fn kernel_lines(&self) -> &[String] {
        &self.lines
    }

    /// The loop device.
    pub fn loop_device(&self) -> &LoopDevice {
        &self.loopdev
    }

    /// Where the ext4 is mounted.
    pub fn mountpoint(&self) -> Option<&Path> {
        self.mnt.as_ref().map(|s| s.path.as_path())
    }

    /// The FUSE daemon.
    pub fn daemon(&self) -> &FuseDaemon {
        // Some from construction until Drop.
        self.daemon
            .as_ref()
            .unwrap_or_else(|| unreachable!("daemon taken before drop"))
    }
}

/// Whether a kmsg record (`PRI,SEQ,USEC,FLAGS;message`) names `dev`
/// (`loop3`) as a whole word: `dev loop3,`, `(device loop3)`, `on device
/// loop3-8` (jbd2 names the journal `DEV-INODE`), `EXT4-fs (loop3)`, but not
/// `loop30`.
pub fn mentions_device(record: &str, dev: &str) -> bool {
    let msg = record.split_once(';').map_or(record, |(_, m)| m);
    msg.match_indices(dev).any(|(i, _)| {
        let before = msg[..i].chars().next_back();
        let after = msg[i + dev.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_digit() || c.is_ascii_alphabetic())
    })
}

impl Drop for LoopEio {
    fn drop(&mut self) {
        if let Some(d) = &self.daemon {
            let _ = d.set_disk_mode(DiskMode::Answer);
        }
        if let Some(w) = self.writer.take() {
            w.kill(Duration::from_secs(2));
        }
        // Unmounts, then removes the mount point.
        self.fs.take();
        self.mnt.take();
        self.loopdev.detach();
        self.daemon.take();
        self.guardian.disarm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_whole_words() {
        let r = "3,2051,7012345,-;I/O error, dev loop3, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2";
        assert!(mentions_device(r, "loop3"));
        assert!(!mentions_device(r, "loop30"));
        assert!(!mentions_device(
            "6,1,2,-;EXT4-fs (loop30): mounted",
            "loop3"
        ));
        assert!(mentions_device(
            "6,1,2,-;Aborting journal on device loop3-8.",
            "loop3"
        ));
        assert!(mentions_device(
            "2,1,2,-;EXT4-fs error (device loop3): x",
            "loop3"
        ));
    }
}
