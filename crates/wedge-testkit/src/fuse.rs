//! A FUSE filesystem whose daemon can *park* requests: it keeps the reply
//! object and answers only when told. That is exactly what a hung FUSE daemon
//! looks like to the kernel: the request has been read from `/dev/fuse`
//! (`FR_SENT`), so the waiting task sits in `request_wait_answer()`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use std::fs::File;
use std::os::unix::fs::FileExt;

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, Session, SessionACL, TimeOrNow,
    WriteFlags,
};

use crate::helper::{self, Helper, TempDir, FSNAME_PREFIX};
use crate::{proc, Error, Result, SETUP_TIMEOUT};

/// Inode of the root directory.
pub const INO_ROOT: u64 = 1;
/// Inode of `ok`: answers every request.
pub const INO_OK: u64 = 2;
/// Inode of `stall`: opened with `FOPEN_DIRECT_IO`; READs park.
pub const INO_STALL: u64 = 3;
/// Inode of `stalldir`: LOOKUP and CREATE of children park.
pub const INO_STALLDIR: u64 = 4;
/// Inode of `flushstall`: FLUSH (sent by every `close()`) parks.
pub const INO_FLUSHSTALL: u64 = 5;
/// Inode of `liststall`: a directory whose READDIR parks (OPENDIR is
/// answered, so `open()` succeeds and `getdents64()` is what waits).
pub const INO_LISTSTALL: u64 = 6;
/// Inode of `disk`: a [`DISK_SIZE`] regular file backed by a sparse image in
/// the daemon, opened with `FOPEN_DIRECT_IO`; READ/WRITE follow the
/// [`DiskMode`].
pub const INO_DISK: u64 = 7;
/// Size of `disk`: room for an ext4 with a journal.
pub const DISK_SIZE: u64 = 64 << 20;

const OK_CONTENT: &[u8] = b"hello from wedge-testkit\n";
/// Size of `stall`.
pub const STALL_SIZE: u64 = 1 << 20;
const FLUSHSTALL_SIZE: u64 = 4096;
const TTL: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// Daemon side (role `wk-fused`).
// ---------------------------------------------------------------------------

enum Parked {
    Read {
        reply: ReplyData,
        offset: u64,
        size: u32,
    },
    Lookup {
        reply: ReplyEntry,
        name: OsString,
    },
    Create {
        reply: ReplyCreate,
        name: OsString,
    },
    Flush {
        reply: ReplyEmpty,
    },
    Readdir {
        reply: ReplyDirectory,
        ino: u64,
        offset: u64,
    },
    DiskRead {
        reply: ReplyData,
        offset: u64,
        size: u32,
    },
    DiskWrite {
        reply: ReplyWrite,
        offset: u64,
        data: Vec<u8>,
    },
}

/// What the daemon does with READ and WRITE of `disk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMode {
    /// Pass them through to the image (the default).
    Answer,
    /// Hold the replies, like `stall`: the loop worker waits in
    /// `request_wait_answer` for as long as the daemon keeps them.
    Park,
    /// Answer them with EIO: the loop device fails the bio
    /// (`BLK_STS_IOERR`), which the block layer logs as `I/O error`.
    Eio,
}

impl DiskMode {
    fn word(self) -> &'static str {
        match self {
            DiskMode::Answer => "answer",
            DiskMode::Park => "park",
            DiskMode::Eio => "eio",
        }
    }
}

struct State {
    parking: bool,
    disk_mode: DiskMode,
    parked: Vec<Parked>,
    /// Files created in `stalldir` once parking was turned off.
    created: HashMap<OsString, u64>,
    next_ino: u64,
}

struct Shared {
    state: Mutex<State>,
    /// The image behind `disk`: a memfd (tmpfs, so sparse: only written
    /// blocks take memory), so nothing is left on any filesystem however the
    /// daemon ends. `None` if memfd_create failed (then `disk` answers EIO).
    disk: Option<File>,
}

/// A sparse [`DISK_SIZE`] image for `disk`.
fn disk_image() -> Option<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns
    // a new fd we take ownership of (or -1).
    let fd = unsafe { libc::memfd_create(c"wk-disk".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    f.set_len(DISK_SIZE).ok()?;
    Some(f)
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn attr(ino: u64, kind: FileType, size: u64, perm: u16) -> FileAttr {
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn static_attr(ino: u64) -> Option<FileAttr> {
    Some(match ino {
        INO_ROOT => attr(ino, FileType::Directory, 0, 0o755),
        INO_OK => attr(ino, FileType::RegularFile, OK_CONTENT.len() as u64, 0o644),
        INO_STALL => attr(ino, FileType::RegularFile, STALL_SIZE, 0o644),
        INO_STALLDIR => attr(ino, FileType::Directory, 0, 0o777),
        INO_FLUSHSTALL => attr(ino, FileType::RegularFile, FLUSHSTALL_SIZE, 0o666),
        INO_LISTSTALL => attr(ino, FileType::Directory, 0, 0o755),
        INO_DISK => attr(ino, FileType::RegularFile, DISK_SIZE, 0o666),
        _ => return None,
    })
}

const ROOT_ENTRIES: [(&str, u64, FileType); 6] = [
    ("ok", INO_OK, FileType::RegularFile),
    ("stall", INO_STALL, FileType::RegularFile),
    ("stalldir", INO_STALLDIR, FileType::Directory),
    ("flushstall", INO_FLUSHSTALL, FileType::RegularFile),
    ("liststall", INO_LISTSTALL, FileType::Directory),
    ("disk", INO_DISK, FileType::RegularFile),
];

/// Print one report line for the test process (stdout is a pipe to it).
fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn report_parked(op: &str, ino: u64, req: &Request) {
    report(&format!(
        "parked op={op} ino={ino} pid={} unique={}",
        req.pid(),
        req.unique().0
    ));
}

struct StallFs {
    shared: Arc<Shared>,
}

impl StallFs {
    fn answer(disk: Option<&File>, state: &mut State, p: Parked) {
        match p {
            Parked::DiskRead {
                reply,
                offset,
                size,
            } => Self::disk_read(disk, reply, offset, size),
            Parked::DiskWrite {
                reply,
                offset,
                data,
            } => Self::disk_write(disk, reply, offset, &data),
            Parked::Read {
                reply,
                offset,
                size,
            } => {
                let len = STALL_SIZE.saturating_sub(offset).min(u64::from(size));
                reply.data(&vec![b'x'; len as usize]);
            }
            Parked::Lookup { reply, name } => match state.created.get(&name) {
                Some(&ino) => reply.entry(
                    &TTL,
                    &attr(ino, FileType::RegularFile, 0, 0o644),
                    Generation(0),
                ),
                None => reply.error(Errno::ENOENT),
            },
            Parked::Create { reply, name } => Self::create_now(state, reply, name),
            Parked::Flush { reply } => reply.ok(),
            Parked::Readdir { reply, ino, offset } => Self::list_now(state, reply, ino, offset),
        }
    }

    /// Fail a parked disk request with EIO (the `eio` mode); any other
    /// request is answered as usual.
    fn fail_eio(disk: Option<&File>, state: &mut State, p: Parked) {
        match p {
            Parked::DiskRead { reply, .. } => reply.error(Errno::EIO),
            Parked::DiskWrite { reply, .. } => reply.error(Errno::EIO),
            other => Self::answer(disk, state, other),
        }
    }

    fn disk_read(disk: Option<&File>, reply: ReplyData, offset: u64, size: u32) {
        let len = DISK_SIZE.saturating_sub(offset).min(u64::from(size)) as usize;
        let mut buf = vec![0u8; len];
        match disk.map(|f| f.read_exact_at(&mut buf, offset)) {
            Some(Ok(())) => reply.data(&buf),
            _ => reply.error(Errno::EIO),
        }
    }

    fn disk_write(disk: Option<&File>, reply: ReplyWrite, offset: u64, data: &[u8]) {
        let len = DISK_SIZE.saturating_sub(offset).min(data.len() as u64) as usize;
        if len < data.len() {
            // Past the end of the disk: a real disk fails the request too.
            return reply.error(Errno::ENOSPC);
        }
        match disk.map(|f| f.write_all_at(&data[..len], offset)) {
            Some(Ok(())) => reply.written(len as u32),
            _ => reply.error(Errno::EIO),
        }
    }

    /// A disk READ or WRITE as the current mode says: passed through,
    /// parked, or failed with EIO.
    fn disk_request(&self, req: &Request, op: &str, p: Parked) {
        let mut st = self.shared.lock();
        match st.disk_mode {
            DiskMode::Answer => Self::answer(self.shared.disk.as_ref(), &mut st, p),
            DiskMode::Eio => Self::fail_eio(self.shared.disk.as_ref(), &mut st, p),
            DiskMode::Park => {
                report_parked(op, INO_DISK, req);
                st.parked.push(p);
            }
        }
    }

    /// Answer a READDIR of `ino` from `offset` (the cookie of the last entry
    /// the kernel got: entry i carries cookie i + 1).
    fn list_now(state: &State, mut reply: ReplyDirectory, ino: u64, offset: u64) {
        let mut entries: Vec<(OsString, u64, FileType)> = vec![
            (".".into(), ino, FileType::Directory),
            ("..".into(), INO_ROOT, FileType::Directory),
        ];
        if ino == INO_ROOT {
            entries.extend(ROOT_ENTRIES.iter().map(|(n, i, k)| ((*n).into(), *i, *k)));
        } else if ino == INO_STALLDIR {
            entries.extend(
                state
                    .created
                    .iter()
                    .map(|(n, i)| (n.clone(), *i, FileType::RegularFile)),
            );
        }
        for (i, (name, ino, kind)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn create_now(state: &mut State, reply: ReplyCreate, name: OsString) {
        let ino = *state.created.entry(name).or_insert_with(|| {
            state.next_ino += 1;
            state.next_ino
        });
        reply.created(
            &TTL,
            &attr(ino, FileType::RegularFile, 0, 0o644),
            Generation(0),
            FileHandle(0),
            FopenFlags::empty(),
        );
    }
}

impl Filesystem for StallFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == INO_ROOT {
            let hit = ROOT_ENTRIES.iter().find(|(n, _, _)| OsStr::new(n) == name);
            return match hit.and_then(|(_, ino, _)| static_attr(*ino)) {
                Some(a) => reply.entry(&TTL, &a, Generation(0)),
                None => reply.error(Errno::ENOENT),
            };
        }
        if parent.0 != INO_STALLDIR {
            return reply.error(Errno::ENOENT);
        }
        let mut st = self.shared.lock();
        if st.parking {
            report_parked("LOOKUP", parent.0, req);
            st.parked.push(Parked::Lookup {
                reply,
                name: name.to_owned(),
            });
        } else {
            let name = name.to_owned();
            Self::answer(None, &mut st, Parked::Lookup { reply, name });
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match static_attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None if self.shared.lock().created.values().any(|&i| i == ino.0) => {
                reply.attr(&TTL, &attr(ino.0, FileType::RegularFile, 0, 0o644))
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Direct I/O on `stall` makes read(2) a synchronous FUSE_READ issued by
        // the reader itself (fuse_direct_read_iter -> fuse_simple_request), so
        // the reader (or io_uring worker) sleeps in request_wait_answer rather
        // than on a page lock behind an asynchronous readahead request.
        // `disk` too: a loop device on it then sends every bio to the daemon
        // as a synchronous READ/WRITE issued by its worker (loop's buffered
        // mode calls ->read_iter/->write_iter, which FOPEN_DIRECT_IO turns
        // into fuse_direct_io), with no FUSE page cache in between to
        // satisfy reads or absorb writes.
        let flags = if ino.0 == INO_STALL || ino.0 == INO_DISK {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::empty()
        };
        reply.opened(FileHandle(ino.0), flags);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match ino.0 {
            INO_OK => {
                let start = (offset as usize).min(OK_CONTENT.len());
                let end = (start + size as usize).min(OK_CONTENT.len());
                reply.data(&OK_CONTENT[start..end]);
            }
            INO_STALL => {
                let mut st = self.shared.lock();
                let p = Parked::Read {
                    reply,
                    offset,
                    size,
                };
                if st.parking {
                    report_parked("READ", ino.0, req);
                    st.parked.push(p);
                } else {
                    Self::answer(None, &mut st, p);
                }
            }
            INO_DISK => self.disk_request(
                req,
                "READ",
                Parked::DiskRead {
                    reply,
                    offset,
                    size,
                },
            ),
            INO_FLUSHSTALL => {
                let len = FLUSHSTALL_SIZE.saturating_sub(offset).min(u64::from(size));
                reply.data(&vec![0; len as usize]);
            }
            _ => reply.data(&[]),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let mut st = self.shared.lock();
        if ino.0 == INO_FLUSHSTALL && st.parking {
            report_parked("FLUSH", ino.0, req);
            st.parked.push(Parked::Flush { reply });
        } else {
            reply.ok();
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let mut st = self.shared.lock();
        let p = Parked::Readdir {
            reply,
            ino: ino.0,
            offset,
        };
        if ino.0 == INO_LISTSTALL && st.parking {
            report_parked("READDIR", ino.0, req);
            st.parked.push(p);
        } else {
            Self::answer(None, &mut st, p);
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if ino.0 != INO_DISK {
            return reply.error(Errno::EROFS);
        }
        let data = data.to_vec();
        self.disk_request(
            req,
            "WRITE",
            Parked::DiskWrite {
                reply,
                offset,
                data,
            },
        );
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // The image is memory: nothing to flush.
        reply.ok();
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Sizes are fixed; answer with the attributes as they are (the
        // kernel sends SETATTR for e.g. the mtime update of a write).
        match static_attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // A loop device's DISCARD and WRITE_ZEROES become fallocate() of the
        // backing file (punch hole / zero range): pass them to the memfd.
        let Some(disk) = self.shared.disk.as_ref().filter(|_| ino.0 == INO_DISK) else {
            return reply.error(Errno::EOPNOTSUPP);
        };
        let (Ok(off), Ok(len)) = (i64::try_from(offset), i64::try_from(length)) else {
            return reply.error(Errno::EINVAL);
        };
        // SAFETY: fallocate on a descriptor we own, plain integer arguments.
        let r = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(disk), mode, off, len) };
        if r == 0 {
            reply.ok();
        } else {
            reply.error(Errno::from(io::Error::last_os_error()));
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if parent.0 != INO_STALLDIR {
            return reply.error(Errno::EROFS);
        }
        let mut st = self.shared.lock();
        if st.parking {
            report_parked("CREATE", parent.0, req);
            st.parked.push(Parked::Create {
                reply,
                name: name.to_owned(),
            });
        } else {
            Self::create_now(&mut st, reply, name.to_owned());
        }
    }
}

/// Control loop of the daemon: one command per stdin line, acknowledged with
/// `ack <cmd>` once done. EOF (the test process died or dropped us) exits,
/// which closes `/dev/fuse` and so aborts the connection.
fn control_loop(shared: Arc<Shared>) -> ! {
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(cmd) = line else { break };
        let cmd = cmd.trim().to_string();
        let mut st = shared.lock();
        match cmd.as_str() {
            "release" | "answer" => {
                if cmd == "release" {
                    st.parking = false;
                }
                let parked = std::mem::take(&mut st.parked);
                let n = parked.len();
                for p in parked {
                    StallFs::answer(shared.disk.as_ref(), &mut st, p);
                }
                drop(st);
                report(&format!("ack {cmd} answered={n}"));
            }
            "park" => {
                st.parking = true;
                drop(st);
                report("ack park");
            }
            "disk answer" | "disk park" | "disk eio" => {
                let mode = match cmd.as_str() {
                    "disk answer" => DiskMode::Answer,
                    "disk park" => DiskMode::Park,
                    _ => DiskMode::Eio,
                };
                st.disk_mode = mode;
                // Leaving park mode settles the disk requests it held, the
                // way the new mode would have answered them.
                let (disk, other): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut st.parked)
                    .into_iter()
                    .partition(|p| matches!(p, Parked::DiskRead { .. } | Parked::DiskWrite { .. }));
                st.parked = other;
                let n = disk.len();
                let held = if mode == DiskMode::Park {
                    st.parked.extend(disk);
                    0
                } else {
                    for p in disk {
                        if mode == DiskMode::Eio {
                            StallFs::fail_eio(shared.disk.as_ref(), &mut st, p);
                        } else {
                            StallFs::answer(shared.disk.as_ref(), &mut st, p);
                        }
                    }
                    n
                };
                drop(st);
                report(&format!("ack {cmd} settled={held}"));
            }
            other => {
                drop(st);
                report(&format!("ack unknown={other}"));
            }
        }
    }
    std::process::exit(0)
}

/// Env var: when set, the daemon logs every FUSE request (fuser's `debug!`
/// output) to stderr.
pub const FUSE_LOG_ENV: &str = "WEDGE_TESTKIT_FUSE_LOG";

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!("wk-fused {}: {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

/// Body of role `wk-fused`: argv = [mountpoint, fsname].
pub(crate) fn daemon_main(args: &[OsString]) -> ! {
    if std::env::var_os(FUSE_LOG_ENV).is_some() {
        static LOGGER: StderrLogger = StderrLogger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }
    let (Some(mnt), Some(fsname)) = (args.first(), args.get(1)) else {
        report("error usage: wk-fused MOUNTPOINT FSNAME");
        std::process::exit(2);
    };
    let shared = Arc::new(Shared {
        disk: disk_image(),
        state: Mutex::new(State {
            parking: true,
            disk_mode: DiskMode::Answer,
            parked: Vec::new(),
            created: HashMap::new(),
            next_ino: 100,
        }),
    });
    let fs = StallFs {
        shared: Arc::clone(&shared),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(fsname.to_string_lossy().into_owned()),
        MountOption::Subtype("wedgekit".into()),
    ];
    // allow_other: any uid may use the mount (the daemon runs as root anyway).
    config.acl = SessionACL::All;
    let session = match Session::new(fs, Path::new(mnt), &config) {
        Ok(s) => s,
        Err(e) => {
            let kind = if e.kind() == io::ErrorKind::PermissionDenied {
                "skip"
            } else {
                "error"
            };
            report(&format!("{kind} mount: {e}"));
            std::process::exit(1);
        }
    };
    let ctl = Arc::clone(&shared);
    let _ = std::thread::Builder::new()
        .name("wk-fused-ctl".into())
        .spawn(move || control_loop(ctl));
    report("ready");
    let r = session.run();
    report(&format!("session-ended {r:?}"));
    std::process::exit(0)
}

// ---------------------------------------------------------------------------
// Test side.
// ---------------------------------------------------------------------------

/// A line of `/proc/self/mountinfo`, reduced to what the kit needs.
pub(crate) struct MountInfo {
    pub(crate) minor: u32,
    pub(crate) major: u32,
    pub(crate) mount_point: String,
    pub(crate) fstype: String,
    pub(crate) source: String,
}

/// Undo mountinfo's octal escaping of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: &u8| (b'0'..=b'7').contains(c);
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(octal) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let post: Vec<&str> = post.split(' ').collect();
    let (major, minor) = pre.get(2)?.split_once(':')?;
    Some(MountInfo {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: unescape_octal(pre.get(4)?),
        fstype: post.first()?.to_string(),
        source: unescape_octal(post.get(1)?),
    })
}

/// Make sure fusectl is mounted at `/sys/fs/fuse/connections` (it is not by
/// default on these machines); needed for `abort` and `waiting`.
pub(crate) fn ensure_fusectl() -> Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mounted = fs::read_to_string("/proc/self/mountinfo")
        .map(|s| {
            s.lines()
                .filter_map(parse_mountinfo_line)
                .any(|m| m.fstype == "fusectl")
        })
        .unwrap_or(false);
    if mounted {
        return Ok(());
    }
    rustix::mount::mount(
        "none",
        "/sys/fs/fuse/connections",
        "fusectl",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| Error::skip(format!("cannot mount fusectl: {e}")))
}

/// One request the daemon is holding unanswered, as it reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedRequest {
    /// FUSE opcode name: `READ`, `LOOKUP`, `CREATE`, `FLUSH` or `READDIR`.
    pub op: String,
    /// Inode the request is about (for LOOKUP/CREATE: the parent directory).
    pub ino: u64,
    /// `fuse_in_header.pid`: the tid of the task that issued the request, in
    /// the connection's (host) pid namespace.
    pub pid: i32,
    /// The request's `unique` id.
    pub unique: u64,
}

/// A FUSE filesystem served by a separate process (role `wk-fused`, built on
/// `fuser` with its pure-Rust mount, i.e. `mount(2)` straight from the daemon)
/// and mounted at a fresh temp dir. Contents:
///
/// | path | behaviour |
/// |---|---|
/// | `ok` | answers everything (content `hello from wedge-testkit\n`) |
/// | `stall` | 1 MiB, opened `FOPEN_DIRECT_IO`; every READ is parked |
/// | `stalldir/` | LOOKUP and CREATE of any child are parked |
/// | `flushstall` | FLUSH (sent by each `close()`, also the implicit one in `do_exit`) is parked |
/// | `liststall/` | OPENDIR is answered; every READDIR is parked |
/// | `disk` | 64 MiB image, `FOPEN_DIRECT_IO`; READ/WRITE answered, parked or failed with EIO as [`FuseDaemon::set_disk_mode`] says (answered at start) |
///
/// Parked requests are answered by [`FuseDaemon::answer_parked`] /
/// [`FuseDaemon::release`], or failed by [`FuseDaemon::abort_connection`].
///
/// Observed on 6.18 (in the daemon): the process `wk-fused` has threads
/// `wk-fused` (main, `S` in `futex_do_wait`, joining), `fuser-0` (`S`,
/// wchan `fuse_dev_do_read`, stack `fuse_dev_do_read, fuse_dev_read,
/// vfs_read, ksys_read, ...`) and `wk-fused-ctl` (`S`, wchan
/// `anon_pipe_read`). With nothing parked fusectl `waiting` is `0`; each
/// parked request counts 1. The connection number is the mount's minor
/// (e.g. `40`); fusectl is mounted on demand.
///
/// Caveat: `fuser` answers `FUSE_INTERRUPT` with ENOSYS, which makes the kernel
/// set `fc->no_interrupt` on the connection. So once any waiter on this
/// connection has been signalled, *later* requests skip the interruptible phase
/// of `request_wait_answer()` and sleep killable (`D`) from the start. Use a
/// fresh `FuseDaemon` per scenario when the initial state matters.
///
/// Drop aborts the connection (fusectl `abort`), lazily unmounts
/// (`MNT_DETACH`), SIGKILLs and reaps the daemon and removes the temp dir.
#[derive(Debug)]
pub struct FuseDaemon {
    helper: Helper,
    dir: TempDir,
    conn: u32,
    mount_id: u64,
    /// Serialises commands so each waits for its own `ack`.
    cmd_lock: Mutex<()>,
}

impl FuseDaemon {
    /// Mount a fresh filesystem and wait until the daemon serves it.
    pub fn start() -> Result<FuseDaemon> {
        crate::require_root()?;
        if !Path::new("/dev/fuse").exists() {
            return Err(Error::skip("no /dev/fuse"));
        }
        ensure_fusectl()?;
        let dir = TempDir::new("fuse")?;
        let fsname = format!("{FSNAME_PREFIX}{}", std::process::id());
        let helper = Helper::spawn(
            "wk-fused",
            &[dir.path().as_os_str().to_owned(), fsname.into()],
        )?;
        helper.wait_line("ready", SETUP_TIMEOUT)?;
        let mp = dir.path().to_string_lossy().into_owned();
        let m = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .filter_map(parse_mountinfo_line)
                    .rfind(|m| m.mount_point == mp && m.fstype.starts_with("fuse"))
            })
            .ok_or_else(|| Error::setup(format!("mount at {mp} not in mountinfo")))?;
        // fusectl names a connection after the superblock's dev_t in the
        // kernel's internal encoding (major << 20 | minor); FUSE mounts use
        // anonymous devices (major 0), so this is the minor.
        let conn = (m.major << 20) | m.minor;
        let mount_id = helper::register_mount(dir.path(), Some(conn));
        let d = FuseDaemon {
            helper,
            dir,
            conn,
            mount_id,
            cmd_lock: Mutex::new(()),
        };
        // Prove the daemon answers before handing the mount out. The probe
        // runs on its own thread so a broken daemon costs a bounded wait (our
        // Drop aborts the connection, which frees the probe thread).
        let probe = d.path("ok");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(fs::metadata(probe).map(|m| m.len()));
        });
        match rx.recv_timeout(SETUP_TIMEOUT) {
            Ok(Ok(len)) if len == OK_CONTENT.len() as u64 => {}
            other => return Err(Error::setup(format!("daemon does not answer: {other:?}"))),
        }
        if !d.conn_dir().exists() {
            return Err(Error::setup(format!("fusectl has no {:?}", d.conn_dir())));
        }
        Ok(d)
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        self.dir.path()
    }

    /// `mountpoint/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The FUSE connection number (directory name under
    /// `/sys/fs/fuse/connections`).
    pub fn conn(&self) -> u32 {
        self.conn
    }

    /// `/sys/fs/fuse/connections/<conn>`.
    pub fn conn_dir(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/fuse/connections/{}", self.conn))
    }

    /// Pid of the daemon process (`wk-fused`).
    pub fn daemon_pid(&self) -> i32 {
        self.helper.pid()
    }

    /// fusectl `waiting`: requests sent to or queued for the daemon and not
    /// yet answered.
    pub fn waiting(&self) -> Option<u32> {
        fs::read_to_string(self.conn_dir().join("waiting"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn command(&self, cmd: &str) -> Result<()> {
        let _g = self.cmd_lock.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.helper.lines().len();
        self.helper.send(cmd)?;
        let want = format!("ack {cmd}");
        self.helper
            .wait_line_from(before, SETUP_TIMEOUT, &want, |l| l.starts_with(&want))
            .map(|_| ())
    }

    /// Answer every parked request and stop parking (later requests are
    /// answered at once). READs get `x` bytes, LOOKUPs ENOENT, CREATEs create,
    /// READDIRs list `.` and `..`.
    pub fn release(&self) -> Result<()> {
        self.command("release")
    }

    /// Answer every request parked so far but keep parking new ones.
    pub fn answer_parked(&self) -> Result<()> {
        self.command("answer")
    }

    /// Start parking again after [`FuseDaemon::release`].
    pub fn park(&self) -> Result<()> {
        self.command("park")
    }

    /// Switch what the daemon does with READ/WRITE of `disk`. Leaving
    /// [`DiskMode::Park`] settles the requests it held the way the new mode
    /// answers (passed through, or EIO).
    pub fn set_disk_mode(&self, mode: DiskMode) -> Result<()> {
        self.command(&format!("disk {}", mode.word()))
    }

    /// Abort the connection through fusectl: every waiter gets ECONNABORTED
    /// and the mount is dead (`ENOTCONN`) from then on.
    pub fn abort_connection(&self) -> io::Result<()> {
        helper::abort_conn(self.conn)
    }

    /// Requests the daemon reported as parked (since it started; answered ones
    /// included).
    pub fn parked(&self) -> Vec<ParkedRequest> {
        self.helper
            .lines()
            .iter()
            .filter_map(|l| parse_parked(l))
            .collect()
    }

    /// Wait until the daemon reports a parked `op` issued by task `tid` (any
    /// task when `None`).
    pub fn wait_parked(
        &self,
        op: &str,
        tid: Option<i32>,
        timeout: Duration,
    ) -> Result<ParkedRequest> {
        self.wait_parked_any(&[op], tid, timeout)
    }

    /// Like [`FuseDaemon::wait_parked`] for any of `ops`.
    pub fn wait_parked_any(
        &self,
        ops: &[&str],
        tid: Option<i32>,
        timeout: Duration,
    ) -> Result<ParkedRequest> {
        self.wait_parked_by(&ops.join("|"), timeout, |p| {
            ops.contains(&p.op.as_str()) && tid.is_none_or(|t| t == p.pid)
        })
    }

    /// Wait until the daemon reports a parked request satisfying `pred`.
    pub fn wait_parked_by(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ParkedRequest) -> bool,
    ) -> Result<ParkedRequest> {
        let line = self
            .helper
            .wait_line_by(timeout, &format!("parked {what}"), |l| {
                parse_parked(l).is_some_and(|p| pred(&p))
            })?;
        parse_parked(&line).ok_or_else(|| Error::setup("unparsable parked line"))
    }

    /// Unblock `tids` (already SIGKILLed by the caller) for teardown: answer
    /// whatever is parked, repeatedly, until they are gone or dead; abort the
    /// connection as a last resort. Returns true if they all went away.
    pub(crate) fn unstick(&self, tids: &[i32], timeout: Duration) -> bool {
        let gone = |tids: &[i32]| {
            tids.iter()
                .all(|&t| matches!(proc::state_of(t), None | Some('Z') | Some('X')))
        };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if gone(tids) {
                return true;
            }
            if self.answer_parked().is_err() {
                break;
            }
            crate::wait_until(Duration::from_millis(100), || gone(tids));
        }
        if gone(tids) {
            return true;
        }
        let _ = self.abort_connection();
        crate::wait_until(Duration::from_secs(1), || gone(tids))
    }
}

fn parse_parked(line: &str) -> Option<ParkedRequest> {
    let rest = line.strip_prefix("parked ")?;
    let kv = helper::parse_kv(rest);
    Some(ParkedRequest {
        op: kv.get("op")?.clone(),
        ino: kv.get("ino")?.parse().ok()?,
        pid: kv.get("pid")?.parse().ok()?,
        unique: kv.get("unique")?.parse().ok()?,
    })
}

impl Drop for FuseDaemon {
    fn drop(&mut self) {
        let _ = self.abort_connection();
        let _ = helper::detach(self.dir.path());
        helper::unregister_mount(self.mount_id);
        self.helper.close_stdin();
        self.helper.kill(Duration::from_secs(2));
        // TempDir's own Drop removes the (now unmounted, empty) directory.
    }
}

/// Mount points of FUSE mounts made by *this* process's kit that are still
/// mounted (for leftover checks; other processes' kit mounts are ignored).
pub fn kit_mounts() -> Vec<String> {
    let mine = format!("{FSNAME_PREFIX}{}", std::process::id());
    fs::read_to_string("/proc/self/mountinfo")
        .map(|s| {
            s.lines()
                .filter_map(parse_mountinfo_line)
                .filter(|m| m.source == mine)
                .map(|m| m.mount_point)
                .collect()
        })
        .unwrap_or_default()
}
