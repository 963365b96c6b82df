//! The kernel log from the dump's printk ring buffer (the lockless
//! `printk_ringbuffer` of 5.10+; VMCOREINFO exports its layout as
//! `OFFSET(printk_ringbuffer.*)`, `OFFSET(prb_desc.*)`, …).
//!
//! Records live in a descriptor ring (`descs[]` + `infos[]`, 2^count_bits
//! entries) and a text data ring (2^size_bits bytes). Each descriptor's
//! `state_var` holds its id in the low 62 bits and its state in the top two
//! (0 reserved, 1 committed, 2 finalized, 3 reusable); its `text_blk_lpos`
//! gives the logical begin/next positions of its data block, which starts
//! with the descriptor id (an unsigned long) followed by the text. A block
//! that would straddle the ring's end is stored whole at offset 0.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use serde::Serialize;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub seq: u64,
    pub ts_nsec: u64,
    pub level: u8,
    pub text: String,
}

const MAX_RECORDS: u64 = 1 << 20;

/// Reads every committed record, oldest first.
pub fn read(k: &Kernel) -> Result<Vec<Record>> {
    let vi = &k.vmcoreinfo;
    let need = |v: Option<u64>, what: &str| {
        v.ok_or_else(|| Error::Missing {
            what: format!(
                "{what} in VMCOREINFO (kernels before 5.10 use the older log_buf, not read yet)"
            ),
        })
    };
    let prb_ptr = need(vi.symbol("prb"), "SYMBOL(prb)")?;
    let prb = k.mem.u64(prb_ptr)?;
    let o = |name: &str| need(vi.offset(name), &format!("OFFSET({name})"));
    let desc_ring = prb + o("printk_ringbuffer.desc_ring")?;
    let text_ring = prb + o("printk_ringbuffer.text_data_ring")?;
    let count_bits = k.mem.u32(desc_ring + o("prb_desc_ring.count_bits")?)?;
    let descs = k.mem.u64(desc_ring + o("prb_desc_ring.descs")?)?;
    let infos = k.mem.u64(desc_ring + o("prb_desc_ring.infos")?)?;
    let head_id = k.mem.u64(desc_ring + o("prb_desc_ring.head_id")?)?;
    let tail_id = k.mem.u64(desc_ring + o("prb_desc_ring.tail_id")?)?;
    let size_bits = k.mem.u32(text_ring + o("prb_data_ring.size_bits")?)?;
    let data = k.mem.u64(text_ring + o("prb_data_ring.data")?)?;
    if count_bits > 24 || size_bits > 32 {
        return Err(Error::Corrupt {
            what: format!("printk ring sizes 2^{count_bits} records / 2^{size_bits} bytes"),
            addr: prb,
        });
    }
    let desc_size = vi.size("prb_desc").unwrap_or(24);
    let info_size = vi.size("printk_info").unwrap_or(88);
    let sv_off = o("prb_desc.state_var")?;
    let lpos_off = o("prb_desc.text_blk_lpos")?;
    let begin_off = o("prb_data_blk_lpos.begin")?;
    let next_off = o("prb_data_blk_lpos.next")?;
    let seq_off = o("printk_info.seq")?;
    let ts_off = o("printk_info.ts_nsec")?;
    let len_off = o("printk_info.text_len")?;
    let count = 1u64 << count_bits;
    let size = 1u64 << size_bits;
    // The whole text ring at once: one read instead of thousands.
    let ring = k.mem.read_vec(data, size as usize)?;
    let id_mask = (1u64 << 62) - 1;
    let mut out = Vec::new();
    let mut id = tail_id & id_mask;
    let head = head_id & id_mask;
    let mut n = 0u64;
    loop {
        n += 1;
        if n > MAX_RECORDS.min(count + 1) {
            break;
        }
        let d = descs + (id % count) * desc_size;
        let sv = k.mem.u64(d + sv_off)?;
        let state = sv >> 62;
        if sv & id_mask == id && (state == 1 || state == 2) {
            let begin = k.mem.u64(d + lpos_off + begin_off)?;
            let next = k.mem.u64(d + lpos_off + next_off)?;
            let info = infos + (id % count) * info_size;
            let seq = k.mem.u64(info + seq_off)?;
            let ts = k.mem.u64(info + ts_off)?;
            let text_len = k.mem.u16(info + len_off)? as u64;
            // facility (u8) then `flags:5, level:3` right after text_len.
            let lvl = k.mem.u8(info + len_off + 3).map(|b| b >> 5).unwrap_or(6);
            if let Some(text) = block_text(&ring, size, begin, next, text_len) {
                out.push(Record {
                    seq,
                    ts_nsec: ts,
                    level: lvl,
                    text,
                });
            }
        }
        if id == head {
            break;
        }
        id = (id + 1) & id_mask;
    }
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

/// The text of the data block `[begin, next)` (logical positions).
fn block_text(ring: &[u8], size: u64, begin: u64, next: u64, text_len: u64) -> Option<String> {
    // Data-less records (begin & 1 set, or begin == next) have no text.
    if begin & 1 != 0 || begin == next {
        return Some(String::new());
    }
    let wraps = |lpos: u64| lpos / size;
    let mut start = begin % size;
    if wraps(begin) != wraps(next) {
        start = 0; // stored whole at the ring's start
    }
    // Skip the block's leading id (unsigned long).
    let t = (start + 8) as usize;
    let end = t.checked_add(text_len as usize)?;
    let bytes = ring.get(t..end.min(ring.len()))?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// The log as dmesg prints it (`[    1.234567] text`), one line per line
/// of each record; what `wedge log` parses.
pub fn to_dmesg(records: &[Record]) -> String {
    let mut s = String::new();
    for r in records {
        let secs = r.ts_nsec / 1_000_000_000;
        let us = (r.ts_nsec % 1_000_000_000) / 1000;
        for line in r.text.split('\n') {
            s.push_str(&format!("[{secs:5}.{us:06}] {line}\n"));
        }
    }
    s
}

/// The panic message, from the last `Kernel panic - not syncing:` line.
pub fn panic_message(records: &[Record]) -> Option<String> {
    // The last line that starts the panic (not the `---[ end Kernel
    // panic - not syncing: … ]---` trailer).
    records.iter().rev().find_map(|r| {
        r.text
            .strip_prefix("Kernel panic - not syncing: ")
            .map(|m| m.trim_end().to_string())
    })
}
