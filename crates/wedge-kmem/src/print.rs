//! Values printed as drgn and gdb print them, as JSON, and type layouts as
//! pahole prints them.

use crate::eval::{le, Evaluator, Place, Value, MAX_OBJECT};
use crate::parse::{ExprError, Span};
use crate::types::{self, Shape, Ty};
use serde_json::{json, Map, Value as Json};
use std::fmt::Write;

/// How much of a value to print.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Structs nested deeper than this print as `{...}`.
    pub depth: u32,
    /// Array elements printed before `...`.
    pub elements: usize,
    /// Bytes of a string a `char *` points to.
    pub string: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            depth: 3,
            elements: 64,
            string: 256,
        }
    }
}

/// A value's bytes and, when it is in memory, its address.
struct Obj<'b> {
    bytes: &'b [u8],
    addr: Option<u64>,
}

/// Reads the bytes of a value to print, or the error (a fault) naming
/// where memory could not be read.
fn load(ev: &Evaluator<'_>, v: &Value) -> Result<Vec<u8>, ExprError> {
    let sp = Span { start: 0, end: 0 };
    match ev.shape(&v.ty) {
        Shape::Void | Shape::Func => Ok(Vec::new()),
        _ => {
            let mut e = ev.bytes(v, sp)?;
            e.truncate(MAX_OBJECT as usize);
            Ok(e)
        }
    }
}

/// `(type)value`, as drgn prints an object; a struct in memory as
/// `*(struct foo *)0xaddr = {...}`.
pub fn text(ev: &Evaluator<'_>, v: &Value, lim: Limits) -> Result<String, ExprError> {
    let bytes = load(ev, v).map_err(|e| ExprError { span: None, ..e })?;
    if let Ty::Array(elem, _) = &v.ty {
        if let Shape::Ptr(to) = ev.shape(elem) {
            return Ok(entries_text(ev, &v.ty, elem, &to, &bytes, lim));
        }
    }
    let mut out = String::new();
    let ty = ev.type_name(&v.ty);
    match (ev.shape(&v.ty), &v.place) {
        (Shape::Record { .. }, Place::Addr(a)) => {
            let _ = write!(out, "*({} *){a:#x} = ", ty);
        }
        (Shape::Void, _) => return Ok(format!("({ty})")),
        (Shape::Func, Place::Addr(a)) => {
            let sym = ev
                .mem
                .symbolize(*a)
                .map(|s| format!(" <{s}>"))
                .unwrap_or_default();
            return Ok(format!("({ty}){a:#x}{sym}"));
        }
        _ => {
            let _ = write!(out, "({ty})");
        }
    }
    body(
        ev,
        &v.ty,
        &Obj {
            bytes: &bytes,
            addr: v.addr(),
        },
        0,
        lim,
        &mut out,
    );
    Ok(out)
}

/// The entries of a list iteration, one a line and every one (the user
/// asked for the list; the walk itself is capped):
/// `[0] = (struct task_struct *)0x… <init_task+0>`.
fn entries_text(ev: &Evaluator<'_>, ty: &Ty, elem: &Ty, to: &Ty, b: &[u8], lim: Limits) -> String {
    let et = ev.type_name(elem);
    let mut out = format!("({}){{", ev.type_name(ty));
    if b.is_empty() {
        out.push('}');
        return out;
    }
    out.push('\n');
    for (i, e) in b.chunks_exact(8).enumerate() {
        let _ = writeln!(out, "\t[{i}] = ({et}){},", pointer_text(ev, to, le(e), lim));
    }
    out.push('}');
    out
}

fn indent(out: &mut String, n: u32) {
    for _ in 0..n {
        out.push('\t');
    }
}

/// A string literal as C writes it.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let mut s = String::from("\"");
    for &c in &b[..end] {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

fn scalar_text(ev: &Evaluator<'_>, ty: &Ty, b: &[u8]) -> String {
    match ev.shape(ty) {
        Shape::Int {
            size,
            signed,
            is_bool,
            ..
        } => {
            let v = le(b);
            if is_bool {
                return (v != 0).to_string();
            }
            if signed {
                let sh = 64 - 8 * size.clamp(1, 8) as u32;
                (((v << sh) as i64) >> sh).to_string()
            } else {
                v.to_string()
            }
        }
        Shape::Enum { id, size, signed } => {
            let v = le(b);
            let sh = 64 - 8 * size.clamp(1, 8) as u32;
            let val = if signed {
                ((v << sh) as i64) >> sh
            } else {
                ((v << sh) >> sh) as i64
            };
            let mask = if size >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * size)) - 1
            };
            ev.btf()
                .enumerators(id)
                .into_iter()
                .find(|(_, e)| (*e as u64) & mask == (val as u64) & mask)
                .map_or_else(|| val.to_string(), |(n, _)| n.to_string())
        }
        Shape::Float(8) => f64::from_le_bytes(le(b).to_le_bytes()).to_string(),
        Shape::Float(4) => f32::from_le_bytes((le(b) as u32).to_le_bytes()).to_string(),
        _ => format!("{:#x}", le(b)),
    }
}

fn pointer_text(ev: &Evaluator<'_>, to: &Ty, p: u64, lim: Limits) -> String {
    let mut s = format!("{p:#x}");
    if p == 0 {
        return s;
    }
    if let Some(sym) = ev.mem.symbolize(p) {
        let _ = write!(s, " <{sym}>");
    }
    // A char * points to a string: show it when it can be read (as gdb).
    if matches!(
        ev.shape(to),
        Shape::Int {
            is_char: true,
            size: 1,
            ..
        }
    ) {
        let mut buf = vec![0u8; lim.string];
        // Up to the end of the page first: a string near a page's end
        // need not have a readable next page.
        let first = (4096 - (p & 0xfff) as usize).min(lim.string);
        if ev.mem.read(p, &mut buf[..first]).is_ok() {
            let mut n = first;
            if !buf[..n].contains(&0)
                && n < lim.string
                && ev.mem.read(p + n as u64, &mut buf[n..]).is_ok()
            {
                n = lim.string;
            }
            let _ = write!(s, " {}", c_string(&buf[..n]));
        }
    }
    s
}

/// Members of a record to print: anonymous members' own members are
/// listed in their place (they are reached by name through the parent).
fn fields(
    ev: &Evaluator<'_>,
    id: u32,
    base_bits: u64,
    depth: u32,
    out: &mut Vec<(String, Ty, u64, u32)>,
) {
    if depth > 8 {
        return;
    }
    let btf = ev.btf();
    for (n, m) in btf.members(btf.resolve(id)) {
        let off = base_bits + m.bit_offset;
        if n.is_empty() {
            if let Shape::Record { id: inner, .. } = ev.shape(&Ty::Btf(m.ty)) {
                fields(ev, inner, off, depth + 1, out);
                continue;
            }
        }
        out.push((n.to_string(), Ty::Btf(m.ty), off, m.bitfield_size));
    }
}

fn body(ev: &Evaluator<'_>, ty: &Ty, o: &Obj<'_>, depth: u32, lim: Limits, out: &mut String) {
    match ev.shape(ty) {
        Shape::Ptr(to) => out.push_str(&pointer_text(ev, &to, le(o.bytes), lim)),
        Shape::Array(elem, n) => {
            if let Shape::Int {
                is_char: true,
                size: 1,
                ..
            } = ev.shape(&elem)
            {
                out.push_str(&c_string(o.bytes));
                return;
            }
            let es = ev.size_of(&elem).unwrap_or(0) as usize;
            if depth >= lim.depth
                && !matches!(ev.shape(&elem), Shape::Int { .. } | Shape::Enum { .. })
            {
                out.push_str("{...}");
                return;
            }
            out.push('{');
            let shown = (n as usize).min(lim.elements);
            for i in 0..shown {
                let Some(b) = o.bytes.get(i * es..(i + 1) * es) else {
                    break;
                };
                out.push_str(if i == 0 { " " } else { ", " });
                body(
                    ev,
                    &elem,
                    &Obj {
                        bytes: b,
                        addr: o.addr.map(|a| a + (i * es) as u64),
                    },
                    depth + 1,
                    lim,
                    out,
                );
            }
            if shown < n as usize {
                out.push_str(", ...");
            }
            out.push_str(if shown > 0 { " }" } else { "}" });
        }
        Shape::Record { id, .. } => {
            if depth >= lim.depth {
                out.push_str("{...}");
                return;
            }
            let mut fs = Vec::new();
            fields(ev, id, 0, 0, &mut fs);
            out.push_str("{\n");
            for (name, mty, bit_off, bits) in fs {
                indent(out, depth + 1);
                let _ = write!(out, ".{name} = ({}", ev.type_name(&mty));
                out.push(')');
                let b = member_bytes(ev, &mty, o.bytes, bit_off, bits);
                match b {
                    Some(b) => body(
                        ev,
                        &mty,
                        &Obj {
                            bytes: &b,
                            addr: o.addr.map(|a| a + bit_off / 8),
                        },
                        depth + 1,
                        lim,
                        out,
                    ),
                    None => out.push_str("<unreadable>"),
                }
                out.push_str(",\n");
            }
            indent(out, depth);
            out.push('}');
        }
        Shape::Void => out.push_str("void"),
        _ => out.push_str(&scalar_text(ev, ty, o.bytes)),
    }
}

/// A member's bytes inside its record's bytes (bit fields extracted).
fn member_bytes(
    ev: &Evaluator<'_>,
    ty: &Ty,
    rec: &[u8],
    bit_off: u64,
    bits: u32,
) -> Option<Vec<u8>> {
    let start = (bit_off / 8) as usize;
    if bits == 0 && bit_off.is_multiple_of(8) {
        let n = ev.size_of(ty).unwrap_or(0) as usize;
        return rec.get(start..start.checked_add(n)?).map(<[u8]>::to_vec);
    }
    let width = if bits == 0 {
        ev.size_of(ty).unwrap_or(8) as u32 * 8
    } else {
        bits
    };
    let shift = (bit_off % 8) as u32;
    let n = (shift + width).div_ceil(8) as usize;
    let raw = rec.get(start..start + n)?;
    Some(ev.extract_bits(ty, raw, shift, width))
}

/// `{"schema_version": 1, "type": "…", "value": …}`: scalars and pointers as integers, char
/// arrays as strings, structs as objects of members, arrays as lists.
pub fn json(ev: &Evaluator<'_>, v: &Value, lim: Limits) -> Result<Json, ExprError> {
    let bytes = load(ev, v).map_err(|e| ExprError { span: None, ..e })?;
    // schema_version first, as in every document of wedge's (docs/json-schema.md).
    let mut m = Map::new();
    m.insert("schema_version".into(), json!(wedge_model::SCHEMA_VERSION));
    m.insert("type".into(), json!(ev.type_name(&v.ty)));
    let value = match &v.ty {
        // A list iteration's entries: every one, as addresses.
        Ty::Array(elem, _) if matches!(ev.shape(elem), Shape::Ptr(_)) => {
            Json::Array(bytes.chunks_exact(8).map(|e| json!(le(e))).collect())
        }
        _ => json_body(ev, &v.ty, &bytes, 0, lim),
    };
    m.insert("value".into(), value);
    Ok(Json::Object(m))
}

fn json_body(ev: &Evaluator<'_>, ty: &Ty, b: &[u8], depth: u32, lim: Limits) -> Json {
    match ev.shape(ty) {
        Shape::Int { is_bool: true, .. } => Json::Bool(le(b) != 0),
        Shape::Int { size, signed, .. } | Shape::Enum { size, signed, .. } => {
            let v = le(b);
            if signed {
                let sh = 64 - 8 * size.clamp(1, 8) as u32;
                json!(((v << sh) as i64) >> sh)
            } else {
                json!(v)
            }
        }
        Shape::Ptr(_) => json!(le(b)),
        Shape::Float(_) => scalar_text(ev, ty, b)
            .parse::<f64>()
            .map_or(Json::Null, |f| json!(f)),
        Shape::Array(elem, n) => {
            if let Shape::Int {
                is_char: true,
                size: 1,
                ..
            } = ev.shape(&elem)
            {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                return Json::String(String::from_utf8_lossy(&b[..end]).into_owned());
            }
            if depth >= lim.depth * 2 {
                return Json::Null;
            }
            let es = ev.size_of(&elem).unwrap_or(0) as usize;
            let items = (0..(n as usize).min(lim.elements.max(1024)))
                .map_while(|i| b.get(i * es..(i + 1) * es))
                .map(|e| json_body(ev, &elem, e, depth + 1, lim))
                .collect();
            Json::Array(items)
        }
        Shape::Record { id, .. } => {
            if depth >= lim.depth {
                return Json::Null;
            }
            let mut fs = Vec::new();
            fields(ev, id, 0, 0, &mut fs);
            let mut m = Map::new();
            for (name, mty, off, bits) in fs {
                let v = member_bytes(ev, &mty, b, off, bits)
                    .map_or(Json::Null, |mb| json_body(ev, &mty, &mb, depth + 1, lim));
                m.insert(name, v);
            }
            Json::Object(m)
        }
        _ => Json::Null,
    }
}

/// A type's layout with offsets and sizes, as pahole prints it.
pub fn layout(ev: &Evaluator<'_>, ty: &Ty) -> String {
    let btf = ev.btf();
    let mut out = String::new();
    let name = ev.type_name(ty);
    match ev.shape(ty) {
        // A pointer to a record: the record's layout, then the pointer (as
        // gdb's `ptype` prints `struct task_struct {...} *`).
        Shape::Ptr(to) if matches!(ev.shape(&to), Shape::Record { .. }) => {
            let inner = layout(ev, &to);
            let body = inner.strip_suffix("};\n").unwrap_or(&inner);
            let _ = writeln!(out, "{body}}} *;");
        }
        Shape::Record { id, union } => {
            if let Ty::Btf(t) = ty {
                if btf.resolve(*t) != *t {
                    let _ = writeln!(out, "/* {name} is {} */", types::name(btf, &Ty::Btf(id)));
                }
            }
            let kw = if union { "union" } else { "struct" };
            let n = btf.name(id);
            let _ = writeln!(
                out,
                "{kw} {}{{",
                if n.is_empty() {
                    String::new()
                } else {
                    format!("{n} ")
                }
            );
            let mut members = 0;
            record_lines(ev, id, 0, 1, &mut out, &mut members);
            let size = ev.size_of(&Ty::Btf(id)).unwrap_or(0);
            let _ = writeln!(out, "\n\t/* size: {size}, members: {members} */\n}};");
        }
        Shape::Enum { id, size, .. } => {
            let _ = writeln!(out, "{} {{", types::name(btf, &Ty::Btf(id)));
            for (n, v) in btf.enumerators(id) {
                let _ = writeln!(out, "\t{n} = {v},");
            }
            let _ = writeln!(out, "}};\t/* size: {size} */");
        }
        _ => {
            let size = ev
                .size_of(ty)
                .map_or("no size".to_string(), |s| format!("size: {s}"));
            let resolved = match ty {
                Ty::Btf(t) if btf.resolve(*t) != *t => {
                    format!(" = {}", types::name(btf, &Ty::Btf(btf.resolve(*t))))
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "{name}{resolved};\t/* {size} */");
        }
    }
    out
}

fn record_lines(
    ev: &Evaluator<'_>,
    id: u32,
    base: u64,
    depth: u32,
    out: &mut String,
    count: &mut usize,
) {
    let btf = ev.btf();
    if depth > 8 {
        return;
    }
    for (n, m) in btf.members(btf.resolve(id)) {
        *count += 1;
        let mty = Ty::Btf(m.ty);
        let off = base + m.bit_offset;
        let size = ev.size_of(&mty).unwrap_or(0);
        let mut line = String::new();
        for _ in 0..depth {
            line.push('\t');
        }
        let shape = ev.shape(&mty);
        let anon_record = n.is_empty() && matches!(shape, Shape::Record { .. });
        if let (true, Shape::Record { id: inner, union }) = (anon_record, &shape) {
            let _ = writeln!(out, "{line}{} {{", if *union { "union" } else { "struct" });
            record_lines(ev, *inner, off, depth + 1, out, count);
            line.push_str("};");
        } else {
            line.push_str(&types::declare(btf, &mty, n));
            if m.bitfield_size != 0 {
                let _ = write!(line, ":{}", m.bitfield_size);
            }
            line.push(';');
        }
        let width = 8 * depth as usize + line.trim_start_matches('\t').len();
        let pad = 56usize.saturating_sub(width).max(1);
        if m.bitfield_size != 0 {
            let _ = writeln!(
                out,
                "{line}{}/* {:5}:{:2} {:4} */",
                " ".repeat(pad),
                off / 8,
                off % 8,
                size
            );
        } else {
            let _ = writeln!(
                out,
                "{line}{}/* {:5} {:5} */",
                " ".repeat(pad),
                off / 8,
                size
            );
        }
    }
}
