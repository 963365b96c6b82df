//! zstd frames, one after another (systemd-coredump writes one; zstd(1)
//! concatenates), with what the format offers to catch damage checked:
//! the optional content checksum (low 32 bits of XXH64 of the frame's
//! output, RFC 8878 §3.1.1) and the optional frame content size. ruzstd
//! decodes but leaves both checks to its caller; without them a flipped
//! byte in a literal decodes "fine" into a silently different core.

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use std::io::{self, BufRead, Read};

pub(crate) struct Frames<R> {
    src: R,
    dec: FrameDecoder,
    /// A frame is being decoded.
    active: bool,
    /// Its declared content size, when its header carries one.
    declared: Option<u64>,
    out: u64,
    frames: u64,
    failed: bool,
}

impl<R: BufRead> Frames<R> {
    pub(crate) fn new(src: R) -> Self {
        Frames {
            src,
            dec: FrameDecoder::new(),
            active: false,
            declared: None,
            out: 0,
            frames: 0,
            failed: false,
        }
    }

    fn bad(&mut self, what: String) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {what}"))
    }

    /// Starts the next frame; `false` at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let head = self.src.fill_buf()?;
            if head.is_empty() {
                return Ok(false);
            }
            // Frame_Header_Descriptor (byte 4): bits 7-6 size the content
            // size field, bit 5 is Single_Segment (which also implies a
            // content size). Both absent means the size is not recorded.
            let declared_present = head.len() > 4 && (head[4] >> 6 != 0 || head[4] & 0x20 != 0);
            match self.dec.reset(&mut self.src) {
                Ok(()) => {
                    self.declared = declared_present.then(|| self.dec.content_size());
                    self.active = true;
                    self.out = 0;
                    self.frames += 1;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    // Skippable frames carry metadata, not content.
                    let skipped =
                        io::copy(&mut (&mut self.src).take(length as u64), &mut io::sink())?;
                    if skipped < length as u64 {
                        return Err(self.bad("a skippable frame is cut short".into()));
                    }
                }
                Err(e) => {
                    let what = if self.frames == 0 {
                        zstd_error_words(&e)
                    } else {
                        format!(
                            "after frame {}, the data is not another frame ({}): trailing garbage or damage",
                            self.frames,
                            zstd_error_words(&e)
                        )
                    };
                    return Err(self.bad(what));
                }
            }
        }
    }

    fn end_frame(&mut self) -> io::Result<()> {
        self.active = false;
        if let (Some(want), Some(got)) = (
            self.dec.get_checksum_from_data(),
            self.dec.get_calculated_checksum(),
        ) {
            if want != got {
                return Err(self.bad(format!(
                    "frame {} fails its checksum (stored {want:#010x}, computed {got:#010x}): the file is damaged",
                    self.frames
                )));
            }
        }
        if let Some(size) = self.declared {
            if size != self.out {
                return Err(self.bad(format!(
                    "frame {} decoded to {} bytes but its header says {size}: the file is damaged",
                    self.frames, self.out
                )));
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.active && !self.next_frame()? {
                if self.frames == 0 {
                    return Err(self.bad("no frame in the file".into()));
                }
                return Ok(0);
            }
            while self.dec.can_collect() == 0 && !self.dec.is_finished() {
                if let Err(e) = self
                    .dec
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                {
                    let w = zstd_error_words(&e);
                    return Err(self.bad(w));
                }
            }
            let n = self.dec.read(buf)?;
            if n > 0 {
                self.out += n as u64;
                if let Some(size) = self.declared {
                    if self.out > size {
                        return Err(self.bad(format!(
                            "frame {} decodes past the {size} bytes its header declares: the file is damaged",
                            self.frames
                        )));
                    }
                }
                return Ok(n);
            }
            if self.dec.is_finished() {
                self.end_frame()?;
            }
        }
    }
}

fn io_words(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "the compressed data ends early (a truncated file?)".into()
    } else {
        e.to_string()
    }
}

/// A zstd decoding error in words. ruzstd's `Display` prints some of its
/// nested errors with `{:?}` (`InvalidFrameDescriptor(...)`), which is
/// Rust, not an explanation.
pub fn zstd_error_words(e: &FrameDecoderError) -> String {
    use FrameDecoderError as F;
    use ReadFrameHeaderError as H;
    match e {
        F::ReadFrameHeaderError(h) => match h {
            H::MagicNumberReadError(e) | H::FrameDescriptorReadError(e) => {
                format!("the frame header is cut short: {}", io_words(e))
            }
            H::BadMagicNumber(m) => format!("not a zstd frame (magic {m:#010x})"),
            H::InvalidFrameDescriptor(_) => {
                "the frame header is invalid (damaged data?)".into()
            }
            H::WindowDescriptorReadError(e)
            | H::DictionaryIdReadError(e)
            | H::FrameContentSizeReadError(e) => {
                format!("the frame header is cut short: {}", io_words(e))
            }
            H::SkipFrame { .. } => "an unexpected skippable frame".into(),
            _ => "the frame header cannot be read".into(),
        },
        F::FrameHeaderError(_) | F::FailedToInitialize(_) => {
            "the frame header is invalid (damaged data?)".into()
        }
        F::WindowSizeTooBig { requested, max } => format!(
            "the frame asks for a {requested}-byte window, more than the {max} bytes wedge allows (damaged data?)"
        ),
        F::DictionaryDecodeError(_) | F::DictNotProvided { .. } => {
            "the frame needs a dictionary wedge does not have".into()
        }
        // The nested errors' Display is Rust debug text again; what they
        // tell a user is the same: the compressed bytes are not valid.
        F::FailedToReadBlockHeader(_) => "a block header is damaged or cut short".into(),
        F::FailedToReadBlockBody(_) => "a block's data is damaged or cut short".into(),
        F::FailedToReadChecksum(e) => {
            format!("the frame's checksum is missing: {}", io_words(e))
        }
        F::FailedToDrainDecodebuffer(e) => e.to_string(),
        F::FailedToSkipFrame => "a skippable frame is cut short".into(),
        other => other.to_string(),
    }
}

/// An I/O error out of ruzstd's `StreamingDecoder` (which wraps its
/// decoding errors in `io::Error`), in words.
pub fn zstd_io_error_words(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<FrameDecoderError>())
    {
        Some(f) => zstd_error_words(f),
        None => io_words(e),
    }
}
