//! Opening the files a user names on the command line — kernel logs, core
//! files, crash dumps — so that no input can hang wedge or eat the machine.
//!
//! * The open is non-blocking (`O_NONBLOCK`): opening a FIFO for reading
//!   otherwise sleeps in `wait_for_partner` (fs/pipe.c `fifo_open`) until a
//!   writer comes, forever if none does. The type is then checked on the
//!   open descriptor (`fstat`, so a rename in between cannot swap it):
//!   FIFOs, sockets and devices are refused, because `/dev/zero` or
//!   `/dev/urandom` never end. Standard input (`-`) is how a user asks for a
//!   pipe or a device on purpose.
//! * The open runs in a forked child with a deadline, and so does every
//!   read of a file on FUSE, NFS, CIFS and the like: there the open and the
//!   reads are requests to a server that may never answer, and a FUSE
//!   request the daemon has taken cannot be interrupted even by SIGKILL
//!   (`request_wait_answer` in fs/fuse/dev.c), so a thread of wedge stuck
//!   there would keep wedge from ever exiting. A child that overruns is
//!   killed and left to the kernel (see `child`).
//! * Everything read is capped ([`Limits::max_bytes`]), decompressed output
//!   too: a 1 KB zstd frame may claim terabytes.
//! * Compression is recognised by magic bytes, never by name: gzip, zstd
//!   (libzstd: frame checksum and content size verified where the frame
//!   carries them), xz (liblzma: block checks verified) and lz4. Every
//!   decoder streams: what was decoded before damage or a cut is kept.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

mod child;
mod zstd;

pub use zstd::zstd_decompress_into;

/// How much wedge reads from one input and how long it waits for it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// At most this many bytes (after decompression) are read from one
    /// input; what is past it is reported, never silently dropped.
    pub max_bytes: u64,
    /// An open, or one chunk of a read, taking longer than this is given up
    /// (a file system whose server does not answer).
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: default_max_bytes(),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// Half of the memory available now (`MemAvailable`, the kernel's own
/// estimate of what can be allocated without swapping), at most 16 GiB; 2
/// GiB when /proc/meminfo cannot be read. A decompressed core is held in
/// memory, so more than this would push the machine into swap or the OOM
/// killer — the opposite of what a diagnostic tool may do.
pub fn default_max_bytes() -> u64 {
    const CEILING: u64 = 16 << 30;
    let avail = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    match avail {
        Some(kb) => (kb.saturating_mul(1024) / 2).clamp(64 << 20, CEILING),
        None => 2 << 30,
    }
}

/// A compression format, recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Xz,
    Lz4,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        }
    }

    /// The format whose magic `head` starts with (6 bytes are enough).
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Compression::Lz4)
        } else {
            None
        }
    }
}

/// Why an input could not be read at all; `Display` names the path.
#[derive(Debug)]
pub struct InputError {
    pub path: PathBuf,
    pub what: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for InputError {}

/// An input opened and checked, not yet read.
pub struct Input {
    path: PathBuf,
    file: File,
    stdin: bool,
    regular: bool,
    /// The file's size when it is a regular file.
    len: u64,
    /// The file system's name when it is served over a network or by a
    /// user-space daemon (reads may never return).
    remote: Option<&'static str>,
    limits: Limits,
}

/// Whole input bytes: mapped for a plain local file, else owned. Also the
/// backing of the workspace's other mapped-or-owned buffers (debuginfo
/// files, a core's binaries, a section relocated into memory).
#[derive(Debug)]
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// The content of an input, read whole.
pub struct Loaded {
    pub bytes: Bytes,
    pub compression: Option<Compression>,
    /// Why the content is incomplete, when it is: a stream that broke off
    /// or failed its checksum, or the size cap. The bytes up to there are
    /// kept (a core's notes come first and usually survive).
    pub damage: Option<String>,
}

/// The file systems whose reads are answered by a server or a user-space
/// daemon, by `f_type` (include/uapi/linux/magic.h).
fn remote_fs(f_type: u64) -> Option<&'static str> {
    match f_type {
        0x6573_5546 => Some("FUSE"),
        0x6969 => Some("NFS"),
        0xff53_4d42 => Some("CIFS"),
        0xfe53_4d42 => Some("SMB2"),
        0x0102_1997 => Some("9p"),
        0x00c3_6400 => Some("Ceph"),
        0x6165_6673 => Some("AFS"),
        0x564c => Some("NCP"),
        _ => None,
    }
}

/// fstat and fstatfs of standard input, made by wedge itself: the user
/// chose it, and it is a pipe or a terminal far more often than a file.
fn stat_fd(fd: i32) -> io::Result<(u32, u64, u64)> {
    // SAFETY: stat and statfs are plain old data; the calls fill them or
    // fail, on an fd open for the duration of the calls.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fs: libc::statfs = std::mem::zeroed();
        let fs_type = if libc::fstatfs(fd, &mut fs) == 0 {
            fs.f_type as u32 as u64
        } else {
            0
        };
        Ok((st.st_mode, st.st_size as u64, fs_type))
    }
}

fn mode_type(mode: u32) -> Option<&'static str> {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => Some("a FIFO (named pipe)"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFLNK => Some("a symbolic link"),
        _ => None,
    }
}

/// Opens `path` (or standard input for `-`) without blocking, within the
/// deadline, and checks that it is a regular file (anything for `-`).
pub fn open(path: &Path, limits: &Limits) -> Result<Input, InputError> {
    let err = |what: String| InputError {
        path: path.to_path_buf(),
        what,
    };
    let (file, stdin, mode, size, fs_type) = if path.as_os_str() == "-" {
        // SAFETY: dup of fd 0 has no memory-safety preconditions.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return Err(err(format!(
                "standard input: {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: fd was just returned by fcntl and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let (mode, size, fs_type) = stat_fd(fd).map_err(|e| err(e.to_string()))?;
        (file, true, mode, size, fs_type)
    } else {
        let o = child::open(path, limits.io_timeout).map_err(err)?;
        (o.file, false, o.mode, o.size, o.fs_type)
    };
    let regular = mode & libc::S_IFMT == libc::S_IFREG;
    if !regular && !stdin {
        let kind = mode_type(mode).unwrap_or("not a regular file");
        let hint = if mode & libc::S_IFMT == libc::S_IFDIR {
            String::new()
        } else {
            format!(
                " (reading it could block or never end; to read it anyway, give it on standard input: `- < {}`)",
                path.display()
            )
        };
        return Err(err(format!("is {kind}, not a regular file{hint}")));
    }
    if regular && !stdin {
        // The open was non-blocking only to get past a FIFO; regular files
        // ignore O_NONBLOCK on local file systems, but FUSE passes the flag
        // to its daemon, so clear it.
        // SAFETY: F_GETFL/F_SETFL on an fd we own.
        unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
    }
    let remote = remote_fs(fs_type);
    Ok(Input {
        path: path.to_path_buf(),
        len: if regular { size } else { 0 },
        file,
        stdin,
        regular,
        remote,
        limits: limits.clone(),
    })
}

impl Input {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of a regular file (0 for a stream).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.regular && self.len == 0
    }

    /// The file itself, for random access (crash dumps are read with
    /// pread). Only a regular file can be read so; standard input must be
    /// redirected from one.
    pub fn into_file(self) -> Result<(File, u64), InputError> {
        if !self.regular {
            return Err(InputError {
                path: self.path,
                what: "standard input is not a regular file: a crash dump is read at random offsets, so give it as a file (or `- < FILE`)".into(),
            });
        }
        Ok((self.file, self.len))
    }

    /// The file for random access (crash dumps are read with pread at
    /// scattered offsets), every read bounded by the deadline when the file
    /// system may never answer. Only a regular file can be read so.
    pub fn into_random_access(self) -> Result<RandomAccess, InputError> {
        let timeout = self.limits.io_timeout;
        let remote = self.remote.is_some();
        let path = self.path.clone();
        let (file, len) = self.into_file()?;
        RandomAccess::new(file, len, remote.then_some(timeout)).map_err(|e| InputError {
            path,
            what: format!("cannot start a reader: {e}"),
        })
    }

    /// Where a read of this input may never return, the name of the file
    /// system that makes it so.
    pub fn remote(&self) -> Option<&'static str> {
        self.remote
    }

    fn chunks(
        self,
        skip_holes: bool,
    ) -> Result<(Box<dyn Read + Send>, PathBuf, Limits), InputError> {
        let timeout = self.limits.io_timeout;
        let r: Box<dyn Read + Send> = if self.remote.is_some() {
            // A read there may never return, even to SIGKILL: a child
            // makes it (see `child`).
            Box::new(
                child::stream(&self.file, timeout, skip_holes).map_err(|e| InputError {
                    path: self.path.clone(),
                    what: format!("cannot start a reader: {e}"),
                })?,
            )
        } else {
            // Standard input is fed by the user, who may pause for as long
            // as they like: no deadline there.
            Box::new(ChunkReader::start(
                self.file,
                (!self.stdin).then_some(timeout),
                skip_holes,
            ))
        };
        Ok((r, self.path, self.limits))
    }

    /// The input as a stream, decompressed by magic, capped at
    /// [`Limits::max_bytes`] (reading past the cap is an error that says
    /// so). Every read has the deadline; memory stays bounded whatever the
    /// size (logs can be huge).
    pub fn stream(self) -> Result<(Box<dyn Read + Send>, Option<Compression>), InputError> {
        // Holes of a plain (uncompressed) regular file are skipped: they
        // read as zeros, which are no text, and a log truncated under a
        // writer that keeps its offset (logrotate's copytruncate) starts
        // with one as large as the log was. A sparse file claiming a
        // terabyte then costs what is on disk. A compressed stream must
        // be read whole: its offsets matter.
        // (Not on a remote file system: the look at the head would be a
        // read in wedge itself, which may never return.)
        let plain = self.regular && !self.stdin && self.remote.is_none() && {
            let mut head = [0u8; 6];
            read_full_at(&self.file, &mut head)
                .is_ok_and(|n| Compression::sniff(&head[..n]).is_none())
        };
        let (chunks, path, limits) = self.chunks(plain)?;
        decode(BufReader::with_capacity(CHUNK, chunks), limits.max_bytes).map_err(|e| InputError {
            path: path.clone(),
            what: e.to_string(),
        })
    }

    /// The whole input: mapped when it is a plain regular file on a local
    /// file system, else read (and decompressed) into memory up to
    /// [`Limits::max_bytes`]. A stream that breaks off keeps what came out
    /// before, with `damage` saying why.
    pub fn load(self) -> Result<Loaded, InputError> {
        let path = self.path.clone();
        let err = |what: String| InputError {
            path: path.clone(),
            what,
        };
        if self.regular && self.remote.is_none() && self.len > 0 {
            let mut head = [0u8; 6];
            let n = read_full_at(&self.file, &mut head).map_err(|e| err(e.to_string()))?;
            if Compression::sniff(&head[..n]).is_none() {
                // SAFETY: the mapping is read-only and private. A file
                // truncated under wedge while mapped faults (SIGBUS); input
                // files are written once and left alone.
                let map =
                    unsafe { memmap2::Mmap::map(&self.file) }.map_err(|e| err(e.to_string()))?;
                return Ok(Loaded {
                    bytes: Bytes::Mapped(map),
                    compression: None,
                    damage: None,
                });
            }
        }
        let max = self.limits.max_bytes;
        let (mut r, compression) = self.stream()?;
        let mut out = Vec::new();
        let damage = match read_to_end_capped(&mut r, &mut out, max) {
            Ok(false) => None,
            Ok(true) => Some(format!(
                "only the first {max} bytes were read: the input is larger than wedge holds in memory (half of the available memory, at most 16 GiB)"
            )),
            Err(e) => match compression {
                Some(c) => Some(format!(
                    "the {} stream broke off after {} decompressed bytes: {e}",
                    c.name(),
                    out.len()
                )),
                None => Some(format!("reading stopped after {} bytes: {e}", out.len())),
            },
        };
        Ok(Loaded {
            bytes: Bytes::Owned(out),
            compression,
            damage,
        })
    }
}

/// Bytes as wedge reads them: decompressed by the magic at their start
/// (gzip, zstd, xz, lz4; anything else passed through), and capped at
/// `max_bytes` of output (reading past the cap is an error that says so).
/// The one decoder of every input, and what the `input` fuzz target feeds.
pub fn decode<R: BufRead + Send + 'static>(
    mut raw: R,
    max_bytes: u64,
) -> io::Result<(Box<dyn Read + Send>, Option<Compression>)> {
    let head = peek(&mut raw, 6)?;
    let compression = Compression::sniff(&head);
    let inner: Box<dyn Read + Send> = match compression {
        None => Box::new(raw),
        Some(Compression::Gzip) => {
            Box::new(Worded(flate2::bufread::MultiGzDecoder::new(raw), "gzip"))
        }
        Some(Compression::Zstd) => Box::new(zstd::Frames::new(raw)),
        Some(Compression::Xz) => Box::new(Xz::new(raw)),
        Some(Compression::Lz4) => Box::new(Worded(lz4_flex::frame::FrameDecoder::new(raw), "lz4")),
    };
    Ok((
        Box::new(Capped {
            inner,
            left: max_bytes,
            max: max_bytes,
        }),
        compression,
    ))
}

fn read_full_at(f: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A regular file read at offsets. On a local file system a read is a
/// plain pread(2); on FUSE, NFS and the like it runs on a worker thread and
/// is given up after the deadline (after which every read fails at once:
/// the worker is stuck in the file system, and a second one would be too).
pub struct RandomAccess {
    file: File,
    len: u64,
    server: Option<std::sync::Mutex<(child::PreadServer, bool)>>,
    timeout: Duration,
}

fn pread_full(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl RandomAccess {
    fn new(file: File, len: u64, timeout: Option<Duration>) -> io::Result<RandomAccess> {
        let server = match timeout {
            Some(_) => Some(std::sync::Mutex::new((child::pread_server(&file)?, false))),
            None => None,
        };
        Ok(RandomAccess {
            file,
            len,
            server,
            timeout: timeout.unwrap_or_default(),
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads up to `buf.len()` bytes at `off` (fewer only at EOF), like
    /// `FileExt::read_at` but retrying short reads.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let Some(server) = &self.server else {
            return pread_full(&self.file, buf, off);
        };
        let mut guard = server
            .lock()
            .map_err(|_| io::Error::other("reader poisoned"))?;
        let (srv, stuck) = &mut *guard;
        let gave_up = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "a read did not finish in {} s: its file system does not answer (a stuck FUSE daemon or NFS server?)",
                    self.timeout.as_secs()
                ),
            )
        };
        if *stuck {
            return Err(gave_up());
        }
        let mut done = 0;
        while done < buf.len() {
            match srv.pread(&mut buf[done..], off + done as u64, self.timeout) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Some(e)) => return Err(e),
                Err(None) => {
                    // The child is stuck in the file system; a second one
                    // would be too: every later read fails at once.
                    *stuck = true;
                    return Err(gave_up());
                }
            }
        }
        Ok(done)
    }
}

/// Moves a file's offset past a hole to the next byte on disk (SEEK_DATA,
/// Linux 3.1); `false` when there is no data past it (EOF). File systems
/// without hole support report the whole file as data, so this never skips
/// a real byte.
fn seek_data(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: lseek on an open fd has no memory-safety preconditions.
    let cur = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    if cur < 0 {
        return true;
    }
    // SAFETY: as above.
    if unsafe { libc::lseek(fd, cur, libc::SEEK_DATA) } >= 0 {
        return true;
    }
    if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
        return false;
    }
    // EINVAL and the like: no hole support here; back to where we were.
    // SAFETY: as above.
    unsafe { libc::lseek(fd, cur, libc::SEEK_SET) };
    true
}

/// Reads into `out` until EOF or `max` bytes; `true` when more was there.
fn read_to_end_capped(r: &mut dyn Read, out: &mut Vec<u8>, max: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_cap(&e) => return Ok(true),
            Err(e) => return Err(e),
        };
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 >= max {
            out.truncate(max as usize);
            return Ok(true);
        }
    }
}

/// Looks at the first `n` bytes of a buffered stream without consuming
/// them (fewer at EOF).
fn peek<R: BufRead>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    // The reader thread hands over whole chunks, so one fill_buf almost
    // always holds the magic; a stream that trickles (a pipe on stdin) is
    // judged on what came first, which is what `file(1)` would do too.
    let b = r.fill_buf()?;
    Ok(b[..b.len().min(n)].to_vec())
}

const CHUNK: usize = 256 * 1024;

/// Reads a file in chunks on a thread and hands them over with a
/// deadline, so that no read of a user-given file can block wedge: a read
/// on FUSE waits for a daemon that may never answer.
struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    timeout: Option<Duration>,
    done: bool,
}

impl ChunkReader {
    fn start(mut file: File, timeout: Option<Duration>, skip_holes: bool) -> ChunkReader {
        // Two chunks in flight at most: bounded memory, some read-ahead.
        let (tx, rx) = mpsc::sync_channel(2);
        let spawned = std::thread::Builder::new()
            .name("wedge-read".into())
            .spawn({
                let tx = tx.clone();
                move || loop {
                    if skip_holes && !seek_data(&file) {
                        break;
                    }
                    let mut buf = vec![0u8; CHUNK];
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Ok(buf)).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            let _ = tx.send(Err(io::Error::other(format!(
                "cannot start a reader thread: {e}"
            ))));
        }
        drop(tx);
        ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            timeout,
            done: false,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            let got = match self.timeout {
                Some(t) => self.rx.recv_timeout(t).map_err(|e| match e {
                    mpsc::RecvTimeoutError::Timeout => Some(t),
                    mpsc::RecvTimeoutError::Disconnected => None,
                }),
                None => self.rx.recv().map_err(|_| None),
            };
            match got {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(None) => {
                    self.done = true;
                    return Ok(0);
                }
                Err(Some(t)) => {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "a read did not finish in {} s: its file system does not answer (a stuck FUSE daemon or NFS server?)",
                            t.as_secs()
                        ),
                    ));
                }
            }
        }
        let n = (self.cur.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The marker of the size cap's error, so `load` can tell it apart.
#[derive(Debug)]
struct CapReached(u64);

impl std::fmt::Display for CapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "more than {} bytes (after decompression): wedge stops there rather than fill the machine's memory or run forever",
            self.0
        )
    }
}

impl std::error::Error for CapReached {}

fn is_cap(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<CapReached>())
}

/// Fails once more than `max` bytes came through.
struct Capped {
    inner: Box<dyn Read + Send>,
    left: u64,
    max: u64,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly max" from "more than max".
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(io::Error::other(CapReached(self.max))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Prefixes a decompressor's errors with its format, in words.
struct Worded<R>(R, &'static str);

impl<R: Read> Read for Worded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut || is_cap(&e) {
                return e;
            }
            let words = if e.kind() == io::ErrorKind::UnexpectedEof {
                "the compressed data ends early (a truncated file?)".to_string()
            } else if let Some(l) = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<lz4_flex::frame::Error>())
            {
                lz4_words(l).to_string()
            } else if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            ) {
                // flate2's own errors ("corrupt deflate stream", a CRC32
                // or ISIZE mismatch in the trailer); an I/O error of the
                // file passes through with its own kind.
                format!("the compressed data is damaged ({e})")
            } else {
                e.to_string()
            };
            io::Error::new(e.kind(), format!("{}: {words}", self.1))
        })
    }
}

/// lz4_flex's errors in words: their `Display` is their `Debug`
/// (`DecompressionError(OffsetOutOfBounds)`).
fn lz4_words(e: &lz4_flex::frame::Error) -> &'static str {
    use lz4_flex::frame::Error as L;
    match e {
        L::BlockChecksumError | L::ContentChecksumError | L::HeaderChecksumError => {
            "a checksum does not match: the file is damaged"
        }
        L::ContentLengthError { .. } => {
            "the data decodes to another size than its header says: the file is damaged"
        }
        L::WrongMagicNumber => {
            "not an lz4 frame where one was expected (trailing garbage or damage)"
        }
        L::UnsupportedBlocksize(_)
        | L::UnsupportedVersion(_)
        | L::ReservedBitsSet
        | L::InvalidBlockInfo
        | L::BlockTooBig => "a frame or block header is invalid: the file is damaged",
        L::DictionaryNotSupported => "the frame needs a dictionary wedge does not have",
        _ => "the compressed data is damaged (a block does not decode)",
    }
}

/// What liblzma may allocate for one .xz stream. The LZMA2 decoder's
/// memory is about its dictionary size, which the stream header sets:
/// xz(1)'s presets use at most 64 MiB (-9), but a crafted header may ask
/// for up to 4 GiB. 256 MiB covers every preset with room to spare.
const XZ_MEMLIMIT: u64 = 256 << 20;

/// xz through liblzma's stream decoder, which (unlike a decoder that
/// keeps the dictionary to itself until the end) gives out what it has
/// decoded on every call: a truncated .xz log keeps the events before the
/// cut. It verifies each block's integrity check (CRC32/CRC64/SHA-256)
/// and the index itself. Concatenated streams (`cat a.xz b.xz`) are read
/// one after another, as xz(1) does.
struct Xz<R> {
    src: R,
    dec: Option<liblzma::stream::Stream>,
    /// Calls in a row that neither took input nor gave output.
    stalled: u8,
    done: bool,
    failed: bool,
}

impl<R: BufRead> Xz<R> {
    fn new(src: R) -> Self {
        Xz {
            src,
            dec: None,
            stalled: 0,
            done: false,
            failed: false,
        }
    }

    fn bad(&mut self, what: &str) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, format!("xz: {what}"))
    }
}

impl<R: BufRead> Read for Xz<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use liblzma::stream::{Action, Error as X, Status, Stream, CONCATENATED};
        if self.done || self.failed || buf.is_empty() {
            return Ok(0);
        }
        if self.dec.is_none() {
            match Stream::new_stream_decoder(XZ_MEMLIMIT, CONCATENATED) {
                Ok(d) => self.dec = Some(d),
                Err(_) => return Err(self.bad("cannot set up a decoder (out of memory?)")),
            }
        }
        loop {
            let input = self.src.fill_buf()?;
            let eof = input.is_empty();
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let (in0, out0) = (dec.total_in(), dec.total_out());
            // With CONCATENATED, only Finish tells liblzma the input has
            // ended (another stream could follow otherwise).
            let action = if eof { Action::Finish } else { Action::Run };
            let r = dec.process(input, buf, action);
            let used = (dec.total_in() - in0) as usize;
            let made = (dec.total_out() - out0) as usize;
            self.src.consume(used);
            let what = match r {
                Ok(Status::StreamEnd) => {
                    self.done = true;
                    return Ok(made);
                }
                Ok(_) if made > 0 => {
                    self.stalled = 0;
                    return Ok(made);
                }
                Ok(_) if eof => {
                    "the compressed data ends early (a truncated file?)"
                }
                // Input taken into liblzma's buffers, nothing out yet.
                Ok(_) if used > 0 => {
                    self.stalled = 0;
                    continue;
                }
                // liblzma may return one call with no progress before it
                // says so (LZMA_BUF_ERROR); more must not spin wedge.
                Ok(_) if self.stalled < 2 => {
                    self.stalled += 1;
                    continue;
                }
                Ok(_) => "the decoder makes no progress (damaged data?)",
                Err(X::Data) => {
                    "the compressed data is damaged (a block does not decode or fails its integrity check)"
                }
                Err(X::Format) => "not an xz stream where one was expected (trailing garbage or damage)",
                Err(X::Options) => "the stream header asks for options liblzma does not support (damaged data?)",
                Err(X::MemLimit) | Err(X::Mem) => {
                    "the stream asks for more than the 256 MiB of decoder memory wedge allows (damaged data?)"
                }
                Err(X::UnsupportedCheck) | Err(X::NoCheck) => {
                    "the stream's integrity check type is not supported (damaged data?)"
                }
                Err(X::Program) => "the compressed data is damaged or cut short",
            };
            return Err(self.bad(what));
        }
    }
}

#[cfg(test)]
mod tests;
