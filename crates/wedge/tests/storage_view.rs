//! Issue 14 (the sources piece; the scenes piece is storage_live.rs): `wedge storage` on this machine's real block devices: an ext4
//! on a loop device (with a partition table's worth of partitions), frozen
//! with fsfreeze; the JSON matches docs/schema/storage.json, the text fits
//! 100 columns and says how to thaw it; `--no-bpf` says the freeze state
//! is unknown and why. Every assertion is about the scene's own device:
//! other tests' loop devices and frozen filesystems may be there too.

mod common;

use common::{check, conforms, wedge};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use wedge_testkit::{setup_or_skip, FsKind, Guardian, LoopDevice, MountedFs};

type R = Result<(), Failed>;

fn device<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["devices"]
        .as_array()?
        .iter()
        .find(|d| d["device"]["name"] == name)
}

fn a_frozen_ext4_on_a_loop_device() -> R {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("storage-live");
    // Undoes the loop device, the mount and the freeze if this process
    // dies before its Drops do.
    let g = setup_or_skip!(Guardian::start());
    let l = setup_or_skip!(LoopDevice::new(&dir, 64, &[(2048, 65536)]));
    setup_or_skip!(l.guard(&g));
    let part = l.partitions()[0].clone();
    let mnt = dir.join("mnt");
    setup_or_skip!(g.arm("umount", &mnt));
    let mut m = setup_or_skip!(MountedFs::make(
        std::path::Path::new(&format!("/dev/{part}")),
        &mnt,
        FsKind::Ext4,
    ));
    setup_or_skip!(g.arm("thaw", &mnt));
    setup_or_skip!(m.freeze());
    let mp = m.mountpoint().display().to_string();
    let json = wedge(&["storage", "--json"]);
    let text = wedge(&["storage"]);
    let no_bpf = wedge(&["storage", "--json", "--no-bpf"]);
    // Thawed and gone before anything can fail.
    m.thaw();
    drop(m);
    let (name, image) = (l.name().to_string(), l.backing_file().display().to_string());
    drop(l);
    g.disarm();
    let doc = json.json();
    conforms("storage.json", "wedge storage --json", &doc)?;
    conforms(
        "storage.json",
        "wedge storage --json --no-bpf",
        &no_bpf.json(),
    )?;
    check(json.code == Some(1), || {
        format!("a frozen filesystem is a finding: exit {:?}", json.code)
    })?;
    let d = device(&doc, &part).ok_or_else(|| format!("{part} not listed: {doc}"))?;
    check(d["device"]["parent"] == name.as_str(), || format!("{d}"))?;
    check(
        d["mounts"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|x| x["mount_point"] == mp.as_str() && x["fs_type"] == "ext4")
        }),
        || format!("mount {mp} not on {part}: {d}"),
    )?;
    if doc["superblocks_missing"].is_null() {
        check(d["frozen"] == "complete", || format!("{d}"))?;
        check(d["frozen_by"] == serde_json::json!(["user"]), || {
            format!("{d}")
        })?;
    }
    check(d["stalled"] == false, || format!("{d}"))?;
    let disk = device(&doc, &name).ok_or("loop device not listed")?;
    check(disk["device"]["backing"]["file"] == image.as_str(), || {
        format!("{disk}")
    })?;
    check(
        disk["children"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == part.as_str())),
        || format!("{disk}"),
    )?;
    check(disk["backing"]["mount_point"].is_string(), || {
        format!("{disk}")
    })?;
    // Every line fits 100 columns but a command, which is never cut.
    for line in text
        .stdout
        .lines()
        .filter(|l| !l.trim_start().starts_with("thaw: "))
    {
        check(line.chars().count() <= 100, || {
            format!("wider than 100: {line:?}")
        })?;
    }
    if doc["superblocks_missing"].is_null() {
        check(
            text.stdout.contains(&format!("thaw: fsfreeze -u {mp}\n")),
            || text.stdout.clone(),
        )?;
    }
    let nb = no_bpf.json();
    let d = device(&nb, &part).ok_or("not listed without BPF")?;
    check(
        d["frozen_unknown"]
            .as_str()
            .is_some_and(|w| w.contains("--no-bpf")),
        || format!("{d}"),
    )
}

fn no_devices_is_missing_with_why() -> R {
    let doc = wedge(&["storage", "--json", "--no-devices"]).json();
    conforms("storage.json", "wedge storage --json --no-devices", &doc)?;
    check(
        doc["devices_missing"]
            .as_str()
            .is_some_and(|w| w.contains("--no-devices")),
        || format!("{doc}"),
    )
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test(
            "a_frozen_ext4_on_a_loop_device",
            a_frozen_ext4_on_a_loop_device,
        ),
        Trial::test(
            "no_devices_is_missing_with_why",
            no_devices_is_missing_with_why,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
