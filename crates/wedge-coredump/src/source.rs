//! Getting the bytes of a core: mapped when it is a plain file, decompressed
//! when systemd-coredump stored it (`/var/lib/systemd/coredump/*.zst`, `.xz`
//! or `.lz4`, chosen by systemd's build; recognised here by magic, not name).

use crate::error::CoreError;
use std::io::Read;
use std::path::Path;

const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const LZ4_MAGIC: &[u8] = &[0x04, 0x22, 0x4d, 0x18];

/// The bytes of a core file.
pub enum CoreBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for CoreBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            CoreBytes::Mapped(m) => m,
            CoreBytes::Owned(v) => v,
        }
    }
}

/// Which compression the file had, if any.
pub fn compression_of(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(ZSTD_MAGIC) {
        Some("zstd")
    } else if head.starts_with(XZ_MAGIC) {
        Some("xz")
    } else if head.starts_with(LZ4_MAGIC) {
        Some("lz4")
    } else {
        None
    }
}

/// An opened core: its bytes, the compression it had, and, for a
/// compressed core whose stream broke off, why (the bytes up to there are
/// kept: a cut-short download still holds the notes).
pub struct Opened {
    pub bytes: CoreBytes,
    pub compression: Option<&'static str>,
    pub damage: Option<String>,
}

/// Opens a core, decompressing it in memory if needed.
pub fn open(path: &Path) -> Result<Opened, CoreError> {
    let io = |error| CoreError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let mut head = [0u8; 6];
    let n = (&file).read(&mut head).map_err(io)?;
    let head = &head[..n];
    let compression = compression_of(head);
    let Some(format) = compression else {
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the mapping is read-only and private. If another
            // process truncates the file while wedge reads it, the access
            // faults (SIGBUS); core files are written once and left alone.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            return Ok(Opened {
                bytes: CoreBytes::Mapped(map),
                compression: None,
                damage: None,
            });
        }
        // A pipe or an empty file: read what there is.
        let mut v = head.to_vec();
        (&file).read_to_end(&mut v).map_err(io)?;
        return Ok(Opened {
            bytes: CoreBytes::Owned(v),
            compression: None,
            damage: None,
        });
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = std::io::BufReader::new(file);
    let derr = |what: String| CoreError::Decompress {
        path: path.to_path_buf(),
        format,
        what,
    };
    let mut out = Vec::new();
    let result: Result<(), String> = (|| {
        match format {
            "zstd" => {
                let mut reader = reader;
                // systemd writes one frame; accept several, as zstd(1) does.
                loop {
                    let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut reader)
                        .map_err(|e| e.to_string())?;
                    dec.read_to_end(&mut out).map_err(|e| e.to_string())?;
                    use std::io::BufRead;
                    if reader.fill_buf().map_err(|e| e.to_string())?.is_empty() {
                        break;
                    }
                }
            }
            "xz" => {
                let mut reader = reader;
                lzma_rs::xz_decompress(&mut reader, &mut out).map_err(|e| e.to_string())?;
            }
            _ => {
                lz4_flex::frame::FrameDecoder::new(reader)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })();
    let damage = match result {
        Ok(()) => None,
        // Part of an ELF core came out: keep it, say what broke.
        Err(e) if out.starts_with(b"\x7fELF") => Some(format!(
            "the {format} stream broke off after {} bytes: {e}",
            out.len()
        )),
        Err(e) => return Err(derr(e)),
    };
    Ok(Opened {
        bytes: CoreBytes::Owned(out),
        compression,
        damage,
    })
}
