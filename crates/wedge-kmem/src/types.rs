//! Types of values: BTF's, plus the few an expression makes itself
//! (pointers to what it takes the address of, integer results, bool).

use wedge_vmcore::btf::{Btf, Kind, TypeId};

/// A C integer type made by the evaluator (literals, arithmetic results,
/// builtin names in casts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntTy {
    pub size: u8,
    pub signed: bool,
    pub name: &'static str,
}

impl IntTy {
    pub const INT: IntTy = IntTy {
        size: 4,
        signed: true,
        name: "int",
    };
    pub const UINT: IntTy = IntTy {
        size: 4,
        signed: false,
        name: "unsigned int",
    };
    pub const LONG: IntTy = IntTy {
        size: 8,
        signed: true,
        name: "long",
    };
    pub const ULONG: IntTy = IntTy {
        size: 8,
        signed: false,
        name: "unsigned long",
    };
    pub const PTRDIFF: IntTy = IntTy {
        size: 8,
        signed: true,
        name: "ptrdiff_t",
    };
    pub const CHAR: IntTy = IntTy {
        size: 1,
        signed: true,
        name: "char",
    };
}

/// A type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// A BTF type (0 is void).
    Btf(TypeId),
    /// A pointer to a type.
    Ptr(Box<Ty>),
    Int(IntTy),
    /// A comparison's or logical operator's result.
    Bool,
    /// An array the evaluator builds: the entries of a list iteration.
    Array(Box<Ty>, u64),
}

impl Ty {
    pub fn ptr_to(t: Ty) -> Ty {
        Ty::Ptr(Box::new(t))
    }
}

/// What a type is once typedefs and qualifiers are stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Void,
    Int {
        size: u64,
        signed: bool,
        is_char: bool,
        is_bool: bool,
    },
    Enum {
        id: TypeId,
        size: u64,
        signed: bool,
    },
    Ptr(Ty),
    Array(Ty, u64),
    Record {
        id: TypeId,
        union: bool,
    },
    Func,
    Float(u64),
    /// A forward declaration, or a kind values cannot have.
    Other(&'static str),
}

pub fn shape(btf: &Btf, ty: &Ty) -> Shape {
    match ty {
        Ty::Ptr(t) => Shape::Ptr((**t).clone()),
        Ty::Int(i) => Shape::Int {
            size: i.size as u64,
            signed: i.signed,
            is_char: i.name.ends_with("char"),
            is_bool: false,
        },
        Ty::Bool => Shape::Int {
            size: 1,
            signed: false,
            is_char: false,
            is_bool: true,
        },
        Ty::Array(t, n) => Shape::Array((**t).clone(), *n),
        Ty::Btf(id) => {
            let id = btf.resolve(*id);
            match btf.kind(id) {
                None | Some(Kind::Void) => Shape::Void,
                Some(Kind::Int) => match btf.int_info(id) {
                    Some(i) => Shape::Int {
                        size: i.size as u64,
                        signed: i.signed,
                        is_char: i.is_char || btf.name(id).ends_with("char"),
                        is_bool: i.is_bool,
                    },
                    None => Shape::Other("integer"),
                },
                Some(Kind::Enum | Kind::Enum64) => Shape::Enum {
                    id,
                    size: btf.size_of(id).unwrap_or(4),
                    signed: btf.kind_flag(id),
                },
                Some(Kind::Ptr) => Shape::Ptr(Ty::Btf(btf.pointee(id).unwrap_or(0))),
                Some(Kind::Array) => match btf.array(id) {
                    Some((e, n)) => Shape::Array(Ty::Btf(e), n as u64),
                    None => Shape::Other("array"),
                },
                Some(Kind::Struct) => Shape::Record { id, union: false },
                Some(Kind::Union) => Shape::Record { id, union: true },
                Some(Kind::Func | Kind::FuncProto) => Shape::Func,
                Some(Kind::Float) => Shape::Float(btf.size_of(id).unwrap_or(8)),
                Some(Kind::Fwd) => Shape::Other("incomplete type"),
                Some(_) => Shape::Other("type"),
            }
        }
    }
}

/// Size in bytes; `None` for void, functions and incomplete types.
pub fn size_of(btf: &Btf, ty: &Ty) -> Option<u64> {
    match ty {
        Ty::Ptr(_) => Some(8),
        Ty::Int(i) => Some(i.size as u64),
        Ty::Bool => Some(1),
        Ty::Array(t, n) => size_of(btf, t)?.checked_mul(*n),
        Ty::Btf(id) => btf.size_of(*id),
    }
}

/// The C spelling of a type: `struct task_struct *`, `char [16]`, `pid_t`.
pub fn name(btf: &Btf, ty: &Ty) -> String {
    let (base, suffix) = split_name(btf, ty, 0);
    if suffix.is_empty() {
        base
    } else if base.ends_with('*') {
        format!("{base}{suffix}")
    } else {
        format!("{base} {suffix}")
    }
}

/// A declaration of `ident` with a type: `char comm[16]`, `struct list_head *next`.
pub fn declare(btf: &Btf, ty: &Ty, ident: &str) -> String {
    let (base, suffix) = split_name(btf, ty, 0);
    let sep = if base.ends_with('*') || ident.is_empty() {
        ""
    } else {
        " "
    };
    format!("{base}{sep}{ident}{suffix}")
}

/// (the part before the name, the array suffix after it).
fn split_name(btf: &Btf, ty: &Ty, depth: u32) -> (String, String) {
    if depth > 16 {
        return ("?".into(), String::new());
    }
    match ty {
        Ty::Int(i) => (i.name.to_string(), String::new()),
        Ty::Bool => ("bool".into(), String::new()),
        Ty::Array(t, n) => {
            let (b, s) = split_name(btf, t, depth + 1);
            (b, format!("[{n}]{s}"))
        }
        Ty::Ptr(t) => {
            let (b, s) = split_name(btf, t, depth + 1);
            if s.is_empty() {
                (star(b), String::new())
            } else {
                // A pointer to an array: `char (*)[16]`.
                (format!("{b} (*"), format!("){s}"))
            }
        }
        Ty::Btf(id) => {
            let id = *id;
            let named = |kw: &str| {
                let n = btf.name(id);
                if n.is_empty() {
                    format!("{kw} {{...}}")
                } else {
                    format!("{kw} {n}")
                }
            };
            match btf.kind(id) {
                None | Some(Kind::Void) => ("void".into(), String::new()),
                Some(Kind::Struct) => (named("struct"), String::new()),
                Some(Kind::Union) => (named("union"), String::new()),
                Some(Kind::Enum | Kind::Enum64) => (named("enum"), String::new()),
                Some(Kind::Fwd) => (
                    named(if btf.kind_flag(id) { "union" } else { "struct" }),
                    String::new(),
                ),
                Some(Kind::Int | Kind::Typedef | Kind::Float) => {
                    (btf.name(id).to_string(), String::new())
                }
                Some(Kind::Const | Kind::Volatile | Kind::Restrict) => {
                    let q = match btf.kind(id) {
                        Some(Kind::Const) => "const",
                        Some(Kind::Volatile) => "volatile",
                        _ => "restrict",
                    };
                    let (b, s) = split_name(btf, &Ty::Btf(btf.target(id).unwrap_or(0)), depth + 1);
                    if b.ends_with('*') {
                        (format!("{b} {q}"), s)
                    } else {
                        (format!("{q} {b}"), s)
                    }
                }
                Some(Kind::TypeTag) => {
                    split_name(btf, &Ty::Btf(btf.target(id).unwrap_or(0)), depth + 1)
                }
                Some(Kind::Ptr) => {
                    let to = btf.target(id).unwrap_or(0);
                    if matches!(btf.kind(btf.resolve(to)), Some(Kind::FuncProto))
                        && btf.kind(to) == Some(Kind::FuncProto)
                    {
                        return ("void (*)()".into(), String::new());
                    }
                    split_name(btf, &Ty::ptr_to(Ty::Btf(to)), depth + 1)
                }
                Some(Kind::Array) => {
                    let (e, n) = btf.array(id).unwrap_or((0, 0));
                    let (b, s) = split_name(btf, &Ty::Btf(e), depth + 1);
                    (b, format!("[{n}]{s}"))
                }
                Some(Kind::FuncProto) => ("void ()".into(), String::new()),
                Some(Kind::Func) => (format!("function {}", btf.name(id)), String::new()),
                Some(Kind::Var) => {
                    split_name(btf, &Ty::Btf(btf.target(id).unwrap_or(0)), depth + 1)
                }
                Some(k) => (format!("{k:?}"), String::new()),
            }
        }
    }
}

fn star(b: String) -> String {
    if b.ends_with('*') {
        format!("{b}*")
    } else {
        format!("{b} *")
    }
}

/// The member of a struct or union looked up by name (through typedefs and
/// anonymous members): its type, bit offset from the record's start, and
/// bit-field width (0 for a plain member).
pub fn member(btf: &Btf, record: TypeId, name: &str) -> Option<(Ty, u64, u32)> {
    let m = btf.member(btf.resolve(record), name)?;
    Some((Ty::Btf(m.ty), m.bit_offset, m.bitfield_size))
}

/// The member names of a record, anonymous members' own included (for
/// naming the near ones of a misspelt member).
pub fn member_names(btf: &Btf, record: TypeId) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(btf.resolve(record), 0u32)];
    while let Some((id, depth)) = stack.pop() {
        if depth > 8 || out.len() > 4096 {
            break;
        }
        for (n, m) in btf.members(id) {
            if n.is_empty() {
                stack.push((btf.resolve(m.ty), depth + 1));
            } else {
                out.push(n.to_string());
            }
        }
    }
    out
}
