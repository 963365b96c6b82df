//! A small reader of BTF, the kernel's compact type information
//! (CONFIG_DEBUG_INFO_BTF, 5.2+). The kernel keeps vmlinux's `.BTF` section
//! in memory between `__start_BTF` and `__stop_BTF` (for BPF), so a dump
//! carries its own struct layouts: no DWARF needed.
//!
//! Format (`include/uapi/linux/btf.h`): a header (magic 0xeB9F, version 1,
//! hdr_len, type_off/len, str_off/len), then types numbered from 1, each a
//! 12-byte `btf_type { name_off; info (vlen:16, kind:5 at 24, kind_flag at
//! 31); size_or_type }` followed by kind-specific data.

use crate::error::{Bytes, Error, Result};
use std::collections::HashMap;

pub type TypeId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
    Unknown(u8),
}

impl Kind {
    fn from(k: u32) -> Kind {
        match k {
            0 => Kind::Void,
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            k => Kind::Unknown(k as u8),
        }
    }
}

/// One type's header, and where its extra data starts in the type section.
#[derive(Debug, Clone, Copy)]
struct TypeRec {
    name_off: u32,
    kind: Kind,
    vlen: u16,
    kind_flag: bool,
    size_or_type: u32,
    extra: usize,
}

impl TypeRec {
    /// Type id 0: BTF's implicit `void`, never written in the blob.
    const VOID: TypeRec = TypeRec {
        name_off: 0,
        kind: Kind::Void,
        vlen: 0,
        kind_flag: false,
        size_or_type: 0,
        extra: 0,
    };
}

/// A struct/union member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Offset from the start of the outermost struct asked about, in bits.
    pub bit_offset: u64,
    /// Bit-field width; 0 for a plain member.
    pub bitfield_size: u32,
    pub ty: TypeId,
}

/// An integer type's encoding (`BTF_KIND_INT`'s extra word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntInfo {
    /// Bytes.
    pub size: u32,
    pub signed: bool,
    pub is_char: bool,
    pub is_bool: bool,
    /// Bits used (e.g. 1 for some bool encodings); at most 128.
    pub bits: u32,
}

/// Parsed BTF.
pub struct Btf {
    types: Vec<TypeRec>,
    data: Vec<u8>,
    type_base: usize,
    str_base: usize,
    str_len: usize,
    /// A module's split BTF (on top of vmlinux's): where its own strings
    /// are in `data` and how many; their offsets start at `str_len`.
    split_str: Option<(usize, usize)>,
    by_name: HashMap<String, Vec<TypeId>>,
}

impl Btf {
    pub fn parse(data: Vec<u8>) -> Result<Btf> {
        Btf::parse_on(data, None)
    }

    /// Parses a module's BTF, which is *split* BTF on top of vmlinux's
    /// (`base`): its type ids continue after the base's last and its
    /// string offsets after the base's strings, so one combined table
    /// answers for both (`struct fuse_conn` and the vmlinux types its
    /// members name). Costs a copy of the base's bytes and type records;
    /// names index the module's own types only ([`Btf::find`] of a vmlinux
    /// type goes to the base).
    pub fn parse_split(base: &Btf, data: Vec<u8>) -> Result<Btf> {
        Btf::parse_on(data, Some(base))
    }

    fn parse_on(blob: Vec<u8>, base: Option<&Btf>) -> Result<Btf> {
        // Split BTF is appended to a copy of the base's bytes: `shift` is
        // where its header starts.
        let (data, shift) = match base {
            Some(b) => {
                let mut d = Vec::with_capacity(b.data.len() + blob.len());
                d.extend_from_slice(&b.data);
                let shift = d.len();
                d.extend_from_slice(&blob);
                (d, shift)
            }
            None => (blob, 0),
        };
        let d = &data[shift..];
        let bad = |what: &'static str, offset: usize, detail: String| Error::Malformed {
            what,
            offset: offset as u64,
            detail,
        };
        if d.u16_at(0) != Some(0xeb9f) {
            return Err(bad("BTF magic", 0, format!("{:04x?}", d.u16_at(0))));
        }
        let hdr_len = d.u32_at(4).unwrap_or(0) as usize;
        let type_off = d.u32_at(8).unwrap_or(0) as usize;
        let type_len = d.u32_at(12).unwrap_or(0) as usize;
        let str_off = d.u32_at(16).unwrap_or(0) as usize;
        let str_len = d.u32_at(20).unwrap_or(0) as usize;
        let type_base = hdr_len.saturating_add(type_off);
        let str_base = hdr_len.saturating_add(str_off);
        if hdr_len < 24
            || type_base.saturating_add(type_len) > d.len()
            || str_base.saturating_add(str_len) > d.len()
        {
            return Err(bad(
                "BTF header",
                0,
                format!(
                    "sections ({type_off}+{type_len}, {str_off}+{str_len}) exceed {} bytes",
                    d.len()
                ),
            ));
        }
        let mut types = match base {
            Some(b) => b.types.clone(),
            None => vec![TypeRec::VOID],
        };
        let end = type_base + type_len;
        let mut off = type_base;
        while off + 12 <= end {
            let info = d.u32_at(off + 4).unwrap_or(0);
            let rec = TypeRec {
                name_off: d.u32_at(off).unwrap_or(0),
                kind: Kind::from((info >> 24) & 0x1f),
                vlen: (info & 0xffff) as u16,
                kind_flag: info >> 31 != 0,
                size_or_type: d.u32_at(off + 8).unwrap_or(0),
                extra: shift + off + 12,
            };
            let v = rec.vlen as usize;
            let extra = match rec.kind {
                Kind::Int | Kind::Var | Kind::DeclTag => 4,
                Kind::Array => 12,
                Kind::Struct | Kind::Union => 12 * v,
                Kind::Enum => 8 * v,
                Kind::FuncProto => 8 * v,
                Kind::Datasec => 12 * v,
                Kind::Enum64 => 12 * v,
                Kind::Unknown(k) => {
                    return Err(bad("BTF type kind", off, format!("unknown kind {k}")));
                }
                _ => 0,
            };
            types.push(rec);
            off += 12 + extra;
        }
        let first_new = base.map_or(1, |b| b.types.len());
        let mut btf = match base {
            Some(b) => Btf {
                types,
                data,
                type_base: b.type_base,
                str_base: b.str_base,
                str_len: b.str_len,
                split_str: Some((shift + str_base, str_len)),
                by_name: HashMap::new(),
            },
            None => Btf {
                types,
                data,
                type_base,
                str_base,
                str_len,
                split_str: None,
                by_name: HashMap::new(),
            },
        };
        // A split table indexes only its own names (the module's types);
        // the base's types are reached by id from them, and by name in the
        // base itself: a copy of vmlinux's ~100,000 names would cost more
        // than the module's whole BTF.
        let mut by_name: HashMap<String, Vec<TypeId>> = HashMap::new();
        for (i, t) in btf.types.iter().enumerate().skip(first_new) {
            if t.name_off != 0 {
                by_name
                    .entry(btf.str_at(t.name_off).to_string())
                    .or_default()
                    .push(i as TypeId);
            }
        }
        btf.by_name = by_name;
        let _ = btf.type_base;
        Ok(btf)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    fn str_at(&self, off: u32) -> &str {
        let off = off as usize;
        let (base, len, off) = match self.split_str {
            Some((base, len)) if off >= self.str_len => (base, len, off - self.str_len),
            _ => (self.str_base, self.str_len, off),
        };
        if off >= len {
            return "";
        }
        let s = &self.data[base + off..base + len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn rec(&self, id: TypeId) -> Option<&TypeRec> {
        self.types.get(id as usize)
    }

    pub fn kind(&self, id: TypeId) -> Option<Kind> {
        self.rec(id).map(|r| r.kind)
    }

    pub fn name(&self, id: TypeId) -> &str {
        self.rec(id).map_or("", |r| self.str_at(r.name_off))
    }

    /// A named type of one of the given kinds (e.g. `struct task_struct`).
    pub fn find(&self, name: &str, kinds: &[Kind]) -> Option<TypeId> {
        self.by_name
            .get(name)?
            .iter()
            .copied()
            .find(|&id| self.kind(id).is_some_and(|k| kinds.contains(&k)))
    }

    pub fn find_struct(&self, name: &str) -> Option<TypeId> {
        self.find(name, &[Kind::Struct, Kind::Union])
    }

    /// Strips typedefs and qualifiers.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        for _ in 0..32 {
            match self.rec(id) {
                Some(r)
                    if matches!(
                        r.kind,
                        Kind::Typedef
                            | Kind::Volatile
                            | Kind::Const
                            | Kind::Restrict
                            | Kind::TypeTag
                    ) =>
                {
                    id = r.size_or_type
                }
                _ => return id,
            }
        }
        id
    }

    /// Size in bytes of a type.
    pub fn size_of(&self, mut id: TypeId) -> Option<u64> {
        // An array's size is its length times its element's, and the
        // element may be an array again (`int a[2][3]`): a loop with a
        // bound rather than recursion, since BTF read from a dump can make
        // an array its own element (found by the vmcore_btf fuzz target as
        // a stack overflow). Kernel BTF nests arrays a few levels deep.
        let mut count: u64 = 1;
        for _ in 0..32 {
            id = self.resolve(id);
            let r = self.rec(id)?;
            let size = match r.kind {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float => r.size_or_type as u64,
                Kind::Ptr => 8,
                Kind::Array => {
                    let (elem, n) = self.array(id)?;
                    count = count.checked_mul(n as u64)?;
                    id = elem;
                    continue;
                }
                _ => return None,
            };
            return size.checked_mul(count);
        }
        None
    }

    /// Element type and length of an array type.
    pub fn array(&self, id: TypeId) -> Option<(TypeId, u32)> {
        let r = self.rec(self.resolve(id))?;
        if r.kind != Kind::Array {
            return None;
        }
        Some((self.data.u32_at(r.extra)?, self.data.u32_at(r.extra + 8)?))
    }

    /// What a pointer points to.
    pub fn pointee(&self, id: TypeId) -> Option<TypeId> {
        let r = self.rec(self.resolve(id))?;
        (r.kind == Kind::Ptr).then_some(r.size_or_type)
    }

    /// The members of a struct or union, in order (none for other kinds;
    /// typedefs are not followed: pass a resolved id). Anonymous members
    /// have an empty name.
    pub fn members(&self, id: TypeId) -> impl Iterator<Item = (&str, Member)> + '_ {
        let r = self.rec(id).copied();
        let n = r
            .filter(|r| matches!(r.kind, Kind::Struct | Kind::Union))
            .map_or(0, |r| r.vlen as usize);
        (0..n).filter_map(move |i| {
            let r = r?;
            let m = r.extra + 12 * i;
            let name_off = self.data.u32_at(m)?;
            let ty = self.data.u32_at(m + 4)?;
            let off = self.data.u32_at(m + 8)?;
            let (bit_offset, bitfield_size) = if r.kind_flag {
                ((off & 0xff_ffff) as u64, off >> 24)
            } else {
                (off as u64, 0)
            };
            Some((
                self.str_at(name_off),
                Member {
                    bit_offset,
                    bitfield_size,
                    ty,
                },
            ))
        })
    }

    /// A BTF blob with no types, for a kernel built without BTF: lookups
    /// find nothing instead of every caller handling a missing table.
    pub fn empty() -> Btf {
        Btf {
            types: vec![TypeRec::VOID],
            data: Vec::new(),
            type_base: 0,
            str_base: 0,
            str_len: 0,
            split_str: None,
            by_name: HashMap::new(),
        }
    }

    /// The type a pointer, typedef, qualifier, variable or function refers
    /// to (`size_or_type` of those kinds); `None` for the others.
    pub fn target(&self, id: TypeId) -> Option<TypeId> {
        let r = self.rec(id)?;
        matches!(
            r.kind,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Var
                | Kind::Func
                | Kind::FuncProto
        )
        .then_some(r.size_or_type)
    }

    /// Number of members, enumerators or parameters.
    pub fn vlen(&self, id: TypeId) -> u16 {
        self.rec(id).map_or(0, |r| r.vlen)
    }

    /// The kind flag: bit-field members with their sizes (struct/union),
    /// a signed enum (6.0+).
    pub fn kind_flag(&self, id: TypeId) -> bool {
        self.rec(id).is_some_and(|r| r.kind_flag)
    }

    /// An integer's encoding: its `BTF_INT_ENCODING` bits (signed, char,
    /// bool) and width; `None` for other kinds.
    pub fn int_info(&self, id: TypeId) -> Option<IntInfo> {
        let r = self.rec(id)?;
        if r.kind != Kind::Int {
            return None;
        }
        let v = self.data.u32_at(r.extra)?;
        let enc = (v >> 24) & 0xf;
        Some(IntInfo {
            size: r.size_or_type,
            signed: enc & 1 != 0,
            is_char: enc & 2 != 0,
            is_bool: enc & 4 != 0,
            bits: v & 0xff,
        })
    }

    /// An enum's enumerators, names and values (Enum64 too).
    pub fn enumerators(&self, id: TypeId) -> Vec<(&str, i64)> {
        let Some(r) = self.rec(id) else {
            return Vec::new();
        };
        let v = r.vlen as usize;
        let mut out = Vec::with_capacity(v);
        for j in 0..v {
            let item = match r.kind {
                Kind::Enum => {
                    let e = r.extra + 8 * j;
                    self.data
                        .u32_at(e)
                        .zip(self.data.u32_at(e + 4))
                        .map(|(n, raw)| {
                            // kind_flag: a signed enum; unsigned ones keep
                            // their 32-bit value.
                            let val = if r.kind_flag {
                                raw as i32 as i64
                            } else {
                                raw as i64
                            };
                            (n, val)
                        })
                }
                Kind::Enum64 => {
                    let e = r.extra + 12 * j;
                    match (
                        self.data.u32_at(e),
                        self.data.u32_at(e + 4),
                        self.data.u32_at(e + 8),
                    ) {
                        (Some(n), Some(lo), Some(hi)) => {
                            Some((n, ((hi as u64) << 32 | lo as u64) as i64))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            match item {
                Some((n, val)) => out.push((self.str_at(n), val)),
                None => break,
            }
        }
        out
    }

    /// Every type name with the ids that carry it (for completion and for
    /// naming the near ones of a misspelt name).
    pub fn names(&self) -> impl Iterator<Item = (&str, &[TypeId])> + '_ {
        self.by_name.iter().map(|(n, ids)| (n.as_str(), &ids[..]))
    }

    /// A variable BTF describes (the per-CPU variables: pahole emits a VAR
    /// for each in the `.data..percpu` DATASEC) and its type.
    pub fn find_var(&self, name: &str) -> Option<TypeId> {
        let id = self.find(name, &[Kind::Var])?;
        self.target(id)
    }

    /// Looks up one member by name, descending into anonymous struct and
    /// union members (the kernel uses them a lot: `task_struct`'s
    /// randomized_struct_fields, `page`'s unions…).
    ///
    /// `budget` bounds the members looked at in all: a corrupt BTF whose
    /// anonymous members lead back into their own struct would otherwise
    /// cost vlen^depth steps (found by the fuzzer).
    fn member1(&self, id: TypeId, name: &str, depth: u32, budget: &mut u32) -> Option<Member> {
        if depth > 8 {
            return None;
        }
        let id = self.resolve(id);
        for (n, m) in self.members(id) {
            *budget = budget.checked_sub(1)?;
            if n == name {
                return Some(m);
            }
            if n.is_empty() {
                if let Some(inner) = self.member1(m.ty, name, depth + 1, budget) {
                    return Some(Member {
                        bit_offset: m.bit_offset + inner.bit_offset,
                        ..inner
                    });
                }
            }
        }
        None
    }

    /// A member by dotted path (`thread.sp`, `pending.signal`), array
    /// elements not included; the offset is from the start of `id`.
    pub fn member(&self, id: TypeId, path: &str) -> Option<Member> {
        let mut cur = id;
        let mut total = 0u64;
        let mut last = None;
        for part in path.split('.') {
            // The largest real struct (task_struct with its anonymous
            // unions) has a few hundred members at every depth together.
            let mut budget = 1 << 16;
            let m = self.member1(cur, part, 0, &mut budget)?;
            total += m.bit_offset;
            cur = m.ty;
            last = Some(Member {
                bit_offset: total,
                ..m
            });
        }
        last
    }

    /// Byte offset of `struct_name.path`.
    pub fn offset_of(&self, struct_name: &str, path: &str) -> Option<u64> {
        let id = self.find_struct(struct_name)?;
        let m = self.member(id, path)?;
        Some(m.bit_offset / 8)
    }

    /// The value of an enumerator, searching every enum.
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        for (i, r) in self.types.iter().enumerate() {
            let v = r.vlen as usize;
            match r.kind {
                Kind::Enum => {
                    for j in 0..v {
                        let e = r.extra + 8 * j;
                        if self.str_at(self.data.u32_at(e)?) == name {
                            let raw = self.data.u32_at(e + 4)?;
                            // kind_flag: signed enum (6.0+); older BTF is signed too.
                            return Some(raw as i32 as i64);
                        }
                    }
                }
                Kind::Enum64 => {
                    for j in 0..v {
                        let e = r.extra + 12 * j;
                        if self.str_at(self.data.u32_at(e)?) == name {
                            let lo = self.data.u32_at(e + 4)? as u64;
                            let hi = self.data.u32_at(e + 8)? as u64;
                            return Some((hi << 32 | lo) as i64);
                        }
                    }
                }
                _ => {}
            }
            let _ = i;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw BTF file: the header (magic, version 1, 24-byte header, type
    /// section at 0, strings after it), then the types and the strings.
    fn raw(t: Vec<u8>, strs: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0xeb9fu16.to_le_bytes());
        b.extend([1u8, 0]);
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((strs.len() as u32).to_le_bytes());
        b.extend(t);
        b.extend(strs);
        b
    }

    /// Builds a BTF blob: `struct s { int a; struct { long b; }; }`.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0s\0a\0b\0long\0".to_vec();
        let mut t = Vec::new();
        let ty = |t: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, sz: u32| {
            t.extend(name.to_le_bytes());
            t.extend((kind << 24 | vlen).to_le_bytes());
            t.extend(sz.to_le_bytes());
        };
        // 1: int
        ty(&mut t, 1, 1, 0, 4);
        t.extend((32u32).to_le_bytes());
        // 2: long
        ty(&mut t, 11, 1, 0, 8);
        t.extend((64u32).to_le_bytes());
        // 3: anon struct { long b; }
        ty(&mut t, 0, 4, 1, 8);
        t.extend([9u32, 2, 0].iter().flat_map(|v| v.to_le_bytes()));
        // 4: struct s { int a; <anon> }
        ty(&mut t, 5, 4, 2, 16);
        t.extend([7u32, 1, 0].iter().flat_map(|v| v.to_le_bytes()));
        t.extend([0u32, 3, 64].iter().flat_map(|v| v.to_le_bytes()));
        raw(t, &strs)
    }

    /// A fuzzer input whose anonymous members lead back into their own
    /// struct: a member lookup must end after a bounded number of steps
    /// (it took more than 10 s before the budget).
    #[test]
    fn anonymous_member_loops_end() {
        let data = include_bytes!("../../../fuzz/regressions/vmcore_btf/anonymous-members-loop");
        if let Ok(btf) = Btf::parse(data.to_vec()) {
            let _ = btf.offset_of("task_struct", "thread.sp");
            for id in 0..btf.len().min(64) as u32 {
                let _ = btf.member(id, "a.b.c");
            }
        }
    }

    /// A module's split BTF: ids after the base's, strings after the
    /// base's strings, members naming base types (`struct m { struct s
    /// *p; int x; }` over `blob()`).
    #[test]
    fn split_btf_continues_the_base() {
        let base = Btf::parse(blob()).unwrap();
        let base_str_len = u32::from_le_bytes(blob()[20..24].try_into().unwrap());
        let strs = b"m\0p\0x\0".to_vec();
        let (m, p, x) = (base_str_len, base_str_len + 2, base_str_len + 4);
        let mut t = Vec::new();
        let ty = |t: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, sz: u32| {
            t.extend(name.to_le_bytes());
            t.extend((kind << 24 | vlen).to_le_bytes());
            t.extend(sz.to_le_bytes());
        };
        // 5: struct s * (base type 4)
        ty(&mut t, 0, 2, 0, 4);
        // 6: struct m { struct s *p; int x; }
        ty(&mut t, m, 4, 2, 16);
        t.extend([p, 5, 0].iter().flat_map(|v| v.to_le_bytes()));
        t.extend([x, 1, 64].iter().flat_map(|v| v.to_le_bytes()));
        let b = raw(t, &strs);
        let btf = Btf::parse_split(&base, b).unwrap();
        assert_eq!(btf.len(), base.len() + 2);
        assert_eq!(btf.offset_of("m", "x"), Some(8));
        let mid = btf.find_struct("m").unwrap();
        assert_eq!(mid, 6);
        let pty = btf.member(mid, "p").unwrap().ty;
        assert_eq!(btf.pointee(pty), Some(4));
        assert_eq!(btf.name(4), "s");
        // Base types are reached by id; their names are the base's to find.
        assert_eq!(btf.find_struct("s"), None);
        assert_eq!(base.offset_of("s", "b"), Some(8));
        assert_eq!(btf.offset_of("m", "p.b"), None, "a pointer is not a struct");
        // A split blob that is not BTF is an error, not a panic.
        assert!(Btf::parse_split(&base, vec![1, 2, 3]).is_err());
    }

    #[test]
    fn members_through_anonymous_structs() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.offset_of("s", "a"), Some(0));
        assert_eq!(btf.offset_of("s", "b"), Some(8));
        let s = btf.find_struct("s").unwrap();
        assert_eq!(btf.size_of(s), Some(16));
        assert_eq!(btf.offset_of("s", "nope"), None);
    }

    /// Appends an array type `elem[n]` to a blob made by `blob()`, as
    /// type 5.
    fn with_array(elem: u32, n: u32) -> Vec<u8> {
        let mut b = blob();
        let mut arr = Vec::new();
        arr.extend(0u32.to_le_bytes());
        arr.extend((3u32 << 24).to_le_bytes());
        arr.extend(0u32.to_le_bytes());
        arr.extend([elem, 1, n].iter().flat_map(|v| v.to_le_bytes()));
        let type_len = u32::from_le_bytes(b[12..16].try_into().unwrap());
        let at = 24 + type_len as usize;
        b.splice(at..at, arr.iter().copied());
        let grown = (type_len + arr.len() as u32).to_le_bytes();
        b[12..16].copy_from_slice(&grown);
        b[16..20].copy_from_slice(&grown);
        b
    }

    #[test]
    fn array_sizes_and_an_array_of_itself() {
        let btf = Btf::parse(with_array(4, 3)).unwrap();
        assert_eq!(btf.size_of(5), Some(48));
        // An array whose element is the array itself: the old recursive
        // size_of overflowed the stack.
        let btf = Btf::parse(with_array(5, 2)).unwrap();
        assert_eq!(btf.size_of(5), None);
        let btf = Btf::parse(with_array(4, u32::MAX)).unwrap();
        assert_eq!(btf.size_of(5), Some(16 * u32::MAX as u64));
    }

    #[test]
    fn hostile_headers() {
        assert!(Btf::parse(vec![]).is_err());
        let mut b = blob();
        b[12] = 0xff; // type_len way too big
        assert!(Btf::parse(b).is_err());
        let mut b = blob();
        b[24 + 7] = 30; // unknown kind
        assert!(Btf::parse(b).is_err());
    }
}
