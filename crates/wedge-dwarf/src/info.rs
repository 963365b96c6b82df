//! One ELF file's DWARF: mapped, indexed by address lazily, one compile
//! unit parsed when an address in it is first asked for.

use crate::files::{hex, ident, Expect};
use gimli::{constants as dw, AttributeValue, Reader, UnitOffset};
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Where a section's bytes live: the file's mapping, or (a module's
/// relocated DWARF) a copy.
pub type Backing = wedge_input::Bytes;

/// A section's bytes inside the shared mapping.
#[derive(Clone, Debug)]
pub struct MapSlice {
    map: Arc<Backing>,
    start: usize,
    end: usize,
}

impl Deref for MapSlice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.get(self.start..self.end).unwrap_or(&[])
    }
}

// SAFETY: the bytes are in a mapping owned by the Arc; moving or cloning a
// MapSlice never moves them, and the mapping lives as long as any clone.
unsafe impl stable_deref_trait::StableDeref for MapSlice {}
// SAFETY: as above: a clone points at the same mapping.
unsafe impl stable_deref_trait::CloneStableDeref for MapSlice {}

pub type R = gimli::EndianReader<gimli::LittleEndian, MapSlice>;

/// A parsed compile unit: its DIEs stay in the mapping; what is kept is
/// the address index of its functions and its line table.
pub(crate) struct Cu {
    pub unit: gimli::Unit<R>,
    /// (start, end, subprogram DIE) of each range of each function.
    funcs: Vec<(u64, u64, UnitOffset)>,
    /// Line table sequences: rows (address, file, line, column), sorted.
    seqs: Vec<Seq>,
    /// File names by line-table index, resolved on first use.
    files: Mutex<HashMap<u64, Option<String>>>,
}

struct Seq {
    start: u64,
    end: u64,
    rows: Vec<(u64, u64, u32, u32)>,
}

/// One frame a PC stands for: the function it is in, or one inlined into
/// it, innermost first.
#[derive(Clone)]
pub struct InlineFrame {
    pub function: String,
    /// Inlined into the next frame (the one of the same PC below it).
    pub inline: bool,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub(crate) cu: Arc<Cu>,
    /// The variables in scope, DIE order, outer blocks first.
    pub(crate) vars: Vec<UnitOffset>,
    /// The concrete out-of-line function (its frame base).
    pub(crate) func: UnitOffset,
}

impl std::fmt::Debug for InlineFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineFrame")
            .field("function", &self.function)
            .field("inline", &self.inline)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .finish()
    }
}

/// An address range of a compile unit: start, end, the unit.
type Arange = (u64, u64, gimli::DebugInfoOffset);

/// A vmlinux's DWARF and call-frame information.
pub struct Dwarf {
    pub path: PathBuf,
    pub build_id: Option<String>,
    pub release: Option<String>,
    /// runtime address = link-time address + slide (KASLR).
    pub slide: u64,
    pub(crate) dwarf: gimli::Dwarf<R>,
    pub(crate) frame: gimli::DebugFrame<R>,
    aranges: OnceLock<Result<Vec<Arange>, String>>,
    cus: Mutex<HashMap<usize, Arc<Cu>>>,
    pub(crate) fdes: OnceLock<Vec<(u64, u64, gimli::DebugFrameOffset)>>,
    /// Global variables by name: (unit, DIE), built on first use.
    globals: OnceLock<HashMap<String, (gimli::DebugInfoOffset, UnitOffset)>>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

impl Dwarf {
    /// Maps and checks a vmlinux: ELF, with DWARF, and the dump's build.
    pub fn open(path: &Path, want: &Expect) -> Result<Dwarf, String> {
        Dwarf::open_with(path, want, None)
    }

    /// A module's `.ko`: an ET_REL file whose DWARF addresses are
    /// relocations against its sections. Each text section's load address
    /// comes from the loaded module's own symbols (`funcs`: runtime
    /// address, size, name), matched by name to the file's symbol table;
    /// then the debug sections' relocations are applied to copies of
    /// them, so the DWARF speaks runtime addresses (slide 0).
    pub fn open_module(path: &Path, funcs: &[(u64, u64, String)]) -> Result<Dwarf, String> {
        Dwarf::open_with(path, &Expect::default(), Some(funcs))
    }

    fn open_with(
        path: &Path,
        want: &Expect,
        module: Option<&[(u64, u64, String)]>,
    ) -> Result<Dwarf, String> {
        // wedge-input's opener, as for every file the user names: a FIFO
        // or a file on a mount that never answers is an error in bounded
        // time, not a hang; a plain local file is mapped, never read whole.
        let loaded = wedge_input::open(path, &wedge_input::Limits::default())
            .and_then(wedge_input::Input::load)
            .map_err(|e| e.to_string())?;
        if let Some(d) = loaded.damage {
            return Err(err(path, d));
        }
        let map = Arc::new(loaded.bytes);
        let obj = object::File::parse(&**map)
            .map_err(|e| err(path, format!("not a readable ELF file ({e})")))?;
        if obj.architecture() != object::Architecture::X86_64 {
            return Err(err(
                path,
                format!("an {:?} file, not x86-64", obj.architecture()),
            ));
        }
        let id = ident(&obj);
        if let (Some(want_id), Some(have)) = (&want.build_id, &id.build_id) {
            // VMCOREINFO may carry the id padded or cut to 20 bytes.
            let (w, h) = (want_id.to_ascii_lowercase(), have.to_ascii_lowercase());
            if !(w.starts_with(&h) || h.starts_with(&w)) {
                return Err(err(path, format!(
                    "build-id {have} does not match the dump's {want_id}: debuginfo of another build"
                )));
            }
        }
        if let (Some(want_r), Some(have)) = (&want.release, &id.release) {
            if want_r != have {
                return Err(err(
                    path,
                    format!("kernel release {have} does not match the dump's {want_r}"),
                ));
            }
        }
        if want.build_id.is_some() && id.build_id.is_none() && id.release.is_none() {
            return Err(err(
                path,
                "no build-id note and no linux_banner: cannot tell which kernel it is for",
            ));
        }
        let bases = module.map(|f| crate::reloc::section_bases(&obj, f));
        let section = |name: &str| -> Result<MapSlice, String> {
            if let (Some(b), Some(s)) = (&bases, obj.section_by_name(name)) {
                let v = crate::reloc::relocated(&obj, &s, b).map_err(|e| err(path, e))?;
                let end = v.len();
                return Ok(MapSlice {
                    map: Arc::new(Backing::Owned(v)),
                    start: 0,
                    end,
                });
            }
            let Some(s) = obj.section_by_name(name) else {
                return Ok(MapSlice {
                    map: map.clone(),
                    start: 0,
                    end: 0,
                });
            };
            let c = s.compressed_file_range().map_err(|e| err(path, e))?;
            if c.format != object::CompressionFormat::None {
                return Err(err(
                    path,
                    format!("section {name} is compressed: decompress it first (objcopy --decompress-debug-sections)"),
                ));
            }
            let (off, len) = s
                .file_range()
                .ok_or_else(|| err(path, format!("section {name} has no bytes in the file")))?;
            let (start, end) = (off as usize, off.saturating_add(len) as usize);
            if end > map.len() {
                return Err(err(
                    path,
                    format!(
                        "section {name} runs past the end of the file ({end} > {} bytes): truncated",
                        map.len()
                    ),
                ));
            }
            Ok(MapSlice {
                map: map.clone(),
                start,
                end,
            })
        };
        if obj.section_by_name(".debug_info").is_none() {
            return Err(err(
                path,
                "no DWARF (.debug_info): a stripped vmlinux; the -dbg package's file has it",
            ));
        }
        let dwarf = gimli::Dwarf::load(|id| -> Result<R, String> {
            Ok(R::new(section(id.name())?, gimli::LittleEndian))
        })?;
        let frame = gimli::DebugFrame::from(R::new(section(".debug_frame")?, gimli::LittleEndian));
        Ok(Dwarf {
            path: path.to_path_buf(),
            build_id: id.build_id,
            release: id.release,
            slide: if module.is_some() { 0 } else { want.slide },
            dwarf,
            frame,
            aranges: OnceLock::new(),
            cus: Mutex::new(HashMap::new()),
            fdes: OnceLock::new(),
            globals: OnceLock::new(),
        })
    }

    pub(crate) fn e(&self, e: impl std::fmt::Display) -> String {
        err(&self.path, e)
    }

    /// Address ranges → compile units, from `.debug_aranges` (one pass over
    /// a small section), or from each unit's root DIE when it is missing.
    fn aranges(&self) -> Result<&Vec<Arange>, String> {
        self.aranges
            .get_or_init(|| {
                let mut v = Vec::new();
                let mut headers = self.dwarf.debug_aranges.headers();
                while let Some(h) = headers.next().map_err(|e| self.e(e))? {
                    let off = h.debug_info_offset();
                    let mut es = h.entries();
                    while let Some(a) = es.next().map_err(|e| self.e(e))? {
                        let r = a.range();
                        if r.end > r.begin {
                            v.push((r.begin, r.end, off));
                        }
                    }
                }
                if v.is_empty() {
                    let mut units = self.dwarf.units();
                    while let Some(h) = units.next().map_err(|e| self.e(e))? {
                        let off = gimli::DebugInfoOffset(h.offset().0);
                        let unit = self.dwarf.unit(h).map_err(|e| self.e(e))?;
                        let mut rs = self.dwarf.unit_ranges(&unit).map_err(|e| self.e(e))?;
                        while let Some(r) = rs.next().map_err(|e| self.e(e))? {
                            if r.end > r.begin {
                                v.push((r.begin, r.end, off));
                            }
                        }
                    }
                }
                v.sort_by_key(|r| r.0);
                Ok(v)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cu_for(&self, pc: u64) -> Result<Option<Arc<Cu>>, String> {
        let ar = self.aranges()?;
        let i = ar.partition_point(|r| r.0 <= pc);
        // Ranges do not nest in practice; look back a little in case two
        // units' ranges interleave.
        let hit = ar[..i].iter().rev().take(8).find(|r| pc < r.1).map(|r| r.2);
        let Some(off) = hit else { return Ok(None) };
        self.cu_at(off).map(Some)
    }

    pub(crate) fn cu_at(&self, off: gimli::DebugInfoOffset) -> Result<Arc<Cu>, String> {
        if let Some(c) = self.cus.lock().ok().and_then(|m| m.get(&off.0).cloned()) {
            return Ok(c);
        }
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(off)
            .map_err(|e| self.e(format!("unit at {:#x}: {e}", off.0)))?;
        let unit = self.dwarf.unit(header).map_err(|e| self.e(e))?;
        let cu = Arc::new(self.parse_cu(unit)?);
        if let Ok(mut m) = self.cus.lock() {
            m.insert(off.0, cu.clone());
        }
        Ok(cu)
    }

    fn parse_cu(&self, unit: gimli::Unit<R>) -> Result<Cu, String> {
        let mut funcs = Vec::new();
        // Functions are children of the unit in C; in C++ and Rust also of
        // namespaces. A function's own subtree (its locals and inlined
        // calls) is not walked here: that waits for an address in it.
        fn collect(
            d: &Dwarf,
            unit: &gimli::Unit<R>,
            node: gimli::EntriesTreeNode<'_, '_, R>,
            funcs: &mut Vec<(u64, u64, UnitOffset)>,
            depth: usize,
        ) -> gimli::Result<()> {
            let mut children = node.children();
            while let Some(child) = children.next()? {
                let e = child.entry();
                match e.tag() {
                    dw::DW_TAG_subprogram => {
                        let mut rs = d.dwarf.die_ranges(unit, e)?;
                        while let Some(r) = rs.next()? {
                            if r.end > r.begin {
                                funcs.push((r.begin, r.end, e.offset()));
                            }
                        }
                    }
                    dw::DW_TAG_namespace if depth < 16 => {
                        collect(d, unit, child, funcs, depth + 1)?
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        {
            let mut tree = unit.entries_tree(None).map_err(|e| self.e(e))?;
            let root = tree.root().map_err(|e| self.e(e))?;
            collect(self, &unit, root, &mut funcs, 0).map_err(|e| self.e(e))?;
        }
        funcs.sort_by_key(|f| f.0);
        let mut seqs = Vec::new();
        if let Some(lp) = unit.line_program.clone() {
            let mut rows = lp.rows();
            let mut cur: Vec<(u64, u64, u32, u32)> = Vec::new();
            while let Some((_, row)) = rows.next_row().map_err(|e| self.e(e))? {
                let line = row.line().map_or(0, |l| l.get() as u32);
                let col = match row.column() {
                    gimli::ColumnType::LeftEdge => 0,
                    gimli::ColumnType::Column(c) => c.get() as u32,
                };
                if row.end_sequence() {
                    if let Some(&(start, ..)) = cur.first() {
                        seqs.push(Seq {
                            start,
                            end: row.address(),
                            rows: std::mem::take(&mut cur),
                        });
                    }
                } else {
                    cur.push((row.address(), row.file_index(), line, col));
                }
            }
        }
        seqs.sort_by_key(|s| s.start);
        Ok(Cu {
            unit,
            funcs,
            seqs,
            files: Mutex::new(HashMap::new()),
        })
    }

    /// A file of the unit's line table as the compiler named it: its
    /// directory and name, the directory left relative as written (drgn
    /// and addr2line print `arch/x86/lib/delay.c`, not the build path).
    fn file_name(&self, cu: &Cu, index: u64) -> Option<String> {
        if let Some(v) = cu.files.lock().ok().and_then(|m| m.get(&index).cloned()) {
            return v;
        }
        let name = (|| {
            let lp = cu.unit.line_program.as_ref()?;
            let h = lp.header();
            let f = h.file(index)?;
            let s = |v| {
                self.dwarf
                    .attr_string(&cu.unit, v)
                    .ok()
                    .and_then(|r| r.to_string_lossy().ok().map(|c| c.into_owned()))
            };
            let name = s(f.path_name())?;
            if name.starts_with('/') {
                return Some(name);
            }
            // DWARF 5's directory 0 is the unit's own (the build
            // directory): a file there is named alone.
            if f.directory_index() == 0 && h.version() >= 5 {
                return Some(name);
            }
            match f.directory(h).and_then(s) {
                Some(d) if !d.is_empty() => Some(format!("{d}/{name}")),
                _ => Some(name),
            }
        })();
        if let Ok(mut m) = cu.files.lock() {
            m.insert(index, name.clone());
        }
        name
    }

    fn line_at(&self, cu: &Cu, pc: u64) -> Option<(Option<String>, u32, u32)> {
        let i = cu.seqs.partition_point(|s| s.start <= pc);
        let s = cu.seqs[..i].iter().rev().find(|s| pc < s.end)?;
        let j = s.rows.partition_point(|r| r.0 <= pc).checked_sub(1)?;
        let (_, file, line, col) = s.rows[j];
        Some((self.file_name(cu, file), line, col))
    }

    fn contains(
        &self,
        unit: &gimli::Unit<R>,
        e: &gimli::DebuggingInformationEntry<R>,
        pc: u64,
    ) -> bool {
        let Ok(mut rs) = self.dwarf.die_ranges(unit, e) else {
            return false;
        };
        while let Ok(Some(r)) = rs.next() {
            if r.begin <= pc && pc < r.end {
                return true;
            }
        }
        false
    }

    /// The first answer `f` gives for a DIE or, failing that, for what it
    /// is a copy of: an inlined or out-of-line copy has its name and type
    /// at its abstract origin, a definition (`int x = 1;`) at its
    /// declaration (`extern int x;`, DW_AT_specification). Bounded: a
    /// chain of origins is short, a loop in bad DWARF is not followed.
    pub(crate) fn through_origin<T>(
        &self,
        unit: &gimli::Unit<R>,
        off: UnitOffset,
        f: impl Fn(&gimli::DebuggingInformationEntry<R>) -> Option<T>,
    ) -> Option<T> {
        let mut off = off;
        for _ in 0..4 {
            let e = unit.entry(off).ok()?;
            if let Some(t) = f(&e) {
                return Some(t);
            }
            match e
                .attr_value(dw::DW_AT_abstract_origin)
                .or_else(|| e.attr_value(dw::DW_AT_specification))
            {
                Some(AttributeValue::UnitRef(o)) => off = o,
                _ => return None,
            }
        }
        None
    }

    /// A DIE's name, through its abstract origin or specification.
    pub(crate) fn die_name(&self, unit: &gimli::Unit<R>, off: UnitOffset) -> Option<String> {
        self.through_origin(unit, off, |e| {
            let v = e.attr_value(dw::DW_AT_name)?;
            let r = self.dwarf.attr_string(unit, v).ok()?;
            r.to_string_lossy().ok().map(|c| c.into_owned())
        })
    }

    /// The frames a link-time PC stands for, innermost first: the inlined
    /// calls, then the function. `pc` is already the lookup address (a
    /// return address minus one for frames above the first). Empty when no
    /// unit describes it (assembly without DWARF, a module).
    pub fn frames_at(&self, pc: u64) -> Result<Vec<InlineFrame>, String> {
        let Some(cu) = self.cu_for(pc)? else {
            return Ok(vec![]);
        };
        let i = cu.funcs.partition_point(|f| f.0 <= pc);
        let Some(&(_, _, func)) = cu.funcs[..i].iter().rev().take(8).find(|f| pc < f.1) else {
            // A unit with lines but no function DIE (assembly): the line.
            let name = None::<String>;
            let _ = name;
            return Ok(match self.line_at(&cu, pc) {
                Some((file, line, col)) => vec![InlineFrame {
                    function: String::new(),
                    inline: false,
                    file,
                    line: Some(line).filter(|&l| l > 0),
                    column: Some(col).filter(|&c| c > 0),
                    cu: cu.clone(),
                    vars: vec![],
                    func: UnitOffset(0),
                }],
                None => vec![],
            });
        };
        // chain[0] the function, then each inlined call containing pc.
        struct Level {
            die: UnitOffset,
            vars: Vec<UnitOffset>,
            call: Option<(Option<u64>, u32, u32)>,
        }
        let mut chain = vec![Level {
            die: func,
            vars: vec![],
            call: None,
        }];
        fn walk(
            d: &Dwarf,
            unit: &gimli::Unit<R>,
            node: gimli::EntriesTreeNode<'_, '_, R>,
            pc: u64,
            level: usize,
            chain: &mut Vec<Level>,
            depth: usize,
        ) -> gimli::Result<()> {
            if depth > 64 {
                return Ok(());
            }
            let mut children = node.children();
            while let Some(child) = children.next()? {
                let e = child.entry();
                match e.tag() {
                    dw::DW_TAG_formal_parameter | dw::DW_TAG_variable => {
                        chain[level].vars.push(e.offset());
                    }
                    dw::DW_TAG_lexical_block if d.contains(unit, e, pc) => {
                        walk(d, unit, child, pc, level, chain, depth + 1)?;
                    }
                    dw::DW_TAG_inlined_subroutine if d.contains(unit, e, pc) => {
                        let num = |a| match e.attr_value(a) {
                            Some(AttributeValue::Udata(n)) => n,
                            Some(v) => v.udata_value().unwrap_or(0),
                            None => 0,
                        };
                        let file = match e.attr_value(dw::DW_AT_call_file) {
                            Some(AttributeValue::FileIndex(f)) => Some(f),
                            Some(v) => v.udata_value(),
                            None => None,
                        };
                        let call = (
                            file,
                            num(dw::DW_AT_call_line) as u32,
                            num(dw::DW_AT_call_column) as u32,
                        );
                        chain.push(Level {
                            die: e.offset(),
                            vars: vec![],
                            call: Some(call),
                        });
                        let l = chain.len() - 1;
                        walk(d, unit, child, pc, l, chain, depth + 1)?;
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        {
            let mut tree = cu.unit.entries_tree(Some(func)).map_err(|e| self.e(e))?;
            let root = tree.root().map_err(|e| self.e(e))?;
            walk(self, &cu.unit, root, pc, 0, &mut chain, 0).map_err(|e| self.e(e))?;
        }
        let mut out = Vec::with_capacity(chain.len());
        let (mut file, mut line, mut col) = match self.line_at(&cu, pc) {
            Some((f, l, c)) => (f, Some(l), Some(c)),
            None => (None, None, None),
        };
        for (k, lv) in chain.iter().enumerate().rev() {
            out.push(InlineFrame {
                function: self
                    .die_name(&cu.unit, lv.die)
                    .unwrap_or_else(|| "??".into()),
                inline: k > 0,
                file: file.clone(),
                line: line.filter(|&l| l > 0),
                column: col.filter(|&c| c > 0),
                cu: cu.clone(),
                vars: lv.vars.clone(),
                func,
            });
            // The caller's position is where this inlined copy was called.
            if let Some((f, l, c)) = lv.call {
                file = f.and_then(|f| self.file_name(&cu, f));
                line = Some(l);
                col = Some(c);
            }
        }
        Ok(out)
    }

    /// Every unit's global variable definitions (children of the unit with
    /// a location), by name: the one full pass over .debug_info, done only
    /// when an expression names a global BTF does not type, and spread
    /// over the CPUs.
    fn globals(&self) -> &HashMap<String, (gimli::DebugInfoOffset, UnitOffset)> {
        use rayon::prelude::*;
        self.globals.get_or_init(|| {
            let mut headers = Vec::new();
            let mut units = self.dwarf.units();
            while let Ok(Some(h)) = units.next() {
                headers.push(h);
            }
            let found: Vec<Vec<(String, gimli::DebugInfoOffset, UnitOffset)>> = headers
                .into_par_iter()
                .map(|h| {
                    let off = gimli::DebugInfoOffset(h.offset().0);
                    let mut out = Vec::new();
                    let Ok(unit) = self.dwarf.unit(h) else {
                        return out;
                    };
                    let mut cur = unit.entries();
                    if !matches!(cur.next_dfs(), Ok(Some(_))) {
                        return out;
                    }
                    let mut first = true;
                    loop {
                        let e = if first {
                            cur.next_dfs()
                        } else {
                            cur.next_sibling()
                        };
                        first = false;
                        let Ok(Some(e)) = e else { break };
                        if e.tag() != dw::DW_TAG_variable || e.attr(dw::DW_AT_location).is_none() {
                            continue;
                        }
                        if let Some(n) = self.die_name(&unit, e.offset()) {
                            out.push((n, off, e.offset()));
                        }
                    }
                    out
                })
                .collect();
            let mut m = HashMap::new();
            for (n, u, d) in found.into_iter().flatten() {
                m.entry(n).or_insert((u, d));
            }
            m
        })
    }

    /// The C type of global variable `name` (`struct rq`, `int`).
    pub fn global_type(&self, name: &str) -> Option<String> {
        let &(u, d) = self.globals().get(name)?;
        let cu = self.cu_at(u).ok()?;
        let t = self.var_type(&cu.unit, d)?;
        Some(self.type_info(&cu.unit, Some(t)).name)
    }

    /// The build-id as hex, for messages.
    pub fn id_text(&self) -> String {
        self.build_id.clone().unwrap_or_else(|| hex(&[]))
    }
}
