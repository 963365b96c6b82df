//! The block devices of this very machine: a real loop device with two
//! partitions, found by the scan with its backing file and progress.

use wedge_model::BlockKind;
use wedge_procfs::{scan, ScanOptions};
use wedge_testkit::{skip_or_fail, Error, LoopDevice};

#[test]
fn a_real_loop_device_and_its_partitions() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("block-live");
    let l = match LoopDevice::new(&dir, 64, &[(2048, 32768), (34816, 96256)]) {
        Ok(l) => l,
        Err(Error::Skip(why)) => return skip_or_fail(&why),
        Err(Error::Setup(e)) => panic!("{e}"),
    };
    // I/O that completes: read the whole device through the page cache's
    // back (O_DIRECT is not needed: the counters count bios to the loop
    // device either way).
    let _ = std::fs::read(l.dev_path());
    let snap = scan(&ScanOptions {
        cmdline: false,
        ..ScanOptions::default()
    })
    .expect("scan");
    let d = snap
        .block_device_named(l.name())
        .unwrap_or_else(|| panic!("{} not found: {:?}", l.name(), snap.block_devices));
    assert_eq!(d.kind, BlockKind::Loop);
    assert_eq!(d.major, 7);
    let backing = d.backing.as_ref().expect("backing file");
    assert_eq!(backing.file, l.backing_file().display().to_string());
    assert_eq!(d.size_sectors, Some(64 << 11));
    let p = d.progress.expect("two samples");
    assert!(!p.stalled(), "{p:?}");
    assert!(
        p.second.reads_completed > 0,
        "the read above completed: {p:?}"
    );
    assert!(d.unread.is_empty(), "{:?}", d.unread);
    assert!(d.queue.scheduler.is_some(), "{:?}", d.queue);
    for part in l.partitions() {
        let pd = snap.block_device_named(part).expect("partition");
        assert_eq!(pd.kind, BlockKind::Partition);
        assert_eq!(pd.parent.as_deref(), Some(l.name()));
        assert_eq!(
            snap.block_device(pd.major, pd.minor).map(|x| &x.name),
            Some(part)
        );
    }
    // Every device the machine has was read, none blocked.
    assert!(
        snap.blocked_reads.iter().all(|b| b.pid != 0),
        "{:?}",
        snap.blocked_reads
    );
    drop(l);
    let off = scan(&ScanOptions {
        cmdline: false,
        block_devices: false,
        ..ScanOptions::default()
    })
    .expect("scan");
    assert!(off.block_devices.missing_info().is_some());
}
