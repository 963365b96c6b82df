//! The binaries a process had mapped: found on disk, checked against the
//! build-id the process had in memory, and made ready for unwinding.
//!
//! A core holds the first page of every file-backed executable mapping (the
//! ELF header, program headers and, nearly always, the build-id note), but
//! not the code nor `.eh_frame`: those come from the file on disk. A file
//! replaced since the crash (a package upgrade) would unwind and symbolize
//! with the wrong tables, so its build-id is compared with the one in the
//! core, and frames in a mismatching binary are marked.

use crate::notes::{iter_notes, FileMapping};
use object::{Object, ObjectSection, ObjectSegment};
use serde::Serialize;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes shared between the unwinder's modules: a slice of a mapped file or
/// of an owned buffer (the vDSO, copied out of the core).
#[derive(Clone)]
pub struct Bytes {
    backing: Arc<Backing>,
    range: Range<usize>,
}

// A file mapped, or bytes copied out of the core.
use wedge_input::Bytes as Backing;

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.backing.get(self.range.clone()).unwrap_or(&[])
    }
}

impl Bytes {
    fn whole(backing: Backing) -> Bytes {
        let len = backing.len();
        Bytes {
            backing: Arc::new(backing),
            range: 0..len,
        }
    }
    fn slice(&self, r: Range<usize>) -> Option<Bytes> {
        (r.start <= r.end && r.end <= self.range.len()).then(|| Bytes {
            backing: self.backing.clone(),
            range: self.range.start + r.start..self.range.start + r.end,
        })
    }
}

/// What became of a binary the process had mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BinaryState {
    /// Found, and its build-id matches the core's (or neither has one).
    Ok,
    /// Found, but it is not the file the process ran.
    BuildIdMismatch,
    /// Not found or not readable.
    Missing { reason: String },
    /// Found but not a usable ELF file.
    Unusable { reason: String },
    /// Not an ELF file at all: a mapped data file (locale archive, cache).
    Data,
}

/// One mapped binary (all the mappings of one path).
pub struct Binary {
    /// The path as the process saw it.
    pub path: String,
    /// Where wedge found it (after `--sysroot` or `/proc/PID/root`).
    pub found_at: Option<PathBuf>,
    /// Lowest start and highest end of its mappings.
    pub range: Range<u64>,
    pub mappings: Vec<FileMapping>,
    /// Runtime address minus link-time address.
    pub bias: Option<u64>,
    pub build_id_core: Option<Vec<u8>>,
    pub build_id_file: Option<Vec<u8>>,
    pub state: BinaryState,
    /// The whole file, when found.
    pub data: Option<Bytes>,
    /// Whether the file has symbols beyond `.dynsym` (a `.symtab`, DWARF or
    /// a debug link).
    pub stripped: bool,
}

impl Binary {
    /// The offset in the file of a runtime address, via the mapping that
    /// holds it.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        let m = self
            .mappings
            .iter()
            .find(|m| m.start <= addr && addr < m.end)?;
        Some(addr - m.start + m.offset)
    }

    pub fn usable(&self) -> bool {
        self.data.is_some()
    }

    /// The file name, for frames: `libc.so.6`.
    pub fn short_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Reads memory of the process (a core's segments, or a live stack copy).
pub trait MemoryView {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

impl MemoryView for crate::elf::Memory<'_> {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        crate::elf::Memory::read(self, addr, len).ok()
    }
}

/// Where to look for the files the process had mapped.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// Prepended to every path: a container's root, `/proc/PID/root`, or
    /// an unpacked image of the machine the core came from.
    pub root: Option<PathBuf>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn build_id_hex(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_deref().map(hex)
}

/// Groups mappings by path, finds each file and checks it.
pub fn load(files: &[FileMapping], lookup: &Lookup, mem: Option<&dyn MemoryView>) -> Vec<Binary> {
    // Grouped in first-seen order; a JVM can have tens of thousands of
    // mappings, so by hash rather than by scanning.
    let mut by_path: Vec<(String, Vec<FileMapping>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in files {
        match index.get(f.path.as_str()) {
            Some(&i) => by_path[i].1.push(f.clone()),
            None => {
                index.insert(&f.path, by_path.len());
                by_path.push((f.path.clone(), vec![f.clone()]));
            }
        }
    }
    by_path
        .into_iter()
        .filter(|(path, _)| path.starts_with('/'))
        .map(|(path, mappings)| load_one(path, mappings, lookup, mem))
        .collect()
}

fn load_one(
    path: String,
    mut mappings: Vec<FileMapping>,
    lookup: &Lookup,
    mem: Option<&dyn MemoryView>,
) -> Binary {
    mappings.sort_by_key(|m| m.start);
    let range =
        mappings.first().map_or(0, |m| m.start)..mappings.iter().map(|m| m.end).max().unwrap_or(0);
    let head = mappings.iter().find(|m| m.offset == 0).map(|m| m.start);
    // The build-id and load bias the process itself had, from the ELF
    // header page the kernel dumped.
    let (build_id_core, bias_core) = match (head, mem) {
        (Some(h), Some(mem)) => from_memory_header(mem, h),
        _ => (None, None),
    };
    let mut b = Binary {
        path: path.clone(),
        found_at: None,
        range,
        mappings,
        bias: bias_core,
        build_id_core,
        build_id_file: None,
        state: BinaryState::Missing {
            reason: String::new(),
        },
        data: None,
        stripped: false,
    };
    // "(deleted)": the file was unlinked or replaced after it was mapped.
    let (disk_path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p.to_string(), true),
        None => (path.clone(), false),
    };
    let full = match &lookup.root {
        Some(r) => r.join(disk_path.trim_start_matches('/')),
        None => PathBuf::from(&disk_path),
    };
    // O_NONBLOCK: a hostile core can name a FIFO or a device, whose open
    // would wait; only regular files are used.
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&full)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        });
    let file = match opened {
        Ok(f) => f,
        Err(e) => {
            b.state = BinaryState::Missing {
                reason: if deleted {
                    format!("deleted after it was mapped ({e})")
                } else {
                    e.to_string()
                },
            };
            return b;
        }
    };
    // SAFETY: read-only private mapping of a binary; a binary truncated
    // while wedge reads it would fault, which package managers avoid by
    // replacing files with rename(2).
    let map = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => m,
        Err(e) => {
            b.state = BinaryState::Missing {
                reason: format!("cannot map {}: {e}", full.display()),
            };
            return b;
        }
    };
    let data = Bytes::whole(Backing::Mapped(map));
    let obj = match object::File::parse(&*data) {
        Ok(o) => o,
        Err(_) if !data.starts_with(b"\x7fELF") => {
            b.state = BinaryState::Data;
            return b;
        }
        Err(e) => {
            b.state = BinaryState::Unusable {
                reason: format!("{}: {e}", full.display()),
            };
            return b;
        }
    };
    b.build_id_file = obj.build_id().ok().flatten().map(<[u8]>::to_vec);
    // A .gnu_debuglink only names a debug file that may not be installed.
    b.stripped =
        obj.section_by_name(".symtab").is_none() && obj.section_by_name(".debug_info").is_none();
    if b.bias.is_none() {
        b.bias = bias_from_segments(
            &b.mappings,
            obj.segments()
                .map(|s| (s.file_range().0, s.address()))
                .collect::<Vec<_>>()
                .as_slice(),
        );
    }
    b.state = match (&b.build_id_core, &b.build_id_file) {
        (Some(c), Some(f)) if c != f => BinaryState::BuildIdMismatch,
        _ => BinaryState::Ok,
    };
    b.found_at = Some(full);
    b.data = Some(data);
    b
}

/// Bias = where the segment holding a mapped file offset is, minus where it
/// was linked, both rounded to the page.
fn bias_from_segments(mappings: &[FileMapping], segs: &[(u64, u64)]) -> Option<u64> {
    const PAGE: u64 = 4096;
    for m in mappings {
        for &(off, vaddr) in segs {
            if off & !(PAGE - 1) == m.offset {
                return Some(m.start.wrapping_sub(vaddr & !(PAGE - 1)));
            }
        }
    }
    None
}

/// Reads the ELF header, program headers and build-id note of a binary
/// from the process's memory at `head` (its offset-0 mapping).
pub fn from_memory_header(mem: &dyn MemoryView, head: u64) -> (Option<Vec<u8>>, Option<u64>) {
    let Some(eh) = mem.read(head, 64) else {
        return (None, None);
    };
    if eh.get(..4) != Some(b"\x7fELF".as_slice()) || eh.get(4) != Some(&2) {
        return (None, None);
    }
    // The same checked header reader as the core's own (wedge-bytes).
    let Some(wedge_bytes::elf::Header64 {
        phoff,
        phentsize,
        phnum,
        ..
    }) = wedge_bytes::elf::header64(eh)
    else {
        return (None, None);
    };
    if phentsize < 56 || phnum > 256 {
        return (None, None);
    }
    let mut phdrs = Vec::new();
    for i in 0..phnum as u64 {
        let Some(ph) = head
            .checked_add(phoff)
            .and_then(|a| wedge_bytes::elf::phdr_offset(a, phentsize, i))
            .and_then(|a| mem.read(a, wedge_bytes::elf::PHDR64_SIZE))
        else {
            break;
        };
        let Some(p) = wedge_bytes::elf::phdr64(ph) else {
            break;
        };
        phdrs.push((p.p_type, p.offset, p.vaddr, p.filesz));
    }
    // The mapping at file offset 0 holds the PT_LOAD with p_offset 0.
    let bias = phdrs
        .iter()
        .find(|(t, off, _, _)| *t == 1 && *off == 0)
        .map(|(_, _, va, _)| head.wrapping_sub(va & !4095));
    let mut id = None;
    if let Some(bias) = bias {
        for (t, _, va, fsz) in &phdrs {
            if *t != 4 || *fsz > 4096 {
                continue;
            }
            let Some(d) = mem.read(bias.wrapping_add(*va), *fsz as usize) else {
                continue;
            };
            let mut ignored = Vec::new();
            if let Some(n) = iter_notes(d, &mut ignored).find(|n| n.name == b"GNU" && n.kind == 3) {
                id = Some(n.desc.to_vec());
                break;
            }
        }
    }
    (id, bias)
}

/// Builds the vDSO's unwind module from its image in memory: the kernel
/// dumps the whole vDSO (it is a special mapping, always dumped), and its
/// `.eh_frame` covers the clock_gettime/gettimeofday fast paths.
pub fn vdso(mem: &dyn MemoryView, base: u64) -> Option<Binary> {
    // The vDSO is two to four pages; read what is there.
    let mut len = 0usize;
    while len < 64 * 1024 && mem.read(base + len as u64, 4096).is_some() {
        len += 4096;
    }
    let bytes = mem.read(base, len)?.to_vec();
    let data = Bytes::whole(Backing::Owned(bytes));
    let obj = object::File::parse(&*data).ok()?;
    let bias = bias_from_segments(
        &[FileMapping {
            start: base,
            end: base + len as u64,
            offset: 0,
            path: "[vdso]".into(),
        }],
        &obj.segments()
            .map(|s| (s.file_range().0, s.address()))
            .collect::<Vec<_>>(),
    )?;
    Some(Binary {
        path: "[vdso]".into(),
        found_at: None,
        range: base..base + len as u64,
        mappings: vec![FileMapping {
            start: base,
            end: base + len as u64,
            offset: 0,
            path: "[vdso]".into(),
        }],
        bias: Some(bias),
        build_id_core: obj.build_id().ok().flatten().map(<[u8]>::to_vec),
        build_id_file: None,
        state: BinaryState::Ok,
        data: Some(data),
        stripped: false,
    })
}

/// The sections framehop needs, as slices of the binary's bytes.
pub fn unwind_sections(b: &Binary) -> Option<framehop::ExplicitModuleSectionInfo<Bytes>> {
    let data = b.data.as_ref()?;
    let obj = object::File::parse(&**data).ok()?;
    let sect = |name: &str| -> (Option<Range<u64>>, Option<Bytes>) {
        let Some(s) = obj.section_by_name(name) else {
            return (None, None);
        };
        let svma = s.address()..s.address().saturating_add(s.size());
        // Compressed sections (SHF_COMPRESSED .debug_frame) are skipped:
        // .eh_frame, which unwinding needs, is never compressed.
        let bytes = match s.compressed_file_range() {
            Ok(r) if r.format == object::CompressionFormat::None => {
                let start = usize::try_from(r.offset).ok();
                let end =
                    start.and_then(|s| s.checked_add(usize::try_from(r.uncompressed_size).ok()?));
                match (start, end) {
                    (Some(s), Some(e)) => data.slice(s..e),
                    _ => None,
                }
            }
            _ => None,
        };
        (Some(svma), bytes)
    };
    let (text_svma, text) = sect(".text");
    let (eh_frame_svma, eh_frame) = sect(".eh_frame");
    let (eh_frame_hdr_svma, eh_frame_hdr) = sect(".eh_frame_hdr");
    let (got_svma, _) = sect(".got");
    let (_, debug_frame) = sect(".debug_frame");
    Some(framehop::ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        text,
        stubs_svma: None,
        stub_helper_svma: None,
        got_svma,
        unwind_info: None,
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        debug_frame,
        text_segment_svma: None,
        text_segment: None,
    })
}

/// Up to `len` bytes of a binary's file at the runtime address `addr` (the
/// code at a crashing pc, which the core does not hold).
pub fn code_bytes(b: &Binary, addr: u64, len: usize) -> Option<Vec<u8>> {
    let data = b.data.as_ref()?;
    let off = usize::try_from(b.file_offset(addr)?).ok()?;
    let end = off.checked_add(len)?.min(data.len());
    data.get(off..end).map(<[u8]>::to_vec)
}

/// Where a binary's path resolves, for messages.
pub fn display_path(b: &Binary) -> String {
    match &b.found_at {
        Some(p) if p != Path::new(&b.path) => format!("{} (as {})", b.path, p.display()),
        _ => b.path.clone(),
    }
}
