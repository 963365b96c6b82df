//! A frame's parameters and locals: where DWARF says each lives at this PC
//! (a register, the stack, a constant, or nowhere: optimised out), read
//! with the frame's registers.

use crate::cfi::Regs;
use crate::info::{Dwarf, InlineFrame, R};
use crate::types::Shape;
use crate::ReadMem;
use gimli::{
    constants as dw, AttributeValue, EvaluationResult, Location, Reader, UnitOffset, Value,
};

/// A variable's value.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    /// Optimised out here, or in a register this frame did not keep (a
    /// caller-saved one), or behind `DW_OP_entry_value`: drgn's `<absent>`.
    Absent,
    /// A scalar or pointer: its bits (sign-extended for signed types).
    Scalar(u64),
    /// An object (struct, union, array) in memory at this address.
    Object(u64),
    /// An object held whole in registers or as a constant.
    Bytes(Vec<u8>),
    /// Its memory could not be read.
    Fault(u64),
}

/// One parameter or local of a frame.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    /// The C type (`const char *`).
    pub type_name: String,
    /// The struct/union/typedef name to look up in BTF.
    pub base_type: Option<String>,
    pub shape: Shape,
    pub size: Option<u64>,
    pub param: bool,
    pub value: VarValue,
}

/// What a frame's variables are read with.
pub struct FrameState<'a> {
    pub regs: &'a Regs,
    /// The frame's CFA (its caller's stack pointer), when known.
    pub cfa: Option<u64>,
    /// The lookup PC, link-time.
    pub pc: u64,
    pub read: ReadMem<'a>,
}

const MAX_STEPS: usize = 256;
/// Operations one location expression may run (GCC's are a handful).
const MAX_OPS: u32 = 10_000;

impl Dwarf {
    /// The variables in scope of `f`, innermost scope's names winning.
    pub fn frame_vars(&self, f: &InlineFrame, st: &FrameState) -> Vec<Var> {
        let unit = &f.cu.unit;
        let mut out: Vec<Var> = Vec::new();
        for &off in f.vars.iter().rev() {
            let Ok(e) = unit.entry(off) else { continue };
            let Some(name) = self.die_name(unit, off) else {
                continue;
            };
            if out.iter().any(|v| v.name == name) {
                continue;
            }
            let ty = self.var_type(unit, off);
            let t = self.type_info(unit, ty);
            let value = self.var_value(f, &e, &t, st);
            out.push(Var {
                name,
                type_name: t.name,
                base_type: t.base,
                shape: t.shape,
                size: t.size,
                param: e.tag() == dw::DW_TAG_formal_parameter,
                value,
            });
        }
        out.reverse();
        out
    }

    /// A variable's or parameter's type, through its origin.
    pub(crate) fn var_type(&self, unit: &gimli::Unit<R>, off: UnitOffset) -> Option<UnitOffset> {
        self.through_origin(unit, off, |e| match e.attr_value(dw::DW_AT_type) {
            Some(AttributeValue::UnitRef(t)) => Some(t),
            _ => None,
        })
    }

    fn var_value(
        &self,
        f: &InlineFrame,
        e: &gimli::DebuggingInformationEntry<R>,
        t: &crate::types::TypeInfo,
        st: &FrameState,
    ) -> VarValue {
        let unit = &f.cu.unit;
        if let Some(c) = e.attr_value(dw::DW_AT_const_value) {
            return match c {
                AttributeValue::Block(b) => {
                    VarValue::Bytes(b.to_slice().map(|s| s.to_vec()).unwrap_or_default())
                }
                v => match v
                    .sdata_value()
                    .or_else(|| v.udata_value().map(|u| u as i64))
                {
                    Some(n) => VarValue::Scalar(n as u64),
                    None => VarValue::Absent,
                },
            };
        }
        let expr = match e.attr_value(dw::DW_AT_location) {
            Some(AttributeValue::Exprloc(x)) => Some(x),
            Some(AttributeValue::LocationListsRef(o)) => self.loclist_at(unit, o, st.pc),
            Some(v) => match self.dwarf.attr_locations(unit, v) {
                Ok(Some(mut it)) => {
                    let mut hit = None;
                    while let Ok(Some(le)) = it.next() {
                        if le.range.begin <= st.pc && st.pc < le.range.end {
                            hit = Some(le.data);
                            break;
                        }
                    }
                    hit
                }
                _ => None,
            },
            None => None,
        };
        let Some(expr) = expr else {
            return VarValue::Absent;
        };
        let pieces = match self.evaluate(f, expr, st) {
            Some(p) => p,
            None => return VarValue::Absent,
        };
        let size = t.size.unwrap_or(8).min(4096) as usize;
        let scalar = !matches!(t.shape, Shape::Other);
        // One piece: the usual case, a register, an address or a value.
        if pieces.len() == 1 && pieces[0].size_in_bits.is_none() {
            return match &pieces[0].location {
                Location::Empty => VarValue::Absent,
                Location::Register { register } => match st.regs.get(register.0) {
                    Some(v) if scalar => VarValue::Scalar(extend(v, size, t.shape)),
                    Some(v) => VarValue::Bytes(v.to_le_bytes()[..size.min(8)].to_vec()),
                    None => VarValue::Absent,
                },
                Location::Address { address } => {
                    if !scalar {
                        return VarValue::Object(*address);
                    }
                    let mut b = vec![0u8; size.min(8)];
                    if (st.read)(*address, &mut b) {
                        let mut w = [0u8; 8];
                        w[..b.len()].copy_from_slice(&b);
                        VarValue::Scalar(extend(u64::from_le_bytes(w), size, t.shape))
                    } else {
                        VarValue::Fault(*address)
                    }
                }
                Location::Value { value } => match value.to_u64(!0) {
                    Ok(v) => VarValue::Scalar(extend(v, size, t.shape)),
                    Err(_) => VarValue::Absent,
                },
                Location::Bytes { value } => match value.to_slice() {
                    Ok(b) if scalar && b.len() <= 8 => {
                        let mut w = [0u8; 8];
                        w[..b.len()].copy_from_slice(&b);
                        VarValue::Scalar(extend(u64::from_le_bytes(w), size, t.shape))
                    }
                    Ok(b) => VarValue::Bytes(b.to_vec()),
                    Err(_) => VarValue::Absent,
                },
                _ => VarValue::Absent,
            };
        }
        // Pieces: assemble the bytes; a piece that is absent makes the
        // whole absent (drgn reads a partly optimised-out value as absent).
        let mut bytes = Vec::new();
        for p in &pieces {
            let n = p.size_in_bits.map_or(8, |b| b.div_ceil(8)) as usize;
            let chunk = match &p.location {
                Location::Register { register } => match st.regs.get(register.0) {
                    Some(v) => v.to_le_bytes()[..n.min(8)].to_vec(),
                    None => return VarValue::Absent,
                },
                Location::Address { address } => {
                    let mut b = vec![0u8; n.min(4096)];
                    if !(st.read)(*address, &mut b) {
                        return VarValue::Fault(*address);
                    }
                    b
                }
                Location::Value { value } => match value.to_u64(!0) {
                    Ok(v) => v.to_le_bytes()[..n.min(8)].to_vec(),
                    Err(_) => return VarValue::Absent,
                },
                _ => return VarValue::Absent,
            };
            bytes.extend(chunk);
        }
        if scalar && bytes.len() >= size && size <= 8 {
            let mut w = [0u8; 8];
            w[..size].copy_from_slice(&bytes[..size]);
            VarValue::Scalar(extend(u64::from_le_bytes(w), size, t.shape))
        } else {
            VarValue::Bytes(bytes)
        }
    }

    fn loclist_at(
        &self,
        unit: &gimli::Unit<R>,
        o: gimli::LocationListsOffset,
        pc: u64,
    ) -> Option<gimli::Expression<R>> {
        let mut it = self.dwarf.locations(unit, o).ok()?;
        while let Ok(Some(le)) = it.next() {
            if le.range.begin <= pc && pc < le.range.end {
                return Some(le.data);
            }
        }
        None
    }

    /// The frame base of the out-of-line function (`DW_OP_call_frame_cfa`
    /// in the kernel's GCC builds).
    fn frame_base(&self, f: &InlineFrame, st: &FrameState) -> Option<u64> {
        let unit = &f.cu.unit;
        let e = unit.entry(f.func).ok()?;
        let expr = match e.attr_value(dw::DW_AT_frame_base)? {
            AttributeValue::Exprloc(x) => x,
            AttributeValue::LocationListsRef(o) => self.loclist_at(unit, o, st.pc)?,
            _ => return None,
        };
        let mut ev = expr.evaluation(unit.encoding());
        // A hostile expression can branch backwards forever.
        ev.set_max_iterations(MAX_OPS);
        let mut r = ev.evaluate().ok()?;
        for _ in 0..MAX_STEPS {
            r = match r {
                EvaluationResult::Complete => break,
                EvaluationResult::RequiresCallFrameCfa => {
                    ev.resume_with_call_frame_cfa(st.cfa?).ok()?
                }
                EvaluationResult::RequiresRegister { register, .. } => ev
                    .resume_with_register(Value::Generic(st.regs.get(register.0)?))
                    .ok()?,
                _ => return None,
            };
        }
        let p = ev.result();
        match p.first()?.location {
            Location::Address { address } => Some(address),
            Location::Register { register } => st.regs.get(register.0),
            _ => None,
        }
    }

    /// Runs a location expression; `None` when it needs what this frame
    /// does not have (an unknown register, `DW_OP_entry_value`, TLS).
    fn evaluate(
        &self,
        f: &InlineFrame,
        expr: gimli::Expression<R>,
        st: &FrameState,
    ) -> Option<Vec<gimli::Piece<R>>> {
        let unit = &f.cu.unit;
        let mut ev = expr.evaluation(unit.encoding());
        // A hostile expression can branch backwards forever.
        ev.set_max_iterations(MAX_OPS);
        let mut r = ev.evaluate().ok()?;
        for _ in 0..MAX_STEPS {
            r = match r {
                EvaluationResult::Complete => return Some(ev.result()),
                EvaluationResult::RequiresRegister { register, .. } => ev
                    .resume_with_register(Value::Generic(st.regs.get(register.0)?))
                    .ok()?,
                EvaluationResult::RequiresMemory { address, size, .. } => {
                    let mut b = [0u8; 8];
                    let n = (size as usize).min(8);
                    if !(st.read)(address, &mut b[..n]) {
                        return None;
                    }
                    ev.resume_with_memory(Value::Generic(u64::from_le_bytes(b)))
                        .ok()?
                }
                EvaluationResult::RequiresFrameBase => {
                    ev.resume_with_frame_base(self.frame_base(f, st)?).ok()?
                }
                EvaluationResult::RequiresCallFrameCfa => {
                    ev.resume_with_call_frame_cfa(st.cfa?).ok()?
                }
                // DW_OP_addr: a link-time address, moved by KASLR.
                EvaluationResult::RequiresRelocatedAddress(a) => ev
                    .resume_with_relocated_address(a.wrapping_add(self.slide))
                    .ok()?,
                EvaluationResult::RequiresIndexedAddress { index, relocate } => {
                    let a = self.dwarf.address(unit, index).ok()?;
                    let a = if relocate {
                        a.wrapping_add(self.slide)
                    } else {
                        a
                    };
                    ev.resume_with_indexed_address(a).ok()?
                }
                EvaluationResult::RequiresBaseType(o) => {
                    let e = unit.entry(o).ok()?;
                    let size = e.attr_value(dw::DW_AT_byte_size)?.udata_value()?;
                    let signed = matches!(
                        e.attr_value(dw::DW_AT_encoding),
                        Some(AttributeValue::Encoding(dw::DW_ATE_signed))
                    );
                    let vt = match (size, signed) {
                        (1, true) => gimli::ValueType::I8,
                        (1, false) => gimli::ValueType::U8,
                        (2, true) => gimli::ValueType::I16,
                        (2, false) => gimli::ValueType::U16,
                        (4, true) => gimli::ValueType::I32,
                        (4, false) => gimli::ValueType::U32,
                        (8, true) => gimli::ValueType::I64,
                        _ => gimli::ValueType::U64,
                    };
                    ev.resume_with_base_type(vt).ok()?
                }
                // The value a register had on entry: not kept by any frame
                // (drgn reads it as absent too).
                _ => return None,
            };
        }
        None
    }
}

/// Sign-extends a signed value of `size` bytes; masks an unsigned one.
fn extend(v: u64, size: usize, shape: Shape) -> u64 {
    if size >= 8 || size == 0 {
        return v;
    }
    let bits = 8 * size as u32;
    let masked = v & ((1u64 << bits) - 1);
    if shape == Shape::Signed && masked >> (bits - 1) & 1 == 1 {
        masked | !((1u64 << bits) - 1)
    } else {
        masked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_by_size_and_sign() {
        assert_eq!(extend(0xffff_fffb, 4, Shape::Signed) as i64, -5);
        assert_eq!(extend(0x1_0000_0001, 4, Shape::Unsigned), 1);
        assert_eq!(extend(0xff, 1, Shape::Bool), 0xff);
    }
}
