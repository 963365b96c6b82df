//! DWARF types as C names (`const char *`, `char [1024]`, `ssize_t
//! (*)(struct file *, …)`, as drgn prints them) and their shape: what a
//! value of them is read as.

use crate::info::{Dwarf, R};
use gimli::{constants as dw, AttributeValue, Reader, UnitOffset};

/// How a value of a type is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Signed,
    Unsigned,
    Bool,
    Float,
    Pointer,
    /// Struct, union, array, function: an object in memory.
    Other,
}

/// A type's C name, shape and size.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub name: String,
    pub shape: Shape,
    pub size: Option<u64>,
    /// The struct/union/enum/typedef name under qualifiers, to find the
    /// same type in BTF (`struct file`).
    pub base: Option<String>,
}

fn type_ref(e: &gimli::DebuggingInformationEntry<R>) -> Option<UnitOffset> {
    match e.attr_value(dw::DW_AT_type) {
        Some(AttributeValue::UnitRef(o)) => Some(o),
        _ => None,
    }
}

impl Dwarf {
    fn name_of(
        &self,
        unit: &gimli::Unit<R>,
        e: &gimli::DebuggingInformationEntry<R>,
    ) -> Option<String> {
        let v = e.attr_value(dw::DW_AT_name)?;
        let r = self.dwarf.attr_string(unit, v).ok()?;
        r.to_string_lossy().ok().map(|c| c.into_owned())
    }

    /// The declarator parts of a type: what goes before the name and what
    /// after (`int (*` and `)[3]`).
    fn decl(
        &self,
        unit: &gimli::Unit<R>,
        off: Option<UnitOffset>,
        depth: usize,
    ) -> (String, String) {
        let Some(off) = off else {
            return ("void".into(), String::new());
        };
        if depth > 16 {
            return ("?".into(), String::new());
        }
        let Ok(e) = unit.entry(off) else {
            return ("?".into(), String::new());
        };
        let named = |kw: &str| {
            let n = self
                .name_of(unit, &e)
                .unwrap_or_else(|| "<anonymous>".into());
            (format!("{kw}{n}"), String::new())
        };
        match e.tag() {
            dw::DW_TAG_base_type => {
                let n = self.name_of(unit, &e).unwrap_or_else(|| "?".into());
                (c_base_name(&n).to_string(), String::new())
            }
            dw::DW_TAG_typedef => named(""),
            dw::DW_TAG_structure_type => named("struct "),
            dw::DW_TAG_union_type => named("union "),
            dw::DW_TAG_enumeration_type => named("enum "),
            dw::DW_TAG_pointer_type => {
                let inner = type_ref(&e);
                let (p, s) = self.decl(unit, inner, depth + 1);
                if s.is_empty() {
                    let sep = if p.ends_with('*') { "" } else { " " };
                    (format!("{p}{sep}*"), s)
                } else {
                    (format!("{p} (*"), format!("){}", s.trim_start()))
                }
            }
            dw::DW_TAG_const_type | dw::DW_TAG_volatile_type => {
                let q = if e.tag() == dw::DW_TAG_const_type {
                    "const"
                } else {
                    "volatile"
                };
                let (p, s) = self.decl(unit, type_ref(&e), depth + 1);
                if p.ends_with('*') {
                    (format!("{p}{q}"), s)
                } else {
                    (format!("{q} {p}"), s)
                }
            }
            dw::DW_TAG_array_type => {
                let (p, s) = self.decl(unit, type_ref(&e), depth + 1);
                let mut dims = String::new();
                if let Ok(mut tree) = unit.entries_tree(Some(off)) {
                    if let Ok(root) = tree.root() {
                        let mut ch = root.children();
                        while let Ok(Some(c)) = ch.next() {
                            let c = c.entry();
                            if c.tag() != dw::DW_TAG_subrange_type {
                                continue;
                            }
                            let n = c
                                .attr_value(dw::DW_AT_count)
                                .and_then(|v| v.udata_value())
                                .or_else(|| {
                                    c.attr_value(dw::DW_AT_upper_bound)
                                        .and_then(|v| v.udata_value())
                                        .map(|u| u + 1)
                                });
                            match n {
                                Some(n) => dims.push_str(&format!("[{n}]")),
                                None => dims.push_str("[]"),
                            }
                        }
                    }
                }
                (p, format!(" {dims}{}", s.trim_start()))
            }
            dw::DW_TAG_subroutine_type => {
                let (p, s) = self.decl(unit, type_ref(&e), depth + 1);
                let mut params = Vec::new();
                let mut variadic = false;
                if let Ok(mut tree) = unit.entries_tree(Some(off)) {
                    if let Ok(root) = tree.root() {
                        let mut ch = root.children();
                        while let Ok(Some(c)) = ch.next() {
                            let c = c.entry();
                            match c.tag() {
                                dw::DW_TAG_formal_parameter => {
                                    params.push(self.type_name_at(unit, type_ref(c), depth + 1))
                                }
                                dw::DW_TAG_unspecified_parameters => variadic = true,
                                _ => {}
                            }
                        }
                    }
                }
                if variadic {
                    params.push("...".into());
                }
                if params.is_empty() {
                    params.push("void".into());
                }
                (format!("{p}{s}"), format!("({})", params.join(", ")))
            }
            _ => ("?".into(), String::new()),
        }
    }

    fn type_name_at(&self, unit: &gimli::Unit<R>, off: Option<UnitOffset>, depth: usize) -> String {
        let (p, s) = self.decl(unit, off, depth);
        if s.starts_with('(') {
            // A function type itself: `int (void)`.
            format!("{p} {s}")
        } else {
            format!("{p}{s}")
        }
    }

    /// The C name, shape and size of the type at `off` (`None`: void).
    pub(crate) fn type_info(&self, unit: &gimli::Unit<R>, off: Option<UnitOffset>) -> TypeInfo {
        let name = self.type_name_at(unit, off, 0);
        // Under typedefs and qualifiers: the type a value really has.
        let mut cur = off;
        let mut base = None;
        for _ in 0..16 {
            let Some(o) = cur else { break };
            let Ok(e) = unit.entry(o) else { break };
            let size = e
                .attr_value(dw::DW_AT_byte_size)
                .and_then(|v| v.udata_value());
            match e.tag() {
                dw::DW_TAG_typedef => {
                    if base.is_none() {
                        base = self.name_of(unit, &e);
                    }
                    cur = type_ref(&e);
                }
                dw::DW_TAG_const_type | dw::DW_TAG_volatile_type | dw::DW_TAG_restrict_type => {
                    cur = type_ref(&e)
                }
                dw::DW_TAG_pointer_type => {
                    return TypeInfo {
                        name,
                        shape: Shape::Pointer,
                        size: size.or(Some(8)),
                        base: None,
                    }
                }
                dw::DW_TAG_base_type => {
                    let enc = e.attr_value(dw::DW_AT_encoding);
                    let shape = match enc {
                        Some(AttributeValue::Encoding(dw::DW_ATE_boolean)) => Shape::Bool,
                        Some(AttributeValue::Encoding(dw::DW_ATE_float)) => Shape::Float,
                        Some(AttributeValue::Encoding(
                            dw::DW_ATE_signed | dw::DW_ATE_signed_char,
                        )) => Shape::Signed,
                        _ => Shape::Unsigned,
                    };
                    return TypeInfo {
                        name,
                        shape,
                        size,
                        base: None,
                    };
                }
                dw::DW_TAG_enumeration_type => {
                    let signed = type_ref(&e)
                        .and_then(|t| unit.entry(t).ok())
                        .and_then(|t| t.attr_value(dw::DW_AT_encoding))
                        .is_some_and(|v| matches!(v, AttributeValue::Encoding(dw::DW_ATE_signed)));
                    return TypeInfo {
                        name,
                        shape: if signed {
                            Shape::Signed
                        } else {
                            Shape::Unsigned
                        },
                        size,
                        base: None,
                    };
                }
                dw::DW_TAG_structure_type | dw::DW_TAG_union_type => {
                    let kw = if e.tag() == dw::DW_TAG_structure_type {
                        "struct"
                    } else {
                        "union"
                    };
                    let b = self.name_of(unit, &e).map(|n| format!("{kw} {n}"));
                    return TypeInfo {
                        name,
                        shape: Shape::Other,
                        size,
                        base: base.or(b),
                    };
                }
                _ => {
                    return TypeInfo {
                        name,
                        shape: Shape::Other,
                        size,
                        base,
                    }
                }
            }
        }
        TypeInfo {
            name,
            shape: Shape::Other,
            size: None,
            base,
        }
    }
}

/// GCC names base types its own way (`long unsigned int`); drgn and C
/// programmers write `unsigned long`.
fn c_base_name(n: &str) -> &str {
    match n {
        "long int" => "long",
        "long unsigned int" => "unsigned long",
        "long long int" => "long long",
        "long long unsigned int" => "unsigned long long",
        "short int" => "short",
        "short unsigned int" => "unsigned short",
        "_Bool" => "_Bool",
        other => other,
    }
}
