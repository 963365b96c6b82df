//! zstd through libzstd: frames one after another (systemd-coredump
//! writes one; zstd(1) concatenates), skippable frames skipped.
//!
//! libzstd's streaming decoder (`ZSTD_decompressStream`) hands out each
//! block as soon as it is decoded, even in a single-segment frame whose
//! window is the whole content: a log cut short keeps every event before
//! the cut. It checks what the format offers to catch damage itself: the
//! content checksum (low 32 bits of XXH64 of the frame's output, RFC 8878
//! §3.1.1) and the frame content size (`corruption_detected` when the
//! decoded size differs), so a flipped byte in a literal is an error, not
//! a silently different core.

use ::zstd::zstd_safe::{
    self, zstd_sys::ZSTD_ErrorCode as E, DCtx, DParameter, InBuffer, OutBuffer,
};
use std::io::{self, BufRead, Read};

/// libzstd's own default decoding limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT,
/// 2^27 = 128 MiB), set explicitly so it stays wedge's bound whatever the
/// library's default: a 1 KB frame may ask for a 2 GiB window, which would
/// be allocated before a single byte is decoded. zstd(1) writes larger
/// windows only with --long=28 and up or --ultra -22.
const WINDOW_LOG_MAX: u32 = 27;

/// The magic of a zstd frame (RFC 8878 §3.1.1), as read little-endian.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Skippable frames (RFC 8878 §3.1.2): magic 0x184D2A50..=0x184D2A5F,
/// metadata, not content.
fn is_skippable(head: &[u8]) -> bool {
    head.len() >= 4 && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) >> 4 == 0x184D2A5
}

fn dctx() -> io::Result<DCtx<'static>> {
    let mut d = DCtx::try_create().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            "zstd: cannot allocate a decoder",
        )
    })?;
    d.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
        .map_err(|c| io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(c))))?;
    Ok(d)
}

pub(crate) struct Frames<R> {
    src: R,
    dec: Option<DCtx<'static>>,
    /// A frame has begun and not ended.
    in_frame: bool,
    /// The frame in progress is a skippable one.
    skipping: bool,
    /// Frames with content decoded so far.
    frames: u64,
    /// Calls in a row that neither took input nor gave output.
    stalled: u8,
    failed: bool,
}

impl<R: BufRead> Frames<R> {
    pub(crate) fn new(src: R) -> Self {
        Frames {
            src,
            dec: None,
            in_frame: false,
            skipping: false,
            frames: 0,
            stalled: 0,
            failed: false,
        }
    }

    fn bad(&mut self, what: String) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {what}"))
    }
}

impl<R: BufRead> Read for Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed || buf.is_empty() {
            return Ok(0);
        }
        if self.dec.is_none() {
            self.dec = Some(dctx()?);
        }
        loop {
            let input = self.src.fill_buf()?;
            if input.is_empty() {
                if self.in_frame {
                    let what = format!(
                        "frame {} ends early: the compressed data is cut short (a truncated file?)",
                        self.frames + 1
                    );
                    return Err(self.bad(what));
                }
                if self.frames == 0 {
                    return Err(self.bad("no frame in the file".into()));
                }
                return Ok(0);
            }
            if !self.in_frame {
                self.skipping = is_skippable(input);
            }
            let head = [0, 1, 2, 3].map(|i| input.get(i).copied().unwrap_or(0));
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let mut inb = InBuffer::around(input);
            let mut outb = OutBuffer::around(&mut *buf);
            let r = dec.decompress_stream(&mut outb, &mut inb);
            let (used, made) = (inb.pos(), outb.pos());
            self.src.consume(used);
            match r {
                // 0: the frame is decoded, verified and fully flushed.
                Ok(0) => {
                    self.in_frame = false;
                    if !self.skipping {
                        self.frames += 1;
                    }
                }
                Ok(_) => self.in_frame = true,
                Err(code) => {
                    let what = if !self.in_frame && is(code, E::ZSTD_error_prefix_unknown) {
                        let magic = u32::from_le_bytes(head);
                        if self.frames == 0 {
                            format!("not a zstd frame (magic {magic:#010x})")
                        } else {
                            format!(
                                "after frame {}, the data is not another frame (magic {magic:#010x}): trailing garbage or damage",
                                self.frames
                            )
                        }
                    } else {
                        format!("frame {}: {}", self.frames + 1, error_words(code))
                    };
                    return Err(self.bad(what));
                }
            }
            if made > 0 {
                self.stalled = 0;
                return Ok(made);
            }
            // With input left and room for output libzstd always moves;
            // a decoder that does not, twice, must not spin wedge forever.
            if used == 0 {
                self.stalled += 1;
                if self.stalled > 2 {
                    return Err(self.bad("the decoder makes no progress (damaged data?)".into()));
                }
            } else {
                self.stalled = 0;
            }
        }
    }
}

fn is(code: zstd_safe::ErrorCode, kind: E) -> bool {
    zstd_safe::is_error_kind(code, kind)
}

/// A libzstd error in words, for a user who has a damaged file, not a
/// libzstd source tree.
fn error_words(code: zstd_safe::ErrorCode) -> String {
    let words = if is(code, E::ZSTD_error_checksum_wrong) {
        "its content checksum does not match: the file is damaged"
    } else if is(code, E::ZSTD_error_corruption_detected)
        || is(code, E::ZSTD_error_literals_headerWrong)
        || is(code, E::ZSTD_error_srcSize_wrong)
    {
        "the compressed data is damaged (it does not decode, or not to the size its header declares)"
    } else if is(code, E::ZSTD_error_frameParameter_windowTooLarge) {
        "the frame asks for a window larger than the 128 MiB wedge allows (damaged data?)"
    } else if is(code, E::ZSTD_error_frameParameter_unsupported)
        || is(code, E::ZSTD_error_version_unsupported)
        || is(code, E::ZSTD_error_prefix_unknown)
    {
        "the frame header is invalid (damaged data?)"
    } else if is(code, E::ZSTD_error_dictionary_wrong)
        || is(code, E::ZSTD_error_dictionary_corrupted)
    {
        "the frame needs a dictionary wedge does not have"
    } else if is(code, E::ZSTD_error_memory_allocation) {
        "out of memory while decoding"
    } else if is(code, E::ZSTD_error_tableLog_tooLarge)
        || is(code, E::ZSTD_error_maxSymbolValue_tooLarge)
    {
        "an entropy table is damaged"
    } else {
        // libzstd's own names are short English phrases already.
        return format!("{} (damaged data?)", zstd_safe::get_error_name(code));
    };
    words.to_string()
}

/// Decodes `data`, one or more zstd frames, into `out` (a kdump page:
/// makedumpfile writes each page as one frame), in words on failure.
/// Returns the decoded length; output that does not fit in `out` is an
/// error, not a truncation.
pub fn zstd_decompress_into(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut d = dctx().map_err(|e| e.to_string())?;
    let room = out.len();
    d.decompress(out, data).map_err(|code| {
        let magic = data
            .first_chunk::<4>()
            .map_or(0, |h| u32::from_le_bytes(*h));
        if is(code, E::ZSTD_error_dstSize_tooSmall) {
            format!("zstd: decodes to more than {room} bytes")
        } else if magic != ZSTD_MAGIC && !is_skippable(data) {
            // Checked first: on input shorter than a frame header libzstd
            // says srcSize_wrong before it looks at the magic.
            format!("zstd: not a zstd frame (magic {magic:#010x})")
        } else if is(code, E::ZSTD_error_srcSize_wrong) {
            "zstd: the compressed data is cut short or damaged".to_string()
        } else {
            format!("zstd: {}", error_words(code))
        }
    })
}
