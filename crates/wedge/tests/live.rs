//! `wedge ps`, `wedge why` and `wedge` against real kernel situations built
//! by wedge-testkit on this machine: zombies, stopped and traced tasks, a
//! vfork parent, FUSE waits before and after SIGKILL, a process whose
//! cmdline read blocks on mmap_lock, a pid-namespace init.

mod common;

use common::{chains, check, finding, process, thread, wedge, wedge_within};
use libtest_mimic::{Arguments, Failed, Trial};
use std::process::Command;
use std::time::Duration;
use wedge_testkit::mntns::{
    in_private_mount_namespace, run_in_private_mount_namespace, FusectlHidden,
};
use wedge_testkit::{
    setup_or_skip, ExitWhileFlushing, FuseDaemon, FuseReader, FuseStatWaiter, FuseThreadReader,
    InodeLockQueue, IoUringMode, IoUringOnFuse, MmapLockHolder, PidnsInit, PidnsInitWithFuseThread,
    Stopped, Traced, VforkParent, Zombie, ZombieWithStoppedParent,
};

type R = Result<(), Failed>;

fn state(snap: &serde_json::Value, tid: i32) -> String {
    thread(snap, tid)
        .and_then(|t| t["state"].as_str())
        .unwrap_or("?")
        .to_string()
}

fn zombie() -> R {
    let z = setup_or_skip!(Zombie::start());
    let snap = wedge(&["ps", "--json"]).json();
    check(state(&snap, z.zombie_pid) == "zombie", || {
        format!("zombie state: {}", state(&snap, z.zombie_pid))
    })?;
    let ps = wedge(&["ps"]);
    check(
        ps.stdout
            .lines()
            .any(|l| l.contains(&z.zombie_pid.to_string()) && l.contains(" Z ")),
        || {
            format!(
                "wedge ps does not list zombie {}:\n{}",
                z.zombie_pid, ps.stdout
            )
        },
    )?;
    let why = wedge(&["why", &z.zombie_pid.to_string()]);
    check(
        why.stdout
            .contains("has exited; its parent has not reaped it"),
        || why.stdout.clone(),
    )?;
    check(
        why.stdout
            .contains(&format!("wk-zombie-par ({}", z.parent_pid)),
        || why.stdout.clone(),
    )?;
    // A fresh zombie of a parent that could reap it is not news; one that
    // stays past the grace period is.
    // (Only this scene's zombie counts: the machine may hold others.)
    let fresh = wedge(&["--json"]).json();
    check(
        finding(&fresh, "zombie.unreaped", z.zombie_pid).is_none(),
        || format!("fresh zombie reported: {fresh}"),
    )?;
    std::thread::sleep(Duration::from_millis(5_300));
    let verdict = wedge(&["--json"]).json();
    let f = finding(&verdict, "zombie.unreaped", z.zombie_pid).cloned();
    check(f.is_some(), || {
        format!("no zombie.unreaped finding: {verdict}")
    })?;
    check(
        f.unwrap()["title"]
            .as_str()
            .unwrap()
            .contains("does not call wait()"),
        || "reason for the zombie not given".into(),
    )
}

fn zombie_stopped_parent() -> R {
    let z = setup_or_skip!(ZombieWithStoppedParent::start());
    let verdict = wedge(&["--json"]).json();
    let f = finding(&verdict, "zombie.unreaped", z.zombie_pid())
        .cloned()
        .ok_or("no zombie finding")?;
    check(
        f["title"].as_str().unwrap().contains("parent is stopped"),
        || f.to_string(),
    )?;
    check(
        f["remedies"]
            .to_string()
            .contains(&format!("kill -CONT {}", z.parent_pid())),
        || f.to_string(),
    )
}

fn stopped_and_traced() -> R {
    let s = setup_or_skip!(Stopped::start());
    let t = setup_or_skip!(Traced::start());
    let snap = wedge(&["ps", "--json"]).json();
    check(state(&snap, s.pid) == "stopped", || {
        format!("stopped: {}", state(&snap, s.pid))
    })?;
    check(state(&snap, t.pid) == "tracing_stop", || {
        format!("traced: {}", state(&snap, t.pid))
    })?;
    let tr = thread(&snap, t.pid).unwrap()["tracer_pid"].as_i64();
    check(tr == Some(t.tracer_pid as i64), || {
        format!("tracer {tr:?} != {}", t.tracer_pid)
    })?;
    let ps = wedge(&["ps"]);
    check(
        ps.stdout.contains(&format!("traced by {}", t.tracer_pid)),
        || ps.stdout.clone(),
    )?;
    let why = wedge(&["why", &t.pid.to_string()]);
    check(
        why.stdout
            .contains(&format!("tracer      wk-tracer ({})", t.tracer_pid)),
        || why.stdout.clone(),
    )?;
    check(why.stdout.contains("is stopped by its tracer"), || {
        why.stdout.clone()
    })
}

fn vfork_parent() -> R {
    let v = setup_or_skip!(VforkParent::start());
    let snap = wedge(&["ps", "--json"]).json();
    let t = thread(&snap, v.pid).ok_or("vfork parent missing")?;
    check(t["state"] == "disk_sleep", || t.to_string())?;
    check(t["wchan"] == "kernel_clone", || t.to_string())?;
    let why = wedge(&["why", &v.pid.to_string()]);
    check(why.stdout.contains("vfork parent"), || why.stdout.clone())?;
    check(
        why.stdout
            .contains(&format!("wk-vfork-child ({}", v.child_pid)),
        || why.stdout.clone(),
    )?;
    // A vfork parent waits as long as its child runs: not wedged by itself.
    let verdict = wedge(&["--json"]).json();
    let wedged_on_it = verdict["findings"].as_array().unwrap().iter().any(|f| {
        f["severity"] == "critical" && f["pids"].as_array().unwrap().iter().any(|p| p == v.pid)
    });
    check(!wedged_on_it, || {
        format!("vfork parent reported wedged: {verdict}")
    })
}

fn fuse_reader_then_sigkill() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    let snap = wedge(&["ps", "--json"]).json();
    let t = thread(&snap, r.pid).ok_or("reader missing")?;
    check(
        t["state"] == "sleeping" && t["wchan"] == "request_wait_answer",
        || t.to_string(),
    )?;
    let ps = wedge(&["ps"]);
    check(
        ps.stdout
            .lines()
            .any(|l| l.contains(&r.pid.to_string()) && l.contains("request_wait_answer")),
        || {
            format!(
                "S reader in FUSE wait not listed by default:\n{}",
                ps.stdout
            )
        },
    )?;
    let why = wedge(&["why", &r.pid.to_string()]);
    check(
        why.stdout
            .contains(&format!("FUSE connection {}", fs.conn())),
        || why.stdout.clone(),
    )?;

    r.sigkill().map_err(|e| e.to_string())?;
    wedge_testkit::wait_until(Duration::from_secs(3), || {
        wedge_testkit::proc::state_of(r.pid) == Some('D')
    });
    let ps = wedge(&["ps"]);
    let line = ps
        .stdout
        .lines()
        .find(|l| l.contains(&format!(" {} ", r.pid)))
        .ok_or_else(|| format!("killed reader not listed:\n{}", ps.stdout))?
        .to_string();
    check(
        line.contains(" D ") && line.contains("SIGKILL pending"),
        || line.clone(),
    )?;
    check(ps.code == Some(1), || {
        format!("exit status {:?} with a task wedged", ps.code)
    })?;
    let why = wedge(&["why", &r.pid.to_string()]);
    check(
        why.stdout.contains(
            "SIGKILL is pending but cannot be delivered until this uninterruptible wait ends",
        ),
        || why.stdout.clone(),
    )?;
    check(why.code == Some(1), || format!("why exit {:?}", why.code))?;
    let verdict = wedge(&["--json"]);
    check(verdict.code == Some(1), || {
        format!("verdict exit {:?}", verdict.code)
    })?;
    let v = verdict.json();
    let f = finding(&v, "fuse.unanswered", r.pid)
        .cloned()
        .ok_or_else(|| format!("no fuse.unanswered finding: {v}"))?;
    check(
        f["remedies"].to_string().contains(&format!(
            "echo 1 > /sys/fs/fuse/connections/{}/abort",
            fs.conn()
        )),
        || f.to_string(),
    )?;
    check(f["severity"] == "critical", || f.to_string())
}

fn cmdline_blocked_on_mmap_lock() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let m = setup_or_skip!(MmapLockHolder::start(&fs));
    // The situation a person meets: ps and friends hang on this process.
    let cat = Command::new("timeout")
        .args(["5", "cat", &format!("/proc/{}/cmdline", m.pid)])
        .output()
        .map_err(|e| e.to_string())?;
    check(cat.status.code() == Some(124), || {
        format!("cat /proc/PID/cmdline did not time out: {:?}", cat.status)
    })?;
    // wedge finishes, exits, and says why.
    let ps = wedge_within(&["ps"], Duration::from_secs(2));
    check(ps.took < Duration::from_secs(2), || {
        format!("wedge ps took {:?}", ps.took)
    })?;
    check(
        ps.stdout
            .contains(&format!("reading /proc/{}/cmdline blocked > ", m.pid)),
        || format!("blocked read not reported:\n{}", ps.stdout),
    )?;
    let why = wedge_within(&["why", &m.pid.to_string()], Duration::from_secs(2));
    check(why.took < Duration::from_secs(2), || {
        format!("wedge why took {:?}", why.took)
    })?;
    check(why.stdout.contains("mmap_lock"), || why.stdout.clone())?;
    check(why.stdout.contains("blocked > 250 ms"), || {
        why.stdout.clone()
    })?;
    let snap = wedge_within(&["ps", "--json"], Duration::from_secs(2)).json();
    let p = process(&snap, m.pid).ok_or("mmap-lock process missing")?;
    check(p["cmdline"]["missing"]["reason"] == "timed_out", || {
        p["cmdline"].to_string()
    })?;
    let v = wedge_within(&["--json"], Duration::from_secs(2)).json();
    let f =
        finding(&v, "wedge.read_blocked", m.pid).ok_or_else(|| format!("no read_blocked: {v}"))?;
    check(
        f["blocked_on"]
            .to_string()
            .contains(&format!("held by thread {}", m.memread_tid)),
        || f.to_string(),
    )?;
    let blocked = snap["blocked_reads"].as_array().unwrap();
    check(
        blocked
            .iter()
            .any(|b| b["pid"] == m.pid && b["what"] == "cmdline"),
        || format!("{blocked:?}"),
    )
}

fn pidns_init() -> R {
    let p = setup_or_skip!(PidnsInit::start());
    let snap = wedge(&["ps", "--all", "--json"]).json();
    let pr = process(&snap, p.init_pid).ok_or("init missing")?;
    let ns: Vec<i64> = pr["ns_pids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    check(ns.last() == Some(&1) && ns.len() == 2, || {
        format!("ns_pids {ns:?}")
    })?;
    let why = wedge(&["why", &p.init_pid.to_string()]);
    check(why.stdout.contains("init of its pid namespace"), || {
        why.stdout.clone()
    })?;
    check(why.stdout.contains("PID 1 of its pid namespace"), || {
        why.stdout.clone()
    })
}

fn tree_and_all() -> R {
    let z = setup_or_skip!(Zombie::start());
    let tree = wedge(&["ps", "--tree"]);
    let zl = tree
        .stdout
        .lines()
        .find(|l| l.contains(&format!(" {} ", z.zombie_pid)))
        .ok_or_else(|| tree.stdout.clone())?;
    check(zl.contains("\\_ "), || {
        format!("zombie not drawn under its parent: {zl}")
    })?;
    let par = tree
        .stdout
        .lines()
        .position(|l| l.contains(&format!(" {} ", z.parent_pid)));
    let kid = tree
        .stdout
        .lines()
        .position(|l| l.contains(&format!(" {} ", z.zombie_pid)));
    check(par.is_some() && par < kid, || tree.stdout.clone())?;
    let all = wedge(&["ps", "--all"]);
    check(
        all.stdout.lines().count() > tree.stdout.lines().count(),
        || "--all shows no more".into(),
    )
}

fn bad_pid_is_an_error() -> R {
    let r = wedge(&["why", "999999999"]);
    check(r.code == Some(2), || format!("exit {:?}", r.code))?;
    check(r.stderr.contains("no process or thread 999999999"), || {
        r.stderr.clone()
    })
}

fn io_uring_exit_waits_on_fuse() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let u = setup_or_skip!(IoUringOnFuse::start(&fs, IoUringMode::Async));
    u.sigkill().map_err(|e| e.to_string())?;
    wedge_testkit::wait_until(Duration::from_secs(3), || {
        wedge_testkit::proc::state_of(u.pid) == Some('D')
    });
    let v = wedge(&["--json"]).json();
    let f =
        finding(&v, "io_uring.stuck", u.pid).ok_or_else(|| format!("no io_uring.stuck: {v}"))?;
    check(f["severity"] == "critical", || f.to_string())?;
    let chain = f["chain"].to_string();
    check(
        chain.contains("iou-wrk-") && chain.contains(&format!("FUSE connection {}", fs.conn())),
        || chain.clone(),
    )?;
    check(
        chain.contains(&format!("wk-fused {}", fs.daemon_pid())),
        || chain.clone(),
    )?;
    check(
        f["remedies"].to_string().contains("UV_USE_IO_URING=0"),
        || f.to_string(),
    )?;
    let why = wedge(&["why", &u.pid.to_string()]);
    check(why.stdout.contains("Waits on (to the root cause)"), || {
        why.stdout.clone()
    })
}

/// Plain (issued inline by the submitter) and SQPOLL (issued by iou-sqp):
/// after SIGKILL the process is wedged and the chain reaches the daemon.
fn io_uring_plain_and_sqpoll() -> R {
    for mode in [IoUringMode::Plain, IoUringMode::Sqpoll] {
        let fs = setup_or_skip!(FuseDaemon::start());
        let u = setup_or_skip!(IoUringOnFuse::start(&fs, mode));
        u.sigkill().map_err(|e| e.to_string())?;
        wedge_testkit::wait_until(Duration::from_secs(3), || {
            wedge_testkit::proc::state_of(u.pid) == Some('D')
        });
        let r = wedge(&["--json"]);
        check(r.code == Some(1), || format!("{mode:?}: exit {:?}", r.code))?;
        let v = r.json();
        let mine: Vec<&serde_json::Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["severity"] == "critical"
                    && f["pids"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x == u.pid))
            })
            .collect();
        check(!mine.is_empty(), || {
            format!("{mode:?}: nothing wedged for {}: {v}", u.pid)
        })?;
        let chains: String = mine.iter().map(|f| f["chain"].to_string()).collect();
        check(
            chains.contains(&format!("wk-fused {}", fs.daemon_pid())),
            || format!("{mode:?}: chain does not reach the daemon: {chains}"),
        )?;
        if matches!(mode, IoUringMode::Sqpoll) {
            check(chains.contains("iou-sqp-"), || chains.clone())?;
        }
    }
    Ok(())
}

fn flush_on_exit() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let e = setup_or_skip!(ExitWhileFlushing::start(&fs));
    let v = wedge(&["--json"]).json();
    let f = finding(&v, "fuse.flush_on_exit", e.pid)
        .ok_or_else(|| format!("no fuse.flush_on_exit: {v}"))?;
    check(f["evidence"].to_string().contains("fuse_flush"), || {
        f.to_string()
    })?;
    check(
        f["blocked_on"]
            .to_string()
            .contains(&format!("FUSE connection {} (", fs.conn())),
        || f.to_string(),
    )?;
    // An exiting task's files are off its table: the connection is known
    // only by elimination (the one with requests waiting). With other FUSE
    // scenes running on the machine it is one candidate among several, and
    // then no abort may be offered at all.
    let remedies = f["remedies"].to_string();
    let aborts = remedies.matches("/sys/fs/fuse/connections/").count();
    let own = format!("/sys/fs/fuse/connections/{}/abort", fs.conn());
    check(
        (aborts == 1 && remedies.contains(&own))
            || (aborts == 0 && f["evidence"].to_string().contains("candidate")),
        || f.to_string(),
    )
}

/// Issue 10: a multi-threaded reader killed with SIGKILL leaves its leader
/// a zombie (whose /proc/PID/fd lists nothing) and one thread D in
/// request_wait_answer, while another FUSE mount also has a request
/// waiting. The finding names its own connection, found through the
/// thread's own fd table and the read's fd argument, and never the other.
fn killed_thread_reader_names_only_its_connection() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let other = setup_or_skip!(FuseDaemon::start());
    let _bystander = setup_or_skip!(FuseReader::start(&other));
    let r = setup_or_skip!(FuseThreadReader::start(&fs));
    r.sigkill().map_err(|e| e.to_string())?;
    let v = wedge(&["--json"]).json();
    let f = finding(&v, "fuse.unanswered", r.pid)
        .cloned()
        .ok_or_else(|| format!("no fuse.unanswered for {}: {v}", r.pid))?;
    let text = f.to_string();
    let mine = format!("FUSE connection {} (", fs.conn());
    let theirs = format!("FUSE connection {} (", other.conn());
    let theirs_abort = format!("connections/{}/", other.conn());
    check(
        !text.contains(&theirs) && !text.contains(&theirs_abort),
        || format!("names the other connection {}: {text}", other.conn()),
    )?;
    check(
        f["remedies"].to_string().contains(&format!(
            "echo 1 > /sys/fs/fuse/connections/{}/abort",
            fs.conn()
        )),
        || text.clone(),
    )?;
    check(f["chain"].to_string().contains(&mine), || text.clone())?;
    check(
        f["chain"].as_array().is_some_and(|c| {
            c.iter()
                .filter_map(|l| l.as_str())
                .filter(|l| l.contains("FUSE connection"))
                .all(|l| l.contains(&mine))
        }),
        || format!("every chain through FUSE must end on its own connection: {text}"),
    )?;
    check(
        f["evidence"]
            .to_string()
            .contains(&format!("/task/{}/fd/", r.tid)),
        || format!("the tie should cite the thread's own fd: {text}"),
    )
}

/// Issue 10: with fusectl not mounted (the default on many distributions),
/// a stat() waiter below a FUSE mount whose daemon never answers LOOKUP is
/// tied to its connection through its cwd and the mount's device minor
/// (mountinfo `0:N`), its daemon is named, and the remedy mounts fusectl
/// first. Runs in a private mount namespace: the host's fusectl is never
/// unmounted.
fn stat_waiter_without_fusectl() -> R {
    if !in_private_mount_namespace() {
        let out = setup_or_skip!(run_in_private_mount_namespace(
            "stat_waiter_without_fusectl",
            Duration::from_secs(90)
        ));
        print!("{}", out.stdout);
        return check(out.success, || format!("{}\n{}", out.stdout, out.stderr));
    }
    let fs = setup_or_skip!(FuseDaemon::start());
    let hidden = setup_or_skip!(FusectlHidden::hide());
    let w = setup_or_skip!(FuseStatWaiter::start(&fs));
    let v = wedge(&["--json"]).json();
    let why = wedge(&["why", &w.pid.to_string()]);
    let pid = w.pid;
    // fusectl back first: the waiter's teardown may need to abort.
    drop(hidden);
    drop(w);
    let f = finding(&v, "fuse.unanswered", pid)
        .cloned()
        .ok_or_else(|| format!("no fuse.unanswered for the stat waiter: {v}"))?;
    let text = f.to_string();
    let remedies = f["remedies"].as_array().cloned().unwrap_or_default();
    let commands: Vec<String> = remedies
        .iter()
        .filter_map(|r| r["command"].as_str().map(str::to_string))
        .collect();
    check(
        commands.first().map(String::as_str)
            == Some("mount -t fusectl none /sys/fs/fuse/connections"),
        || format!("fusectl must be mounted first: {text}"),
    )?;
    check(
        commands.get(1).is_some_and(|c| {
            c == &format!("echo 1 > /sys/fs/fuse/connections/{}/abort", fs.conn())
        }),
        || format!("abort of connection {} expected: {text}", fs.conn()),
    )?;
    check(text.contains("working directory only"), || text.clone())?;
    check(
        f["chain"]
            .to_string()
            .contains(&format!("wk-fused {} (", fs.daemon_pid())),
        || format!("the daemon {} should be named: {text}", fs.daemon_pid()),
    )?;
    check(
        why.stdout
            .contains(&format!("FUSE connection {} (", fs.conn())),
        || why.stdout.clone(),
    )
}

fn pidns_init_waits_for_fuse_flusher() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let p = setup_or_skip!(PidnsInitWithFuseThread::start(&fs));
    let why = wedge(&["why", &p.init_pid.to_string()]);
    let chains = chains(&why.stdout)
        .ok_or_else(|| format!("no chain for the init:\n{}", why.stdout))?
        .to_string();
    check(chains.contains(&p.flusher_pid.to_string()), || {
        chains.clone()
    })?;
    check(
        chains.contains(&format!("FUSE connection {}", fs.conn())),
        || chains.clone(),
    )
}

fn inode_lock_queue_names_the_holder() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    let why = wedge(&["why", &q.second_pid.to_string()]);
    check(why.stdout.contains("path_openat"), || why.stdout.clone())?;
    let chains = chains(&why.stdout)
        .ok_or_else(|| format!("no chain:\n{}", why.stdout))?
        .to_string();
    check(chains.contains(&q.first_pid.to_string()), || chains.clone())?;
    check(
        chains.contains(&format!("FUSE connection {}", fs.conn())),
        || chains.clone(),
    )?;
    let v = wedge(&["--json"]).json();
    let f =
        finding(&v, "lock.convoy", q.second_pid).ok_or_else(|| format!("no lock.convoy: {v}"))?;
    check(
        f["pids"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == q.first_pid)),
        || f.to_string(),
    )
}

/// The chain names the daemon's own state: a stopped daemon is the root.
fn fuse_daemon_stopped_is_named() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    let d = fs.daemon_pid();
    // SAFETY: kill(2) on the kit's own daemon; resumed below.
    unsafe { libc::kill(d, libc::SIGSTOP) };
    wedge_testkit::wait_until(Duration::from_secs(3), || {
        wedge_testkit::proc::state_of(d) == Some('T')
    });
    let why = wedge(&["why", &r.pid.to_string()]);
    // SAFETY: as above.
    unsafe { libc::kill(d, libc::SIGCONT) };
    check(why.stdout.contains(&format!("wk-fused {d} (T")), || {
        why.stdout.clone()
    })
}

/// User-space stacks without ptrace: read for a stopped process, refused
/// for one blocked on FUSE (opening its binaries could block wedge).
fn user_stacks_read_or_refused() -> R {
    let st = setup_or_skip!(Stopped::start());
    let why = wedge(&["why", &st.pid.to_string(), "--user-stacks"]);
    let part = why
        .stdout
        .split("User-space stacks (no ptrace)")
        .nth(1)
        .ok_or_else(|| why.stdout.clone())?
        .to_string();
    check(part.contains("#0 ") && part.contains("#1 "), || {
        part.clone()
    })?;
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    let why = wedge_within(
        &["why", &r.pid.to_string(), "--user-stacks"],
        Duration::from_secs(3),
    );
    check(why.stdout.contains("not reading user-space stacks"), || {
        why.stdout.clone()
    })
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("zombie", zombie),
        Trial::test("zombie_stopped_parent", zombie_stopped_parent),
        Trial::test("stopped_and_traced", stopped_and_traced),
        Trial::test("vfork_parent", vfork_parent),
        Trial::test("fuse_reader_then_sigkill", fuse_reader_then_sigkill),
        Trial::test("cmdline_blocked_on_mmap_lock", cmdline_blocked_on_mmap_lock),
        Trial::test("pidns_init", pidns_init),
        Trial::test("tree_and_all", tree_and_all),
        Trial::test("bad_pid_is_an_error", bad_pid_is_an_error),
        Trial::test("io_uring_exit_waits_on_fuse", io_uring_exit_waits_on_fuse),
        Trial::test("io_uring_plain_and_sqpoll", io_uring_plain_and_sqpoll),
        Trial::test("fuse_daemon_stopped_is_named", fuse_daemon_stopped_is_named),
        Trial::test("user_stacks_read_or_refused", user_stacks_read_or_refused),
        Trial::test("flush_on_exit", flush_on_exit),
        Trial::test(
            "killed_thread_reader_names_only_its_connection",
            killed_thread_reader_names_only_its_connection,
        ),
        Trial::test("stat_waiter_without_fusectl", stat_waiter_without_fusectl),
        Trial::test(
            "pidns_init_waits_for_fuse_flusher",
            pidns_init_waits_for_fuse_flusher,
        ),
        Trial::test(
            "inode_lock_queue_names_the_holder",
            inode_lock_queue_names_the_holder,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
