//! Storage messages this machine's kernel (6.18) printed: an ext4 on a loop
//! device whose backing file lives on a 12 MiB tmpfs, written past the
//! tmpfs' size (`tests/data/loop-enospc-ext4-6.18.log`, captured from
//! dmesg).  The loop driver completes the writes it cannot store with
//! BLK_STS_NOSPC (`critical space allocation error`), ext4 loses the pages
//! (`Buffer I/O error on device`), aborts its journal and reports the
//! error; in that run the filesystem went `emergency_ro` (its mount
//! options said so) without printing `Remounting filesystem read-only`, so
//! `remount_ro` stays false.  `tests/data/loop-fuse-eio-ext4-6.18.log` is
//! the scenes' ext4 on a loop device whose backing file is on a FUSE daemon
//! answering writes with EIO (one mount's lines, captured from dmesg): there
//! the kernel does print the remount.

use serde_json::Value;

#[test]
fn loop_enospc_ext4_capture() {
    let log = include_str!("data/loop-enospc-ext4-6.18.log");
    let ev: Vec<Value> = wedge_klog::parse_str(log)
        .events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    let of = |k: &str| ev.iter().filter(|e| e["kind"] == k).collect::<Vec<_>>();
    let blk = of("blk_io_error");
    // The WRITE_ZEROES probe of mkfs, then 9 failed writes.
    assert_eq!(blk.len(), 10, "{blk:#?}");
    assert_eq!(blk[0]["op"], "WRITE_ZEROES");
    assert_eq!(blk[0]["status"], "operation not supported error");
    assert!(blk[1..].iter().all(|e| e["device"] == "loop0"
        && e["op"] == "WRITE"
        && e["status"] == "critical space allocation error"));
    assert_eq!(blk[1]["sector"], 57346);
    let buf = of("buffer_io_error");
    assert_eq!(buf.len(), 10);
    assert_eq!(buf[0]["device"], "loop0");
    assert_eq!(buf[0]["logical_block"], 28673);
    let fs = of("fs_error");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["fs"], "ext4");
    assert_eq!(fs[0]["device"], "loop0");
    assert_eq!(fs[0]["function"], "ext4_journal_check_start");
    assert_eq!(fs[0]["line"], 87);
    assert_eq!(fs[0]["remount_ro"], false);
    // Nothing else: warnings, mount notices and `Aborting journal` are not events.
    assert_eq!(ev.len(), blk.len() + buf.len() + fs.len(), "{ev:#?}");
    // The devices the analysis ties them to.
    let model = wedge_klog::to_log_events(&wedge_klog::parse_str(log).events);
    assert!(model
        .iter()
        .all(|e| !matches!(e.detail, wedge_model::LogDetail::Other)));
}

#[test]
fn loop_fuse_eio_ext4_capture() {
    let log = include_str!("data/loop-fuse-eio-ext4-6.18.log");
    let ev: Vec<Value> = wedge_klog::parse_str(log)
        .events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "blk_io_error",
            "blk_io_error",
            "blk_io_error",
            "buffer_io_error",
            "fs_error",
            "buffer_io_error"
        ],
        "{ev:#?}"
    );
    assert_eq!(ev[1]["sector"], 17026);
    assert_eq!(ev[1]["status"], "I/O error");
    assert_eq!(ev[3]["what"], "lost sync page write");
    assert_eq!(ev[3]["logical_block"], 16385);
    let fs = &ev[4];
    assert_eq!(fs["device"], "loop1");
    assert_eq!(fs["function"], "ext4_journal_check_start");
    // `EXT4-fs (loop1): Remounting filesystem read-only`, three lines on.
    assert_eq!(fs["remount_ro"], true);
    assert_eq!(fs["lines"], serde_json::json!({"first": 11, "last": 14}));
}
