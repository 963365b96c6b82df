//! Paused containers, made for real: a cgroup frozen the way `docker pause`
//! (v1 freezer) and `systemctl freeze` (v2 `cgroup.freeze`) freeze one, by
//! the test kit (wedge_testkit::cgroup). wedge must name the frozen cgroup
//! and its thaw, not blame the system call the task was in; a kill -9 of a
//! v1-frozen task stays pending until the thaw; a freeze held up by a
//! killed FUSE reader stays FREEZING and the FUSE wait remains the wedge.
//!
//! Every assertion is about the scene's own pids: other tests' scenes may
//! run beside these.

mod common;

use common::{check, conforms, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use wedge_testkit::{setup_or_skip, Freezer, FrozenCgroup, FuseDaemon, FuseReader};

type R = Result<(), Failed>;

/// The findings of a verdict that name `pid`.
fn about(v: &Value, pid: i32) -> Vec<Value> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["pids"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x.as_i64() == Some(pid as i64)))
        })
        .cloned()
        .collect()
}

fn frozen_finding(v: &Value, pid: i32) -> Result<Value, Failed> {
    about(v, pid)
        .into_iter()
        .find(|f| f["id"] == "cgroup.frozen")
        .ok_or_else(|| format!("no cgroup.frozen finding names {pid}: {:?}", about(v, pid)).into())
}

/// v1: frozen, then kill -9: the SIGKILL stays pending, wedge says
/// "frozen", names the cgroup and gives `echo THAWED > …/freezer.state`;
/// no finding blames the nanosleep or calls the signal undeliverable.
fn v1_frozen_then_killed() -> R {
    let c = setup_or_skip!(FrozenCgroup::start(Freezer::V1));
    let pid = c.members[0];
    c.kill_members();
    let v = wedge(&["--json"]).json();
    conforms("verdict.json", "wedge --json (v1-frozen cgroup)", &v)?;
    let f = frozen_finding(&v, pid)?;
    check(f["severity"] == "critical", || {
        format!("a killed v1 member is unkillable until thawed: {f}")
    })?;
    let thaw = format!("echo THAWED > {}/freezer.state", c.dir.display());
    check(f["remedies"].to_string().contains(&thaw), || {
        format!("no {thaw:?}: {f}")
    })?;
    check(
        f["title"].as_str().is_some_and(|t| t.contains(&c.path)),
        || format!("cgroup not named: {f}"),
    )?;
    let others: Vec<String> = about(&v, pid)
        .iter()
        .filter(|f| f["id"] != "cgroup.frozen")
        .map(|f| f["id"].to_string())
        .collect();
    check(others.is_empty(), || {
        format!("other findings blame the frozen task: {others:?}")
    })?;
    let why = wedge(&["why", &pid.to_string()]);
    println!("wedge why:\n{}", why.stdout);
    check(
        why.stdout
            .contains(&format!("frozen by its cgroup {}", c.path)),
        || why.stdout.clone(),
    )?;
    check(
        why.stdout.contains("acted on once the task is thawed"),
        || why.stdout.clone(),
    )?;
    Ok(())
}

/// v2: frozen (S in the freezer trap): a warning naming the cgroup, with
/// `echo 0 > …/cgroup.freeze`.
fn v2_frozen() -> R {
    let c = setup_or_skip!(FrozenCgroup::start(Freezer::V2));
    let pid = c.members[0];
    let v = wedge(&["--json"]).json();
    let f = frozen_finding(&v, pid)?;
    let thaw = format!("echo 0 > {}/cgroup.freeze", c.dir.display());
    check(f["remedies"].to_string().contains(&thaw), || {
        format!("no {thaw:?}: {f}")
    })?;
    check(f["severity"] == "warning", || {
        format!("a paused v2 cgroup is a warning: {f}")
    })?;
    let snap = wedge(&["ps", "--json"]).json();
    conforms("snapshot.json", "wedge ps --json (v2-frozen cgroup)", &snap)?;
    let listed = snap["cgroup_freezes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| x["path"] == c.path.as_str() && x["progress"] == "frozen" && x["version"] == "v2");
    check(listed, || {
        format!(
            "snapshot's cgroup_freezes lack {}: {}",
            c.path, snap["cgroup_freezes"]
        )
    })?;
    Ok(())
}

/// A killed FUSE reader (D in request_wait_answer, not freezable) moved
/// into a v1 cgroup that is then frozen: the freeze stays FREEZING; wedge
/// says the cgroup is being frozen and that the reader holds it up, and
/// the FUSE finding stays.
fn v1_freeze_held_up_by_fuse() -> R {
    let fs = setup_or_skip!(FuseDaemon::start());
    let reader = setup_or_skip!(FuseReader::start(&fs));
    reader.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
    let c = setup_or_skip!(FrozenCgroup::around(Freezer::V1, &[reader.pid]));
    check(c.v1_state().as_deref() == Some("FREEZING"), || {
        format!(
            "a D reader should keep the freeze FREEZING: {:?}",
            c.v1_state()
        )
    })?;
    let v = wedge(&["--json"]).json();
    let f = frozen_finding(&v, reader.pid)?;
    check(
        f["title"]
            .as_str()
            .is_some_and(|t| t.contains("being frozen")),
        || f.to_string(),
    )?;
    check(
        f["evidence"]
            .to_string()
            .contains("the freeze waits for it"),
        || f.to_string(),
    )?;
    check(f["severity"] == "critical", || f.to_string())?;
    let fuse = about(&v, reader.pid)
        .into_iter()
        .any(|f| f["id"].as_str().is_some_and(|i| i.starts_with("fuse.")));
    check(fuse, || {
        format!(
            "the FUSE wait is still the wedge: {:?}",
            about(&v, reader.pid)
        )
    })?;
    drop(c);
    drop(reader);
    drop(fs);
    Ok(())
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("v1_frozen_then_killed", v1_frozen_then_killed),
        Trial::test("v2_frozen", v2_frozen),
        Trial::test("v1_freeze_held_up_by_fuse", v1_freeze_held_up_by_fuse),
    ];
    libtest_mimic::run(&args, tests).exit();
}
