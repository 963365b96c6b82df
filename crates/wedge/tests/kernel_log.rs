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
    // Unlimited for the test's few seconds: each report of any other task
    // in D on the machine spends one of the kernel's warnings, and with a
    // budget the reader's own report may never come.
    let _warn = Sysctl::set("/proc/sys/kernel/hung_task_warnings", "-1")?;
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

/// Env var that turns this test binary into the segfaulting child.
const SEGV_ROLE: &str = "WEDGE_TEST_SEGV_AFTER_PADDING";

/// The child: runs 64 one-byte `nop`s on an anonymous executable page and
/// then `mov eax,[0]`, so the kernel's `Code:` line (42 bytes before ip)
/// holds 42 one-byte instructions before the faulting one.
fn segv_after_padding() -> ! {
    // SAFETY: plain syscalls on our own process; the page is ours, written
    // while writable and executed only after mprotect(PROT_EXEC).
    unsafe {
        // No core file anywhere (core_pattern may be a file or a pipe).
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"wk-segv-pad".as_ptr(), 0, 0, 0);
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page == libc::MAP_FAILED {
            std::process::exit(3);
        }
        let code = std::slice::from_raw_parts_mut(page.cast::<u8>(), 4096);
        code.fill(0x90);
        code[64..71].copy_from_slice(&[0x8b, 0x04, 0x25, 0, 0, 0, 0]);
        if libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) != 0 {
            std::process::exit(3);
        }
        let f: extern "C" fn() = std::mem::transmute(page);
        f();
    }
    std::process::exit(4)
}

/// A user-space segfault whose `Code:` prologue is longer than the rows
/// shown: the human view must still show the faulting instruction (`→ +0`).
fn segfault_code_shows_the_faulting_instruction() -> R {
    if std::fs::read_to_string("/proc/sys/debug/exception-trace").is_ok_and(|v| v.trim() == "0") {
        wedge_testkit::skip_or_fail("debug.exception-trace is 0: the kernel logs no segfaults");
        return Ok(());
    }
    let mut kmsg = KmsgTail::open().map_err(|e| format!("/dev/kmsg: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = std::process::Command::new(exe)
        .env(SEGV_ROLE, "1")
        .status()
        .map_err(|e| e.to_string())?;
    use std::os::unix::process::ExitStatusExt;
    check(status.signal() == Some(libc::SIGSEGV), || {
        format!("the child did not die of SIGSEGV: {status:?}")
    })?;
    // The pid is in the record; show_signal_msg() is rate limited
    // (printk_ratelimit), so a burst of other segfaults can swallow it.
    let Some(line) = kmsg.wait_for(&["wk-segv-pad[", "segfault at 0"], Duration::from_secs(5))
    else {
        wedge_testkit::skip_or_fail("no segfault record (printk rate limit?)");
        return Ok(());
    };
    let pid = line
        .split_once("wk-segv-pad[")
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(p, _)| p.to_string())
        .ok_or_else(|| format!("no pid in {line:?}"))?;
    check(
        kmsg.wait_for(&["Code: 90 90"], Duration::from_secs(5))
            .is_some(),
        || format!("no Code: record after {line:?}: {:?}", kmsg.lines()),
    )?;
    let text = wedge(&["log", "--kind", "segfault", "--pid", &pid]);
    check(
        text.stdout.contains("→   +0  8b 04 25 00 00 00 00") && text.stdout.contains("mov eax,[0]"),
        || format!("no faulting row:\n{}{}", text.stdout, text.stderr),
    )?;
    check(text.stdout.contains("-1  90"), || {
        format!("no prologue row right before the fault:\n{}", text.stdout)
    })
}

fn main() {
    if std::env::var_os(SEGV_ROLE).is_some() {
        segv_after_padding();
    }
    wedge_testkit::role_main_if_requested();
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    // Sequential: the sysctl guard of one must not overlap the other.
    let tests = vec![
        Trial::test("hung_task_report", hung_task_report),
        Trial::test("pidns_init_abort_gpf", pidns_init_abort_gpf),
        Trial::test(
            "segfault_code_shows_the_faulting_instruction",
            segfault_code_shows_the_faulting_instruction,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
