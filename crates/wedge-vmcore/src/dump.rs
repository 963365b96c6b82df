//! A dump file opened whatever its format: physical memory, CPU notes and
//! VMCOREINFO behind one interface.

use crate::elf::{self, ElfDump, Load};
use crate::error::{Error, Result};
use crate::kdump::{self, KdumpDump};
use crate::notes::{parse_prstatus, CpuRegs, VmcoreInfo, NT_PRSTATUS};
use crate::source::{FileSource, Flattened, ReadAt, FLAT_SIGNATURE};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

pub const PAGE_SIZE: u64 = 4096;
const CACHE_PAGES: usize = 8192;

enum Body {
    Elf(ElfDump),
    Kdump(KdumpDump),
}

/// An open crash dump.
pub struct Dump {
    src: Box<dyn ReadAt>,
    body: Body,
    /// `elf`, `kdump`, or `kdump (flattened)`.
    pub format: String,
    pub vmcoreinfo: Option<VmcoreInfo>,
    /// Registers of each CPU, in note order (= CPU number for kdump and QEMU).
    pub cpus: Vec<CpuRegs>,
    /// Problems that did not stop reading.
    pub warnings: Vec<String>,
    /// For a flattened dump: whether its stream reached the end marker.
    flat_complete: Option<bool>,
    cache: RefCell<HashMap<u64, Box<[u8]>>>,
}

/// How much of a dump file is there, against what its headers declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Extent {
    /// Bytes of dump present (for a flattened dump: of the dump rebuilt
    /// from its stream).
    pub present_bytes: u64,
    /// Bytes the headers declare: the end of the last `PT_LOAD` (ELF), of
    /// the last page block (kdump).
    pub expected_bytes: u64,
    /// False when `expected_bytes` is only a lower bound (the file stops
    /// before the descriptor that would tell).
    pub exact: bool,
    /// For a flattened dump: the stream stops before its end marker.
    pub stream_cut: bool,
}

impl Extent {
    /// Whether part of the dump is missing.
    pub fn truncated(&self) -> bool {
        self.stream_cut || !self.exact || self.present_bytes < self.expected_bytes
    }

    /// How much is there, for people: "134 of 269 MB", "36.0 of 36.4 MB",
    /// "180 of at least 268 MB".
    pub fn size_text(&self) -> String {
        // Megabytes (10^6), with a decimal when that is needed to tell the
        // two sizes apart; bytes when even that is not enough.
        let mb = |x: u64, d: usize| format!("{:.d$}", x as f64 / 1e6);
        let (have, want) = [0, 1]
            .iter()
            .map(|&d| (mb(self.present_bytes, d), mb(self.expected_bytes, d)))
            .find(|(a, b)| a != b)
            .map(|(a, b)| (a, format!("{b} MB")))
            .unwrap_or_else(|| {
                (
                    self.present_bytes.to_string(),
                    format!("{} bytes", self.expected_bytes),
                )
            });
        if self.exact {
            format!("{have} of {want}")
        } else if self.expected_bytes > self.present_bytes {
            format!("{have} of at least {want}")
        } else {
            // Only a bound below what is there: the size is not known.
            format!("{} MB", mb(self.present_bytes, 0))
        }
    }
}

impl Dump {
    /// Opens a dump file, detecting its format from its first bytes.
    pub fn open(path: &Path) -> Result<Dump> {
        let src = FileSource::open(path)?;
        Dump::from_source(Box::new(src))
    }

    /// Opens a dump held in any byte source (tests and fuzzing use memory).
    pub fn from_source(src: Box<dyn ReadAt>) -> Result<Dump> {
        let mut magic = [0u8; 16];
        let n = src.read_at(0, &mut magic)?;
        let magic = &magic[..n];
        if magic.starts_with(b"\x7fELF") {
            let e = elf::parse(src.as_ref())?;
            if e.machine != elf::EM_X86_64 {
                return Err(Error::WrongArch {
                    machine: elf::machine_name(e.machine),
                });
            }
            let vi = e
                .notes
                .iter()
                .find(|n| n.name == "VMCOREINFO")
                .map(|n| VmcoreInfo::parse(&String::from_utf8_lossy(&n.desc)));
            let cpus = cpus_of(&e.notes);
            let warnings = e.warnings.clone();
            return Ok(Dump {
                src,
                body: Body::Elf(e),
                format: "elf".into(),
                vmcoreinfo: vi,
                cpus,
                warnings,
                flat_complete: None,
                cache: RefCell::new(HashMap::new()),
            });
        }
        let (src, format, flat_complete): (Box<dyn ReadAt>, &str, _) =
            if magic.starts_with(FLAT_SIGNATURE) {
                let f = Flattened::new(src)?;
                let complete = f.is_complete();
                (Box::new(f), "kdump (flattened)", Some(complete))
            } else {
                (src, "kdump", None)
            };
        let k = KdumpDump::parse(src.as_ref())?;
        let _ = kdump::SIGNATURE;
        let vi = k.vmcoreinfo.as_deref().map(VmcoreInfo::parse);
        let cpus = cpus_of(&k.notes);
        let warnings = k.warnings.clone();
        Ok(Dump {
            src,
            body: Body::Kdump(k),
            format: format.into(),
            vmcoreinfo: vi,
            cpus,
            warnings,
            flat_complete,
            cache: RefCell::new(HashMap::new()),
        })
    }

    /// How much of the dump is in the file.
    pub fn extent(&self) -> Extent {
        let present_bytes = self.src.len();
        let (expected_bytes, exact) = match &self.body {
            Body::Elf(e) => (
                e.loads
                    .iter()
                    .map(|l| l.offset.saturating_add(l.filesz))
                    .max()
                    .unwrap_or(0),
                true,
            ),
            Body::Kdump(k) => k.expected_len(self.src.as_ref()),
        };
        Extent {
            present_bytes,
            expected_bytes,
            exact,
            stream_cut: self.flat_complete == Some(false),
        }
    }

    /// The kernel release the dump says it is from.
    pub fn release(&self) -> Option<String> {
        if let Some(r) = self.vmcoreinfo.as_ref().and_then(|v| v.osrelease()) {
            return Some(r.to_string());
        }
        match &self.body {
            Body::Kdump(k) if !k.utsname_release.is_empty() => Some(k.utsname_release.clone()),
            _ => None,
        }
    }

    /// The CPU kdump recorded as the crashing one (kdump-compressed only).
    pub fn header_current_cpu(&self) -> Option<u32> {
        match &self.body {
            Body::Kdump(k) => Some(k.current_cpu),
            Body::Elf(_) => None,
        }
    }

    /// Physical memory ranges present in the dump.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        match &self.body {
            Body::Elf(e) => e
                .loads
                .iter()
                .map(|l| (l.paddr, l.paddr + l.memsz))
                .collect(),
            Body::Kdump(k) => vec![(0, k.max_mapnr * k.block_size)],
        }
    }

    fn load_page(&self, pfn: u64) -> Result<Box<[u8]>> {
        let mut page = vec![0u8; PAGE_SIZE as usize].into_boxed_slice();
        let paddr = pfn * PAGE_SIZE;
        match &self.body {
            Body::Elf(e) => {
                let i = e.loads.partition_point(|l| l.paddr + l.memsz <= paddr);
                let Some(l): Option<&Load> = e.loads.get(i).filter(|l| l.paddr <= paddr) else {
                    return Err(Error::PageMissing { paddr });
                };
                let rel = paddr - l.paddr;
                // Bytes past the end of a truncated file are missing; bytes
                // beyond p_filesz but within p_memsz are zero (ELF rules).
                if rel >= l.avail {
                    return if rel >= l.filesz && rel < l.memsz {
                        Ok(page)
                    } else {
                        Err(Error::PageMissing { paddr })
                    };
                }
                let n = (l.avail - rel).min(PAGE_SIZE) as usize;
                self.src
                    .read_exact_at(l.offset + rel, &mut page[..n], "PT_LOAD data")?;
            }
            Body::Kdump(k) => {
                if k.block_size != PAGE_SIZE {
                    return Err(Error::Malformed {
                        what: "kdump block_size",
                        offset: 428,
                        detail: format!("{} (only 4096 is supported)", k.block_size),
                    });
                }
                k.read_page(self.src.as_ref(), pfn, &mut page)?;
            }
        }
        Ok(page)
    }

    /// Reads physical memory.
    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pa = paddr
                .checked_add(done as u64)
                .ok_or(Error::PageMissing { paddr })?;
            let pfn = pa / PAGE_SIZE;
            let off = (pa % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            let mut cache = self.cache.borrow_mut();
            if !cache.contains_key(&pfn) {
                let page = self.load_page(pfn)?;
                if cache.len() >= CACHE_PAGES {
                    cache.clear();
                }
                cache.insert(pfn, page);
            }
            let page = &cache[&pfn];
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

fn cpus_of(notes: &[crate::notes::Note]) -> Vec<CpuRegs> {
    notes
        .iter()
        .filter(|n| n.kind == NT_PRSTATUS && n.name == "CORE")
        .filter_map(|n| parse_prstatus(&n.desc).map(|(_, r)| r))
        .collect()
}
