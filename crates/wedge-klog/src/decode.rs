//! Decoders for small kernel encodings: signal numbers and masks, taint
//! letters, and the x86 page-fault error code printed by segfault reports.

use serde::Serialize;

/// Name of signal `n` in the generic numbering (`None` outside 1..=64),
/// from the table wedge-kernel keeps for all of wedge. MIPS, Alpha, SPARC
/// and PA-RISC number several signals differently; names for a log from
/// such a machine are only right for the signals that coincide.
pub fn signal_name(n: u32) -> Option<String> {
    let n = u8::try_from(n).ok().filter(|n| (1..=64).contains(n))?;
    Some(wedge_kernel::Signal(n).name())
}

/// A decoded `Sig*` mask from `/proc/PID/status` or `ps s`: bit N-1 set
/// means signal N is in the set.
pub fn decode_signal_mask(hex: &str) -> Option<Vec<String>> {
    let v = crate::util::parse_hex_u64(hex)?;
    Some(wedge_kernel::SignalSet(v).names())
}

/// One taint flag and its meaning (kernel/panic.c `taint_flags`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaintFlag {
    /// The letter as printed.
    pub letter: char,
    /// What the kernel means by it.
    pub meaning: &'static str,
}

/// Meaning of one taint letter, as the kernel documents it in
/// Documentation/admin-guide/tainted-kernels.rst.
pub fn taint_meaning(letter: char) -> Option<&'static str> {
    Some(match letter {
        'G' => "all loaded modules are GPL-compatible (no proprietary module)",
        'P' => "a proprietary module was loaded",
        'F' => "a module was force-loaded",
        'S' => {
            "running on an out-of-specification system (e.g. SMP-unsafe CPU, or firmware flagged)"
        }
        'R' => "a module was force-unloaded",
        'M' => "a machine check exception occurred",
        'B' => "a bad page was referenced or unexpected page flags were seen",
        'U' => "taint requested by user space",
        'D' => "the kernel died recently (an earlier OOPS or BUG)",
        'A' => "an ACPI table was overridden",
        'W' => "the kernel issued a warning earlier",
        'C' => "a staging driver was loaded",
        'I' => "a platform firmware bug is being worked around",
        'O' => "an externally-built (out-of-tree) module was loaded",
        'E' => "an unsigned module was loaded",
        'L' => "a soft lockup occurred earlier",
        'K' => "the kernel has been live patched",
        'X' => "auxiliary taint (distribution defined, e.g. unsupported module)",
        'T' => "the kernel was built with the struct randomization plugin",
        'N' => "an in-kernel test module was loaded (6.0+)",
        'J' => "user space used a mutating debug operation in fwctl (6.15+)",
        _ => return None,
    })
}

/// Decode a compact taint string such as `GOE` into flags with meanings.
pub fn decode_taint(letters: &str) -> Vec<TaintFlag> {
    letters
        .chars()
        .filter_map(|c| taint_meaning(c).map(|meaning| TaintFlag { letter: c, meaning }))
        .collect()
}

/// Parse the text after `Tainted:` (or `Not tainted`) on a CPU/hung-task
/// line into taint letters (spaces and RHEL's `-` placeholders removed) and
/// the kernel release (without the `#N` build tag).
///
/// Handles the fixed-width form (`G           OE     5.14.4 #1`), collapsed
/// spaces (`G C 4.14.44-v7+ #1117`), RHEL's `K------------`, and the 3.x ARM
/// form with the release in parentheses (`G O  (3.7.1 #1)`).
pub(crate) fn parse_taint_and_release(s: &str) -> (String, Option<String>) {
    let mut letters = String::new();
    let mut rest = s.trim_start();
    loop {
        let (tok, r) = crate::util::token(rest);
        if tok.is_empty() {
            break;
        }
        if tok.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
            && tok.bytes().any(|b| b != b'-')
        {
            letters.extend(tok.chars().filter(|c| *c != '-'));
            rest = r;
            continue;
        }
        break;
    }
    let (tok, _) = crate::util::token(rest);
    let tok = tok.trim_start_matches('(').trim_end_matches(')');
    let release = if tok.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
        Some(crate::util::bounded(tok, 128))
    } else {
        None
    };
    (letters, release)
}

/// Find taint letters and release on any line containing `Tainted:` or
/// `Not tainted`.  Returns `None` when neither marker is present.
pub(crate) fn find_taint(line: &str) -> Option<(String, Option<String>)> {
    // "Not tained" is a transcription slip seen in pasted reports.
    if let Some(r) =
        crate::util::after(line, "Not tainted").or_else(|| crate::util::after(line, "Not tained"))
    {
        let (_, rel) = parse_taint_and_release(r);
        return Some((String::new(), rel));
    }
    if let Some(r) = crate::util::after(line, "Tainted:") {
        // 6.12+ prints an extra line "Tainted: [W]=WARN, [O]=OOT_MODULE";
        // its letters are the same as on the CPU line, so decode them only
        // for completeness.
        if r.trim_start().starts_with('[') {
            let letters: String = r
                .split('[')
                .filter_map(|p| p.chars().next())
                .filter(char::is_ascii_uppercase)
                .collect();
            return Some((letters, None));
        }
        return Some(parse_taint_and_release(r));
    }
    None
}

/// The x86 page-fault error code (`error N` on a segfault line, printed in
/// hex), bit by bit (arch/x86/include/asm/trap_pf.h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageFaultError {
    /// The code as a number.
    pub code: u64,
    /// `read`, `write` or `instruction fetch`.
    pub access: &'static str,
    /// `user` or `kernel` mode.
    pub mode: &'static str,
    /// `not-present page` or `protection violation`.
    pub cause: &'static str,
    /// Reserved bit set in a page-table entry.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reserved_bit: bool,
    /// Protection-key violation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub protection_key: bool,
    /// Shadow-stack access.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow_stack: bool,
}

/// Decode the hex error code of an x86 `segfault at` line.
pub fn decode_page_fault_error(hex: &str) -> Option<PageFaultError> {
    let code = crate::util::parse_hex_u64(hex)?;
    let present = code & 1 != 0;
    let write = code & 2 != 0;
    let user = code & 4 != 0;
    let fetch = code & 16 != 0;
    Some(PageFaultError {
        code,
        access: if fetch {
            "instruction fetch"
        } else if write {
            "write"
        } else {
            "read"
        },
        mode: if user { "user" } else { "kernel" },
        cause: if present {
            "protection violation"
        } else {
            "not-present page"
        },
        reserved_bit: code & 8 != 0,
        protection_key: code & 32 != 0,
        shadow_stack: code & 64 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(signal_name(11).as_deref(), Some("SIGSEGV"));
        assert_eq!(signal_name(6).as_deref(), Some("SIGABRT"));
        assert_eq!(signal_name(34).as_deref(), Some("SIGRTMIN+2"));
        assert_eq!(signal_name(0), None);
        let m = decode_signal_mask("0000000000001000").unwrap_or_default();
        assert_eq!(m, vec!["SIGPIPE".to_string()]);
    }

    #[test]
    fn taint() {
        assert_eq!(
            parse_taint_and_release("G           OE     5.14.4-icetea #1"),
            ("GOE".into(), Some("5.14.4-icetea".into()))
        );
        assert_eq!(
            parse_taint_and_release("G        W  OE K------------   3.10.0-862.el7.x86_64 #1"),
            ("GWOEK".into(), Some("3.10.0-862.el7.x86_64".into()))
        );
        assert_eq!(
            parse_taint_and_release("G           O  (3.7.1 #1)"),
            ("GO".into(), Some("3.7.1".into()))
        );
        assert_eq!(
            find_taint("CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.19.10 #1"),
            Some((String::new(), Some("5.19.10".into())))
        );
    }

    #[test]
    fn page_fault() {
        let e = decode_page_fault_error("14").expect("hex");
        assert_eq!(
            (e.access, e.mode, e.cause),
            ("instruction fetch", "user", "not-present page")
        );
        let e = decode_page_fault_error("6").expect("hex");
        assert_eq!((e.access, e.mode), ("write", "user"));
    }
}
