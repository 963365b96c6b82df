//! Walking a `PT_NOTE` segment: `Elf64_Nhdr` (namesz, descsz, type), the
//! name and the descriptor, each padded to 4 bytes.

use crate::le::{align4, Le};

/// A note descriptor larger than this is refused. The largest note the
/// kernel writes is `NT_FILE`, bounded by `kernel.core_file_note_size_limit`
/// (fs/binfmt_elf.c; 4 MiB by default, at most 16 MiB since Linux 6.11,
/// a fixed 4 MiB `MAX_FILE_NOTE_SIZE` before); register sets are a few KB
/// (`NT_X86_XSTATE` with AMX tiles is about 11 KB), VMCOREINFO a few KB.
pub const MAX_NOTE_DESC: usize = 16 << 20;
/// A note name longer than this is refused ("CORE", "LINUX", "VMCOREINFO").
pub const MAX_NOTE_NAME: usize = 4096;
/// At most this many notes are read from one segment. The kernel writes
/// about ten per thread (NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE, NT_SIGINFO
/// per thread since 5.x...) and `pid_max` is at most 4 Mi (PID_MAX_LIMIT),
/// but a process with more than 200,000 threads is not one wedge will meet;
/// a count past this is a crafted or damaged file.
pub const MAX_NOTES: usize = 2 << 20;

/// One note, borrowed from its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawNote<'a> {
    /// The name's `namesz` bytes, NUL included as written.
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
    /// Offset of the note's header in the segment.
    pub offset: usize,
}

/// Why a walk stopped before the end of its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteStop {
    /// An all-zero note header: the kernel never writes note type 0, so
    /// this is padding (kdump pads per-CPU notes) or a zeroed/sparse region.
    Zeros { left: usize },
    /// Sizes larger than any note the kernel writes.
    TooLarge { kind: u32, namesz: u32, descsz: u32 },
    /// More than [`MAX_NOTES`] notes.
    TooMany,
    /// The padded sizes overflow `usize`.
    Overflow { namesz: u32, descsz: u32 },
    /// The note runs past the end of the segment.
    PastEnd {
        kind: u32,
        namesz: u32,
        descsz: u32,
        left: usize,
        needed: usize,
    },
}

/// Where and why a walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteError {
    /// Offset of the offending note header in the segment.
    pub offset: usize,
    pub stop: NoteStop,
}

/// Walks the notes of `segment`, lazily (a crafted segment may claim
/// hundreds of megabytes: nothing is held per note). Yields each good note,
/// then at most one error saying why it stopped early; fewer than 12 bytes
/// left (a header cannot fit) ends the walk quietly.
pub fn notes(segment: &[u8]) -> Notes<'_> {
    Notes {
        d: segment,
        off: 0,
        count: 0,
        done: false,
    }
}

/// The iterator of [`notes`].
pub struct Notes<'a> {
    d: &'a [u8],
    off: usize,
    count: usize,
    done: bool,
}

impl<'a> Notes<'a> {
    fn stop(&mut self, stop: NoteStop) -> Option<Result<RawNote<'a>, NoteError>> {
        self.done = true;
        Some(Err(NoteError {
            offset: self.off,
            stop,
        }))
    }
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<RawNote<'a>, NoteError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let d = self.d.get(self.off..).unwrap_or(&[]);
        let (Some(namesz), Some(descsz), Some(kind)) = (d.u32_at(0), d.u32_at(4), d.u32_at(8))
        else {
            self.done = true;
            return None;
        };
        if namesz == 0 && descsz == 0 && kind == 0 {
            return self.stop(NoteStop::Zeros { left: d.len() });
        }
        let (name_len, desc_len) = (namesz as usize, descsz as usize);
        if desc_len > MAX_NOTE_DESC || name_len > MAX_NOTE_NAME {
            return self.stop(NoteStop::TooLarge {
                kind,
                namesz,
                descsz,
            });
        }
        if self.count >= MAX_NOTES {
            return self.stop(NoteStop::TooMany);
        }
        let name_end = align4(name_len).and_then(|n| n.checked_add(12));
        let desc_end = name_end.and_then(|ne| align4(desc_len).and_then(|dl| ne.checked_add(dl)));
        let (Some(name_end), Some(desc_end)) = (name_end, desc_end) else {
            return self.stop(NoteStop::Overflow { namesz, descsz });
        };
        let name = 12usize.checked_add(name_len).and_then(|e| d.get(12..e));
        let desc = name_end
            .checked_add(desc_len)
            .and_then(|e| d.get(name_end..e));
        let (Some(name), Some(desc)) = (name, desc) else {
            return self.stop(NoteStop::PastEnd {
                kind,
                namesz,
                descsz,
                left: d.len(),
                needed: desc_end,
            });
        };
        let note = RawNote {
            name,
            kind,
            desc,
            offset: self.off,
        };
        self.count += 1;
        match self.off.checked_add(desc_end) {
            Some(next) => self.off = next,
            None => self.done = true,
        }
        Some(Ok(note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.resize(align4(v.len()).unwrap_or(0), 0);
        v.extend_from_slice(desc);
        v.resize(align4(v.len()).unwrap_or(0), 0);
        v
    }

    #[test]
    fn walks_notes_and_says_why_it_stopped() {
        let mut seg = note(b"CORE\0", 1, &[7; 5]);
        seg.extend(note(b"LINUX\0", 0x202, b"x"));
        seg.extend([0u8; 24]);
        let got: Vec<_> = notes(&seg).collect();
        assert_eq!(got.len(), 3);
        let first = got[0].expect("note");
        assert_eq!(
            (first.name, first.kind, first.desc),
            (&b"CORE\0"[..], 1, &[7u8; 5][..])
        );
        assert_eq!(got[1].expect("note").offset, 28);
        assert_eq!(
            got[2],
            Err(NoteError {
                offset: 52,
                stop: NoteStop::Zeros { left: 24 }
            })
        );
    }

    #[test]
    fn lies_stop_the_walk_without_panicking() {
        // descsz u32::MAX: too large; a name past the end: PastEnd.
        let mut huge = note(b"CORE\0", 1, b"");
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            notes(&huge).next(),
            Some(Err(NoteError {
                stop: NoteStop::TooLarge { .. },
                ..
            }))
        ));
        let mut short = note(b"CORE\0", 1, &[1; 16]);
        short.truncate(20);
        assert!(matches!(
            notes(&short).next(),
            Some(Err(NoteError {
                stop: NoteStop::PastEnd {
                    left: 20,
                    needed: 36,
                    ..
                },
                ..
            }))
        ));
        assert!(notes(&[0u8; 11]).next().is_none());
    }
}
