//! The block-device reader on a captured sysfs tree (tests/fixtures/sys:
//! real loop, virtio and zram entries of the test machine, hand-written
//! SCSI, device-mapper and NVMe ones; see tests/fixtures/README.md).

use std::path::PathBuf;
use std::time::Duration;
use wedge_model::{BlockDevice, BlockKind};
use wedge_procfs::block;
use wedge_procfs::helper::Helper;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sys")
}

fn read() -> (Vec<BlockDevice>, Vec<wedge_model::BlockedRead>) {
    let root = fixture();
    let first = block::first_sample(&root);
    let mut helper = Helper::new();
    let mut blocked = Vec::new();
    let devices = block::read_devices(
        &root,
        first,
        &mut helper,
        Duration::from_secs(2),
        &mut blocked,
    );
    helper.finish(Duration::from_secs(1));
    (devices.value().expect("devices").clone(), blocked)
}

fn dev<'a>(all: &'a [BlockDevice], name: &str) -> &'a BlockDevice {
    all.iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} not read: {all:#?}"))
}

#[test]
fn a_loop_device_with_its_partitions() {
    let (all, blocked) = read();
    assert!(blocked.is_empty(), "{blocked:?}");
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["dm-0", "loop0", "loop0p1", "loop0p2", "nvme0n1", "sda", "sda1", "vda", "zram0"]
    );
    let l = dev(&all, "loop0");
    assert_eq!((l.major, l.minor, l.kind), (7, 0, BlockKind::Loop));
    let b = l.backing.as_ref().expect("backing file");
    assert!(b.file.ends_with("/img"), "{b:?}");
    assert_eq!(
        (b.offset, b.sizelimit, b.autoclear, b.dio),
        (Some(0), Some(0), Some(false), Some(false))
    );
    assert_eq!(l.size_sectors, Some(131072));
    assert_eq!(l.read_only, Some(false));
    assert_eq!(l.queue.scheduler.as_deref(), Some("none"));
    assert_eq!(l.queue.nr_requests, Some(128));
    assert_eq!(l.queue.rotational, Some(true));
    assert!(l.unread.is_empty(), "{:?}", l.unread);
    let p = l.progress.expect("two samples");
    assert_eq!(p.first.reads_completed, 257);
    assert_eq!(p.first.flushes_completed, Some(53));
    assert_eq!(p.completed(), 0);
    assert!(!p.stalled(), "nothing in flight is not a stall");
    for (name, minor, size) in [("loop0p1", 0, 32768), ("loop0p2", 1, 96256)] {
        let d = dev(&all, name);
        assert_eq!(d.kind, BlockKind::Partition);
        assert_eq!(d.parent.as_deref(), Some("loop0"));
        assert_eq!((d.major, d.minor, d.size_sectors), (259, minor, Some(size)));
        assert_eq!(
            d.queue,
            Default::default(),
            "a partition has no queue of its own"
        );
        assert!(d.unread.is_empty(), "{:?}", d.unread);
    }
    let v = dev(&all, "vda");
    assert_eq!(v.kind, BlockKind::Disk);
    assert_eq!(v.queue.scheduler.as_deref(), Some("mq-deadline"));
    assert_eq!(v.queue.write_cache.as_deref(), Some("write back"));
    assert_eq!(v.controller.as_deref(), Some("virtio1"));
    assert_eq!(v.model.as_deref(), Some("0x1af4"));
    let z = dev(&all, "zram0");
    assert_eq!(z.kind, BlockKind::Memory);
    assert_eq!(
        z.queue.scheduler, None,
        "zram is bio-based: no scheduler file"
    );
}

#[test]
fn scsi_dm_and_nvme_state() {
    let (all, _) = read();
    let sda = dev(&all, "sda");
    assert_eq!(sda.kind, BlockKind::Disk);
    assert_eq!(sda.state.as_deref(), Some("offline"));
    assert_eq!(sda.controller.as_deref(), Some("host0"));
    assert_eq!(sda.model.as_deref(), Some("ATA QEMU HARDDISK"));
    assert_eq!(
        sda.queue.io_timeout_ms,
        Some(30_000),
        "device/timeout, in seconds"
    );
    assert_eq!(sda.inflight.map(|i| (i.reads, i.writes)), Some((0, 3)));
    let p = sda.progress.expect("two samples");
    assert!(
        p.stalled(),
        "3 in flight at both samples and nothing completed: {p:?}"
    );
    let sda1 = dev(&all, "sda1");
    assert_eq!(sda1.parent.as_deref(), Some("sda"));
    assert_eq!(sda1.holders, ["dm-0"]);
    assert_eq!(sda1.state, None, "a partition's state is its disk's");
    let dm = dev(&all, "dm-0");
    assert_eq!(dm.kind, BlockKind::DeviceMapper);
    assert_eq!(dm.slaves, ["sda1"]);
    let info = dm.dm.as_ref().expect("dm info");
    assert_eq!(info.name, "vg0-root");
    assert!(info.uuid.as_deref().is_some_and(|u| u.starts_with("LVM-")));
    assert_eq!(info.suspended, Some(true));
    let nvme = dev(&all, "nvme0n1");
    assert_eq!(nvme.kind, BlockKind::Nvme);
    assert_eq!(nvme.controller.as_deref(), Some("nvme0"));
    assert_eq!(nvme.state.as_deref(), Some("resetting"));
    assert_eq!(nvme.model.as_deref(), Some("Samsung SSD 970 EVO Plus 1TB"));
    assert_eq!(nvme.queue.io_timeout_ms, Some(30_000));
    assert_eq!(nvme.queue.scheduler.as_deref(), Some("none"));
}

#[test]
fn no_sysfs_is_missing_with_why() {
    let root = PathBuf::from("/nonexistent-sysfs");
    let first = block::first_sample(&root);
    let mut helper = Helper::new();
    let f = block::read_devices(
        &root,
        first,
        &mut helper,
        Duration::from_secs(1),
        &mut Vec::new(),
    );
    let m = f.missing_info().expect("missing");
    assert!(m.detail.contains("/nonexistent-sysfs/class/block"), "{m}");
}

/// A sysfs tree of garbage — empty, binary, truncated and huge attribute
/// files, a `dev` that is no device number, a directory where a file
/// should be — gives each device with what could not be read in `unread`,
/// never a panic or a made-up value.
#[test]
fn garbage_attributes_are_unread_not_invented() {
    let root = tempfile::tempdir().expect("scratch dir");
    let class = root.path().join("class/block");
    let write = |dev: &str, attr: &str, bytes: &[u8]| {
        let p = class.join(dev).join(attr);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
    };
    write("sdz", "dev", b"\xff\xfe not:a:dev");
    write("sdz", "stat", b"");
    write("sdz", "size", &[0u8; 64]);
    write("sdz", "inflight", b"1");
    write("sdz", "queue/scheduler", &vec![b'['; 1 << 20]);
    write("loop9", "dev", b"7:9");
    write("loop9", "stat", b"1 2 3 4 5 6 7 8 9 10 11 12 13");
    write("loop9", "ro", b"yes");
    std::fs::create_dir_all(class.join("loop9/loop/backing_file")).expect("mkdir");
    write("loop9", "loop/offset", b"-5");
    let first = block::first_sample(root.path());
    let mut helper = Helper::new();
    let mut blocked = Vec::new();
    let devices = block::read_devices(
        root.path(),
        first,
        &mut helper,
        Duration::from_secs(2),
        &mut blocked,
    );
    helper.finish(Duration::from_secs(1));
    let all = devices
        .value()
        .expect("a listing of garbage is still a listing");
    for name in ["sdz", "loop9"] {
        let d = dev(all, name);
        assert!(!d.unread.is_empty(), "{d:#?}");
        assert!(d.progress.is_none(), "no counters were readable: {d:#?}");
    }
    let sdz = dev(all, "sdz");
    assert_eq!((sdz.major, sdz.minor), (0, 0), "{sdz:#?}");
    assert_eq!(sdz.size_sectors, None);
    assert_eq!(sdz.inflight, None, "one number is not reads and writes");
    let loop9 = dev(all, "loop9");
    assert_eq!(loop9.read_only, None);
    assert!(
        loop9.backing.as_ref().is_none_or(|b| b.offset.is_none()),
        "{loop9:#?}"
    );
}
