//! `wedge vmcore DUMP [ps|why PID|log|tasks|bt PID…|eval EXPR|ptype TYPE|sym|rd|dis|shell]`: a kernel crash dump read with
//! no debuginfo (BTF, kallsyms and ORC from the dump), through the same
//! analysis and views as the live machine; the dump's own parts (header,
//! panic, lock waits, how much was read) are the views' `Dump` parameter.
//! `--debuginfo` adds the kernel's DWARF (wedge-dwarf) to `bt` and `eval`.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use wedge_analysis::diagnose;
use wedge_model::SnapshotSource;
use wedge_render::view::{write_out, Dump, Status};
use wedge_vmcore::listing;

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 nothing wedged; 1 something wedged, a panic recorded (for `log`: a panic, oops, hung task, lockup or stall); 2 the dump cannot be read; 3 nothing found, but the dump is truncated or its task list could not be read whole (a partial view)."
)]
pub struct VmcoreArgs {
    /// A kernel crash dump (ELF vmcore or kdump-compressed, flattened or not).
    pub dump: PathBuf,
    /// Use this System.map for symbols instead of the dump's kallsyms.
    #[arg(long, value_name = "FILE", global = true)]
    pub system_map: Option<PathBuf>,
    /// Use this raw BTF file instead of the dump's own.
    #[arg(long, value_name = "FILE", global = true)]
    pub btf: Option<PathBuf>,
    /// Debuginfo: a vmlinux with DWARF, module .ko/.ko.debug files, or a
    /// directory holding them (/usr/lib/debug/lib/modules/RELEASE,
    /// /usr/lib/debug/boot). Repeatable. Must match the dump's build-id.
    #[arg(long, value_name = "PATH", global = true)]
    pub debuginfo: Vec<PathBuf>,
    #[command(subcommand)]
    pub view: Option<VmcoreView>,
}

#[derive(Subcommand, Debug)]
pub enum VmcoreView {
    /// The tasks that matter (with --all, every task).
    Ps(crate::args::PsArgs),
    /// Everything about one process, and what it waits for.
    Why(crate::args::WhyArgs),
    /// The kernel log from the dump's printk buffer, as typed events.
    Log(LogView),
    /// Every task with its state and full kernel stack.
    Tasks,
    /// Evaluates a C expression over the dump's memory (types from its BTF):
    /// `init_task.comm`, `per_cpu(runqueues, 0).curr->pid`.
    Eval {
        /// One argument: quote it (`'task(1)->comm'`).
        #[arg(allow_hyphen_values = true)]
        expr: String,
        /// How many levels of nested structs print before `{...}` (default 3).
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
    },
    /// The layout of a type or of an expression's type, with offsets and sizes.
    Ptype {
        /// One argument: quote it (`'struct task_struct'`).
        what: String,
    },
    /// An address → the symbol it is in (`schedule+0x10`), kind, size and
    /// module; a name → its address and kind.
    Sym {
        /// An address (`0xffffffff81a0e2f0`), a name, or an expression.
        what: String,
    },
    /// COUNT 8-byte words from an address (default 8), as crash's `rd`,
    /// each word symbolised when it points into the kernel.
    Rd {
        /// An address, a symbol or an expression (`&init_task`, `task(1)`).
        #[arg(allow_hyphen_values = true)]
        what: String,
        count: Option<u64>,
    },
    /// An interactive session over the dump, opened once: eval, ptype, sym,
    /// rd, dis, ps, why, tasks and log, with history and tab completion
    /// of symbols, types and members. Commands piped in are read line by line.
    Shell,
    /// Kernel stacks as drgn prints them: with --debuginfo, inlined frames
    /// and file:line, and with --vars each frame's parameters and locals.
    Bt(BtArgs),
    /// Disassembles a function whole, or COUNT instructions from an address.
    Dis {
        /// A function name, an address or an expression.
        what: String,
        count: Option<u64>,
    },
}

/// `ps`, `why` and `log` inside the shell: their arguments parsed as the
/// one-shot arms parse them.
#[derive(clap::Parser, Debug)]
#[command(no_binary_name = true)]
enum ShellView {
    Ps(crate::args::PsArgs),
    Why(crate::args::WhyArgs),
    Log(LogView),
    Tasks,
    Bt(BtArgs),
}

/// The shell: wedge-kmem's session, with the dump views added as commands
/// (the snapshot they share is read on the first one that needs it).
fn shell(
    v: &wedge_vmcore::Vmcore,
    dump: &Dump<'_, wedge_vmcore::Completeness>,
    dbg: Option<&wedge_kmem::bt::Debuginfo>,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    use clap::Parser;
    use std::io::IsTerminal;
    let snap = std::cell::OnceCell::new();
    let view = |name: &'static str| {
        let snap = &snap;
        move |args: &str, json: bool| -> Result<String, String> {
            let words = std::iter::once(name).chain(args.split_whitespace());
            let parsed = match ShellView::try_parse_from(words) {
                Ok(p) => p,
                // `ps --help`: the view's own help, as output.
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                    return Ok(e.render().to_string())
                }
                Err(e) => {
                    let m = e.render().to_string();
                    return Err(m.trim_start_matches("error: ").trim_end().to_string());
                }
            };
            let snapshot = || -> Result<&wedge_model::Snapshot, String> {
                if snap.get().is_none() {
                    let _ = snap.set(v.snapshot()?);
                }
                snap.get().ok_or_else(|| "no snapshot".to_string())
            };
            let mut buf = Vec::new();
            match parsed {
                ShellView::Ps(ps) => dump.ps(snapshot()?, ps.options(), json, &mut buf)?,
                ShellView::Why(why) => {
                    let s = snapshot()?;
                    dump.why(s, &diagnose(s, &[]), why.pid, json, &mut buf)?
                }
                ShellView::Log(l) => dump.log(l.raw, json, &mut buf)?,
                ShellView::Tasks => dump.tasks(listing::rows(v), listing::text, json, &mut buf)?,
                ShellView::Bt(b) => return bt(v, dbg, &b, json),
            };
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    };
    let src = dwarf_source(v, dbg);
    let mut sh = wedge_kmem::shell::Shell::new(v);
    sh.set_json(json);
    sh.set_debug(
        src.as_ref()
            .map(|s| s as &dyn wedge_kmem::eval::DebugSource),
    );
    sh.add(
        "ps",
        "ps [--all] [--tree] [--wide] [--json]",
        Box::new(view("ps")),
    );
    sh.add("why", "why PID [--json]", Box::new(view("why")));
    sh.add("tasks", "tasks [--json]", Box::new(view("tasks")));
    sh.add("log", "log [--raw] [--json]", Box::new(view("log")));
    sh.add(
        "bt",
        "bt PID…|--all [--vars] [--json]",
        Box::new(view("bt")),
    );
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal() && std::io::stdout().is_terminal();
    let mut input = stdin.lock();
    let mut err = std::io::stderr();
    wedge_kmem::shell::run(&mut sh, &mut input, interactive, out, &mut err)?;
    Ok(Status::Clear)
}

/// `bt`'s arguments, the same for a dump and for the running kernel.
#[derive(Args, Debug)]
pub struct BtArgs {
    /// Task pids, as the initial pid namespace numbers them (in a dump, 0:
    /// every CPU's idle task).
    #[arg(required_unless_present = "all")]
    pids: Vec<i64>,
    /// Every task.
    #[arg(long, conflicts_with = "pids")]
    all: bool,
    /// Each frame's parameters and locals (needs --debuginfo).
    #[arg(long)]
    vars: bool,
}

impl BtArgs {
    /// Which tasks to walk; says on stderr when `--vars` cannot be
    /// honoured (no vmlinux DWARF given).
    pub fn which(&self, dbg: Option<&wedge_kmem::bt::Debuginfo>) -> wedge_kmem::bt::Which {
        if self.vars && dbg.and_then(|d| d.vmlinux.as_ref()).is_none() {
            eprintln!("wedge: --vars needs the vmlinux's DWARF (--debuginfo): frames only");
        }
        if self.all {
            wedge_kmem::bt::Which::All
        } else {
            wedge_kmem::bt::Which::Pids(self.pids.clone())
        }
    }

    pub fn vars(&self) -> bool {
        self.vars
    }
}

#[derive(Args, Debug)]
pub struct LogView {
    /// The records as dmesg prints them, not typed events.
    #[arg(long)]
    pub raw: bool,
}

pub fn run(
    json: bool,
    verbose: bool,
    args: &VmcoreArgs,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    let opts = wedge_vmcore::Options {
        system_map: args.system_map.clone(),
        btf: args.btf.clone(),
    };
    let v = wedge_vmcore::open(&args.dump, &opts)?;
    let (facts, completeness) = (v.facts(), v.completeness());
    let dump = Dump {
        facts: &facts,
        completeness: &completeness,
    };
    dump.warn_partial();
    match &args.view {
        // Typed memory and expressions: one wedge-kmem call each.
        Some(VmcoreView::Eval { expr, depth }) => {
            let lim = wedge_kmem::cmd::limits(*depth)?;
            let dbg = open_debuginfo(&v, &args.debuginfo)?;
            let src = dwarf_source(&v, dbg.as_ref());
            let debug = src
                .as_ref()
                .map(|s| s as &dyn wedge_kmem::eval::DebugSource);
            write_out(
                out,
                &wedge_kmem::cmd::eval_with(&v, debug, expr, json, lim)?,
            )
            .map(|_| Status::Clear)
        }
        Some(VmcoreView::Ptype { what }) => {
            write_out(out, &wedge_kmem::cmd::ptype(&v, what)?).map(|_| Status::Clear)
        }
        Some(VmcoreView::Sym { what }) => {
            write_out(out, &wedge_kmem::cmd::sym(&v, what, json)?).map(|_| Status::Clear)
        }
        Some(VmcoreView::Rd { what, count }) => {
            write_out(out, &wedge_kmem::cmd::rd(&v, what, *count, json)?).map(|_| Status::Clear)
        }
        Some(VmcoreView::Dis { what, count }) => {
            write_out(out, &wedge_kmem::cmd::dis(&v, what, *count, json)?).map(|_| Status::Clear)
        }
        Some(VmcoreView::Shell) => {
            let dbg = open_debuginfo(&v, &args.debuginfo)?;
            shell(&v, &dump, dbg.as_ref(), json, out)
        }
        Some(VmcoreView::Bt(b)) => {
            let dbg = open_debuginfo(&v, &args.debuginfo)?;
            write_out(out, &bt(&v, dbg.as_ref(), b, json)?).map(|_| Status::Clear)
        }
        Some(VmcoreView::Tasks) => dump.tasks(listing::rows(&v), listing::text, json, out),
        Some(VmcoreView::Log(l)) => dump.log(l.raw, json, out),
        Some(VmcoreView::Ps(ps)) => dump.ps(&v.snapshot()?, ps.options(), json, out),
        Some(VmcoreView::Why(why)) => {
            let snap = v.snapshot()?;
            dump.why(&snap, &diagnose(&snap, &[]), why.pid, json, out)
        }
        None => {
            let mut snap = v.snapshot()?;
            snap.limitations.extend(dump.log_limitation());
            dump.verdict(&snap, &diagnose(&snap, &[]), verbose, json, out)
        }
    }
}

/// `bt`, one-shot or in the shell.
fn bt(
    v: &wedge_vmcore::Vmcore,
    dbg: Option<&wedge_kmem::bt::Debuginfo>,
    b: &BtArgs,
    json: bool,
) -> Result<String, String> {
    wedge_kmem::bt::bt(v, dbg, &b.which(dbg), b.vars(), json)
}

/// What `eval` reads frame variables and DWARF-typed globals through.
fn dwarf_source<'a>(
    v: &'a wedge_vmcore::Vmcore,
    dbg: Option<&'a wedge_kmem::bt::Debuginfo>,
) -> Option<wedge_kmem::bt::DwarfSource<'a>> {
    dbg.and_then(|g| {
        g.vmlinux
            .as_ref()
            .map(|d| wedge_kmem::bt::DwarfSource::new(v, g, d))
    })
}

fn open_debuginfo(
    v: &wedge_vmcore::Vmcore,
    paths: &[PathBuf],
) -> Result<Option<wedge_kmem::bt::Debuginfo>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let d = wedge_kmem::bt::open_debuginfo(v, paths)?;
    for n in &d.notes {
        eprintln!("wedge: {n}");
    }
    Ok(Some(d))
}
