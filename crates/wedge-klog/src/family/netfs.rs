//! Network filesystems: the NFS client (`nfs: server X not responding`),
//! Lustre (ptlrpc, `LustreError:`, LNet) and CIFS/SMB (`CIFS VFS:`).

use serde::Serialize;

use super::Assemble;
use super::Sample;
use crate::classify::Line;
use crate::event::{Detail, Event};
use crate::parser::{new_event, Parser};
use crate::prefix::Prefix;
use crate::util::{after, bounded, lead_u32, lead_u64, token};

/// Substrings of this family's first lines, for the prefilter (see
/// `scan.rs`): a line holding none of them is skipped unless a report is
/// open, so every first line of [`SAMPLES`] must contain one.
pub(crate) const KEYWORDS: &[&str] = &["nfs: server", "Lustre", "LNet", "CIFS"];

/// Sample first lines (from real logs of the corpus and bug reports) and
/// the kind each starts;
/// the family test feeds them through the prefilter and the parser.
pub(crate) const SAMPLES: &[Sample] = &[
    Sample {
        kind: "nfs_not_responding",
        text: "[1576939.453001] nfs: server 100.73.159.36 not responding, still trying",
    },
    Sample {
        kind: "nfs_server_ok",
        text: "[871222.760083] nfs: server 100.73.159.36 OK",
    },
    Sample {
        kind: "lustre_rpc_failed",
        text: "[ 10.0] Lustre: 2449:0:(client.c:2141:ptlrpc_expire_one_request()) @@@ Request sent has failed due to network error: [sent 1508144508/real 1508144518]  req@ffff880eb14da700 x1570198182041824/t0(0) o250->MGC172.31.126.87@o2ib@172.31.126.87@o2ib:26/25 lens 520/544 e 0 to 1 dl 1508144563 ref 1 fl Rpc:eXN/0/ffffffff rc 0/-1",
    },
    Sample {
        kind: "lustre_rpc_timeout",
        text: "[ 3963.751497] Lustre: 1160:0:(client.c:2114:ptlrpc_expire_one_request()) @@@ Request sent has timed out for slow reply: [sent 1507651404/real 1507651404]  req@ffff88005ef8c000 x1580882981821232/t0(0) o250->MGC10.14.81.0@tcp@10.14.81.0@tcp:26/25 lens 520/544 e 0 to 1 dl 1507651425 ref 1 fl Rpc:XN/0/ffffffff rc 0/-1",
    },
    Sample {
        kind: "lustre_error",
        text: "[ 11.0] LustreError: 11-0: fs-OST0000-osc-ffff8810: Communicating with 10.0.0.2@o2ib, operation ost_connect failed with -16.",
    },
    Sample {
        kind: "lustre_service_thread_inactive",
        text: "[ 4047.188475] LNet: Service thread pid 25305 was inactive for 200.09s. The thread might be hung, or it might only be slow and will resume later. Dumping the stack trace for debugging purposes:",
    },
    Sample {
        kind: "lustre_connection_lost",
        text: "[ 10.0] Lustre: fs-MDT0000-mdc-ffff8810: Connection to fs-MDT0000 (at 10.0.0.1@o2ib) was lost; in progress operations using this service will wait for recovery to complete",
    },
    Sample {
        kind: "lustre_connection_restored",
        text: "[ 12.0] Lustre: fs-MDT0000-mdc-ffff8810: Connection restored to fs-MDT0000 (at 10.0.0.1@o2ib)",
    },
    Sample {
        kind: "lnet_timeout",
        text: "[Mon Oct 16 09:54:43 2017] LNet: 2431:0:(o2iblnd_cb.c:3174:kiblnd_check_conns()) Timed out tx for 172.31.126.87@o2ib: 403055 seconds",
    },
    Sample {
        kind: "cifs_server_unresponsive",
        text: "CIFS VFS: Server <serverip> has not responded in 120 seconds. Reconnecting...",
    },
    Sample {
        kind: "cifs_server_unresponsive",
        text: "[ 1000.000000] CIFS: VFS: \\\\fileserver has not responded in 180 seconds. Reconnecting...",
    },
    Sample {
        kind: "cifs_vfs_error",
        text: "[  100.000000] CIFS VFS: Send error in SessSetup = -13",
    },
    Sample {
        kind: "cifs_vfs_error",
        text: "[  100.000000] CIFS: VFS: \\\\srv\\share error -11 on ioctl to get interface list",
    },
    Sample {
        kind: "cifs_mount_failed",
        text: "[  100.000001] CIFS VFS: cifs_mount failed w/return code = -13",
    },
];

// ---- event types ----

/// NFS client messages `nfs: server X not responding, still trying|timed out` / `OK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsServer {
    /// Server name or address as printed.
    pub server: String,
    /// `still trying` (hard mount: I/O waits forever) or `timed out` (soft mount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Lustre `ptlrpc_expire_one_request()` messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LustreRpc {
    /// Why the request failed (`network error`, `timed out for slow reply`).
    pub reason: String,
    /// Target of the request (`o250->MGC...@tcp`), when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// `LustreError: ...` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LustreError {
    /// Console message code (`11-0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Target device/import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Operation (`obd_ping`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Peer node (`172.31.126.88@o2ib`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Return code (`-107` = ENOTCONN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i64>,
    /// The message text.
    pub message: String,
}

/// `LNet: Service thread pid N was inactive for S.SSs` (Lustre watchdog).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LustreThread {
    /// Seconds the service thread did not make progress.
    pub inactive_seconds: f64,
}

/// `TARGET: Connection to SERVICE (at NID) was lost` / `Connection restored to ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LustreConnection {
    /// The import that lost (or regained) its server.
    pub target: String,
    /// Server NID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `LNet: ... Timed out tx for PEER: N seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LnetTimeout {
    /// LNet peer NID.
    pub peer: String,
    /// Seconds since last successful transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// `CIFS VFS: Server X has not responded in N seconds. Reconnecting...`
/// (before 5.x) and `CIFS: VFS: \\\\X has not responded in N seconds.
/// Reconnecting...` (5.x+ `cifs_server_dbg` puts the UNC `\\\\` in front of
/// the host name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CifsServer {
    /// The server's host name or address as printed, without the older
    /// form's `Server ` and the newer form's leading backslashes (both name
    /// the same thing: `server->hostname`, as in the mount's source).
    pub server: String,
    /// Seconds without a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

/// Other `CIFS VFS:` / `CIFS: VFS:` error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CifsVfsError {
    /// The text after `CIFS VFS: ` / `CIFS: VFS: `.
    pub message: String,
}

/// `CIFS VFS: cifs_mount failed w/return code = -13` (the mount(2) fails
/// with that errno: -13 EACCES, -112 EHOSTDOWN, -115 EINPROGRESS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CifsMountFailed {
    /// The negative errno.
    pub rc: i64,
}

/// Multi-line network-filesystem reports (the rest are one line).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NetfsLine {
    /// `Lustre: ... Service thread pid N was inactive for S seconds.`: a
    /// report whose trace follows.
    LustreThread { pid: u32, secs: f64 },
}

// ---- line recognisers (called from `classify`) ----

pub(crate) fn nfs(r: &str) -> Line {
    // "SERVER not responding, still trying" / "SERVER not responding, timed out" / "SERVER OK"
    if let Some((server, mode)) = r.split_once(" not responding") {
        let mode = mode.trim_start_matches(',').trim();
        return Line::single(Detail::NfsNotResponding(NfsServer {
            server: bounded(server, 256),
            mode: (!mode.is_empty()).then(|| bounded(mode, 32)),
        }));
    }
    if let Some(server) = r.strip_suffix(" OK") {
        return Line::single(Detail::NfsServerOk(NfsServer {
            server: bounded(server, 256),
            mode: None,
        }));
    }
    Line::Other
}

/// `PID:EXT:(file.c:123:func()) message` → (pid, message).
pub(crate) fn lustre_header(r: &str) -> (Option<u32>, &str) {
    let Some((pid, x)) = lead_u32(r) else {
        return (None, r);
    };
    if let Some(x) = x.strip_prefix(':') {
        if let Some((_, msg)) = x.split_once(") ") {
            return (Some(pid), msg.trim());
        }
    }
    (None, r)
}

pub(crate) fn lustre(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    if let Some(x) = msg.strip_prefix("@@@ Request sent has ") {
        let (reason, tail) = x.split_once(':').unwrap_or((x, ""));
        let reason = reason.trim();
        let request = tail
            .split_whitespace()
            .find(|t| t.starts_with('o') && t.contains("->"))
            .map(|t| bounded(t, 128));
        if let Some(rs) = reason.strip_prefix("failed due to ") {
            return Line::single_pid(
                Detail::LustreRpcFailed(LustreRpc {
                    reason: bounded(rs, 64),
                    request,
                }),
                pid,
            );
        }
        return Line::single_pid(
            Detail::LustreRpcTimeout(LustreRpc {
                reason: bounded(reason, 64),
                request,
            }),
            pid,
        );
    }
    if let Some(x) = msg.strip_prefix("Service thread pid ") {
        return lustre_thread(x);
    }
    // "TARGET: Connection to SERVICE (at NID) was lost; in progress
    // operations using this service will wait for recovery to complete"
    // and "TARGET: Connection restored to SERVICE (at NID)".
    if let Some((target, rest)) = msg.split_once(": Connection ") {
        let node = after(rest, "(at ")
            .and_then(|n| n.split_once(')'))
            .map(|n| bounded(n.0, 128));
        let c = LustreConnection {
            target: bounded(target, 128),
            node,
        };
        if rest.contains(" was lost") {
            return Line::single(Detail::LustreConnectionLost(c));
        }
        if rest.starts_with("restored") {
            return Line::single(Detail::LustreConnectionRestored(c));
        }
    }
    Line::Other
}

pub(crate) fn lustre_thread(x: &str) -> Line {
    let Some((pid, x)) = lead_u32(x) else {
        return Line::Other;
    };
    let Some(t) = after(x, "inactive for ") else {
        return Line::Other;
    };
    let num: String = t
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    match num.parse() {
        Ok(secs) => Line::report(NetfsLine::LustreThread { pid, secs }),
        Err(_) => Line::Other,
    }
}

pub(crate) fn lustre_error(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    let mut e = LustreError {
        message: bounded(msg, 512),
        ..LustreError::default()
    };
    // "11-0: TARGET: operation OP to node NODE failed: rc = -107"
    let (code, rest) = token(msg);
    if let Some(c) = code.strip_suffix(':') {
        if c.contains('-') && c.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            e.code = Some(c.to_string());
            let (target, rest2) = token(rest);
            if let Some(t) = target.strip_suffix(':') {
                e.target = Some(bounded(t, 128));
            }
            if let Some(op) = after(rest2, "operation ") {
                e.operation = Some(bounded(token(op).0, 64));
            }
            if let Some(n) = after(rest2, " to node ") {
                e.node = Some(bounded(token(n).0, 128));
            }
        }
    }
    if let Some(rc) = after(msg, "rc = ").or_else(|| after(msg, "failed with ")) {
        let t = token(rc).0.trim_end_matches([',', '.']);
        e.rc = t.parse().ok();
    }
    if e.node.is_none() {
        if let Some(n) = after(msg, "Communicating with ") {
            e.node = Some(bounded(token(n).0.trim_end_matches(','), 128));
        }
    }
    Line::single_pid(Detail::LustreError(e), pid)
}

pub(crate) fn lnet(r: &str) -> Line {
    let (pid, msg) = lustre_header(r);
    if msg.starts_with("Skipped ") {
        return Line::Related;
    }
    if let Some(x) = msg.strip_prefix("Service thread pid ") {
        return lustre_thread(x);
    }
    if let Some(x) = msg.strip_prefix("Timed out tx for ") {
        let (peer, tail) = x.split_once(": ").unwrap_or((x, ""));
        return Line::single_pid(
            Detail::LnetTimeout(LnetTimeout {
                peer: bounded(peer, 128),
                seconds: lead_u64(tail).map(|v| v.0),
            }),
            pid,
        );
    }
    if let Some(x) = msg.strip_prefix("Timed out RDMA with ") {
        let (peer, tail) = token(x);
        let secs = tail
            .strip_prefix('(')
            .and_then(|t| lead_u64(t).map(|v| v.0));
        return Line::single_pid(
            Detail::LnetTimeout(LnetTimeout {
                peer: bounded(peer, 128),
                seconds: secs,
            }),
            pid,
        );
    }
    Line::Other
}

pub(crate) fn cifs(r: &str) -> Line {
    // "Server X has not responded in N seconds. Reconnecting..." (pre-5.x
    // "CIFS VFS:", later "CIFS: VFS: \\server has not responded ...")
    if let Some((who, tail)) = r.split_once(" has not responded in ") {
        let server = who.strip_prefix("Server ").unwrap_or(who).trim();
        let server = server.trim_start_matches('\\');
        return Line::single(Detail::CifsServerUnresponsive(CifsServer {
            server: bounded(server, 256),
            seconds: lead_u64(tail).map(|v| v.0),
        }));
    }
    if let Some(rc) = after(r, "cifs_mount failed w/return code = ") {
        let rc = rc.trim();
        let (neg, digits) = match rc.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, rc),
        };
        if let Some((v, _)) = lead_u64(digits) {
            let v = i64::try_from(v).unwrap_or(i64::MAX);
            return Line::single(Detail::CifsMountFailed(CifsMountFailed {
                rc: if neg { -v } else { v },
            }));
        }
    }
    Line::single(Detail::CifsVfsError(CifsVfsError {
        message: bounded(r.trim(), 512),
    }))
}

// ---- meanings ----

/// The one-line explanation of a `nfs_not_responding` event.
pub(crate) fn meaning_nfs_not_responding(_ev: &Event, n: &NfsServer, _who: &str) -> String {
    format!(
        "NFS server {} is not responding ({}); tasks doing I/O on it sit in D state",
        n.server,
        match n.mode.as_deref() {
            Some("still trying") => "hard mount: the client retries forever",
            // A soft RPC gave up: a soft mount's I/O, and on NFSv4 the
            // client's own lease renewal (SEQUENCE/RENEW are soft on a hard
            // mount too: both kinds of line appear in the 6.1 guest test).
            Some("timed out") => {
                "a soft RPC gave up with EIO: a soft mount's I/O, or NFSv4's lease renewal"
            }
            _ => "?",
        }
    )
}

/// The one-line explanation of a `nfs_server_ok` event.
pub(crate) fn meaning_nfs_server_ok(_ev: &Event, n: &NfsServer, _who: &str) -> String {
    format!("NFS server {} is responding again", n.server)
}

/// The one-line explanation of a `lustre_rpc_failed, lustre_rpc_timeout` event.
pub(crate) fn meaning_lustre_rpc_failed(_ev: &Event, r: &LustreRpc, who: &str) -> String {
    format!("Lustre RPC failed: {} (client thread {who})", r.reason)
}

/// The one-line explanation of a `lustre_error` event.
pub(crate) fn meaning_lustre_error(_ev: &Event, e: &LustreError, _who: &str) -> String {
    format!("Lustre error: {}", e.message)
}

/// The one-line explanation of a `lustre_service_thread_inactive` event.
pub(crate) fn meaning_lustre_service_thread_inactive(
    _ev: &Event,
    t: &LustreThread,
    who: &str,
) -> String {
    format!(
        "Lustre service thread {who} made no progress for {} s (possibly hung)",
        t.inactive_seconds
    )
}

/// The one-line explanation of a `lustre_connection_lost` event.
pub(crate) fn meaning_lustre_connection_lost(
    _ev: &Event,
    c: &LustreConnection,
    _who: &str,
) -> String {
    format!(
        "Lustre lost its connection to {}{}; operations on it wait for recovery (tasks block in D state)",
        c.target,
        c.node.as_ref().map(|n| format!(" at {n}")).unwrap_or_default()
    )
}

/// The one-line explanation of a `lustre_connection_restored` event.
pub(crate) fn meaning_lustre_connection_restored(
    _ev: &Event,
    c: &LustreConnection,
    _who: &str,
) -> String {
    format!("Lustre connection to {} restored", c.target)
}

/// The one-line explanation of a `lnet_timeout` event.
pub(crate) fn meaning_lnet_timeout(_ev: &Event, t: &LnetTimeout, _who: &str) -> String {
    format!(
        "LNet transmit to {} timed out{}",
        t.peer,
        t.seconds
            .map(|s| format!(" after {s} s"))
            .unwrap_or_default()
    )
}

/// The one-line explanation of a `cifs_server_unresponsive` event.
pub(crate) fn meaning_cifs_server_unresponsive(_ev: &Event, c: &CifsServer, _who: &str) -> String {
    format!(
        "SMB/CIFS server {} did not respond{}; the client is reconnecting and I/O on the mount blocks",
        c.server,
        c.seconds.map(|s| format!(" for {s} s")).unwrap_or_default()
    )
}

/// The one-line explanation of a `cifs_vfs_error` event.
pub(crate) fn meaning_cifs_vfs_error(_ev: &Event, c: &CifsVfsError, _who: &str) -> String {
    format!("the SMB/CIFS client reported an error: {}", c.message)
}

/// The one-line explanation of a `cifs_mount_failed` event.
pub(crate) fn meaning_cifs_mount_failed(_ev: &Event, c: &CifsMountFailed, _who: &str) -> String {
    let why = match c.rc {
        -13 => " (EACCES: the server refused the credentials)",
        -2 => " (ENOENT: no such share or path)",
        -112 => " (EHOSTDOWN: the server is down)",
        -113 => " (EHOSTUNREACH: no route to the server)",
        -115 => " (EINPROGRESS: the connection to the server did not complete)",
        -111 => " (ECONNREFUSED: nothing listens on the SMB port)",
        -95 => " (EOPNOTSUPP: the server does not support the requested dialect or option)",
        _ => "",
    };
    format!("an SMB/CIFS mount failed with return code {}{why}", c.rc)
}

// ---- report assembly (called from the parser for `Line::Report`) ----

impl Assemble for NetfsLine {
    #[allow(clippy::too_many_lines)]
    fn assemble(self, ps: &mut Parser, p: &Prefix<'_>) {
        let caller = p.caller;
        let ln = ps.line_no;
        match self {
            NetfsLine::LustreThread { pid, secs } => {
                ps.close_cur(caller);
                let mut ev = new_event(
                    Detail::LustreServiceThreadInactive(LustreThread {
                        inactive_seconds: secs,
                    }),
                    p,
                    ln,
                );
                ev.pid = Some(pid);
                ps.open_event(ev, p, 6);
            }
        }
    }
}
