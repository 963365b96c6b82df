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
