//! `wedge log` on reports this machine's kernel writes during the test: a
//! hung-task report for a task held in D (with kernel.hung_task_timeout_secs
//! lowered, and restored afterwards), and the general protection fault of
//! `abort()` as PID 1 of a pid namespace. A test binary of its own: it
//! changes system-wide settings.

mod common;

use common::{check, finding, log_events, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use std::time::Duration;
use wedge_testkit::{setup_or_skip, FuseDaemon, FuseReader, KmsgTail, PidnsInitAbort};

type R = Result<(), Failed>;

/// Sets a sysctl for the life of the guard.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Result<Sysctl, String> {
        let old = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        std::fs::write(path, value).map_err(|e| format!("{path}: {e}"))?;
        Ok(Sysctl { path, old })
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.old.trim());
    }
}

fn hung_task_report() -> R {
    if !std::path::Path::new("/proc/sys/kernel/hung_task_timeout_secs").exists() {
        wedge_testkit::skip_or_fail(
            "this kernel has no hung-task detector (CONFIG_DETECT_HUNG_TASK)",
        );
        return Ok(());
    }
    let fs = setup_or_skip!(FuseDaemon::start());
    let r = setup_or_skip!(FuseReader::start(&fs));
    let mut kmsg = KmsgTail::open().map_err(|e| format!("/dev/kmsg: {e}"))?;
    // After SIGKILL the reader waits uninterruptibly (not killable): what
    // the detector reports.
    r.sigkill().map_err(|e| e.to_string())?;
    let _warn = Sysctl::set("/proc/sys/kernel/hung_task_warnings", "10")?;
    let _timeout = Sysctl::set("/proc/sys/kernel/hung_task_timeout_secs", "1")?;
    let needle = format!(":{} blocked for more than", r.pid);
    let line = kmsg.wait_for(&[needle.as_str()], Duration::from_secs(20));
    check(line.is_some(), || {
        format!("no hung-task report for {} within 20 s", r.pid)
    })?;
    drop(_timeout);
    // The live log, as JSON events.
    let (out, ev) = log_events(&["--kind", "hung_task", "--pid", &r.pid.to_string()]);
    check(!ev.is_empty(), || {
        format!(
            "no hung_task event for {}:\n{}\n{}",
            r.pid, out.stdout, out.stderr
        )
    })?;
    let e = &ev[ev.len() - 1];
    check(e["kind"] == "hung_task" && e["pid"] == r.pid, || {
        e.to_string()
    })?;
    check(e["blocked_seconds"].as_u64().is_some(), || e.to_string())?;
    check(
        e["call_trace"].to_string().contains("request_wait_answer"),
        || e.to_string(),
    )?;
    check(out.code == Some(1), || format!("exit {:?}", out.code))?;
    // The human view links the event to the task as it is now.
    let text = wedge(&["log", "--kind", "hung_task", "--pid", &r.pid.to_string()]);
    check(
        text.stdout
            .contains(&format!("({}) is D in request_wait_answer  (live", r.pid)),
        || text.stdout.clone(),
    )
}

fn pidns_init_abort_gpf() -> R {
    let a = setup_or_skip!(PidnsInitAbort::run());
    check(a.exit.signal() == Some(11), || {
        format!("init died of {:?}, not SIGSEGV", a.exit.signal())
    })?;
    check(a.trap_line.is_some(), || {
        format!("no trap line in /dev/kmsg: {:?}", a.kmsg_lines)
    })?;
    let (out, ev) = log_events(&["--kind", "gpf_trap", "--pid", &a.init_pid.to_string()]);
    let e = ev
        .last()
        .ok_or_else(|| format!("no gpf_trap event for {}:\n{}", a.init_pid, out.stdout))?;
    check(
        e["lib"].as_str().is_some_and(|l| l.starts_with("libc")),
        || e.to_string(),
    )?;
    check(
        e["meaning"]
            .to_string()
            .contains("PID 1 of a pid namespace"),
        || e.to_string(),
    )?;
    // The verdict names it, though the process is long gone.
    let v = wedge(&["--json"]).json();
    let f = finding(&v, "pidns.init_abort", a.init_pid)
        .cloned()
        .ok_or_else(|| format!("no pidns.init_abort finding: {v}"))?;
    check(f["remedies"].to_string().contains("--init"), || {
        f.to_string()
    })
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    // Sequential: the sysctl guard of one must not overlap the other.
    let tests = vec![
        Trial::test("hung_task_report", hung_task_report),
        Trial::test("pidns_init_abort_gpf", pidns_init_abort_gpf),
    ];
    libtest_mimic::run(&args, tests).exit();
}
