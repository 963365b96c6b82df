//! No false alarms: with no scenario running, `wedge` finds nothing wedged
//! on this machine. A separate test binary, so that no scenario of the live
//! tests runs beside it.

mod common;

use common::{check, critical, wedge};
use libtest_mimic::{Arguments, Trial};

fn idle_machine_is_not_wedged() -> Result<(), libtest_mimic::Failed> {
    let r = wedge(&["--json"]);
    let v = r.json();
    let wedged = critical(&v);
    check(wedged.is_empty() && r.code == Some(0), || {
        format!(
            "false alarm on an idle machine (exit {:?}): {wedged:#?}",
            r.code
        )
    })
}

/// Disk and CPU load like a heavy build: writers that fsync (short D
/// sleeps in jbd2/writeback) and compilers. None of it is wedged.
fn busy_machine_is_not_wedged() -> Result<(), libtest_mimic::Failed> {
    let dir = std::env::temp_dir().join(format!("wedge-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut load = Vec::new();
    for i in 0..3 {
        let f = dir.join(format!("w{i}"));
        let script = format!(
            "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do dd if=/dev/zero of={} bs=1M count=64 conv=fsync status=none; done",
            f.display()
        );
        load.push(
            std::process::Command::new("bash")
                .args(["-c", &script])
                .spawn()
                .map_err(|e| e.to_string())?,
        );
    }
    let c = dir.join("x.c");
    std::fs::write(&c, "int main(void){return 0;}\n").map_err(|e| e.to_string())?;
    let script = format!(
        "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do cc -O2 -o {}/x {} 2>/dev/null || true; done",
        dir.display(),
        c.display()
    );
    load.push(
        std::process::Command::new("bash")
            .args(["-c", &script])
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut result = Ok(());
    for _ in 0..3 {
        let r = wedge(&["--json"]);
        let v = r.json();
        let wedged = critical(&v);
        if !wedged.is_empty() || r.code != Some(0) {
            result = Err(format!("false alarm under load (exit {:?}): {wedged:#?}", r.code).into());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    for mut l in load {
        let _ = l.kill();
        let _ = l.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Without root, wedge shows what an ordinary user can see and names what
/// is missing.
fn as_an_ordinary_user() -> Result<(), libtest_mimic::Failed> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        wedge_testkit::skip_or_fail("needs root to switch to an ordinary user");
        return Ok(());
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_wedge"))
        .args(["ps", "--all", "--json"])
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    check(matches!(out.status.code(), Some(0 | 1)), || {
        format!(
            "exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let limits = v["limitations"].to_string();
    check(
        limits.contains("kernel stacks") && limits.contains("run as root"),
        || limits.clone(),
    )?;
    check(limits.contains("wait channels of other users"), || {
        limits.clone()
    })?;
    // Its own view of pid 1: present, with reasons for what it cannot read.
    let init = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 1)
        .ok_or("pid 1 missing")?;
    check(
        init["threads"][0]["kernel_stack"]["missing"]["reason"] == "permission_denied",
        || init["threads"][0]["kernel_stack"].to_string(),
    )
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let mut args = Arguments::from_args();
    // One at a time: the load of one test must not run beside another.
    args.test_threads = Some(1);
    libtest_mimic::run(
        &args,
        vec![
            Trial::test("idle_machine_is_not_wedged", idle_machine_is_not_wedged),
            Trial::test("busy_machine_is_not_wedged", busy_machine_is_not_wedged),
            Trial::test("as_an_ordinary_user", as_an_ordinary_user),
        ],
    )
    .exit();
}
