//! `wedge log`: kernel-log events grouped by kind and identical stack,
//! counted, newest first, each with its meaning and the lines it rests on.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use wedge_klog::{Event, LineRange, LogRequest, LogSink, Summary};

/// What the live system says now about a task a log event names.
pub use wedge_model::TaskNow as LiveTask;

/// Most groups kept with an example each.  Memory is one newest event per
/// group, so a log of millions of distinct reports (crafted, or a stack
/// that differs every time) stays bounded; the events beyond still count.
pub const MAX_GROUPS: usize = 1000;

/// Line ranges listed per group (the newest ones).
const RANGES_SHOWN: usize = 4;

/// Task names listed per group.
const TASKS_SHOWN: usize = 6;

/// One kind + identical-stack group, aggregated as events stream by.
struct Group {
    signature: String,
    count: u64,
    /// The event with the highest last line (the one shown in full).
    newest: Event,
    /// `task:pid` of the first events, consecutive repeats collapsed.
    tasks: Vec<String>,
    /// Line ranges of the last events, oldest first.
    recent: VecDeque<LineRange>,
}

/// `wedge log`'s text view built while the log streams: per group a count,
/// the newest event, a few task names and line ranges, never the events
/// themselves, so memory does not grow with the log's length.
#[derive(Default)]
pub struct LogView {
    groups: Vec<Group>,
    index: HashMap<String, usize>,
    total: u64,
    by_kind: Vec<(&'static str, u64)>,
    /// Events whose group could not be kept (beyond [`MAX_GROUPS`]).
    ungrouped: u64,
}

impl LogView {
    /// An empty view.
    pub fn new() -> LogView {
        LogView::default()
    }

    /// Count `e` into its group.
    pub fn add(&mut self, e: Event) {
        self.total += 1;
        match self.by_kind.iter_mut().find(|(k, _)| *k == e.kind()) {
            Some(x) => x.1 += 1,
            None => self.by_kind.push((e.kind(), 1)),
        }
        let sig = e.signature();
        let i = match self.index.get(&sig) {
            Some(&i) => i,
            None if self.groups.len() >= MAX_GROUPS => {
                self.ungrouped += 1;
                return;
            }
            None => {
                self.index.insert(sig.clone(), self.groups.len());
                self.groups.push(Group {
                    signature: sig,
                    count: 0,
                    newest: e.clone(),
                    tasks: Vec::new(),
                    recent: VecDeque::new(),
                });
                self.groups.len() - 1
            }
        };
        let Some(g) = self.groups.get_mut(i) else {
            return;
        };
        g.count += 1;
        let w = who(&e);
        if !w.is_empty() && g.tasks.len() < TASKS_SHOWN && g.tasks.last() != Some(&w) {
            g.tasks.push(w);
        }
        if g.recent.len() == RANGES_SHOWN {
            g.recent.pop_front();
        }
        g.recent.push_back(e.lines);
        // Ties go to the later event, as max_by_key did.
        if e.lines.last >= g.newest.lines.last {
            g.newest = e;
        }
    }

    /// Events counted so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// No event counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Pids of the hung tasks the view will show: the only ones whose live
    /// state is worth reading.
    pub fn hung_task_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .iter()
            .filter(|g| g.newest.kind() == "hung_task")
            .filter_map(|g| g.newest.pid)
    }
}

fn when(e: &Event) -> String {
    match &e.timestamp {
        Some(t) => match (&t.wall, t.monotonic) {
            (Some(w), _) => w.clone(),
            (None, Some(m)) => format!("{m:.3}s after boot"),
            _ => format!("line {}", e.lines.first),
        },
        None => format!("line {}", e.lines.first),
    }
}

fn who(e: &Event) -> String {
    match (&e.task, e.pid) {
        (Some(t), Some(p)) => format!("{t}:{p}"),
        (Some(t), None) => t.clone(),
        (None, Some(p)) => format!("pid {p}"),
        (None, None) => String::new(),
    }
}

/// Renders events (in log order) for people.
pub fn render(events: &[Event], summary: &Summary, live: &HashMap<u32, LiveTask>) -> String {
    let mut view = LogView::new();
    for e in events {
        view.add(e.clone());
    }
    view.render(summary, live)
}

impl LogView {
    /// The text: a count line, then groups newest first (by the last input
    /// line of each group's newest event), then what was not understood.
    pub fn render(&self, summary: &Summary, live: &HashMap<u32, LiveTask>) -> String {
        let mut groups: Vec<&Group> = self.groups.iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.newest.lines.last));
        let mut by_kind = self.by_kind.clone();
        by_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} event(s) in {} line(s){}: {}",
            self.total,
            summary.lines,
            summary
                .formats
                .dominant()
                .map(|f| format!(" ({f} format)"))
                .unwrap_or_default(),
            by_kind
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for g in groups {
            render_group(&mut o, g, live);
        }
        if self.ungrouped > 0 {
            let _ = writeln!(
                o,
                "\n{} more event(s) with other stacks: counted above, not grouped (more than {MAX_GROUPS} distinct groups)",
                self.ungrouped
            );
        }
        render_summary(&mut o, summary);
        o
    }
}

fn render_group(o: &mut String, g: &Group, live: &HashMap<u32, LiveTask>) {
    let e = &g.newest;
    let _ = writeln!(
        o,
        "\n[{}] ×{}  newest at {}{}",
        e.kind(),
        g.count,
        when(e),
        if g.tasks.is_empty() {
            String::new()
        } else {
            format!("  — {}", g.tasks.join(", "))
        }
    );
    let _ = writeln!(o, "  {}", e.meaning);
    for n in e.notes.iter().filter(|n| !e.meaning.contains(n.as_str())) {
        let _ = writeln!(o, "  note: {n}");
    }
    if !e.call_trace.is_empty() {
        let frames: Vec<String> = e
            .call_trace
            .iter()
            .take(8)
            .map(|f| {
                let mut s = String::new();
                if f.unreliable {
                    s.push_str("? ");
                }
                s.push_str(&f.function);
                if let Some(m) = &f.module {
                    let _ = write!(s, " [{m}]");
                }
                s
            })
            .collect();
        let _ = writeln!(o, "  trace: {}", frames.join(" ← "));
    }
    if let Some(code) = &e.code {
        if let Some(fi) = &code.faulting_instruction {
            let _ = writeln!(o, "  faulting instruction: {fi}");
        }
        for i in code.around_fault(16) {
            let _ = writeln!(
                o,
                "   {} {:>+4}  {:<24} {}",
                if i.faulting { "→" } else { " " },
                i.offset,
                i.bytes,
                i.text
            );
        }
    }
    if let Some(pid) = e.pid {
        if let Some(t) = live.get(&pid) {
            if e.task
                .as_deref()
                .is_none_or(|c| c.starts_with(&t.comm) || t.comm.starts_with(c))
            {
                let _ = writeln!(
                    o,
                    "  now: {} ({pid}) is {} in {}  (live; `wedge why {pid}` for more)",
                    crate::printable(&t.comm),
                    t.state,
                    t.wchan.as_deref().unwrap_or("-")
                );
            }
        }
    }
    let ranges: Vec<String> = g
        .recent
        .iter()
        .rev()
        .map(|r| format!("{}-{}", r.first, r.last))
        .collect();
    let _ = writeln!(
        o,
        "  lines: {}{}   signature: {}",
        ranges.join(", "),
        if g.count > RANGES_SHOWN as u64 {
            " …"
        } else {
            ""
        },
        g.signature
    );
}

fn render_summary(o: &mut String, summary: &Summary) {
    if !summary.fragments.is_empty() {
        let _ = writeln!(
            o,
            "\nNot understood ({} fragment(s)):",
            summary.fragments.len() as u64 + summary.fragments_dropped
        );
        for f in summary.fragments.iter().take(10) {
            let _ = writeln!(
                o,
                "  lines {}-{}: {}",
                f.lines.first, f.lines.last, f.reason
            );
        }
    }
    if summary.overlong_lines > 0 {
        let _ = writeln!(
            o,
            "{} line(s) longer than 64 KiB were read only in part",
            summary.overlong_lines
        );
    }
    if summary.timestamps_backwards > 0 {
        let _ = writeln!(
            o,
            "timestamps went backwards {} time(s): the log is reversed, merged from several boots, or reordered",
            summary.timestamps_backwards
        );
    }
}

/// `wedge log`: reads what `req` names and writes its view to stdout
/// (`json`: one event a line); returns whether a kept event is serious
/// (exit status 1).
pub fn run(req: &LogRequest, json: bool) -> Result<bool, String> {
    let stdout = std::io::stdout();
    let mut out = Output::new(json, req.follow, std::io::BufWriter::new(stdout.lock()));
    wedge_klog::read_log(req, &mut out)
}

/// `wedge log`'s output as events stream by: one JSON line per event, or
/// the text of each event as it completes (`--follow`), or the grouped view
/// ([`LogView`]) at the end, which aggregates so that memory does not grow
/// with the log (a 210 MB file of hung-task reports is one group).
pub struct Output<W: std::io::Write> {
    json: bool,
    follow: bool,
    out: W,
    view: LogView,
    /// The reader went away (`wedge log --json | head`): stop writing, but
    /// read on for the exit status.
    broken_pipe: bool,
}

impl<W: std::io::Write> Output<W> {
    /// A view written to `out`.
    pub fn new(json: bool, follow: bool, out: W) -> Output<W> {
        Output {
            json,
            follow,
            out,
            view: LogView::new(),
            broken_pipe: false,
        }
    }

    /// The writer, for what was written.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: std::io::Write> LogSink for Output<W> {
    fn event(&mut self, e: Event) -> Result<(), String> {
        if self.json {
            let line = serde_json::to_string(&wedge_model::Versioned::new(&e))
                .map_err(|e| format!("encoding JSON: {e}"))?;
            if !self.broken_pipe {
                let follow = self.follow;
                if let Err(err) = writeln!(self.out, "{line}").and_then(|_| {
                    if follow {
                        self.out.flush()
                    } else {
                        Ok(())
                    }
                }) {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        self.broken_pipe = true;
                    } else {
                        return Err(format!("writing output: {err}"));
                    }
                }
            }
        } else if self.follow {
            let text = render(
                std::slice::from_ref(&e),
                &Default::default(),
                &HashMap::new(),
            );
            let _ = write!(self.out, "{text}");
            let _ = self.out.flush();
        } else {
            self.view.add(e);
        }
        Ok(())
    }

    fn warn(&mut self, message: &str) {
        eprintln!("wedge: {message}");
    }

    fn live_pids(&self) -> Vec<u32> {
        self.view.hung_task_pids().collect()
    }

    fn finish(&mut self, summary: &Summary, live: &HashMap<u32, LiveTask>) -> Result<(), String> {
        if !self.json && !self.follow {
            let text = self.view.render(summary, live);
            match self.out.write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("writing output: {e}"))
                }
                _ => {}
            }
        }
        let _ = self.out.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: u32, frame: &str) -> String {
        format!(
            "[{i}.0] INFO: task w:{i} blocked for more than 120 seconds.\n[{i}.0] Call Trace:\n[{i}.0]  {frame}+0x1/0x2\n"
        )
    }

    /// Streaming aggregation gives what grouping the whole list gave:
    /// counts, newest first, task names and the last line ranges.
    #[test]
    fn groups_as_it_streams() {
        let mut log = String::new();
        for i in 1..=7 {
            log.push_str(&report(i, if i % 3 == 0 { "b" } else { "a" }));
        }
        let parsed = wedge_klog::parse_str(&log);
        assert_eq!(parsed.events.len(), 7);
        let text = render(&parsed.events, &parsed.summary, &HashMap::new());
        let a = text.find("[hung_task] ×5").expect("group a");
        let b = text.find("[hung_task] ×2").expect("group b");
        assert!(b > a, "newest group (a, line 21) first: {text}");
        assert!(text.contains("lines: 19-21, 13-15, 10-12, 4-6 …"), "{text}");
        assert!(text.contains("lines: 16-18, 7-9   "), "{text}");
        assert!(text.contains("w:1, w:2, w:4, w:5, w:7"), "{text}");
    }

    /// Beyond MAX_GROUPS distinct stacks, events are counted, not kept.
    #[test]
    fn groups_are_bounded() {
        let mut view = LogView::new();
        let n = MAX_GROUPS as u32 + 5;
        for i in 1..=n {
            for e in wedge_klog::parse_str(&report(i, &format!("f{i}"))).events {
                view.add(e);
            }
        }
        assert_eq!(view.len(), u64::from(n));
        assert_eq!(view.groups.len(), MAX_GROUPS);
        let text = view.render(&Summary::default(), &HashMap::new());
        assert!(text.starts_with(&format!("{n} event(s)")), "{text}");
        assert!(text.contains("5 more event(s) with other stacks"), "{text}");
    }

    /// The streaming output writes JSON a line an event as they come, and
    /// the grouped text only at the end, as `render` gives it.
    #[test]
    fn output_streams_json_and_groups_text() {
        let parsed = wedge_klog::parse_str(&(report(1, "a") + &report(2, "a")));
        let mut json = Output::new(true, false, Vec::new());
        for e in parsed.events.clone() {
            json.event(e).unwrap_or_default();
        }
        assert_eq!(json.live_pids(), Vec::<u32>::new());
        json.finish(&parsed.summary, &HashMap::new())
            .unwrap_or_default();
        let lines = String::from_utf8(json.into_inner()).unwrap_or_default();
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(lines.starts_with("{\"schema_version\":1,"), "{lines}");
        let mut text = Output::new(false, false, Vec::new());
        for e in parsed.events.clone() {
            text.event(e).unwrap_or_default();
        }
        assert_eq!(text.live_pids(), [2]);
        text.finish(&parsed.summary, &HashMap::new())
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8(text.into_inner()).unwrap_or_default(),
            render(&parsed.events, &parsed.summary, &HashMap::new())
        );
    }
}
