//! The kernel's BTF cut down to what the program's CO-RE relocations look
//! at, with every type id unchanged.
//!
//! aya parses the whole of /sys/kernel/btf/vmlinux into its own types
//! (~150,000 of them, tens of MB of allocations) and, for each type the
//! program relocates against, scans them all by name: most of the time of
//! `Bpf::open()`. Relocation only reads the named root types (struct
//! task_struct, …) and what their members are made of, never what a pointer
//! member points to (a CO-RE access stops at each pointer, and two pointers
//! are compatible whatever they point to). So this keeps those types whole,
//! turns every pointer's target into `void`, and replaces every other type
//! by a bare `void *` of the same id, so ids — the iterator's attach id
//! among them — still mean what the kernel means. The string section is
//! kept as it is, so name offsets need no rewriting.

/// The root types bpf/wedge.h declares (flavours such as
/// `task_struct___pre514` match their base name), and the function the
/// iterator attaches to.
const ROOTS: &[&str] = &[
    "task_struct",
    "pid",
    "upid",
    "pid_namespace",
    "cfs_rq",
    "rq",
    "mutex",
    "rw_semaphore",
    "semaphore",
    "bpf_iter_task",
];

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Bytes after the 12-byte common header, by kind (include/uapi/linux/btf.h).
fn extra(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
        KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
        0 | KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | 16 | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

/// The trimmed copy of `raw` (a little-endian vmlinux BTF blob), or why
/// not (the caller then gives aya the whole BTF).
pub(crate) fn trim(raw: &[u8]) -> Result<Vec<u8>, String> {
    trim_to(raw, ROOTS)
}

/// The same, keeping `roots` (structs, unions, functions or typedefs, by
/// name): the system-call rings (src/syscalls.rs) need only the typedefs
/// `btf_trace_sys_enter` / `btf_trace_sys_exit`, whose ids are the
/// tp_btf programs' attach ids.
pub(crate) fn trim_to(raw: &[u8], roots: &[&str]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("/sys/kernel/btf/vmlinux: {what}");
    if raw.len() < 24 || u16::from_le_bytes([raw[0], raw[1]]) != BTF_MAGIC {
        return Err(bad("not little-endian BTF"));
    }
    let hdr_len = u32_at(raw, 4).ok_or_else(|| bad("short header"))? as usize;
    let field = |i: usize| u32_at(raw, 8 + 4 * i).map(|v| v as usize);
    let (Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
        (field(0), field(1), field(2), field(3))
    else {
        return Err(bad("short header"));
    };
    let types = raw
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or_else(|| bad("type section out of bounds"))?;
    let strings = raw
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or_else(|| bad("string section out of bounds"))?;
    let name = |off: u32| -> &[u8] {
        let s = strings.get(off as usize..).unwrap_or(&[]);
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    };

    // Index every type: its offset in the section (id 0 is void, implicit).
    let mut starts: Vec<usize> = vec![0];
    let mut off = 0usize;
    while off < types.len() {
        let info = u32_at(types, off + 4).ok_or_else(|| bad("truncated type"))?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let n = extra(kind, vlen).ok_or_else(|| bad(&format!("unknown BTF kind {kind}")))?;
        starts.push(off);
        off += 12 + n;
    }
    if off != types.len() {
        return Err(bad("type section does not end on a type"));
    }
    let info_of = |id: usize| u32_at(types, starts[id] + 4).unwrap_or(0);
    let size_type_of = |id: usize| u32_at(types, starts[id] + 8).unwrap_or(0) as usize;

    // Keep the roots and, through everything but pointers, what they are
    // made of.
    let mut keep = vec![false; starts.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (id, &start) in starts.iter().enumerate().skip(1) {
        let kind = (info_of(id) >> 24) & 0x1f;
        if matches!(kind, KIND_STRUCT | KIND_UNION | KIND_FUNC | KIND_TYPEDEF) {
            let n = name(u32_at(types, start).unwrap_or(0));
            if roots.iter().any(|r| r.as_bytes() == n) {
                todo.push(id);
            }
        }
    }
    while let Some(id) = todo.pop() {
        if id == 0 || id >= starts.len() || keep[id] {
            continue;
        }
        keep[id] = true;
        let info = info_of(id);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let body = starts[id] + 12;
        match kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                todo.push(size_type_of(id))
            }
            KIND_ARRAY => {
                todo.push(u32_at(types, body).unwrap_or(0) as usize);
                todo.push(u32_at(types, body + 4).unwrap_or(0) as usize);
            }
            KIND_STRUCT | KIND_UNION => {
                for m in 0..vlen {
                    todo.push(u32_at(types, body + m * 12 + 4).unwrap_or(0) as usize);
                }
            }
            // A pointer is kept but its target is not (rewritten below);
            // the function's prototype is not needed for the attach id.
            _ => {}
        }
    }

    let mut out_types: Vec<u8> = Vec::with_capacity(starts.len() * 12 + (64 << 10));
    for id in 1..starts.len() {
        let start = starts[id];
        let end = starts.get(id + 1).copied().unwrap_or(types.len());
        let kind = (info_of(id) >> 24) & 0x1f;
        if keep[id] && kind == KIND_PTR {
            out_types.extend_from_slice(&types[start..start + 8]);
            out_types.extend_from_slice(&0u32.to_le_bytes());
        } else if keep[id] && kind == KIND_FUNC {
            // name and linkage kept, prototype dropped (void).
            out_types.extend_from_slice(&types[start..start + 8]);
            out_types.extend_from_slice(&0u32.to_le_bytes());
        } else if keep[id] {
            out_types.extend_from_slice(&types[start..end]);
        } else {
            out_types.extend_from_slice(&0u32.to_le_bytes());
            out_types.extend_from_slice(&(KIND_PTR << 24).to_le_bytes());
            out_types.extend_from_slice(&0u32.to_le_bytes());
        }
    }

    let mut out = Vec::with_capacity(24 + out_types.len() + strings.len());
    out.extend_from_slice(&raw[0..4]); // magic, version, flags
    out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
    out.extend_from_slice(&0u32.to_le_bytes()); // type_off
    out.extend_from_slice(&(out_types.len() as u32).to_le_bytes());
    out.extend_from_slice(&(out_types.len() as u32).to_le_bytes()); // str_off
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&out_types);
    out.extend_from_slice(strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF: int, struct task_struct { int pid; struct rq *p; },
    /// ptr -> struct rq, struct rq { int clock; }, struct other { int x; }.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0task_struct\0pid\0p\0rq\0clock\0other\0x\0";
        let off = |s: &str| {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut t: Vec<u8> = Vec::new();
        let mut put = |v: u32| t.extend_from_slice(&v.to_le_bytes());
        // 1: int
        put(off("int"));
        put(KIND_INT << 24);
        put(4);
        put(32);
        // 2: struct task_struct
        put(off("task_struct"));
        put((KIND_STRUCT << 24) | 2);
        put(16);
        put(off("pid"));
        put(1);
        put(0);
        put(off("p"));
        put(3);
        put(64);
        // 3: ptr -> 4
        put(0);
        put(KIND_PTR << 24);
        put(4);
        // 4: struct rq
        put(off("rq"));
        put((KIND_STRUCT << 24) | 1);
        put(4);
        put(off("clock"));
        put(1);
        put(0);
        // 5: struct other
        put(off("other"));
        put((KIND_STRUCT << 24) | 1);
        put(4);
        put(off("x"));
        put(1);
        put(0);
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn keeps_roots_and_ids() {
        let raw = sample();
        let out = trim(&raw).unwrap();
        let btf = aya::Btf::parse(&out, aya::Endianness::default()).unwrap();
        const STRUCT: aya_obj::btf::BtfKind = aya_obj::btf::BtfKind::Struct;
        // Ids are unchanged: task_struct is still 2, rq still 4.
        assert_eq!(btf.id_by_type_name_kind("task_struct", STRUCT).unwrap(), 2);
        assert_eq!(btf.id_by_type_name_kind("rq", STRUCT).unwrap(), 4);
        // `other` is not a root: replaced by a nameless pointer.
        assert!(btf.id_by_type_name_kind("other", STRUCT).is_err());
        // Same size as before minus other's member (placeholder is 12 B).
        assert_eq!(out.len(), raw.len() - 12);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(trim(&[0u8; 10]).is_err());
        let mut raw = sample();
        raw[24 + 4 + 3] = 0x1f; // an unknown kind in the first type
        assert!(trim(&raw).is_err());
    }
}
