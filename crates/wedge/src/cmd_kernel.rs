//! `wedge kernel [eval EXPR|ptype TYPE|bt PID…|tasks|sym|rd|dis|shell]`: the
//! running kernel's own objects, read through BPF (wedge-bpf's
//! `LiveKernel`), with the same commands and code as `wedge vmcore DUMP …`
//! (wedge-kmem). Read-only: reads are `bpf_probe_read_kernel`, a fault is
//! an error naming the address.

use crate::cmd_vmcore::BtArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use wedge_bpf::live::LiveKernel;
use wedge_render::view::{write_out, Status};

#[derive(Args, Debug)]
#[command(
    after_help = "Needs root (BPF task iterators and kernel-memory reads need CAP_BPF and CAP_PERFMON) and a kernel with BTF. Exit status: 0 done; 2 an error (BPF unavailable, with the reason; a fault reading kernel memory; a bad expression)."
)]
pub struct KernelArgs {
    /// Debuginfo: the running kernel's vmlinux with DWARF (its build-id
    /// must match /sys/kernel/notes), or a directory holding it. Repeatable.
    #[arg(long, value_name = "PATH", global = true)]
    pub debuginfo: Vec<PathBuf>,
    #[command(subcommand)]
    pub view: KernelView,
}

#[derive(Subcommand, Debug)]
pub enum KernelView {
    /// Evaluates a C expression over the running kernel's memory (types
    /// from its BTF): `init_task.comm`, `task(1)->real_parent->comm`.
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
    /// Kernel stacks of tasks, with the scheduler's and locks' frames
    /// /proc hides (unwound with the kernel's ORC tables from the saved
    /// stack pointer); a task running on a CPU gets bpf_get_task_stack's.
    Bt(BtArgs),
    /// One BPF task-iterator pass: every thread's pid, state, sleep kind,
    /// the lock it sleeps on and that lock's owner, and its top frames.
    Tasks,
    /// An address → the symbol it is in; a name → its address and kind.
    Sym {
        /// An address (`0xffffffff81a0e2f0`), a name, or an expression.
        what: String,
    },
    /// COUNT 8-byte words from an address (default 8), each word
    /// symbolised when it points into the kernel.
    Rd {
        /// An address, a symbol or an expression (`&init_task`, `task(1)`).
        #[arg(allow_hyphen_values = true)]
        what: String,
        count: Option<u64>,
    },
    /// Disassembles a function whole, or COUNT instructions from an address.
    Dis {
        /// A function name, an address or an expression.
        what: String,
        count: Option<u64>,
    },
    /// An interactive session over the running kernel, opened once: eval,
    /// ptype, sym, rd, dis, bt and tasks, with history and completion.
    /// Commands piped in are read line by line.
    Shell,
}

/// `bt` and `tasks` inside the shell, their arguments parsed as the
/// one-shot arms parse them.
#[derive(clap::Parser, Debug)]
#[command(no_binary_name = true)]
enum ShellView {
    Tasks,
    Bt(BtArgs),
}

pub fn run(json: bool, args: &KernelArgs, out: &mut dyn std::io::Write) -> Result<Status, String> {
    let k = LiveKernel::open()
        .map_err(|u| format!("the running kernel cannot be read through BPF: {u}"))?;
    let dbg = open_debuginfo(&k, &args.debuginfo)?;
    let text = match &args.view {
        KernelView::Eval { expr, depth } => {
            let lim = wedge_kmem::cmd::limits(*depth)?;
            wedge_kmem::cmd::eval_limited(&k, expr, json, lim)?
        }
        KernelView::Ptype { what } => wedge_kmem::cmd::ptype(&k, what)?,
        KernelView::Sym { what } => wedge_kmem::cmd::sym(&k, what, json)?,
        KernelView::Rd { what, count } => wedge_kmem::cmd::rd(&k, what, *count, json)?,
        KernelView::Dis { what, count } => wedge_kmem::cmd::dis(&k, what, *count, json)?,
        KernelView::Bt(b) => bt(&k, dbg.as_ref(), b, json)?,
        KernelView::Tasks => wedge_kmem::cmd::kernel_tasks(&k, json)?,
        KernelView::Shell => return shell(&k, dbg.as_ref(), json, out),
    };
    write_out(out, &text).map(|_| Status::Clear)
}

/// `bt`, one-shot or in the shell.
fn bt(
    k: &LiveKernel,
    dbg: Option<&wedge_kmem::bt::Debuginfo>,
    b: &BtArgs,
    json: bool,
) -> Result<String, String> {
    wedge_kmem::bt::bt_live(k, dbg, &b.which(dbg), b.vars(), json)
}

fn shell(
    k: &LiveKernel,
    dbg: Option<&wedge_kmem::bt::Debuginfo>,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<Status, String> {
    use clap::Parser;
    use std::io::IsTerminal;
    let view = |name: &'static str| {
        move |args: &str, json: bool| -> Result<String, String> {
            let words = std::iter::once(name).chain(args.split_whitespace());
            match ShellView::try_parse_from(words) {
                Ok(ShellView::Tasks) => wedge_kmem::cmd::kernel_tasks(k, json),
                Ok(ShellView::Bt(b)) => bt(k, dbg, &b, json),
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                    Ok(e.render().to_string())
                }
                Err(e) => {
                    let m = e.render().to_string();
                    Err(m.trim_start_matches("error: ").trim_end().to_string())
                }
            }
        }
    };
    let mut sh = wedge_kmem::shell::Shell::new(k);
    sh.set_json(json);
    sh.add("tasks", "tasks [--json]", Box::new(view("tasks")));
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

fn open_debuginfo(
    k: &LiveKernel,
    paths: &[PathBuf],
) -> Result<Option<wedge_kmem::bt::Debuginfo>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let d = wedge_kmem::bt::open_debuginfo_live(k, paths)?;
    for n in &d.notes {
        eprintln!("wedge: {n}");
    }
    Ok(Some(d))
}
