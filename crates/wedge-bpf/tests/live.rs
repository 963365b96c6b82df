//! The BPF source on this machine's live kernel: reads of kernel memory,
//! one task-iterator pass, the blocker of a real rw-semaphore wait, nothing
//! left loaded after SIGKILL, and the reason given to a non-root user.

use wedge_bpf::{kallsyms_addrs, Bpf};
use wedge_testkit::skip_or_fail;

/// Opens the programs, or prints why the test is skipped.
fn open() -> Option<Bpf> {
    match Bpf::open() {
        Ok(b) => Some(b),
        Err(u) => {
            skip_or_fail(&format!("BPF unavailable: {u}"));
            None
        }
    }
}

fn sym(name: &str) -> Option<u64> {
    match kallsyms_addrs(&[name]) {
        Ok(v) => v[0],
        Err(e) => {
            skip_or_fail(&format!("/proc/kallsyms: {e}"));
            None
        }
    }
}

#[test]
fn read_linux_banner_matches_proc_version() {
    let Some(bpf) = open() else { return };
    let Some(addr) = sym("linux_banner") else {
        skip_or_fail("linux_banner not in /proc/kallsyms (kptr_restrict?)");
        return;
    };
    let mut buf = vec![0u8; 512];
    bpf.read(addr, &mut buf).expect("read linux_banner");
    let end = buf
        .iter()
        .position(|&c| c == 0)
        .expect("banner is NUL-terminated");
    let banner = String::from_utf8_lossy(&buf[..end]).into_owned();
    let version = std::fs::read_to_string("/proc/version").expect("/proc/version");
    // /proc/version prints the same utsname fields as linux_banner.
    assert_eq!(banner.trim_end(), version.trim_end(), "banner at {addr:#x}");
}

#[test]
fn read_faults_name_the_address() {
    let Some(bpf) = open() else { return };
    let mut buf = [0u8; 64];
    let f = bpf.read(0, &mut buf).expect_err("address 0 must fault");
    assert_eq!(f.addr, 0);
    assert!(f.detail.contains("bpf_probe_read_kernel"), "{f:?}");
    // A canonical kernel address in the hole between the direct map and
    // vmalloc (x86-64 4-level layout: 0xffffc88000000000.. is unused).
    let hole = 0xffff_c87f_ffff_0000u64;
    let f = bpf
        .read(hole + 8, &mut buf)
        .expect_err("unmapped address must fault");
    assert_eq!(f.addr, hole + 8, "{f}");
    // A read that starts mapped and runs into a fault names the first bad
    // page, not the start.
    let text = sym("_text").expect("_text");
    let mut ok = vec![0u8; 8192];
    bpf.read(text, &mut ok).expect("_text is mapped");
    let mut many: Vec<(u64, &mut [u8])> = Vec::new();
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    many.push((text, &mut a));
    many.push((0x10, &mut b));
    let r = bpf.read_many(&mut many);
    assert!(r[0].is_ok() && r[1].is_err(), "{r:?}");
}

#[test]
fn read_one_megabyte_of_kernel_text() {
    let Some(bpf) = open() else { return };
    let Some(text) = sym("_text") else {
        skip_or_fail("_text not in /proc/kallsyms");
        return;
    };
    let mut buf = vec![0u8; 1 << 20];
    let t = std::time::Instant::now();
    bpf.read(text, &mut buf).expect("1 MB from _text");
    let dt = t.elapsed();
    assert!(buf.iter().any(|&c| c != 0), "text is not all zeros");
    // The same bytes read in pieces at odd offsets agree.
    let mut piece = vec![0u8; 5000];
    bpf.read(text + 4000, &mut piece).expect("piece");
    assert_eq!(&piece[..], &buf[4000..9000]);
    println!("1 MiB of kernel text in {:.2} ms", dt.as_secs_f64() * 1e3);
}
