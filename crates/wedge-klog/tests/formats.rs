//! Input formats and report layouts beyond the shared corpus: journald
//! JSON and export, /dev/kmsg, 6.x blocker lines, arm64 and x86 oops
//! variants, RCU self-detected/expedited stalls, memcg OOM kills.

use serde_json::{json, Value};

fn events(log: &str) -> Vec<Value> {
    wedge_klog::parse_str(log)
        .events
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect()
}

/// Every key of `want` equals the event's value.
fn assert_fields(got: &Value, want: &Value) {
    let Some(obj) = want.as_object() else { return };
    for (k, v) in obj {
        assert_eq!(got.get(k), Some(v), "field {k} of {got}");
    }
}

#[test]
fn kmsg_records_with_dictionary_lines() {
    let log = "6,1001,5000000,-;INFO: task cat:115 blocked for more than 122 seconds.\n \
SUBSYSTEM=usb\n \
DEVICE=c189:1\n\
3,1002,5000100,-;      Not tainted 6.16.0 #1\n\
4,1003,5000200,-;      Blocked by coredump.\n\
3,1004,5000300,-;task:cat             state:D stack:0     pid:115   tgid:115   ppid:106    task_flags:0x400100 flags:0x00000002\n\
3,1005,5000400,-;Call Trace:\n\
3,1006,5000500,-; <TASK>\n\
3,1007,5000600,-; __schedule+0x731/0x960\n\
3,1008,5000700,-; schedule+0xb7/0x140\n\
3,1009,5000800,-; </TASK>\n\
3,1010,5000900,-;INFO: task cat:115 blocked on a semaphore likely last held by task cat:114\n\
3,1011,5001000,-;Future hung task reports are suppressed, see sysctl kernel.hung_task_warnings\n";
    let ev = events(log);
    assert_eq!(ev.len(), 1);
    assert_fields(
        &ev[0],
        &json!({
            "kind": "hung_task", "task": "cat", "pid": 115, "blocked_seconds": 122,
            "state": "D", "ppid": 106, "seq": 1001, "blocked_by_coredump": true,
            "future_reports_suppressed": true, "kernel_version": "6.16.0", "tainted": "",
            "blocker": {"kind": "semaphore", "owner_task": "cat", "owner_pid": 114},
            "top_frames": ["__schedule", "schedule"],
            "timestamp": {"monotonic": 5.0}
        }),
    );
}

#[test]
fn journal_json_and_export() {
    let json_log = r#"{"__REALTIME_TIMESTAMP":"1715000000000000","_SOURCE_MONOTONIC_TIMESTAMP":"12345678","_TRANSPORT":"kernel","MESSAGE":"BUG: kernel NULL pointer dereference, address: 0000000000000008"}
{"_TRANSPORT":"kernel","MESSAGE":"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI"}
{"_TRANSPORT":"kernel","MESSAGE":"CPU: 3 UID: 0 PID: 4242 Comm: kworker/3:1 Tainted: G        W          6.12.0-rc1 #7"}
{"_TRANSPORT":"kernel","MESSAGE":"RIP: 0010:foo_bar+0x12/0x40 [foomod]"}
{"_TRANSPORT":"stdout","MESSAGE":"INFO: task fake:1 blocked for more than 1 seconds."}
{"_TRANSPORT":"kernel","MESSAGE":[75,101,114,110,101,108,32,112,97,110,105,99,32,45,32,110,111,116,32,115,121,110,99,105,110,103,58,32,70,97,116,97,108]}
"#;
    let ev = events(json_log);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_fields(
        &ev[0],
        &json!({
            "kind": "oops", "bug": "kernel NULL pointer dereference",
            "address": "0000000000000008", "oops_code": "0000", "oops_count": 1,
            "cpu": 3, "pid": 4242, "task": "kworker/3:1", "tainted": "GW",
            "kernel_version": "6.12.0-rc1", "rip_function": "foo_bar", "rip_module": "foomod",
            "panic": true, "panic_message": "Fatal",
            "timestamp": {"monotonic": 12.345678, "wall": "2024-05-06T12:53:20.000000Z", "wall_epoch": 1_715_000_000}
        }),
    );
    let export = "__CURSOR=s=abc;i=1\n__REALTIME_TIMESTAMP=1715000000000000\n_TRANSPORT=kernel\n\
MESSAGE=watchdog: BUG: soft lockup - CPU#2 stuck for 23s! [stress:999]\n\
_SOURCE_MONOTONIC_TIMESTAMP=98000000\n\n\
__CURSOR=s=abc;i=2\n_TRANSPORT=kernel\nMESSAGE=RIP: 0010:native_queued_spin_lock_slowpath+0x1a/0x2c0\n\n";
    let ev = events(export);
    assert_eq!(ev.len(), 1);
    assert_fields(
        &ev[0],
        &json!({"kind": "soft_lockup", "cpu": 2, "stuck_seconds": 23, "task": "stress",
                "pid": 999, "rip_function": "native_queued_spin_lock_slowpath",
                "lines": {"first": 4, "last": 9}}),
    );
}

#[test]
fn oops_and_stall_variants() {
    let log = "\
[  100.000001] ------------[ cut here ]------------
[  100.000002] kernel BUG at mm/filemap.c:1234!
[  100.000003] invalid opcode: 0000 [#1] SMP PTI
[  100.000004] CPU: 0 PID: 77 Comm: a.out Tainted: G    B   6.1.0 #1
[  100.000005] RIP: 0010:filemap_fault+0x99/0x100
[  100.000010] ---[ end trace 0000000000000000 ]---
[  200.000000] general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN
[  300.000000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
[  300.000002] Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP
[  300.000004] pc : mydrv_probe+0x10/0x20 [mydrv]
[  300.000006] Call trace:
[  300.000007]  mydrv_probe+0x10/0x20 [mydrv]
[  400.000000] rcu: INFO: rcu_preempt self-detected stall on CPU
[  400.000001] rcu: \t3-....: (5249 ticks this GP) idle=1234/1/0x4000000000000000 softirq=1/1 fqs=2600
[  400.000002] \t(t=5250 jiffies g=12345 q=678 ncpus=8)
[  500.000000] rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 3-... } 21009 jiffies s: 1234 root: 0x1/.
[  600.000000] Memory cgroup out of memory: Killed process 1234 (java) total-vm:1000kB, anon-rss:500kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12kB oom_score_adj:900
[  700.000000] /usr/bin/foo: foo: potentially unexpected fatal signal 11.
[  900.000000] traps: a.out[5555] trap invalid opcode ip:401126 sp:7ffd0a0b0c00 error:0 in a.out[401000+1000]
[ 1000.000000] CIFS: VFS: \\\\srv has not responded in 180 seconds. Reconnecting...
[ 1200.000000] NMI watchdog: Watchdog detected hard LOCKUP on cpu 3
[ 1200.000001] Kernel panic - not syncing: Hard LOCKUP
";
    let ev = events(log);
    let want = [
        // A BUG_ON() is a kernel_bug with its location (the README's vocabulary),
        // the oops line after it kept as its oops_code.
        json!({"kind": "kernel_bug", "file": "mm/filemap.c", "line": 1234, "oops_code": "0000",
               "tainted": "GB", "rip_function": "filemap_fault", "lines": {"first": 1, "last": 6}}),
        json!({"kind": "oops", "bug": "general protection fault", "address": "dffffc0000000000"}),
        json!({"kind": "oops", "bug": "Unable to handle kernel NULL pointer dereference",
               "oops_code": "0000000096000005", "pc_function": "mydrv_probe",
               "top_frames": ["mydrv_probe"]}),
        json!({"kind": "rcu_stall", "flavor": "rcu_preempt", "self_detected_cpu": 3, "jiffies": 5250}),
        json!({"kind": "rcu_stall", "expedited": true, "stalled_cpus": [3], "jiffies": 21009}),
        json!({"kind": "oom_kill", "memcg": true, "uid": 1000, "task": "java", "oom_score_adj": 900}),
        json!({"kind": "fatal_signal", "exe": "/usr/bin/foo", "task": "foo", "signal_name": "SIGSEGV"}),
        json!({"kind": "trap", "trap_text": "invalid opcode", "lib_ip_offset": "126"}),
        json!({"kind": "cifs_server_unresponsive", "server": "srv", "seconds": 180}),
        json!({"kind": "hard_lockup", "cpu": 3, "panic": true}),
    ];
    assert_eq!(ev.len(), want.len(), "{ev:#?}");
    for (g, w) in ev.iter().zip(want.iter()) {
        assert_fields(g, w);
    }
}

#[test]
fn user_hlt_explained() {
    let log = "May 22 19:04:47 h kernel: [4586113.110719] traps: node[14610] general protection fault ip:7f0291cb7196 sp:7fff48570020 error:0 in libc-2.23.so[7f0291c80000+1c0000]
May 22 19:04:47 h kernel: [4586113.110730] potentially unexpected fatal signal 11.
May 22 19:04:47 h kernel: [4586113.110733] CPU: 4 PID: 14610 Comm: node Kdump: loaded Not tainted 5.3.9-050309-generic #201911061337
May 22 19:04:47 h kernel: [4586113.110738] RIP: 0033:0x7f0291cb7196
May 22 19:04:47 h kernel: [4586113.110741] Code: 05 0f 85 e6 fd ff ff bf 06 00 00 00 c7 05 7e ea 38 00 06 00 00 00 e8 69 e2 ff ff 8b 05 73 ea 38 00 83 f8 06 0f 85 cc fd ff ff <f4> bf 7f 00 00 00 c7 05 5a ea 38 00 08 00 00 00 e8 65 55 09 00 0f
";
    let parsed = wedge_klog::parse_str(log);
    assert_eq!(parsed.events.len(), 2);
    for e in &parsed.events {
        let code = e.code.as_ref().expect("code attached");
        assert_eq!(code.faulting_instruction.as_deref(), Some("hlt"));
        assert!(e.meaning().contains("abort()"), "{}", e.meaning());
        assert!(e.meaning().contains("PID 1"));
    }
    assert_eq!(parsed.events[0].kind(), "gpf_trap");
    assert_eq!(parsed.events[1].kind(), "fatal_signal");
    assert_eq!(parsed.events[1].pid, Some(14610));
}

#[test]
fn interleaved_callers_are_separated() {
    // Two CPUs printing at once (CONFIG_PRINTK_CALLER): frames go to the
    // report of their own caller id.
    let log = "\
[  10.0][ T100] INFO: task a:100 blocked for more than 120 seconds.
[  10.0][ T200] INFO: task b:200 blocked for more than 120 seconds.
[  10.1][ T100] Call Trace:
[  10.1][ T200] Call Trace:
[  10.2][ T200]  b_wait+0x1/0x2
[  10.2][ T100]  a_wait+0x1/0x2
[  10.3][ T100]  a_caller+0x1/0x2
[  10.3][ T200]  b_caller+0x1/0x2
";
    let ev = events(log);
    assert_eq!(ev.len(), 2);
    assert_fields(
        &ev[0],
        &json!({"pid": 100, "top_frames": ["a_wait", "a_caller"]}),
    );
    assert_fields(
        &ev[1],
        &json!({"pid": 200, "top_frames": ["b_wait", "b_caller"]}),
    );
}

#[test]
fn orphan_trace_reported_as_fragment() {
    let log = "[ 1.0]  [<ffffffff8b129665>] watchdog_overflow_callback+0xd5/0xe0\n\
[ 1.0]  [<ffffffff8b16cf7f>] __perf_event_overflow+0x7f/0x1c0\n\
[ 2.0] usb 1-1: new device\n";
    let parsed = wedge_klog::parse_str(log);
    assert!(parsed.events.is_empty());
    assert_eq!(parsed.summary.fragments.len(), 1);
    assert_eq!(parsed.summary.fragments[0].lines.first, 1);
    assert_eq!(parsed.summary.fragments[0].lines.last, 2);
}

#[test]
fn filters() {
    let log = "[ 5.0] nfs: server a not responding, still trying\n[ 9.0] nfs: server a OK\n";
    let parsed = wedge_klog::parse_str(log);
    let f = wedge_klog::Filter {
        kinds: vec!["nfs_*".into()],
        since: Some(wedge_klog::Since::Monotonic(6.0)),
        ..Default::default()
    };
    let kept: Vec<_> = parsed.events.iter().filter(|e| f.matches(e)).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind(), "nfs_server_ok");
}

/// `--since DATE` on since-boot stamps: mapped through the boot time a
/// syslog line with both clocks gives, unknown without one, and exact with
/// a known boot time (the live log's btime).
#[test]
fn since_across_clocks() {
    use wedge_klog::{BootClock, Decision, Filter, Since};
    let dmesg = wedge_klog::parse_str(
        "[ 5.0] nfs: server a not responding, still trying\n[ 9.0] nfs: server a OK\n",
    );
    let date = |s| Filter {
        since: Some(Since::Epoch(s)),
        ..Default::default()
    };
    // 2099: no boot time, so neither event can be compared.
    let f = date(4_070_908_800);
    let mut clock = BootClock::default();
    for e in &dmesg.events {
        assert_eq!(f.decide(e, &mut clock), Decision::SinceUnknown);
    }
    // Booted at 1000 (btime): 1005 is before 1007, 1009 after.
    let f = date(1007);
    let mut clock = BootClock::known(1000);
    let d: Vec<_> = dmesg
        .events
        .iter()
        .map(|e| f.decide(e, &mut clock))
        .collect();
    assert_eq!(d, [Decision::Drop, Decision::Keep]);
    // A syslog line carrying both clocks teaches the boot time to the
    // dmesg-only lines that follow it.
    let mixed = wedge_klog::parse_str(
        "2024-05-22T19:04:47+00:00 host kernel: [  100.0] nfs: server a not responding, still trying\n\
         [  160.0] nfs: server a OK\n[  220.0] nfs: server b OK\n",
    );
    assert_eq!(mixed.events.len(), 3);
    let f = date(1_716_404_687 + 90); // 19:06:17, between the two last
    let mut clock = BootClock::default();
    let d: Vec<_> = mixed
        .events
        .iter()
        .map(|e| f.decide(e, &mut clock))
        .collect();
    assert_eq!(d, [Decision::Drop, Decision::Drop, Decision::Keep]);
    // The reverse: seconds since boot on a line with only a date after the
    // clock was learnt, and a new boot (stamps going back) forgets it.
    let f = Filter {
        since: Some(Since::Monotonic(150.0)),
        ..Default::default()
    };
    let mut clock = BootClock::default();
    let d: Vec<_> = mixed
        .events
        .iter()
        .map(|e| f.decide(e, &mut clock))
        .collect();
    assert_eq!(d, [Decision::Drop, Decision::Keep, Decision::Keep]);
    // Other predicates come first: a wrong kind is dropped, not unknown.
    let f = Filter {
        kinds: vec!["hung_task".into()],
        since: Some(Since::Epoch(0)),
        ..Default::default()
    };
    assert_eq!(
        f.decide(&dmesg.events[0], &mut BootClock::default()),
        Decision::Drop
    );
}

/// The kinds `--kind` accepts are exactly the kinds events serialize with.
#[test]
fn kinds_table() {
    assert!(wedge_klog::KINDS.contains(&"hung_task"));
    assert!(wedge_klog::is_known_kind("lustre_*"));
    assert!(!wedge_klog::is_known_kind("bogus"));
    assert!(!wedge_klog::is_known_kind("bogus*"));
    let mut sorted = wedge_klog::KINDS.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), wedge_klog::KINDS.len(), "a kind listed twice");
    // Every kind the corpus expects is in the table.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../corpus/kernel-logs/expected.json"
        ))
        .expect("corpus/kernel-logs/expected.json"),
    )
    .expect("expected.json is JSON");
    let mut seen = 0;
    for file in expected.as_array().into_iter().flatten() {
        for ev in file["events"].as_array().into_iter().flatten() {
            let k = ev["kind"].as_str().unwrap_or("(none)");
            assert!(wedge_klog::is_known_kind(k), "{k} not in KINDS");
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} kinds found in expected.json");
    // The README's kinds that the shared corpus does not hold yet.
    for k in [
        "blk_io_error",
        "buffer_io_error",
        "nvme_timeout",
        "scsi_error",
        "fs_error",
        "mce",
        "kernel_bug",
        "page_alloc_failure",
        "workqueue_lockup",
        "cifs_vfs_error",
        "cifs_mount_failed",
        "cifs_server_unresponsive",
    ] {
        assert!(wedge_klog::is_known_kind(k), "{k} not in KINDS");
        assert!(
            wedge_klog::kind_help().contains(k),
            "{k} not in --kind's help"
        );
    }
    // The retired kind is refused, saying what replaced it.
    let err = wedge_klog::parse_kind("cifs_error").expect_err("cifs_error is retired");
    assert!(
        err.contains("cifs_vfs_error") && err.contains("cifs_mount_failed"),
        "{err}"
    );
    assert!(wedge_klog::parse_kind("cifs_*").is_ok());
}

#[test]
fn sysrq_blocked_tasks_and_ps_ef() {
    let log = "\
[  500.000000] sysrq: Show Blocked State
[  500.000001]   task                        PC stack   pid father
[  500.000002] nfsd            D ffff88003f4d1d00     0  2777      2 0x00000000
[  500.000003]  ffff88075b0d9c48 0000000000000046 ffff88075b0d9c04 ffff88075b0d8010
[  500.000004] Call Trace:
[  500.000005]  [<ffffffff816442f9>] schedule+0x29/0x70
[  500.000006]  [<ffffffff8164465e>] schedule_preempt_disabled+0xe/0x10
[  500.000007] task:kworker/u8:2    state:D stack:0     pid:99    ppid:2      flags:0x00004000
[  500.000008] Call Trace:
[  500.000009]  <TASK>
[  500.000010]  __schedule+0x1/0x2
[  500.000011]  </TASK>
";
    let ev = events(log);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert_fields(
        &ev[0],
        &json!({"kind": "task_dump", "task": "nfsd", "pid": 2777, "state": "D",
                "top_frames": ["schedule", "schedule_preempt_disabled"]}),
    );
    assert_fields(
        &ev[1],
        &json!({"kind": "task_dump", "task": "kworker/u8:2", "pid": 99, "top_frames": ["__schedule"]}),
    );

    let ps = "$ ps -ef\nUID          PID    PPID  C STIME TTY          TIME CMD\n\
root           1       0  0 Nov22 ?        00:00:01 /sbin/init splash\n";
    let ev = events(ps);
    assert_eq!(ev.len(), 1);
    assert_fields(
        &ev[0],
        &json!({"kind": "ps_row", "pid": 1, "ppid": 0, "user": "root", "cmd": "/sbin/init splash"}),
    );
}

#[test]
fn lustre_and_rhel_oom() {
    let log = "\
[ 10.0] Lustre: fs-MDT0000-mdc-ffff8810: Connection to fs-MDT0000 (at 10.0.0.1@o2ib) was lost; in progress operations using this service will wait for recovery to complete
[ 11.0] LustreError: 11-0: fs-OST0000-osc-ffff8810: Communicating with 10.0.0.2@o2ib, operation ost_connect failed with -16.
[ 12.0] Lustre: fs-MDT0000-mdc-ffff8810: Connection restored to fs-MDT0000 (at 10.0.0.1@o2ib)
[ 13.0] Killed process 4321, UID 48, (httpd) total-vm:100kB, anon-rss:10kB, file-rss:1kB
[ 14.0] foo[77]: segfault at 0 rip 00000000004004f4 rsp 00007fff5fbff8a0 error 4
";
    let ev = events(log);
    let want = [
        json!({"kind": "lustre_connection_lost", "target": "fs-MDT0000-mdc-ffff8810", "node": "10.0.0.1@o2ib"}),
        json!({"kind": "lustre_error", "code": "11-0", "operation": "ost_connect", "rc": -16, "node": "10.0.0.2@o2ib"}),
        json!({"kind": "lustre_connection_restored"}),
        json!({"kind": "oom_kill", "pid": 4321, "uid": 48, "task": "httpd", "anon_rss_kb": 10}),
        json!({"kind": "segfault", "pid": 77, "ip": "00000000004004f4", "error": "4"}),
    ];
    assert_eq!(ev.len(), want.len(), "{ev:#?}");
    for (g, w) in ev.iter().zip(want.iter()) {
        assert_fields(g, w);
    }
}

/// A reader that fails after its data, as a decompressor does on a
/// truncated file.
struct CutShort<'a>(&'a [u8]);

impl std::io::Read for CutShort<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "incomplete deflate stream",
            ));
        }
        let n = buf.len().min(self.0.len()).min(100);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// An I/O error ends the stream but keeps every event of the lines read
/// before it, the last one without its newline included.
#[test]
fn events_before_a_read_error_are_kept() {
    let log = b"[ 5.0] nfs: server a not responding, still trying\n[ 9.0] nfs: server a OK";
    let mut stream = wedge_klog::parse_reader(CutShort(log));
    let mut kinds = Vec::new();
    let mut errors = 0;
    for ev in stream.by_ref() {
        match ev {
            Ok(e) => kinds.push(e.kind()),
            Err(e) => {
                assert!(e.to_string().contains("deflate"), "{e}");
                errors += 1;
            }
        }
    }
    assert_eq!(errors, 1);
    assert_eq!(kinds, ["nfs_not_responding", "nfs_server_ok"]);
    assert_eq!(stream.bytes_read(), log.len() as u64);
    assert_eq!(stream.summary().lines, 2);
}

/// `text_only` refuses an executable before parsing any of it.
#[test]
fn text_only_refuses_binaries() {
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.extend_from_slice(b"\nINFO: task a:1 blocked for more than 5 seconds.\n");
    let out: Vec<_> = wedge_klog::parse_reader(elf.as_slice())
        .text_only()
        .collect();
    assert_eq!(out.len(), 1, "{out:?}");
    let err = out[0].as_ref().expect_err("an error, no event");
    let nt = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<wedge_klog::NotText>())
        .expect("a NotText inside");
    assert!(nt.reason.contains("ELF"), "{nt}");
    // Without text_only the parser reads whatever it is given.
    assert_eq!(wedge_klog::parse_bytes(&elf).events.len(), 1);
}

/// The storage kinds' events in every input format the README lists beyond
/// the corpus: OpenWrt/busybox `logread`, RFC 5424 (with and without
/// structured data, with a BOM), remote syslog with an address for host and
/// no `kernel:` tag, raw `/dev/kmsg` records, journalctl short-monotonic.
#[test]
fn storage_lines_in_every_format() {
    let log = "\
Tue Feb  1 19:02:25 2022 kern.warn kernel: [  512.123456] nvme nvme0: I/O 321 QID 3 timeout, aborting
Tue Feb  1 19:02:26 2022 daemon.info dnsmasq[1234]: nvme nvme0: I/O 900 QID 3 timeout, aborting
Mon Mar  4 08:15:02 2024 kern.err kernel: [  513.000001] Buffer I/O error on dev sdb1, logical block 128, lost async page write
<4>1 2024-03-04T08:15:02.123456+01:00 host kernel - - - [  514.100000] I/O error, dev sdb, sector 1024 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2
<3>1 2024-03-04T08:15:03Z host kernel - - [timeQuality tzKnown=\"1\" isSynced=\"1\"][meta sequenceId=\"7\"] \u{feff}sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_ERROR driverbyte=DRIVER_OK cmd_age=30s
<3>1 2024-03-04T08:15:03Z host myapp 123 - - nvme nvme0: I/O 901 QID 3 timeout, aborting
Mar  4 08:15:02 10.0.0.5 [  515.123456] nvme nvme1: I/O 17 QID 2 timeout, reset controller
Mar  4 08:15:03 10.0.0.5 EXT4-fs error (device sdc1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0
Mar  4 08:15:04 10.0.0.5 backup.sh done, 3 I/O error, dev sda, sector 5 retries
4,1234,516123456,-;blk_update_request: critical medium error, dev sdd, sector 81920
3,1235,516123457,-,caller=T123;Buffer I/O error on device sdd1, logical block 10240
[  517.123456] host kernel: BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 42s!
";
    let ev = events(log);
    let want = [
        json!({"kind": "nvme_timeout", "controller": "nvme0", "command_id": 321, "qid": 3,
               "action": "aborting", "level": 4,
               "timestamp": {"monotonic": 512.123456, "wall": "Tue Feb  1 19:02:25 2022",
                             "wall_epoch": 1_643_742_145_i64},
               "lines": {"first": 1, "last": 1}}),
        json!({"kind": "buffer_io_error", "device": "sdb1", "logical_block": 128,
               "what": "lost async page write", "level": 3,
               "timestamp": {"monotonic": 513.000001, "wall": "Mon Mar  4 08:15:02 2024",
                             "wall_epoch": 1_709_540_102_i64}}),
        json!({"kind": "blk_io_error", "device": "sdb", "sector": 1024, "op": "WRITE", "level": 4,
               "timestamp": {"monotonic": 514.1, "wall": "2024-03-04T08:15:02.123456+01:00",
                             "wall_epoch": 1_709_540_102_i64}}),
        json!({"kind": "scsi_error", "device": "sdb", "hostbyte": "DID_ERROR",
               "driverbyte": "DRIVER_OK", "level": 3,
               "timestamp": {"wall": "2024-03-04T08:15:03Z", "wall_epoch": 1_709_540_103_i64},
               "lines": {"first": 5, "last": 5}}),
        json!({"kind": "nvme_timeout", "controller": "nvme1", "command_id": 17, "qid": 2,
               "action": "reset controller",
               "timestamp": {"monotonic": 515.123456, "wall": "Mar  4 08:15:02"}}),
        json!({"kind": "fs_error", "fs": "ext4", "device": "sdc1", "function": "ext4_find_entry",
               "line": 1455, "remount_ro": false, "timestamp": {"wall": "Mar  4 08:15:03"}}),
        json!({"kind": "blk_io_error", "device": "sdd", "sector": 81920,
               "status": "critical medium error", "level": 4, "seq": 1234,
               "timestamp": {"monotonic": 516.123456}}),
        json!({"kind": "buffer_io_error", "device": "sdd1", "logical_block": 10240, "level": 3,
               "seq": 1235, "caller": "T123"}),
        json!({"kind": "workqueue_lockup", "cpus": "1", "stuck_seconds": 42,
               "timestamp": {"monotonic": 517.123456}, "lines": {"first": 12, "last": 12}}),
    ];
    assert_eq!(ev.len(), want.len(), "{ev:#?}");
    for (g, w) in ev.iter().zip(want.iter()) {
        assert_fields(g, w);
    }
    // dnsmasq's, myapp's and the untagged program line are not the kernel's.
    let parsed = wedge_klog::parse_str(log);
    assert_eq!(parsed.summary.non_kernel_lines, 3);
}
