//! One writer per database: an exclusive `flock(2)` on `PATH.lock`, beside
//! the database, held for the writer's life.
//!
//! flock belongs to the open file description, and the kernel drops it
//! when the last descriptor of that description closes — on exit, also
//! after SIGKILL. So a lock file left by a dead recorder never blocks: its
//! contents (the pid written for the message) are not trusted for the
//! decision, only the kernel's lock is.

use super::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `history.db` → `history.db.lock`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// The held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor this function borrows; no memory is
    // passed to the kernel.
    let r = unsafe { libc::flock(file.as_raw_fd(), op) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The pid a lock file names, if it names one.
fn holder_pid(file: &mut File) -> Option<i32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut s).ok()?;
    s.trim().parse().ok().filter(|p: &i32| *p > 0)
}

/// Takes the writer's lock of `db`, writing this process's pid into it.
pub(crate) fn acquire(db: &Path) -> Result<WriterLock, StoreError> {
    let path = lock_path(db);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| StoreError::Other(format!("{}: cannot open: {e}", path.display())))?;
    // A reader probing whether a recorder runs holds a shared lock for a
    // few microseconds (see `holder`): retry briefly rather than call that
    // a second recorder.
    let mut tries = 0;
    loop {
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => break,
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) && tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                return Err(StoreError::Locked {
                    path: db.to_path_buf(),
                    pid: holder_pid(&mut file),
                })
            }
            Err(e) => {
                return Err(StoreError::Other(format!(
                    "{}: cannot lock: {e}",
                    path.display()
                )))
            }
        }
    }
    let pid = std::process::id();
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{pid}"));
    written.map_err(|e| StoreError::Other(format!("{}: cannot write: {e}", path.display())))?;
    Ok(WriterLock { _file: file })
}

/// The pid of the recorder holding `db` now, if one does: a non-blocking
/// shared flock that fails means the exclusive one is held. Never creates
/// the lock file (a reader writes nothing) and releases at once.
pub(crate) fn holder(db: &Path) -> Option<i32> {
    let mut file = File::open(lock_path(db)).ok()?;
    match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            let _ = flock(&file, libc::LOCK_UN);
            None
        }
        // Held: name the holder by the pid it wrote; a holder that has not
        // written it yet is still a holder.
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
            Some(holder_pid(&mut file).unwrap_or(0))
        }
        Err(_) => None,
    }
}
