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

/// Which boot a dump comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Boot {
    Kaslr,
    NoKaslr,
    Crash,
}

impl Boot {
    pub fn name(self) -> &'static str {
        match self {
            Boot::Kaslr => "kaslr",
            Boot::NoKaslr => "nokaslr",
            Boot::Crash => "crash",
        }
    }
    fn formats(self) -> &'static [&'static str] {
        match self {
            Boot::Kaslr => &["elf", "kdump-zlib", "kdump-lzo", "kdump-snappy"],
            Boot::NoKaslr => &["elf"],
            Boot::Crash => &["elf", "kdump-zlib"],
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
        Ok(f) => Ok(f.boots.get(&boot)),
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
    })
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

fn build_all() -> Result<Fixtures, Unavailable> {
    let t0 = Instant::now();
    let tools = find_tools()?;
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

    let mut boots = BTreeMap::new();
    for boot in [Boot::Kaslr, Boot::NoKaslr, Boot::Crash] {
        let bdir = dir.join(boot.name());
        if !bdir.join("done").is_file() {
            let _ = fs::remove_dir_all(&bdir);
            fs::create_dir_all(&bdir).map_err(|e| fail(format!("mkdir: {e}")))?;
            let initrd = initramfs(&tools, &dir)?;
            run_boot(&tools, boot, &bdir, &initrd)?;
            fs::write(bdir.join("done"), b"").map_err(|e| fail(e.to_string()))?;
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
    })
}

fn fail(s: String) -> Unavailable {
    Unavailable::Failed(s)
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
    let st = Command::new(&tools.cc)
        .args(["-static", "-O2", "-o"])
        .arg(&wk)
        .arg(&src)
        .status()
        .map_err(|e| Unavailable::Missing(format!("C compiler {}: {e}", tools.cc)))?;
    if !st.success() {
        return Err(Unavailable::Missing(format!(
            "{} -static failed: is static glibc (libc6-dev) installed?",
            tools.cc
        )));
    }
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
        while self.buf.len() % 4 != 0 {
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
        Boot::Kaslr => {}
    }
    let cpu = if boot == Boot::NoKaslr {
        "max"
    } else {
        "qemu64"
    };
    let child = Command::new(&tools.qemu)
        .args([
            "-machine",
            "pc,accel=tcg",
            "-cpu",
            cpu,
            "-smp",
            "2",
            "-m",
            "256",
        ])
        .args(["-display", "none", "-no-reboot", "-device", "vmcoreinfo"])
        .arg("-kernel")
        .arg(&tools.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .args(["-monitor", "none", "-nodefaults"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            fs::File::create(dir.join("qemu.stderr")).map_err(|e| fail(e.to_string()))?,
        ))
        .spawn()
        .map_err(|e| fail(format!("spawning {}: {e}", tools.qemu.display())))?;
    let mut qemu = Qemu { child };
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
