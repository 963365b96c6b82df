//! The streaming state machine that assembles lines into events.
//!
//! State is bounded: at most [`MAX_OPEN`] reports are assembled at once
//! (one per printk caller id when the log has them, so interleaved CPUs do
//! not mix), each report is capped in frames, traces, registers and
//! modules, and finished events wait in a short queue only until every
//! report that started before them is finished, so output stays in input
//! order.

use std::collections::VecDeque;

use serde::Serialize;

use crate::classify::{classify, mask_names, Identity, Line};
use crate::code::parse_code;
use crate::decode::decode_taint;
use crate::event::{Detail, Event, LabeledTrace, LineRange, ProcStack, ProcStatus, Timestamp};
use crate::frame::{Frame, FrameLine};
use crate::prefix::{self, Prefix};
use crate::ps::{PsContext, PsOutcome};
use crate::util::bounded;

/// Reports assembled at the same time.
const MAX_OPEN: usize = 16;
/// Frames kept per trace.
const MAX_FRAMES: usize = 256;
/// Extra traces kept per report.
const MAX_OTHER_TRACES: usize = 8;
/// Registers kept per report.
const MAX_REGISTERS: usize = 96;
/// A report not touched for this many lines is finished.
const STALE_LINES: u64 = 256;
/// Fragments listed in the summary (more are only counted).
const MAX_FRAGMENTS: usize = 10_000;
/// Longest line inspected, in bytes; the rest of a longer line is ignored.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// A run of lines that looked like part of a report but could not be
/// attached to one (e.g. a call trace whose header is not in the excerpt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragment {
    /// Lines covered.
    pub lines: LineRange,
    /// Why it was not used.
    pub reason: &'static str,
}

/// How many inspected lines had each kind of prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FormatCounts {
    /// `[  12.345678]`-style dmesg stamps (also `-T`, `-H`).
    pub dmesg: u64,
    /// syslog / journalctl short headers.
    pub syslog: u64,
    /// `/dev/kmsg` records.
    pub kmsg: u64,
    /// `journalctl -o json` lines.
    pub journal_json: u64,
    /// `journalctl -o export` entries.
    pub journal_export: u64,
    /// No log prefix (pasted reports, console captures without stamps).
    pub bare: u64,
}

/// What the parser saw besides events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Physical lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Events produced.
    pub events: u64,
    /// Lines that were inspected in full (the rest were skipped by the
    /// keyword prefilter).
    pub inspected_lines: u64,
    /// Prefix forms among inspected lines.
    pub formats: FormatCounts,
    /// Unusable report fragments, in input order.
    pub fragments: Vec<Fragment>,
    /// Fragments beyond the listed ones.
    pub fragments_dropped: u64,
    /// Lines longer than the inspection limit (64 KiB); only their start
    /// was used.
    pub overlong_lines: u64,
    /// Syslog lines from other programs (ignored).
    pub non_kernel_lines: u64,
    /// Times the seconds-since-boot stamp went back by more than a second
    /// without a reboot banner: a log reversed (`journalctl -r`), merged
    /// from several boots, or reordered by a collector.
    pub timestamps_backwards: u64,
}

impl FormatCounts {
    /// The prefix form most inspected lines had: `dmesg`, `syslog`, `kmsg`,
    /// `journal_json`, `journal_export` or `bare` (`None` before any line).
    pub fn dominant(&self) -> Option<&'static str> {
        [
            ("dmesg", self.dmesg),
            ("syslog", self.syslog),
            ("kmsg", self.kmsg),
            ("journal_json", self.journal_json),
            ("journal_export", self.journal_export),
            ("bare", self.bare),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name)
    }
}

impl Summary {
    /// Adds the summary of another file read in the same run.  The listed
    /// fragments keep the per-file bound ([`MAX_FRAGMENTS`] in all), the
    /// rest are counted; the formats are those of the last file, as shown
    /// in the count line.
    pub fn merge(&mut self, other: &Summary) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        self.inspected_lines += other.inspected_lines;
        let room = MAX_FRAGMENTS.saturating_sub(self.fragments.len());
        self.fragments
            .extend(other.fragments.iter().take(room).cloned());
        self.fragments_dropped +=
            other.fragments_dropped + other.fragments.len().saturating_sub(room) as u64;
        self.overlong_lines += other.overlong_lines;
        self.non_kernel_lines += other.non_kernel_lines;
        self.timestamps_backwards += other.timestamps_backwards;
        self.formats = other.formats.clone();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Main,
    Other(usize),
}

#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) id: u64,
    pub(crate) ev: Event,
    pub(crate) caller: Option<String>,
    pub(crate) last_line: u64,
    pub(crate) idle: u32,
    pub(crate) max_idle: u32,
    pub(crate) trace_active: bool,
    slot: Slot,
    pub(crate) last_frame_line: u64,
    pub(crate) arm_last_caller: Option<Frame>,
    pub(crate) pending_label: Option<String>,
    pub(crate) explicit_end: bool,
    pub(crate) linked_trap: Option<u64>,
    pub(crate) code_ip: Option<u64>,
    pub(crate) bits32: bool,
    pub(crate) has_task_dump: bool,
    /// Extra traces not kept because of MAX_OTHER_TRACES.
    pub(crate) dropping_trace: bool,
}

#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) id: u64,
    pub(crate) hold: bool,
    pub(crate) ev: Event,
}

#[derive(Debug)]
struct StatusBuilder {
    ev: Event,
}

#[derive(Debug, Default)]
struct ExportEntry {
    message: Option<String>,
    realtime_usec: Option<i64>,
    mono_usec: Option<u64>,
    kernel: Option<bool>,
    first_line: u64,
    binary_message_next: bool,
}

/// Line-at-a-time kernel-log parser with bounded state.
///
/// Feed lines with [`Parser::push_line`], take finished events with
/// [`Parser::next_event`], and call [`Parser::finish`] at the end of input.
/// [`crate::parse_reader`] wraps this with a faster chunked scanner.
#[derive(Debug)]
pub struct Parser {
    pub(crate) line_no: u64,
    pub(crate) open: Vec<Open>,
    pub(crate) ready: VecDeque<Ready>,
    out: VecDeque<Event>,
    next_id: u64,
    frag: Option<Fragment>,
    pub(crate) linux_version: Option<String>,
    cut_here: Option<(u64, Option<String>)>,
    ps: Option<PsContext>,
    status: Option<StatusBuilder>,
    pid_ctx: Option<(u32, u64)>,
    /// Line of the last SysRq task-dump activity (`Show Blocked State`):
    /// its task lines carry no keyword, so every line is inspected while
    /// the dump goes on.
    pub(crate) sysrq: Option<u64>,
    kmsg_mode: bool,
    export: Option<ExportEntry>,
    last_mono: Option<f64>,
    summary: Summary,
    /// Events held in `ready` for a later line that completes them (a
    /// filesystem error waits for the `Remounting filesystem read-only` of
    /// the same filesystem): the event's id and the last line it waits for.
    holds: Vec<(u64, u64)>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn new_event(detail: Detail, p: &Prefix<'_>, line: u64) -> Event {
    let timestamp = if p.monotonic.is_some() || p.wall.is_some() {
        Some(Timestamp {
            monotonic: p.monotonic,
            wall: p.wall.map(|w| bounded(w, 64)),
            wall_epoch: p.wall_epoch,
        })
    } else {
        None
    };
    Event {
        detail,
        task: None,
        pid: None,
        cpu: None,
        kernel_version: None,
        tainted: None,
        taint_flags: Vec::new(),
        hardware: None,
        workqueue: None,
        rip: None,
        rip_function: None,
        rip_module: None,
        pc_function: None,
        lr_function: None,
        panic: None,
        panic_message: None,
        top_frames: Vec::new(),
        call_trace: Vec::new(),
        other_traces: Vec::new(),
        registers: Vec::new(),
        code: None,
        modules: Vec::new(),
        lines: LineRange {
            first: line,
            last: line,
        },
        timestamp,
        seq: p.seq,
        level: p.level,
        caller: p.caller.map(|c| bounded(c, 16)),
        notes: Vec::new(),
        meaning: String::new(),
    }
}

/// Kinds whose `CPU: N PID: P Comm: C` line names the task the report is
/// about (for hung tasks and RCU stalls such lines belong to backtraces of
/// other CPUs).
fn identity_applies(d: &Detail) -> bool {
    !matches!(
        d,
        Detail::HungTask(_) | Detail::RcuStall(_) | Detail::OomKill(_) | Detail::OomReaped(_)
    )
}

fn rip_applies(d: &Detail) -> bool {
    !matches!(
        d,
        Detail::HungTask(_) | Detail::OomInvoked(_) | Detail::TaskDump(_) | Detail::ProcStack(_)
    )
}

fn is_user_space(ev: &Event) -> bool {
    match &ev.detail {
        Detail::GpfTrap(_) | Detail::Trap(_) | Detail::Segfault(_) => true,
        Detail::FatalSignal(_) => ev.rip.as_deref().is_none_or(|r| r.starts_with("0x")),
        _ => false,
    }
}

/// Fill derived fields: taint meanings, top frames, notes, meaning.
/// Idempotent, so a patched event can be finalized again.
pub(crate) fn finalize(ev: &mut Event, linux_version: Option<&String>) {
    if ev.kernel_version.is_none() {
        ev.kernel_version = linux_version.cloned();
    }
    ev.taint_flags = ev.tainted.as_deref().map(decode_taint).unwrap_or_default();
    ev.top_frames = ev
        .call_trace
        .iter()
        .take(3)
        .map(|f| f.function.clone())
        .collect();
    ev.notes.clear();
    let hlt = ev
        .code
        .as_ref()
        .and_then(|c| c.faulting_instruction.as_deref())
        .is_some_and(|i| i == "hlt");
    if hlt && is_user_space(ev) {
        ev.notes.push(
            "the faulting instruction is hlt, which user space may not execute: glibc's abort() \
             fell through to its last resort (ABORT_INSTRUCTION) because SIGABRT was discarded \
             — typically the process was PID 1 of a pid namespace (a container's init), which \
             ignores signals it has no handler for"
                .to_string(),
        );
    } else if let Detail::GpfTrap(t) = &ev.detail {
        let in_libc = t
            .mapping
            .as_ref()
            .is_some_and(|m| m.lib.starts_with("libc"));
        if in_libc && ev.code.is_none() && t.error == "0" {
            ev.notes.push(
                "a #GP with error 0 inside libc is also what glibc's abort() produces when it \
                 executes hlt because SIGABRT was ignored (PID 1 of a pid namespace); the Code: \
                 bytes would show hlt"
                    .to_string(),
            );
        }
    }
    if let Detail::HungTask(h) = &ev.detail {
        if h.future_reports_suppressed {
            ev.notes.push(
                "later hung tasks are not reported (kernel.hung_task_warnings reached 0)"
                    .to_string(),
            );
        }
    }
    ev.meaning = ev.meaning();
}

impl Parser {
    /// A parser at line 0.
    pub fn new() -> Parser {
        Parser {
            line_no: 0,
            open: Vec::new(),
            ready: VecDeque::new(),
            out: VecDeque::new(),
            next_id: 1,
            frag: None,
            linux_version: None,
            cut_here: None,
            ps: None,
            status: None,
            pid_ctx: None,
            sysrq: None,
            kmsg_mode: false,
            export: None,
            last_mono: None,
            summary: Summary::default(),
            holds: Vec::new(),
        }
    }

    /// Statistics and unparsed fragments so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Take the next finished event, in input order.
    pub fn next_event(&mut self) -> Option<Event> {
        self.out.pop_front()
    }

    pub(crate) fn has_events(&self) -> bool {
        !self.out.is_empty()
    }

    /// True when some report, listing or journal entry is being assembled,
    /// so every line must be looked at (the prefilter may not skip lines).
    pub(crate) fn wants_every_line(&self) -> bool {
        !self.open.is_empty()
            || self.ps.is_some()
            || self.status.is_some()
            || self.export.is_some()
            || self.frag.is_some()
            || self
                .pid_ctx
                .is_some_and(|(_, l)| self.line_no.saturating_sub(l) < 4)
            || self
                .sysrq
                .is_some_and(|l| self.line_no.saturating_sub(l) < 16)
            || !self.holds.is_empty()
    }

    /// Account for `n` lines (`bytes` bytes) that the prefilter proved
    /// contain no keyword.
    pub(crate) fn skip_lines(&mut self, n: u64, bytes: u64) {
        self.line_no += n;
        self.summary.lines += n;
        self.summary.bytes += bytes;
    }

    /// Feed one line (without its newline).
    pub fn push_line(&mut self, line: &[u8]) {
        if !self.wants_every_line() && !crate::scan::maybe_interesting(line) {
            self.skip_lines(1, line.len() as u64 + 1);
            return;
        }
        self.push_line_unfiltered(line);
    }

    pub(crate) fn push_line_unfiltered(&mut self, line: &[u8]) {
        self.line_no += 1;
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64 + 1;
        self.summary.inspected_lines += 1;
        let mut line = line;
        if line.len() > MAX_LINE {
            self.summary.overlong_lines += 1;
            line = line.get(..MAX_LINE).unwrap_or(line);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        self.raw_line(&text);
        self.close_stale();
        self.expire_holds();
        self.release();
    }

    /// End of input: finish every report.
    pub fn finish(&mut self) {
        if let Some(e) = self.export.take() {
            self.flush_export(e);
        }
        self.finish_status();
        self.flush_frag();
        while let Some(o) = self.open.pop() {
            self.close_open(o, false);
        }
        for r in &mut self.ready {
            r.hold = false;
        }
        self.holds.clear();
        self.release();
    }

    fn raw_line(&mut self, text: &str) {
        // journalctl -o export: KEY=VALUE lines, blank line ends an entry.
        if self.export.is_some()
            || text.starts_with("__CURSOR=")
            || text.starts_with("__REALTIME_TIMESTAMP=")
        {
            self.export_line(text);
            return;
        }
        if text.starts_with('{') && text.contains("\"MESSAGE\"") && self.json_line(text) {
            return;
        }
        // /dev/kmsg dictionary continuation " SUBSYSTEM=usb".
        if self.kmsg_mode && text.starts_with(' ') {
            let t = text.trim_start();
            if let Some((k, _)) = t.split_once('=') {
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    return;
                }
            }
        }
        let p = prefix::strip(text);
        self.count_format(&p);
        self.logical(&p, 0);
    }

    fn count_format(&mut self, p: &Prefix<'_>) {
        let f = &mut self.summary.formats;
        if p.kmsg {
            self.kmsg_mode = true;
            f.kmsg += 1;
        } else if p.syslog {
            f.syslog += 1;
        } else if p.stamped {
            f.dmesg += 1;
        } else {
            f.bare += 1;
        }
        if let Some(m) = p.monotonic {
            if let Some(last) = self.last_mono {
                if m + 1.0 < last && m > 1.0 {
                    self.summary.timestamps_backwards += 1;
                }
            }
            self.last_mono = Some(m);
        }
    }

    fn json_line(&mut self, text: &str) -> bool {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        let field = |k: &str| -> Option<String> {
            match v.get(k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(a) => {
                    let bytes: Vec<u8> = a
                        .iter()
                        .filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                        .collect();
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let Some(msg) = field("MESSAGE") else {
            return false;
        };
        self.summary.formats.journal_json += 1;
        let kernel = field("_TRANSPORT")
            .map(|t| t == "kernel")
            .or_else(|| field("SYSLOG_IDENTIFIER").map(|t| t == "kernel"));
        let entry = ExportEntry {
            message: Some(msg),
            realtime_usec: field("__REALTIME_TIMESTAMP").and_then(|s| s.parse().ok()),
            mono_usec: field("_SOURCE_MONOTONIC_TIMESTAMP")
                .or_else(|| field("__MONOTONIC_TIMESTAMP"))
                .and_then(|s| s.parse().ok()),
            kernel,
            first_line: self.line_no,
            binary_message_next: false,
        };
        self.emit_journal_entry(entry);
        true
    }

    fn export_line(&mut self, text: &str) {
        let entry = self.export.get_or_insert_with(ExportEntry::default);
        if entry.first_line == 0 {
            entry.first_line = self.line_no;
        }
        if text.is_empty() {
            if let Some(e) = self.export.take() {
                self.flush_export(e);
            }
            return;
        }
        if entry.binary_message_next {
            // Binary field: 64-bit little-endian length, then the data.
            entry.binary_message_next = false;
            let data: String = text.chars().skip(8).take(MAX_LINE).collect();
            entry.message = Some(data);
            entry.first_line = self.line_no;
            return;
        }
        if text == "MESSAGE" {
            entry.binary_message_next = true;
            return;
        }
        let Some((k, v)) = text.split_once('=') else {
            return;
        };
        match k {
            "MESSAGE" => {
                entry.message = Some(bounded(v, MAX_LINE));
                entry.first_line = self.line_no;
            }
            "__REALTIME_TIMESTAMP" => entry.realtime_usec = v.parse().ok(),
            "_SOURCE_MONOTONIC_TIMESTAMP" => entry.mono_usec = v.parse().ok(),
            "__MONOTONIC_TIMESTAMP" if entry.mono_usec.is_none() => {
                entry.mono_usec = v.parse().ok();
            }
            "_TRANSPORT" => entry.kernel = Some(v == "kernel"),
            _ => {}
        }
    }

    fn flush_export(&mut self, e: ExportEntry) {
        if e.message.is_some() {
            self.summary.formats.journal_export += 1;
            self.emit_journal_entry(e);
        }
    }

    fn emit_journal_entry(&mut self, e: ExportEntry) {
        if e.kernel == Some(false) {
            self.summary.non_kernel_lines += 1;
            return;
        }
        let Some(msg) = e.message else { return };
        let wall = e.realtime_usec.map(crate::util::iso_from_usec);
        // Events of an export entry start at its MESSAGE line, not at the
        // blank line that ended the entry.
        let now = self.line_no;
        self.line_no = e.first_line.min(now);
        for part in msg.split('\n').take(64) {
            let mut p = prefix::strip(part);
            #[allow(clippy::cast_precision_loss)]
            if let Some(m) = e.mono_usec {
                p.monotonic = Some(m as f64 / 1e6);
            }
            if let Some(w) = &wall {
                p.wall = Some(w.as_str());
                p.wall_epoch = e.realtime_usec.map(|u| u.div_euclid(1_000_000));
            }
            p.stamped = true;
            self.logical(&p, 0);
        }
        self.line_no = now;
    }

    /// Route one kernel message.
    fn logical(&mut self, p: &Prefix<'_>, depth: u8) {
        if p.non_kernel {
            self.summary.non_kernel_lines += 1;
            return;
        }
        let body = p.body;
        if self.status_line(p) {
            return;
        }
        if p.stamped {
            // A ps listing is pasted text; a log line ends it.
            self.ps = None;
        } else {
            if let Some(ps) = &mut self.ps {
                match ps.row(body) {
                    PsOutcome::Event(detail, task, pid) => {
                        let mut ev = new_event(*detail, p, self.line_no);
                        ev.task = task;
                        ev.pid = pid;
                        self.push_single(ev);
                        return;
                    }
                    PsOutcome::Consumed => return,
                    PsOutcome::End => self.ps = None,
                }
            }
            if let Some(ctx) = crate::ps::PsContext::from_command(body) {
                self.ps = Some(ctx);
                return;
            }
            if let Some(ctx) = crate::ps::PsContext::from_header(body) {
                self.ps = Some(ctx);
                return;
            }
            if body.starts_with("PID") || body.contains("/proc/") {
                if let Some(pid) = crate::ps::pid_context(body) {
                    self.pid_ctx = Some((pid, self.line_no));
                }
            }
        }
        let line = classify(body);
        let rest = match &line {
            Line::Report(r) => r.fused_rest(),
            _ => None,
        };
        self.dispatch(line, p);
        if let Some(r) = rest {
            // A following log line fused onto this one (lost newline).
            if depth < 2 {
                let q = prefix::strip(&r);
                self.logical(&q, depth + 1);
            }
        }
    }

    pub(crate) fn cur(&self, caller: Option<&str>) -> Option<usize> {
        match caller {
            Some(c) => self
                .open
                .iter()
                .rposition(|o| o.caller.as_deref() == Some(c))
                .or_else(|| self.open.iter().rposition(|o| o.caller.is_none())),
            None => {
                if self.open.is_empty() {
                    None
                } else {
                    Some(self.open.len() - 1)
                }
            }
        }
    }

    pub(crate) fn close_cur(&mut self, caller: Option<&str>) {
        if let Some(i) = self.cur(caller) {
            let o = self.open.remove(i);
            self.close_open(o, false);
        }
    }

    pub(crate) fn open_event(&mut self, mut ev: Event, p: &Prefix<'_>, max_idle: u32) -> usize {
        self.flush_frag();
        if let Some((line, msg)) = self.cut_here.take() {
            if self.line_no.saturating_sub(line) <= 3 {
                ev.lines.first = line;
                if let (Detail::Warning(w), Some(m)) = (&mut ev.detail, msg) {
                    w.message = Some(m);
                }
            }
        }
        if self.open.len() >= MAX_OPEN {
            let o = self.open.remove(0);
            self.close_open(o, false);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open.push(Open {
            id,
            ev,
            caller: p.caller.map(str::to_string),
            last_line: self.line_no,
            idle: 0,
            max_idle,
            trace_active: false,
            slot: Slot::Main,
            last_frame_line: 0,
            arm_last_caller: None,
            pending_label: None,
            explicit_end: false,
            linked_trap: None,
            code_ip: None,
            bits32: false,
            has_task_dump: false,
            dropping_trace: false,
        });
        self.open.len() - 1
    }

    pub(crate) fn push_single(&mut self, mut ev: Event) {
        finalize(&mut ev, self.linux_version.as_ref());
        let id = self.next_id;
        self.next_id += 1;
        self.insert_ready(Ready {
            id,
            hold: false,
            ev,
        });
    }

    /// A finished event that a later line may still complete: it waits in
    /// `ready` (and so do the events after it) up to line `until`, or until
    /// [`Parser::patch_held`] completes it.  Holding keeps the output in
    /// log order without re-sorting emitted events.
    pub(crate) fn push_held(&mut self, mut ev: Event, until: u64) {
        finalize(&mut ev, self.linux_version.as_ref());
        let id = self.next_id;
        self.next_id += 1;
        self.insert_ready(Ready { id, hold: true, ev });
        self.holds.push((id, until));
    }

    /// Applies `f` to every held event; one it changed (returns true for)
    /// is finalized again, extended to this line and released.
    pub(crate) fn patch_held(&mut self, mut f: impl FnMut(&mut Event) -> bool) {
        let line = self.line_no;
        let mut done = Vec::new();
        for &(id, _) in &self.holds {
            if let Some(r) = self.ready.iter_mut().find(|r| r.id == id) {
                if f(&mut r.ev) {
                    r.ev.lines.last = r.ev.lines.last.max(line);
                    finalize(&mut r.ev, self.linux_version.as_ref());
                    r.hold = false;
                    done.push(id);
                }
            }
        }
        self.holds.retain(|(id, _)| !done.contains(id));
    }

    /// Releases every held event as it is (the input went quiet: a live
    /// follower waits for the next record, and the line that would
    /// complete a held event comes right after it when it comes at all).
    pub fn release_held(&mut self) {
        for (id, _) in self.holds.drain(..) {
            if let Some(r) = self.ready.iter_mut().find(|r| r.id == id) {
                r.hold = false;
            }
        }
        self.release();
    }

    fn expire_holds(&mut self) {
        if self.holds.is_empty() {
            return;
        }
        let now = self.line_no;
        let ready = &mut self.ready;
        self.holds.retain(|&(id, until)| {
            // Released already (the ready queue's cap) counts as expired.
            let Some(r) = ready.iter_mut().find(|r| r.id == id) else {
                return false;
            };
            if now >= until {
                r.hold = false;
                return false;
            }
            true
        });
    }

    fn insert_ready(&mut self, r: Ready) {
        let first = r.ev.lines.first;
        let pos = self
            .ready
            .iter()
            .rposition(|x| x.ev.lines.first <= first)
            .map_or(0, |i| i + 1);
        self.ready.insert(pos, r);
    }

    pub(crate) fn close_open(&mut self, mut o: Open, hold: bool) {
        finish_trace(&mut o);
        let link = o.linked_trap;
        finalize(&mut o.ev, self.linux_version.as_ref());
        if let Some(link) = link {
            let fatal = &o.ev;
            let mut copy_identity = None;
            if let Some(r) = self.ready.iter_mut().find(|r| r.id == link) {
                let sig = match &fatal.detail {
                    Detail::FatalSignal(f) => Some(f.signal),
                    _ => None,
                };
                if let Detail::GpfTrap(t) | Detail::Trap(t) = &mut r.ev.detail {
                    t.signal = sig;
                }
                if r.ev.code.is_none() {
                    r.ev.code = fatal.code.clone();
                }
                finalize(&mut r.ev, self.linux_version.as_ref());
                r.hold = false;
                copy_identity = Some((r.ev.task.clone(), r.ev.pid));
            }
            if let Some((task, pid)) = copy_identity {
                if o.ev.task.is_none() && o.ev.pid.is_none_or(|p| Some(p) == pid) {
                    o.ev.task = task;
                }
                if o.ev.pid.is_none() {
                    o.ev.pid = pid;
                }
                finalize(&mut o.ev, self.linux_version.as_ref());
            }
        }
        self.insert_ready(Ready {
            id: o.id,
            hold,
            ev: o.ev,
        });
    }

    fn close_stale(&mut self) {
        let now = self.line_no;
        let mut i = 0;
        while i < self.open.len() {
            let stale = self
                .open
                .get(i)
                .is_some_and(|o| now.saturating_sub(o.last_line) > STALE_LINES);
            if stale {
                let o = self.open.remove(i);
                self.close_open(o, false);
            } else {
                i += 1;
            }
        }
    }

    fn release(&mut self) {
        let min_open = self.open.iter().map(|o| o.ev.lines.first).min();
        while let Some(front) = self.ready.front() {
            if front.hold {
                break;
            }
            if min_open.is_some_and(|m| m < front.ev.lines.first) {
                break;
            }
            if let Some(r) = self.ready.pop_front() {
                self.summary.events += 1;
                self.out.push_back(r.ev);
            }
        }
        // Never let held events pile up: a hold only waits for the next report.
        if self.ready.len() > 4096 {
            if let Some(r) = self.ready.pop_front() {
                self.summary.events += 1;
                self.out.push_back(r.ev);
            }
        }
    }

    fn flush_frag(&mut self) {
        if let Some(f) = self.frag.take() {
            if self.summary.fragments.len() < MAX_FRAGMENTS {
                self.summary.fragments.push(f);
            } else {
                self.summary.fragments_dropped += 1;
            }
        }
    }

    pub(crate) fn fragment(&mut self, reason: &'static str) {
        let line = self.line_no;
        match &mut self.frag {
            Some(f) if f.lines.last + 1 >= line => {
                f.lines.last = line;
            }
            _ => {
                self.flush_frag();
                self.frag = Some(Fragment {
                    lines: LineRange {
                        first: line,
                        last: line,
                    },
                    reason,
                });
            }
        }
    }

    /// A line for the current report that it does not use.
    fn idle(&mut self, caller: Option<&str>) {
        if let Some(i) = self.cur(caller) {
            let close = self.open.get_mut(i).is_some_and(|o| {
                finish_trace(o);
                o.idle += 1;
                o.idle > o.max_idle || o.explicit_end
            });
            if close {
                let o = self.open.remove(i);
                self.close_open(o, false);
            }
        }
    }

    pub(crate) fn touch(&mut self, i: usize) -> Option<&mut Open> {
        let line = self.line_no;
        let o = self.open.get_mut(i)?;
        o.last_line = line;
        o.idle = 0;
        o.ev.lines.last = line;
        Some(o)
    }

    #[allow(clippy::too_many_lines)]
    fn dispatch(&mut self, line: Line, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = self.line_no;
        if !matches!(line, Line::Frame(_) | Line::TraceHeader | Line::Code(_)) {
            self.flush_frag();
        }
        match line {
            Line::Report(r) => r.assemble(self, p),
            Line::Single { detail, pid, task } => {
                let mut ev = new_event(detail, p, ln);
                ev.pid = pid;
                ev.task = task;
                self.push_single(ev);
            }
            Line::TraceHeader => {
                if let Some(i) = self.cur(caller) {
                    if let Some(o) = self.touch(i) {
                        finish_trace(o);
                        start_trace(o);
                    }
                } else {
                    self.fragment("call trace without a report header");
                }
            }
            Line::Frame(fl) => self.frame_line(fl, p),
            Line::Code(text) => {
                if let Some(i) = self.cur(caller) {
                    if let Some(o) = self.touch(i) {
                        finish_trace(o);
                        if o.ev.code.is_none() {
                            let bits = if o.bits32 { 32 } else { 64 };
                            o.ev.code = Some(parse_code(&text, o.code_ip, bits));
                        }
                        if matches!(
                            o.ev.detail,
                            Detail::Segfault(_) | Detail::GpfTrap(_) | Detail::Trap(_)
                        ) {
                            o.explicit_end = true;
                        }
                    }
                } else {
                    self.fragment("Code: line without a report header");
                }
            }
            Line::Identity(id) => self.identity(id, caller),
            Line::Hardware(h) => self.with_cur(caller, |o| {
                if o.ev.hardware.is_none() {
                    o.ev.hardware = Some(h);
                }
            }),
            Line::Modules(m) => self.with_cur(caller, |o| {
                if o.ev.modules.is_empty() {
                    o.ev.modules = m;
                }
            }),
            Line::Workqueue(w) => self.with_cur(caller, |o| {
                if o.ev.workqueue.is_none() {
                    o.ev.workqueue = Some(w);
                }
            }),
            Line::Rip(r) => self.with_cur(caller, |o| {
                if rip_applies(&o.ev.detail) && o.ev.rip.is_none() {
                    o.ev.rip = Some(r.rip);
                    o.ev.rip_function = r.function;
                    o.ev.rip_module = r.module;
                    if o.code_ip.is_none() {
                        o.code_ip = r.address;
                    }
                    o.bits32 |= r.bits32;
                }
                // Inside a trace RIP lines are exception frames: keep going.
            }),
            Line::Pc { function, lr } => self.with_cur(caller, |o| {
                let slot = if lr {
                    &mut o.ev.lr_function
                } else {
                    &mut o.ev.pc_function
                };
                if slot.is_none() {
                    *slot = function;
                }
            }),
            Line::Register(regs) => self.with_cur(caller, |o| {
                for (k, v) in regs {
                    if o.ev.registers.len() < MAX_REGISTERS
                        && !o.ev.registers.iter().any(|(x, _)| *x == k)
                    {
                        o.ev.registers.push((k, v));
                    }
                }
            }),
            Line::EndTrace => {
                if let Some(i) = self.cur(caller) {
                    let _ = self.touch(i);
                    let o = self.open.remove(i);
                    self.close_open(o, false);
                }
            }
            Line::CutHere => {
                self.cut_here = Some((ln, None));
            }
            Line::LinuxVersion(v) => {
                self.linux_version = Some(v);
            }
            Line::Related => {
                if let Some(i) = self.cur(caller) {
                    if let Some(o) = self.touch(i) {
                        finish_trace(o);
                    }
                }
            }
            Line::Blank => self.idle(caller),
            Line::Other => {
                if let Some((l, msg @ None)) = &mut self.cut_here {
                    if ln == *l + 1 {
                        *msg = Some(bounded(p.body, 256));
                    }
                }
                self.idle(caller);
            }
        }
    }

    pub(crate) fn with_cur(&mut self, caller: Option<&str>, f: impl FnOnce(&mut Open)) {
        if let Some(i) = self.cur(caller) {
            if let Some(o) = self.touch(i) {
                f(o);
            }
        }
    }

    fn identity(&mut self, id: Identity, caller: Option<&str>) {
        let Some(i) = self.cur(caller) else {
            return;
        };
        let Some(o) = self.touch(i) else {
            return;
        };
        finish_trace(o);
        let ev = &mut o.ev;
        if identity_applies(&ev.detail) {
            if ev.cpu.is_none() {
                ev.cpu = id.cpu;
            }
            if ev.pid.is_none() {
                ev.pid = id.pid;
            }
            if ev.task.is_none() && (id.pid.is_none() || id.pid == ev.pid) {
                ev.task = id.task;
            }
        }
        if ev.tainted.is_none() {
            ev.tainted = id.tainted;
        }
        if ev.kernel_version.is_none() {
            ev.kernel_version = id.release;
        }
    }

    fn frame_line(&mut self, fl: FrameLine, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = self.line_no;
        if self.sysrq.is_some() {
            self.sysrq = Some(ln);
        }
        let mut idx = self.cur(caller);
        if idx.is_none() {
            // A pasted /proc/PID/stack: unstamped "[<addr>] func+off/size"
            // lines, right after a line naming the pid or with hashed
            // addresses ("[<0>]", 4.x+).
            let hashed = fl
                .frame
                .as_ref()
                .and_then(|f| f.address.as_deref())
                .is_some_and(|a| a.trim_start_matches('0').is_empty());
            let ctx = self
                .pid_ctx
                .filter(|(_, l)| ln.saturating_sub(*l) <= 3)
                .map(|(pid, _)| pid);
            let bracketed = fl.frame.as_ref().is_some_and(|f| f.address.is_some());
            if !p.stamped && bracketed && (ctx.is_some() || hashed) && fl.arm_caller.is_none() {
                self.pid_ctx = None;
                let mut ev = new_event(Detail::ProcStack(ProcStack {}), p, ln);
                ev.pid = ctx;
                let i = self.open_event(ev, p, 0);
                if let Some(o) = self.open.get_mut(i) {
                    start_trace(o);
                }
                idx = Some(i);
            }
        }
        let Some(i) = idx else {
            self.fragment("call trace without a report header");
            return;
        };
        let Some(o) = self.touch(i) else { return };
        if !o.trace_active {
            let gap = ln.saturating_sub(o.last_frame_line);
            let resume = !o.ev.call_trace.is_empty()
                && o.pending_label.is_none()
                && matches!(o.slot, Slot::Main)
                && gap <= 3;
            if !resume {
                start_trace(o);
            } else {
                o.trace_active = true;
            }
        }
        o.last_frame_line = ln;
        if let Some(mut f) = fl.frame {
            if let Some(prev) = o.arm_last_caller.take() {
                // ARM: "(A) from (B+off)" then "(B) from (C+off)": B's
                // offset is known from the previous line.
                if prev.function == f.function && f.offset.is_none() {
                    f.offset = prev.offset;
                    f.size = prev.size;
                    if f.module.is_none() {
                        f.module = prev.module;
                    }
                }
            }
            push_frame(o, f);
            o.arm_last_caller = fl.arm_caller;
        } else if fl.marker.as_deref() == Some("</TASK>") {
            // End of the task's stack (5.x+ x86 marks it explicitly).
            finish_trace(o);
        }
    }

    /// `/proc/PID/status` lines.
    fn status_line(&mut self, p: &Prefix<'_>) -> bool {
        let body = p.body;
        let kv = body.split_once(':').filter(|(k, _)| {
            !k.is_empty()
                && k.len() <= 24
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if let Some(("Name", v)) = kv {
            if !p.stamped && self.cur(p.caller).is_none() {
                self.finish_status();
                let mut ev = new_event(Detail::ProcStatus(ProcStatus::default()), p, self.line_no);
                ev.task = Some(bounded(v.trim(), 64));
                self.status = Some(StatusBuilder { ev });
                return true;
            }
        }
        let Some(sb) = &mut self.status else {
            return false;
        };
        let Some((k, v)) = kv else {
            self.finish_status();
            return false;
        };
        let v = v.trim();
        sb.ev.lines.last = self.line_no;
        if let Detail::ProcStatus(st) = &mut sb.ev.detail {
            let num = |v: &str| {
                v.split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u32>().ok())
            };
            match k {
                "State" => st.state = v.get(..1).map(str::to_string),
                "Tgid" => st.tgid = num(v),
                "Pid" => sb.ev.pid = num(v),
                "PPid" => st.ppid = num(v),
                "TracerPid" => st.tracer_pid = num(v),
                "Threads" => st.threads = num(v),
                "SigQ" => st.sig_q = Some(bounded(v, 32)),
                "SigPnd" => st.sig_pnd = Some(bounded(v, 32)),
                "ShdPnd" => st.shd_pnd = Some(bounded(v, 32)),
                "SigBlk" => st.sig_blk = Some(bounded(v, 32)),
                "SigIgn" => st.sig_ign = Some(bounded(v, 32)),
                "SigCgt" => st.sig_cgt = Some(bounded(v, 32)),
                _ => {}
            }
        }
        true
    }

    fn finish_status(&mut self) {
        if let Some(mut sb) = self.status.take() {
            if let Detail::ProcStatus(st) = &mut sb.ev.detail {
                let mut pending = st.sig_pnd.as_deref().map(mask_names).unwrap_or_default();
                for s in st.shd_pnd.as_deref().map(mask_names).unwrap_or_default() {
                    if !pending.contains(&s) {
                        pending.push(s);
                    }
                }
                st.pending_signals = pending;
                st.blocked_signals = st.sig_blk.as_deref().map(mask_names).unwrap_or_default();
                st.ignored_signals = st.sig_ign.as_deref().map(mask_names).unwrap_or_default();
                st.caught_signals = st.sig_cgt.as_deref().map(mask_names).unwrap_or_default();
            }
            self.push_single(sb.ev);
        }
    }
}

pub(crate) fn start_trace(o: &mut Open) {
    finish_trace(o);
    o.trace_active = true;
    o.dropping_trace = false;
    if o.ev.call_trace.is_empty() && o.pending_label.is_none() {
        o.slot = Slot::Main;
    } else if o.ev.other_traces.len() < MAX_OTHER_TRACES {
        o.ev.other_traces.push(LabeledTrace {
            label: o.pending_label.take(),
            frames: Vec::new(),
        });
        o.slot = Slot::Other(o.ev.other_traces.len() - 1);
    } else {
        o.pending_label = None;
        o.dropping_trace = true;
    }
}

fn push_frame(o: &mut Open, f: Frame) {
    if o.dropping_trace {
        return;
    }
    let v = match o.slot {
        Slot::Main => &mut o.ev.call_trace,
        Slot::Other(k) => match o.ev.other_traces.get_mut(k) {
            Some(t) => &mut t.frames,
            None => return,
        },
    };
    if v.len() < MAX_FRAMES {
        v.push(f);
    }
}

/// End the current trace block; an ARM chain's last caller becomes its
/// outermost frame.
pub(crate) fn finish_trace(o: &mut Open) {
    if let Some(c) = o.arm_last_caller.take() {
        push_frame(o, c);
    }
    o.trace_active = false;
}
