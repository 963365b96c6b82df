//! Small, panic-free string helpers shared by the line parsers.
//!
//! Every helper works on `&str` with ASCII delimiters, so the byte offsets it
//! produces always fall on character boundaries; none of them index a slice
//! with an offset that could be out of range.

/// Text after the first occurrence of `pat`.
pub(crate) fn after<'a>(s: &'a str, pat: &str) -> Option<&'a str> {
    s.split_once(pat).map(|(_, r)| r)
}

/// Split `s` at the first byte that does not satisfy `pred`.
pub(crate) fn split_while(s: &str, pred: impl Fn(u8) -> bool) -> (&str, &str) {
    let n = s.bytes().take_while(|&b| pred(b)).count();
    // `n` counts leading ASCII bytes only (pred is only true for ASCII in all
    // callers), so it is a char boundary; `get` keeps it panic-free anyway.
    match (s.get(..n), s.get(n..)) {
        (Some(a), Some(b)) => (a, b),
        _ => ("", s),
    }
}

/// Leading decimal digits and the rest.
pub(crate) fn split_digits(s: &str) -> (&str, &str) {
    split_while(s, |b| b.is_ascii_digit())
}

/// Leading hex digits and the rest.
pub(crate) fn split_hex(s: &str) -> (&str, &str) {
    split_while(s, |b| b.is_ascii_hexdigit())
}

/// Parse a leading unsigned decimal number; the rest of the string follows.
pub(crate) fn lead_u64(s: &str) -> Option<(u64, &str)> {
    let (d, r) = split_digits(s);
    if d.is_empty() {
        return None;
    }
    d.parse().ok().map(|v| (v, r))
}

pub(crate) fn lead_u32(s: &str) -> Option<(u32, &str)> {
    let (d, r) = split_digits(s);
    if d.is_empty() {
        return None;
    }
    d.parse().ok().map(|v| (v, r))
}

/// True when `s` is a non-empty run of hex digits.
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Strip an optional `0x`/`0X`.
pub(crate) fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

/// Parse a hex number with or without `0x`.
pub(crate) fn parse_hex_u64(s: &str) -> Option<u64> {
    let h = strip_0x(s);
    if !is_hex(h) || h.len() > 16 {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// Split `COMM:PID` at the last colon followed only by digits.  Task names
/// may themselves contain colons (`kworker/u8:0:5`) and spaces.
pub(crate) fn split_comm_pid(s: &str) -> Option<(&str, u32)> {
    let (comm, pid) = s.rsplit_once(':')?;
    let (d, rest) = split_digits(pid);
    if d.is_empty() {
        return None;
    }
    // Tolerate a trailing "(T117)" style thread-id annotation or punctuation.
    let rest = rest.trim();
    if !(rest.is_empty() || rest.starts_with('(') || rest == "." || rest.starts_with(' ')) {
        return None;
    }
    Some((comm, d.parse().ok()?))
}

/// Split `COMM[PID]` where the PID is in the last bracket pair.
pub(crate) fn split_comm_bracket_pid(s: &str) -> Option<(&str, u32)> {
    let s = s.strip_suffix(']')?;
    let (comm, pid) = s.rsplit_once('[')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((comm, pid.parse().ok()?))
}

/// First whitespace-separated token and the remainder (left-trimmed).
pub(crate) fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => {
            let (a, b) = s.split_at(i);
            (a, b.trim_start())
        }
        None => (s, ""),
    }
}

/// Value of a `key=value` or `key:value` item inside a comma or space
/// separated list, e.g. `order=0` in an oom-killer header.
pub(crate) fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = s;
    while let Some(i) = rest.find(key) {
        let before_ok = i == 0
            || rest
                .as_bytes()
                .get(i - 1)
                .is_some_and(|b| matches!(b, b' ' | b',' | b'\t' | b'('));
        let tail = rest.get(i + key.len()..)?;
        if before_ok {
            let end = tail.find([',', ' ', '\t']).unwrap_or(tail.len());
            return tail.get(..end);
        }
        rest = tail;
    }
    None
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-from-days inverse).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn month_index(m: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|x| *x == m)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Truncate an owned string to at most `max` bytes on a char boundary.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for a journald `__REALTIME_TIMESTAMP`.
pub(crate) fn iso_from_usec(usec: i64) -> String {
    let secs = usec.div_euclid(1_000_000);
    let frac = usec.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_pid() {
        assert_eq!(split_comm_pid("kworker/u8:0:5"), Some(("kworker/u8:0", 5)));
        assert_eq!(
            split_comm_pid("bch_copygc[dm-7:1942"),
            Some(("bch_copygc[dm-7", 1942))
        );
        assert_eq!(
            split_comm_pid("kworker/2:3:117(T117)"),
            Some(("kworker/2:3", 117))
        );
        assert_eq!(split_comm_pid("nopid"), None);
        assert_eq!(split_comm_bracket_pid("a[b][12]"), Some(("a[b]", 12)));
    }

    #[test]
    fn civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2021, 11, 5), 18936);
    }

    #[test]
    fn iso() {
        assert_eq!(
            iso_from_usec(1_636_146_269_000_001),
            "2021-11-05T21:04:29.000001Z"
        );
    }

    #[test]
    fn kv_lookup() {
        let s = "gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0";
        assert_eq!(kv(s, "order="), Some("0"));
        assert_eq!(kv(s, "gfp_mask="), Some("0x100cca(GFP_HIGHUSER_MOVABLE)"));
        assert_eq!(kv(s, "oom_score_adj="), Some("0"));
    }
}
