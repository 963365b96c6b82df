//! makedumpfile's kdump-compressed format ("diskdump"), as written by
//! `makedumpfile -c/-l/-p/-z` and QEMU's `dump-guest-memory -z/-l/-s`.
//!
//! Layout, in blocks of `block_size` (the page size):
//! - block 0: `disk_dump_header` (signature `KDUMP   `, version, utsname,
//!   block size, bitmap size, max_mapnr, current CPU, nr_cpus);
//! - `sub_hdr_size` blocks: `kdump_sub_header` (phys_base, the file offsets
//!   of VMCOREINFO and the ELF notes, 64-bit max_mapnr from version 6);
//! - `bitmap_blocks` blocks: two bitmaps of `max_mapnr` bits, one bit per
//!   page frame: first "is RAM", then "is in this dump";
//! - one 24-byte `page_desc { i64 offset; u32 size; u32 flags; u64
//!   page_flags }` for each page set in the second bitmap, in pfn order;
//! - the (possibly compressed) page data.

use crate::error::{Bytes, Error, Result};
use crate::notes::{parse_notes, Note};
use crate::source::ReadAt;

pub const SIGNATURE: &[u8; 8] = b"KDUMP   ";

const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;

/// A parsed kdump-compressed dump.
pub struct KdumpDump {
    pub version: i32,
    pub block_size: u64,
    pub max_mapnr: u64,
    pub utsname_release: String,
    pub utsname_machine: String,
    pub current_cpu: u32,
    pub nr_cpus: i32,
    pub phys_base: u64,
    pub vmcoreinfo: Option<String>,
    pub notes: Vec<Note>,
    pub warnings: Vec<String>,
    /// The "dumped" bitmap, one bit per pfn.
    dumped: Vec<u64>,
    /// Number of set bits before each 64-bit word of `dumped`.
    rank: Vec<u32>,
    desc_offset: u64,
    /// Pages in the dump: bits set in `dumped`, one page descriptor each.
    pub pages_dumped: u64,
}

impl KdumpDump {
    pub fn parse(src: &dyn ReadAt) -> Result<KdumpDump> {
        let mut h = [0u8; 464];
        src.read_exact_at(0, &mut h, "kdump header")?;
        if &h[..8] != SIGNATURE {
            return Err(Error::UnknownFormat {
                magic: h[..8].to_vec(),
            });
        }
        let hs = &h[..];
        let version = hs.i32_at(8).unwrap_or(0);
        // new_utsname: six 65-byte fields from offset 12.
        let uts = |i: usize| {
            let f = &h[12 + 65 * i..12 + 65 * (i + 1)];
            String::from_utf8_lossy(f.split(|&b| b == 0).next().unwrap_or(&[])).into_owned()
        };
        let release = uts(2);
        let machine = uts(4);
        let block_size = hs.i32_at(428).unwrap_or(0);
        let sub_hdr_size = hs.i32_at(432).unwrap_or(0);
        let bitmap_blocks = hs.u32_at(436).unwrap_or(0) as u64;
        let max_mapnr32 = hs.u32_at(440).unwrap_or(0) as u64;
        let current_cpu = hs.u32_at(456).unwrap_or(0);
        let nr_cpus = hs.i32_at(460).unwrap_or(0);
        if !(512..=(1 << 20)).contains(&block_size) || !(block_size as u32).is_power_of_two() {
            return Err(Error::Malformed {
                what: "kdump header block_size",
                offset: 428,
                detail: format!("{block_size}"),
            });
        }
        if !(0..=1 << 16).contains(&sub_hdr_size) {
            return Err(Error::Malformed {
                what: "kdump header sub_hdr_size",
                offset: 432,
                detail: format!("{sub_hdr_size}"),
            });
        }
        if !machine.is_empty() && machine != "x86_64" {
            return Err(Error::WrongArch { machine });
        }
        let bs = block_size as u64;
        let mut warnings = Vec::new();
        // kdump_sub_header, one block in.
        let mut sub = [0u8; 104];
        let sub_len = if version >= 6 { 104 } else { 80 };
        src.read_exact_at(bs, &mut sub[..sub_len], "kdump sub-header")?;
        let ss = &sub[..];
        let phys_base = ss.u64_at(0).unwrap_or(0);
        let (off_vi, size_vi) = (ss.u64_at(32).unwrap_or(0), ss.u64_at(40).unwrap_or(0));
        let (off_note, size_note) = (ss.u64_at(48).unwrap_or(0), ss.u64_at(56).unwrap_or(0));
        let max_mapnr = if version >= 6 {
            ss.u64_at(96).unwrap_or(max_mapnr32)
        } else {
            max_mapnr32
        };
        let mut vmcoreinfo = None;
        if version >= 3 && size_vi > 0 {
            if size_vi > 1 << 20 {
                warnings.push(format!("VMCOREINFO size {size_vi} ignored"));
            } else {
                match src.read_vec(off_vi, size_vi as usize, "VMCOREINFO") {
                    Ok(v) => vmcoreinfo = Some(String::from_utf8_lossy(&v).into_owned()),
                    Err(e) => warnings.push(e.to_string()),
                }
            }
        }
        let mut notes = Vec::new();
        if version >= 4 && size_note > 0 {
            if size_note > 64 << 20 {
                warnings.push(format!("note size {size_note} ignored"));
            } else {
                match src.read_vec(off_note, size_note as usize, "kdump ELF notes") {
                    Ok(v) => {
                        if let Err(e) = parse_notes(&v, off_note, &mut notes) {
                            warnings.push(e.to_string());
                        }
                    }
                    Err(e) => warnings.push(e.to_string()),
                }
            }
        }
        // Bitmaps.
        let bitmap_off = (1 + sub_hdr_size as u64) * bs;
        let bitmap_len = bitmap_blocks * bs;
        let half = bitmap_len / 2;
        let needed_bits = max_mapnr.div_ceil(8);
        if half < needed_bits || bitmap_len > 1 << 34 {
            return Err(Error::Malformed {
                what: "kdump bitmap size",
                offset: 436,
                detail: format!(
                    "{bitmap_blocks} blocks cannot hold two bitmaps of {max_mapnr} pages"
                ),
            });
        }
        let bytes = src.read_vec(
            bitmap_off + half,
            needed_bits as usize,
            "kdump dumped-page bitmap",
        )?;
        let mut dumped = Vec::with_capacity(bytes.len().div_ceil(8));
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            dumped.push(u64::from_le_bytes(w));
        }
        let mut rank = Vec::with_capacity(dumped.len());
        let mut acc = 0u32;
        let mut pages_dumped = 0u64;
        for w in &dumped {
            rank.push(acc);
            acc = acc.saturating_add(w.count_ones());
            pages_dumped += u64::from(w.count_ones());
        }
        let desc_offset = bitmap_off + bitmap_len;
        Ok(KdumpDump {
            version,
            block_size: bs,
            max_mapnr,
            utsname_release: release,
            utsname_machine: machine,
            current_cpu,
            nr_cpus,
            phys_base,
            vmcoreinfo,
            notes,
            warnings,
            dumped,
            rank,
            desc_offset,
            pages_dumped,
        })
    }

    /// The file size the headers imply, and whether that is exact or only
    /// a lower bound. The descriptor table (one per dumped page) comes
    /// first; the page data follows in pfn order (makedumpfile and QEMU
    /// both write it so), so the last descriptor's block ends the file.
    /// When the file stops inside the table, or the last descriptor was
    /// never written, only the table's end is known.
    pub fn expected_len(&self, src: &dyn ReadAt) -> (u64, bool) {
        let table_end = self
            .desc_offset
            .saturating_add(self.pages_dumped.saturating_mul(24));
        if self.pages_dumped == 0 {
            return (table_end, true);
        }
        let mut d = [0u8; 24];
        let last = table_end - 24;
        match src.read_at(last, &mut d) {
            Ok(24) => {
                let ds = &d[..];
                let off = ds.u64_at(0).unwrap_or(0);
                let size = ds.u32_at(8).unwrap_or(0) as u64;
                if off == 0 && size == 0 {
                    (table_end, false)
                } else {
                    (table_end.max(off.saturating_add(size)), true)
                }
            }
            _ => (table_end, false),
        }
    }

    /// Whether the page frame is in the dump.
    pub fn has_pfn(&self, pfn: u64) -> bool {
        let (w, b) = ((pfn / 64) as usize, pfn % 64);
        self.dumped.get(w).is_some_and(|x| x >> b & 1 == 1)
    }

    /// Reads one page frame (`block_size` bytes) into `out`.
    pub fn read_page(&self, src: &dyn ReadAt, pfn: u64, out: &mut [u8]) -> Result<()> {
        let paddr = pfn.saturating_mul(self.block_size);
        if !self.has_pfn(pfn) {
            return Err(Error::PageMissing { paddr });
        }
        let (w, b) = ((pfn / 64) as usize, pfn % 64);
        let below = self.dumped[w] & ((1u64 << b) - 1);
        let idx = self.rank[w] as u64 + below.count_ones() as u64;
        let mut d = [0u8; 24];
        let doff = self.desc_offset + idx * 24;
        src.read_exact_at(doff, &mut d, "kdump page descriptor")?;
        let ds = &d[..];
        let offset = ds.u64_at(0).unwrap_or(0);
        let size = ds.u32_at(8).unwrap_or(0) as u64;
        let flags = ds.u32_at(12).unwrap_or(0);
        let bs = self.block_size as usize;
        if offset == 0 && size == 0 {
            // An all-zero descriptor: never written (a truncated or
            // flattened stream cut short).
            return Err(Error::PageMissing { paddr });
        }
        let Some(out) = out.get_mut(..bs) else {
            return Err(Error::BadPage {
                paddr,
                detail: format!("block size {bs} larger than the page buffer"),
            });
        };
        if size > self.block_size * 2 {
            return Err(Error::BadPage {
                paddr,
                detail: format!("descriptor at {doff:#x} says {size} bytes"),
            });
        }
        let data = src.read_vec(offset, size as usize, "kdump page data")?;
        let bad = |detail: String| Error::BadPage { paddr, detail };
        let check = |v: Vec<u8>| -> Result<Vec<u8>> {
            if v.len() != bs {
                return Err(bad(format!("decompressed to {} bytes, not {bs}", v.len())));
            }
            Ok(v)
        };
        if flags & DUMP_DH_COMPRESSED_ZLIB != 0 {
            use std::io::Read;
            let mut v = Vec::with_capacity(bs);
            flate2::read::ZlibDecoder::new(&data[..])
                .take(bs as u64 + 1)
                .read_to_end(&mut v)
                .map_err(|e| bad(format!("zlib: {e}")))?;
            out.copy_from_slice(&check(v)?);
        } else if flags & DUMP_DH_COMPRESSED_LZO != 0 {
            let v = crate::lzo::decompress(&data, bs).map_err(|e| bad(format!("lzo: {e}")))?;
            out.copy_from_slice(&check(v)?);
        } else if flags & DUMP_DH_COMPRESSED_SNAPPY != 0 {
            let n = snap::raw::decompress_len(&data).map_err(|e| bad(format!("snappy: {e}")))?;
            if n != bs {
                return Err(bad(format!("snappy length {n}")));
            }
            snap::raw::Decoder::new()
                .decompress(&data, out)
                .map_err(|e| bad(format!("snappy: {e}")))?;
        } else if flags & DUMP_DH_COMPRESSED_ZSTD != 0 {
            use std::io::Read;
            // ruzstd's own Display of these errors is partly Rust debug
            // text; the shared helpers put them in words.
            let mut dec = ruzstd::decoding::StreamingDecoder::new(&data[..])
                .map_err(|e| bad(format!("zstd: {}", wedge_input::zstd_error_words(&e))))?;
            let mut v = Vec::with_capacity(bs);
            (&mut dec)
                .take(bs as u64 + 1)
                .read_to_end(&mut v)
                .map_err(|e| bad(format!("zstd: {}", wedge_input::zstd_io_error_words(&e))))?;
            out.copy_from_slice(&check(v)?);
        } else if size as usize == bs {
            out.copy_from_slice(&data);
        } else {
            return Err(bad(format!(
                "uncompressed page of {size} bytes, flags {flags:#x}"
            )));
        }
        Ok(())
    }
}
