//! Small typed errors. Every error that reaches a user names the file.

use std::fmt;
use std::path::PathBuf;

/// A structural defect in input data (what is wrong, not where).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl Malformed {
    pub fn new(what: impl Into<String>) -> Self {
        Malformed(what.into())
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a core file could not be read at all. Anything less than this is a
/// partial result with a `missing` entry instead.
#[derive(Debug)]
pub enum CoreError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    NotElf {
        path: PathBuf,
    },
    NotCore {
        path: PathBuf,
        e_type: u16,
    },
    Unsupported {
        path: PathBuf,
        what: String,
    },
    Malformed {
        path: PathBuf,
        what: Malformed,
    },
    Decompress {
        path: PathBuf,
        format: &'static str,
        what: String,
    },
    /// The input could not be opened or read as a file (a FIFO, a device,
    /// a directory, a file system that does not answer...).
    Input {
        path: PathBuf,
        what: String,
    },
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CoreError::NotElf { path } => write!(
                f,
                "{}: not an ELF file (nor a gzip, zstd, xz or lz4 compressed one)",
                path.display()
            ),
            CoreError::NotCore { path, e_type } => write!(
                f,
                "{}: an ELF file but not a core (e_type {e_type}{})",
                path.display(),
                match e_type {
                    1 => ", a relocatable object",
                    2 => ", an executable",
                    3 => ", a shared object or PIE",
                    _ => "",
                }
            ),
            CoreError::Unsupported { path, what } => write!(f, "{}: {what}", path.display()),
            CoreError::Malformed { path, what } => {
                write!(f, "{}: malformed core: {what}", path.display())
            }
            CoreError::Decompress { path, format, what } => {
                write!(f, "{}: cannot decompress {format}: {what}", path.display())
            }
            CoreError::Input { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for CoreError {}

/// Why a live backtrace could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveError {
    /// The caller knows the target's mmap_lock is held: a read would block.
    MmapLockHeld,
    /// The reader did not finish before the deadline and was abandoned.
    TimedOut,
    /// The kernel refused (`errno`), e.g. EPERM without CAP_SYS_PTRACE,
    /// ESRCH when the task is gone.
    Os(i32),
    /// The process runs an architecture wedge cannot unwind.
    Unsupported(String),
    /// The sacrificial reader could not be started.
    Broken(String),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::MmapLockHeld => f.write_str(
                "skipped: its mmap_lock is held, so reading its memory would block",
            ),
            LiveError::TimedOut => f.write_str(
                "reading its memory did not finish in time (mmap_lock contended?); reader abandoned",
            ),
            LiveError::Os(e) => write!(
                f,
                "reading its memory failed: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
            LiveError::Unsupported(s) => f.write_str(s),
            LiveError::Broken(s) => write!(f, "memory reader failed: {s}"),
        }
    }
}

impl std::error::Error for LiveError {}
