//! Tiny, dependency-free readers of `/proc`, used by scenario constructors to
//! wait until a kernel situation is really established, and by tests to assert
//! on it.
//!
//! These deliberately re-parse `/proc` by hand instead of using
//! `wedge-procfs`: the kit must not depend on the code it is testing.
//!
//! Every function takes a *tid* (a kernel task id). `/proc/<tid>/...` resolves
//! for any thread of any process even though only thread-group leaders are
//! listed by `readdir(/proc)`.

use std::fs;
use std::path::PathBuf;

fn task_dir(tid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{tid}"))
}

/// Raw `/proc/<tid>/stat` split into fields, numbered as in proc(5) minus one
/// (so `fields[0]` is the pid, `fields[1]` the comm, `fields[2]` the state).
///
/// The comm is located via the *last* `)` because a comm may itself contain
/// spaces and parentheses.
pub fn stat_fields(tid: i32) -> Option<Vec<String>> {
    let raw = fs::read_to_string(task_dir(tid).join("stat")).ok()?;
    let open = raw.find('(')?;
    let close = raw.rfind(')')?;
    let mut out = vec![
        raw[..open].trim().to_string(),
        raw[open + 1..close].to_string(),
    ];
    out.extend(raw[close + 1..].split_whitespace().map(str::to_string));
    Some(out)
}

/// One field of `/proc/<tid>/stat` using proc(5)'s 1-based numbering
/// (1 = pid, 2 = comm, 3 = state, 4 = ppid, 9 = flags, ...).
pub fn stat_field(tid: i32, number: usize) -> Option<String> {
    stat_fields(tid)?.into_iter().nth(number.checked_sub(1)?)
}

/// The one-letter scheduler state from `/proc/<tid>/stat` (`R`, `S`, `D`, `T`,
/// `t`, `Z`, `X`, `I`, ...), or `None` once the task is gone (reaped).
pub fn state_of(tid: i32) -> Option<char> {
    stat_field(tid, 3)?.chars().next()
}

/// `task->flags` (field 9 of stat), e.g. `PF_EXITING` = `0x4`.
pub fn flags_of(tid: i32) -> Option<u32> {
    stat_field(tid, 9)?.parse().ok()
}

/// `PF_EXITING`: set by `exit_signals()` at the start of `do_exit()`.
pub const PF_EXITING: u32 = 0x0000_0004;
/// `PF_IO_WORKER`: an io_uring worker (`iou-wrk-*`, `iou-sqp-*`).
pub const PF_IO_WORKER: u32 = 0x0000_0010;
/// `PF_KTHREAD`.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// The parent pid (field 4 of stat).
pub fn ppid_of(tid: i32) -> Option<i32> {
    stat_field(tid, 4)?.parse().ok()
}

/// `/proc/<tid>/comm` without the trailing newline.
pub fn comm_of(tid: i32) -> Option<String> {
    let s = fs::read_to_string(task_dir(tid).join("comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// `/proc/<tid>/wchan`: the symbol the task sleeps in (`"0"` when running or
/// when the kernel hides it), or `None` when unreadable.
pub fn wchan_of(tid: i32) -> Option<String> {
    fs::read_to_string(task_dir(tid).join("wchan")).ok()
}

/// `/proc/<tid>/stack` reduced to function names, innermost first
/// (`"[<0>] request_wait_answer+0x12f/0x210"` becomes `"request_wait_answer"`).
/// Compiler suffixes such as `.isra.0` are kept (see [`base_name`]).
/// Empty when unreadable (needs root and `CONFIG_STACKTRACE`).
pub fn stack_of(tid: i32) -> Vec<String> {
    let Ok(raw) = fs::read_to_string(task_dir(tid).join("stack")) else {
        return Vec::new();
    };
    raw.lines()
        .filter_map(|line| {
            let sym = line.split_once("] ").map_or(line, |(_, s)| s).trim();
            let name = sym.split('+').next().unwrap_or(sym);
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// True when the task is really asleep (off the run queue: `wchan` is not
/// `0`) and either its `wchan` is `func` or its `/proc/<tid>/stack` contains
/// `func` (both compared after [`base_name`]).
///
/// The wchan check matters: a task that has just set its state to `S` in
/// `prepare_to_wait()` but not yet called `schedule()` already shows the
/// final state and stack, while `get_wchan()` still returns 0 for it.
pub fn blocked_in(tid: i32, func: &str) -> bool {
    let Some(wchan) = wchan_of(tid) else {
        return false;
    };
    if wchan.is_empty() || wchan == "0" {
        return false;
    }
    base_name(&wchan) == func || stack_of(tid).iter().any(|f| base_name(f) == func)
}

/// True when the task is asleep and off the run queue (`wchan` is a symbol,
/// not `0`). Right after a task sets its sleep state in `prepare_to_wait()`
/// /proc already shows `S`/`D`, but until `schedule()` has dequeued it
/// `get_wchan()` returns 0; waiting for this makes assertions on wchan
/// deterministic.
pub fn asleep(tid: i32) -> bool {
    wchan_of(tid).is_some_and(|w| !w.is_empty() && w != "0")
}

/// A symbol without the suffixes GCC adds to specialised copies
/// (`fuse_do_readfolio.isra.0` -> `fuse_do_readfolio`,
/// `put_files_struct.part.0` -> `put_files_struct`).
pub fn base_name(sym: &str) -> &str {
    sym.split_once('.').map_or(sym, |(b, _)| b)
}

/// The value part of a `Key:\tvalue` line of `/proc/<tid>/status`.
pub fn status_field(tid: i32, key: &str) -> Option<String> {
    let raw = fs::read_to_string(task_dir(tid).join("status")).ok()?;
    raw.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// A hexadecimal signal set from status (`SigPnd`, `ShdPnd`, `SigBlk`,
/// `SigIgn`, `SigCgt`). Bit `n-1` is signal `n`, so SIGKILL is `0x100`.
pub fn sigset_of(tid: i32, key: &str) -> Option<u64> {
    u64::from_str_radix(&status_field(tid, key)?, 16).ok()
}

/// Bit of signal `sig` in a `/proc/.../status` signal set.
pub const fn sig_bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Thread ids of process `pid` from `/proc/<pid>/task`, sorted.
pub fn tids_of(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = fs::read_dir(task_dir(pid).join("task"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// Direct children of `pid` (all of its threads' children), by scanning
/// `/proc/*/stat` for a matching ppid.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| ppid_of(p) == Some(pid))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// The `NSpid:` line of status split into numbers: outermost namespace first,
/// so `[host_pid, pid_in_child_ns]` for a pid-namespace init seen from the host.
pub fn nspid_of(tid: i32) -> Vec<i32> {
    status_field(tid, "NSpid")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the task still exists in `/proc` (zombies included).
pub fn exists(tid: i32) -> bool {
    task_dir(tid).join("stat").exists()
}

/// A one-line human summary (`state wchan top-of-stack flags`) for failure
/// messages.
pub fn describe(tid: i32) -> String {
    let stack = stack_of(tid);
    format!(
        "tid {tid} comm={:?} state={:?} wchan={:?} flags={:#x} stack={:?} SigPnd={:?} ShdPnd={:?}",
        comm_of(tid).unwrap_or_default(),
        state_of(tid),
        wchan_of(tid).unwrap_or_default(),
        flags_of(tid).unwrap_or(0),
        stack,
        status_field(tid, "SigPnd"),
        status_field(tid, "ShdPnd"),
    )
}
