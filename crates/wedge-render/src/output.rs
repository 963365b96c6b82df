//! The JSON documents of the commands (`wedge --json`, `wedge why --json`,
//! `wedge vmcore … --json`), in one place, and the views of what only a
//! crash dump's memory tells (lock waits).
//!
//! Field names are the public schema: scripts and the tests parse them.
//! Source-specific parts (a dump's completeness, user-space stacks) are
//! type parameters, so this crate needs neither the dump reader nor the
//! core-file reader.

use crate::why::WhyReport;
use serde::Serialize;
use wedge_analysis::Finding;
use wedge_model::{Limitation, ScanStats, Snapshot};

/// `wedge --json`: the live verdict.
#[derive(Serialize)]
pub struct Verdict<'a> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    pub wedged: bool,
    /// Each with the episode of its task, when the recorder has one.
    pub findings: Vec<crate::history::FindingView<'a>>,
    /// The lock waits the live kernel names (task->blocker through BPF),
    /// every one; absent when there are none or BPF was not used.
    #[serde(skip_serializing_if = "<[LockWaitView]>::is_empty")]
    pub lock_waits: &'a [LockWaitView],
    pub limitations: &'a [Limitation],
    pub stats: &'a ScanStats,
}

/// `wedge why PID --json`, live.
#[derive(Serialize)]
pub struct Why<'a, U: Serialize> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    #[serde(flatten)]
    pub report: WhyReport<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_stacks: Option<&'a U>,
    /// The lock waits of the process's threads and of the waiters on locks
    /// they own, as the live kernel names them (BPF).
    #[serde(skip_serializing_if = "<[LockWaitView]>::is_empty")]
    pub lock_waits: &'a [LockWaitView],
}

/// `wedge vmcore DUMP why PID --json`.
#[derive(Serialize)]
pub struct DumpWhy<'a> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    #[serde(flatten)]
    pub report: WhyReport<'a>,
    pub lock_waits: &'a [LockWaitView],
    pub partial: Option<&'a str>,
    pub limitations: &'a [Limitation],
}

/// The panic a dump records (filled by `wedge_vmcore::Vmcore::crash`).
pub use wedge_model::Crash;

/// `wedge vmcore DUMP --json`: the verdict on a dump.
#[derive(Serialize)]
pub struct DumpVerdict<'a, C: Serialize, E: Serialize> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    pub dump: String,
    pub format: &'a str,
    pub kernel_release: Option<&'a str>,
    pub crash: &'a Crash,
    pub wedged: bool,
    pub partial: Option<&'a str>,
    pub completeness: &'a C,
    pub findings: &'a [Finding],
    pub lock_waits: &'a [LockWaitView],
    pub log_events: &'a [E],
    pub limitations: &'a [Limitation],
}

/// `wedge vmcore DUMP log --json`.
#[derive(Serialize)]
pub struct DumpLog<'a, E: Serialize> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    pub dump: &'a str,
    pub partial: Option<&'a str>,
    pub records: usize,
    pub events: &'a [E],
}

/// `wedge vmcore DUMP tasks --json`.
#[derive(Serialize)]
pub struct DumpTasks<'a, T: Serialize> {
    /// `wedge_model::SCHEMA_VERSION`: see docs/json-schema.md.
    pub schema_version: u32,
    pub dump: &'a str,
    pub partial: Option<&'a str>,
    pub task_errors: &'a [String],
    pub tasks: Vec<T>,
}

/// A lock a task waits for, as the lock records it (from a dump's
/// memory, or the live kernel's task->blocker: the snapshot's
/// `Thread.lock_wait`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockWaitView {
    pub waiter: i32,
    /// `mutex`, `semaphore`, `rw_semaphore`.
    pub kind: String,
    pub lock: u64,
    pub owner: Option<i32>,
    pub reader_owned: bool,
    pub waiters: Vec<i32>,
    pub symbol: Option<String>,
    /// `reader` or `writer`, for an rw-semaphore the live kernel names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_as: Option<String>,
    /// A semaphore's last holder: a hint, not an owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_holder: Option<i32>,
}

/// Every lock wait of the snapshot, in process then thread order.
pub fn lock_waits(snap: &Snapshot) -> Vec<LockWaitView> {
    snap.processes
        .iter()
        .flat_map(|p| &p.threads)
        .filter_map(|t| {
            let w = t.lock_wait.as_ref()?;
            Some(LockWaitView {
                waiter: t.tid,
                kind: w.kind.clone(),
                lock: w.address,
                owner: w.owner_tid,
                reader_owned: w.reader_owned,
                waiters: w.waiters.clone(),
                symbol: w.symbol.clone(),
                waits_as: w.waits_as.clone(),
                last_holder: w.last_holder_tid,
            })
        })
        .collect()
}

/// One line a lock wait: who waits for which lock, held by whom.
pub fn lock_text(waits: &[LockWaitView]) -> String {
    let mut s = String::new();
    for w in waits {
        let what = match w.kind.as_str() {
            "rw_semaphore" => "rw-semaphore",
            k => k,
        };
        let name = w.symbol.clone().unwrap_or_else(|| format!("{:#x}", w.lock));
        let owner = match (w.owner, w.reader_owned) {
            (Some(o), _) => format!("held by {o}"),
            (None, true) => "held by readers".into(),
            (None, false) if w.kind == "semaphore" => match w.last_holder {
                Some(h) => format!("no owner (a semaphore; last taken by {h}, a hint)"),
                None => "no owner (a semaphore)".into(),
            },
            (None, false) => "owner unknown".into(),
        };
        let how = w
            .waits_as
            .as_deref()
            .map(|h| format!(" as a {h}"))
            .unwrap_or_default();
        s.push_str(&format!(
            "  {} waits{how} for {what} {name}, {owner}; queue: {:?}\n",
            w.waiter, w.waiters
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_text_names_the_lock_and_its_holder() {
        let w = LockWaitView {
            waiter: 10,
            kind: "rw_semaphore".into(),
            lock: 0xffff_8880_0000_1000,
            owner: None,
            reader_owned: true,
            waiters: vec![10, 11],
            symbol: None,
            waits_as: None,
            last_holder: None,
        };
        assert_eq!(
            lock_text(&[w]),
            "  10 waits for rw-semaphore 0xffff888000001000, held by readers; queue: [10, 11]\n"
        );
        let json = serde_json::to_string(&LockWaitView {
            waiter: 1,
            kind: "mutex".into(),
            lock: 16,
            owner: Some(2),
            reader_owned: false,
            waiters: vec![1],
            symbol: Some("big_lock".into()),
            waits_as: None,
            last_holder: None,
        })
        .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"waiter":1,"kind":"mutex","lock":16,"owner":2,"reader_owned":false,"waiters":[1],"symbol":"big_lock"}"#
        );
    }

    /// A semaphore has no owner: the kernel's last_holder is shown as a
    /// hint, and a live rw-semaphore wait says how it waits.
    #[test]
    fn lock_text_says_a_semaphore_has_no_owner() {
        let w = LockWaitView {
            waiter: 10,
            kind: "semaphore".into(),
            lock: 0x1000,
            owner: None,
            reader_owned: false,
            waiters: vec![10],
            symbol: None,
            waits_as: None,
            last_holder: Some(7),
        };
        assert_eq!(
            lock_text(&[w]),
            "  10 waits for semaphore 0x1000, no owner (a semaphore; last taken by 7, a hint); queue: [10]\n"
        );
        let w = LockWaitView {
            waiter: 10,
            kind: "rw_semaphore".into(),
            lock: 0x1000,
            owner: Some(9),
            reader_owned: false,
            waiters: vec![10],
            symbol: None,
            waits_as: Some("writer".into()),
            last_holder: None,
        };
        assert_eq!(
            lock_text(&[w]),
            "  10 waits as a writer for rw-semaphore 0x1000, held by 9; queue: [10]\n"
        );
    }
}
