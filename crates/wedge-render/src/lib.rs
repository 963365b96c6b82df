//! Outputs over the same snapshot and findings: text for people, JSON for
//! programs. One format per module.

pub mod check;
pub mod history;
pub mod json;
pub mod log;
pub mod metrics;
pub mod output;
pub mod ps;
pub mod storage;
pub mod verdict;
pub mod view;
pub mod why;

/// The one duration formatter (in wedge-model, so the analysis's evidence
/// uses it too).
pub use wedge_model::human_ms;

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
    fn fits() {
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
