//! The bad-input sweep: the real binary on inputs that must never hang
//! wedge or eat the machine — FIFOs with no writer, character devices, a
//! socket, directories, empty files, sparse files whose headers claim
//! hundreds of megabytes, and truncations and byte flips of a real core
//! (made by gdb's `gcore` of a live process) and of a real kernel log, plain
//! and compressed (.gz, .zst, .xz, .lz4) — for `log`, `core` and `vmcore`.
//!
//! Every run has a time limit (killed and failed past it) and a memory
//! limit (the child's peak RSS from wait4's rusage). Every run must print
//! no panic; unreadable input exits 2 with an error naming the file;
//! partially readable input exits 0 or 1 (or 2 naming the file); a
//! damaged compressed file is reported, never passed silently.
//!
//! Files on a FUSE mount whose daemon never answers (the test kit's
//! `stall` and `stalldir/`) must be given up after wedge's 10 s I/O
//! deadline, for the open and for every read.
//!
//! Inputs live in a temp dir removed on drop, even on failure. Needs gdb
//! for the core (SKIPPED otherwise), the compressors' command-line tools
//! for the compressed variants, and root and /dev/fuse for the FUSE cases
//! (each SKIPPED when missing).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TIME_LIMIT: Duration = Duration::from_secs(10);
/// For inputs on a file system that never answers: wedge's own 10 s
/// deadline plus time to say so.
const STALL_LIMIT: Duration = Duration::from_secs(16);
/// Peak RSS allowed, KiB.
const RSS_LIMIT_KB: i64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Unreadable: exit 2 and stderr names the file.
    Refused,
    /// Anything but a hang, a panic or a blow-up; exit 2 must name the
    /// file.
    Survives,
    /// A damaged compressed file: exit 2 naming the file, or a report that
    /// says the input is damaged or incomplete.
    Damaged,
}

struct Case {
    cmd: &'static str,
    path: PathBuf,
    expect: Expect,
    /// Text the output must hold (an exact cause), when it must.
    says: Option<&'static str>,
    limit: Duration,
}

fn check(case: &Case) -> Result<(), String> {
    let path = case.path.display().to_string();
    // Capped output: a runaway output must not eat the test's memory.
    let o = common::try_run(
        &[case.cmd, &path],
        common::Opts::within(case.limit).keep(4 << 20),
    )?;
    let name = case.path.display().to_string();
    // The margins under the limits, with WEDGE_SWEEP_VERBOSE=1 (the
    // harness does not capture output).
    if std::env::var_os("WEDGE_SWEEP_VERBOSE").is_some() {
        println!(
            "wedge {} {name}: exit {:?}, {:?}, peak RSS {} KiB",
            case.cmd, o.code, o.took, o.maxrss_kb
        );
    }
    let all = format!("{}\n{}", o.stdout, o.stderr);
    if o.stderr.contains("panicked") || o.stderr.contains("RUST_BACKTRACE") {
        return Err(format!("panicked: {}", o.stderr));
    }
    if let Some(sig) = o.signal {
        return Err(format!("killed by signal {sig}; stderr: {}", o.stderr));
    }
    if o.maxrss_kb > RSS_LIMIT_KB {
        return Err(format!(
            "peak RSS {} MiB, more than {} MiB",
            o.maxrss_kb / 1024,
            RSS_LIMIT_KB / 1024
        ));
    }
    let code = o.code.unwrap_or(-1);
    if code == 2 && !o.stderr.contains(&name) {
        return Err(format!("exit 2 without naming the file: {}", o.stderr));
    }
    match case.expect {
        Expect::Refused if code != 2 => {
            return Err(format!("exit {code}, not 2; stderr: {}", o.stderr));
        }
        Expect::Survives if !(0..=2).contains(&code) => {
            return Err(format!("exit {code}; stderr: {}", o.stderr));
        }
        Expect::Damaged => {
            let l = all.to_lowercase();
            let said = [
                "damaged",
                "broke off",
                "checksum",
                "truncated",
                "ends early",
            ]
            .iter()
            .any(|w| l.contains(w));
            if !(0..=2).contains(&code) || (code != 2 && !said) {
                return Err(format!(
                    "exit {code} and no word of damage:\n{}",
                    tail(&all)
                ));
            }
        }
        _ => {}
    }
    if let Some(s) = case.says {
        if !all.contains(s) {
            return Err(format!("output lacks {s:?}:\n{}", tail(&all)));
        }
    }
    if o.took > case.limit {
        return Err(format!("took {:?}", o.took));
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs the cases on two workers (the machine has two CPUs) and fails with
/// every failure listed.
fn sweep(cases: Vec<Case>) {
    sweep_on(cases, 2)
}

fn sweep_on(cases: Vec<Case>, workers: usize) {
    let n = cases.len();
    let queue = std::sync::Mutex::new(cases.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                // The queue's lock is taken and released inside `next`,
                // never held while a case runs.
                let next = || queue.lock().ok().and_then(|mut q| q.next());
                while let Some(c) = next() {
                    if let Err(e) = check(&c) {
                        let line = format!("wedge {} {}: {e}", c.cmd, c.path.display());
                        if let Ok(mut f) = failures.lock() {
                            f.push(line);
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} of {n} bad inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{n} bad inputs: no hang, no panic, no blow-up");
}

fn case(cmd: &'static str, path: &Path, expect: Expect) -> Case {
    Case {
        cmd,
        path: path.to_path_buf(),
        expect,
        says: None,
        limit: TIME_LIMIT,
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wedge-bad-input-")
        .tempdir()
        .expect("temp dir")
}

fn special_files_are_refused_at_once() {
    let dir = tempdir();
    let d = dir.path();
    let fifo = d.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sock = d.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let empty = d.join("empty");
    std::fs::write(&empty, b"").expect("write");
    let mut cases = Vec::new();
    for cmd in ["log", "core", "vmcore"] {
        for p in [
            fifo.as_path(),
            Path::new("/dev/zero"),
            Path::new("/dev/urandom"),
            sock.as_path(),
        ] {
            let mut c = case(cmd, p, Expect::Refused);
            c.says = Some("not a regular file");
            cases.push(c);
        }
        let mut c = case(cmd, d, Expect::Refused);
        c.says = Some("is a directory");
        cases.push(c);
        cases.push(case(cmd, &d.join("missing"), Expect::Refused));
        let expect = if cmd == "log" {
            Expect::Survives
        } else {
            Expect::Refused
        };
        cases.push(case(cmd, &empty, expect));
    }
    sweep(cases);
}

/// An x86-64 ET_CORE header with `phnum` program headers at 64.
fn elf_header(phnum: u16, shoff: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16] = 4;
    h[18] = 62;
    h[20] = 1;
    h[32..40].copy_from_slice(&64u64.to_le_bytes());
    h[40..48].copy_from_slice(&shoff.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes());
    h[54..56].copy_from_slice(&56u16.to_le_bytes());
    h[56..58].copy_from_slice(&phnum.to_le_bytes());
    h
}

fn phdr(p_type: u32, offset: u64, filesz: u64) -> Vec<u8> {
    let mut p = vec![0u8; 56];
    p[..4].copy_from_slice(&p_type.to_le_bytes());
    p[4..8].copy_from_slice(&4u32.to_le_bytes());
    p[8..16].copy_from_slice(&offset.to_le_bytes());
    p[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
    p[32..40].copy_from_slice(&filesz.to_le_bytes());
    p[40..48].copy_from_slice(&filesz.to_le_bytes());
    p
}

/// Writes `head` and makes the file `len` bytes long, sparse (nothing
/// past `head` is on disk).
fn sparse(path: &Path, head: &[u8], len: u64) {
    std::fs::write(path, head).expect("write");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    f.set_len(len).expect("set_len");
}

fn huge_claimed_sizes_cost_a_bounded_amount() {
    let dir = tempdir();
    let d = dir.path();
    let mut files = Vec::new();
    // A PT_NOTE claiming 512 MiB of a sparse file (4 KB on disk).
    let mut f = elf_header(1, 0);
    f.extend(phdr(4, 4096, 512 << 20));
    let p = d.join("note-512m");
    sparse(&p, &f, 4096 + (512 << 20));
    files.push(p);
    // e_phnum = PN_XNUM, section 0's sh_info = u32::MAX, over 1 GiB of
    // zeros.
    let mut f = elf_header(0xffff, 64 + 56);
    f.extend(phdr(4, 4096, 64));
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
    f.extend(sh);
    let p = d.join("xnum-huge");
    sparse(&p, &f, 1 << 30);
    files.push(p);
    // PN_XNUM with e_shoff far past the end.
    let p = d.join("xnum-shoff");
    std::fs::write(&p, elf_header(0xffff, u64::MAX - 8)).expect("write");
    files.push(p);
    // 65535 program headers at a huge offset, and PT_LOADs whose sizes
    // claim the whole address space.
    let mut f = elf_header(0xfffe, 0);
    f[32..40].copy_from_slice(&(u64::MAX - 100).to_le_bytes());
    let p = d.join("phoff-huge");
    std::fs::write(&p, &f).expect("write");
    files.push(p);
    let mut f = elf_header(3, 0);
    f.extend(phdr(4, 4096, 1 << 40));
    f.extend(phdr(1, u64::MAX - 4096, u64::MAX));
    f.extend(phdr(1, 0, 1 << 62));
    let p = d.join("load-huge");
    sparse(&p, &f, 64 << 20);
    files.push(p);
    let mut cases = Vec::new();
    for p in &files {
        for cmd in ["core", "vmcore", "log"] {
            cases.push(case(cmd, p, Expect::Survives));
        }
    }
    sweep(cases);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Compresses `src` with each available tool into `dir`; skips (or fails
/// under WEDGE_REQUIRE_ALL) for missing tools. Each file comes with the
/// tool that made it.
fn compressed(src: &Path, dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    for (tool, ext, args) in [
        ("gzip", "gz", &["-c"][..]),
        ("zstd", "zst", &["-q", "-c"][..]),
        ("xz", "xz", &["-c"][..]),
        ("lz4", "lz4", &["-q", "-c"][..]),
    ] {
        if !have(tool) {
            wedge_testkit::skip_or_fail(&format!("{tool} is not installed: no .{ext} inputs"));
            continue;
        }
        let name = format!(
            "{}.{ext}",
            src.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        );
        let dst = dir.join(name);
        let o = Command::new(tool)
            .args(args)
            .arg(src)
            .output()
            .expect("run compressor");
        assert!(o.status.success(), "{tool} failed");
        std::fs::write(&dst, o.stdout).expect("write");
        out.push((dst, tool));
    }
    out
}

/// What wedge must say of a damaged variant `p` of the compressed `src`:
/// that it is damaged, unless the damage changed nothing. A flipped byte
/// can be meaningless to the format: an lz4 match offset moved from one
/// run of zeros to another (a core is mostly zeros) decodes to the very
/// same bytes, and the content checksum rightly passes. The tool itself
/// is the judge: if it decodes `p` cleanly to the original, the variant
/// is intact.
fn damage_of(tool: &str, p: &Path, original: &[u8]) -> Expect {
    let o = Command::new(tool)
        .args(["-d", "-c"])
        .arg(p)
        .stderr(Stdio::null())
        .output()
        .expect("run decompressor");
    if o.status.success() && o.stdout == original {
        Expect::Survives
    } else {
        Expect::Damaged
    }
}

/// Variants of `src`: cut at a few points, and with a byte flipped at a few
/// offsets (spread over the file, the first few KB denser: headers and
/// notes live there).
fn damaged(src: &Path, dir: &Path, cuts: usize, flips: usize) -> Vec<PathBuf> {
    let data = std::fs::read(src).expect("read");
    let stem = src.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let mut out = Vec::new();
    let len = data.len();
    for i in 1..=cuts {
        let at = len * i / (cuts + 1);
        let p = dir.join(format!("{stem}.cut{at}"));
        std::fs::write(&p, &data[..at]).expect("write");
        out.push(p);
    }
    for i in 0..flips {
        let at = if i % 2 == 0 {
            (64 + i * 997) % len.max(1)
        } else {
            len / 2 + i * 7919 % (len / 2).max(1)
        }
        .min(len.saturating_sub(1));
        let mut v = data.clone();
        v[at] ^= 0x5a;
        let p = dir.join(format!("{stem}.flip{at}"));
        std::fs::write(&p, &v).expect("write");
        out.push(p);
    }
    out
}

/// A real core: gdb's gcore of a sleeping child.
fn real_core(dir: &Path) -> Option<PathBuf> {
    if !have("gdb") {
        wedge_testkit::skip_or_fail("gdb is not installed: no real core to damage");
        return None;
    }
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let core = dir.join("core");
    let o = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &sleeper.id().to_string(), "-ex"])
        .arg(format!("gcore {}", core.display()))
        .output();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    match o {
        Ok(_) if core.exists() => Some(core),
        Ok(o) => {
            wedge_testkit::skip_or_fail(&format!(
                "gcore made no core (ptrace restricted?): {}",
                String::from_utf8_lossy(&o.stderr)
            ));
            None
        }
        Err(e) => panic!("gdb: {e}"),
    }
}

fn damaged_real_cores_are_survived_and_reported() {
    let dir = tempdir();
    let d = dir.path();
    let Some(core) = real_core(d) else {
        return;
    };
    let mut cases = vec![case("core", &core, Expect::Survives)];
    for p in damaged(&core, d, 4, 6) {
        cases.push(case("core", &p, Expect::Survives));
    }
    for p in &damaged(&core, d, 1, 0) {
        cases.push(case("vmcore", p, Expect::Survives));
    }
    let original = std::fs::read(&core).expect("read core");
    for (z, tool) in compressed(&core, d) {
        cases.push(case("core", &z, Expect::Survives));
        for p in damaged(&z, d, 2, 4) {
            let expect = damage_of(tool, &p, &original);
            cases.push(case("core", &p, expect));
        }
    }
    sweep(cases);
}

fn damaged_compressed_logs_are_survived_and_reported() {
    let dir = tempdir();
    let d = dir.path();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/kernel-logs");
    let src = corpus.join("hung_task-001.log");
    assert!(src.exists(), "missing fixture {}", src.display());
    // Enough text that the compressed streams have several blocks.
    let text = std::fs::read(&src).expect("read fixture").repeat(40);
    let log = d.join("kern.log");
    std::fs::write(&log, text).expect("write");
    let mut cases = vec![case("log", &log, Expect::Survives)];
    for p in damaged(&log, d, 2, 2) {
        cases.push(case("log", &p, Expect::Survives));
    }
    let original = std::fs::read(&log).expect("read log");
    for (z, tool) in compressed(&log, d) {
        cases.push(case("log", &z, Expect::Survives));
        cases.push(case("core", &z, Expect::Survives));
        cases.push(case("vmcore", &z, Expect::Survives));
        for p in damaged(&z, d, 2, 4) {
            let expect = damage_of(tool, &p, &original);
            cases.push(case("log", &p, expect));
        }
    }
    sweep(cases);
}

fn files_on_a_file_system_that_never_answers() {
    let fs = match wedge_testkit::FuseDaemon::start() {
        Ok(fs) => fs,
        Err(wedge_testkit::Error::Skip(why)) => {
            wedge_testkit::skip_or_fail(&why);
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut cases = Vec::new();
    // `stall`: opens, but every READ is parked. `stalldir/x`: the LOOKUP
    // of the open itself is parked.
    for p in [fs.path("stall"), fs.path("stalldir").join("core")] {
        for cmd in ["log", "core", "vmcore"] {
            let mut c = case(cmd, &p, Expect::Refused);
            c.says = Some("does not answer");
            c.limit = STALL_LIMIT;
            cases.push(c);
        }
    }
    // They only wait: all at once.
    let n = cases.len();
    sweep_on(cases, n);
    // The daemon is aborted on drop, which frees wedge's stuck threads'
    // requests (wedge itself has exited already).
    drop(fs);
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = libtest_mimic::Arguments::from_args();
    let t = |name: &'static str, f: fn()| {
        libtest_mimic::Trial::test(name, move || {
            f();
            Ok(())
        })
    };
    let trials = vec![
        t(
            "special_files_are_refused_at_once",
            special_files_are_refused_at_once,
        ),
        t(
            "huge_claimed_sizes_cost_a_bounded_amount",
            huge_claimed_sizes_cost_a_bounded_amount,
        ),
        t(
            "damaged_real_cores_are_survived_and_reported",
            damaged_real_cores_are_survived_and_reported,
        ),
        t(
            "damaged_compressed_logs_are_survived_and_reported",
            damaged_compressed_logs_are_survived_and_reported,
        ),
        t(
            "files_on_a_file_system_that_never_answers",
            files_on_a_file_system_that_never_answers,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
