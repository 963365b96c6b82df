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
use wedge_testkit::{setup_or_skip, Freezer, FrozenCgroup, FuseDaemon, FuseReader, NamedCgroup};

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

/// A container id as the runtimes make them (64 hex digits), unique to
/// this test process.
fn container_id(tag: u8) -> String {
    format!("{:08x}{:02x}{}", std::process::id(), tag, "ab".repeat(27))
}

/// Container attribution on real cgroups named the way the runtimes name
/// them: a killed FUSE reader moved into a Kubernetes pod's containerd
/// scope (cgroup v2, systemd driver) is "pod … container … (containerd)"
/// in ps, why, the verdict (text and JSON) and wedge check; sleepers in
/// Docker's v1 layout and a Podman scope are attributed in why.
fn container_attribution() -> R {
    let uid = format!("{:08x}-1b2c-4d5e-9f00-112233445566", std::process::id());
    let id = container_id(1);
    let under = uid.replace('-', "_");
    let pod = setup_or_skip!(NamedCgroup::create(
        Freezer::V2,
        &format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{under}.slice/cri-containerd-{id}.scope"
        )
    ));
    let fs = setup_or_skip!(FuseDaemon::start());
    let reader = setup_or_skip!(FuseReader::start(&fs));
    pod.add(reader.pid).map_err(|e| e.to_string())?;
    reader.sigkill().map_err(|e| format!("FUSE reader: {e}"))?;
    let short_uid = &uid[..8];
    let words = format!("pod {short_uid} container {} (containerd)", &id[..12]);

    let ps = wedge(&["ps"]);
    let row = ps
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(reader.pid.to_string().as_str()))
        .unwrap_or_default()
        .to_string();
    check(row.contains(&format!("in {words}")), || {
        format!("ps row lacks {words:?}: {row}")
    })?;
    let why = wedge(&["why", &reader.pid.to_string()]);
    check(why.stdout.contains(&format!("runs in     {words}")), || {
        why.stdout.clone()
    })?;
    let verdict = wedge(&[]);
    check(
        verdict
            .stdout
            .contains(&format!("in    {words}: wk-reader ({})", reader.pid)),
        || verdict.stdout.clone(),
    )?;
    let v = wedge(&["--json"]).json();
    conforms("verdict.json", "wedge --json (a pod's container)", &v)?;
    let f = about(&v, reader.pid)
        .into_iter()
        .find(|f| f["id"].as_str().is_some_and(|i| i.starts_with("fuse.")))
        .ok_or("no FUSE finding about the reader")?;
    let w = &f["workloads"][0];
    check(
        w["pod_uid"] == uid.as_str()
            && w["container"] == id.as_str()
            && w["runtime"] == "containerd"
            && w["qos"] == "burstable",
        || format!("workload: {w}"),
    )?;
    let chk = wedge(&["check"]);
    let line = chk.stdout.trim_end().to_string();
    check(line.chars().count() <= 80, || {
        format!("check line over 80: {line:?}")
    })?;
    if about(&v, reader.pid)
        .first()
        .is_some_and(|f0| v["findings"][0] == *f0)
    {
        check(line.contains(&format!("pod {short_uid}")), || {
            format!("check: {line:?}")
        })?;
    }
    drop(reader);
    drop(fs);
    drop(pod);

    // Sleepers in Docker's v1 layout (the freezer hierarchy) and a
    // rootful Podman scope (v2).
    let docker_id = container_id(2);
    let podman_id = container_id(3);
    for (freezer, path, want) in [
        (
            Freezer::V1,
            format!("/docker/{docker_id}"),
            format!("docker {}", &docker_id[..12]),
        ),
        (
            Freezer::V2,
            format!("/machine.slice/libpod-{podman_id}.scope"),
            format!("podman {}", &podman_id[..12]),
        ),
    ] {
        let c = setup_or_skip!(NamedCgroup::create(freezer, &path));
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .map_err(|e| format!("sleep: {e}"))?;
        let pid = child.id() as i32;
        let added = c.add(pid).map_err(|e| e.to_string());
        let why = wedge(&["why", &pid.to_string()]);
        let _ = child.kill();
        let _ = child.wait();
        added?;
        check(why.stdout.contains(&format!("runs in     {want}")), || {
            format!("{path}: want {want:?}:\n{}", why.stdout)
        })?;
    }
    Ok(())
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("v1_frozen_then_killed", v1_frozen_then_killed),
        Trial::test("v2_frozen", v2_frozen),
        Trial::test("v1_freeze_held_up_by_fuse", v1_freeze_held_up_by_fuse),
        Trial::test("container_attribution", container_attribution),
    ];
    libtest_mimic::run(&args, tests).exit();
}
