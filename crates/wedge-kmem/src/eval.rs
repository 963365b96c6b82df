//! Values and the evaluator: an expression tree over a [`KernelMemory`].
//!
//! A value is a type and where its bytes are: at a kernel address (an
//! lvalue, read only when needed) or computed. Every read is bounded in
//! size ([`MAX_OBJECT`]) and a read the memory source refuses becomes an
//! error naming the address ("fault at 0x…"), never a panic.

use crate::parse::{self, Binary, Expr, ExprError, ExprKind, Span, TypeBase, TypeName, Unary};
use crate::source::KernelMemory;
use crate::types::{self, IntTy, Shape, Ty};
use wedge_vmcore::btf::{Btf, Kind};

/// The largest object read whole (a struct printed, an array indexed is
/// read element by element): larger ones are refused, as a corrupt type
/// or length must not make wedge allocate without bound. task_struct is
/// about 10 KiB; the largest kernel structs a few hundred KiB.
pub const MAX_OBJECT: u64 = 1 << 20;

/// Where a value's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In kernel memory at this address.
    Addr(u64),
    /// Computed (little-endian), e.g. `a + 1`, a cast, a bit field.
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub ty: Ty,
    pub place: Place,
}

impl Value {
    pub fn int(t: IntTy, v: i128) -> Value {
        let bytes = (v as u64).to_le_bytes()[..t.size as usize].to_vec();
        Value {
            ty: Ty::Int(t),
            place: Place::Bytes(bytes),
        }
    }
    fn boolean(b: bool) -> Value {
        Value {
            ty: Ty::Bool,
            place: Place::Bytes(vec![b as u8]),
        }
    }
    fn pointer(to: Ty, addr: u64) -> Value {
        Value {
            ty: Ty::ptr_to(to),
            place: Place::Bytes(addr.to_le_bytes().to_vec()),
        }
    }
    pub fn addr(&self) -> Option<u64> {
        match self.place {
            Place::Addr(a) => Some(a),
            Place::Bytes(_) => None,
        }
    }
}

/// An integer as read: its bits and how to read them.
#[derive(Debug, Clone, Copy)]
struct Scalar {
    bits: u64,
    size: u8,
    signed: bool,
}

impl Scalar {
    fn wide(self) -> i128 {
        let sh = 64 - 8 * self.size.clamp(1, 8) as u32;
        if self.signed {
            (((self.bits << sh) as i64) >> sh) as i128
        } else {
            ((self.bits << sh) >> sh) as i128
        }
    }
}

/// Names of global variables whose types kernel debuggers start from. BTF
/// describes only per-CPU variables (pahole emits a VAR for each one in
/// `.data..percpu`), so without DWARF these get their type from here;
/// every other symbol has an address and no type.
const KNOWN_GLOBALS: [(&str, &str); 14] = [
    ("init_task", "struct task_struct"),
    ("init_mm", "struct mm_struct"),
    ("init_pid_ns", "struct pid_namespace"),
    ("init_nsproxy", "struct nsproxy"),
    ("init_uts_ns", "struct uts_namespace"),
    ("init_net", "struct net"),
    ("init_files", "struct files_struct"),
    ("init_fs", "struct fs_struct"),
    ("jiffies", "unsigned long"),
    ("jiffies_64", "u64"),
    ("nr_threads", "int"),
    ("panic_cpu", "atomic_t"),
    ("crashing_cpu", "int"),
    ("nr_cpu_ids", "unsigned int"),
];

/// The helpers and constants the language knows beside the kernel's
/// names (for naming near ones, and for completion).
pub(crate) const HELPERS: [&str; 13] = [
    "frame",
    "list_for_each_entry",
    "hlist_for_each_entry",
    "list_count",
    "per_cpu",
    "per_cpu_ptr",
    "container_of",
    "task",
    "offsetof",
    "sizeof",
    "crashed_cpu",
    "crashed_task",
    "NULL",
];

/// The most entries a list walk follows: more than the kernel's pid_max
/// default (32768) tasks, far fewer than a corrupt list looping through
/// memory would give. A walk that reaches it stops and says so.
pub const MAX_LIST: usize = 100_000;

/// A list walked: the nodes (addresses of the `list_head`/`hlist_node`
/// members), and why the walk stopped early if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListWalk {
    pub nodes: Vec<u64>,
    pub stopped: Option<String>,
}

/// A frame variable's value as debuginfo read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugValue {
    /// Optimised out at this PC, or in a register the frame did not keep.
    Absent,
    /// A scalar's or pointer's bits.
    Bits(u64),
    /// An object in memory.
    Addr(u64),
    /// An object held in registers.
    Bytes(Vec<u8>),
}

/// One frame variable: its C type (as DWARF names it) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugVar {
    pub type_name: String,
    pub value: DebugValue,
}

/// What debuginfo (DWARF) adds to the expression language: a frame's
/// variables (`frame(pid, N).name`) and the types of ordinary globals,
/// which BTF does not describe.
pub trait DebugSource {
    /// Variable `name` of frame `n` of task `pid`, frames numbered as `bt`
    /// numbers them (inlined frames counted).
    fn frame_var(&self, pid: i64, n: u64, name: &str) -> Result<DebugVar, String>;
    /// The C type of the global variable `name`, when DWARF has it.
    fn global_type(&self, name: &str) -> Option<String>;
}

/// Evaluates expressions over one memory source.
pub struct Evaluator<'a> {
    pub mem: &'a dyn KernelMemory,
    /// DWARF, when the user gave it.
    pub debug: Option<&'a dyn DebugSource>,
    /// What an evaluation had to say beside its value (a list walk cut
    /// short), for the command to print after it.
    notes: std::cell::RefCell<Vec<String>>,
}

/// The names among `cands` nearest to `want` (edit distance, a swap of two
/// neighbouring letters counting as one edit, as the typo it usually is:
/// `pdi` is one edit from `pid`), at most 3.
pub fn near<'a>(want: &str, cands: impl Iterator<Item = &'a str>) -> Vec<String> {
    let max = (want.chars().count() / 3).max(2);
    let mut best: Vec<(usize, String)> = Vec::new();
    for c in cands {
        if c.is_empty() || c.len() > want.len() + max + 8 {
            continue;
        }
        let d = strsim::osa_distance(want, c);
        if d <= max && !best.iter().any(|(_, b)| b == c) {
            best.push((d, c.to_string()));
            best.sort();
            best.truncate(3);
        }
    }
    best.into_iter().map(|(_, n)| n).collect()
}

fn suggest(list: Vec<String>) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" (near: {})", list.join(", "))
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(mem: &'a dyn KernelMemory) -> Evaluator<'a> {
        Evaluator {
            mem,
            debug: None,
            notes: Default::default(),
        }
    }

    /// With debuginfo: frame variables and typed globals.
    pub fn with_debug(mut self, debug: Option<&'a dyn DebugSource>) -> Evaluator<'a> {
        self.debug = debug;
        self
    }

    /// A DWARF type name in BTF: the dump's own types describe the value
    /// (DWARF and BTF of one build name the same types).
    fn dwarf_type(&self, type_name: &str, sp: Span) -> Result<Ty, ExprError> {
        let t = parse::parse_type(type_name, &|n| self.is_type_name(n))
            .ok()
            .flatten()
            .ok_or_else(|| {
                ExprError::at(
                    sp,
                    format!("DWARF type {type_name} is not one wedge can read"),
                )
            })?;
        self.resolve_type(&t)
    }

    /// The C type of `e` when it is `frame(pid, N).name` and that variable
    /// is absent (optimised out): drgn prints it as `(type)<absent>`, a
    /// value, not an error.
    pub fn absent_frame_var(&self, e: &Expr) -> Option<String> {
        let ExprKind::Member { base, name, .. } = &e.kind else {
            return None;
        };
        let ExprKind::Call(f, args) = &base.kind else {
            return None;
        };
        if f != "frame" || args.len() != 2 {
            return None;
        }
        let (pid, _) = self
            .integer(&self.eval(&args[0]).ok()?, args[0].span)
            .ok()?;
        let (n, _) = self
            .integer(&self.eval(&args[1]).ok()?, args[1].span)
            .ok()?;
        let var = self
            .debug?
            .frame_var(i64::try_from(pid).ok()?, u64::try_from(n).ok()?, name)
            .ok()?;
        (var.value == DebugValue::Absent).then_some(var.type_name)
    }

    /// `frame(pid, N).name`: a parameter or local of a stack frame.
    fn frame_var(&self, args: &[Expr], name: &str, sp: Span) -> Result<Value, ExprError> {
        if args.len() != 2 {
            return Err(ExprError::at(
                sp,
                format!(
                    "frame takes 2 argument(s) (pid, frame number), not {}",
                    args.len()
                ),
            ));
        }
        let Some(d) = self.debug else {
            return Err(ExprError::at(
                sp,
                "frame variables need the vmlinux's DWARF: give --debuginfo",
            ));
        };
        let (pid, _) = self.integer(&self.eval(&args[0])?, args[0].span)?;
        let (n, _) = self.integer(&self.eval(&args[1])?, args[1].span)?;
        let var = d
            .frame_var(
                i64::try_from(pid).unwrap_or(-1),
                u64::try_from(n).unwrap_or(u64::MAX),
                name,
            )
            .map_err(|m| ExprError::at(sp, m))?;
        let ty = self.dwarf_type(&var.type_name, sp)?;
        let size = self.size_of(&ty).unwrap_or(8) as usize;
        let place = match var.value {
            DebugValue::Absent => {
                return Err(ExprError::at(
                    sp,
                    format!(
                        "({})<absent>: {name} is optimised out at this PC",
                        var.type_name
                    ),
                ))
            }
            DebugValue::Bits(b) => Place::Bytes(b.to_le_bytes()[..size.min(8)].to_vec()),
            DebugValue::Addr(a) => Place::Addr(a),
            DebugValue::Bytes(mut b) => {
                b.resize(size, 0);
                Place::Bytes(b)
            }
        };
        Ok(Value { ty, place })
    }

    pub fn btf(&self) -> &'a Btf {
        self.mem.btf()
    }

    /// Whether a name is a type for the parser: a BTF typedef (`pid_t`,
    /// `u64`, `atomic_t`).
    pub fn is_type_name(&self, n: &str) -> bool {
        self.btf().find(n, &[Kind::Typedef]).is_some()
    }

    pub fn parse(&self, text: &str) -> Result<Expr, ExprError> {
        parse::parse(text, &|n| self.is_type_name(n))
    }

    /// The notes evaluations left (a list walk stopped at the cap, at a
    /// cycle or at a fault), emptied.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.borrow_mut())
    }

    /// Walks a circular `list_head` list from `head` (not itself an entry),
    /// or with `hlist` an `hlist_head`'s NULL-terminated chain. The next
    /// pointer is the first member of `list_head`, `hlist_head` (`first`)
    /// and `hlist_node` (include/linux/types.h, unchanged since 2.6), so a
    /// step is one 8-byte read at the node. A dump is a snapshot taken with
    /// no lock held: a list being changed at the crash, or corrupt, can
    /// loop without passing the head; the walk stops at a node seen before,
    /// at [`MAX_LIST`] entries and at a fault, keeping what it read.
    pub fn walk_list(&self, head: u64, hlist: bool) -> ListWalk {
        let mut nodes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut at = head;
        let stopped = loop {
            let mut b = [0u8; 8];
            if let Err(f) = self.mem.read(at, &mut b) {
                break Some(format!(
                    "stopped after {} entries: {f} reading the next pointer of {at:#x}",
                    nodes.len()
                ));
            }
            let next = u64::from_le_bytes(b);
            if (hlist && next == 0) || (!hlist && next == head) {
                break None;
            }
            if next == 0 {
                break Some(format!(
                    "stopped after {} entries: a NULL next pointer at {at:#x} (a list never initialised, or corrupt)",
                    nodes.len()
                ));
            }
            if !seen.insert(next) {
                break Some(format!(
                    "stopped after {} entries: a cycle, {next:#x} came again without passing the head (a list changed at the crash, or corrupt)",
                    nodes.len()
                ));
            }
            if nodes.len() >= MAX_LIST {
                break Some(format!("stopped at the cap of {MAX_LIST} entries"));
            }
            nodes.push(next);
            at = next;
        };
        ListWalk { nodes, stopped }
    }

    /// The address of a list head given as a pointer to one or as one in
    /// memory, and whether it is an `hlist_head`.
    fn list_head(&self, v: &Value, span: Span, what: &str) -> Result<(u64, bool), ExprError> {
        let (ty, addr) = match (self.shape(&v.ty), &v.place) {
            (Shape::Ptr(to), _) => {
                let b = self.bytes(v, span)?;
                (to, le(&b))
            }
            (Shape::Record { .. }, Place::Addr(a)) => (v.ty.clone(), *a),
            _ => (v.ty.clone(), 0),
        };
        let kind = match self.shape(&ty) {
            Shape::Record { id, .. } => self.btf().name(id).to_string(),
            _ => String::new(),
        };
        match kind.as_str() {
            "list_head" => Ok((addr, false)),
            "hlist_head" => Ok((addr, true)),
            _ => Err(ExprError::at(
                span,
                format!(
                    "{what} needs a struct list_head or struct hlist_head (or a pointer to one), not {}",
                    self.type_name(&v.ty)
                ),
            )),
        }
    }

    /// [`Self::walk_list`] from a head that must itself be readable (a
    /// NULL or wild head is an error, not an empty list); a stop is noted.
    fn walk_noted(&self, head: u64, hlist: bool, span: Span) -> Result<ListWalk, ExprError> {
        self.read(head, 8, span)?;
        let w = self.walk_list(head, hlist);
        if let Some(s) = &w.stopped {
            self.notes.borrow_mut().push(format!("list walk {s}"));
        }
        Ok(w)
    }

    fn list_for_each(
        &self,
        head: &Expr,
        t: &TypeName,
        path: &[(String, Span)],
        hlist: bool,
        sp: Span,
    ) -> Result<Value, ExprError> {
        let what = if hlist {
            "hlist_for_each_entry"
        } else {
            "list_for_each_entry"
        };
        let hv = self.eval(head)?;
        let (addr, is_hlist) = self.list_head(&hv, head.span, what)?;
        if is_hlist != hlist {
            let other = if hlist {
                "list_for_each_entry"
            } else {
                "hlist_for_each_entry"
            };
            return Err(ExprError::at(
                head.span,
                format!("{what} of a {}: use {other}", self.type_name(&hv.ty)),
            ));
        }
        let ty = self.resolve_type(t)?;
        let (mty, off, bits) = self.member_path(&ty, path)?;
        let want = if hlist { "hlist_node" } else { "list_head" };
        let is_node =
            matches!(self.shape(&mty), Shape::Record { id, .. } if self.btf().name(id) == want);
        if !is_node || bits != 0 || off % 8 != 0 {
            let last = path.last().map_or(sp, |p| p.1);
            return Err(ExprError::at(
                last,
                format!(
                    "{what} needs a struct {want} member, and this is {}",
                    self.type_name(&mty)
                ),
            ));
        }
        let w = self.walk_noted(addr, hlist, head.span)?;
        let mut bytes = Vec::with_capacity(w.nodes.len() * 8);
        for n in &w.nodes {
            bytes.extend(n.wrapping_sub(off / 8).to_le_bytes());
        }
        Ok(Value {
            ty: Ty::Array(Box::new(Ty::ptr_to(ty)), w.nodes.len() as u64),
            place: Place::Bytes(bytes),
        })
    }

    /// Parses and evaluates.
    pub fn eval_str(&self, text: &str) -> Result<Value, ExprError> {
        let e = self.parse(text)?;
        self.eval(&e)
    }

    /// Reads memory, or an error naming the address.
    pub fn read(&self, addr: u64, len: u64, span: Span) -> Result<Vec<u8>, ExprError> {
        if len > MAX_OBJECT {
            return Err(ExprError::at(
                span,
                format!(
                    "a {len}-byte object at {addr:#x} is too big to read (at most {MAX_OBJECT})"
                ),
            ));
        }
        let mut b = vec![0u8; len as usize];
        self.mem.read(addr, &mut b).map_err(|f| {
            // A per-CPU variable's symbol is an offset into each CPU's
            // area (below __per_cpu_end), not an address: say how to read it.
            let hint = match self.mem.symbol("__per_cpu_end") {
                Some(end) if addr < end => {
                    ": a per-CPU offset, not an address; read the variable with per_cpu(VAR, CPU)"
                }
                _ => "",
            };
            ExprError::at(span, format!("{f}{hint}"))
        })?;
        Ok(b)
    }

    pub fn size_of(&self, ty: &Ty) -> Option<u64> {
        types::size_of(self.btf(), ty)
    }

    pub fn type_name(&self, ty: &Ty) -> String {
        types::name(self.btf(), ty)
    }

    pub fn shape(&self, ty: &Ty) -> Shape {
        types::shape(self.btf(), ty)
    }

    /// A value's bytes (read from memory for an lvalue).
    pub fn bytes(&self, v: &Value, span: Span) -> Result<Vec<u8>, ExprError> {
        match &v.place {
            Place::Bytes(b) => Ok(b.clone()),
            Place::Addr(a) => {
                let n = self.size_of(&v.ty).ok_or_else(|| {
                    ExprError::at(
                        span,
                        format!("{} has no size to read", self.type_name(&v.ty)),
                    )
                })?;
                self.read(*a, n, span)
            }
        }
    }

    /// The value as a pointer: (what it points to, the address). Arrays in
    /// memory decay to a pointer to their first element, as in C.
    fn as_pointer(&self, v: &Value, span: Span) -> Result<Option<(Ty, u64)>, ExprError> {
        match self.shape(&v.ty) {
            Shape::Ptr(to) => {
                let b = self.bytes(v, span)?;
                Ok(Some((to, le(&b))))
            }
            Shape::Array(elem, _) => match v.place {
                Place::Addr(a) => Ok(Some((elem, a))),
                Place::Bytes(_) => {
                    Err(ExprError::at(span, "an array not in memory has no address"))
                }
            },
            _ => Ok(None),
        }
    }

    fn scalar(&self, v: &Value, span: Span) -> Result<Scalar, ExprError> {
        let (size, signed) = match self.shape(&v.ty) {
            Shape::Int { size, signed, .. } => (size, signed),
            Shape::Enum { size, signed, .. } => (size, signed),
            Shape::Ptr(_) => (8, false),
            Shape::Array(..) => {
                let (_, a) = self.as_pointer(v, span)?.unwrap_or((Ty::Btf(0), 0));
                return Ok(Scalar {
                    bits: a,
                    size: 8,
                    signed: false,
                });
            }
            _ => {
                return Err(ExprError::at(
                    span,
                    format!("{} is not a number or a pointer", self.type_name(&v.ty)),
                ))
            }
        };
        if !(1..=8).contains(&size) {
            return Err(ExprError::at(
                span,
                format!("{}-byte integers are not supported", size),
            ));
        }
        let b = self.bytes(v, span)?;
        Ok(Scalar {
            bits: le(&b),
            size: size as u8,
            signed,
        })
    }

    fn integer(&self, v: &Value, span: Span) -> Result<(i128, IntTy), ExprError> {
        match self.shape(&v.ty) {
            Shape::Int { .. } | Shape::Enum { .. } => {}
            _ => {
                return Err(ExprError::at(
                    span,
                    format!("{} is not an integer", self.type_name(&v.ty)),
                ))
            }
        }
        let s = self.scalar(v, span)?;
        Ok((s.wide(), promote(s.size, s.signed)))
    }

    fn truth(&self, v: &Value, span: Span) -> Result<bool, ExprError> {
        Ok(self.scalar(v, span)?.bits != 0)
    }

    /// Resolves a type name against BTF, naming near ones when unknown.
    pub fn resolve_type(&self, t: &TypeName) -> Result<Ty, ExprError> {
        let btf = self.btf();
        let found = match &t.base {
            TypeBase::Struct(n) => btf
                .find(n, &[Kind::Struct])
                .or_else(|| btf.find(n, &[Kind::Fwd]))
                .map(Ty::Btf),
            TypeBase::Union(n) => btf.find(n, &[Kind::Union]).map(Ty::Btf),
            TypeBase::Enum(n) => btf.find(n, &[Kind::Enum, Kind::Enum64]).map(Ty::Btf),
            TypeBase::Named(n) => builtin(n).or_else(|| {
                btf.find(n, &[Kind::Typedef])
                    .or_else(|| btf.find(n, &[Kind::Int]))
                    .map(Ty::Btf)
            }),
        };
        let Some(mut ty) = found else {
            let (kw, name, kinds): (&str, &str, &[Kind]) = match &t.base {
                TypeBase::Struct(n) => ("struct ", n, &[Kind::Struct]),
                TypeBase::Union(n) => ("union ", n, &[Kind::Union]),
                TypeBase::Enum(n) => ("enum ", n, &[Kind::Enum, Kind::Enum64]),
                TypeBase::Named(n) => ("", n, &[Kind::Typedef]),
            };
            let cands = btf
                .names()
                .filter(|(_, ids)| {
                    ids.iter()
                        .any(|&i| btf.kind(i).is_some_and(|k| kinds.contains(&k)))
                })
                .map(|(n, _)| n);
            let near = near(name, cands)
                .into_iter()
                .map(|n| format!("{kw}{n}"))
                .collect();
            let tagged = match &t.base {
                TypeBase::Named(n) => self.tagged_type(n),
                _ => None,
            };
            let what = if btf.is_empty() {
                " (the kernel has no BTF)".to_string()
            } else if let Some(kw) = tagged {
                format!(": {name} is a {kw}, write {kw} {name}")
            } else {
                suggest(near)
            };
            return Err(ExprError::at(
                t.span,
                format!("unknown type {kw}{name}{what}"),
            ));
        };
        for _ in 0..t.pointers {
            ty = Ty::ptr_to(ty);
        }
        Ok(ty)
    }

    /// The bit offset, type and bit-field width of `a.b.c` in a record.
    fn member_path(&self, ty: &Ty, path: &[(String, Span)]) -> Result<(Ty, u64, u32), ExprError> {
        let mut cur = ty.clone();
        let mut off = 0u64;
        let mut bits = 0;
        for (name, sp) in path {
            let (t, o, b) = self.member_of(&cur, name, *sp)?;
            cur = t;
            off += o;
            bits = b;
        }
        Ok((cur, off, bits))
    }

    fn member_of(&self, ty: &Ty, name: &str, span: Span) -> Result<(Ty, u64, u32), ExprError> {
        let btf = self.btf();
        let Shape::Record { id, .. } = self.shape(ty) else {
            return Err(ExprError::at(
                span,
                format!(
                    "{} has no members (it is not a struct or union)",
                    self.type_name(ty)
                ),
            ));
        };
        types::member(btf, id, name).ok_or_else(|| {
            let names = types::member_names(btf, id);
            ExprError::at(
                span,
                format!(
                    "{} has no member {name:?}{}",
                    self.type_name(ty),
                    suggest(near(name, names.iter().map(String::as_str)))
                ),
            )
        })
    }

    /// A member of a record value.
    fn member(&self, base: &Value, name: &str, span: Span) -> Result<Value, ExprError> {
        let (ty, bit_off, bits) = self.member_of(&base.ty, name, span)?;
        if bits == 0 && bit_off % 8 == 0 {
            let byte = bit_off / 8;
            let place = match &base.place {
                Place::Addr(a) => Place::Addr(a.wrapping_add(byte)),
                Place::Bytes(b) => {
                    let n = self.size_of(&ty).unwrap_or(0) as usize;
                    let s = b.get(byte as usize..byte as usize + n).ok_or_else(|| {
                        ExprError::at(span, format!("member {name} lies outside its value"))
                    })?;
                    Place::Bytes(s.to_vec())
                }
            };
            return Ok(Value { ty, place });
        }
        // A bit field: no address of its own; its bits are read from the
        // bytes that hold them.
        let width = if bits == 0 {
            self.size_of(&ty).unwrap_or(8) as u32 * 8
        } else {
            bits
        };
        let first = bit_off / 8;
        let shift = (bit_off % 8) as u32;
        let nbytes = (shift + width).div_ceil(8) as u64;
        let raw = match &base.place {
            Place::Addr(a) => self.read(a.wrapping_add(first), nbytes, span)?,
            Place::Bytes(b) => b
                .get(first as usize..(first + nbytes) as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    ExprError::at(span, format!("bit field {name} lies outside its value"))
                })?,
        };
        Ok(Value {
            place: Place::Bytes(self.extract_bits(&ty, &raw, shift, width)),
            ty,
        })
    }

    /// Bits `[shift, shift + width)` of `raw`, sign-extended when the
    /// type is signed, as bytes of the type's size.
    pub fn extract_bits(&self, ty: &Ty, raw: &[u8], shift: u32, width: u32) -> Vec<u8> {
        let mut w = [0u8; 16];
        let n = raw.len().min(16);
        w[..n].copy_from_slice(&raw[..n]);
        let all = u128::from_le_bytes(w);
        let width = width.clamp(1, 64);
        let mut v = ((all >> shift) as u64) & (u64::MAX >> (64 - width));
        let signed = matches!(
            self.shape(ty),
            Shape::Int { signed: true, .. } | Shape::Enum { signed: true, .. }
        );
        if signed && width < 64 && v >> (width - 1) & 1 == 1 {
            v |= u64::MAX << width;
        }
        let size = self.size_of(ty).unwrap_or(8).clamp(1, 8) as usize;
        v.to_le_bytes()[..size].to_vec()
    }

    fn index(&self, base: &Value, i: i128, span: Span) -> Result<Value, ExprError> {
        if let (Shape::Array(elem, _), Place::Bytes(b)) = (self.shape(&base.ty), &base.place) {
            let n = self.size_of(&elem).unwrap_or(0) as usize;
            let s = usize::try_from(i)
                .ok()
                .and_then(|i| b.get(i.checked_mul(n)?..i.checked_mul(n)?.checked_add(n)?))
                .ok_or_else(|| ExprError::at(span, format!("index {i} is outside the array")))?;
            return Ok(Value {
                ty: elem,
                place: Place::Bytes(s.to_vec()),
            });
        }
        let Some((elem, a)) = self.as_pointer(base, span)? else {
            return Err(ExprError::at(
                span,
                format!(
                    "{} cannot be indexed (not an array or pointer)",
                    self.type_name(&base.ty)
                ),
            ));
        };
        let n = self.elem_size(&elem, span)?;
        Ok(Value {
            ty: elem,
            place: Place::Addr(a.wrapping_add((i as i64 as u64).wrapping_mul(n))),
        })
    }

    /// The size pointer arithmetic scales by: void counts as 1, as GNU C.
    fn elem_size(&self, elem: &Ty, span: Span) -> Result<u64, ExprError> {
        match self.shape(elem) {
            Shape::Void => Ok(1),
            _ => self.size_of(elem).ok_or_else(|| {
                ExprError::at(span, format!("{} has no size", self.type_name(elem)))
            }),
        }
    }

    fn deref(&self, v: &Value, span: Span) -> Result<Value, ExprError> {
        let Some((to, a)) = self.as_pointer(v, span)? else {
            return Err(ExprError::at(
                span,
                format!(
                    "{} cannot be dereferenced (not a pointer)",
                    self.type_name(&v.ty)
                ),
            ));
        };
        match self.shape(&to) {
            Shape::Void => Err(ExprError::at(
                span,
                "a void pointer cannot be dereferenced: cast it first, e.g. *(struct task_struct *)p",
            )),
            _ => Ok(Value {
                ty: to,
                place: Place::Addr(a),
            }),
        }
    }

    /// Evaluates a parsed expression.
    pub fn eval(&self, e: &Expr) -> Result<Value, ExprError> {
        let sp = e.span;
        match &e.kind {
            ExprKind::Num(n) => {
                let t = if *n <= i32::MAX as u64 {
                    IntTy::INT
                } else if *n <= i64::MAX as u64 {
                    IntTy::LONG
                } else {
                    IntTy::ULONG
                };
                Ok(Value::int(t, *n as i128))
            }
            ExprKind::Ident(name) => self.ident(name, sp),
            ExprKind::Member {
                base,
                name,
                name_span,
                arrow,
            } => {
                if let ExprKind::Call(f, args) = &base.kind {
                    if f == "frame" {
                        return self.frame_var(args, name, sp);
                    }
                }
                let mut b = self.eval(base)?;
                // `->` follows the pointer; so does `.` on a pointer, as
                // in drgn (`hctx.queue.queue_ctx`).
                if matches!(self.shape(&b.ty), Shape::Ptr(_)) {
                    b = self.deref(&b, base.span)?;
                } else if *arrow {
                    return Err(ExprError::at(
                        base.span,
                        format!("{} is not a pointer: use '.'", self.type_name(&b.ty)),
                    ));
                }
                self.member(&b, name, *name_span)
            }
            ExprKind::Index(a, i) => {
                let base = self.eval(a)?;
                let iv = self.eval(i)?;
                let (i, _) = self.integer(&iv, i.span)?;
                self.index(&base, i, sp)
            }
            ExprKind::Unary(op, a) => {
                let v = self.eval(a)?;
                match op {
                    Unary::Deref => self.deref(&v, sp),
                    Unary::Addr => match (&v.place, self.shape(&v.ty)) {
                        (Place::Addr(addr), _) => Ok(Value::pointer(v.ty.clone(), *addr)),
                        _ => Err(ExprError::at(
                            a.span,
                            "this has no address (a computed value or a bit field)",
                        )),
                    },
                    Unary::Not => Ok(Value::boolean(!self.truth(&v, a.span)?)),
                    Unary::Neg | Unary::Plus | Unary::BitNot => {
                        let (x, t) = self.integer(&v, a.span)?;
                        let r = match op {
                            Unary::Neg => x.wrapping_neg(),
                            Unary::BitNot => !x,
                            _ => x,
                        };
                        Ok(Value::int(t, r))
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, sp),
            // Lazily, as C and gdb: the branch not taken is not evaluated
            // (`p ? p->comm : 0` never reads through a NULL p). The value
            // is the taken branch's, with its own type, as gdb gives it.
            ExprKind::Cond(c, a, b) => {
                let cv = self.eval(c)?;
                if self.truth(&cv, c.span)? {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            ExprKind::Cast(t, a) => {
                let to = self.resolve_type(t)?;
                let v = self.eval(a)?;
                self.cast(&v, to, a.span, t.span)
            }
            ExprKind::SizeofType(t) => {
                let ty = self.resolve_type(t)?;
                let n = self.size_of(&ty).ok_or_else(|| {
                    ExprError::at(t.span, format!("{} has no size", self.type_name(&ty)))
                })?;
                Ok(Value::int(IntTy::ULONG, n as i128))
            }
            ExprKind::SizeofExpr(a) => {
                let v = self.eval(a)?;
                let n = self.size_of(&v.ty).ok_or_else(|| {
                    ExprError::at(a.span, format!("{} has no size", self.type_name(&v.ty)))
                })?;
                Ok(Value::int(IntTy::ULONG, n as i128))
            }
            ExprKind::Offsetof(t, path) => {
                let ty = self.resolve_type(t)?;
                let (_, off, bits) = self.member_path(&ty, path)?;
                if bits != 0 || off % 8 != 0 {
                    return Err(ExprError::at(sp, "offsetof a bit field"));
                }
                Ok(Value::int(IntTy::ULONG, (off / 8) as i128))
            }
            ExprKind::ContainerOf(p, t, path) => {
                let pv = self.eval(p)?;
                let Some((_, addr)) = self.as_pointer(&pv, p.span)? else {
                    return Err(ExprError::at(
                        p.span,
                        format!(
                            "container_of needs a pointer, not {}",
                            self.type_name(&pv.ty)
                        ),
                    ));
                };
                let ty = self.resolve_type(t)?;
                let (_, off, bits) = self.member_path(&ty, path)?;
                if bits != 0 || off % 8 != 0 {
                    return Err(ExprError::at(sp, "container_of a bit field"));
                }
                Ok(Value::pointer(ty, addr.wrapping_sub(off / 8)))
            }
            ExprKind::ListForEach {
                head,
                ty,
                member,
                hlist,
            } => self.list_for_each(head, ty, member, *hlist, sp),
            ExprKind::Call(name, args) => self.call(name, args, sp),
        }
    }

    fn ident(&self, name: &str, sp: Span) -> Result<Value, ExprError> {
        let btf = self.btf();
        match name {
            "crashed_cpu" => {
                let c = self.mem.crashed_cpu().ok_or_else(|| {
                    ExprError::at(
                        sp,
                        "no CPU crashed: the dump records no panic (panic_cpu unset)",
                    )
                })?;
                return Ok(Value::int(IntTy::INT, c as i128));
            }
            "crashed_task" => {
                let t = self.mem.crashed_task().ok_or_else(|| {
                    ExprError::at(sp, "no crashed task: the dump records no panic, or the panicking CPU's current task is unknown")
                })?;
                return Ok(Value::pointer(self.task_struct(sp)?, t));
            }
            "NULL" => return Ok(Value::pointer(Ty::Btf(0), 0)),
            _ => {}
        }
        if let Some(ty) = btf.find_var(name) {
            let addr = self.mem.symbol(name).ok_or_else(|| {
                ExprError::at(sp, format!("{name} is in BTF but not in the symbol table"))
            })?;
            return Ok(Value {
                ty: Ty::Btf(ty),
                place: Place::Addr(addr),
            });
        }
        if let Some(v) = btf.enum_value(name) {
            return Ok(Value::int(IntTy::LONG, v as i128).narrow());
        }
        // The globals debuggers start from first: their types are known
        // without the one pass over all of DWARF that naming any other
        // global costs (1.6 s on Debian's vmlinux).
        if let Some(addr) = self.mem.symbol(name) {
            if let Some((_, tn)) = KNOWN_GLOBALS.iter().find(|(n, _)| *n == name) {
                if let Ok(Some(t)) = parse::parse_type(tn, &|n| self.is_type_name(n)) {
                    if let Ok(ty) = self.resolve_type(&t) {
                        return Ok(Value {
                            ty,
                            place: Place::Addr(addr),
                        });
                    }
                }
            }
        }
        if let (Some(addr), Some(d)) = (self.mem.symbol(name), self.debug) {
            if let Some(tn) = d.global_type(name) {
                if let Ok(ty) = self.dwarf_type(&tn, sp) {
                    return Ok(Value {
                        ty,
                        place: Place::Addr(addr),
                    });
                }
            }
        }
        if self.mem.symbol(name).is_some() {
            return Err(ExprError::at(
                sp,
                format!(
                    "{name} has no type without DWARF (BTF describes only per-CPU variables): \
                     take its address and cast it, e.g. *(struct foo *)&{name}"
                ),
            ));
        }
        let mut cands: Vec<String> = Vec::new();
        let mut best = |n: &str| {
            if strsim::osa_distance(name, n) <= (name.chars().count() / 3).max(2) {
                cands.push(n.to_string());
            }
        };
        self.mem.for_each_symbol(&mut |n| best(n));
        for (n, ids) in btf.names() {
            if ids.iter().any(|&i| btf.kind(i) == Some(Kind::Var)) {
                best(n);
            }
        }
        for n in enumerator_names(btf) {
            best(n);
        }
        cands.extend(HELPERS.iter().map(|h| h.to_string()));
        let near = near(name, cands.iter().map(String::as_str));
        // A type's name where a value goes (`sizeof(task_struct)`, `ptype
        // task_struct`): C wants the keyword.
        let hint = match self.tagged_type(name) {
            Some(kw) => format!(": {name} is a type, write {kw} {name}"),
            None => suggest(near),
        };
        Err(ExprError::at(sp, format!("unknown symbol {name}{hint}")))
    }

    /// `struct`, `union` or `enum` when BTF has a type of that kind called
    /// `name`.
    fn tagged_type(&self, name: &str) -> Option<&'static str> {
        let btf = self.btf();
        [
            ("struct", Kind::Struct),
            ("union", Kind::Union),
            ("enum", Kind::Enum),
            ("enum", Kind::Enum64),
        ]
        .into_iter()
        .find(|(_, k)| btf.find(name, &[*k]).is_some())
        .map(|(kw, _)| kw)
    }

    fn task_struct(&self, sp: Span) -> Result<Ty, ExprError> {
        self.btf()
            .find_struct("task_struct")
            .map(Ty::Btf)
            .ok_or_else(|| ExprError::at(sp, "struct task_struct is not in BTF"))
    }

    fn call(&self, name: &str, args: &[Expr], sp: Span) -> Result<Value, ExprError> {
        let want = |n: usize| -> Result<(), ExprError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(ExprError::at(
                    sp,
                    format!("{name} takes {n} argument(s), not {}", args.len()),
                ))
            }
        };
        let cpu_offset = |e: &Expr| -> Result<u64, ExprError> {
            let v = self.eval(e)?;
            let (c, _) = self.integer(&v, e.span)?;
            let c = u32::try_from(c)
                .map_err(|_| ExprError::at(e.span, format!("CPU {c} does not exist")))?;
            self.mem
                .per_cpu_offset(c)
                .map_err(|m| ExprError::at(e.span, m))
        };
        match name {
            // The per-CPU accessors: a per-CPU variable's symbol is its
            // offset in the per-CPU area; CPU n's copy is at that plus
            // __per_cpu_offset[n] (include/asm-generic/percpu.h).
            "per_cpu" => {
                want(2)?;
                let v = self.eval(&args[0])?;
                let Place::Addr(a) = v.place else {
                    return Err(ExprError::at(
                        args[0].span,
                        "per_cpu needs a per-CPU variable",
                    ));
                };
                let off = cpu_offset(&args[1])?;
                Ok(Value {
                    ty: v.ty,
                    place: Place::Addr(a.wrapping_add(off)),
                })
            }
            "per_cpu_ptr" => {
                want(2)?;
                let v = self.eval(&args[0])?;
                let Some((to, a)) = self.as_pointer(&v, args[0].span)? else {
                    return Err(ExprError::at(
                        args[0].span,
                        format!("per_cpu_ptr needs a pointer, not {}", self.type_name(&v.ty)),
                    ));
                };
                let off = cpu_offset(&args[1])?;
                Ok(Value::pointer(to, a.wrapping_add(off)))
            }
            "list_count" => {
                want(1)?;
                let v = self.eval(&args[0])?;
                let (addr, hlist) = self.list_head(&v, args[0].span, name)?;
                let w = self.walk_noted(addr, hlist, args[0].span)?;
                Ok(Value::int(IntTy::ULONG, w.nodes.len() as i128))
            }
            "frame" => Err(ExprError::at(
                sp,
                "frame(pid, N) is a stack frame: name one of its variables, frame(pid, N).name",
            )),
            "task" => {
                want(1)?;
                let v = self.eval(&args[0])?;
                let (pid, _) = self.integer(&v, args[0].span)?;
                let pid = i64::try_from(pid).unwrap_or(-1);
                let t = self.mem.task(pid).ok_or_else(|| {
                    ExprError::at(args[0].span, format!("no task with pid {pid}"))
                })?;
                Ok(Value::pointer(self.task_struct(sp)?, t))
            }
            _ => Err(ExprError::at(
                sp,
                format!(
                    "unknown function {name}{}",
                    suggest(near(name, HELPERS.iter().copied()))
                ),
            )),
        }
    }

    /// Converts a value to a type, as a C cast does.
    pub fn cast(&self, v: &Value, to: Ty, span: Span, tspan: Span) -> Result<Value, ExprError> {
        match self.shape(&to) {
            Shape::Ptr(_) | Shape::Int { .. } | Shape::Enum { .. } => {
                let s = self.scalar(v, span)?;
                let size = self.size_of(&to).unwrap_or(8).clamp(1, 8) as usize;
                let bits = if matches!(self.shape(&to), Shape::Int { is_bool: true, .. }) {
                    (s.bits != 0) as u64
                } else {
                    s.wide() as u64
                };
                Ok(Value {
                    ty: to,
                    place: Place::Bytes(bits.to_le_bytes()[..size].to_vec()),
                })
            }
            Shape::Void => Ok(Value {
                ty: to,
                place: Place::Bytes(Vec::new()),
            }),
            _ => {
                // A cast to the value's own record type is a no-op.
                if self.btf().resolve(type_id(&to)) == self.btf().resolve(type_id(&v.ty))
                    && matches!(to, Ty::Btf(_))
                {
                    return Ok(Value {
                        ty: to,
                        place: v.place.clone(),
                    });
                }
                Err(ExprError::at(
                    tspan,
                    format!(
                        "cannot cast to {} (only to scalars and pointers)",
                        self.type_name(&to)
                    ),
                ))
            }
        }
    }

    fn binary(&self, op: Binary, a: &Expr, b: &Expr, sp: Span) -> Result<Value, ExprError> {
        let x = self.eval(a)?;
        if matches!(op, Binary::And | Binary::Or) {
            let l = self.truth(&x, a.span)?;
            // Short-circuit, as C: the right side is not even read.
            if (op == Binary::And && !l) || (op == Binary::Or && l) {
                return Ok(Value::boolean(l));
            }
            let y = self.eval(b)?;
            return Ok(Value::boolean(self.truth(&y, b.span)?));
        }
        let y = self.eval(b)?;
        let px = self.as_pointer(&x, a.span)?;
        let py = self.as_pointer(&y, b.span)?;
        let cmp = matches!(
            op,
            Binary::Lt | Binary::Gt | Binary::Le | Binary::Ge | Binary::Eq | Binary::Ne
        );
        if cmp {
            let (l, r) = if px.is_some() || py.is_some() {
                // Pointers compare as addresses (unsigned).
                (
                    self.scalar(&x, a.span)?.bits as i128,
                    self.scalar(&y, b.span)?.bits as i128,
                )
            } else {
                let (l, lt) = self.integer(&x, a.span)?;
                let (r, rt) = self.integer(&y, b.span)?;
                let t = common(lt, rt);
                (wrap(t, l), wrap(t, r))
            };
            let r = match op {
                Binary::Lt => l < r,
                Binary::Gt => l > r,
                Binary::Le => l <= r,
                Binary::Ge => l >= r,
                Binary::Eq => l == r,
                _ => l != r,
            };
            return Ok(Value::boolean(r));
        }
        match (op, &px, &py) {
            (Binary::Add | Binary::Sub, Some((to, p)), None) => {
                let (i, _) = self.integer(&y, b.span)?;
                let n = self.elem_size(to, a.span)? as i128;
                let d = if op == Binary::Add { i * n } else { -(i * n) };
                return Ok(self.keep_pointer(&x, to.clone(), p.wrapping_add(d as i64 as u64)));
            }
            (Binary::Add, None, Some((to, p))) => {
                let (i, _) = self.integer(&x, a.span)?;
                let n = self.elem_size(to, b.span)? as i128;
                return Ok(self.keep_pointer(
                    &y,
                    to.clone(),
                    p.wrapping_add((i * n) as i64 as u64),
                ));
            }
            (Binary::Sub, Some((ta, pa)), Some((tb, pb))) => {
                // Pointer difference: in elements, as C (ptrdiff_t).
                let (na, nb) = (self.elem_size(ta, a.span)?, self.elem_size(tb, b.span)?);
                if na != nb {
                    return Err(ExprError::at(
                        sp,
                        format!(
                            "cannot subtract pointers to types of different sizes ({} and {})",
                            self.type_name(ta),
                            self.type_name(tb)
                        ),
                    ));
                }
                let d = pa.wrapping_sub(*pb) as i64;
                return Ok(Value::int(IntTy::PTRDIFF, (d / na.max(1) as i64) as i128));
            }
            (_, Some(_), _) | (_, _, Some(_)) => {
                return Err(ExprError::at(
                    sp,
                    format!(
                        "operator {} does not apply to pointers ({} and {})",
                        op.symbol(),
                        self.type_name(&x.ty),
                        self.type_name(&y.ty)
                    ),
                ));
            }
            _ => {}
        }
        let (l, lt) = self.integer(&x, a.span)?;
        let (r, rt) = self.integer(&y, b.span)?;
        let shift = matches!(op, Binary::Shl | Binary::Shr);
        let t = if shift { lt } else { common(lt, rt) };
        let (l, r) = if shift {
            (wrap(t, l), r)
        } else {
            (wrap(t, l), wrap(t, r))
        };
        let zero = || ExprError::at(b.span, "division by zero");
        let v = match op {
            Binary::Mul => l.wrapping_mul(r),
            Binary::Div => l.checked_div(r).ok_or_else(zero)?,
            Binary::Rem => l.checked_rem(r).ok_or_else(zero)?,
            Binary::Add => l.wrapping_add(r),
            Binary::Sub => l.wrapping_sub(r),
            Binary::Shl | Binary::Shr => {
                if !(0..(t.size as i128 * 8)).contains(&r) {
                    return Err(ExprError::at(
                        b.span,
                        format!("shift by {r} is out of range"),
                    ));
                }
                if op == Binary::Shl {
                    l << r
                } else {
                    l >> r
                }
            }
            Binary::BitAnd => l & r,
            Binary::BitXor => l ^ r,
            Binary::BitOr => l | r,
            _ => 0,
        };
        Ok(Value::int(t, wrap(t, v)))
    }

    /// A pointer result of the same type as `like` (pointer arithmetic
    /// keeps the pointer's type; an array decays to a pointer).
    fn keep_pointer(&self, like: &Value, to: Ty, addr: u64) -> Value {
        match self.shape(&like.ty) {
            Shape::Ptr(_) => Value {
                ty: like.ty.clone(),
                place: Place::Bytes(addr.to_le_bytes().to_vec()),
            },
            _ => Value::pointer(to, addr),
        }
    }
}

impl Value {
    /// An enumerator constant: `int` when it fits, as C.
    fn narrow(self) -> Value {
        if let (Ty::Int(t), Place::Bytes(b)) = (&self.ty, &self.place) {
            let v = le(b) as i64;
            if t.size == 8 && i32::try_from(v).is_ok() {
                return Value::int(IntTy::INT, v as i128);
            }
        }
        self
    }
}

/// Every enumerator BTF names (`PIDTYPE_PID`, `CPUHP_ONLINE`), for naming
/// the near ones of a misspelt constant and for completion.
pub fn enumerator_names(btf: &Btf) -> Vec<&str> {
    (0..btf.len() as u32)
        .filter(|&i| matches!(btf.kind(i), Some(Kind::Enum | Kind::Enum64)))
        .flat_map(|i| btf.enumerators(i).into_iter().map(|(n, _)| n))
        .filter(|n| !n.is_empty())
        .collect()
}

fn type_id(t: &Ty) -> u32 {
    match t {
        Ty::Btf(id) => *id,
        _ => u32::MAX,
    }
}

/// Little-endian integer of up to 8 bytes.
pub fn le(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// Integer promotion: anything smaller than int becomes int.
fn promote(size: u8, signed: bool) -> IntTy {
    match (size, signed) {
        (0..=3, _) | (4, true) => IntTy::INT,
        (4, false) => IntTy::UINT,
        (_, true) => IntTy::LONG,
        (_, false) => IntTy::ULONG,
    }
}

/// The usual arithmetic conversions of two promoted types.
fn common(a: IntTy, b: IntTy) -> IntTy {
    match a.size.cmp(&b.size) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal if !a.signed => a,
        std::cmp::Ordering::Equal => b,
    }
}

/// `v` as a value of type `t` (truncated, sign-extended).
fn wrap(t: IntTy, v: i128) -> i128 {
    let bits = v as u64;
    Scalar {
        bits,
        size: t.size,
        signed: t.signed,
    }
    .wide()
}

/// Builtin type names (canonical spellings from the parser).
fn builtin(n: &str) -> Option<Ty> {
    let i = |size, signed, name| Some(Ty::Int(IntTy { size, signed, name }));
    match n {
        "void" => Some(Ty::Btf(0)),
        "_Bool" | "bool" => Some(Ty::Bool),
        "char" => i(1, true, "char"),
        "signed char" => i(1, true, "signed char"),
        "unsigned char" => i(1, false, "unsigned char"),
        "short" => i(2, true, "short"),
        "unsigned short" => i(2, false, "unsigned short"),
        "int" => Some(Ty::Int(IntTy::INT)),
        "unsigned int" => Some(Ty::Int(IntTy::UINT)),
        "long" => Some(Ty::Int(IntTy::LONG)),
        "unsigned long" => Some(Ty::Int(IntTy::ULONG)),
        "long long" => i(8, true, "long long"),
        "unsigned long long" => i(8, false, "unsigned long long"),
        _ => None,
    }
}
