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

/// An age or a span as people type it: `90s`, `30m`, `2h`, `7d`, or a
/// bare number of seconds; fractions allowed (`1.5h`). None for anything
/// else (negative, not finite, another unit). The one reader of such
/// durations (`wedge history --since 2h`, the recorder's retention).
pub fn parse_age_secs(s: &str) -> Option<f64> {
    let t = s.trim();
    let (num, scale) = match t.chars().last()? {
        's' => (&t[..t.len() - 1], 1.0),
        'm' => (&t[..t.len() - 1], 60.0),
        'h' => (&t[..t.len() - 1], 3600.0),
        'd' => (&t[..t.len() - 1], 86_400.0),
        _ => (t, 1.0),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * scale)
}

#[cfg(test)]
mod tests {
    use super::{human_ms, parse_age_secs};

    #[test]
    fn ages() {
        assert_eq!(parse_age_secs("90s"), Some(90.0));
        assert_eq!(parse_age_secs("30m"), Some(1800.0));
        assert_eq!(parse_age_secs("1.5h"), Some(5400.0));
        assert_eq!(parse_age_secs("7d"), Some(604_800.0));
        assert_eq!(parse_age_secs("45"), Some(45.0));
        for bad in ["", "s", "-1m", "2w", "inf", "NaNs", "1 h x"] {
            assert_eq!(parse_age_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(human_ms(850.0), "850ms");
        assert_eq!(human_ms(12_300.0), "12.3s");
        assert_eq!(human_ms(245_000.0), "4m05s");
        assert_eq!(human_ms(3.0 * 3_600_000.0 + 12.0 * 60_000.0), "3h12m");
    }
}
