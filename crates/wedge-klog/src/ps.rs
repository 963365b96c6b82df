//! Pasted `ps` listings, `/proc/PID/stack` pid markers.
//!
//! Columns come from the `ps` command line when it was pasted (`ps
//! -eopid,state,wchan:32,cmd`, `ps -A -ostate,pid,comm`, BSD `ps axo ...`),
//! else from the header line (`S   PID COMMAND`, `UID PID PENDING BLOCKED
//! IGNORED CAUGHT STAT TTY TIME COMMAND`).  When both are present and agree
//! in width, the command line wins, since it tells `comm` from `args`.

use crate::classify::mask_names;
use crate::event::{Detail, PsRow, PsSignals};
use crate::util::{bounded, token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Pid,
    Ppid,
    State,
    Stat,
    Wchan,
    /// Full command line (`args`/`cmd`).
    Cmd,
    /// Task name (`comm`).
    Comm,
    /// `COMMAND` header: either; decided per row.
    Command,
    Uid,
    User,
    Pending,
    Blocked,
    Ignored,
    Caught,
    Other,
}

fn spec_col(name: &str) -> Col {
    let name = name.split([':', '=']).next().unwrap_or(name);
    match name {
        "pid" | "tgid" => Col::Pid,
        "ppid" => Col::Ppid,
        "s" | "state" => Col::State,
        "stat" => Col::Stat,
        "wchan" | "nwchan" => Col::Wchan,
        "cmd" | "args" | "command" => Col::Cmd,
        "comm" | "ucomm" | "ucmd" | "fname" => Col::Comm,
        "uid" | "euid" | "ruid" => Col::Uid,
        "user" | "euser" | "uname" | "ruser" => Col::User,
        "pending" | "sig" => Col::Pending,
        "blocked" | "sigmask" => Col::Blocked,
        "ignored" | "sigignore" => Col::Ignored,
        "caught" | "sigcatch" => Col::Caught,
        _ => Col::Other,
    }
}

fn header_col(name: &str) -> Option<Col> {
    Some(match name {
        "PID" | "TGID" => Col::Pid,
        "PPID" => Col::Ppid,
        "S" => Col::State,
        "STAT" => Col::Stat,
        "WCHAN" => Col::Wchan,
        "CMD" | "ARGS" => Col::Cmd,
        "COMMAND" => Col::Command,
        "UID" | "EUID" | "RUID" => Col::Uid,
        "USER" | "EUSER" | "RUSER" | "UNAME" => Col::User,
        "PENDING" => Col::Pending,
        "BLOCKED" => Col::Blocked,
        "IGNORED" => Col::Ignored,
        "CAUGHT" => Col::Caught,
        "TTY" | "TT" | "TIME" | "%CPU" | "%MEM" | "VSZ" | "RSS" | "START" | "STIME" | "C"
        | "PRI" | "NI" | "ADDR" | "SZ" | "F" | "LWP" | "NLWP" | "TID" | "SPID" | "ELAPSED"
        | "PGID" | "SID" | "TPGID" | "PSR" | "CLS" | "RTPRIO" | "LABEL" | "GID" | "GROUP"
        | "SIZE" | "MAJFL" | "MINFL" | "PGRP" | "SESS" | "WCHAN:32" => Col::Other,
        _ => return None,
    })
}

/// What a line meant while a `ps` listing was expected.
pub(crate) enum PsOutcome {
    Event(Box<Detail>, Option<String>, Option<u32>),
    Consumed,
    End,
}

/// An active `ps` listing.
#[derive(Debug, Clone)]
pub(crate) struct PsContext {
    cols: Vec<Col>,
    from_spec: bool,
    header_seen: bool,
    rows: u32,
}

impl PsContext {
    /// A pasted `ps` command line (shell prompt allowed before it).
    pub(crate) fn from_command(line: &str) -> Option<PsContext> {
        let idx = if line.starts_with("ps ") {
            0
        } else {
            line.find(" ps ")? + 1
        };
        let head = line.get(..idx)?;
        // Only a shell prompt may precede the command ("$ ", "# ", "user@h:/# ").
        let h = head.trim();
        if !(h.is_empty()
            || h.ends_with('$')
            || h.ends_with('#')
            || h.ends_with('>')
            || h.ends_with('%'))
        {
            return None;
        }
        let args = line.get(idx + 3..)?;
        let args = args.split('|').next().unwrap_or(args);
        let mut cols = Vec::new();
        let mut it = args.split_whitespace().peekable();
        let mut bsd_signals = false;
        while let Some(tok) = it.next() {
            if let Some(long) = tok.strip_prefix("--") {
                if long == "format" || long == "o" {
                    if let Some(f) = it.next() {
                        cols.extend(f.split(',').filter(|x| !x.is_empty()).map(spec_col));
                    }
                }
                continue;
            }
            let (dash, letters) = match tok.strip_prefix('-') {
                Some(l) => (true, l),
                None => (false, tok),
            };
            if !letters
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b':' || b == b'=')
                && !dash
            {
                continue;
            }
            for (i, c) in letters.char_indices() {
                if c == 'o' || c == 'O' {
                    let rest = letters.get(i + 1..).unwrap_or("");
                    let spec = if rest.is_empty() {
                        it.next().unwrap_or("")
                    } else {
                        rest
                    };
                    cols.extend(spec.split(',').filter(|x| !x.is_empty()).map(spec_col));
                    break;
                }
                if !dash && c == 's' && letters.len() <= 4 {
                    bsd_signals = true;
                }
                if !c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
        if cols.is_empty()
            && !bsd_signals
            && !args
                .split_whitespace()
                .any(|t| t.starts_with('-') || t.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return None;
        }
        Some(PsContext {
            from_spec: !cols.is_empty(),
            cols,
            header_seen: false,
            rows: 0,
        })
    }

    /// A `ps` header line.
    pub(crate) fn from_header(line: &str) -> Option<PsContext> {
        let cols = parse_header(line)?;
        Some(PsContext {
            cols,
            from_spec: false,
            header_seen: true,
            rows: 0,
        })
    }

    pub(crate) fn row(&mut self, line: &str) -> PsOutcome {
        if !self.header_seen && self.rows == 0 {
            if let Some(h) = parse_header(line) {
                self.header_seen = true;
                if !(self.from_spec && h.len() == self.cols.len()) {
                    self.cols = h;
                    self.from_spec = false;
                }
                return PsOutcome::Consumed;
            }
        }
        if self.cols.is_empty() {
            return PsOutcome::End;
        }
        match parse_row(&self.cols, line) {
            Some((d, task, pid)) => {
                self.rows += 1;
                PsOutcome::Event(Box::new(d), task, pid)
            }
            None => PsOutcome::End,
        }
    }
}

/// Does the line look like a `ps` header?
pub(crate) fn looks_like_header(line: &str) -> bool {
    parse_header(line).is_some()
}

fn parse_header(line: &str) -> Option<Vec<Col>> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    if toks.len() < 2 || toks.len() > 32 || !toks.contains(&"PID") {
        return None;
    }
    toks.iter().map(|t| header_col(t)).collect()
}

fn parse_row(cols: &[Col], line: &str) -> Option<(Detail, Option<String>, Option<u32>)> {
    let mut rest = line.trim();
    if rest.is_empty() {
        return None;
    }
    let mut vals: Vec<(Col, &str)> = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        let last = i + 1 == cols.len();
        let v = if last && matches!(c, Col::Cmd | Col::Command | Col::Comm) {
            let v = rest;
            rest = "";
            v
        } else {
            let (t, r) = token(rest);
            rest = r;
            t
        };
        if v.is_empty() {
            return None;
        }
        vals.push((*c, v));
    }
    if !rest.is_empty() {
        return None;
    }
    let mut pid = None;
    let mut task = None;
    let mut row = PsRow::default();
    let mut sig = PsSignals::default();
    let mut is_sig = false;
    for (c, v) in vals {
        match c {
            Col::Pid => pid = Some(v.parse::<u32>().ok()?),
            Col::Ppid => row.ppid = Some(v.parse().ok()?),
            Col::State => {
                if v.len() != 1 || !"RSDZTtXIWPK".contains(v) {
                    return None;
                }
                row.state = Some(v.to_string());
            }
            Col::Stat => {
                if !v.chars().next().is_some_and(|c| "RSDZTtXIWPK".contains(c)) {
                    return None;
                }
                row.stat = Some(bounded(v, 16));
                sig.stat = Some(bounded(v, 16));
            }
            Col::Wchan => row.wchan = Some(bounded(v, 128)),
            Col::Cmd => row.cmd = Some(bounded(v, 512)),
            Col::Comm => task = Some(bounded(v, 64)),
            Col::Command => {
                if v.contains(' ') {
                    row.cmd = Some(bounded(v, 512));
                } else {
                    task = Some(bounded(v, 64));
                }
            }
            Col::Uid => match v.parse::<u32>() {
                Ok(u) => {
                    row.uid = Some(u);
                    sig.uid = Some(u);
                }
                // `ps -ef` shows a user name under UID.
                Err(_) => row.user = Some(bounded(v, 64)),
            },
            Col::User => row.user = Some(bounded(v, 64)),
            Col::Pending | Col::Blocked | Col::Ignored | Col::Caught => {
                if !crate::util::is_hex(v) {
                    return None;
                }
                is_sig = true;
                let s = Some(v.to_string());
                match c {
                    Col::Pending => sig.pending = s,
                    Col::Blocked => sig.blocked = s,
                    Col::Ignored => sig.ignored = s,
                    _ => sig.caught = s,
                }
            }
            Col::Other => {}
        }
    }
    pid?;
    if is_sig {
        sig.blocked_signals = sig.blocked.as_deref().map(mask_names).unwrap_or_default();
        sig.ignored_signals = sig.ignored.as_deref().map(mask_names).unwrap_or_default();
        sig.pending_signals = sig.pending.as_deref().map(mask_names).unwrap_or_default();
        return Some((Detail::PsSignals(sig), task, pid));
    }
    if row.state.is_none() {
        row.state = row
            .stat
            .as_ref()
            .and_then(|s| s.get(..1))
            .map(str::to_string);
    }
    Some((Detail::PsRow(row), task, pid))
}

/// A line naming the pid of a following `/proc/PID/stack` paste:
/// `PID = 301`, `PID: 301`, `cat /proc/301/stack`, `==> /proc/301/stack <==`.
pub(crate) fn pid_context(line: &str) -> Option<u32> {
    if let Some(r) = line.split_once("/proc/").map(|x| x.1) {
        let (d, rest) = crate::util::split_digits(r);
        if rest.starts_with("/stack") || rest.starts_with("/task/") {
            return d.parse().ok();
        }
    }
    let r = line.strip_prefix("PID")?;
    let r = r.trim_start().strip_prefix(['=', ':'])?.trim();
    r.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_and_rows() {
        let mut c =
            PsContext::from_command("# ps -eopid,state,wchan:32,cmd | awk '$2 ~ /D/'").expect("ps");
        assert_eq!(c.cols, vec![Col::Pid, Col::State, Col::Wchan, Col::Cmd]);
        match c.row("2770 D txg_rele_to_sync                 [z_wr_int_h/0]") {
            PsOutcome::Event(d, _, pid) => {
                assert_eq!(pid, Some(2770));
                match *d {
                    Detail::PsRow(r) => assert_eq!(r.cmd.as_deref(), Some("[z_wr_int_h/0]")),
                    _ => panic!("row"),
                }
            }
            _ => panic!("event"),
        }
        let mut c = PsContext::from_command("root@x:/# ps -A -ostate,pid,comm|grep D").expect("ps");
        assert!(matches!(c.row("S   PID COMMAND"), PsOutcome::Consumed));
        assert!(matches!(c.row("D 22938 nfsd"), PsOutcome::Event(..)));
        assert!(PsContext::from_command("NIC Link is Up 1000 Mbps Full Duplex").is_none());
        assert_eq!(pid_context("PID = 301"), Some(301));
        assert_eq!(pid_context("# cat /proc/42/stack"), Some(42));
    }
}
