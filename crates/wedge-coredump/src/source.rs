//! Getting the bytes of a core: mapped when it is a plain local file,
//! decompressed when systemd-coredump stored it (`/var/lib/systemd/coredump/
//! *.zst`, `.xz` or `.lz4`, chosen by systemd's build). Opening, the type
//! check, the caps and the decompression are `wedge_input`'s, shared with
//! `wedge log` and `wedge vmcore`.

use crate::error::CoreError;
use std::path::Path;

pub use wedge_input::Bytes as CoreBytes;

/// An opened core: its bytes, the compression it had, and, for a
/// compressed core whose stream broke off (or failed its checksum, or was
/// larger than wedge holds), why (the bytes up to there are kept: a
/// cut-short download still holds the notes).
pub struct Opened {
    pub bytes: CoreBytes,
    pub compression: Option<&'static str>,
    pub damage: Option<String>,
}

/// Opens a core (`-` is standard input), decompressing it in memory if
/// needed.
pub fn open(path: &Path) -> Result<Opened, CoreError> {
    open_with(path, &wedge_input::Limits::default())
}

pub fn open_with(path: &Path, limits: &wedge_input::Limits) -> Result<Opened, CoreError> {
    let input = |e: wedge_input::InputError| CoreError::Input {
        path: e.path,
        what: e.what,
    };
    let loaded = wedge_input::open(path, limits)
        .and_then(wedge_input::Input::load)
        .map_err(input)?;
    let compression = loaded.compression.map(wedge_input::Compression::name);
    if let (Some(format), Some(what)) = (compression, &loaded.damage) {
        // Nothing of an ELF core came out: there is nothing to keep.
        if !loaded.bytes.starts_with(b"\x7fELF") {
            return Err(CoreError::Decompress {
                path: path.to_path_buf(),
                format,
                what: what.clone(),
            });
        }
    }
    Ok(Opened {
        bytes: loaded.bytes,
        compression,
        damage: loaded.damage,
    })
}
