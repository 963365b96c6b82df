//! `wedge kernel …` on the running kernel, read through BPF: expressions
//! over its memory, types from its BTF, full kernel stacks of a task queued
//! on an rw-semaphore (the test kit's inode-lock scene), the shell, the raw
//! task pass. Needs root and BPF; without them each test prints SKIPPED.

mod common;

use common::{check, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use std::process::{Command, Stdio};
use std::time::Duration;
use wedge_testkit::{setup_or_skip, FuseDaemon, InodeLockQueue};

type R = Result<(), Failed>;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `wedge kernel` can run here; prints SKIPPED (fails under CI)
/// when it cannot, with the reason wedge gives.
fn live_or_skip() -> bool {
    if !is_root() {
        wedge_testkit::skip_or_fail("wedge kernel needs root (BPF)");
        return false;
    }
    let r = wedge(&["kernel", "eval", "1"]);
    if r.code == Some(0) {
        return true;
    }
    wedge_testkit::skip_or_fail(&format!("BPF unavailable here: {}", r.stderr.trim()));
    false
}

/// `(unsigned long)4303450870` → 4303450870.
fn number(out: &str) -> Option<u64> {
    out.trim().rsplit(')').next()?.trim().parse().ok()
}

fn init_task_comm() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let r = wedge(&["kernel", "eval", "init_task.comm"]);
    check(r.code == Some(0), || r.stderr.clone())?;
    check(r.stdout.trim() == "(char [16])\"swapper/0\"", || {
        r.stdout.clone()
    })?;
    let j = wedge(&["kernel", "eval", "init_task.comm", "--json"]).json();
    check(j["value"] == "swapper/0", || j.to_string())
}

fn jiffies_grows() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let a = wedge(&["kernel", "eval", "jiffies"]);
    let a = number(&a.stdout).ok_or_else(|| format!("{}{}", a.stdout, a.stderr))?;
    // Two ticks at HZ=100, the slowest: the next read must be larger.
    std::thread::sleep(Duration::from_millis(50));
    let b = wedge(&["kernel", "eval", "jiffies"]);
    let b = number(&b.stdout).ok_or_else(|| format!("{}{}", b.stdout, b.stderr))?;
    check(a > 0 && b > a, || format!("jiffies {a} then {b}"))
}

/// A member three pointers deep, through objects that are not all the
/// same (init_task's parent is itself): a sleeper three generations below
/// this test names this test's pid, `task(C)->real_parent->real_parent->
/// real_parent->tgid`; and one through the task list.
fn three_pointers_deep() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    // sh (A) → sh (B) → sleep (C); `; :` keeps each shell from exec'ing.
    let mut a = Command::new("sh")
        .args(["-c", "sh -c 'sleep 30; :'; :"])
        .stdin(Stdio::null())
        // The shells report the sleeper's SIGKILL at the end ("Killed").
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("sh: {e}"))?;
    let child_of = |p: u32| -> Option<u32> {
        let t = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).ok()?;
        t.split_whitespace().next()?.parse().ok()
    };
    let mut c = None;
    for _ in 0..200 {
        c = child_of(a.id()).and_then(child_of);
        if c.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = (|| -> R {
        let c = c.ok_or("the sleeper never started")?;
        // real_parent is the thread that forked: its tgid is this process.
        let expr = format!("task({c})->real_parent->real_parent->real_parent->tgid");
        let r = wedge(&["kernel", "eval", &expr]);
        check(
            number(&r.stdout) == Some(u64::from(std::process::id())),
            || {
                format!(
                    "{expr}: {}{} (test pid {})",
                    r.stdout,
                    r.stderr,
                    std::process::id()
                )
            },
        )?;
        // init_task.tasks.next is the first process's `tasks` node: its
        // `prev` leads back to init_task's.
        let r = wedge(&[
            "kernel",
            "eval",
            "init_task.tasks.next->prev == &init_task.tasks",
        ]);
        check(r.stdout.trim() == "(bool)true", || {
            format!("{}{}", r.stdout, r.stderr)
        })
    })();
    if let Some(c) = c {
        // SAFETY: kill(2) of the sleeper this test started.
        unsafe { libc::kill(c as i32, libc::SIGKILL) };
    }
    let _ = a.wait();
    result
}

fn null_is_a_fault() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let r = wedge(&["kernel", "eval", "*(int *)0"]);
    check(r.code == Some(2), || format!("exit {:?}", r.code))?;
    check(r.stderr.contains("fault at 0x0"), || r.stderr.clone())
}

fn ptype_task_struct() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let r = wedge(&["kernel", "ptype", "struct task_struct"]);
    check(r.code == Some(0), || r.stderr.clone())?;
    check(r.stdout.lines().any(|l| l.contains(" __state;")), || {
        r.stdout.clone()
    })
}

/// The function names of /proc/PID/stack (`[<0>] path_openat+0x…/0x…`).
fn proc_stack(pid: i32) -> Result<Vec<String>, String> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/stack"))
        .map_err(|e| format!("/proc/{pid}/stack: {e}"))?;
    Ok(t.lines()
        .filter_map(|l| {
            let f = l.split_whitespace().nth(1)?;
            Some(f.split('+').next()?.to_string())
        })
        .collect())
}

fn is_subsequence(small: &[String], big: &[String]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// B queued on the directory's i_rwsem that A holds: /proc shows
/// `path_openat` on top; the ORC walk shows the rw-semaphore slow path
/// and the scheduler below it, and every frame /proc shows, in order.
fn bt_of_a_task_queued_on_an_rwsem() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    let pid = q.second_pid.to_string();
    let proc = proc_stack(q.second_pid)?;
    let j = wedge(&["kernel", "bt", &pid, "--json"]).json();
    if let Err(m) = common::conforms("vmcore-bt.json", "kernel bt", &j) {
        return Err(m.into());
    }
    let t = &j["tasks"][0];
    let frames = t["frames"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = frames
        .iter()
        .filter_map(|f| f["function"].as_str().map(str::to_string))
        .collect();
    let orc = |n: &str| {
        frames
            .iter()
            .any(|f| f["function"] == n && f["unwound"] == "orc")
    };
    check(orc("__schedule"), || format!("no __schedule (orc): {t}"))?;
    check(
        orc("rwsem_down_write_slowpath") || orc("rwsem_down_read_slowpath"),
        || format!("no rwsem slow path: {t}"),
    )?;
    check(is_subsequence(&proc, &names), || {
        format!("/proc/{pid}/stack {proc:?} is not a subsequence of {names:?}")
    })?;
    let text = wedge(&["kernel", "bt", &pid]);
    println!("/proc/{pid}/stack: {proc:?}\n{}", text.stdout);
    check(text.stdout.contains("rwsem_down_write_slowpath"), || {
        text.stdout.clone()
    })
}

fn shell_runs_eval_and_bt() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let input = "eval init_task.comm\nbt 2\n";
    let r = common::run(
        &["kernel", "shell"],
        common::Opts::within(Duration::from_secs(60)).stdin(input.as_bytes()),
    );
    check(r.code == Some(0), || r.stderr.clone())?;
    check(r.stdout.contains("\"swapper/0\""), || r.stdout.clone())?;
    // kthreadd sleeps in its loop: its stack starts in the scheduler.
    check(
        r.stdout.contains("PID: 2 ") && r.stdout.contains("__schedule"),
        || r.stdout.clone(),
    )
}

fn tasks_lists_this_test() -> R {
    if !live_or_skip() {
        return Ok(());
    }
    let j = wedge(&["kernel", "tasks", "--json"]).json();
    let me = std::process::id() as i64;
    let tasks = j["tasks"].as_array().cloned().unwrap_or_default();
    check(
        tasks
            .iter()
            .any(|t| t["tid"].as_i64() == Some(me) && t["pid"].as_i64() == Some(me)),
        || format!("pid {me} not among {} tasks", tasks.len()),
    )
}

/// An ordinary user gets exit 2 and the reason, not a crash.
fn without_root_the_reason_is_given() -> R {
    if !is_root() {
        // This test is itself the unprivileged case.
        let r = wedge(&["kernel", "eval", "jiffies"]);
        return check(
            r.code == Some(2) && r.stderr.contains("cannot be read through BPF"),
            || format!("{:?} {}", r.code, r.stderr),
        );
    }
    let out = Command::new("timeout")
        .args([
            "30",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_wedge"))
        .args(["kernel", "eval", "jiffies"])
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(out.status.code() == Some(2), || {
        format!("exit {:?}: {err}", out.status.code())
    })?;
    check(err.contains("cannot be read through BPF"), || err.clone())
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("init_task_comm", init_task_comm),
        Trial::test("jiffies_grows", jiffies_grows),
        Trial::test("three_pointers_deep", three_pointers_deep),
        Trial::test("null_is_a_fault", null_is_a_fault),
        Trial::test("ptype_task_struct", ptype_task_struct),
        Trial::test(
            "bt_of_a_task_queued_on_an_rwsem",
            bt_of_a_task_queued_on_an_rwsem,
        ),
        Trial::test("shell_runs_eval_and_bt", shell_runs_eval_and_bt),
        Trial::test("tasks_lists_this_test", tasks_lists_this_test),
        Trial::test(
            "without_root_the_reason_is_given",
            without_root_the_reason_is_given,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
