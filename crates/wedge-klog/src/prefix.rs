//! Peeling the per-line prefixes that log collectors put in front of kernel
//! messages.
//!
//! A line may carry several layers, in any order a copy/paste chain produced
//! them; [`strip`] removes them repeatedly until the kernel message remains:
//!
//! * quote markers (`> `, `>> `) and indentation from e-mail and issue posts
//! * editor line numbers in front of a timestamp (`11745 [4622.64] ...`)
//! * shell prompts glued to console output (`root@sh:/# [ 1428.38] ...`)
//! * `/dev/kmsg` records `PRI,SEQ,TS_USEC,FLAGS;message`
//! * OpenWrt/busybox `logread`: `Tue Feb  1 19:02:25 2022 kern.warn kernel: `
//!   (ctime with the year, then facility.level, which gives the level)
//! * RFC 5424 syslog: `<4>1 2024-03-04T08:15:02.123+01:00 host kernel - - - `,
//!   with or without structured data `[id k="v"]` and the BOM before the
//!   message
//! * syslog headers: `May 22 19:04:47 host kernel: `, without host
//!   (`May 17 18:48:11 kernel: `), metalog's `[kernel]`, RFC 3339 stamps
//!   (`2024-01-02T03:04:05.123456+00:00 host kernel: `), journalctl
//!   short-precise (`Jun 15 05:58:24.123456`), a lone `host kernel: `, the
//!   `kernel:` of a syslogd wall broadcast, and a relay's host with no tag
//!   (`Mar  4 08:15:02 10.0.0.5 [  512.1] ...`), taken as the kernel's only
//!   when a dmesg stamp or a kernel report follows
//! * printk levels `<6>` and `dmesg -x` labels `kern  :info  : `
//! * dmesg timestamps: `[  123.456789]`, cut fractions `[  240.]`, `dmesg -T`
//!   `[Fri Nov  5 21:04:29 2021]`, `dmesg -H` `[Sep11 18:40]` / `[  +0.000015]`
//! * the CONFIG_PRINTK_CALLER id `[  T38]` / `[ C1]` (4.19+), which lets the
//!   parser tell apart lines that different CPUs printed at the same time.

/// What the prefix said about a line, plus the message body.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Prefix<'a> {
    pub body: &'a str,
    /// Seconds since boot from a dmesg or kmsg timestamp.
    pub monotonic: Option<f64>,
    /// Wall-clock text as printed (syslog date, `dmesg -T`, RFC 3339).
    pub wall: Option<&'a str>,
    /// Wall clock as seconds since the epoch, when the stamp had a year
    /// (taken as UTC: logs rarely say their zone).
    pub wall_epoch: Option<i64>,
    /// `/dev/kmsg` sequence number.
    pub seq: Option<u64>,
    /// printk level 0-7.
    pub level: Option<u8>,
    /// printk caller id (`T38`, `C1`).
    pub caller: Option<&'a str>,
    /// A syslog line from some program other than the kernel.
    pub non_kernel: bool,
    /// The line was a `/dev/kmsg` record.
    pub kmsg: bool,
    /// Some log prefix (timestamp, syslog header, kmsg) was present.
    pub stamped: bool,
    /// A `journalctl` RFC 3339 or syslog header was present.
    pub syslog: bool,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn digits(s: &str, min: usize, max: usize) -> Option<(&str, &str)> {
    let (d, r) = crate::util::split_digits(s);
    if d.len() < min || d.len() > max {
        return None;
    }
    Some((d, r))
}

/// `HH:MM:SS` with optional `.frac`; returns the rest.
fn clock(s: &str) -> Option<&str> {
    let (_, r) = digits(s, 1, 2)?;
    let r = r.strip_prefix(':')?;
    let (_, r) = digits(r, 2, 2)?;
    let r = r.strip_prefix(':')?;
    let (_, r) = digits(r, 2, 2)?;
    if let Some(f) = r.strip_prefix('.').or_else(|| r.strip_prefix(',')) {
        let (_, r) = digits(f, 1, 9)?;
        return Some(r);
    }
    Some(r)
}

/// BSD syslog `Mmm dd HH:MM:SS ` (day may be space-padded or not).
fn bsd_stamp(s: &str) -> Option<(&str, &str)> {
    let m = s.get(..3)?;
    if !MONTHS.contains(&m) {
        return None;
    }
    day_and_clock(s, s.get(3..)?.strip_prefix(' ')?)
}

/// The rest of a BSD stamp after its month and one space, `r` a suffix of
/// `s`: the (maybe space-padded) day, the clock and the space after it →
/// (the whole stamp, what follows).
fn day_and_clock<'a>(s: &'a str, r: &'a str) -> Option<(&'a str, &'a str)> {
    let r = r.trim_start_matches(' ');
    let (_, r) = digits(r, 1, 2)?;
    let r = r.strip_prefix(' ')?;
    let r = clock(r)?;
    let used = s.len() - r.len();
    let r = r.strip_prefix(' ')?;
    Some((s.get(..used)?, r))
}

/// RFC 3339 / ISO 8601 `YYYY-MM-DDTHH:MM:SS[.frac][zone]` followed by a space.
fn iso_stamp(s: &str) -> Option<(&str, &str, i64)> {
    let (y, r) = digits(s, 4, 4)?;
    let r = r.strip_prefix('-')?;
    let (mo, r) = digits(r, 2, 2)?;
    let r = r.strip_prefix('-')?;
    let (d, r) = digits(r, 2, 2)?;
    let r = r.strip_prefix('T').or_else(|| r.strip_prefix(' '))?;
    let (hh, r0) = digits(r, 2, 2)?;
    let r = clock(r)?;
    let mm = r0.get(1..3)?;
    let ss = r0.get(4..6)?;
    let mut r = r;
    if let Some(z) = r.strip_prefix('Z') {
        r = z;
    } else if let Some(z) = r.strip_prefix('+').or_else(|| r.strip_prefix('-')) {
        let (_, z) = digits(z, 2, 4)?;
        let z = match z.strip_prefix(':') {
            Some(z2) => digits(z2, 2, 2)?.1,
            None => z,
        };
        r = z;
    }
    let used = s.len() - r.len();
    let r = r.strip_prefix(' ')?;
    let days = crate::util::days_from_civil(y.parse().ok()?, mo.parse().ok()?, d.parse().ok()?);
    let secs = days * 86_400
        + hh.parse::<i64>().ok()? * 3600
        + mm.parse::<i64>().ok()? * 60
        + ss.parse::<i64>().ok()?;
    Some((s.get(..used)?, r, secs))
}

/// `dmesg -T` inner text `Fri Nov  5 21:04:29 2021` → epoch seconds.
fn ctime_epoch(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace();
    let wd = it.next()?;
    if !DAYS.contains(&wd) {
        return None;
    }
    let mon = crate::util::month_index(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    let mut p = hms.split(':');
    let h: i64 = p.next()?.parse().ok()?;
    let m: i64 = p.next()?.parse().ok()?;
    let sec: i64 = p.next()?.parse().ok()?;
    Some(crate::util::days_from_civil(year, mon, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// A month name or abbreviation, in English (any case) or in a few other
/// languages whose abbreviations differ (`mei`, `okt`, `mär`, `déc`, ...).
fn month_any(m: &str) -> Option<u32> {
    let m = m.trim_end_matches('.').to_lowercase();
    let head: String = m.chars().take(3).collect();
    const EN: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if let Some(i) = EN.iter().position(|x| *x == head) {
        return u32::try_from(i + 1).ok();
    }
    const OTHER: &[(&str, u32)] = &[
        ("ene", 1),
        ("fév", 2),
        ("fev", 2),
        ("mär", 3),
        ("mrz", 3),
        ("avr", 4),
        ("abr", 4),
        ("mei", 5),
        ("mai", 5),
        ("juin", 6),
        ("juil", 7),
        ("aoû", 8),
        ("ago", 8),
        ("set", 9),
        ("okt", 10),
        ("dic", 12),
        ("dez", 12),
        ("déc", 12),
    ];
    OTHER
        .iter()
        .find(|(k, _)| m.starts_with(k))
        .map(|(_, v)| *v)
}

/// A word of letters (a localized day or month name, `loka`, `kesä`,
/// `févr.`).
fn is_word(w: &str) -> bool {
    let w = w.trim_end_matches('.');
    let n = w.chars().count();
    (2..=12).contains(&n) && w.chars().all(char::is_alphabetic)
}

/// `DAY MON DD HH:MM:SS YYYY` in any language → the epoch when the month
/// is known (`Some(None)` when it is not).
fn local_ctime(s: &str) -> Option<Option<i64>> {
    let mut it = s.split_whitespace();
    let (wd, mon, day, hms, year) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !is_word(wd) || !is_word(mon) {
        return None;
    }
    let day: u32 = day.parse().ok()?;
    let year: i64 = digits(year, 4, 4)
        .filter(|(_, r)| r.is_empty())?
        .0
        .parse()
        .ok()?;
    if !clock(hms).is_some_and(str::is_empty) {
        return None;
    }
    let mut p = hms.split(':');
    let h: i64 = p.next()?.parse().ok()?;
    let m: i64 = p.next()?.parse().ok()?;
    let sec: i64 = p.next()?.parse().ok()?;
    Some(
        month_any(mon).map(|mo| {
            crate::util::days_from_civil(year, mo, day) * 86_400 + h * 3600 + m * 60 + sec
        }),
    )
}

/// A syslog stamp with a month of another language (`loka 14 20:43:06 `,
/// a Finnish journal): like [`bsd_stamp`], the month any word.
fn local_bsd_stamp(s: &str) -> Option<(&str, &str)> {
    let (mon, r) = s.split_once(' ')?;
    if !is_word(mon) {
        return None;
    }
    day_and_clock(s, r)
}

/// SONiC's `2025 Jul  2 06:56:57.749624 ` (the year first) → (stamp,
/// rest, epoch).
fn year_bsd_stamp(s: &str) -> Option<(&str, &str, i64)> {
    let (y, r) = digits(s, 4, 4)?;
    let r = r.strip_prefix(' ')?;
    let (stamp, rest) = bsd_stamp(r)?;
    let used = s.len() - rest.len() - 1;
    let mut it = stamp.split_whitespace();
    let mon = crate::util::month_index(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let mut p = hms.split(['.', ':']);
    let h: i64 = p.next()?.parse().ok()?;
    let m: i64 = p.next()?.parse().ok()?;
    let sec: i64 = p.next()?.parse().ok()?;
    let epoch =
        crate::util::days_from_civil(y.parse().ok()?, mon, day) * 86_400 + h * 3600 + m * 60 + sec;
    Some((s.get(..used)?, rest, epoch))
}

/// A syslog severity word in front of the tag (`host ERR kernel: `, SONiC).
fn severity_word(t: &str) -> Option<u8> {
    Some(match t {
        "EMERG" => 0,
        "ALERT" => 1,
        "CRIT" => 2,
        "ERR" | "ERROR" => 3,
        "WARNING" | "WARN" => 4,
        "NOTICE" => 5,
        "INFO" => 6,
        "DEBUG" => 7,
        _ => return None,
    })
}

/// The level of `host LEVEL kernel: ...`, if the line has that shape.
fn severity_before_kernel(s: &str) -> Option<u8> {
    let (t1, r1) = crate::util::token(s);
    let (t2, r2) = crate::util::token(r1);
    let (t3, _) = crate::util::token(r2);
    if is_hostname(t1) && t3 == "kernel:" {
        return severity_word(t2);
    }
    None
}

/// The timestamp inside dmesg brackets.
enum Stamp<'a> {
    Mono(f64),
    Delta,
    Wall(&'a str, Option<i64>),
}

fn bracket_stamp(inner: &str) -> Option<Stamp<'_>> {
    let t = inner.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(d) = t.strip_prefix('+') {
        let (a, r) = digits(d, 1, 12)?;
        let _ = a;
        let r = r.strip_prefix('.')?;
        digits(r, 1, 9)?;
        return Some(Stamp::Delta);
    }
    if t.as_bytes().first()?.is_ascii_digit() {
        let (int, r) = digits(t, 1, 12)?;
        let r = r.strip_prefix('.')?;
        let (frac, r) = crate::util::split_digits(r);
        if !r.is_empty() || frac.len() > 9 {
            return None;
        }
        let v: f64 = if frac.is_empty() {
            int.parse().ok()?
        } else {
            format!("{int}.{frac}").parse().ok()?
        };
        return Some(Stamp::Mono(v));
    }
    // dmesg -T: "Fri Nov  5 21:04:29 2021"
    if let Some(e) = ctime_epoch(t) {
        return Some(Stamp::Wall(t, Some(e)));
    }
    // dmesg -T in another locale: "wo jul 28 05:19:43 2021" (Dutch).
    if let Some(e) = local_ctime(t) {
        return Some(Stamp::Wall(t, e));
    }
    // dmesg -H: "Sep11 18:40"
    let m = t.get(..3)?;
    if MONTHS.contains(&m) {
        let r = t.get(3..)?;
        let (_, r) = digits(r, 1, 2)?;
        let r = r.strip_prefix(' ')?;
        let (_, r) = digits(r, 2, 2)?;
        let r = r.strip_prefix(':')?;
        let (_, r) = digits(r, 2, 2)?;
        if r.is_empty() {
            return Some(Stamp::Wall(t, None));
        }
    }
    None
}

/// `[T123]` / `[  C1]` printk caller id.
fn caller_id(s: &str) -> Option<(&str, &str)> {
    let r = s.strip_prefix('[')?;
    let (inner, rest) = r.split_once(']')?;
    let id = inner.trim_start();
    let mut b = id.bytes();
    if !matches!(b.next(), Some(b'T' | b'C')) || id.len() < 2 || !b.all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((id, rest))
}

/// `/dev/kmsg` record header `PRI,SEQ,TS_USEC,FLAGS[,more];`: level,
/// sequence number, seconds since boot, the `caller=T123` field (5.10+
/// with CONFIG_PRINTK_CALLER) and the message.
fn kmsg_record(s: &str) -> Option<(u8, u64, f64, Option<&str>, &str)> {
    let (head, body) = s.split_once(';')?;
    if head.len() > 64 {
        return None;
    }
    let mut it = head.split(',');
    let pri: u32 = it.next()?.parse().ok()?;
    let seq: u64 = it.next()?.parse().ok()?;
    let usec: u64 = it.next()?.parse().ok()?;
    let flags = it.next()?;
    if flags.len() > 4 || !flags.bytes().all(|b| matches!(b, b'-' | b'c' | b'+')) {
        return None;
    }
    let caller = it.find_map(|f| f.strip_prefix("caller="));
    // Precision loss above 2^53 µs (285 years of uptime) is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let ts = usec as f64 / 1e6;
    Some((u8::try_from(pri & 7).ok()?, seq, ts, caller, body))
}

/// `dmesg -x` `kern  :info  : ` decoration.
fn dmesg_x(s: &str) -> Option<(u8, &str)> {
    const FAC: [&str; 12] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp",
    ];
    const LVL: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
    ];
    let (fac, r) = s.split_once(':')?;
    if !FAC.contains(&fac.trim_end()) {
        return None;
    }
    let (lvl, r) = r.split_once(':')?;
    let i = LVL.iter().position(|l| *l == lvl.trim())?;
    Some((u8::try_from(i).ok()?, r.strip_prefix(' ').unwrap_or(r)))
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'))
}

/// After a syslog date: `host kernel: `, `kernel: `, `[kernel] `,
/// `host prog[pid]: `.  Returns (body, is_kernel).
fn syslog_tag(s: &str) -> (&str, bool) {
    let st = s.trim_start();
    if let Some(r) = st.strip_prefix("kernel:") {
        return (r, true);
    }
    if let Some(r) = st.strip_prefix("[kernel]") {
        return (r, true);
    }
    let (t1, r1) = crate::util::token(st);
    let (t2, r2) = crate::util::token(r1);
    if is_hostname(t1) {
        if t2 == "kernel:" || t2 == "[kernel]" || (t2.starts_with("kernel[") && t2.ends_with("]:"))
        {
            return (r2, true);
        }
        // `host ERR kernel: ` (SONiC puts the severity before the tag).
        if severity_word(t2).is_some() {
            if let Some(r3) = r2.strip_prefix("kernel:") {
                return (r3, true);
            }
        }
        // Raw /dev/kmsg records relayed into syslog with no tag.
        if kmsg_record(r1).is_some() {
            return (r1, true);
        }
        if t2.ends_with(':') && t2.len() > 1 && !t2.starts_with('[') {
            // `host prog: msg`, unless it is a relay's host with no tag in
            // front of a kernel report whose first word ends in a colon
            // (`INFO: task ...`, `kswapd0: page allocation failure: ...`).
            let report = !t2.contains('[')
                && matches!(
                    crate::classify::classify(r1),
                    crate::classify::Line::Report(_) | crate::classify::Line::Single { .. }
                );
            if !report {
                return (r2, false);
            }
            return (r1, true);
        }
        // A relay's host and no tag (remote syslog of a router or a
        // netconsole): the kernel's only when a dmesg stamp follows or a
        // report family knows the line; else a program's line.
        let stamp = r1
            .strip_prefix('[')
            .and_then(|x| x.split_once(']'))
            .is_some_and(|(inner, _)| bracket_stamp(inner).is_some());
        let known = || {
            !matches!(
                crate::classify::classify(r1),
                crate::classify::Line::Other | crate::classify::Line::Blank
            )
        };
        if !r1.is_empty() && (stamp || known()) {
            return (r1, true);
        }
        if !r1.is_empty() {
            return (r1, false);
        }
    }
    (s, true)
}

/// OpenWrt/busybox `logread`: `Tue Feb  1 19:02:25 2022 ` (ctime with the
/// year) → (stamp, rest, epoch).
fn logread_stamp(s: &str) -> Option<(&str, &str, i64)> {
    if !DAYS.contains(&s.get(..3)?) {
        return None;
    }
    let r = s.get(3..)?.strip_prefix(' ')?;
    let (_, r) = bsd_stamp(r)?;
    let (_, r) = digits(r, 4, 4)?;
    let used = s.len() - r.len();
    let r = r.strip_prefix(' ')?;
    let wall = s.get(..used)?;
    Some((wall, r, ctime_epoch(wall)?))
}

/// `kern.warn` (logread's facility.level) → the printk level.
fn facility_level(t: &str) -> Option<u8> {
    let (fac, lvl) = t.split_once('.')?;
    if fac.is_empty()
        || !fac
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    let l = match lvl {
        "emerg" | "panic" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" | "error" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return None,
    };
    Some(l)
}

/// The header of an RFC 5424 message after its `<PRI>`.
struct Rfc5424<'a> {
    wall: &'a str,
    epoch: Option<i64>,
    app: &'a str,
    msg: &'a str,
}

/// `1 TIMESTAMP HOST APP PROCID MSGID SD [BOM]MSG` (RFC 5424 section 6):
/// nil fields are `-`, the structured data one or more `[id k="v" ...]`
/// elements (`]` and `"` escaped with `\` inside values).
fn rfc5424(s: &str) -> Option<Rfc5424<'_>> {
    let r = s.strip_prefix("1 ")?;
    let (wall, r, epoch) = match r.strip_prefix("- ") {
        Some(r) => ("", r, None),
        None => {
            let (w, r, e) = iso_stamp(r)?;
            (w, r, Some(e))
        }
    };
    let (_host, r) = crate::util::token(r);
    let (app, r) = crate::util::token(r);
    let (_procid, r) = crate::util::token(r);
    let (_msgid, r) = crate::util::token(r);
    if app.is_empty() {
        return None;
    }
    let r = structured_data(r)?;
    let r = r.strip_prefix(' ').unwrap_or(r);
    let msg = r.strip_prefix('\u{feff}').unwrap_or(r);
    Some(Rfc5424 {
        wall,
        epoch,
        app,
        msg,
    })
}

/// The text after RFC 5424 structured data (`-` or `[...]...`).
fn structured_data(r: &str) -> Option<&str> {
    if let Some(x) = r.strip_prefix('-') {
        return Some(x);
    }
    if !r.starts_with('[') {
        return None;
    }
    let mut in_value = false;
    let mut escaped = false;
    let mut depth = 0u32;
    for (i, c) in r.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_value => escaped = true,
            '"' => in_value = !in_value,
            '[' if !in_value => depth += 1,
            ']' if !in_value => {
                depth = depth.saturating_sub(1);
                if depth == 0 && !r.get(i + 1..).is_some_and(|n| n.starts_with('[')) {
                    return r.get(i + 1..);
                }
            }
            _ => {}
        }
    }
    None
}

/// Strip a shell prompt glued in front of a dmesg timestamp.
fn prompt_before_stamp(s: &str) -> Option<&str> {
    let head = s.get(..s.len().min(96)).or(Some(s))?;
    for pat in ["# [", "$ [", "> ["] {
        if let Some(i) = head.find(pat) {
            let cand = s.get(i + 2..)?;
            let inner = cand.strip_prefix('[')?.split_once(']')?.0;
            if bracket_stamp(inner).is_some() {
                return Some(cand);
            }
        }
    }
    None
}

/// Peel every recognised prefix layer off `line`.
pub(crate) fn strip(line: &str) -> Prefix<'_> {
    let mut p = Prefix {
        body: line,
        ..Prefix::default()
    };
    let mut s = line;
    for _ in 0..10 {
        // A byte-order mark: the start of a file saved by a Windows editor,
        // or of an RFC 5424 message relayed verbatim.
        s = s.trim_start_matches([' ', '\t', '\u{feff}']);
        let b0 = match s.as_bytes().first() {
            Some(b) => *b,
            None => break,
        };
        match b0 {
            b'>' => {
                s = s.get(1..).unwrap_or("");
                continue;
            }
            b'0'..=b'9' => {
                if !p.kmsg {
                    if let Some((lvl, seq, ts, caller, body)) = kmsg_record(s) {
                        p.level = Some(lvl);
                        p.caller = caller.filter(|c| {
                            c.len() >= 2
                                && matches!(c.as_bytes().first(), Some(b'T' | b'C'))
                                && c.bytes().skip(1).all(|b| b.is_ascii_digit())
                        });
                        p.seq = Some(seq);
                        p.monotonic = Some(ts);
                        p.kmsg = true;
                        p.stamped = true;
                        s = body;
                        // A kmsg body is the message verbatim: stop peeling
                        // except for the caller-id dictionary-free case.
                        break;
                    }
                }
                if let Some((wall, rest, epoch)) = year_bsd_stamp(s) {
                    if p.wall.is_none() {
                        p.wall = Some(wall);
                        p.wall_epoch = Some(epoch);
                    }
                    p.stamped = true;
                    p.syslog = true;
                    if p.level.is_none() {
                        p.level = severity_before_kernel(rest);
                    }
                    let (body, kernel) = syslog_tag(rest);
                    p.non_kernel |= !kernel;
                    s = body;
                    continue;
                }
                // A relay may add its own header in front of the original
                // one; the outermost stamp is kept.
                if let Some((wall, rest, epoch)) = iso_stamp(s) {
                    {
                        if p.wall.is_none() {
                            p.wall = Some(wall);
                            p.wall_epoch = Some(epoch);
                        }
                        p.stamped = true;
                        // `dmesg --time-format=iso` uses a comma before the
                        // fraction and has no syslog tag after the stamp.
                        if wall.as_bytes().get(19) == Some(&b',') {
                            s = rest;
                            continue;
                        }
                        let (body, kernel) = syslog_tag(rest);
                        if body.len() != rest.len() {
                            p.syslog = true;
                        }
                        p.non_kernel |= !kernel;
                        s = body;
                        continue;
                    }
                }
                // Editor line number in front of a timestamp or level.
                let (_, r) = crate::util::split_digits(s);
                if r.starts_with([' ', '\t']) {
                    let r2 = r.trim_start();
                    let looks_stamped = r2
                        .strip_prefix('[')
                        .and_then(|x| x.split_once(']'))
                        .is_some_and(|(inner, _)| bracket_stamp(inner).is_some())
                        || r2
                            .strip_prefix('<')
                            .is_some_and(|x| x.as_bytes().first().is_some_and(u8::is_ascii_digit));
                    if looks_stamped {
                        s = r2;
                        continue;
                    }
                }
                break;
            }
            b'<' => {
                // printk level "<6>"
                let r = s.get(1..).unwrap_or("");
                let (d, r2) = crate::util::split_digits(r);
                if !d.is_empty() && d.len() <= 3 {
                    if let Some(r3) = r2.strip_prefix('>') {
                        if p.level.is_none() {
                            p.level = d.parse::<u32>().ok().and_then(|v| u8::try_from(v & 7).ok());
                        }
                        if let Some(h) = rfc5424(r3) {
                            if p.wall.is_none() && !h.wall.is_empty() {
                                p.wall = Some(h.wall);
                                p.wall_epoch = h.epoch;
                            }
                            p.stamped = true;
                            p.syslog = true;
                            p.non_kernel |= h.app != "kernel";
                            s = h.msg;
                            continue;
                        }
                        s = r3;
                        continue;
                    }
                }
                break;
            }
            b'[' => {
                let inner_rest = s.get(1..).and_then(|r| r.split_once(']'));
                if let Some((inner, rest)) = inner_rest {
                    if let Some(st) = bracket_stamp(inner) {
                        match st {
                            Stamp::Mono(v) => {
                                if p.monotonic.is_none() {
                                    p.monotonic = Some(v);
                                }
                            }
                            Stamp::Delta => {}
                            Stamp::Wall(w, e) => {
                                if p.wall.is_none() {
                                    p.wall = Some(w);
                                    p.wall_epoch = e;
                                }
                            }
                        }
                        p.stamped = true;
                        s = rest;
                        let t = s.trim_start_matches(' ');
                        if let Some((id, r)) = caller_id(t) {
                            p.caller = Some(id);
                            s = r;
                        }
                        // journalctl -o short-monotonic: "[ 12.3] host kernel: msg"
                        let t = s.trim_start_matches(' ');
                        let (t1, r1) = crate::util::token(t);
                        let (t2, r2) = crate::util::token(r1);
                        if is_hostname(t1) && t2 == "kernel:" {
                            p.syslog = true;
                            s = r2;
                        }
                        continue;
                    }
                    if inner == "kernel" {
                        s = rest;
                        continue;
                    }
                }
                if let Some((id, r)) = caller_id(s) {
                    if p.stamped && p.caller.is_none() {
                        p.caller = Some(id);
                        s = r;
                        continue;
                    }
                }
                break;
            }
            _ => {
                if let Some((wall, rest, epoch)) = logread_stamp(s) {
                    if p.wall.is_none() {
                        p.wall = Some(wall);
                        p.wall_epoch = Some(epoch);
                    }
                    p.stamped = true;
                    p.syslog = true;
                    let (t1, r1) = crate::util::token(rest);
                    let rest = match facility_level(t1) {
                        Some(lvl) => {
                            if p.level.is_none() {
                                p.level = Some(lvl);
                            }
                            r1
                        }
                        None => rest,
                    };
                    // logread prints no host: the tag follows.
                    if let Some(r) = rest.strip_prefix("kernel:") {
                        s = r;
                        continue;
                    }
                    let (tag, _) = crate::util::token(rest);
                    if tag.len() > 1 && tag.ends_with(':') {
                        p.non_kernel = true;
                        s = rest;
                        continue;
                    }
                    let (body, kernel) = syslog_tag(rest);
                    p.non_kernel |= !kernel;
                    s = body;
                    continue;
                }
                if let Some((wall, rest)) = bsd_stamp(s) {
                    {
                        if p.wall.is_none() {
                            p.wall = Some(wall);
                        }
                        p.stamped = true;
                        p.syslog = true;
                        let (body, kernel) = syslog_tag(rest);
                        p.non_kernel |= !kernel;
                        s = body;
                        continue;
                    }
                }
                if p.wall.is_none() {
                    if let Some((wall, rest)) = local_bsd_stamp(s) {
                        // Only a header that a tag confirms (`host kernel:`,
                        // `host prog[pid]:`): a kernel message may start
                        // with a word, a number and a clock.
                        let (t1, r1) = crate::util::token(rest);
                        let (t2, _) = crate::util::token(r1);
                        let tagged = t1.ends_with(':') || t2.ends_with(':');
                        let (body, kernel) = syslog_tag(rest);
                        if tagged && body.len() != rest.len() {
                            p.wall = Some(wall);
                            p.stamped = true;
                            p.syslog = true;
                            p.non_kernel |= !kernel;
                            s = body;
                            continue;
                        }
                    }
                }
                if let Some(r) = s.strip_prefix("kernel:") {
                    s = r;
                    p.syslog = true;
                    continue;
                }
                if let Some((lvl, r)) = dmesg_x(s) {
                    if p.level.is_none() {
                        p.level = Some(lvl);
                    }
                    s = r;
                    continue;
                }
                if p.monotonic.is_none() && p.caller.is_none() {
                    // "raspberrypi-02 kernel: [509490.68] ..." (date lost)
                    let (t1, r1) = crate::util::token(s);
                    let (t2, r2) = crate::util::token(r1);
                    if t2 == "kernel:" && is_hostname(t1) && r2.starts_with('[') {
                        s = r2;
                        p.syslog = true;
                        continue;
                    }
                    if let Some(r) = prompt_before_stamp(s) {
                        s = r;
                        continue;
                    }
                }
                break;
            }
        }
    }
    p.body = s.trim_end_matches([' ', '\t', '\r']);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(l: &str) -> &str {
        strip(l).body
    }

    #[test]
    fn layers() {
        assert_eq!(
            body("[  364.324540] INFO: task x:1 blocked"),
            "INFO: task x:1 blocked"
        );
        assert_eq!(strip("[  364.324540] x").monotonic, Some(364.32454));
        assert_eq!(body("  [  246.906433] INFO: x"), "INFO: x");
        assert_eq!(
            body("    May 17 18:48:11 kernel: [ 6141.921740] INFO: task"),
            "INFO: task"
        );
        assert_eq!(
            body("Jul  8 15:09:13 xcp-ng-ha-1 kernel: [99081.001321] Call Trace:"),
            "Call Trace:"
        );
        assert_eq!(body("[  240.] INFO: task"), "INFO: task");
        assert_eq!(body("[Fri Nov  5 21:04:29 2021] INFO: task"), "INFO: task");
        assert_eq!(
            strip("[Fri Nov  5 21:04:29 2021] x").wall_epoch,
            Some(1_636_146_269)
        );
        assert_eq!(body("[Sep11 18:40] INFO: task"), "INFO: task");
        assert_eq!(body("[  +0.000015]       Not tainted"), "Not tainted");
        assert_eq!(body("> INFO: task"), "INFO: task");
        let p = strip("<6>[96093.594121][   T38] Call Trace:");
        assert_eq!(
            (p.body, p.caller, p.level),
            ("Call Trace:", Some("T38"), Some(6))
        );
        assert_eq!(body("Dec 23 20:08:41 [kernel] traps: x"), "traps: x");
        assert_eq!(
            body(" kernel:[405108.698255] watchdog: BUG"),
            "watchdog: BUG"
        );
        assert_eq!(body("/ # [90216.140000] watchdog: BUG"), "watchdog: BUG");
        assert_eq!(
            body("root@sh:/# [ 1428.380000] ------------[ cut here ]"),
            "------------[ cut here ]"
        );
        assert_eq!(body("11745 [46223316.649832] Kernel panic"), "Kernel panic");
        assert_eq!(
            body("  11749 [46223316.663898]  <NMI>  [<ff>] x"),
            "<NMI>  [<ff>] x"
        );
        assert_eq!(body("raspberrypi-02 kernel: [509490.688179] ---"), "---");
        assert_eq!(
            body("Jun 8 15:49:59 raspberrypi kernel: [58120.469383] INFO"),
            "INFO"
        );
        let p = strip("6,1234,5678901,-;segfault");
        assert_eq!((p.body, p.seq), ("segfault", Some(1234)));
        let p = strip("2024-01-02T03:04:05.123456+00:00 host kernel: hello");
        assert_eq!(p.body, "hello");
        assert!(p.wall_epoch.is_some());
        let p = strip("Jun 15 05:58:24 host systemd[1]: Started");
        assert!(p.non_kernel);
        assert_eq!(
            body("2770 D txg_rele_to_sync    [z]"),
            "2770 D txg_rele_to_sync    [z]"
        );
        assert_eq!(
            body("[<ffffffffc04d6bcd>] write_all_supers+0x95d/0xaf0"),
            "[<ffffffffc04d6bcd>] write_all_supers+0x95d/0xaf0"
        );
        assert_eq!(body("kern  :info  : [  1.0] hello"), "hello");
    }

    #[test]
    fn logread_rfc5424_and_relays() {
        let p = strip("Tue Feb  1 19:02:25 2022 kern.warn kernel: [  512.123456] hello");
        assert_eq!(
            (p.body, p.level, p.monotonic, p.wall),
            (
                "hello",
                Some(4),
                Some(512.123456),
                Some("Tue Feb  1 19:02:25 2022")
            )
        );
        assert!(!p.non_kernel);
        let p = strip("Tue Feb  1 19:02:25 2022 daemon.info dnsmasq[99]: hello");
        assert!(p.non_kernel);
        let p = strip("Tue Feb  1 19:02:25 2022 user.notice root: hello");
        assert!(p.non_kernel);
        // RFC 5424: nil stamp, structured data with an escaped `]`, a BOM.
        let p = strip("<11>1 - host kernel - - [x@1 a=\"b\\]c\"] \u{feff}[  7.5] hello");
        assert_eq!(
            (p.body, p.level, p.monotonic),
            ("hello", Some(3), Some(7.5))
        );
        let p = strip("<14>1 2024-03-04T08:15:02Z host sshd 77 - - Accepted");
        assert!(p.non_kernel);
        assert_eq!(p.wall, Some("2024-03-04T08:15:02Z"));
        // Not RFC 5424: a printk level before a dmesg stamp stays what it was.
        assert_eq!(strip("<6>[  1.0] x").body, "x");
        // A relay's host with no tag.
        assert_eq!(
            body("Mar  4 08:15:02 10.0.0.5 [  512.123456] hello"),
            "hello"
        );
        assert!(strip("Mar  4 08:15:02 10.0.0.5 backup done").non_kernel);
        assert!(
            !strip("Mar  4 08:15:02 10.0.0.5 INFO: task a:1 blocked for more than 120 seconds.")
                .non_kernel
        );
        assert_eq!(body("\u{feff}[  1.0] x"), "x");
        let p = strip("6,7,8,-,caller=C3;x");
        assert_eq!((p.body, p.caller), ("x", Some("C3")));
        // /dev/kmsg records relayed into syslog with a host and no tag.
        let p = strip("May 25 07:29:42 x 0,16627,40311380557,-,caller=C0;BUG: x");
        assert_eq!(
            (p.body, p.level, p.seq, p.caller),
            ("BUG: x", Some(0), Some(16627), Some("C0"))
        );
        assert!(!p.non_kernel);
        // SONiC: the year first, a severity word before the tag.
        let p = strip("2025 Jul  2 06:56:57.749624 sonic_testbed ERR kernel: [  993.6] x");
        assert_eq!((p.body, p.level, p.monotonic), ("x", Some(3), Some(993.6)));
        assert_eq!(p.wall, Some("2025 Jul  2 06:56:57.749624"));
        assert_eq!(p.wall_epoch, Some(1_751_439_417));
        assert!(strip("2025 Jul  2 06:56:57.749624 sonic_testbed INFO bgp#bgpd: x").non_kernel);
        // Other languages: a Finnish journal, Dutch `dmesg -T`.
        let p = strip("loka 14 20:43:06 neverwinter kernel: CIFS: VFS: x");
        assert_eq!((p.body, p.wall), ("CIFS: VFS: x", Some("loka 14 20:43:06")));
        assert!(strip("loka 14 20:43:06 neverwinter systemd[1]: x").non_kernel);
        let p = strip("[wo jul 28 05:19:43 2021] EXT4-fs error x");
        assert_eq!(
            (p.body, p.wall_epoch),
            ("EXT4-fs error x", Some(1_627_449_583))
        );
        // A message that merely starts with a word, a number and a clock.
        assert_eq!(
            body("[ 1.0] took 12 01:02:03 to settle"),
            "took 12 01:02:03 to settle"
        );
    }
}
