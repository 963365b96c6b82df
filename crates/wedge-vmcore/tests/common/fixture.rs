//! Real kernel crash dumps, made at test time.
//!
//! A Debian kernel (`linux-image-amd64`) boots under QEMU TCG with a tiny
//! initramfs: busybox-static, the scenario helper `testdata/wk.c` (built
//! static with the host's `cc`), `testdata/init.sh` as /init, and the
//! kernel's own `qemu_fw_cfg.ko` so that `-device vmcoreinfo` lets QEMU put
//! the guest's VMCOREINFO into its dumps (as kdump does). The guest prints
//! its own view of every task (`/proc/*/task/*/{stat,stack,status}`) on the
//! serial console, then `WK-READY`; QEMU's monitor (QMP over a unix socket)
//! then writes the dumps with `dump-guest-memory`.
//!
//! Boots (each one a [`Boot`]):
//! - `kaslr`: default CPU (4-level paging), KASLR on: ELF, kdump-zlib,
//!   kdump-lzo, kdump-snappy (QEMU ≤ 8.1 writes kdump dumps in makedumpfile's
//!   *flattened* format), plus the same zlib dump turned into a plain
//!   kdump-compressed file by `makedumpfile -R` when makedumpfile is there.
//! - `nokaslr`: `-cpu max` (LA57: 5-level paging where the CPU model has it)
//!   and `nokaslr`: ELF.
//! - `crash`: like `kaslr`, then `wk-crasher` writes `c` to
//!   /proc/sysrq-trigger; dumped after `Kernel panic` shows: ELF, kdump-zlib.
//! - `kdump`: the production path, not QEMU's dump. The guest boots with
//!   `crashkernel=192M` (512 MiB of RAM), `testdata/kdump-init.sh` loads
//!   a capture kernel (the same kernel, an initramfs of its own) with
//!   Debian's `kexec -s -p` (kexec_file_load), then init.sh runs as in
//!   `crash` and panics; the capture kernel (`testdata/kdump-capture.sh`)
//!   runs Debian's `makedumpfile -c -d 31 /proc/vmcore` (kdump-zlib: a plain
//!   kdump-compressed file) and copies `/proc/vmcore` (elf) onto a raw
//!   virtio disk the host reads back. kexec-tools, makedumpfile and the Xen
//!   libraries Debian's kexec links come unpacked from their packages
//!   (`scripts/vmcore-guest.sh`, `vmcore-fixtures/kdump-tools/`); the rest
//!   of their libraries are the host's own files. Without them this boot
//!   is left out and its tests skip ([`boot_or_skip`]).
//!
//! Besides the dumps, [`run_in_guest`] boots the same kernel and initramfs
//! once more with static programs of a test's (a second cpio archive: the
//! programs and `testdata/run-init.sh` as /init), runs them as root once
//! init.sh's scenarios are up, and brings back each one's output and the
//! guest's /proc view after it from the serial console: wedge-bpf's
//! tests/guest.rs runs the BPF task pass and wedge on 6.1 that way, and
//! crates/wedge/tests/nfs_guest.rs, with [`run_in_guest_with`], an NFS
//! server and client (the package's modules and a C helper of its own as
//! further files; workspace binaries from [`static_build`], C ones from
//! [`static_c`]).
//!
//! Results are cached under `target/vmcore-fixtures/<key>/` (the cargo
//! target directory, so `CARGO_TARGET_DIR` moves it; override with
//! `WEDGE_VMCORE_FIXTURES`), keyed by the kernel, busybox, QEMU and these
//! sources; a lock file serialises concurrent test binaries. Without QEMU, a
//! kernel or busybox the tests skip (`SKIPPED: reason`), failing instead when
//! `WEDGE_REQUIRE_ALL` is set.
//!
//! The guest's kernel and busybox are not installed on the host:
//! `scripts/vmcore-guest.sh` downloads Debian's `linux-image-6.1.*-amd64`
//! and `busybox-static` and unpacks them (`dpkg-deb -x`) into
//! `vmcore-fixtures/kernel/` and `vmcore-fixtures/busybox/` (installing the
//! kernel package would run update-initramfs and write /boot, only to boot
//! it in a VM). `WEDGE_VMCORE_KERNEL=DIR/boot/vmlinuz-R` picks another
//! kernel, its modules read from `DIR/lib/modules/R`.
//!
//! Needed on the host (Debian): `qemu-system-x86 makedumpfile` and a C
//! compiler with static glibc (`gcc libc6-dev`, present wherever Rust
//! builds).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bump when the guest scenarios or the dump set change shape.
const BUILDER_VERSION: &str = "4";
const WK_C: &str = include_str!("../../testdata/wk.c");
const INIT_SH: &str = include_str!("../../testdata/init.sh");
const KDUMP_INIT_SH: &str = include_str!("../../testdata/kdump-init.sh");
const KDUMP_CAPTURE_SH: &str = include_str!("../../testdata/kdump-capture.sh");
const RUN_INIT_SH: &str = include_str!("../../testdata/run-init.sh");
/// The kdump boot's memory: `crashkernel=` must hold the capture kernel, its
/// initramfs unpacked and makedumpfile's output in tmpfs; the rest is the
/// panicking kernel's.
const KDUMP_RAM_MIB: u32 = 512;
const KDUMP_CRASHKERNEL: &str = "192M";
/// virtio-blk's modules in the order their `depends=` needs (Debian builds
/// them as modules; the capture kernel writes the dumps to a virtio disk).
const VIRTIO_BLK_MODULES: &[&str] = &[
    "virtio/virtio_ring",
    "virtio/virtio",
    "virtio/virtio_pci_legacy_dev",
    "virtio/virtio_pci_modern_dev",
    "virtio/virtio_pci",
    "block/virtio_blk",
];

/// Which boot a dump comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Boot {
    Kaslr,
    NoKaslr,
    Crash,
    /// Made by the guest itself: kexec into a capture kernel, makedumpfile.
    Kdump,
}

impl Boot {
    pub fn name(self) -> &'static str {
        match self {
            Boot::Kaslr => "kaslr",
            Boot::NoKaslr => "nokaslr",
            Boot::Crash => "crash",
            Boot::Kdump => "kdump",
        }
    }
    fn formats(self) -> &'static [&'static str] {
        match self {
            Boot::Kaslr => &["elf", "kdump-zlib", "kdump-lzo", "kdump-snappy"],
            Boot::NoKaslr => &["elf"],
            Boot::Crash => &["elf", "kdump-zlib"],
            // makedumpfile's kdump-compressed file and /proc/vmcore's ELF.
            Boot::Kdump => &["kdump-zlib", "elf"],
        }
    }
}

/// One task as the guest saw it.
#[derive(Debug, Clone, Default)]
pub struct GuestTask {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub flags: u32,
    /// Function names of /proc/PID/stack, innermost first.
    pub stack: Vec<String>,
    /// The module of each frame of `stack` (`[fuse]`), if in one.
    pub stack_modules: Vec<Option<String>>,
    pub status: BTreeMap<String, String>,
}

/// The guest's own view, parsed from the serial log.
#[derive(Debug, Clone, Default)]
pub struct GuestView {
    pub tasks: BTreeMap<i32, GuestTask>,
    pub serial: String,
}

impl GuestView {
    pub fn by_comm(&self, comm: &str) -> Option<&GuestTask> {
        self.tasks.values().find(|t| t.comm == comm)
    }
}

/// The dumps of one boot.
#[derive(Debug, Clone)]
pub struct BootFixture {
    pub boot: Boot,
    pub dir: PathBuf,
    /// format name (`elf`, `kdump-zlib`, …, `kdump-zlib-plain`) → path.
    pub dumps: BTreeMap<String, PathBuf>,
    pub view: GuestView,
    pub kernel_release: String,
    /// The vmlinuz QEMU booted.
    pub kernel: PathBuf,
    pub system_map: Option<PathBuf>,
}

/// Everything the tests need, or why it is unavailable.
pub struct Fixtures {
    pub boots: BTreeMap<Boot, BootFixture>,
    pub build_secs: f64,
    /// Why a boot is not in `boots` (the kdump tools are not unpacked).
    pub missing: BTreeMap<Boot, String>,
}

static FIXTURES: OnceLock<Result<Fixtures, Unavailable>> = OnceLock::new();
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Why fixtures could not be made.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// A tool or kernel is not installed: skip.
    Missing(String),
    /// Everything is there but building failed: a test failure.
    Failed(String),
}

/// The fixtures, built once per process (and cached across runs).
pub fn fixtures() -> Result<&'static Fixtures, Unavailable> {
    let _g = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    FIXTURES
        .get_or_init(build_all)
        .as_ref()
        .map_err(Clone::clone)
}

/// Helper for tests: the fixture of a boot, or skip (`Ok(None)`).
pub fn boot_or_skip(boot: Boot) -> Result<Option<&'static BootFixture>, String> {
    match fixtures() {
        Ok(f) => {
            let fx = f.boots.get(&boot);
            if fx.is_none() {
                let why = f.missing.get(&boot).map_or("not built", String::as_str);
                skip_or_fail(&format!("no {} boot: {why}", boot.name()));
            }
            Ok(fx)
        }
        Err(Unavailable::Missing(why)) => {
            skip_or_fail(&why);
            Ok(None)
        }
        Err(Unavailable::Failed(why)) => Err(why),
    }
}

pub fn skip_or_fail(reason: &str) {
    if std::env::var_os("WEDGE_REQUIRE_ALL").is_some() {
        panic!("required fixture unavailable (WEDGE_REQUIRE_ALL is set): {reason}");
    }
    println!("SKIPPED: {reason}");
}

struct Tools {
    qemu: PathBuf,
    kernel: PathBuf,
    release: String,
    busybox: PathBuf,
    fw_cfg: Option<PathBuf>,
    fuse: Option<PathBuf>,
    system_map: Option<PathBuf>,
    cc: String,
    makedumpfile: Option<PathBuf>,
    modules: PathBuf,
}

/// What the kdump boot copies into its guest: Debian's kexec and
/// makedumpfile (unpacked by scripts/vmcore-guest.sh) and the shared
/// libraries each needs, as the host's dynamic loader resolves them.
struct KdumpTools {
    kexec: PathBuf,
    kexec_libs: Vec<PathBuf>,
    makedumpfile: PathBuf,
    makedumpfile_libs: Vec<PathBuf>,
    virtio_modules: Vec<PathBuf>,
}

/// The x86-64 dynamic loader: the PT_INTERP of Debian's binaries.
const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

fn find_kdump_tools(tools: &Tools) -> Result<KdumpTools, String> {
    let root = cache_root().join("kdump-tools");
    let kexec = root.join("kexec-tools/sbin/kexec");
    let makedumpfile = root.join("makedumpfile/usr/bin/makedumpfile");
    for p in [&kexec, &makedumpfile] {
        if !p.is_file() {
            return Err(format!(
                "{} missing: run scripts/vmcore-guest.sh (unpacks Debian's kexec-tools and \
                 makedumpfile there, installs nothing)",
                p.display()
            ));
        }
    }
    // The unpacked packages' library directories come first, then the host's.
    let mut dirs = Vec::new();
    if let Ok(rd) = fs::read_dir(&root) {
        for e in rd.flatten() {
            for sub in ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"] {
                let d = e.path().join(sub);
                if d.is_dir() {
                    dirs.push(d);
                }
            }
        }
    }
    dirs.sort();
    let path = std::env::join_paths(&dirs).map_err(|e| e.to_string())?;
    let libs = |bin: &Path| -> Result<Vec<PathBuf>, String> {
        // `ld.so --list` is what ldd runs: it maps the libraries without
        // running the program.
        let out = Command::new(LD_SO)
            .arg("--list")
            .arg(bin)
            .env("LD_LIBRARY_PATH", &path)
            .output()
            .map_err(|e| format!("{LD_SO} --list {}: {e}", bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text.contains("not found") {
            return Err(format!(
                "{} needs libraries neither the host nor vmcore-fixtures/kdump-tools has: {}{}",
                bin.display(),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut v = vec![PathBuf::from(LD_SO)];
        for l in text.lines() {
            if let Some((_, p)) = l.split_once("=> ") {
                let p = p.split(" (").next().unwrap_or(p).trim();
                v.push(PathBuf::from(p));
            }
        }
        Ok(v)
    };
    let virtio_modules: Vec<PathBuf> = VIRTIO_BLK_MODULES
        .iter()
        .map(|m| tools.modules.join(format!("kernel/drivers/{m}.ko")))
        .collect();
    if let Some(m) = virtio_modules.iter().find(|m| !m.is_file()) {
        return Err(format!(
            "{} missing (the capture kernel's disk driver)",
            m.display()
        ));
    }
    Ok(KdumpTools {
        kexec_libs: libs(&kexec)?,
        makedumpfile_libs: libs(&makedumpfile)?,
        kexec,
        makedumpfile,
        virtio_modules,
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn find_tools() -> Result<Tools, Unavailable> {
    let miss = |s: &str| Unavailable::Missing(s.to_string());
    let qemu = which("qemu-system-x86_64").ok_or_else(|| {
        miss("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
    })?;
    let guest = cache_root();
    let kernel = match std::env::var_os("WEDGE_VMCORE_KERNEL") {
        Some(k) => PathBuf::from(k),
        None => unpacked_kernel(&guest.join("kernel/boot")).ok_or_else(|| {
            Unavailable::Missing(format!(
                "no guest kernel {}/vmlinuz-*-amd64: run scripts/vmcore-guest.sh \
                 (downloads and unpacks Debian's 6.1 kernel there, installs nothing) \
                 or set WEDGE_VMCORE_KERNEL",
                guest.join("kernel/boot").display()
            ))
        })?,
    };
    let release = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or("unknown")
        .to_string();
    // The package's layout: DIR/boot/vmlinuz-R beside DIR/lib/modules/R
    // (for the host's own /boot/vmlinuz-R that is /lib/modules/R).
    let boot_dir = kernel.parent().unwrap_or(Path::new("."));
    let modules = boot_dir.join("../lib/modules").join(&release);
    let busybox = [
        guest.join("busybox/bin/busybox"),
        PathBuf::from("/bin/busybox"),
        PathBuf::from("/usr/bin/busybox"),
    ]
    .into_iter()
    .find(|p| p.is_file() && is_static(p))
    .ok_or_else(|| {
        Unavailable::Missing(format!(
            "no static busybox in {} (run scripts/vmcore-guest.sh) nor on the host",
            guest.join("busybox/bin").display()
        ))
    })?;
    let fw_cfg = modules.join("kernel/drivers/firmware/qemu_fw_cfg.ko");
    let fuse = modules.join("kernel/fs/fuse/fuse.ko");
    let system_map = boot_dir.join(format!("System.map-{release}"));
    Ok(Tools {
        qemu,
        kernel,
        busybox,
        fw_cfg: fw_cfg.is_file().then_some(fw_cfg),
        fuse: fuse.is_file().then_some(fuse),
        system_map: system_map.is_file().then_some(system_map),
        release,
        cc: std::env::var("CC").unwrap_or_else(|_| "cc".into()),
        makedumpfile: which("makedumpfile"),
        modules,
    })
}

/// Whether the guest can boot here at all (QEMU, the unpacked kernel and a
/// static busybox), without building anything: a test with a costly
/// preparation of its own checks this first.
pub fn guest_available() -> Result<(), Unavailable> {
    find_tools().map(|_| ())
}

fn is_static(p: &Path) -> bool {
    // A dynamic ELF has a PT_INTERP; cheap check: the interpreter path string.
    fs::read(p)
        .map(|b| !b.windows(14).any(|w| w == b"/lib64/ld-linu"))
        .unwrap_or(false)
}

/// The kernel `scripts/vmcore-guest.sh` unpacked: it keeps one package's
/// tree, so there is one `vmlinuz-*-amd64`; the last by name otherwise.
fn unpacked_kernel(boot_dir: &Path) -> Option<PathBuf> {
    let mut ks: Vec<PathBuf> = fs::read_dir(boot_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with("-amd64"))
        })
        .collect();
    ks.sort();
    ks.pop()
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn file_id(h: &mut u64, p: &Path) {
    fnv(h, p.as_os_str().as_encoded_bytes());
    if let Ok(m) = fs::metadata(p) {
        fnv(h, &m.len().to_le_bytes());
        if let Ok(t) = m.modified() {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            fnv(h, &d.as_secs().to_le_bytes());
        }
    }
}

pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("WEDGE_VMCORE_FIXTURES") {
        return PathBuf::from(d);
    }
    // Cargo gives integration tests `<target dir>/tmp`: its parent is the
    // target directory, wherever CARGO_TARGET_DIR put it.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp);
    target.join("vmcore-fixtures")
}

/// The directory of this kernel/busybox/QEMU/scenario set (the key every
/// boot shares, with its initramfs), and the cache's lock, held: concurrent
/// test binaries build one at a time.
fn keyed_dir(tools: &Tools) -> Result<(PathBuf, u64, fs::File), Unavailable> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv(&mut h, BUILDER_VERSION.as_bytes());
    fnv(&mut h, WK_C.as_bytes());
    fnv(&mut h, INIT_SH.as_bytes());
    for p in [&tools.kernel, &tools.busybox, &tools.qemu] {
        file_id(&mut h, p);
    }
    let root = cache_root();
    let dir = root.join(format!("{}-{h:016x}", tools.release));
    fs::create_dir_all(&dir).map_err(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
    let lock = fs::File::create(root.join(".lock"))
        .map_err(|e| fail(format!("lock file in {}: {e}", root.display())))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    Ok((dir, h, lock))
}

fn build_all() -> Result<Fixtures, Unavailable> {
    let t0 = Instant::now();
    let tools = find_tools()?;
    let (dir, h, lock) = keyed_dir(&tools)?;

    let mut boots = BTreeMap::new();
    let mut missing = BTreeMap::new();
    // The kdump boot has inputs of its own: its stamp (in `done`) keys them,
    // so that changing them rebuilds that boot alone.
    let kdump = find_kdump_tools(&tools);
    let mut kh = h;
    fnv(&mut kh, KDUMP_INIT_SH.as_bytes());
    fnv(&mut kh, KDUMP_CAPTURE_SH.as_bytes());
    if let Ok(k) = &kdump {
        for p in [&k.kexec, &k.makedumpfile] {
            file_id(&mut kh, p);
        }
    }
    let kdump_stamp = format!("{kh:016x}");
    for boot in [Boot::Kaslr, Boot::NoKaslr, Boot::Crash, Boot::Kdump] {
        let bdir = dir.join(boot.name());
        let stamp = if boot == Boot::Kdump {
            match &kdump {
                Ok(_) => kdump_stamp.as_str(),
                Err(why) => {
                    missing.insert(boot, why.clone());
                    continue;
                }
            }
        } else {
            ""
        };
        let done = fs::read_to_string(bdir.join("done"));
        if done.as_deref().ok() != Some(stamp) {
            let _ = fs::remove_dir_all(&bdir);
            fs::create_dir_all(&bdir).map_err(|e| fail(format!("mkdir: {e}")))?;
            let initrd = initramfs(&tools, &dir)?;
            match (&kdump, boot) {
                (Ok(k), Boot::Kdump) => run_kdump_boot(&tools, k, &bdir, &initrd)?,
                _ => run_boot(&tools, boot, &bdir, &initrd)?,
            }
            fs::write(bdir.join("done"), stamp).map_err(|e| fail(e.to_string()))?;
        }
        let serial = fs::read_to_string(bdir.join("serial.log")).unwrap_or_default();
        let mut dumps = BTreeMap::new();
        for f in boot.formats() {
            let p = bdir.join(format!("{f}.dump"));
            if p.is_file() {
                dumps.insert(f.to_string(), p);
            }
        }
        let plain = bdir.join("kdump-zlib-plain.dump");
        if plain.is_file() {
            dumps.insert("kdump-zlib-plain".into(), plain);
        }
        boots.insert(
            boot,
            BootFixture {
                boot,
                dir: bdir,
                dumps,
                view: parse_view(&serial),
                kernel_release: tools.release.clone(),
                kernel: tools.kernel.clone(),
                system_map: tools.system_map.clone(),
            },
        );
    }
    drop(lock);
    Ok(Fixtures {
        boots,
        build_secs: t0.elapsed().as_secs_f64(),
        missing,
    })
}

fn fail(s: String) -> Unavailable {
    Unavailable::Failed(s)
}

/// `cc -static -O2 -o OUT SRC`: the guest has no libraries.
fn cc_static(tools: &Tools, src: &Path, out: &Path) -> Result<(), Unavailable> {
    let st = Command::new(&tools.cc)
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(src)
        .status()
        .map_err(|e| Unavailable::Missing(format!("C compiler {}: {e}", tools.cc)))?;
    if !st.success() {
        return Err(Unavailable::Missing(format!(
            "{} -static {} failed: is static glibc (libc6-dev) installed?",
            tools.cc,
            src.display()
        )));
    }
    Ok(())
}

/// A test's own C helper for [`run_in_guest`], built static once per source
/// text (the path names its hash, so an unchanged source keeps the binary
/// and its mtime, which key the cached boot).
pub fn static_c(name: &str, source: &str) -> Result<PathBuf, Unavailable> {
    let tools = find_tools()?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv(&mut h, source.as_bytes());
    let dir = cache_root().join("static-c");
    fs::create_dir_all(&dir).map_err(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
    let out = dir.join(format!("{name}-{h:016x}"));
    if !out.is_file() {
        let src = dir.join(format!("{name}-{h:016x}.c"));
        fs::write(&src, source).map_err(|e| fail(format!("{}: {e}", src.display())))?;
        // Built beside and renamed: a concurrent test never runs half a file.
        let tmp = dir.join(format!("{name}-{h:016x}.{}", std::process::id()));
        cc_static(&tools, &src, &tmp)?;
        fs::rename(&tmp, &out).map_err(|e| fail(format!("{}: {e}", out.display())))?;
    }
    Ok(out)
}

/// The guest kernel's modules directory (`…/lib/modules/R`).
pub fn guest_modules_dir() -> Result<PathBuf, Unavailable> {
    Ok(find_tools()?.modules)
}

/// Builds (once) the initramfs shared by all boots.
fn initramfs(tools: &Tools, dir: &Path) -> Result<PathBuf, Unavailable> {
    let out = dir.join("initramfs.cpio");
    if out.is_file() {
        return Ok(out);
    }
    let src = dir.join("wk.c");
    fs::write(&src, WK_C).map_err(|e| fail(e.to_string()))?;
    let wk = dir.join("wk");
    cc_static(tools, &src, &wk)?;
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        c.dir(d);
    }
    c.chardev("dev/console", 5, 1);
    c.chardev("dev/fuse", 10, 229);
    c.file("bin/busybox", &read(&tools.busybox)?, 0o755);
    c.file("bin/wk", &read(&wk)?, 0o755);
    c.file("init", INIT_SH.as_bytes(), 0o755);
    if let Some(m) = &tools.fw_cfg {
        c.file("qemu_fw_cfg.ko", &read(m)?, 0o644);
    }
    if let Some(m) = &tools.fuse {
        c.file("fuse.ko", &read(m)?, 0o644);
    }
    let tmp = dir.join("initramfs.cpio.tmp");
    fs::write(&tmp, c.finish()).map_err(|e| fail(e.to_string()))?;
    fs::rename(&tmp, &out).map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

fn read(p: &Path) -> Result<Vec<u8>, Unavailable> {
    fs::read(p).map_err(|e| fail(format!("{}: {e}", p.display())))
}

/// A `newc` cpio archive (what the kernel unpacks as initramfs).
#[derive(Default)]
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.buf.extend_from_slice(hdr.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }
    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }
}

/// A path removed when the guard goes out of scope, even on panic.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

struct Qemu {
    child: Child,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_boot(tools: &Tools, boot: Boot, dir: &Path, initrd: &Path) -> Result<(), Unavailable> {
    let serial = dir.join("serial.log");
    // sun_path holds 108 bytes: the socket lives in /tmp, not the cache;
    // the guard removes it on every way out (a failed boot, a panic).
    let sock_guard = RemoveOnDrop(std::env::temp_dir().join(format!(
        "wedge-qmp-{}-{}.sock",
        std::process::id(),
        boot.name()
    )));
    let _ = fs::remove_file(&sock_guard.0);
    let sock = sock_guard.0.as_path();
    let mut append = String::from("console=ttyS0 loglevel=4 panic=0 oops=panic");
    match boot {
        Boot::NoKaslr => append.push_str(" nokaslr"),
        Boot::Crash => append.push_str(" wedge.crash"),
        Boot::Kaslr | Boot::Kdump => {}
    }
    let cpu = if boot == Boot::NoKaslr {
        "max"
    } else {
        "qemu64"
    };
    let mut cmd = qemu_command(tools, cpu, 256, initrd, &append, dir)?;
    cmd.args(["-device", "vmcoreinfo"]);
    let mut qemu = spawn_qemu(cmd, tools, Some(sock))?;
    let marker = if boot == Boot::Crash {
        "Kernel panic - not syncing"
    } else {
        "WK-READY"
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let log = fs::read_to_string(&serial).unwrap_or_default();
        if log.contains(marker) {
            break;
        }
        if let Ok(Some(st)) = qemu.child.try_wait() {
            return Err(fail(format!(
                "QEMU ({}) exited with {st} before {marker:?}; serial log: {}",
                boot.name(),
                tail(&log)
            )));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "guest ({}) did not print {marker:?} within 240 s; serial log: {}",
                boot.name(),
                tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the panic finish stopping the other CPUs, or the scenario tasks
    // settle after the report.
    std::thread::sleep(Duration::from_secs(2));
    let mut qmp = Qmp::connect(sock)?;
    qmp.cmd(r#"{"execute":"stop"}"#)?;
    // This QEMU's build decides which compressions it offers.
    let caps = qmp.cmd(r#"{"execute":"query-dump-guest-memory-capability"}"#)?;
    for f in boot.formats() {
        if !caps.contains(&format!("\"{f}\"")) {
            continue;
        }
        let out = dir.join(format!("{f}.dump"));
        qmp.cmd(&format!(
            r#"{{"execute":"dump-guest-memory","arguments":{{"paging":false,"protocol":"file:{}","format":"{f}"}}}}"#,
            out.display()
        ))?;
    }
    let _ = qmp.cmd(r#"{"execute":"quit"}"#);
    drop(qemu);
    // QEMU before 8.2 writes kdump formats "flattened"; makedumpfile -R
    // rebuilds the plain (seekable) kdump-compressed file from it.
    if let (Some(mdf), true) = (&tools.makedumpfile, boot.formats().contains(&"kdump-zlib")) {
        let flat = fs::File::open(dir.join("kdump-zlib.dump")).map_err(|e| fail(e.to_string()))?;
        let st = Command::new(mdf)
            .arg("-R")
            .arg(dir.join("kdump-zlib-plain.dump"))
            .stdin(flat)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !st.is_ok_and(|s| s.success()) {
            let _ = fs::remove_file(dir.join("kdump-zlib-plain.dump"));
        }
    }
    Ok(())
}

/// QEMU as every boot runs it: TCG, 2 CPUs, the serial console to
/// `dir/serial.log`, no devices but those asked for, exits instead of
/// rebooting.
fn qemu_command(
    tools: &Tools,
    cpu: &str,
    mem_mib: u32,
    initrd: &Path,
    append: &str,
    dir: &Path,
) -> Result<Command, Unavailable> {
    let mut cmd = Command::new(&tools.qemu);
    cmd.args(["-machine", "pc,accel=tcg", "-cpu", cpu, "-smp", "2"])
        .args(["-m", &mem_mib.to_string()])
        .args(["-display", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(&tools.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", append])
        .arg("-serial")
        .arg(format!("file:{}", dir.join("serial.log").display()))
        .args(["-monitor", "none", "-nodefaults"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            fs::File::create(dir.join("qemu.stderr")).map_err(|e| fail(e.to_string()))?,
        ));
    Ok(cmd)
}

fn spawn_qemu(mut cmd: Command, tools: &Tools, qmp: Option<&Path>) -> Result<Qemu, Unavailable> {
    if let Some(sock) = qmp {
        cmd.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()));
    }
    let child = cmd
        .spawn()
        .map_err(|e| fail(format!("spawning {}: {e}", tools.qemu.display())))?;
    Ok(Qemu { child })
}

/// The kdump boot (see the module comment): QEMU runs until the capture
/// kernel powers off; the dumps are then cut out of its disk.
fn run_kdump_boot(
    tools: &Tools,
    k: &KdumpTools,
    dir: &Path,
    base_initrd: &Path,
) -> Result<(), Unavailable> {
    let t0 = Instant::now();
    let serial = dir.join("serial.log");
    // The capture kernel's own initramfs: busybox, makedumpfile with its
    // libraries, the virtio disk driver and kdump-capture.sh as /init.
    let mut cap = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib64", "kdump"] {
        cap.dir(d);
    }
    cap.chardev("dev/console", 5, 1);
    cap.file("bin/busybox", &read(&tools.busybox)?, 0o755);
    cap.file("bin/makedumpfile", &read(&k.makedumpfile)?, 0o755);
    add_libs(&mut cap, &k.makedumpfile_libs)?;
    for m in &k.virtio_modules {
        let name = m.file_name().and_then(|n| n.to_str()).unwrap_or("m.ko");
        cap.file(&format!("kdump/{name}"), &read(m)?, 0o644);
    }
    cap.file("init", KDUMP_CAPTURE_SH.as_bytes(), 0o755);
    let capture = cap.finish();
    // The first kernel's: the shared initramfs with a second archive after
    // it (the kernel unpacks concatenated cpio archives in order, a later
    // /init replacing the earlier): kexec, the capture kernel and its
    // initramfs, kdump-init.sh as /init and init.sh beside it.
    let mut first = Cpio::default();
    for d in ["lib", "lib64", "kdump"] {
        first.dir(d);
    }
    first.file("kdump/kexec", &read(&k.kexec)?, 0o755);
    add_libs(&mut first, &k.kexec_libs)?;
    first.file("kdump/vmlinuz", &read(&tools.kernel)?, 0o644);
    first.file("kdump/capture.cpio", &capture, 0o644);
    // nr_cpus=1, irqpoll, reset_devices: what distributions' kdump services
    // give a capture kernel (one CPU in a small reserve; devices the
    // panicked kernel left mid-request are reset). panic=1 with QEMU's
    // -no-reboot ends the boot if the capture kernel itself panics.
    first.file(
        "kdump/cmdline",
        b"console=ttyS0 loglevel=4 nr_cpus=1 irqpoll reset_devices panic=1",
        0o644,
    );
    first.file("wk-init.sh", INIT_SH.as_bytes(), 0o755);
    first.file("init", KDUMP_INIT_SH.as_bytes(), 0o755);
    let mut initrd_bytes = read(base_initrd)?;
    initrd_bytes.extend_from_slice(&first.finish());
    let initrd = dir.join("initramfs-kdump.cpio");
    fs::write(&initrd, &initrd_bytes).map_err(|e| fail(format!("{}: {e}", initrd.display())))?;
    let _initrd_guard = RemoveOnDrop(initrd.clone());
    // The capture kernel's output disk, sparse: the header's MiB, the kdump
    // file (at most all of RAM) and the ELF copy (all of RAM and its
    // headers), with room to spare.
    let disk = dir.join("disk.img");
    let _disk_guard = RemoveOnDrop(disk.clone());
    let disk_mib = 2 * u64::from(KDUMP_RAM_MIB) + 128;
    fs::File::create(&disk)
        .and_then(|f| f.set_len(disk_mib << 20))
        .map_err(|e| fail(format!("{}: {e}", disk.display())))?;
    let append = format!(
        "console=ttyS0 loglevel=4 panic=0 oops=panic wedge.crash crashkernel={KDUMP_CRASHKERNEL}"
    );
    let mut cmd = qemu_command(tools, "qemu64", KDUMP_RAM_MIB, &initrd, &append, dir)?;
    cmd.arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()));
    // No monitor: the guest makes its own dumps and powers off.
    let mut qemu = spawn_qemu(cmd, tools, None)?;
    // Two boots and a dump under TCG: more time than the other boots get.
    let limit = Duration::from_secs(480);
    let deadline = Instant::now() + limit;
    loop {
        let log = fs::read_to_string(&serial).unwrap_or_default();
        for bad in ["WK-KEXEC-FAILED", "WK-CAPTURE-FAILED"] {
            if log.contains(bad) {
                return Err(fail(format!(
                    "kdump boot: {bad}; serial log: {}",
                    tail(&log)
                )));
            }
        }
        if let Ok(Some(st)) = qemu.child.try_wait() {
            if log.contains("WK-CAPTURE-DONE") {
                break;
            }
            return Err(fail(format!(
                "QEMU (kdump) exited with {st} before the capture kernel wrote the dumps; \
                 serial log: {}",
                tail(&log)
            )));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "kdump boot did not end within {} s; serial log: {}",
                limit.as_secs(),
                tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(qemu);
    extract_disk(&disk, dir)?;
    let secs = t0.elapsed().as_secs_f64();
    fs::write(dir.join("build-secs"), format!("{secs:.1}\n")).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// One program for [`run_in_guest`]: a static binary (the guest has no
/// libraries), installed as `/bin/NAME` and run as `NAME ARGS` (the
/// arguments split on spaces by the guest's shell).
#[derive(Debug, Clone, Copy)]
pub struct GuestProgram<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub args: &'a [&'a str],
}

/// A file of a test's for [`run_in_guest_with`]: the host's `path` at
/// `name` in the guest (relative to /), e.g. kernel modules a scenario
/// loads.
#[derive(Debug, Clone, Copy)]
pub struct GuestFile<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    /// 0o755 for a program a script of the test's runs, 0o644 for data.
    pub mode: u32,
}

/// What one program printed in the guest.
#[derive(Debug, Clone, Default)]
pub struct ProgramRun {
    /// Its stdout: the serial lines between `WK-RUN-BEGIN NAME` and
    /// `WK-RUN-END`, carriage returns dropped.
    pub output: String,
    /// Its stderr lines (`WK-RUN-ERR`) and exit status (`WK-RUN-EXIT`).
    pub stderr: Vec<String>,
    pub status: Option<i32>,
    /// The guest's /proc view printed right after it exited.
    pub view: GuestView,
}

/// What [`run_in_guest`] brought back.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// The run's directory (`serial.log`, `qemu.stderr`, `boot-secs`).
    pub dir: PathBuf,
    pub serial: String,
    /// Each program's run, by name.
    pub runs: BTreeMap<String, ProgramRun>,
    /// Seconds from QEMU's start to its exit, of the boot that made this
    /// (recorded then: a cached run did not boot again).
    pub boot_secs: f64,
    pub cached: bool,
    pub kernel_release: String,
}

/// The whole boot may take this long under TCG (it takes ~30 s here).
const RUN_BOOT_LIMIT: Duration = Duration::from_secs(240);

/// Boots the fixtures' kernel once with programs of the caller's, run one
/// after the other as root after init.sh's scenarios are set up
/// (`run-init.sh`): a second cpio archive after the shared initramfs holds
/// each program as `/bin/NAME`, their command lines in `/wk-run.list` and
/// `run-init.sh` as `/init`. Their stdout, stderr and exit status, each
/// followed by the guest's /proc view, come back on the serial console; the
/// guest powers
/// itself off. No network, no disk, no monitor. Cached under the fixtures'
/// key plus the programs (name, path, size, mtime, arguments); QEMU is
/// killed when the boot exceeds [`RUN_BOOT_LIMIT`].
pub fn run_in_guest(programs: &[GuestProgram<'_>]) -> Result<GuestRun, Unavailable> {
    run_in_guest_with(programs, &[])
}

/// [`run_in_guest`] with further files in the programs' archive (keyed like
/// the programs: name, path, size, mtime).
pub fn run_in_guest_with(
    programs: &[GuestProgram<'_>],
    files: &[GuestFile<'_>],
) -> Result<GuestRun, Unavailable> {
    let _g = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tools = find_tools()?;
    let (dir, mut h, _lock) = keyed_dir(&tools)?;
    fnv(&mut h, RUN_INIT_SH.as_bytes());
    let mut list = String::new();
    for p in programs {
        file_id(&mut h, p.path);
        list.push_str(p.name);
        for a in p.args {
            list.push(' ');
            list.push_str(a);
        }
        list.push('\n');
    }
    fnv(&mut h, list.as_bytes());
    for f in files {
        fnv(&mut h, f.name.as_bytes());
        fnv(&mut h, &f.mode.to_le_bytes());
        file_id(&mut h, f.path);
    }
    let rdir = dir.join(format!("run-{h:016x}"));
    let cached = fs::read_to_string(rdir.join("done")).is_ok();
    if !cached {
        let _ = fs::remove_dir_all(&rdir);
        fs::create_dir_all(&rdir).map_err(|e| fail(format!("mkdir {}: {e}", rdir.display())))?;
        let base = initramfs(&tools, &dir)?;
        run_program_boot(&tools, &rdir, &base, programs, files, &list)?;
        // Only a boot that went as planned is kept: one whose scenarios did
        // not come up is tried again next time, not replayed.
        let log = fs::read_to_string(rdir.join("serial.log")).unwrap_or_default();
        if !log.contains("WK-RUN-NOT-READY") {
            fs::write(rdir.join("done"), "").map_err(|e| fail(e.to_string()))?;
        }
    }
    let serial = fs::read_to_string(rdir.join("serial.log"))
        .map_err(|e| fail(format!("{}: {e}", rdir.join("serial.log").display())))?;
    let boot_secs = fs::read_to_string(rdir.join("boot-secs"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0.0);
    let mut runs: BTreeMap<String, ProgramRun> = BTreeMap::new();
    let mut inside: Option<String> = None;
    let mut at = 0;
    for raw in serial.split_inclusive('\n') {
        at += raw.len();
        let line = raw.trim_end_matches(['\r', '\n']);
        if let Some(name) = line.strip_prefix("WK-RUN-BEGIN ") {
            inside = Some(name.trim().to_string());
            continue;
        }
        if line == "WK-RUN-END" {
            // The view that follows this program (the first WK-BEGIN on).
            if let Some(name) = inside.take() {
                runs.entry(name).or_default().view = parse_view(&serial[at..]);
            }
            continue;
        }
        let Some(name) = &inside else { continue };
        let run = runs.entry(name.clone()).or_default();
        if let Some(e) = line.strip_prefix("WK-RUN-ERR ") {
            run.stderr.push(e.to_string());
        } else if let Some(st) = line.strip_prefix("WK-RUN-EXIT ") {
            run.status = st.trim().parse().ok();
        } else {
            run.output.push_str(line);
            run.output.push('\n');
        }
    }
    Ok(GuestRun {
        dir: rdir,
        serial,
        runs,
        boot_secs,
        cached,
        kernel_release: tools.release.clone(),
    })
}

fn run_program_boot(
    tools: &Tools,
    dir: &Path,
    base_initrd: &Path,
    programs: &[GuestProgram<'_>],
    files: &[GuestFile<'_>],
    list: &str,
) -> Result<(), Unavailable> {
    let t0 = Instant::now();
    let serial = dir.join("serial.log");
    // The kernel unpacks concatenated archives in order: this /init
    // replaces init.sh, which it runs as /wk-init.sh.
    let mut extra = Cpio::default();
    for p in programs {
        extra.file(&format!("bin/{}", p.name), &read(p.path)?, 0o755);
    }
    // The unpacker creates no missing parents: each directory comes first.
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let name = f.name.trim_start_matches('/');
        let mut at = 0;
        while let Some(i) = name[at..].find('/') {
            let d = &name[..at + i];
            if dirs.insert(d.to_string()) {
                extra.dir(d);
            }
            at += i + 1;
        }
        extra.file(name, &read(f.path)?, f.mode);
    }
    extra.file("wk-run.list", list.as_bytes(), 0o644);
    extra.file("wk-init.sh", INIT_SH.as_bytes(), 0o755);
    extra.file("init", RUN_INIT_SH.as_bytes(), 0o755);
    let mut bytes = read(base_initrd)?;
    bytes.extend_from_slice(&extra.finish());
    let initrd = dir.join("initramfs-run.cpio");
    fs::write(&initrd, &bytes).map_err(|e| fail(format!("{}: {e}", initrd.display())))?;
    let _initrd_guard = RemoveOnDrop(initrd.clone());
    let append = "console=ttyS0 loglevel=4 panic=0 oops=panic";
    let cmd = qemu_command(tools, "qemu64", 256, &initrd, append, dir)?;
    let mut qemu = spawn_qemu(cmd, tools, None)?;
    let deadline = Instant::now() + RUN_BOOT_LIMIT;
    loop {
        if let Ok(Some(st)) = qemu.child.try_wait() {
            let log = fs::read_to_string(&serial).unwrap_or_default();
            if log.contains("WK-RUN-DONE") {
                break;
            }
            return Err(fail(format!(
                "QEMU exited with {st} before the guest printed WK-RUN-DONE; serial log: {}",
                tail(&log)
            )));
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(&serial).unwrap_or_default();
            return Err(fail(format!(
                "the guest did not power off within {} s (QEMU killed); serial log: {}",
                RUN_BOOT_LIMIT.as_secs(),
                tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(qemu);
    let secs = t0.elapsed().as_secs_f64();
    fs::write(dir.join("boot-secs"), format!("{secs:.1}\n")).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// The cargo target directory the tests were built in (cargo gives
/// integration tests `<target>/tmp`).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// A binary of the workspace built for x86_64-unknown-linux-gnu with static
/// glibc (for [`run_in_guest`]: the guest has no libraries), into
/// `<target>/bpf-guest` (a target directory of its own: the
/// outer `cargo test` holds the lock of this one while tests run, and other
/// RUSTFLAGS would rebuild every crate in it). `what` are cargo's
/// selection arguments, `rel` the binary's path under the profile
/// directory. Cargo's fingerprints make a second build a no-op, and an
/// unchanged binary keeps its mtime, which is what keys the cached boot.
pub fn static_build(what: &[&str], rel: &str) -> Result<PathBuf, String> {
    let dir = target_dir().join("bpf-guest");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = "x86_64-unknown-linux-gnu";
    let out = Command::new(&cargo)
        .args(["build", "--offline"])
        .args(what)
        .args(["--target", target, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &dir)
        // The encoded form wins over RUSTFLAGS and the per-target flags, so
        // a user's RUSTFLAGS cannot make the binary dynamic; with --target
        // neither reaches build scripts or proc macros.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        // The dev profile without debuginfo: a cold build of the example
        // and its dependencies takes about 60% of a release one, and the
        // binaries (6 and 31 MB) go into the guest's initramfs.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let n = err.len().saturating_sub(4000);
        let start = (n..err.len())
            .find(|&i| err.is_char_boundary(i))
            .unwrap_or(0);
        return Err(format!(
            "cargo build {} (static) failed ({}): {}",
            what.join(" "),
            out.status,
            &err[start..]
        ));
    }
    let bin = dir.join(target).join("debug").join(rel);
    let bytes = std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    // A static-pie has no PT_INTERP: no dynamic loader is named in it.
    if bytes.windows(14).any(|w| w == b"/lib64/ld-linu") {
        return Err(format!("{} is dynamically linked", bin.display()));
    }
    Ok(bin)
}

/// Puts each library under its soname (what the loader looks for) in /lib,
/// the loader itself at its PT_INTERP path.
fn add_libs(c: &mut Cpio, libs: &[PathBuf]) -> Result<(), Unavailable> {
    for l in libs {
        let data = read(l)?;
        if l == Path::new(LD_SO) {
            c.file(LD_SO.trim_start_matches('/'), &data, 0o755);
        } else {
            let name = l.file_name().and_then(|n| n.to_str()).unwrap_or("lib.so");
            c.file(&format!("lib/{name}"), &data, 0o755);
        }
    }
    Ok(())
}

/// Copies the files the capture kernel put on its disk (kdump-capture.sh's
/// header: `NAME OFFSET SIZE` lines between WK-DISK and WK-DISK-END) to
/// `dir/NAME.dump`.
fn extract_disk(disk: &Path, dir: &Path) -> Result<(), Unavailable> {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::File::open(disk).map_err(|e| fail(format!("{}: {e}", disk.display())))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut hdr = [0u8; 4096];
    f.read_exact(&mut hdr)
        .map_err(|e| fail(format!("{}: {e}", disk.display())))?;
    let text = String::from_utf8_lossy(&hdr);
    let text = text.split('\0').next().unwrap_or("");
    let body = text
        .strip_prefix("WK-DISK\n")
        .and_then(|t| t.split("WK-DISK-END").next())
        .ok_or_else(|| fail(format!("{}: no WK-DISK header", disk.display())))?;
    for line in body.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [name, off, size] = w[..] else {
            return Err(fail(format!(
                "{}: bad header line {line:?}",
                disk.display()
            )));
        };
        let (Ok(off), Ok(size)) = (off.parse::<u64>(), size.parse::<u64>()) else {
            return Err(fail(format!(
                "{}: bad header line {line:?}",
                disk.display()
            )));
        };
        if off.checked_add(size).is_none_or(|end| end > len) || size == 0 {
            return Err(fail(format!("{}: {name} out of the disk", disk.display())));
        }
        let out = dir.join(format!("{name}.dump"));
        f.seek(SeekFrom::Start(off))
            .map_err(|e| fail(e.to_string()))?;
        let mut w = fs::File::create(&out).map_err(|e| fail(format!("{}: {e}", out.display())))?;
        let n = std::io::copy(&mut (&mut f).take(size), &mut w)
            .map_err(|e| fail(format!("{}: {e}", out.display())))?;
        if n != size {
            return Err(fail(format!("{}: {name} short", disk.display())));
        }
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let n = s.len().saturating_sub(3000);
    let mut start = n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    fn connect(sock: &Path) -> Result<Qmp, Unavailable> {
        let s =
            UnixStream::connect(sock).map_err(|e| fail(format!("QMP {}: {e}", sock.display())))?;
        s.set_read_timeout(Some(Duration::from_secs(120))).ok();
        let w = s.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut q = Qmp {
            r: BufReader::new(s),
            w,
        };
        let mut greeting = String::new();
        q.r.read_line(&mut greeting)
            .map_err(|e| fail(format!("QMP greeting: {e}")))?;
        q.cmd(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(q)
    }

    /// Sends one command and waits for its `return` (events are skipped).
    fn cmd(&mut self, c: &str) -> Result<String, Unavailable> {
        self.w
            .write_all(format!("{c}\n").as_bytes())
            .map_err(|e| fail(format!("QMP write: {e}")))?;
        loop {
            let mut line = String::new();
            let n = self
                .r
                .read_line(&mut line)
                .map_err(|e| fail(format!("QMP read after {c}: {e}")))?;
            if n == 0 {
                return Err(fail(format!("QMP closed after {c}")));
            }
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                return Err(fail(format!("QMP {c}: {line}")));
            }
        }
    }
}

/// Parses the `WK-*` lines of the serial log.
pub fn parse_view(serial: &str) -> GuestView {
    let mut view = GuestView {
        serial: serial.to_string(),
        ..GuestView::default()
    };
    let Some(begin) = serial.find("WK-BEGIN") else {
        return view;
    };
    let end = serial[begin..]
        .find("WK-END")
        .map_or(serial.len(), |e| begin + e);
    for line in serial[begin..end].lines() {
        let line = line.trim_end_matches('\r');
        if let Some(stat) = line.strip_prefix("WK-STAT ") {
            // pid (comm) S ppid pgrp session tty tpgid flags ...
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let pid = stat[..open].trim().parse().unwrap_or(-1);
            let comm = stat[open + 1..close].to_string();
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let t = view.tasks.entry(pid).or_default();
            t.pid = pid;
            t.comm = comm;
            t.state = rest.first().and_then(|s| s.chars().next()).unwrap_or('?');
            t.ppid = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            t.flags = rest.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("WK-STACK ") {
            // "<tid> [<0>] func+0x1/0x2"
            let mut it = rest.splitn(2, ' ');
            let (Some(tid), Some(frame)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(tid) = tid.parse::<i32>() else {
                continue;
            };
            // "[<0>] func+0x1/0x2", with " [module]" after a module's.
            let f = frame.split_once("] ").map_or(frame, |(_, f)| f);
            let (f, module) = match f.split_once(" [") {
                Some((f, m)) => (f, Some(m.trim_end_matches(']').to_string())),
                None => (f, None),
            };
            let func = f.split('+').next().unwrap_or(f).to_string();
            let task = view.tasks.entry(tid).or_default();
            task.stack.push(func);
            task.stack_modules.push(module);
        } else if let Some(rest) = line.strip_prefix("WK-STATUS ") {
            let mut it = rest.splitn(3, ' ');
            let (Some(tid), Some(k), Some(v)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let Ok(tid) = tid.parse::<i32>() else {
                continue;
            };
            view.tasks
                .entry(tid)
                .or_default()
                .status
                .insert(k.trim_end_matches(':').to_string(), v.trim().to_string());
        }
    }
    view
}

#[allow(unused)]
fn read_all(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    fs::File::open(p)?.read_to_end(&mut v)?;
    Ok(v)
}

/// The DWARF of the fixtures' kernel: Debian's `linux-image-R-dbg`, of
/// which `scripts/vmcore-debuginfo.sh` extracts the vmlinux and the
/// modules the guest loads into `vmcore-fixtures/debuginfo/` (nothing
/// installed on the host).
#[derive(Debug, Clone)]
pub struct Debuginfo {
    /// `…/usr/lib/debug/boot/vmlinux-R`.
    pub vmlinux: PathBuf,
    /// The `.ko` (with DWARF) of the modules the guest loads, those present.
    pub modules: Vec<PathBuf>,
}

impl Debuginfo {
    /// The vmlinux and the modules, each after `--debuginfo` (wedge) or
    /// `-s` (drgn): both read the same files.
    pub fn args(&self, flag: &str) -> Vec<String> {
        std::iter::once(&self.vmlinux)
            .chain(&self.modules)
            .flat_map(|p| [flag.to_string(), p.display().to_string()])
            .collect()
    }
}

/// The modules `testdata/init.sh` loads, as the -dbg package lays them out
/// under `lib/modules/R/`.
const GUEST_MODULES: [&str; 2] = [
    "kernel/fs/fuse/fuse.ko",
    "kernel/drivers/firmware/qemu_fw_cfg.ko",
];

/// The DWARF of kernel `release`, or skip (`None`): `WEDGE_DEBUGINFO=VMLINUX`
/// when set (e.g. an installed `/usr/lib/debug/boot/vmlinux-R`), else the
/// fixture cache. Its modules are looked for beside it, in the -dbg
/// package's layout (`usr/lib/debug/{boot,lib/modules/R}`).
pub fn debuginfo_or_skip(release: &str) -> Option<Debuginfo> {
    let vmlinux = match std::env::var_os("WEDGE_DEBUGINFO") {
        Some(p) => PathBuf::from(p),
        None => cache_root()
            .join("debuginfo/usr/lib/debug/boot")
            .join(format!("vmlinux-{release}")),
    };
    if !vmlinux.is_file() {
        skip_or_fail(&format!(
            "no kernel DWARF {}: run scripts/vmcore-debuginfo.sh (extracts Debian's \
             linux-image-{release}-dbg there, installs nothing) or set WEDGE_DEBUGINFO=VMLINUX",
            vmlinux.display()
        ));
        return None;
    }
    // .../usr/lib/debug/boot/vmlinux-R → .../usr/lib/debug/lib/modules/R
    let debug = vmlinux
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let modules = GUEST_MODULES
        .iter()
        .map(|m| debug.join("lib/modules").join(release).join(m))
        .filter(|p| p.is_file())
        .collect();
    Some(Debuginfo { vmlinux, modules })
}

/// drgn (from PyPI, in a venv `scripts/vmcore-debuginfo.sh` makes under
/// the fixture cache), or skip (`None`); `WEDGE_DRGN=PATH` overrides.
pub fn drgn_or_skip() -> Option<PathBuf> {
    let drgn = match std::env::var_os("WEDGE_DRGN") {
        Some(p) => PathBuf::from(p),
        None => cache_root().join("drgn/bin/drgn"),
    };
    if !drgn.is_file() {
        skip_or_fail(&format!(
            "no drgn at {}: run scripts/vmcore-debuginfo.sh (a venv with drgn from PyPI \
             there) or set WEDGE_DRGN=PATH",
            drgn.display()
        ));
        return None;
    }
    Some(drgn)
}
