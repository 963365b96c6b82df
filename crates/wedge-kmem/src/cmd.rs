//! The commands over a memory source: `eval EXPR [--json]`,
//! `ptype TYPE|EXPR`, `sym ADDR|NAME`, `rd ADDR|EXPR [COUNT]` and
//! `dis FUNC|ADDR [COUNT]`, each one function the binary calls.

use crate::eval::{near, Evaluator};
use crate::parse::{self, ExprError};
use crate::print::{self, Limits};
use crate::source::KernelMemory;
use serde_json::{json, Value as Json};
use std::fmt::Write;

/// `eval EXPR`: the value as drgn prints it, or with `json` as
/// `{"type": "…", "value": …}`. The error names the column it is about.
pub fn eval(mem: &dyn KernelMemory, expr: &str, json: bool) -> Result<String, String> {
    eval_with(mem, None, expr, json, Limits::default())
}

/// The deepest `--depth` taken: kernel structs nest a dozen levels at most
/// (task_struct → sched_entity → ...); a corrupt BTF that nests a struct in
/// itself must not recurse without bound.
pub const MAX_DEPTH: u32 = 64;

/// `--depth N` checked: how many levels of nested structs print before
/// `{...}` (0 prints even the outer struct as `{...}`).
pub fn limits(depth: Option<u32>) -> Result<Limits, String> {
    let mut lim = Limits::default();
    if let Some(d) = depth {
        if d > MAX_DEPTH {
            return Err(format!("--depth {d} is too deep (at most {MAX_DEPTH})"));
        }
        lim.depth = d;
    }
    Ok(lim)
}

/// [`eval`] with the printing limits given (`eval --depth N`).
pub fn eval_limited(
    mem: &dyn KernelMemory,
    expr: &str,
    json: bool,
    lim: Limits,
) -> Result<String, String> {
    eval_with(mem, None, expr, json, lim)
}

/// [`eval`] with debuginfo (frame variables, `frame(pid, N).name`, and
/// globals typed by DWARF) and the printing limits given.
pub fn eval_with(
    mem: &dyn KernelMemory,
    debug: Option<&dyn crate::eval::DebugSource>,
    expr: &str,
    json: bool,
    lim: Limits,
) -> Result<String, String> {
    let ev = Evaluator::new(mem).with_debug(debug);
    // A frame variable optimised out is a value of its type with none:
    // `(const char *)<absent>`, JSON null.
    if let Some(t) = ev.parse(expr).ok().and_then(|e| ev.absent_frame_var(&e)) {
        return Ok(if json {
            format!(
                "{{\"schema_version\":{},\"type\":{},\"value\":null}}\n",
                wedge_model::SCHEMA_VERSION,
                Json::String(t)
            )
        } else {
            format!("({t})<absent>\n")
        });
    }
    let v = ev.eval_str(expr).map_err(|e| e.render(expr))?;
    // What the evaluation noted (a list walk cut short) follows the value:
    // as "note:" lines, or a "notes" list in JSON.
    let notes = ev.take_notes();
    if json {
        let mut j = print::json(&ev, &v, lim).map_err(|e| e.render(expr))?;
        if let (false, Some(m)) = (notes.is_empty(), j.as_object_mut()) {
            m.insert("notes".into(), json!(notes));
        }
        Ok(format!("{j}\n"))
    } else {
        let mut out = format!(
            "{}\n",
            print::text(&ev, &v, lim).map_err(|e| e.render(expr))?
        );
        for n in notes {
            let _ = writeln!(out, "note: {n}");
        }
        Ok(out)
    }
}

/// `ptype TYPE|EXPR`: the layout of a type, or of an expression's type.
pub fn ptype(mem: &dyn KernelMemory, what: &str) -> Result<String, String> {
    let ev = Evaluator::new(mem);
    let run = || -> Result<String, ExprError> {
        let ty = match parse::parse_type(what, &|n| ev.is_type_name(n))? {
            Some(t) => ev.resolve_type(&t)?,
            None => ev.eval_str(what)?.ty,
        };
        Ok(print::layout(&ev, &ty))
    };
    run().map_err(|e| e.render(what))
}

/// A command's JSON document: `schema_version` first, as in every
/// document of wedge's (docs/json-schema.md), then the fields (serde_json
/// keeps an object's keys sorted, so it is written ahead by hand).
fn doc(fields: serde_json::Map<String, Json>) -> String {
    let rest = Json::Object(fields).to_string();
    let rest = rest.strip_prefix('{').unwrap_or("}");
    let sep = if rest == "}" { "" } else { "," };
    format!(
        "{{\"schema_version\":{}{sep}{rest}\n",
        wedge_model::SCHEMA_VERSION
    )
}

fn obj(v: Json) -> serde_json::Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// What a kallsyms type letter says (nm's letters; upper case global,
/// lower case local to its file).
pub fn kind_word(kind: char) -> &'static str {
    match kind.to_ascii_lowercase() {
        't' => "text",
        'w' => "text (weak)",
        'd' => "data",
        'b' => "bss",
        'r' => "read-only data",
        'v' => "data (weak)",
        'a' => "absolute",
        _ => "other",
    }
}

/// A symbol name as the whole text (`schedule`, `__x64_sys_read`), not an
/// expression.
fn is_name(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
        && !t.as_bytes()[0].is_ascii_digit()
}

/// A kernel address written without `0x`, as crash and the oops print
/// them (`ffffffff81a0e2f0`).
fn bare_hex(text: &str) -> Option<u64> {
    let t = text.trim();
    (t.len() >= 9 && t.len() <= 16 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(t, 16).ok())
        .flatten()
}

/// The address a command's ADDR|NAME|EXPR argument names: a symbol's
/// address (any kind: a function or a variable has no type without DWARF,
/// and `rd`/`dis` want where it is); bare hex; or an expression — a
/// pointer's value, an integer, or where an object in memory lies.
pub fn address_of(mem: &dyn KernelMemory, text: &str) -> Result<u64, String> {
    let t = text.trim();
    if is_name(t) {
        if let Some(a) = mem.symbol(t) {
            return Ok(a);
        }
        if let Some(a) = bare_hex(t) {
            return Ok(a);
        }
        // Names may hold dots (`foo.cold`, `__func__.3`); one that is no
        // symbol is read as an expression (`init_task.tasks.next`).
        if !t.contains('.') {
            return Err(unknown_symbol(mem, t));
        }
    }
    if let Some(a) = symbol_plus(mem, t) {
        return Ok(a);
    }
    let ev = Evaluator::new(mem);
    let v = ev.eval_str(t).map_err(|e| e.render(t))?;
    let sp = parse::Span {
        start: 0,
        end: t.len(),
    };
    match ev.shape(&v.ty) {
        crate::types::Shape::Ptr(_) | crate::types::Shape::Int { .. } => {
            let b = ev.bytes(&v, sp).map_err(|e| e.render(t))?;
            Ok(crate::eval::le(&b))
        }
        _ => v.addr().ok_or_else(|| {
            format!(
                "{t} is a {} with no address: give a pointer, an address or a symbol",
                ev.type_name(&v.ty)
            )
        }),
    }
}

/// `schedule+0x25` as the kernel prints a return address (`%pS`) and
/// crash and gdb take one: a symbol of any kind (a function has no type
/// for the expression language) plus an offset, hex with `0x`, else
/// decimal.
fn symbol_plus(mem: &dyn KernelMemory, t: &str) -> Option<u64> {
    let i = t.rfind(['+', '-'])?;
    let (name, off) = (t[..i].trim(), t[i + 1..].trim());
    if !is_name(name) {
        return None;
    }
    let base = mem.symbol(name)?;
    let n = match off.strip_prefix("0x").or_else(|| off.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => off.parse().ok()?,
    };
    Some(if t.as_bytes()[i] == b'+' {
        base.wrapping_add(n)
    } else {
        base.wrapping_sub(n)
    })
}

/// "unknown symbol NAME (near: …)", the near names as eval gives them.
fn unknown_symbol(mem: &dyn KernelMemory, name: &str) -> String {
    let mut all: Vec<String> = Vec::new();
    mem.for_each_symbol(&mut |n| all.push(n.to_string()));
    let near = near(name, all.iter().map(String::as_str));
    if near.is_empty() {
        format!("unknown symbol {name}")
    } else {
        format!("unknown symbol {name} (near: {})", near.join(", "))
    }
}

/// `name+0xoff [module]` of an address, or `None` outside every symbol.
pub fn describe(mem: &dyn KernelMemory, addr: u64) -> Option<String> {
    mem.symbol_at(addr).map(|s| s.describe(addr))
}

/// `sym ADDR|NAME`: an address → the symbol it is in (`schedule+0x10`),
/// with its kind, size and module; a name → its address and kind.
pub fn sym(mem: &dyn KernelMemory, what: &str, json: bool) -> Result<String, String> {
    let t = what.trim();
    let named = mem.symbol(t).is_some() || (bare_hex(t).is_none() && !t.contains('.'));
    if is_name(t) && named {
        let addr = mem.symbol(t).ok_or_else(|| unknown_symbol(mem, t))?;
        let kind = mem.symbol_kind(t).unwrap_or('?');
        // A per-CPU variable's symbol is its offset in each CPU's area.
        let percpu = mem.symbol("__per_cpu_end").is_some_and(|end| addr < end);
        let at = mem.symbol_at(addr).filter(|s| s.start == addr);
        let size = at.as_ref().and_then(|s| s.size);
        let class = if percpu { "per-CPU" } else { kind_word(kind) };
        if json {
            return Ok(doc(obj(json!({
                "name": t, "address": addr, "kind": kind.to_string(), "class": class,
                "size": size, "module": at.and_then(|s| s.module),
            }))));
        }
        let mut out = format!("{addr:016x} ({kind}) {t}  {class}");
        if percpu {
            out.push_str(", an offset into each CPU's area: per_cpu(VAR, CPU) reads it");
        }
        if let Some(n) = size {
            let _ = write!(out, ", size {n:#x}");
        }
        out.push('\n');
        return Ok(out);
    }
    let addr = address_of(mem, t)?;
    let s = mem.symbol_at(addr).ok_or_else(|| {
        format!("{addr:#x} is in no symbol: not in the kernel image or a module's text")
    })?;
    let off = addr.wrapping_sub(s.start);
    if json {
        return Ok(doc(obj(json!({
            "address": addr, "name": s.name, "offset": off, "symbol": s.describe(addr),
            "kind": s.kind.to_string(), "class": kind_word(s.kind), "start": s.start,
            "size": s.size, "module": s.module,
        }))));
    }
    let mut out = format!(
        "{addr:016x} ({}) {}  {}",
        s.kind,
        s.describe(addr),
        kind_word(s.kind)
    );
    if let Some(n) = s.size {
        let _ = write!(out, ", size {n:#x}");
    }
    out.push('\n');
    Ok(out)
}

/// The most words `rd` reads: 512 KiB, more than any one kernel object a
/// hex dump is read for.
pub const MAX_RD_WORDS: u64 = 1 << 16;

/// Words read from `addr`, and the fault that stopped the read early.
fn read_words(mem: &dyn KernelMemory, addr: u64, count: u64) -> (Vec<u64>, Option<crate::Fault>) {
    let mut words = Vec::new();
    let mut at = addr;
    while (words.len() as u64) < count {
        // A page at a time: a page the dump left out (or one not mapped)
        // fails alone, and then each of its words is tried, so the fault
        // names the first unreadable word.
        let in_page = ((4096 - (at & 0xfff)) / 8).max(1);
        let n = in_page.min(count - words.len() as u64);
        let mut buf = vec![0u8; n as usize * 8];
        if mem.read(at, &mut buf).is_ok() {
            words.extend(buf.chunks_exact(8).map(crate::eval::le));
            at = at.wrapping_add(n * 8);
            continue;
        }
        for _ in 0..n {
            let mut b = [0u8; 8];
            if let Err(f) = mem.read(at, &mut b) {
                return (words, Some(f));
            }
            words.push(u64::from_le_bytes(b));
            at = at.wrapping_add(8);
        }
    }
    (words, None)
}

fn check_count(count: u64, max: u64, what: &str) -> Result<(), String> {
    if count == 0 {
        return Err(format!("COUNT must be at least 1 (it counts {what})"));
    }
    if count > max {
        return Err(format!("COUNT {count} is too many (at most {max} {what})"));
    }
    Ok(())
}

/// `rd ADDR|EXPR [COUNT]`: COUNT 8-byte words (default 8) as crash's `rd`
/// prints them, one a line with its bytes as text and, when the word
/// points into the kernel image or a module, the symbol. A fault stops
/// the dump at the first unreadable address, after what was read.
pub fn rd(
    mem: &dyn KernelMemory,
    what: &str,
    count: Option<u64>,
    json: bool,
) -> Result<String, String> {
    let count = count.unwrap_or(8);
    check_count(count, MAX_RD_WORDS, "words")?;
    let addr = address_of(mem, what)?;
    let (words, fault) = read_words(mem, addr, count);
    if words.is_empty() {
        if let Some(f) = fault {
            return Err(f.to_string());
        }
    }
    if json {
        let ws: Vec<Json> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({"address": addr.wrapping_add(8 * i as u64), "value": w,
                       "symbol": mem.symbolize(*w)})
            })
            .collect();
        let fault = fault.map(|f| json!({"address": f.addr, "detail": f.detail}));
        return Ok(doc(obj(
            json!({"address": addr, "words": ws, "fault": fault}),
        )));
    }
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let ascii: String = w
            .to_le_bytes()
            .iter()
            .map(|&c| {
                if (0x20..0x7f).contains(&c) {
                    c as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = write!(
            out,
            "{:016x}:  {w:016x}  {ascii}",
            addr.wrapping_add(8 * i as u64)
        );
        if let Some(s) = mem.symbolize(*w) {
            let _ = write!(out, "  <{s}>");
        }
        out.push('\n');
    }
    if let Some(f) = fault {
        let _ = writeln!(out, "{f}");
    }
    Ok(out)
}

/// `dis FUNC|ADDR [COUNT]`: see [`crate::dis`].
pub fn dis(
    mem: &dyn KernelMemory,
    what: &str,
    count: Option<u64>,
    json: bool,
) -> Result<String, String> {
    if let Some(c) = count {
        check_count(c, crate::dis::MAX_INSNS, "instructions")?;
    }
    let addr = address_of(mem, what)?;
    let d = crate::dis::disassemble(mem, addr, count)?;
    Ok(if json { doc(obj(d.json())) } else { d.text() })
}

/// Frames of each task `kernel tasks` shows.
const TOP_FRAMES: usize = 4;

/// `wedge kernel tasks`: one task-iterator pass, raw: per thread its pid,
/// tgid, state letter and sleep kind (decoded from `__state` as a dump's
/// are), the lock it sleeps on (`task->blocker`) with the lock's owner, and
/// the top of its `bpf_get_task_stack` stack.
pub fn kernel_tasks(k: &wedge_bpf::live::LiveKernel, json: bool) -> Result<String, String> {
    let t = k.tasks()?;
    let name = |a: u64| {
        let f = k.frame(a);
        match f.function {
            Some(n) => format!("{n}+{:#x}", f.offset),
            None => format!("{a:#x}"),
        }
    };
    if json {
        let rows: Vec<Json> = t
            .records
            .iter()
            .map(|r| {
                let (st, kind) = wedge_vmcore::tasks::decode_state(r.state, r.exit_state);
                json!({
                    "pid": r.tgid, "tid": r.pid, "ppid": r.ppid, "comm": r.comm,
                    "task": r.task, "state": st.code().to_string(), "state_raw": r.state,
                    "sleep_kind": kind, "flags": r.flags, "cpu": r.cpu,
                    "blocker": r.blocker.as_ref().map(|b| json!({
                        "kind": b.kind, "lock": b.lock, "owner_task": b.owner_task,
                        "owner_pid": b.owner_pid, "reader_owned": b.reader_owned,
                    })),
                    "stack": r.stack.iter().map(|&a| json!({"address": a, "symbol": name(a)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(doc(obj(json!({
            "tasks": rows, "missing": t.missing, "pass_ms": t.pass_ms,
        }))));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>7} {:>7} {:<16} {:<2} {:<15} {:<34} TOP FRAMES",
        "PID", "TID", "COMM", "ST", "SLEEP", "BLOCKER (OWNER)"
    );
    for r in &t.records {
        let (st, kind) = wedge_vmcore::tasks::decode_state(r.state, r.exit_state);
        let kind = kind.map_or("-".to_string(), |k| {
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        let blocker = r.blocker.as_ref().map_or("-".to_string(), |b| {
            let kind = serde_json::to_value(b.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let owner = match (b.owner_pid, b.reader_owned) {
                (_, true) => "readers".to_string(),
                (Some(p), _) => p.to_string(),
                (None, _) => "?".to_string(),
            };
            format!("{kind} {:#x} ({owner})", b.lock)
        });
        let top: Vec<String> = r.stack.iter().take(TOP_FRAMES).map(|&a| name(a)).collect();
        let _ = writeln!(
            out,
            "{:>7} {:>7} {:<16} {:<2} {:<15} {:<34} {}",
            r.tgid,
            r.pid,
            r.comm,
            st.code(),
            kind,
            blocker,
            top.join(" < ")
        );
    }
    for m in &t.missing {
        let _ = writeln!(out, "note: {m}");
    }
    Ok(out)
}
