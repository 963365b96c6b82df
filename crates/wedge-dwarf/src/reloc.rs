//! A module's DWARF is in an ET_REL file: every address in it (and every
//! offset into another debug section) is a relocation. The kernel's module
//! loader placed each section somewhere; where, for the text sections, the
//! loaded module's own symbol table says (runtime address of a function
//! minus its offset in its section). The debug sections' `.rela` entries
//! are then applied to copies of them.

use object::{
    Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionIndex,
};
use std::collections::HashMap;

/// Most bytes a module's debug section may have (the largest in-tree
/// module's .debug_info is tens of MB).
const MAX_SECTION: u64 = 256 << 20;

/// Load address of each section of the file that the loaded module's
/// symbols locate; the others (debug sections, data) count as 0.
pub fn section_bases(
    obj: &object::File<'_>,
    funcs: &[(u64, u64, String)],
) -> HashMap<SectionIndex, u64> {
    let runtime: HashMap<&str, u64> = funcs.iter().map(|(a, _, n)| (n.as_str(), *a)).collect();
    let mut votes: HashMap<SectionIndex, HashMap<u64, usize>> = HashMap::new();
    for s in obj.symbols() {
        let (Ok(name), Some(idx)) = (s.name(), s.section_index()) else {
            continue;
        };
        if let Some(&a) = runtime.get(name) {
            *votes
                .entry(idx)
                .or_default()
                .entry(a.wrapping_sub(s.address()))
                .or_default() += 1;
        }
    }
    // The base most of a section's symbols agree on (a name the module
    // holds twice, a static in two files, cannot move it).
    votes
        .into_iter()
        .filter_map(|(i, v)| v.into_iter().max_by_key(|(_, n)| *n).map(|(b, _)| (i, b)))
        .collect()
}

/// A copy of `sec` with its relocations applied (x86-64: 64-bit and
/// 32-bit absolute, and PC-relative 32-bit).
pub fn relocated(
    obj: &object::File<'_>,
    sec: &object::Section<'_, '_>,
    bases: &HashMap<SectionIndex, u64>,
) -> Result<Vec<u8>, String> {
    let name = sec.name().unwrap_or("?").to_string();
    if sec.size() > MAX_SECTION {
        return Err(format!(
            "section {name} is {} bytes: more than any module's",
            sec.size()
        ));
    }
    let mut data = sec
        .uncompressed_data()
        .map_err(|e| format!("section {name}: {e}"))?
        .into_owned();
    for (off, r) in sec.relocations() {
        let RelocationFlags::Elf { r_type } = r.flags() else {
            continue;
        };
        let s = match r.target() {
            RelocationTarget::Symbol(i) => match obj.symbol_by_index(i) {
                Ok(sym) => {
                    let base = sym.section_index().and_then(|x| bases.get(&x)).copied();
                    base.unwrap_or(0).wrapping_add(sym.address())
                }
                Err(_) => continue,
            },
            _ => continue,
        };
        let v = s.wrapping_add(r.addend() as u64);
        let at = off as usize;
        let put = |data: &mut Vec<u8>, bytes: &[u8]| {
            let end = at.checked_add(bytes.len());
            if let Some(d) = end.and_then(|end| data.get_mut(at..end)) {
                d.copy_from_slice(bytes);
            }
        };
        match r_type {
            object::elf::R_X86_64_64 => put(&mut data, &v.to_le_bytes()),
            object::elf::R_X86_64_32 | object::elf::R_X86_64_32S => {
                put(&mut data, &(v as u32).to_le_bytes())
            }
            object::elf::R_X86_64_PC32 => {
                let p = bases
                    .get(&sec.index())
                    .copied()
                    .unwrap_or(0)
                    .wrapping_add(off);
                put(&mut data, &(v.wrapping_sub(p) as u32).to_le_bytes())
            }
            _ => {}
        }
    }
    Ok(data)
}
