//! Report families: one file per family of kernel reports, holding its
//! event types, the recognisers of its lines, its meaning text, the
//! prefilter keywords its first lines contain and a few sample first lines.
//!
//! Adding an event kind: put its type, recogniser, `meaning_*` function,
//! keyword and sample in the family's file, and add its row to `kinds!` in
//! `event.rs` (the one list `Detail`, `kind()`, `KINDS` and `meaning()`
//! come from).  The recogniser is reached from `classify::classify`, the
//! one first-byte dispatch over every message (a single pass keeps the
//! per-line cost at a compare or two).  A one-line report returns
//! `Line::Single` with its `Detail` built and needs no parser code; a
//! multi-line report returns `Line::Report` holding a variant of its
//! family's line enum, whose [`Assemble`] impl in the family file opens the
//! event or adds to the open one; later shared lines (trace, registers,
//! `Code:`) join it in the parser.  A family's line enum is registered by
//! one line of `report_lines!`.
//! See the crate README.  `tests::every_kind_has_a_sample` fails when a
//! kind has no sample, `tests::every_sample_passes_the_prefilter` when a
//! sample's first line would be skipped by the prefilter or does not
//! parse as its kind.

use crate::parser::Parser;
use crate::prefix::Prefix;

pub(crate) mod faults;
pub(crate) mod hung_task;
pub(crate) mod listing;
pub(crate) mod lockup;
pub(crate) mod netfs;
pub(crate) mod oom;
pub(crate) mod oops;
pub(crate) mod rcu;
pub(crate) mod storage;

/// How a family's multi-line report is assembled: its lines, once
/// recognised, join the parser's open reports (or open one) through the
/// parser's report API (`cur`, `open_event`, `touch`, ...).  Trace, register
/// and `Code:` lines are shared by every report and handled by the parser.
pub(crate) trait Assemble {
    /// Apply the line to the parser's reports.
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>);
    /// Text of a following log line fused onto this one (a lost newline),
    /// to be classified on its own.
    fn fused_rest(&self) -> Option<String> {
        None
    }
}

/// The registration of families with multi-line reports: one line each,
/// naming the family's line type (`classify::Line::Report` carries it; the
/// parser calls its [`Assemble`] impl).
macro_rules! report_lines {
    ($($family:ident($ty:ty)),* $(,)?) => {
        /// A line of a multi-line report, as its family recognised it.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) enum Report {
            $($family($ty)),*
        }

        impl Report {
            pub(crate) fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
                match self {
                    $(Report::$family(l) => l.assemble(ps, p)),*
                }
            }

            pub(crate) fn fused_rest(&self) -> Option<String> {
                match self {
                    $(Report::$family(l) => l.fused_rest()),*
                }
            }
        }

        $(impl From<$ty> for Report {
            fn from(l: $ty) -> Report {
                Report::$family(l)
            }
        })*
    };
}

report_lines! {
    HungTask(hung_task::HungLine),
    Rcu(rcu::RcuLine),
    Faults(faults::FaultLine),
    Lockup(lockup::LockupLine),
    Oom(oom::OomLine),
    Netfs(netfs::NetfsLine),
    Oops(oops::OopsReport),
    Listing(listing::ListingLine),
    Storage(storage::StorageLine),
}

/// A sample report start: the kind it must yield and its text (the first
/// line is what the prefilter must let through; later lines, if any, are
/// what the kind needs before the parser emits it).
pub(crate) struct Sample {
    /// The `kind` the text must yield.
    #[cfg_attr(not(test), allow(dead_code))]
    pub kind: &'static str,
    /// One or more log lines.
    #[cfg_attr(not(test), allow(dead_code))]
    pub text: &'static str,
}

/// One registered family: the registration line for a new family.
pub(crate) struct Family {
    /// File name under `src/family/`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// Prefilter keywords of its first lines.
    pub keywords: &'static [&'static str],
    /// Sample first lines.
    #[cfg_attr(not(test), allow(dead_code))]
    pub samples: &'static [Sample],
}

/// Every family, in the order their keywords join the prefilter.
pub(crate) const FAMILIES: &[Family] = &[
    Family {
        name: "hung_task",
        keywords: hung_task::KEYWORDS,
        samples: hung_task::SAMPLES,
    },
    Family {
        name: "rcu",
        keywords: rcu::KEYWORDS,
        samples: rcu::SAMPLES,
    },
    Family {
        name: "faults",
        keywords: faults::KEYWORDS,
        samples: faults::SAMPLES,
    },
    Family {
        name: "oops",
        keywords: oops::KEYWORDS,
        samples: oops::SAMPLES,
    },
    Family {
        name: "lockup",
        keywords: lockup::KEYWORDS,
        samples: lockup::SAMPLES,
    },
    Family {
        name: "oom",
        keywords: oom::KEYWORDS,
        samples: oom::SAMPLES,
    },
    Family {
        name: "netfs",
        keywords: netfs::KEYWORDS,
        samples: netfs::SAMPLES,
    },
    Family {
        name: "storage",
        keywords: storage::KEYWORDS,
        samples: storage::SAMPLES,
    },
    Family {
        name: "listing",
        keywords: listing::KEYWORDS,
        samples: listing::SAMPLES,
    },
];

/// Keywords of lines that belong to no family but must reach the parser
/// with no report open: trace headers and frames of a trace pasted without
/// its header (`+0x`), `Code:`, the `Linux version` banner (the release for
/// later reports) and journal export fields.
const CONTEXT_KEYWORDS: &[&str] = &[
    "Call Trace",
    "Call trace",
    "Backtrace:",
    "+0x",
    "Code:",
    "Linux version",
    "__CURSOR=",
    "_TIMESTAMP=",
];

/// The prefilter's pattern set: every family's keywords, then the context
/// keywords, each once.
pub(crate) fn keywords() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for k in FAMILIES
        .iter()
        .flat_map(|f| f.keywords.iter())
        .chain(CONTEXT_KEYWORDS)
    {
        if !all.contains(k) {
            all.push(k);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::KINDS;

    /// Kinds of the events the parser makes of `text` with no prefilter
    /// (every line handed to the parser).
    fn unfiltered_kinds(text: &str) -> Vec<&'static str> {
        let mut p = crate::parser::Parser::new();
        let mut out = Vec::new();
        for l in text.lines() {
            p.push_line_unfiltered(l.as_bytes());
            while let Some(e) = p.next_event() {
                out.push(e.kind());
            }
        }
        p.finish();
        while let Some(e) = p.next_event() {
            out.push(e.kind());
        }
        out
    }

    #[test]
    fn every_kind_has_a_sample() {
        for k in KINDS {
            assert!(
                FAMILIES
                    .iter()
                    .flat_map(|f| f.samples)
                    .any(|s| s.kind == *k),
                "kind {k} has no sample first line in its family file"
            );
        }
        for f in FAMILIES {
            for s in f.samples {
                assert!(
                    KINDS.contains(&s.kind),
                    "family {}: sample of unknown kind {}",
                    f.name,
                    s.kind
                );
            }
        }
    }

    /// A kind the parser recognises but whose first line the prefilter
    /// drops is lost silently in a streamed log: the first line must pass
    /// the keyword search, and the stream (noise, sample, noise) must
    /// yield the same kinds as the parser fed every line.
    #[test]
    fn every_sample_passes_the_prefilter() {
        let noise = "[    1.000000] usb 1-1: new high-speed USB device number 2 using xhci_hcd\n";
        for f in FAMILIES {
            for s in f.samples {
                let first = s.text.lines().next().unwrap_or("");
                assert!(
                    crate::scan::maybe_interesting(first.as_bytes()),
                    "family {}: first line of a {} is not let through by the prefilter \
                     (add a keyword to the family's KEYWORDS): {first}",
                    f.name,
                    s.kind
                );
                let direct = unfiltered_kinds(s.text);
                assert_eq!(
                    direct.first(),
                    Some(&s.kind),
                    "family {}: sample does not parse as {}: {}",
                    f.name,
                    s.kind,
                    s.text
                );
                let log = format!("{noise}{noise}{}\n{noise}", s.text);
                let streamed: Vec<&str> = crate::parse_str(&log)
                    .events
                    .iter()
                    .map(|e| e.kind())
                    .collect();
                assert_eq!(
                    streamed, direct,
                    "family {}: the prefiltered stream lost or changed events of {}",
                    f.name, s.kind
                );
            }
        }
    }

    #[test]
    fn keywords_are_long_enough_for_teddy() {
        // The SIMD prefilter compares three-byte fingerprints.
        for k in keywords() {
            assert!(k.len() >= 3, "keyword {k:?} is shorter than three bytes");
        }
    }
}
