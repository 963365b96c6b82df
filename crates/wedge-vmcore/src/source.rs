//! Byte sources a dump is read from: a plain file, or makedumpfile's
//! "flattened" stream (what `makedumpfile -F` and QEMU before 8.2 write for
//! kdump-compressed dumps), rebuilt into a seekable view without copying.

use crate::error::{Error, Result};

/// Random access to the bytes of a dump file.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `off`; returns how many were read
    /// (fewer only at the end of the data).
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize>;
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `buf.len()` bytes or fails with `Truncated`.
    fn read_exact_at(&self, off: u64, buf: &mut [u8], what: &'static str) -> Result<()> {
        let n = self.read_at(off, buf)?;
        if n < buf.len() {
            return Err(Error::Truncated {
                what,
                offset: off,
                needed: (buf.len() - n) as u64,
            });
        }
        Ok(())
    }

    fn read_vec(&self, off: u64, len: usize, what: &'static str) -> Result<Vec<u8>> {
        // Refuse sizes the file cannot hold before allocating them.
        if off.saturating_add(len as u64) > self.len() {
            return Err(Error::Truncated {
                what,
                offset: off,
                needed: off.saturating_add(len as u64) - self.len(),
            });
        }
        let mut v = vec![0u8; len];
        self.read_exact_at(off, &mut v, what)?;
        Ok(v)
    }
}

/// A dump file on disk, read with `pread`.
pub struct FileSource {
    file: wedge_input::RandomAccess,
    len: u64,
    name: String,
}

impl FileSource {
    /// Opens a dump through the shared opener: non-blocking (a FIFO would
    /// otherwise block open() forever), within a deadline, and only a
    /// regular file (a dump is read at random offsets; `- < FILE` works);
    /// on FUSE or NFS every read has the deadline too.
    pub fn open(path: &std::path::Path) -> Result<FileSource> {
        let name = path.display().to_string();
        let file = wedge_input::open(path, &wedge_input::Limits::default())
            .and_then(wedge_input::Input::into_random_access)
            .map_err(|e| Error::Io {
                what: name.clone(),
                detail: e.what,
            })?;
        let len = file.len();
        Ok(FileSource { file, len, name })
    }
}

impl ReadAt for FileSource {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("{} at offset {:#x}", self.name, off + done as u64),
                        detail: e.to_string(),
                    })
                }
            }
        }
        Ok(done)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// A dump held in memory (tests, fuzzing).
impl ReadAt for Vec<u8> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let Ok(off) = usize::try_from(off) else {
            return Ok(0);
        };
        let avail = self.get(off..).unwrap_or(&[]);
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

impl ReadAt for Box<dyn ReadAt> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read_at(off, buf)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
}

/// The signature at the start of a flattened dump (`makedumpfile_header`,
/// padded to 4096 bytes).
pub const FLAT_SIGNATURE: &[u8] = b"makedumpfile\0";
const FLAT_HEADER_SIZE: u64 = 4096;

/// makedumpfile's flattened format: after a 4096-byte header, a stream of
/// records `{ i64 offset; i64 size; }` (big-endian) each followed by `size`
/// bytes that belong at `offset` of the real dump; `offset == -1` ends it.
/// Records may overlap (later ones win), so the map is built in order.
pub struct Flattened<S> {
    inner: S,
    /// (target offset, length, source offset), sorted by target; no overlaps.
    segs: Vec<(u64, u64, u64)>,
    len: u64,
    /// Whether the stream reached its end marker (`offset == -1`); a copy
    /// cut short stops in the middle of a record instead.
    terminated: bool,
}

impl<S: ReadAt> Flattened<S> {
    pub fn new(inner: S) -> Result<Flattened<S>> {
        let mut hdr = [0u8; 32];
        inner.read_exact_at(0, &mut hdr, "flattened header")?;
        if !hdr.starts_with(FLAT_SIGNATURE) {
            return Err(Error::Malformed {
                what: "flattened header signature",
                offset: 0,
                detail: "no \"makedumpfile\" signature".into(),
            });
        }
        let mut raw: Vec<(u64, u64, u64)> = Vec::new();
        let mut pos = FLAT_HEADER_SIZE;
        let mut terminated = false;
        loop {
            let mut rec = [0u8; 16];
            if inner.read_at(pos, &mut rec)? < 16 {
                // A stream cut short: keep what is there (a partial dump is
                // still worth reading).
                break;
            }
            let off = i64::from_be_bytes(rec[..8].try_into().unwrap_or_default());
            let size = i64::from_be_bytes(rec[8..].try_into().unwrap_or_default());
            if off == -1 {
                terminated = true;
                break;
            }
            if off < 0 || size < 0 {
                return Err(Error::Malformed {
                    what: "flattened record header",
                    offset: pos,
                    detail: format!("offset {off}, size {size}"),
                });
            }
            let data = pos + 16;
            let avail = inner.len().saturating_sub(data).min(size as u64);
            if avail > 0 {
                raw.push((off as u64, avail, data));
            }
            if avail < size as u64 {
                // The record's data runs past the end of the file.
                break;
            }
            pos = data.saturating_add(size as u64);
        }
        // Later records override earlier ones: apply them in order onto an
        // interval map.
        let mut segs: Vec<(u64, u64, u64)> = Vec::new();
        let sorted = raw.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0);
        if sorted {
            segs = raw;
        } else {
            for (t, l, s) in raw {
                let end = t + l;
                let mut next = Vec::with_capacity(segs.len() + 2);
                for &(a, al, as_) in &segs {
                    let aend = a + al;
                    if aend <= t || a >= end {
                        next.push((a, al, as_));
                        continue;
                    }
                    if a < t {
                        next.push((a, t - a, as_));
                    }
                    if aend > end {
                        next.push((end, aend - end, as_ + (end - a)));
                    }
                }
                next.push((t, l, s));
                next.sort_by_key(|x| x.0);
                segs = next;
            }
        }
        let len = segs.last().map_or(0, |&(t, l, _)| t + l);
        Ok(Flattened {
            inner,
            segs,
            len,
            terminated,
        })
    }

    /// Whether the whole stream is there, up to its end marker.
    pub fn is_complete(&self) -> bool {
        self.terminated
    }

    /// The size of the flattened file itself.
    pub fn stream_len(&self) -> u64 {
        self.inner.len()
    }
}

impl<S: ReadAt> ReadAt for Flattened<S> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        // Holes (never written) read as zeros, like a sparse file.
        while done < buf.len() {
            let cur = off + done as u64;
            if cur >= self.len {
                break;
            }
            let i = self.segs.partition_point(|s| s.0 + s.1 <= cur);
            let want = buf.len() - done;
            match self.segs.get(i) {
                Some(&(t, l, s)) if t <= cur => {
                    let n = ((t + l - cur) as usize).min(want);
                    let got = self
                        .inner
                        .read_at(s + (cur - t), &mut buf[done..done + n])?;
                    done += got;
                    if got < n {
                        break;
                    }
                }
                Some(&(t, _, _)) => {
                    let n = ((t - cur) as usize).min(want);
                    buf[done..done + n].fill(0);
                    done += n;
                }
                None => break,
            }
        }
        Ok(done)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(off: i64, data: &[u8]) -> Vec<u8> {
        let mut v = off.to_be_bytes().to_vec();
        v.extend((data.len() as i64).to_be_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn flattened_rebuilds_offsets_and_overrides() {
        let mut f = vec![0u8; 4096];
        f[..13].copy_from_slice(FLAT_SIGNATURE);
        f.extend(rec(10, b"hello"));
        f.extend(rec(0, b"AB"));
        f.extend(rec(11, b"EL"));
        f.extend(rec(-1, b""));
        let fl = Flattened::new(f).unwrap();
        assert_eq!(fl.len(), 15);
        assert!(fl.is_complete());
        let mut b = [9u8; 15];
        assert_eq!(fl.read_at(0, &mut b).unwrap(), 15);
        assert_eq!(&b, b"AB\0\0\0\0\0\0\0\0hELlo");
    }

    #[test]
    fn flattened_truncated_stream_keeps_prefix() {
        let mut f = vec![0u8; 4096];
        f[..13].copy_from_slice(FLAT_SIGNATURE);
        f.extend(rec(0, b"abcdef"));
        f.truncate(f.len() - 2);
        let fl = Flattened::new(f).unwrap();
        assert_eq!(fl.len(), 4);
        assert!(
            !fl.is_complete(),
            "a stream with no end marker is incomplete"
        );
    }
}
