//! Who holds the lock a task waits for: what only memory can tell.
//!
//! A task sleeping in `__mutex_lock` or `rwsem_down_{read,write}_slowpath`
//! has put a waiter on its own stack (`struct mutex_waiter` /
//! `struct rwsem_waiter`: `{ struct list_head list; struct task_struct
//! *task; … }`) and linked it into the lock's `wait_list`. So: find, in the
//! task's stack, a word equal to the task's own address with a valid list
//! node just before it, follow the list to the one node that is not on any
//! task stack (the lock's `wait_list`), and subtract its offset in the lock
//! to get the lock. Its `owner` field (an `atomic_long_t` holding a
//! `task_struct *` with flag bits in the low 3 bits; for an rw-semaphore,
//! bit 0 set means reader-owned and the pointer is only a hint) names the
//! holder. The same walk lists every waiter in queue order.

use crate::mem::VirtMem;
use crate::tasks::Task;
use crate::Vmcore;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    Mutex,
    RwSemaphore,
}

/// A lock a task waits for.
#[derive(Debug, Clone, Serialize)]
pub struct LockWait {
    pub waiter: i32,
    pub kind: LockKind,
    pub lock: u64,
    /// The holder's tid, for a mutex or a writer-held rw-semaphore.
    pub owner: Option<i32>,
    /// Held by readers (rw-semaphore): the owner field is only the last
    /// reader, so no owner is claimed.
    pub reader_owned: bool,
    /// Every waiter in queue order (tids).
    pub waiters: Vec<i32>,
    /// The symbol of the lock when it is a global (`some_mutex`).
    pub symbol: Option<String>,
}

const THREAD_SIZE: u64 = 16 << 10;

/// Finds the lock waits of all D-state tasks sleeping in a lock slowpath.
pub fn lock_waits(v: &Vmcore) -> Vec<LockWait> {
    let k = &v.kernel;
    let (Ok(mwl), Ok(mown)) = (k.off("mutex", "wait_list"), k.off("mutex", "owner")) else {
        return vec![];
    };
    let rwl = k.off("rw_semaphore", "wait_list").ok();
    let rown = k.off("rw_semaphore", "owner").ok();
    let by_addr: HashMap<u64, &Task> = v.tasks.iter().map(|t| (t.addr, t)).collect();
    let on_a_stack = |a: u64| {
        v.tasks
            .iter()
            .find(|t| t.stack_base != 0 && a >= t.stack_base && a < t.stack_base + THREAD_SIZE)
    };
    let mut out = Vec::new();
    for t in &v.tasks {
        if t.state != wedge_kernel::TaskState::DiskSleep || t.stack_base == 0 {
            continue;
        }
        let Ok(stack) = v.stack(t) else { continue };
        let fns: Vec<&str> = stack
            .frames
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        let kind = if fns.iter().any(|f| f.starts_with("__mutex_lock")) {
            LockKind::Mutex
        } else if fns.iter().any(|f| f.starts_with("rwsem_down_")) {
            LockKind::RwSemaphore
        } else {
            continue;
        };
        let (wl_off, own_off) = match kind {
            LockKind::Mutex => (mwl, mown),
            LockKind::RwSemaphore => match (rwl, rown) {
                (Some(a), Some(b)) => (a, b),
                _ => continue,
            },
        };
        let Ok(words) = k.mem.read_vec(t.stack_base, THREAD_SIZE as usize) else {
            continue;
        };
        let word =
            |i: usize| u64::from_le_bytes(words[8 * i..8 * i + 8].try_into().unwrap_or_default());
        // The waiter is below the saved context: scan from the saved sp up.
        let from = (t.saved_sp.saturating_sub(t.stack_base) / 8) as usize;
        let mut found = None;
        for i in from.max(2)..(THREAD_SIZE as usize / 8) {
            if word(i) != t.addr {
                continue;
            }
            let node = t.stack_base + 8 * (i as u64 - 2);
            // Walk the circular list from our node back to it.
            let mut seq = vec![node];
            let mut cur = word(i - 2);
            while cur != node && cur != 0 && seq.len() < 4096 {
                seq.push(cur);
                match k.mem.u64(cur) {
                    Ok(n) => cur = n,
                    Err(_) => break,
                }
            }
            if cur != node {
                continue;
            }
            let Some(h) = seq.iter().position(|&n| on_a_stack(n).is_none()) else {
                continue;
            };
            // Queue order: from the node after the head, around.
            let waiters: Vec<i32> = seq[h + 1..]
                .iter()
                .chain(&seq[..h])
                .filter_map(|&n| k.mem.u64(n + 16).ok())
                .filter_map(|task| by_addr.get(&task).map(|w| w.pid))
                .collect();
            found = Some((seq[h], waiters));
            break;
        }
        let Some((head, waiters)) = found else {
            continue;
        };
        let lock = head - wl_off;
        let Ok(owner_raw) = k.mem.u64(lock + own_off) else {
            continue;
        };
        let reader_owned = kind == LockKind::RwSemaphore && owner_raw & 1 != 0;
        let owner = if reader_owned {
            None
        } else {
            by_addr.get(&(owner_raw & !7)).map(|o| o.pid)
        };
        let symbol = k
            .syms
            .syms
            .binary_search_by_key(&lock, |s| s.addr)
            .ok()
            .map(|i| k.syms.syms[i].name.clone());
        out.push(LockWait {
            waiter: t.pid,
            kind,
            lock,
            owner,
            reader_owned,
            waiters,
            symbol,
        });
    }
    out
}
