//! Compiles bpf/wedge.bpf.c with clang (-target bpf, CO-RE) into OUT_DIR so
//! that lib.rs embeds it with include_bytes!. Users of the binary need no
//! clang. Without clang (or when it fails) the crate still builds, with the
//! cfg `wedge_no_bpf`, and `Bpf::open()` says wedge was built without its
//! program, so the snapshot falls back to /proc.
//!
//! bpf/syscalls.bpf.c (the system-call rings, src/syscalls.rs) is a second
//! object with its own cfg, `wedge_no_syscalls`: the recorder loads it on
//! its own, and an architecture it does not support (it reads x86-64
//! registers) loses only it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(wedge_no_bpf)");
    println!("cargo::rustc-check-cfg=cfg(wedge_no_syscalls)");
    println!("cargo:rerun-if-changed=bpf/wedge.bpf.c");
    println!("cargo:rerun-if-changed=bpf/syscalls.bpf.c");
    println!("cargo:rerun-if-changed=bpf/wedge.h");
    println!("cargo:rerun-if-env-changed=CLANG");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // The multiarch directory holds asm/types.h, which linux/types.h needs
    // and which clang does not look for under -target bpf.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        other => other,
    };
    let multiarch = format!("/usr/include/{arch}-linux-gnu");

    let compile = |src: &str, obj: &str| {
        let result = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall"])
            .arg(format!("-D__TARGET_ARCH_{target_arch}"))
            .arg(format!("-I{multiarch}"))
            .args(["-c", src, "-o"])
            .arg(out_dir.join(obj))
            .output();
        match result {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "{clang} failed on {src}: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("(no error line)")
            )),
            Err(e) => Some(format!("clang was not found at build time ({clang}: {e})")),
        }
    };
    if let Some(why) = compile("bpf/wedge.bpf.c", "wedge.bpf.o") {
        println!("cargo:warning=wedge-bpf: building without the BPF program: {why}");
        println!("cargo:rustc-cfg=wedge_no_bpf");
        println!("cargo:rustc-env=WEDGE_NO_BPF_WHY={why}");
    }
    if let Some(why) = compile("bpf/syscalls.bpf.c", "syscalls.bpf.o") {
        println!("cargo:warning=wedge-bpf: building without the system-call rings: {why}");
        println!("cargo:rustc-cfg=wedge_no_syscalls");
        println!("cargo:rustc-env=WEDGE_NO_SYSCALLS_WHY={why}");
    }
}
