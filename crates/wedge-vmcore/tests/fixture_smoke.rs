//! The fixture builder itself: the guest booted, reported its tasks, and
//! QEMU wrote every dump.
mod common;
use common::fixture::{boot_or_skip, Boot};

#[test]
fn guest_reports_scenarios_and_dumps_exist() {
    for boot in [Boot::Kaslr, Boot::NoKaslr, Boot::Crash, Boot::Kdump] {
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

/// The guest kernel is Debian's 6.1 unpacked into the build directory by
/// scripts/vmcore-guest.sh, not a package installed into the host's /boot
/// (which ran update-initramfs on the host only to boot it in QEMU).
#[test]
fn guest_kernel_is_unpacked_debian_6_1_not_from_boot() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    if std::env::var_os("WEDGE_VMCORE_KERNEL").is_none() {
        let unpacked = common::fixture::cache_root().join("kernel/boot");
        assert!(
            fx.kernel.starts_with(&unpacked),
            "guest kernel {} is not the one unpacked under {}",
            fx.kernel.display(),
            unpacked.display()
        );
        assert!(
            fx.kernel_release.starts_with("6.1.") && fx.kernel_release.ends_with("-amd64"),
            "the fixtures and tests expect Debian's 6.1 kernel, got {}",
            fx.kernel_release
        );
    }
    assert!(
        !fx.kernel.starts_with("/boot"),
        "guest kernel {} comes from the host's /boot",
        fx.kernel.display()
    );
    // The guest really ran that kernel: the dump's VMCOREINFO names it.
    let elf = &fx.dumps["elf"];
    let v = wedge_vmcore::Vmcore::open(elf, &wedge_vmcore::Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
    assert_eq!(
        v.kernel.release.as_deref(),
        Some(fx.kernel_release.as_str()),
        "release in {}",
        elf.display()
    );
}
