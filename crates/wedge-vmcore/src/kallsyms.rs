//! The kernel's symbol table, decoded from its own memory.
//!
//! `scripts/kallsyms` links compressed tables into vmlinux (CONFIG_KALLSYMS);
//! VMCOREINFO exports their addresses since 6.5 (and Debian backports it to
//! 6.1):
//! - `kallsyms_num_syms`: u32 count;
//! - `kallsyms_names`: per symbol a length then that many token indices;
//!   the length takes two bytes when the first has bit 7 set (6.1+, for
//!   Rust's long names: `(b0 & 0x7f) | b1 << 7`); the first expanded
//!   character is the symbol type (`t`, `T`, `d`…);
//! - `kallsyms_token_table` / `kallsyms_token_index`: 256 NUL-terminated
//!   tokens and the u16 offset of each;
//! - `kallsyms_offsets` + `kallsyms_relative_base` (KALLSYMS_BASE_RELATIVE,
//!   every x86-64 kernel since 4.6): i32 offsets. With
//!   KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP, until 6.15) a non-negative offset
//!   is an absolute value (per-CPU variables, small numbers) and a negative
//!   one means `relative_base - 1 - offset`; without it, the offset is
//!   unsigned from relative_base.

use crate::error::{Error, Result};
use crate::mem::VirtMem;

/// One kernel symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub addr: u64,
    pub kind: char,
}

/// Symbols sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    pub syms: Vec<Symbol>,
    by_name: std::collections::HashMap<String, usize>,
    /// Text bounds, for deciding what an address is.
    pub text_start: u64,
    pub text_end: u64,
}

/// Where the tables are.
#[derive(Debug, Clone, Copy)]
pub struct KallsymsAddrs {
    pub num_syms: u64,
    pub names: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub offsets: u64,
    pub relative_base: u64,
}

impl Kallsyms {
    pub fn read(mem: &dyn VirtMem, a: KallsymsAddrs, absolute_percpu: bool) -> Result<Kallsyms> {
        let n = mem.u32(a.num_syms)? as usize;
        if n == 0 || n > 4_000_000 {
            return Err(Error::Corrupt {
                what: format!("kallsyms_num_syms = {n}"),
                addr: a.num_syms,
            });
        }
        let index = mem.read_vec(a.token_index, 512)?;
        // The token table is small (a few KiB); read up to the index, which
        // follows it in the kernel's layout, or 64 KiB.
        let table_len = if a.token_index > a.token_table && a.token_index - a.token_table < 1 << 16
        {
            (a.token_index - a.token_table) as usize
        } else {
            4096
        };
        let table = mem.read_vec(a.token_table, table_len)?;
        let mut tokens: Vec<Vec<u8>> = Vec::with_capacity(256);
        for i in 0..256 {
            let off = u16::from_le_bytes([index[2 * i], index[2 * i + 1]]) as usize;
            let t = table.get(off..).unwrap_or(&[]);
            let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
            tokens.push(t[..end].to_vec());
        }
        let offsets = mem.read_vec(a.offsets, n * 4)?;
        let base = mem.u64(a.relative_base)?;
        // Names: read in chunks as we go (the whole table is a few MiB).
        let mut names = NameStream {
            mem,
            addr: a.names,
            buf: Vec::new(),
            pos: 0,
        };
        let mut syms = Vec::with_capacity(n);
        for i in 0..n {
            let mut len = names.byte()? as usize;
            if len & 0x80 != 0 {
                len = (len & 0x7f) | ((names.byte()? as usize) << 7);
            }
            let mut name = Vec::with_capacity(len * 2);
            for _ in 0..len {
                name.extend_from_slice(&tokens[names.byte()? as usize]);
            }
            let raw = i32::from_le_bytes([
                offsets[4 * i],
                offsets[4 * i + 1],
                offsets[4 * i + 2],
                offsets[4 * i + 3],
            ]);
            let addr = if absolute_percpu {
                if raw >= 0 {
                    raw as u64
                } else {
                    base.wrapping_sub(1).wrapping_sub(raw as i64 as u64)
                }
            } else {
                base.wrapping_add(raw as u32 as u64)
            };
            let (kind, rest) = match name.split_first() {
                Some((k, r)) => (*k as char, r),
                None => ('?', &name[..]),
            };
            syms.push(Symbol {
                name: String::from_utf8_lossy(rest).into_owned(),
                addr,
                kind,
            });
        }
        Ok(Kallsyms::from_symbols(syms))
    }

    /// Builds the table from symbols in any order (also for System.map).
    pub fn from_symbols(mut syms: Vec<Symbol>) -> Kallsyms {
        syms.sort_by_key(|s| s.addr);
        let mut by_name = std::collections::HashMap::with_capacity(syms.len());
        for (i, s) in syms.iter().enumerate() {
            by_name.entry(s.name.clone()).or_insert(i);
        }
        let get = |n: &str| by_name.get(n).map(|&i: &usize| syms[i].addr);
        let text_start = get("_stext").unwrap_or(0);
        let text_end = get("_etext").unwrap_or(0);
        Kallsyms {
            syms,
            by_name,
            text_start,
            text_end,
        }
    }

    /// Parses a System.map (`addr type name` lines).
    pub fn parse_system_map(text: &str) -> Kallsyms {
        let syms = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?.chars().next()?;
                let name = it.next()?.to_string();
                Some(Symbol { name, addr, kind })
            })
            .collect();
        Kallsyms::from_symbols(syms)
    }

    pub fn addr(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|&i| self.syms[i].addr)
    }

    /// The function containing `addr`: (symbol, offset, size). Only text
    /// symbols count, so a stray data address never names a function.
    pub fn lookup(&self, addr: u64) -> Option<(&Symbol, u64, u64)> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let last = i.checked_sub(1)?;
        let at = self.syms[last].addr;
        // Several symbols can share an address (aliases such as
        // `__x64_sys_pause` and `__do_sys_pause`); like the kernel's
        // `get_symbol_pos`, name the first of them in kallsyms order.
        let first = self.syms[..=last].partition_point(|s| s.addr < at);
        let s = self.syms[first..=last]
            .iter()
            .find(|s| matches!(s.kind, 't' | 'T' | 'w' | 'W'))?;
        let next = self.syms.get(i).map_or(s.addr + 1, |n| n.addr);
        if addr >= next {
            return None;
        }
        Some((s, addr - s.addr, next - s.addr))
    }
}

impl Kallsyms {
    /// The symbol of any kind (text or data) an address falls in, and the
    /// offset into it: what a pointer points into (`init_task+0`). Only
    /// addresses of the kernel image count (from `_text`, or the lowest
    /// symbol at or above the kernel map when there is none): below it lie
    /// the direct map and vmalloc space, which no symbol describes, and
    /// the per-CPU symbols whose values are offsets, not addresses.
    pub fn containing(&self, addr: u64) -> Option<(&Symbol, u64)> {
        let floor = self
            .addr("_text")
            .unwrap_or(crate::x86_64::START_KERNEL_MAP);
        if addr < floor {
            return None;
        }
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let last = i.checked_sub(1)?;
        let at = self.syms[last].addr;
        // The end of the image: nothing above `_end` is the last symbol's.
        self.syms.get(i)?;
        let first = self.syms[..=last].partition_point(|s| s.addr < at);
        let s = &self.syms[first];
        Some((s, addr - s.addr))
    }
}

struct NameStream<'a> {
    mem: &'a dyn VirtMem,
    addr: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl NameStream<'_> {
    fn byte(&mut self) -> Result<u8> {
        if self.pos >= self.buf.len() {
            self.addr += self.buf.len() as u64;
            self.buf = self.mem.read_vec(self.addr, 64 << 10)?;
            self.pos = 0;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, addr: u64, kind: char) -> Symbol {
        Symbol {
            name: name.into(),
            addr,
            kind,
        }
    }

    #[test]
    fn containing_names_data_symbols_of_the_image_only() {
        let k = Kallsyms::from_symbols(vec![
            // A per-CPU symbol: its value is an offset, not an address.
            sym("runqueues", 0x2_0000, 'D'),
            sym("_text", 0xffff_ffff_8100_0000, 'T'),
            sym("init_task", 0xffff_ffff_8260_0000, 'D'),
            sym("init_mm", 0xffff_ffff_8260_4000, 'D'),
            sym("_end", 0xffff_ffff_8300_0000, 'B'),
        ]);
        let (s, off) = k.containing(0xffff_ffff_8260_0890).unwrap();
        assert_eq!((s.name.as_str(), off), ("init_task", 0x890));
        assert_eq!(
            k.containing(0xffff_ffff_8260_4000).unwrap().0.name,
            "init_mm"
        );
        // The direct map, per-CPU offsets and past the image: no symbol.
        assert!(k.containing(0xffff_8880_0010_0000).is_none());
        assert!(k.containing(0x2_0010).is_none());
        assert!(k.containing(0xffff_ffff_c000_0000).is_none());
        // lookup() still names text only.
        assert!(k.lookup(0xffff_ffff_8260_0890).is_none());
    }
}
