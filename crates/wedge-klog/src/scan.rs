//! Chunked reading with a keyword prefilter.
//!
//! Most lines of a real log are unrelated to any report.  Instead of
//! looking at each line, the scanner runs one multi-pattern search
//! (aho-corasick, SIMD "Teddy" on x86-64) over a large buffer to find the
//! next line holding any keyword that can start a report; the lines in
//! between are only counted.  While a report is being assembled every line
//! is handed to the parser, since continuation lines (frames, registers)
//! carry no keyword of their own.  Memory stays flat: one buffer of
//! [`CHUNK`] (256 KiB) plus the parser's bounded state.

use std::io::{self, Read};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::event::Event;
use crate::parser::{Parser, Summary, MAX_LINE};

/// Read buffer size.
const CHUNK: usize = 256 * 1024;

/// Substrings that can begin a report, a listing, or a context line,
/// gathered from the report families (`family::keywords`).  A line
/// without any of them is never needed unless a report is open.
///
/// Kept short and at least three bytes long: the SIMD prefilter compares
/// three-byte fingerprints, so every pattern and every short one costs
/// throughput.  Anything a report needs after its first line (frames,
/// registers, `Future hung task reports are suppressed`) is seen anyway,
/// because every line is inspected while a report is open; frames of a
/// trace with no header are caught by `+0x`.
fn keywords() -> &'static [&'static str] {
    static K: OnceLock<Vec<&'static str>> = OnceLock::new();
    K.get_or_init(|| layout(&crate::family::keywords()))
}

/// The order the matcher gets the keywords in: it decides the prefilter's
/// speed, not what it finds.
///
/// Teddy puts pattern number `i` in bucket `15 - i % 16` (fat Teddy, the
/// one used for more than 32 patterns on AVX2; a pattern whose first three
/// bytes share their low nybbles with an earlier one joins that one's
/// bucket), and every position whose three bytes fit a bucket's nybble
/// masks is verified against each pattern of that bucket.  Bucket mates
/// with unlike bytes multiply into fingerprints that ordinary text is
/// full of (`INFO: ` with `ut of memory` also accepts `It `, `ED `), so the
/// keywords' order alone decides most of the parse's cost: with the
/// families' order a 128 MiB benchmark log took 1.53 G instructions (1.26 G
/// of them in the search), with this one 0.78 G (0.52 G).  The order was
/// chosen by counting the verifications on three texts (the benchmark's
/// log, a live dmesg, the corpus): 2.4–13× fewer than the families'
/// order.  Lines that pass are the same in any order (no keyword is a
/// prefix of another, so the leftmost hit and its pattern do not depend
/// on it).
///
/// The families own the keywords: an entry here that no family has is
/// dropped, and a family keyword missing here is appended, so a new one is
/// searched for at once and only its bucket is left to chance.
const LAYOUT: &[&str] = &[
    // The storage family's keywords (and the list corruptions') were
    // placed by the same count, with callgrind's instructions of the
    // search over a 16 MB sample of the benchmark's log: 51.4M in this
    // order against 55.2M appended after `INFO: ` (32.8M without them).
    "_del corruption",
    "ut of memory",
    "cut here",
    "Code:",
    "Kill",
    " ps ",
    "/proc/",
    "Show Blocked State",
    "ps -",
    "traps:",
    "Show State",
    "oom_reaper",
    "Lustre",
    "PID",
    "detected stall",
    "Kernel panic",
    "Call trace",
    "Call Trace",
    "CIFS",
    "LNet",
    "__CURSOR=",
    "nfs: server",
    "Name:",
    "Backtrace:",
    "ps a",
    "+0x",
    "invoked oom-killer",
    "general protection",
    "task:",
    "_TIMESTAMP=",
    "BUG",
    "Oops",
    "WARNING:",
    "Linux version",
    "fatal signal",
    "segfault",
    "LOCKUP",
    "oom-kill:",
    "detected expedited",
    "Unable to handle kernel",
    "INFO: ",
    "(device ",
    "XFS (",
    "): error count",
    "Result: ",
    "QID ",
    "CSTS=",
    "I/O error",
    ", sector ",
    "Machine Check",
    ": page allocation failure",
    "_add corruption",
];

/// `family` in [`LAYOUT`] order, then the keywords [`LAYOUT`] lacks.
fn layout(family: &[&'static str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = LAYOUT
        .iter()
        .filter_map(|k| family.iter().find(|f| *f == k).copied())
        .collect();
    for k in family {
        if !out.contains(k) {
            out.push(k);
        }
    }
    out
}

/// The keyword search: Teddy (SIMD) directly where the CPU has it, else a
/// full Aho-Corasick automaton.
enum Matcher {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
    /// Building failed (cannot happen for a constant pattern set): every
    /// line counts as interesting, which is slow but correct.
    Everything,
}

impl Matcher {
    fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        match self {
            Matcher::Packed(s) => s.find(hay).map(|m| (m.start(), m.pattern().as_usize())),
            Matcher::Automaton(a) => a.find(hay).map(|m| (m.start(), m.pattern().as_usize())),
            Matcher::Everything => (!hay.is_empty()).then_some((0, usize::MAX)),
        }
    }
}

fn automaton() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(keywords())
            .build();
        if let Some(p) = packed {
            return Matcher::Packed(p);
        }
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(keywords())
            .map_or(Matcher::Everything, Matcher::Automaton)
    })
}

/// Index of the `"PID"` keyword: common in ordinary messages ("Received
/// SIGTERM from PID 1"), so a hit is confirmed cheaply before the line is
/// inspected.
fn pid_keyword() -> usize {
    static P: OnceLock<usize> = OnceLock::new();
    *P.get_or_init(|| {
        keywords()
            .iter()
            .position(|k| *k == "PID")
            .unwrap_or(usize::MAX)
    })
}

/// Cheap second look at a weak keyword hit: a `ps` header (`  PID TTY ...`,
/// `S   PID COMMAND`) or a line starting with `PID` (`PID = 301`).
fn confirm(pattern: usize, line: &[u8]) -> bool {
    if pattern != pid_keyword() {
        return true;
    }
    let t = line.trim_ascii_start();
    if t.starts_with(b"PID") {
        return true;
    }
    // A ps header is upper case, digits and punctuation only; ordinary
    // messages mentioning a PID have lower-case words.
    if t.iter().any(u8::is_ascii_lowercase) {
        return false;
    }
    crate::ps::looks_like_header(&String::from_utf8_lossy(t))
}

/// Does `line` contain any keyword?
pub(crate) fn maybe_interesting(line: &[u8]) -> bool {
    let m = automaton();
    let mut at = 0;
    while let Some((pos, pattern)) = line.get(at..).and_then(|h| m.find(h)) {
        if confirm(pattern, line) {
            return true;
        }
        at += pos + 1;
    }
    false
}

/// Next confirmed keyword hit in `window`: (offset, pattern).  Weak hits
/// are rejected in place and the search goes on, so a log full of "PID 1"
/// costs one extra check per hit, not a line-by-line pass.
fn next_hit(window: &[u8]) -> Option<(usize, usize)> {
    let m = automaton();
    let mut at = 0usize;
    loop {
        let (p, pattern) = window.get(at..).and_then(|h| m.find(h))?;
        let pos = at + p;
        if pattern != pid_keyword() {
            return Some((pos, pattern));
        }
        let before = window.get(..pos).unwrap_or(&[]);
        let ls = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let after = window.get(pos..).unwrap_or(&[]);
        let le = memchr::memchr(b'\n', after).map_or(window.len(), |i| pos + i);
        if confirm(pattern, window.get(ls..le).unwrap_or(&[])) {
            return Some((pos, pattern));
        }
        at = pos + 1;
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    // SIMD with run-time CPU detection (AVX2 where available).
    bytecount::count(b, b'\n') as u64
}

/// Streaming iterator of events from any reader; see [`crate::parse_reader`].
pub struct EventStream<R> {
    reader: R,
    parser: Parser,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Skip bytes up to the next newline (rest of an overlong line).
    discarding: bool,
    error: Option<io::Error>,
    finished: bool,
    /// The start of the input is still to be checked for being text
    /// ([`EventStream::text_only`]).
    sniff_pending: bool,
    /// Bytes the reader delivered.
    bytes_read: u64,
}

impl<R: Read> EventStream<R> {
    pub(crate) fn new(reader: R) -> EventStream<R> {
        EventStream {
            reader,
            parser: Parser::new(),
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            discarding: false,
            error: None,
            finished: false,
            sniff_pending: false,
            bytes_read: 0,
        }
    }

    /// Bytes the reader has delivered so far: after an I/O error, where the
    /// input stopped (for a compressed file, in decompressed bytes).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Refuse input that is not text: the first 8 KiB are checked before
    /// any line reaches the parser, and an executable, an archive or binary
    /// data yields one error (its inner error a [`crate::NotText`]) and no
    /// event.  Off by default: the line and reader APIs agree on any bytes;
    /// this is for a command that was handed a file and should say it is
    /// not a log rather than find "reports" in its strings.
    pub fn text_only(mut self) -> EventStream<R> {
        self.sniff_pending = self.bytes_read == 0;
        self
    }

    /// Reads the first block and refuses input that is not text, before
    /// any line of it reaches the parser.
    fn sniff(&mut self) {
        self.sniff_pending = false;
        // A file's first read fills the buffer; a pipe may deliver a line
        // at a time (`journalctl -f | wedge log -`): judge on what came once
        // there is enough to judge, rather than wait for the whole block.
        while self.end < crate::sniff::MIN_SNIFF_BYTES && !self.eof && self.fill() {}
        let block = self
            .buf
            .get(..self.end.min(crate::sniff::SNIFF_BYTES))
            .unwrap_or(&[]);
        let at_end = self.eof && self.end <= crate::sniff::SNIFF_BYTES;
        if let Some(nt) = crate::sniff::not_text(block, at_end) {
            self.error = Some(io::Error::new(io::ErrorKind::InvalidData, nt));
            self.eof = true;
            self.start = self.end;
        }
    }

    /// Statistics and fragments so far (complete once the iterator ended).
    pub fn summary(&self) -> &Summary {
        self.parser.summary()
    }

    /// Read more input; returns false at end of input.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: hand over what we have and
            // drop the rest of it.
            if let Some(line) = self.buf.get(..MAX_LINE.min(self.end)) {
                self.parser.push_line_unfiltered(line);
            }
            self.end = 0;
            self.discarding = true;
        }
        loop {
            let Some(space) = self.buf.get_mut(self.end..) else {
                return false;
            };
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return self.end > self.start;
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// Process whole lines in the buffer; stops early when events are ready.
    fn step(&mut self) {
        while self.start < self.end {
            let Some(window) = self.buf.get(self.start..self.end) else {
                return;
            };
            if self.discarding {
                match memchr::memchr(b'\n', window) {
                    Some(i) => {
                        self.start += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.start = self.end;
                        return;
                    }
                }
            }
            if self.parser.wants_every_line() {
                let (line_len, consumed) = match memchr::memchr(b'\n', window) {
                    Some(i) => (i, i + 1),
                    None if self.eof => (window.len(), window.len()),
                    None => return,
                };
                if let Some(line) = window.get(..line_len) {
                    self.parser.push_line_unfiltered(line);
                }
                self.start += consumed;
            } else {
                let hit = next_hit(window);
                match hit {
                    Some((pos, pattern)) => {
                        let before = window.get(..pos).unwrap_or(&[]);
                        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
                        let skipped = window.get(..line_start).unwrap_or(&[]);
                        let n = count_newlines(skipped);
                        let tail = window.get(line_start..).unwrap_or(&[]);
                        let (line_len, consumed) = match memchr::memchr(b'\n', tail) {
                            Some(i) => (i, i + 1),
                            None if self.eof => (tail.len(), tail.len()),
                            None => {
                                self.parser.skip_lines(n, line_start as u64);
                                self.start += line_start;
                                return;
                            }
                        };
                        self.parser.skip_lines(n, line_start as u64);
                        let _ = pattern;
                        if let Some(line) = tail.get(..line_len) {
                            self.parser.push_line_unfiltered(line);
                        }
                        self.start += line_start + consumed;
                    }
                    None => {
                        // Keep the last partial line: a keyword may straddle
                        // the buffer boundary.
                        match memchr::memrchr(b'\n', window) {
                            Some(i) => {
                                let n = count_newlines(window.get(..=i).unwrap_or(&[]));
                                self.parser.skip_lines(n, (i + 1) as u64);
                                self.start += i + 1;
                            }
                            None if self.eof => {
                                let len = window.len() as u64;
                                self.parser.skip_lines(1, len);
                                self.start = self.end;
                            }
                            None => return,
                        }
                    }
                }
            }
            if self.parser.has_events() {
                return;
            }
        }
    }
}

impl<R: Read> Iterator for EventStream<R> {
    type Item = io::Result<Event>;

    fn next(&mut self) -> Option<io::Result<Event>> {
        if self.sniff_pending {
            self.sniff();
        }
        loop {
            if let Some(e) = self.parser.next_event() {
                return Some(Ok(e));
            }
            if self.finished {
                return None;
            }
            if self.error.is_some() && self.start < self.end {
                // Lines read before the error (eof is set, so a last line
                // without its newline counts too) are parsed, not dropped.
                let before = self.start;
                self.step();
                if self.parser.has_events() || self.start != before {
                    continue;
                }
            }
            if let Some(e) = self.error.take() {
                self.finished = true;
                self.parser.finish();
                return Some(Err(e));
            }
            let before = self.start;
            self.step();
            if self.parser.has_events() {
                continue;
            }
            if self.eof && self.start < self.end && self.start != before {
                continue;
            }
            if !self.fill() {
                if self.error.is_some() {
                    continue;
                }
                self.finished = true;
                self.parser.finish();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_count() {
        let mut v = Vec::new();
        for i in 0..20_000u32 {
            v.push(if i % 7 == 0 { b'\n' } else { b'x' });
        }
        let slow = v.iter().filter(|&&c| c == b'\n').count() as u64;
        assert_eq!(count_newlines(&v), slow);
    }

    #[test]
    fn layout_keeps_the_family_keywords() {
        let family = crate::family::keywords();
        let mut got = keywords().to_vec();
        let mut want = family.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            got, want,
            "the prefilter must search exactly the families' keywords"
        );
        // A keyword the layout lacks is still searched for, after the others.
        let extra = layout(&["zzz-new keyword", "INFO: "]);
        assert_eq!(extra, ["INFO: ", "zzz-new keyword"]);
    }

    /// No keyword is a prefix of another: then the leftmost hit and the
    /// pattern reported for it (the `PID` check) do not depend on the order.
    #[test]
    fn order_does_not_change_hits() {
        for a in keywords() {
            for b in keywords() {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
    }

    #[test]
    fn keyword_filter() {
        assert!(maybe_interesting(
            b"[ 1.0] INFO: task a:1 blocked for more than 1 seconds."
        ));
        assert!(!maybe_interesting(
            b"[ 1.0] usb 1-1: new high-speed USB device number 2"
        ));
    }
}
