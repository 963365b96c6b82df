//! The fixture builder itself: the guest booted, reported its tasks, and
//! QEMU wrote every dump.
mod common;
use common::fixture::{boot_or_skip, Boot};

#[test]
fn guest_reports_scenarios_and_dumps_exist() {
    for boot in [Boot::Kaslr, Boot::NoKaslr, Boot::Crash] {
        let Some(fx) = boot_or_skip(boot).unwrap() else {
            return;
        };
        for comm in [
            "wk-pipe",
            "wk-vfork",
            "wk-zombie",
            "wk-stopped",
            "wk-sigpend",
            "wk-nsinit",
            "wk-sleeper",
            "wk-mutex-wait",
            "wk-rwsem-wait",
        ] {
            let t = fx
                .view
                .by_comm(comm)
                .unwrap_or_else(|| panic!("{}: guest did not report {comm}", boot.name()));
            eprintln!("{} {comm}: {} {:?}", boot.name(), t.state, t.stack);
        }
        for (f, p) in &fx.dumps {
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 4096, "{}: dump {f} missing or empty", boot.name());
        }
    }
}
