//! The one way wedge writes a duration for people: the views' columns and
//! the analysis's evidence ("off the CPU for 4m05s") read alike.

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

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn durations() {
        assert_eq!(human_ms(850.0), "850ms");
        assert_eq!(human_ms(12_300.0), "12.3s");
        assert_eq!(human_ms(245_000.0), "4m05s");
        assert_eq!(human_ms(3.0 * 3_600_000.0 + 12.0 * 60_000.0), "3h12m");
    }
}
