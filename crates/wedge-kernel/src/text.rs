//! Strings the kernel hands over unchecked — argv, comm — made safe to
//! print.

/// A command line, comm or sentence holding one, made safe for a terminal:
/// control characters become `\n`, `\t`, `\r` or `\xNN`, and the Unicode
/// bidirectional overrides `\u{202e}` and kin. argv and comm are whatever
/// the process put there (`python3 -c $'import time\ntime.sleep(20)'`,
/// prctl(PR_SET_NAME)); printed raw, a newline broke `ps` lines in two and
/// could forge a line of its own. Every text view goes through this; JSON
/// keeps the raw string.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let special =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(special) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 && special(c) => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\x{:02x}", c as u32));
            }
            c if special(c) => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A command line as the kernel stores it (`mm->arg_start..arg_end`, what
/// /proc/PID/cmdline returns): arguments each ended by a NUL. Shared by
/// the live and the crash-dump sources, so both split it alike.
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("python3 -c import time\ntime.sleep(20)"),
            "python3 -c import time\\ntime.sleep(20)"
        );
        assert_eq!(
            printable("a\tb\rc\x1b[31md\x7f"),
            "a\\tb\\rc\\x1b[31md\\x7f"
        );
        assert_eq!(printable("x\u{85}y\u{202e}z"), "x\\x85y\\u{202e}z");
        assert!(matches!(
            printable("plain ünïcode"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
