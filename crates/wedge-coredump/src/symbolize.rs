//! Names and source lines for raw frames, through blazesym: ELF symbols,
//! DWARF (also from split debug files found by `.gnu_debuglink` or by
//! build-id under the debug directories), demangled, with inlined calls.
//!
//! Only names that are mangled are demangled (`_Z…` for C++ and legacy
//! Rust, `_R…` for Rust v0): C has plain names, and a plain name like `t`
//! or `PKc` is also a valid C++ *type* encoding.

use crate::binaries::{Binary, BinaryState};
use crate::report::{Frame, FrameMark};
use crate::unwind::RawFrame;
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use object::{Object, ObjectSymbol};
use std::collections::HashMap;
use std::path::PathBuf;

/// What a lookup address resolved to: the innermost function first.
#[derive(Debug, Clone, Default)]
struct Resolved {
    /// (name, file, line), innermost (inlined) first, the real function last.
    chain: Vec<(String, Option<String>, Option<u32>)>,
    /// Offset of the lookup address into the real function.
    offset: Option<u64>,
}

/// Directories searched for split debug info when none are given.
pub fn default_debug_dirs(root: Option<&std::path::Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in ["/usr/lib/debug", "/lib/debug"] {
        if let Some(r) = root {
            v.push(r.join(d.trim_start_matches('/')));
        }
        v.push(PathBuf::from(d));
    }
    v
}

/// Symbolizes every stack at once: each binary is opened and its debug info
/// parsed once, however many threads pass through it.
pub fn symbolize(
    binaries: &[Binary],
    stacks: &[Vec<RawFrame>],
    debug_dirs: &[PathBuf],
) -> Vec<Vec<Frame>> {
    let symbolizer = Symbolizer::builder()
        .enable_code_info(true)
        .enable_inlined_fns(true)
        .enable_demangling(false)
        .set_debug_dirs(Some(debug_dirs))
        .build();
    let which = |addr: u64| binaries.iter().position(|b| b.file_offset(addr).is_some());

    // Unique lookup addresses per binary.
    let mut per_bin: HashMap<usize, Vec<u64>> = HashMap::new();
    for f in stacks.iter().flatten() {
        if let Some(i) = which(f.lookup) {
            per_bin.entry(i).or_default().push(f.lookup);
        }
    }
    let mut resolved: HashMap<u64, Resolved> = HashMap::new();
    for (i, mut addrs) in per_bin {
        addrs.sort_unstable();
        addrs.dedup();
        let b = &binaries[i];
        let got = match &b.found_at {
            Some(path) => with_blazesym(&symbolizer, b, path, &addrs),
            // The vDSO has no file: its .dynsym is read from the core.
            None => with_object_symbols(b, &addrs),
        };
        for (a, r) in addrs.iter().zip(got) {
            if let Some(r) = r {
                resolved.insert(*a, r);
            }
        }
    }

    stacks
        .iter()
        .map(|stack| {
            let mut frames = Vec::new();
            for f in stack {
                let bin = which(f.lookup).map(|i| &binaries[i]);
                let module = bin.map(|b| b.path.clone());
                let mismatch = bin.is_some_and(|b| b.state == BinaryState::BuildIdMismatch);
                match resolved.get(&f.lookup) {
                    Some(r) if !r.chain.is_empty() => {
                        let last = r.chain.len() - 1;
                        for (k, (name, file, line)) in r.chain.iter().enumerate() {
                            frames.push(Frame {
                                index: frames.len(),
                                address: f.address,
                                function: Some(name.clone()),
                                offset: (k == last)
                                    .then(|| r.offset.map(|o| o + (f.address - f.lookup)))
                                    .flatten(),
                                file: file.clone(),
                                line: *line,
                                module: module.clone(),
                                inlined: k != last,
                                mark: mismatch.then_some(FrameMark::BuildIdMismatch),
                            });
                        }
                    }
                    _ => frames.push(Frame {
                        index: frames.len(),
                        address: f.address,
                        function: None,
                        offset: None,
                        file: None,
                        line: None,
                        module: module.clone(),
                        inlined: false,
                        mark: Some(if mismatch {
                            FrameMark::BuildIdMismatch
                        } else {
                            FrameMark::Unsymbolized {
                                reason: why_unsymbolized(bin),
                            }
                        }),
                    }),
                }
            }
            frames
        })
        .collect()
}

fn why_unsymbolized(bin: Option<&Binary>) -> String {
    match bin {
        None => "in no mapped file (anonymous or JIT code, or a corrupt stack)".into(),
        Some(b) => match &b.state {
            BinaryState::Missing { reason } => format!("{} is missing: {reason}", b.path),
            BinaryState::Unusable { reason } => format!("{} is unusable: {reason}", b.path),
            _ if b.stripped => format!(
                "{} is stripped (exported symbols only) and no debug file was found for it (install its -dbgsym/-debuginfo package, or pass --debug-dir)",
                b.short_name()
            ),
            _ => format!("no symbol in {} covers it", b.short_name()),
        },
    }
}

fn with_blazesym(
    symbolizer: &Symbolizer,
    b: &Binary,
    path: &std::path::Path,
    addrs: &[u64],
) -> Vec<Option<Resolved>> {
    let offsets: Vec<u64> = addrs
        .iter()
        .map(|a| b.file_offset(*a).unwrap_or(u64::MAX))
        .collect();
    let src = Source::Elf(Elf::new(path));
    let Ok(syms) = symbolizer.symbolize(&src, Input::FileOffset(&offsets)) else {
        return with_object_symbols(b, addrs);
    };
    let mut got: Vec<Option<Resolved>> = syms
        .into_iter()
        .map(|s| match s {
            Symbolized::Sym(sym) => {
                let loc = |ci: Option<&blazesym::symbolize::CodeInfo>| {
                    (
                        ci.map(|c| c.to_path().display().to_string()),
                        ci.and_then(|c| c.line),
                    )
                };
                let mut chain = Vec::new();
                for inl in sym.inlined.iter().rev() {
                    let (file, line) = loc(inl.code_info.as_ref());
                    chain.push((demangle(&inl.name), file, line));
                }
                let (file, line) = loc(sym.code_info.as_deref());
                chain.push((demangle(&sym.name), file, line));
                // A function the compiler split into hot and cold parts is
                // described in DWARF by address ranges with no low_pc, and
                // blazesym then reports an offset from the start of the
                // file. An offset past the function's size is not one into
                // the function: it is taken from the ELF symbol table below.
                let sane = sym.addr != 0 && sym.size.is_none_or(|size| sym.offset < size);
                Some(Resolved {
                    chain,
                    offset: sane.then_some(sym.offset as u64),
                })
            }
            _ => None,
        })
        .collect();
    // Offsets blazesym could not give, from the ELF symbols (parsed once
    // for all of them), when the symbol there is the same function.
    let unknown: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].as_ref().is_some_and(|r| r.offset.is_none()))
        .collect();
    if !unknown.is_empty() {
        let at: Vec<u64> = unknown.iter().map(|&i| addrs[i]).collect();
        for (i, elf) in unknown.into_iter().zip(with_object_symbols(b, &at)) {
            let (Some(r), Some(elf)) = (got[i].as_mut(), elf) else {
                continue;
            };
            let same = r
                .chain
                .last()
                .zip(elf.chain.first())
                .is_some_and(|(a, e)| a.0 == e.0);
            if same {
                r.offset = elf.offset;
            }
        }
    }
    got
}

/// A symbol's name for people: demangled when it is mangled, as it is.
fn demangle(name: &str) -> String {
    if name.starts_with("_R") {
        if let Ok(d) = rustc_demangle::try_demangle(name) {
            return format!("{d:#}");
        }
    }
    if name.starts_with("_Z") {
        // Legacy Rust symbols are Itanium-shaped (`_ZN…17h<hash>E`): the
        // Rust demangler takes only those and prints them without the hash.
        if let Ok(d) = rustc_demangle::try_demangle(name) {
            return format!("{d:#}");
        }
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle() {
                return d;
            }
        }
    }
    name.to_string()
}

/// The nearest preceding symbol of `.symtab` or `.dynsym`, for binaries
/// blazesym cannot open (the vDSO lives only in the core).
fn with_object_symbols(b: &Binary, addrs: &[u64]) -> Vec<Option<Resolved>> {
    let none = || addrs.iter().map(|_| None).collect();
    let (Some(data), Some(bias)) = (&b.data, b.bias) else {
        return none();
    };
    let Ok(obj) = object::File::parse(&**data) else {
        return none();
    };
    let mut syms: Vec<(u64, u64, String)> = obj
        .symbols()
        .chain(obj.dynamic_symbols())
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    syms.sort();
    addrs
        .iter()
        .map(|a| {
            let svma = a.wrapping_sub(bias);
            let i = syms.partition_point(|s| s.0 <= svma).checked_sub(1)?;
            let (start, size, name) = &syms[i];
            if *size != 0 && svma >= start + size {
                return None;
            }
            Some(Resolved {
                chain: vec![(demangle(name), None, None)],
                offset: Some(svma - start),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn only_mangled_names_are_demangled() {
        // C functions whose names are also C++ type encodings.
        for plain in [
            "t",
            "i",
            "v",
            "Ss",
            "PKc",
            "main",
            "_start",
            "__libc_start_main",
        ] {
            assert_eq!(demangle(plain), plain);
        }
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(
            demangle("_ZN4core9panicking5panic17h0123456789abcdefE"),
            "core::panicking::panic"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        // Not valid mangling: left as it is.
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }
}
