//! # wedge-klog: kernel logs in, typed events out
//!
//! `wedge-klog` reads kernel logs the way people actually have them — raw
//! `dmesg`, `dmesg -T`/`-H`, `kern.log`/syslog (with or without host names,
//! RFC 3339 stamps), `journalctl -k` (short, short-iso, short-monotonic,
//! `-o json`, `-o export`), `/dev/kmsg` records, serial-console captures and
//! text pasted into bug reports (quote markers, indentation, shell prompts,
//! editor line numbers, hard-wrapped or fused lines) — and turns the reports
//! in them into [`Event`]s: hung tasks with their blocker, user-space traps
//! and segfaults with decoded error codes and `Code:` disassembly, fatal
//! signals, oopses, warnings, soft/hard lockups, RCU stalls, OOM kills,
//! NFS/Lustre/CIFS trouble, and pasted `/proc/PID/stack`, `/proc/PID/status`
//! and `ps` listings.
//!
//! ## Entry points
//!
//! * [`parse_reader`] — streaming: an iterator of events over any
//!   [`std::io::Read`], with flat memory (one 256 KiB buffer plus bounded
//!   parser state) and a keyword prefilter, so gigabyte logs parse at close
//!   to `grep` speed.  Decompression is the caller's business: wrap the
//!   reader.
//! * [`parse_str`] / [`parse_bytes`] — convenience: everything at once.
//! * [`Parser`] — line at a time ([`Parser::push_line`],
//!   [`Parser::next_event`], [`Parser::finish`]) for callers that already
//!   split lines (e.g. reading `/dev/kmsg` live).
//!
//! ## Events
//!
//! [`Event`] holds the fields every report can carry (task, pid, CPU,
//! kernel release, taint letters with meanings, call trace, registers,
//! `Code:` disassembly, source line range, timestamp, kmsg sequence) and a
//! [`Detail`] with the kind-specific part.  It serializes (serde) to one
//! flat JSON object whose keys follow the corpus vocabulary (`kind`,
//! `blocked_seconds`, `lib_offset`, `blocker`, `top_frames`, ...).
//! [`Event::meaning`] gives a one-line explanation, [`Event::signature`] a
//! grouping key (kind + top frames), and [`Filter`] the `--kind/--since/
//! --pid/--task` predicates.
//!
//! Whatever could not be used is not dropped silently: the [`Summary`]
//! (from [`EventStream::summary`] or [`Parsed::summary`]) lists
//! unparsed report fragments with their line ranges, over-long lines,
//! non-kernel syslog lines and backwards timestamps.
//!
//! ```
//! let log = "[  364.324540] INFO: task NIO-ELT-0-#3:1640 blocked for more than 120 seconds.\n\
//!            [  364.328811]       Not tainted 5.12.0-rc5 #1\n\
//!            [  364.338505] Call Trace:\n\
//!            [  364.338507]  __schedule+0x2de/0x890\n\
//!            [  364.338509]  schedule+0x4f/0xc0\n";
//! let parsed = wedge_klog::parse_str(log);
//! let ev = &parsed.events[0];
//! assert_eq!(ev.kind(), "hung_task");
//! assert_eq!(ev.pid, Some(1640));
//! assert_eq!(ev.top_frames(3), ["__schedule", "schedule"]);
//! assert_eq!(ev.kernel_version.as_deref(), Some("5.12.0-rc5"));
//! ```
//!
//! Parsers treat their input as hostile: no panics, bounded buffering, and
//! invalid UTF-8 is replaced, never rejected.

#![warn(missing_docs)]

mod classify;
mod code;
mod decode;
mod event;
mod family;
mod frame;
mod kmsg;
mod model;
mod parser;
mod prefix;
mod ps;
mod read;
mod scan;
mod sniff;
mod util;

pub use code::{CodeDump, Instruction};
pub use decode::{
    decode_page_fault_error, decode_signal_mask, decode_taint, signal_name, taint_meaning,
    PageFaultError, TaintFlag,
};
pub use event::{
    is_known_kind, BlkIoError, Blocker, BootClock, BufferIoError, CifsMountFailed, CifsServer,
    CifsVfsError, Decision, Detail, Event, FatalSignal, Filter, FsError, HardLockup, HungTask,
    KernelBug, LabeledTrace, LineRange, LnetTimeout, LustreConnection, LustreError, LustreRpc,
    LustreThread, Mapping, Mce, NfsServer, NvmeTimeout, OomInvoked, OomKill, OomReaped, Oops,
    PageAllocFailure, Panic, ProcStack, ProcStatus, PsRow, PsSignals, RcuStall, ScsiError,
    Segfault, Since, SinceUncompared, SoftLockup, TaskDump, Timestamp, Trap, Warning,
    WorkqueueLockup, KINDS, RETIRED_KINDS,
};
pub use event::{kind_help, parse_kind};
pub use frame::Frame;
pub use kmsg::{follow_kmsg, kmsg_record_seq, live_events, read_kmsg, KmsgItem};
pub use model::to_log_events;
pub use parser::{FormatCounts, Fragment, Parser, Summary};
pub use read::{kernel_log_limitation, live_log_events, read_log, LogRequest, LogSink};
pub use scan::EventStream;
pub use sniff::NotText;

/// Parse a kernel log from any reader, streaming.
///
/// The iterator yields events in input order; an I/O error is yielded once
/// and ends the stream, and the events of the lines read before it follow
/// (a truncated compressed log keeps what was decoded; see
/// [`EventStream::bytes_read`] for where it stopped).  With
/// [`EventStream::text_only`], input that is not text (an executable,
/// binary data) yields one error whose inner error is a [`NotText`], and
/// no event.  Call [`EventStream::summary`] afterwards for the
/// fragments that could not be used.
pub fn parse_reader<R: std::io::Read>(reader: R) -> EventStream<R> {
    EventStream::new(reader)
}

/// Everything found in an in-memory log.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The events, in input order.
    pub events: Vec<Event>,
    /// Statistics and unusable fragments.
    pub summary: Summary,
}

/// Parse a whole log held in memory.
pub fn parse_bytes(input: &[u8]) -> Parsed {
    let mut stream = parse_reader(input);
    let events: Vec<Event> = stream.by_ref().filter_map(Result::ok).collect();
    Parsed {
        events,
        summary: stream.summary().clone(),
    }
}

/// Parse a whole log held in a string.
pub fn parse_str(input: &str) -> Parsed {
    parse_bytes(input.as_bytes())
}
