//! `wedge vmcore DUMP shell`: one memory source opened once, and the
//! one-shot commands (`eval`, `ptype`, `sym`, `rd`, `dis`, and what the
//! binary adds: `ps`, `why`, `tasks`, `log`) typed one after another, as in
//! crash or a drgn session.
//!
//! The session logic lives here: [`Shell::run_line`] dispatches a line and
//! [`Completer::complete`] gives the tab-completion candidates (command
//! names, kallsyms symbols, BTF type names, and the members of the
//! expression typed so far, found from its type alone). [`run`] drives it:
//! a line editor with history on a terminal, plain lines otherwise (a
//! script piped in). An error in one command is printed and the session
//! goes on.

use crate::cmd;
use crate::eval::{Evaluator, HELPERS};
use crate::source::{Fault, KernelMemory, SymbolAt};
use crate::types::{self, Shape};
use std::cell::OnceCell;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use wedge_vmcore::btf::{Btf, Kind};

/// A command the caller adds (the binary's dump views: `ps`, `why PID`,
/// `tasks`, `log`): called with the text after its name and `--json`.
pub type Handler<'a> = Box<dyn FnMut(&str, bool) -> Result<String, String> + 'a>;

struct Extra<'a> {
    name: &'static str,
    usage: &'static str,
    run: Handler<'a>,
}

/// The commands this crate runs itself: (name, usage, what it does).
const BUILTINS: [(&str, &str, &str); 8] = [
    (
        "eval",
        "eval [--json] [--depth N] EXPR",
        "evaluate a C expression (p and print are the same)",
    ),
    (
        "ptype",
        "ptype TYPE|EXPR",
        "the layout of a type, with offsets and sizes",
    ),
    (
        "sym",
        "sym [--json] ADDR|NAME",
        "the symbol an address is in, or a symbol's address",
    ),
    (
        "rd",
        "rd [--json] ADDR|EXPR [COUNT]",
        "COUNT 8-byte words (default 8), symbolised",
    ),
    (
        "dis",
        "dis [--json] FUNC|ADDR [COUNT]",
        "disassemble a function, or COUNT instructions",
    ),
    (
        "help",
        "help [COMMAND]",
        "this list, or one command's usage",
    ),
    (
        "quit",
        "quit",
        "end the session (exit and end of input too)",
    ),
    ("exit", "exit", "end the session"),
];

/// Aliases of `eval`, as gdb and crash spell it.
const EVAL_ALIASES: [&str; 2] = ["p", "print"];

/// The longest line read from a script (a longer one is refused, not
/// buffered without bound): an expression is at most 64 KiB.
pub const MAX_LINE: usize = 64 << 10;

/// What one line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Output to print (may be empty: a blank line).
    Output(String),
    /// The command failed: the message, for stderr.
    Error(String),
    /// `quit` or `exit`.
    Quit,
}

/// A session over one memory source.
pub struct Shell<'a> {
    mem: &'a dyn KernelMemory,
    /// DWARF, when the session was opened with `--debuginfo`: frame
    /// variables and DWARF-typed globals in `eval`.
    debug: Option<&'a dyn crate::eval::DebugSource>,
    extras: Vec<Extra<'a>>,
    /// `wedge --json vmcore DUMP shell`: every command as JSON.
    json: bool,
}

impl<'a> Shell<'a> {
    pub fn new(mem: &'a dyn KernelMemory) -> Shell<'a> {
        Shell {
            mem,
            debug: None,
            extras: Vec::new(),
            json: false,
        }
    }

    /// Every command's output as JSON, as if each were given `--json`.
    pub fn set_json(&mut self, json: bool) {
        self.json = json;
    }

    /// Evaluates with DWARF (`--debuginfo`) as the one-shot `eval` does.
    pub fn set_debug(&mut self, debug: Option<&'a dyn crate::eval::DebugSource>) {
        self.debug = debug;
    }

    /// Adds a command the caller runs (`ps`, `why PID`, ...). A later
    /// command of the same name replaces an earlier one; built-in names
    /// cannot be replaced.
    pub fn add(&mut self, name: &'static str, usage: &'static str, run: Handler<'a>) {
        self.extras.retain(|e| e.name != name);
        self.extras.push(Extra { name, usage, run });
    }

    /// Every command name, for completion and for naming near ones.
    pub fn command_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = BUILTINS.iter().map(|b| b.0).collect();
        v.extend(EVAL_ALIASES);
        v.extend(self.extras.iter().map(|e| e.name));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The tab-completion half of the session (it shares only the memory
    /// source, so a line editor can hold it while lines are dispatched).
    pub fn completer(&self) -> Completer<'a> {
        Completer {
            mem: self.mem,
            commands: self.command_names(),
            index: OnceCell::new(),
        }
    }

    fn help(&self, what: &str) -> Result<String, String> {
        let mut rows: Vec<(&str, &str)> = BUILTINS.iter().map(|b| (b.0, b.1)).collect();
        rows.extend(self.extras.iter().map(|e| (e.name, e.usage)));
        let what = what.trim();
        if !what.is_empty() {
            let name = if EVAL_ALIASES.contains(&what) {
                "eval"
            } else {
                what
            };
            return match rows.iter().find(|r| r.0 == name) {
                Some((_, usage)) => Ok(format!("{usage}\n")),
                None => Err(self.unknown(what)),
            };
        }
        let mut out =
            String::from("Commands (tab completes commands, symbols, types and members):\n");
        for (name, usage) in &rows {
            let what = BUILTINS.iter().find(|b| b.0 == *name).map_or("", |b| b.2);
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("  {usage:<34} {what}\n"));
        }
        Ok(out)
    }

    fn unknown(&self, name: &str) -> String {
        let names = self.command_names();
        let near = crate::eval::near(name, names.iter().copied());
        let mut m = format!("unknown command {name:?}");
        if !near.is_empty() {
            m.push_str(&format!(" (near: {})", near.join(", ")));
        }
        m.push_str("; help lists the commands");
        m
    }

    /// Runs one line: a command and its arguments.
    pub fn run_line(&mut self, line: &str) -> Step {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Step::Output(String::new());
        }
        let (name, rest) = match line.find(char::is_whitespace) {
            Some(i) => (&line[..i], line[i..].trim()),
            None => (line, ""),
        };
        if name == "quit" || name == "exit" {
            return Step::Quit;
        }
        match self.dispatch(name, rest) {
            Ok(s) => Step::Output(s),
            Err(e) => Step::Error(e),
        }
    }

    fn dispatch(&mut self, name: &str, rest: &str) -> Result<String, String> {
        let mem = self.mem;
        let mut a = Args::parse(rest, name == "eval" || EVAL_ALIASES.contains(&name))?;
        a.json |= self.json;
        let need = |what: &str| -> Result<(), String> {
            if a.text.is_empty() {
                let usage = BUILTINS.iter().find(|b| b.0 == name).map_or("", |b| b.1);
                Err(format!("{name} needs {what}: {usage}"))
            } else {
                Ok(())
            }
        };
        match name {
            "eval" | "p" | "print" => {
                need("an expression")?;
                cmd::eval_with(mem, self.debug, &a.text, a.json, cmd::limits(a.depth)?)
            }
            "ptype" => {
                need("a type or an expression")?;
                cmd::ptype(mem, &a.text)
            }
            "sym" => {
                need("an address or a name")?;
                cmd::sym(mem, &a.text, a.json)
            }
            "rd" => {
                need("an address")?;
                let (what, count) = with_count(&a.text)?;
                cmd::rd(mem, what, count, a.json)
            }
            "dis" => {
                need("a function or an address")?;
                let (what, count) = with_count(&a.text)?;
                cmd::dis(mem, what, count, a.json)
            }
            "help" => self.help(&a.text),
            // `bt` is the binary's (it parses the one-shot arm's
            // arguments), added with [`Shell::add`] like `ps` and `why`.
            _ => {
                let Some(e) = self.extras.iter_mut().find(|e| e.name == name) else {
                    return Err(self.unknown(name));
                };
                (e.run)(&a.text, a.json)
            }
        }
    }
}

/// A command's arguments with the flags every command takes taken out:
/// `--json` (first or last) and, for `eval`, `--depth N`.
struct Args {
    json: bool,
    depth: Option<u32>,
    text: String,
}

impl Args {
    fn parse(rest: &str, eval: bool) -> Result<Args, String> {
        let mut json = false;
        let mut depth = None;
        let mut s = rest.trim();
        loop {
            if let Some(r) = word_after(s, "--json") {
                json = true;
                s = r;
            } else if let (true, Some(r)) = (eval, word_after(s, "--depth")) {
                let (n, r) = match r.find(char::is_whitespace) {
                    Some(i) => (&r[..i], r[i..].trim_start()),
                    None => (r, ""),
                };
                depth = Some(
                    n.parse::<u32>()
                        .map_err(|_| format!("--depth takes a number, not {n:?}"))?,
                );
                s = r;
            } else if let Some(r) = eval.then(|| s.strip_prefix("--depth=")).flatten() {
                let (n, r) = r.split_at(r.find(char::is_whitespace).unwrap_or(r.len()));
                depth = Some(
                    n.parse::<u32>()
                        .map_err(|_| format!("--depth takes a number, not {n:?}"))?,
                );
                s = r.trim_start();
            } else {
                break;
            }
        }
        if let Some(r) = s.strip_suffix("--json") {
            if r.is_empty() || r.ends_with(char::is_whitespace) {
                json = true;
                s = r.trim_end();
            }
        }
        Ok(Args {
            json,
            depth,
            text: s.to_string(),
        })
    }
}

/// The text after a leading flag word (`--json EXPR` → `EXPR`).
fn word_after<'t>(s: &'t str, flag: &str) -> Option<&'t str> {
    let r = s.strip_prefix(flag)?;
    (r.is_empty() || r.starts_with(char::is_whitespace)).then(|| r.trim_start())
}

/// `ADDR [COUNT]`: the last word is the COUNT when it is a number and
/// something comes before it (an expression ending in a number can be put
/// in parentheses).
fn with_count(text: &str) -> Result<(&str, Option<u64>), String> {
    let t = text.trim();
    let Some(i) = t.rfind(char::is_whitespace) else {
        return Ok((t, None));
    };
    let (what, last) = (t[..i].trim_end(), &t[i + 1..]);
    let n = match last.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => last.parse::<u64>().ok(),
    };
    Ok(match n {
        Some(n) => (what, Some(n)),
        None => (t, None),
    })
}

/// Where the history file is: `$XDG_STATE_HOME/wedge/history`, else
/// `~/.local/state/wedge/history` (the XDG base directory spec's state
/// directory: history is state, not configuration or cache). `None`
/// without either variable.
pub fn history_path(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    // The spec ignores a relative XDG_STATE_HOME.
    match (xdg_state_home, home) {
        (Some(x), _) if x.starts_with('/') => Some(PathBuf::from(x).join("wedge/history")),
        (_, Some(h)) if h.starts_with('/') => {
            Some(PathBuf::from(h).join(".local/state/wedge/history"))
        }
        _ => None,
    }
}

/// How many lines the history keeps.
const HISTORY_LINES: usize = 1000;

/// Runs a session: on a terminal a line editor (rustyline) with history
/// and tab completion; otherwise lines read one by one from `input` with
/// no editing and no prompt (a script piped in), and no history written.
/// Output goes to `out`, each failed command's message to `err`. Returns
/// how many commands failed.
pub fn run(
    shell: &mut Shell<'_>,
    input: &mut dyn BufRead,
    interactive: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<usize, String> {
    if interactive {
        return run_editor(shell, out, err);
    }
    let mut failed = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Bounded: a line longer than MAX_LINE is refused, and the rest of
        // it skipped, rather than held in memory whole.
        let n = Read::take(&mut *input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading commands: {e}"))?;
        if n == 0 {
            return Ok(failed);
        }
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            let mut skip = Vec::new();
            while Read::take(&mut *input, MAX_LINE as u64)
                .read_until(b'\n', &mut skip)
                .map_err(|e| format!("reading commands: {e}"))?
                > 0
                && !skip.ends_with(b"\n")
            {
                skip.clear();
            }
            failed += 1;
            writeln!(err, "error: a line longer than {MAX_LINE} bytes, skipped")
                .map_err(|e| e.to_string())?;
            continue;
        }
        let line = String::from_utf8_lossy(&buf);
        if !step(shell.run_line(&line), out, err, &mut failed)? {
            return Ok(failed);
        }
    }
}

/// Prints a step's output; `false` when the session ends.
fn step(
    s: Step,
    out: &mut dyn Write,
    err: &mut dyn Write,
    failed: &mut usize,
) -> Result<bool, String> {
    let w = |e: std::io::Error| format!("writing output: {e}");
    match s {
        Step::Quit => return Ok(false),
        Step::Output(o) => {
            out.write_all(o.as_bytes()).map_err(w)?;
            out.flush().map_err(w)?;
        }
        Step::Error(e) => {
            *failed += 1;
            out.flush().map_err(w)?;
            writeln!(err, "error: {e}").map_err(w)?;
            err.flush().map_err(w)?;
        }
    }
    Ok(true)
}

/// The line editor's helper: completion from [`Completer`], nothing else.
struct EditHelper<'a>(Completer<'a>);

impl rustyline::completion::Completer for EditHelper<'_> {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.0.complete(line, pos))
    }
}
impl rustyline::hint::Hinter for EditHelper<'_> {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for EditHelper<'_> {}
impl rustyline::validate::Validator for EditHelper<'_> {}
impl rustyline::Helper for EditHelper<'_> {}

fn run_editor(
    shell: &mut Shell<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<usize, String> {
    use rustyline::error::ReadlineError;
    use rustyline::history::FileHistory;
    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_LINES)
        .map_err(|e| e.to_string())?
        .auto_add_history(true)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut ed: rustyline::Editor<EditHelper<'_>, FileHistory> =
        rustyline::Editor::with_config(config).map_err(|e| format!("terminal: {e}"))?;
    ed.set_helper(Some(EditHelper(shell.completer())));
    let mut hist = history_path(
        std::env::var("XDG_STATE_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
    );
    if let Some(p) = &hist {
        // A missing file is a first session; any other failure is said
        // once and the session goes on without history.
        let ready = match p.parent().map(std::fs::create_dir_all) {
            Some(Err(e)) => Err(e.to_string()),
            _ if p.exists() => ed.load_history(p).map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        if let Err(e) = ready {
            let _ = writeln!(err, "note: no history ({}: {e})", p.display());
            hist = None;
        }
    }
    let mut failed = 0;
    let _ = writeln!(
        out,
        "wedge shell: help lists the commands, tab completes, quit or Ctrl-D ends"
    );
    loop {
        match ed.readline("wedge> ") {
            Ok(line) => {
                // Each line is appended as it is run (a session killed
                // keeps what it ran; two sessions at once both keep theirs).
                if let Some(p) = &hist {
                    if let Err(e) = ed.append_history(p) {
                        let _ = writeln!(err, "note: history not saved to {}: {e}", p.display());
                        hist = None;
                    }
                }
                if !step(shell.run_line(&line), out, err, &mut failed)? {
                    break;
                }
            }
            // Ctrl-C drops the line being typed, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("terminal: {e}")),
        }
    }
    Ok(failed)
}

/// The most candidates one completion offers: a bare prefix of a busy
/// name space (`__`) matches tens of thousands of kallsyms symbols.
pub const MAX_CANDIDATES: usize = 500;

/// Sorted names to complete from, built on the first completion.
struct Index {
    symbols: Vec<String>,
    per_cpu: Vec<String>,
    structs: Vec<String>,
    unions: Vec<String>,
    enums: Vec<String>,
    typedefs: Vec<String>,
    /// Enumerators (`PIDTYPE_PID`): constants an expression takes.
    consts: Vec<String>,
}

impl Index {
    fn build(mem: &dyn KernelMemory) -> Index {
        let mut symbols = Vec::new();
        mem.for_each_symbol(&mut |n| symbols.push(n.to_string()));
        let btf = mem.btf();
        let of = |kinds: &[Kind]| {
            let mut v: Vec<String> = btf
                .names()
                .filter(|(n, ids)| {
                    !n.is_empty()
                        && ids
                            .iter()
                            .any(|&i| btf.kind(i).is_some_and(|k| kinds.contains(&k)))
                })
                .map(|(n, _)| n.to_string())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let per_cpu = of(&[Kind::Var]);
        symbols.extend(per_cpu.iter().cloned());
        symbols.sort_unstable();
        symbols.dedup();
        let mut consts: Vec<String> = crate::eval::enumerator_names(btf)
            .into_iter()
            .map(str::to_string)
            .collect();
        consts.sort_unstable();
        consts.dedup();
        Index {
            consts,
            symbols,
            per_cpu,
            structs: of(&[Kind::Struct]),
            unions: of(&[Kind::Union]),
            enums: of(&[Kind::Enum, Kind::Enum64]),
            typedefs: of(&[Kind::Typedef]),
        }
    }
}

/// The names of a sorted list that start with `prefix`.
fn with_prefix<'v>(sorted: &'v [String], prefix: &str) -> &'v [String] {
    let lo = sorted.partition_point(|s| s.as_str() < prefix);
    let n = sorted[lo..].partition_point(|s| s.starts_with(prefix));
    &sorted[lo..lo + n]
}

/// Tab completion over one memory source.
pub struct Completer<'a> {
    mem: &'a dyn KernelMemory,
    commands: Vec<&'static str>,
    index: OnceCell<Index>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

impl Completer<'_> {
    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(self.mem))
    }

    /// Candidates for the word that ends at `pos` in `line`: where that
    /// word starts and what may replace it, sorted. The word is a command
    /// name at the start of the line; after it, a member after `.`/`->`
    /// (of the type of the expression before it), a struct, union or enum
    /// name after that keyword, a per-CPU variable as `per_cpu`'s first
    /// argument, else a symbol, a helper, a typedef or a keyword.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let pos = (0..=pos.min(line.len()))
            .rev()
            .find(|&p| line.is_char_boundary(p))
            .unwrap_or(0);
        let b = line.as_bytes();
        let mut start = pos;
        while start > 0 && is_ident(b[start - 1]) {
            start -= 1;
        }
        let word = &line[start..pos];
        let before = &line[..start];
        let cmd_end = line.len() - line.trim_start().len()
            + line.trim_start().find(char::is_whitespace).unwrap_or(0);
        let command = line[..cmd_end].trim();
        let args = &line[cmd_end.min(start)..start];
        // The command word (nothing but blanks before it), or help's topic.
        if before.trim().is_empty() || command == "help" {
            let c = self
                .commands
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| c.to_string())
                .collect();
            return (start, c);
        }
        // A member: `expr.` or `expr->`.
        let base = args
            .strip_suffix("->")
            .or_else(|| args.strip_suffix('.'))
            .filter(|_| !word.starts_with(|c: char| c.is_ascii_digit()));
        if let Some(base) = base {
            let from = postfix_start(base);
            return (start, self.members(&base[from..], word));
        }
        let ix = self.index();
        let trimmed = args.trim_end();
        // `struct task_` (the keyword, a blank, the name so far).
        let keyword = |k: &str| {
            args.len() > trimmed.len()
                && trimmed
                    .strip_suffix(k)
                    .is_some_and(|r| r.bytes().last().is_none_or(|c| !is_ident(c)))
        };
        for (k, names) in [
            ("struct", &ix.structs),
            ("union", &ix.unions),
            ("enum", &ix.enums),
        ] {
            if keyword(k) {
                return (start, capped(with_prefix(names, word)));
            }
        }
        if in_first_arg_of(args, "per_cpu") {
            return (start, capped(with_prefix(&ix.per_cpu, word)));
        }
        // Anything else: a name an expression (or sym/rd/dis) takes.
        let mut c: Vec<String> = capped(with_prefix(&ix.symbols, word));
        c.extend(capped(with_prefix(&ix.typedefs, word)));
        c.extend(capped(with_prefix(&ix.consts, word)));
        for h in HELPERS {
            if h.starts_with(word) {
                let call = !matches!(h, "crashed_cpu" | "crashed_task" | "NULL");
                c.push(if call { format!("{h}(") } else { h.to_string() });
            }
        }
        for k in ["struct ", "union ", "enum "] {
            if k.starts_with(word) && !word.is_empty() {
                c.push(k.to_string());
            }
        }
        c.sort_unstable();
        c.dedup();
        (start, capped(&c))
    }

    /// The members of the type of `base` whose names start with `word`.
    /// The type comes from evaluating `base` over memory that reads as
    /// zeros (no page is read, a NULL pointer on the way costs nothing);
    /// what that cannot type (an index into a list walked) is evaluated
    /// over the real memory, bounded as every evaluation is.
    fn members(&self, base: &str, word: &str) -> Vec<String> {
        let zeros = TypeOnly(self.mem);
        let ty = Evaluator::new(&zeros)
            .eval_str(base)
            .map(|v| v.ty)
            .or_else(|_| Evaluator::new(self.mem).eval_str(base).map(|v| v.ty));
        let Ok(ty) = ty else {
            return Vec::new();
        };
        let btf = self.mem.btf();
        let rec = match types::shape(btf, &ty) {
            Shape::Ptr(to) => types::shape(btf, &to),
            s => s,
        };
        let Shape::Record { id, .. } = rec else {
            return Vec::new();
        };
        let mut names: Vec<String> = types::member_names(btf, id)
            .into_iter()
            .filter(|n| n.starts_with(word))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// At most [`MAX_CANDIDATES`] of a sorted range; when cut, the range's
/// last name is kept so the common prefix the editor inserts is the whole
/// range's (the common prefix of a sorted list is its first and last's).
fn capped(range: &[String]) -> Vec<String> {
    if range.len() <= MAX_CANDIDATES {
        return range.to_vec();
    }
    let mut v = range[..MAX_CANDIDATES - 1].to_vec();
    if let Some(last) = range.last() {
        v.push(last.clone());
    }
    v
}

/// Where the postfix expression that ends `s` starts: `a->b.c[1]`,
/// `per_cpu(runqueues, 0).curr`, `((struct task_struct *)p)`. It stops at
/// an operator, a blank, an unclosed `(` or `,` outside brackets.
fn postfix_start(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = b.len();
    loop {
        // One operand: a bracketed group (with the name of a call before
        // its parentheses) or a name or number.
        let mut moved = false;
        while i > 0 && (b[i - 1] == b']' || b[i - 1] == b')') {
            let Some(open) = matching_open(b, i - 1) else {
                return i;
            };
            let paren = b[i - 1] == b')';
            i = open;
            moved = true;
            if paren {
                while i > 0 && is_ident(b[i - 1]) {
                    i -= 1;
                }
                break;
            }
        }
        if !moved {
            let end = i;
            while i > 0 && is_ident(b[i - 1]) {
                i -= 1;
            }
            if i == end {
                return i;
            }
        } else if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b']') {
            // `a[1]`: the indexed name or group before the brackets.
            continue;
        }
        // Joined to what comes before by `.` or `->`?
        if i > 0 && b[i - 1] == b'.' {
            i -= 1;
        } else if i > 1 && b[i - 1] == b'>' && b[i - 2] == b'-' {
            i -= 2;
        } else {
            return i;
        }
    }
}

/// The `(` or `[` that `b[close]` closes.
fn matching_open(b: &[u8], close: usize) -> Option<usize> {
    let mut depth = 0i32;
    for j in (0..=close).rev() {
        match b[j] {
            b')' | b']' => depth += 1,
            b'(' | b'[' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the text ends inside the first argument of a call of `func`.
fn in_first_arg_of(s: &str, func: &str) -> bool {
    let b = s.as_bytes();
    let mut depth = 0i32;
    for j in (0..b.len()).rev() {
        match b[j] {
            b')' | b']' => depth += 1,
            b'[' => depth -= 1,
            b',' if depth == 0 => return false,
            b'(' => {
                if depth == 0 {
                    let name = s[..j].trim_end();
                    let n = name.len() - name.trim_end_matches(is_ident_char).len();
                    return &name[name.len() - n..] == func;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    false
}

/// A memory source whose every read gives zeros: evaluating an expression
/// over it gives the expression's type without reading the dump (for
/// completing the members of what has been typed so far).
struct TypeOnly<'m>(&'m dyn KernelMemory);

impl KernelMemory for TypeOnly<'_> {
    fn read(&self, _addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        buf.fill(0);
        Ok(())
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        self.0.symbol(name)
    }
    fn symbolize(&self, addr: u64) -> Option<String> {
        self.0.symbolize(addr)
    }
    fn symbol_at(&self, addr: u64) -> Option<SymbolAt> {
        self.0.symbol_at(addr)
    }
    fn symbol_kind(&self, name: &str) -> Option<char> {
        self.0.symbol_kind(name)
    }
    fn for_each_symbol(&self, f: &mut dyn FnMut(&str)) {
        self.0.for_each_symbol(f)
    }
    fn per_cpu_offset(&self, cpu: u32) -> Result<u64, String> {
        self.0.per_cpu_offset(cpu)
    }
    fn btf(&self) -> &Btf {
        self.0.btf()
    }
    fn crashed_cpu(&self) -> Option<u32> {
        self.0.crashed_cpu()
    }
    fn crashed_task(&self) -> Option<u64> {
        self.0.crashed_task()
    }
    fn task(&self, pid: i64) -> Option<u64> {
        self.0.task(pid)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_postfix_expression_before_a_member() {
        fn base(s: &str) -> &str {
            &s[postfix_start(s)..]
        }
        assert_eq!(base("init_task.tasks"), "init_task.tasks");
        assert_eq!(base("1 + task(1)"), "task(1)");
        assert_eq!(
            base("per_cpu(runqueues, 0).curr"),
            "per_cpu(runqueues, 0).curr"
        );
        assert_eq!(
            base("((struct task_struct *)p)"),
            "((struct task_struct *)p)"
        );
        assert_eq!(base("x == a->b[i + 1].c"), "a->b[i + 1].c");
        assert_eq!(base("f(a, b->c"), "b->c");
        assert_eq!(base("*p"), "p");
        // Unbalanced: nothing to complete.
        assert_eq!(base("a)"), "");
        assert_eq!(base(""), "");
    }

    #[test]
    fn arguments_and_counts() {
        let a = Args::parse("--json --depth 2 init_task", true).unwrap();
        assert_eq!(
            (a.json, a.depth, a.text.as_str()),
            (true, Some(2), "init_task")
        );
        let a = Args::parse("--depth=1 x --json", true).unwrap();
        assert_eq!((a.json, a.depth, a.text.as_str()), (true, Some(1), "x"));
        let a = Args::parse("--depth 2 x", false).unwrap();
        assert_eq!((a.depth, a.text.as_str()), (None, "--depth 2 x"));
        let a = Args::parse("a--json", true).unwrap();
        assert_eq!((a.json, a.text.as_str()), (false, "a--json"));
        assert_eq!(with_count("init_task 4").unwrap(), ("init_task", Some(4)));
        assert_eq!(
            with_count("&init_task 0x10").unwrap(),
            ("&init_task", Some(16))
        );
        assert_eq!(with_count("task(1)->mm").unwrap(), ("task(1)->mm", None));
        assert_eq!(with_count("a + b").unwrap(), ("a + b", None));
    }

    #[test]
    fn capped_keeps_the_common_prefix() {
        let names: Vec<String> = (0..2000).map(|i| format!("sym_{i:05}")).collect();
        let c = capped(&names);
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert_eq!(c.last(), names.last());
        assert_eq!(with_prefix(&names, "sym_0199").len(), 10);
        assert!(with_prefix(&names, "x").is_empty());
    }

    #[test]
    fn history_lives_in_the_state_directory() {
        assert_eq!(
            history_path(Some("/s"), Some("/h")),
            Some(PathBuf::from("/s/wedge/history"))
        );
        assert_eq!(
            history_path(None, Some("/h")),
            Some(PathBuf::from("/h/.local/state/wedge/history"))
        );
        assert_eq!(
            history_path(Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.local/state/wedge/history"))
        );
        assert_eq!(history_path(None, None), None);
    }
}
