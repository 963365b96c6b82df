//! Is the input text at all?  A kernel log is text with, at worst, a few
//! damaged bytes (a crash mid-write leaves a run of NULs, a serial line
//! flips bits); an executable, an archive or a crash dump parsed as a log
//! yields "events" from strings that happen to look like reports.

use std::fmt;

/// How much of the start is looked at, at most.
pub(crate) const SNIFF_BYTES: usize = 8 * 1024;

/// How much is waited for before judging (less only at end of input).
pub(crate) const MIN_SNIFF_BYTES: usize = 512;

/// The input is not a text log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotText {
    /// What it looks like instead (`an ELF file (executable, library or
    /// core)`, `binary data: 61% of the first 8 KiB are not text`).
    pub reason: String,
}

impl fmt::Display for NotText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a text log: {}", self.reason)
    }
}

impl std::error::Error for NotText {}

/// Formats known by their first bytes, and what to say about them.
const MAGICS: &[(&[u8], &str)] = &[
    (
        b"\x7fELF",
        "an ELF file (executable, library or core; `wedge core` reads cores, `wedge vmcore` crash dumps)",
    ),
    (b"KDUMP   ", "a kdump-compressed crash dump (`wedge vmcore` reads it)"),
    (b"BZh", "bzip2-compressed (not read: decompress it first)"),
    (b"\x04\x22\x4d\x18", "lz4-compressed (not read: decompress it first)"),
    (b"PK\x03\x04", "a zip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
];

/// Share of the first block (in percent) that may be NUL, control bytes or
/// invalid UTF-8 in a real log: the corpus' damaged logs stay far below it
/// (a few bytes per KiB), binary files far above.
const MAX_BAD_PERCENT: usize = 10;

/// `Some` when `block`, the start of the input, is not text.  `at_end`
/// says the block is the whole input (so a UTF-8 sequence cut at its end
/// is damage, not the buffer boundary).
pub(crate) fn not_text(block: &[u8], at_end: bool) -> Option<NotText> {
    if let Some((_, what)) = MAGICS.iter().find(|(m, _)| block.starts_with(m)) {
        return Some(NotText {
            reason: (*what).to_string(),
        });
    }
    if block.is_empty() {
        return None;
    }
    let bad = bad_bytes(block, at_end);
    if bad * 100 > block.len() * MAX_BAD_PERCENT {
        return Some(NotText {
            reason: format!(
                "binary data: {}% of the first {} byte(s) are NUL, control bytes or invalid UTF-8",
                bad * 100 / block.len(),
                block.len()
            ),
        });
    }
    None
}

/// NULs, C0 controls other than the whitespace and escapes logs carry
/// (tab, newline, CR, form feed, backspace, ESC of colour codes), DEL, and
/// bytes of invalid UTF-8 sequences.
fn bad_bytes(block: &[u8], at_end: bool) -> usize {
    let controls = block
        .iter()
        .filter(|&&b| {
            (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x08 | 0x1b)) || b == 0x7f
        })
        .count();
    let mut invalid = 0;
    let mut rest = block;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(_) => break,
            Err(e) => {
                let skip = match e.error_len() {
                    Some(n) => n,
                    // Cut at the end of the block: damage only at the end
                    // of the input.
                    None if at_end => rest.len() - e.valid_up_to(),
                    None => break,
                };
                invalid += skip;
                rest = rest.get(e.valid_up_to() + skip..).unwrap_or(&[]);
            }
        }
    }
    controls + invalid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_damage_is_text() {
        let mut log = b"[    1.000000] Linux version 6.1.0 (gcc)\n".repeat(50);
        log[100] = 0xff;
        log[500] = 0;
        log.extend_from_slice(&[0u8; 16]);
        assert_eq!(not_text(&log, true), None);
        assert_eq!(not_text("ünïcødé log\n".as_bytes(), true), None);
        assert_eq!(not_text(b"", true), None);
    }

    #[test]
    fn binaries_are_not() {
        let elf = not_text(b"\x7fELF\x02\x01\x01\0\0\0", true).expect("elf");
        assert!(elf.reason.contains("ELF"), "{elf}");
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(not_text(&noise, true).is_some());
        assert!(not_text(&[0u8; 4096], true).is_some());
    }
}
