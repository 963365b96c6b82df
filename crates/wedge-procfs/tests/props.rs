//! The /proc parsers take whatever the file holds — a kernel of another
//! version, a truncated read, bytes of a vanished task — and never panic.

use proptest::prelude::*;
use wedge_procfs::{parse, status};

fn procish() -> impl Strategy<Value = String> {
    // Text shaped like /proc files: digits, hex, brackets, colons, tabs.
    proptest::string::string_regex(r"[\[\]<>()a-zA-Z0-9_.:+/ ?\t\n-]{0,400}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panic_on_arbitrary_text(s in "\\PC{0,300}") {
        let _ = parse::kernel_stack(&s);
        let _ = parse::wchan(&s);
        let _ = parse::syscall(&s, |_| None);
        let _ = parse::sched_exec_start(&s);
        let _ = parse::fdinfo_head(&s);
        let _ = parse::io_uring(&s);
        let _ = parse::ns_inode(&s);
        let _ = status::parse(&s);
        let _ = status::parse_stat(&s);
    }

    #[test]
    fn never_panic_on_procish_text(s in procish()) {
        let _ = parse::kernel_stack(&s);
        let _ = parse::syscall(&s, |_| Some("x"));
        let _ = parse::io_uring(&s);
        let _ = status::parse(&s);
        let _ = status::parse_stat(&s);
        for kind in [wedge_model::FileKind::Epoll, wedge_model::FileKind::Inotify, wedge_model::FileKind::Eventfd, wedge_model::FileKind::IoUring] {
            let _ = parse::fdinfo_detail(kind, &s);
        }
    }

    #[test]
    fn stat_lines_with_any_comm(comm in "[^\n]{0,20}", pid in 1i32..4_000_000) {
        let line = format!("{pid} ({comm}) S 1 2 3 4 5 4194560 0 0 0 0 7 8 0 0 20 0 1 0 99 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
        let st = status::parse_stat(&line).unwrap();
        prop_assert_eq!(st.comm, comm);
        prop_assert_eq!(st.starttime, 99);
        prop_assert_eq!(st.processor, Some(1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The hand parser agrees with procfs-core on every field wedge keeps,
    /// whatever the numbers (negative, huge, past the type's range).
    #[test]
    fn stat_agrees_with_procfs_core(
        comm in "[^\n]{0,16}",
        nums in proptest::collection::vec(prop_oneof![
            Just("0".to_string()), Just("-1".to_string()),
            Just("18446744073709551615".to_string()), Just("4294967296".to_string()),
            (0u64..u64::MAX).prop_map(|v| v.to_string()),
            (0i32..i32::MAX).prop_map(|v| v.to_string()),
        ], 49),
    ) {
        use procfs_core::FromRead;
        let line = format!("1 ({comm}) S {}\n", nums.join(" "));
        let ours = status::parse_stat(&line);
        let theirs = procfs_core::process::Stat::from_read(line.as_bytes()).ok();
        if let (Some(o), Some(t)) = (&ours, &theirs) {
            prop_assert_eq!((o.ppid, o.pgrp, o.session, o.tty_nr), (t.ppid, t.pgrp, t.session, t.tty_nr));
            prop_assert_eq!((o.flags, o.utime, o.stime, o.starttime), (t.flags, t.utime, t.stime, t.starttime));
            prop_assert_eq!(o.processor, t.processor);
        }
        // Where procfs-core reads a line, so does wedge.
        prop_assert!(theirs.is_none() || ours.is_some());
    }
}

/// Both hand parsers against procfs-core on every task of this machine.
#[test]
fn agree_with_procfs_core_on_this_machine() {
    use procfs_core::FromRead;
    let mut checked = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let (Ok(stat), Ok(st)) = (
                std::fs::read_to_string(t.path().join("stat")),
                std::fs::read_to_string(t.path().join("status")),
            ) else {
                continue; // exited meanwhile
            };
            let ours = status::parse_stat(&stat).expect("stat parses");
            let theirs = procfs_core::process::Stat::from_read(stat.as_bytes()).unwrap();
            assert_eq!(ours.comm, theirs.comm);
            assert_eq!(
                (ours.ppid, ours.flags, ours.starttime, ours.processor),
                (
                    theirs.ppid,
                    theirs.flags,
                    theirs.starttime,
                    theirs.processor
                )
            );
            let ours = status::parse(&st);
            let theirs = procfs_core::process::Status::from_read(st.as_bytes()).unwrap();
            assert_eq!(ours.tracer_pid, Some(theirs.tracerpid).filter(|&p| p > 0));
            assert_eq!(ours.pending.0, theirs.sigpnd);
            assert_eq!(ours.blocked.0, theirs.sigblk);
            assert_eq!(ours.voluntary, theirs.voluntary_ctxt_switches);
            assert_eq!(ours.involuntary, theirs.nonvoluntary_ctxt_switches);
            assert_eq!(Some(ours.ns_tids), theirs.nspid);
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} tasks read");
}
