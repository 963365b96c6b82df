//! Outputs over the same snapshot and findings: text for people, JSON for
//! programs. One format per module.

pub mod json;
pub mod log;
pub mod output;
pub mod ps;
pub mod verdict;
pub mod why;

/// Milliseconds as a short human duration: `850ms`, `12.3s`, `4m05s`, `3h12m`.
pub fn human_ms(ms: f64) -> String {
    let s = ms / 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// The one escaping of argv and comm for text views (in wedge-kernel, so
/// that wedge-coredump's text uses it too).
pub use wedge_kernel::printable;

/// Cuts a string to `n` characters, marking the cut.
pub fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_ms(850.0), "850ms");
        assert_eq!(human_ms(12_300.0), "12.3s");
        assert_eq!(human_ms(245_000.0), "4m05s");
        assert_eq!(human_ms(3.0 * 3_600_000.0 + 12.0 * 60_000.0), "3h12m");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
