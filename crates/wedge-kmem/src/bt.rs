//! `bt PID…|--all [--vars]`: each task's kernel stack as drgn prints it.
//! The frames come from the dump's ORC tables; with the vmlinux's DWARF
//! each PC also gets its inlined calls (innermost first), file:line:column
//! and, with `--vars`, each frame's parameters and locals.
//!
//! Registers per frame follow drgn: frame 0 has the CPU's registers (the
//! crashed task: the panicking CPU's note) or, for a task that is not
//! running, the callee-saved registers `__switch_to_asm` pushed
//! (`struct inactive_task_frame`); each caller's come from `.debug_frame`
//! CFI (callee-saved registers kept, caller-saved ones unknown), or, where
//! no CFI describes the PC, from ORC (rip, rsp, rbp only). A pt_regs frame
//! (an interrupt or syscall entry) has them all again.

use crate::source::KernelMemory;
use serde_json::{json, Value as Json};
use std::fmt::Write;
pub use wedge_dwarf::Debuginfo;
use wedge_dwarf::{Dwarf, FrameState, Regs, Shape, VarValue};
use wedge_vmcore::kallsyms::Kallsyms;
use wedge_vmcore::mem::VirtMem;
use wedge_vmcore::modules::Modules;
use wedge_vmcore::notes::CpuRegs;
use wedge_vmcore::orc::State;
use wedge_vmcore::stack::SchedText;
use wedge_vmcore::tasks::Task;
use wedge_vmcore::Vmcore;

/// Which tasks.
pub enum Which {
    Pids(Vec<i64>),
    All,
}

/// One variable, printed.
struct VarOut {
    name: String,
    ty: String,
    param: bool,
    /// For people: `42`, `0xffff… <init_task>`, `<absent>`.
    text: String,
    /// For JSON: an integer, a string for objects, null when absent.
    value: Json,
}

struct FrameOut {
    function: Option<String>,
    inline: bool,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    pc: u64,
    offset: u64,
    size: u64,
    module: Option<String>,
    /// "dwarf" or "kallsyms".
    source: &'static str,
    /// How the frame was found: "orc" (unwound with the kernel's ORC
    /// tables, a dump's or the running kernel's) or "bpf_get_task_stack"
    /// (the running kernel's own walk of a task on a CPU).
    unwound: &'static str,
    vars: Option<Vec<VarOut>>,
    /// The variables as DWARF read them, for `frame(pid, N).name`.
    raw: Vec<wedge_dwarf::Var>,
}

fn dwarf_regs(r: &CpuRegs) -> Regs {
    let mut o = Regs::default();
    let v = [
        r.ax, r.dx, r.cx, r.bx, r.si, r.di, r.bp, r.sp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
        r.r14, r.r15, r.ip,
    ];
    for (i, x) in v.into_iter().enumerate() {
        o.0[i] = Some(x);
    }
    o
}

/// A task that is not running: `thread.sp` points at the
/// `inactive_task_frame` (r15 r14 r13 r12 bx bp ret_addr).
fn switch_regs(mem: &dyn VirtMem, saved_sp: u64, ip: u64, sp: u64) -> Regs {
    let mut o = Regs::default();
    let rd = |i: u64| mem.u64(saved_sp + 8 * i).ok();
    o.0[15] = rd(0);
    o.0[14] = rd(1);
    o.0[13] = rd(2);
    o.0[12] = rd(3);
    o.0[3] = rd(4);
    o.0[6] = rd(5);
    o.0[7] = Some(sp);
    o.0[16] = Some(ip);
    o
}

fn value_text(mem: &dyn KernelMemory, var: &wedge_dwarf::Var) -> (String, Json) {
    match &var.value {
        VarValue::Absent => ("<absent>".into(), Json::Null),
        VarValue::Fault(a) => (format!("<fault at {a:#x}>"), Json::Null),
        VarValue::Scalar(x) => match var.shape {
            Shape::Pointer => {
                let mut s = format!("{x:#x}");
                if let Some(sym) = mem.symbolize(*x) {
                    let _ = write!(s, " <{sym}>");
                }
                (s, json!(x))
            }
            Shape::Signed => {
                let n = *x as i64;
                (n.to_string(), json!(n))
            }
            Shape::Bool => (
                (if *x != 0 { "true" } else { "false" }).into(),
                json!(*x != 0),
            ),
            Shape::Float => {
                let f = if var.size == Some(4) {
                    f32::from_bits(*x as u32) as f64
                } else {
                    f64::from_bits(*x)
                };
                (f.to_string(), json!(f))
            }
            _ => (x.to_string(), json!(x)),
        },
        VarValue::Object(a) => {
            // The DWARF type's name, looked up in the dump's BTF, prints
            // the object as eval does; else its address alone.
            let printed = var.base_type.as_ref().and_then(|b| {
                let expr = format!("*({b} *){a:#x}");
                crate::cmd::eval(mem, &expr, false).ok()
            });
            match printed {
                Some(p) => (p.trim_end().to_string(), json!(a)),
                None => (format!("({}) {a:#x}", var.type_name), json!(a)),
            }
        }
        VarValue::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            (
                format!("({}) <in registers: {hex}>", var.type_name),
                json!(hex),
            )
        }
    }
}

/// The DWARF that describes `pc`: the vmlinux's for the kernel image, a
/// module's own (relocated to where it was loaded) for its text.
fn dwarf_for<'a>(
    modules: &Modules,
    dbg: &'a Debuginfo,
    pc: u64,
    in_image: bool,
) -> Option<&'a Dwarf> {
    if in_image {
        return dbg.vmlinux.as_ref();
    }
    let m = modules.find(pc)?;
    dbg.module(&m.name)?.dwarf(&m.funcs).ok()
}

/// What frames are named and read through: a dump's kernel, or the
/// running one.
pub struct Ctx<'a> {
    pub km: &'a dyn KernelMemory,
    pub vm: &'a dyn VirtMem,
    pub syms: &'a Kallsyms,
    pub modules: &'a Modules,
    pub sched: &'a SchedText,
}

impl<'a> Ctx<'a> {
    pub fn of_dump(v: &'a Vmcore) -> Ctx<'a> {
        Ctx {
            km: v,
            vm: &v.kernel.mem,
            syms: &v.kernel.syms,
            modules: &v.kernel.modules,
            sched: &v.sched_text,
        }
    }
}

fn task_frames(
    v: &Vmcore,
    dbg: Option<&Debuginfo>,
    t: &Task,
    vars: bool,
) -> (Vec<FrameOut>, Option<String>, Option<usize>) {
    let ts = match v.stack_states(t) {
        Ok(s) => s,
        Err(e) => return (vec![], Some(e.to_string()), None),
    };
    let c = Ctx::of_dump(v);
    let frames = frames_of(&c, dbg, t.saved_sp, &ts.states, "orc", vars);
    (frames, ts.error, ts.from_cpu)
}

/// Frames for unwinder states (innermost first) of a task whose switch
/// frame is at `saved_sp` (0 when it was running): named by kallsyms, or
/// with DWARF by file:line with inlined calls and, with `vars`, variables.
fn frames_of(
    c: &Ctx,
    dbg: Option<&Debuginfo>,
    saved_sp: u64,
    states: &[State],
    unwound: &'static str,
    vars: bool,
) -> Vec<FrameOut> {
    let image = (c.syms.addr("_text"), c.syms.addr("_end"));
    let in_image = |a: u64| match image {
        (Some(s), Some(e)) => a >= s && a < e,
        // A kernel without data symbols in kallsyms has no `_end`: its
        // text is what kallsyms describes.
        (Some(s), None) => a >= s && c.syms.lookup(a).is_some(),
        _ => false,
    };
    let read = |a: u64, b: &mut [u8]| c.vm.read(a, b).is_ok();
    let mut out = Vec::new();
    let mut regs = Regs::default();
    for (i, st) in states.iter().enumerate() {
        // This frame's registers: a full set (CPU note or pt_regs), the
        // switch frame (frame 0 of a sleeping task), or what the callee's
        // CFI step left (computed below, at the end of the last round).
        if let Some(r) = &st.regs {
            regs = dwarf_regs(r);
        } else if i == 0 {
            regs = switch_regs(c.vm, saved_sp, st.ip, st.sp);
        }
        // A return address is one past the call: look up the call itself.
        let lookup = if st.signal {
            st.ip
        } else {
            st.ip.wrapping_sub(1)
        };
        let sym = wedge_vmcore::stack::frame_in(c.syms, c.modules, c.sched, st.ip);
        let mut done = false;
        let mut cfa_next: Option<(u64, Regs)> = None;
        if let Some(d) = dbg.and_then(|g| dwarf_for(c.modules, g, st.ip, in_image(st.ip))) {
            let link = lookup.wrapping_sub(d.slide);
            cfa_next = d.cfi_step(link, &regs, &read);
            let inl = d.frames_at(link).unwrap_or_default();
            let n = inl.len();
            for (k, f) in inl.into_iter().enumerate() {
                let physical = k + 1 == n;
                let function = if f.function.is_empty() {
                    sym.function.clone()
                } else {
                    Some(f.function.clone())
                };
                let raw = if vars {
                    let fs = FrameState {
                        regs: &regs,
                        cfa: cfa_next.as_ref().map(|c| c.0),
                        pc: link,
                        read: &read,
                    };
                    d.frame_vars(&f, &fs)
                } else {
                    vec![]
                };
                let vs = vars.then(|| {
                    raw.iter()
                        .map(|var| {
                            let (text, value) = value_text(c.km, var);
                            VarOut {
                                name: var.name.clone(),
                                ty: var.type_name.clone(),
                                param: var.param,
                                text,
                                value,
                            }
                        })
                        .collect()
                });
                out.push(FrameOut {
                    function,
                    inline: f.inline,
                    file: f.file,
                    line: f.line,
                    column: f.column,
                    pc: st.ip,
                    offset: if physical { sym.offset } else { 0 },
                    size: if physical { sym.size } else { 0 },
                    module: sym.module.clone(),
                    source: "dwarf",
                    unwound,
                    vars: vs,
                    raw,
                });
                done = true;
            }
        }
        if !done {
            out.push(FrameOut {
                function: sym.function.clone(),
                inline: false,
                file: None,
                line: None,
                column: None,
                pc: st.ip,
                offset: sym.offset,
                size: sym.size,
                module: sym.module.clone(),
                source: "kallsyms",
                unwound,
                vars: vars.then(Vec::new),
                raw: vec![],
            });
        }
        // The caller's registers: CFI's when it agrees with ORC on where
        // the caller is, else what ORC knows (rip, rsp, rbp).
        if let Some(next) = states.get(i + 1) {
            regs = match cfa_next {
                Some((_, r)) if r.0[16] == Some(next.ip) && r.0[7] == Some(next.sp) => r,
                _ => {
                    let mut r = Regs::default();
                    r.0[16] = Some(next.ip);
                    r.0[7] = Some(next.sp);
                    r.0[6] = Some(next.bp);
                    r
                }
            };
        }
    }
    out
}

fn frame_text(f: &FrameOut) -> String {
    let mut s = match &f.function {
        Some(n) if f.source == "dwarf" && f.size == 0 => n.clone(),
        Some(n) if f.source == "dwarf" => format!("{n}+{:#x}/{:#x}", f.offset, f.size),
        Some(n) => format!("{n}+{:#x}/{:#x}", f.offset, f.size),
        None => format!("{:#x}", f.pc),
    };
    if let Some(m) = &f.module {
        let _ = write!(s, " [{m}]");
    }
    if let Some(file) = &f.file {
        let _ = write!(s, " ({file}");
        if let Some(l) = f.line {
            let _ = write!(s, ":{l}");
            if let Some(c) = f.column {
                let _ = write!(s, ":{c}");
            }
        }
        s.push(')');
    }
    if f.inline {
        s.push_str(" inline");
    }
    s
}

/// One task's stack, ready to print.
struct TaskOut {
    pid: i64,
    comm: String,
    task: u64,
    cpu: Option<usize>,
    crashed: bool,
    frames: Vec<FrameOut>,
    error: Option<String>,
    /// Why the frames are not an ORC walk from the saved context, when
    /// they are not (a running task of the live kernel).
    note: Option<String>,
}

/// `bt`: the text, or the JSON document (docs/schema/vmcore-bt.json).
pub fn bt(
    v: &Vmcore,
    dbg: Option<&Debuginfo>,
    which: &Which,
    vars: bool,
    json: bool,
) -> Result<String, String> {
    // The task list, and the other online CPUs' idle tasks no list links.
    let idle = v.secondary_idle_tasks();
    let every = || v.tasks.iter().chain(&idle);
    let tasks: Vec<&Task> = match which {
        Which::All => every().collect(),
        Which::Pids(ps) => {
            let mut out = Vec::new();
            for &p in ps {
                // pid 0 is each CPU's idle task: all of them.
                let hit: Vec<&Task> = every().filter(|t| i64::from(t.pid) == p).collect();
                if hit.is_empty() {
                    return Err(format!("no task with pid {p} in the dump"));
                }
                out.extend(hit);
            }
            out
        }
    };
    let crashed = v.crashing_task().map(|t| t.addr);
    let outs = tasks
        .into_iter()
        .map(|t| {
            let (frames, error, cpu) = task_frames(v, dbg, t, vars);
            TaskOut {
                pid: i64::from(t.pid),
                comm: t.comm.clone(),
                task: t.addr,
                cpu,
                crashed: crashed == Some(t.addr),
                frames,
                error,
                note: None,
            }
        })
        .collect();
    Ok(render(outs, dbg, "the dump's ORC tables", vars, json))
}

/// `wedge kernel bt PID…`: the running kernel's stacks of these tasks
/// (pids of the initial pid namespace), from one task-iterator pass: a
/// sleeping task's unwound with ORC from its saved stack pointer, with the
/// scheduler's and locks' frames /proc hides; a running one's from
/// `bpf_get_task_stack`, said so. With debuginfo, named as `vmcore bt`
/// names them (the vmlinux must be the running kernel's build).
pub fn bt_live(
    k: &wedge_bpf::live::LiveKernel,
    dbg: Option<&Debuginfo>,
    which: &Which,
    vars: bool,
    json: bool,
) -> Result<String, String> {
    let recs = &k.tasks()?.records;
    let picked: Vec<&wedge_bpf::TaskRecord> = match which {
        Which::All => recs.iter().collect(),
        Which::Pids(ps) => {
            let mut out = Vec::new();
            for &p in ps {
                let r = recs
                    .iter()
                    .find(|r| i64::from(r.pid) == p)
                    .ok_or_else(|| format!("no task with pid {p} in the running kernel"))?;
                out.push(r);
            }
            out
        }
    };
    let c = Ctx {
        km: k,
        vm: &k.bpf,
        syms: &k.syms,
        modules: &k.modules,
        sched: &k.sched,
    };
    let outs = picked
        .into_iter()
        .map(|r| {
            let st = k.stack(r);
            let frames = if st.states.is_empty() {
                // bpf_get_task_stack's addresses: return addresses, one
                // frame each (no unwinder state for DWARF's registers).
                let states: Vec<State> = st
                    .frames
                    .iter()
                    .map(|f| State {
                        ip: f.frame.addr,
                        sp: 0,
                        bp: 0,
                        signal: false,
                        regs: None,
                    })
                    .collect();
                frames_of(&c, dbg, 0, &states, "bpf_get_task_stack", vars)
            } else {
                frames_of(&c, dbg, r.saved_sp, &st.states, "orc", vars)
            };
            TaskOut {
                pid: i64::from(r.pid),
                comm: r.comm.clone(),
                task: r.task,
                cpu: st.running.then_some(r.cpu as usize),
                crashed: false,
                frames,
                error: st.stopped,
                note: st.note,
            }
        })
        .collect();
    Ok(render(
        outs,
        dbg,
        "the running kernel's ORC tables read through BPF",
        vars,
        json,
    ))
}

fn render(
    tasks: Vec<TaskOut>,
    dbg: Option<&Debuginfo>,
    orc: &str,
    vars: bool,
    json: bool,
) -> String {
    let dwarf = dbg.and_then(|d| d.vmlinux.as_ref());
    let mods: Vec<&str> = dbg
        .iter()
        .flat_map(|d| &d.modules)
        .map(|m| m.name.as_str())
        .collect();
    let mods = if mods.is_empty() {
        String::new()
    } else {
        format!(" and of modules {}", mods.join(", "))
    };
    let source = match dwarf {
        Some(d) => format!(
            "frames from {orc}, names from kallsyms; file:line, inlined frames{} from DWARF ({}{mods})",
            if vars { " and variables" } else { "" },
            d.path.display()
        ),
        None => format!("frames from {orc}, names from kallsyms (no DWARF: give --debuginfo for file:line, inlined frames and variables)"),
    };
    let mut text = String::new();
    let mut jt = Vec::new();
    for t in tasks {
        if json {
            let fs: Vec<Json> = t
                .frames
                .iter()
                .map(|f| {
                    let vars = f.vars.as_ref().map(|vs| {
                        vs.iter()
                            .map(|x| {
                                json!({"name": x.name, "type": x.ty, "value": x.value,
                                             "text": x.text, "parameter": x.param})
                            })
                            .collect::<Vec<_>>()
                    });
                    json!({"function": f.function, "inline": f.inline, "file": f.file,
                           "line": f.line, "column": f.column, "address": f.pc,
                           "offset": f.offset, "size": f.size, "module": f.module,
                           "source": f.source, "unwound": f.unwound,
                           "variables": vars.unwrap_or_default()})
                })
                .collect();
            jt.push(
                json!({"pid": t.pid, "comm": t.comm, "task": t.task, "cpu": t.cpu,
                           "crashed": t.crashed, "frames": fs, "error": t.error,
                           "note": t.note}),
            );
            continue;
        }
        let _ = write!(
            text,
            "PID: {}  TASK: {:#x}  COMMAND: \"{}\"",
            t.pid, t.task, t.comm
        );
        if let Some(c) = t.cpu {
            let _ = write!(text, "  CPU: {c}");
        }
        if t.crashed {
            text.push_str("  (crashed)");
        }
        text.push('\n');
        if let Some(n) = &t.note {
            let _ = writeln!(text, "    ({n})");
        }
        for (i, f) in t.frames.iter().enumerate() {
            let _ = writeln!(text, "#{i:<2} {}", frame_text(f));
            for x in f.vars.iter().flatten() {
                let _ = writeln!(text, "      {} {} = {}", x.ty, x.name, x.text);
            }
        }
        if let Some(e) = t.error {
            let _ = writeln!(text, "    (stack walk stopped: {e})");
        }
        text.push('\n');
    }
    if json {
        let dbg =
            dwarf.map(|d| json!({"path": d.path.display().to_string(), "build_id": d.build_id, "release": d.release}));
        let doc = json!({"tasks": jt, "debuginfo": dbg, "source": source});
        let rest = doc.to_string();
        let rest = rest.strip_prefix('{').unwrap_or("}");
        return format!(
            "{{\"schema_version\":{},{rest}\n",
            wedge_model::SCHEMA_VERSION
        );
    }
    let _ = writeln!(text, "source: {source}");
    text
}

/// Opens `--debuginfo` for a dump: the vmlinux must carry the dump's
/// build-id (VMCOREINFO `BUILD-ID=`) and release (`OSRELEASE=`).
pub fn open_debuginfo(
    v: &Vmcore,
    paths: &[std::path::PathBuf],
) -> Result<wedge_dwarf::Debuginfo, String> {
    let info = &v.kernel.vmcoreinfo;
    let want = wedge_dwarf::Expect {
        release: v.kernel.release.clone(),
        build_id: info.get("BUILD-ID").map(str::to_string),
        slide: info.kernel_offset().unwrap_or(0),
        modules: v
            .kernel
            .modules
            .mods
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    wedge_dwarf::Debuginfo::open(paths, &want)
}

/// Frame variables and DWARF globals for `eval` (`frame(pid, N).name`):
/// each task's stack is walked once, when first asked for.
pub struct DwarfSource<'a> {
    pub v: &'a Vmcore,
    pub dbg: &'a Debuginfo,
    pub dwarf: &'a Dwarf,
    stacks: std::cell::RefCell<std::collections::HashMap<i64, Vec<FrameOut>>>,
}

impl<'a> DwarfSource<'a> {
    pub fn new(v: &'a Vmcore, dbg: &'a Debuginfo, dwarf: &'a Dwarf) -> DwarfSource<'a> {
        DwarfSource {
            v,
            dbg,
            dwarf,
            stacks: Default::default(),
        }
    }
}

impl crate::eval::DebugSource for DwarfSource<'_> {
    fn frame_var(&self, pid: i64, n: u64, name: &str) -> Result<crate::eval::DebugVar, String> {
        use crate::eval::{DebugValue, DebugVar};
        let mut stacks = self.stacks.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(slot) = stacks.entry(pid) {
            let t = self
                .v
                .tasks
                .iter()
                .find(|t| i64::from(t.pid) == pid)
                .ok_or_else(|| format!("no task with pid {pid}"))?;
            slot.insert(task_frames(self.v, Some(self.dbg), t, true).0);
        }
        let frames = stacks.get(&pid).map(Vec::as_slice).unwrap_or_default();
        let f = usize::try_from(n)
            .ok()
            .and_then(|i| frames.get(i))
            .ok_or_else(|| {
                format!(
                    "task {pid} has {} frames (#0 to #{})",
                    frames.len(),
                    frames.len().saturating_sub(1)
                )
            })?;
        let var = f.raw.iter().find(|x| x.name == name).ok_or_else(|| {
            let names: Vec<&str> = f.raw.iter().map(|x| x.name.as_str()).collect();
            let fname = f.function.as_deref().unwrap_or("?");
            if names.is_empty() {
                format!("frame #{n} ({fname}) has no variables DWARF describes")
            } else {
                format!(
                    "frame #{n} ({fname}) has no variable {name} (it has: {})",
                    names.join(", ")
                )
            }
        })?;
        Ok(DebugVar {
            type_name: var.type_name.clone(),
            value: match &var.value {
                VarValue::Absent | VarValue::Fault(_) => DebugValue::Absent,
                VarValue::Scalar(b) => DebugValue::Bits(*b),
                VarValue::Object(a) => DebugValue::Addr(*a),
                VarValue::Bytes(b) => DebugValue::Bytes(b.clone()),
            },
        })
    }

    fn global_type(&self, name: &str) -> Option<String> {
        self.dwarf.global_type(name)
    }
}
