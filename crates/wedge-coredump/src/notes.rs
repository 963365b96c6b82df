//! The notes of a core: what the kernel wrote about the dead process.
//!
//! fs/binfmt_elf.c `fill_note_info` writes, for the thread that dumped
//! first and then for every other thread, an `NT_PRSTATUS` (signal, ids,
//! general registers) followed by its FPU/vector notes; once per process it
//! writes `NT_PRPSINFO` (command), `NT_SIGINFO` (the fatal signal as the
//! process received it), `NT_AUXV` and `NT_FILE` (the file-backed mappings).
//! Every note is `namesz, descsz, type` (u32 each), the name and then the
//! descriptor, each padded to 4 bytes.
//!
//! Every length below comes from the file, so every read is checked: a
//! malformed note is skipped with a problem recorded, never a panic.

use crate::elf::Arch;
use serde::Serialize;
use wedge_bytes::Le;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;

/// Offset of `pr_reg` in `struct elf_prstatus` on both 64-bit arches:
/// `elf_siginfo` (12) + `pr_cursig` (2, padded to 4) + two sigset words (16)
/// + four pids (16) + four `timeval`s (64).
const PR_REG: usize = 112;
/// `user_regs_struct` on x86-64: 27 longs.
const X86_64_NREGS: usize = 27;
/// `user_pt_regs` on aarch64: x0..x30, sp, pc, pstate.
const AARCH64_NREGS: usize = 34;

/// Register names of x86-64's `user_regs_struct`, in order.
pub const X86_64_REG_NAMES: [&str; X86_64_NREGS] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// The general registers of one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registers {
    pub pc: u64,
    pub sp: u64,
    /// rbp on x86-64, x29 on aarch64.
    pub fp: u64,
    /// x30 on aarch64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<u64>,
    /// Every register by name, in the kernel's order.
    pub all: Vec<(String, u64)>,
}

impl Registers {
    fn parse(arch: Arch, d: &[u8]) -> Option<Registers> {
        match arch {
            Arch::X86_64 => {
                let regs: Vec<u64> = (0..X86_64_NREGS)
                    .map(|i| d.u64_at(PR_REG + 8 * i))
                    .collect::<Option<_>>()?;
                Some(Registers {
                    pc: regs[16],
                    sp: regs[19],
                    fp: regs[4],
                    lr: None,
                    all: X86_64_REG_NAMES
                        .iter()
                        .zip(&regs)
                        .map(|(n, v)| ((*n).to_string(), *v))
                        .collect(),
                })
            }
            Arch::Aarch64 => {
                let regs: Vec<u64> = (0..AARCH64_NREGS)
                    .map(|i| d.u64_at(PR_REG + 8 * i))
                    .collect::<Option<_>>()?;
                let all = regs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let n = match i {
                            0..=30 => format!("x{i}"),
                            31 => "sp".into(),
                            32 => "pc".into(),
                            _ => "pstate".into(),
                        };
                        (n, *v)
                    })
                    .collect();
                Some(Registers {
                    pc: regs[32],
                    sp: regs[31],
                    fp: regs[29],
                    lr: Some(regs[30]),
                    all,
                })
            }
        }
    }
}

/// `NT_PRSTATUS`: one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrStatus {
    pub tid: i32,
    /// The signal this thread was handling when it died (`pr_cursig`): the
    /// fatal one for the thread that dumped, 0 for the others.
    pub cursig: i32,
    pub sigpend: u64,
    pub sighold: u64,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    /// User and system CPU time, microseconds.
    pub utime_us: u64,
    pub stime_us: u64,
    pub regs: Option<Registers>,
}

/// `NT_PRPSINFO`: the process as `ps` would have shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrPsInfo {
    /// `pr_sname`: R, S, D, T, Z...
    pub state: char,
    pub nice: i8,
    pub flags: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    /// `comm`, at most 15 bytes.
    pub fname: String,
    /// The first 80 bytes of the command line, NULs turned to spaces.
    pub psargs: String,
}

/// `NT_SIGINFO`: the fatal signal's `siginfo_t` in its user layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// The `si_addr` of fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
    /// SIGTRAP) raised by the kernel.
    pub addr: Option<u64>,
    /// `si_pid`/`si_uid` of signals sent by a process (kill, tgkill,
    /// sigqueue).
    pub sender_pid: Option<i32>,
    pub sender_uid: Option<u32>,
    /// SIGSYS from seccomp: the system call number and audit arch.
    pub syscall: Option<i32>,
}

/// One `NT_FILE` entry: a file-backed mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    /// Offset into the file, bytes.
    pub offset: u64,
    pub path: String,
}

/// Everything the notes said.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notes {
    pub threads: Vec<PrStatus>,
    pub psinfo: Option<PrPsInfo>,
    pub siginfo: Option<SigInfo>,
    pub files: Vec<FileMapping>,
    pub auxv: Vec<(u64, u64)>,
    /// Notes that were present but could not be read, and why.
    pub problems: Vec<String>,
}

/// One raw note, its name without the terminating NUL.
#[derive(Debug, Clone, Copy)]
pub struct RawNote<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

// The limits are the note walker's (wedge-bytes, shared with the crash-dump
// reader); re-exported for existing callers.
pub use wedge_bytes::note::{MAX_NOTES, MAX_NOTE_DESC};
/// At most this many threads are read from one core (`NT_PRSTATUS` notes).
pub const MAX_THREADS: usize = 1 << 16;

/// Splits a `PT_NOTE` segment into notes, lazily (a crafted segment may
/// claim hundreds of megabytes: nothing is held per note). Stops at the
/// first note whose sizes run past the end, at an all-zero note header (the
/// kernel never writes note type 0: a zeroed or sparse region, where
/// walking on would only read zeros 12 bytes at a time), at a descriptor
/// larger than [`MAX_NOTE_DESC`] and after [`MAX_NOTES`] notes, reporting
/// each in `problems`.
pub fn iter_notes<'a, 'p>(d: &'a [u8], problems: &'p mut Vec<String>) -> NoteIter<'a, 'p> {
    NoteIter {
        walk: wedge_bytes::note::notes(d),
        problems,
    }
}

/// The iterator of [`iter_notes`].
pub struct NoteIter<'a, 'p> {
    walk: wedge_bytes::note::Notes<'a>,
    problems: &'p mut Vec<String>,
}

impl<'a> Iterator for NoteIter<'a, '_> {
    type Item = RawNote<'a>;

    fn next(&mut self) -> Option<RawNote<'a>> {
        use wedge_bytes::note::NoteStop;
        let stop = match self.walk.next()? {
            Ok(n) => {
                // The name is NUL-terminated ("CORE\0"); compare without the NUL.
                let name = n.name.strip_suffix(&[0]).unwrap_or(n.name);
                return Some(RawNote {
                    name,
                    kind: n.kind,
                    desc: n.desc,
                });
            }
            Err(e) => e.stop,
        };
        self.problems.push(match stop {
            NoteStop::Zeros { left } => format!(
                "the notes end in {left} bytes of zeros (a zeroed or sparse region); the rest of the segment is skipped"
            ),
            NoteStop::TooLarge {
                kind,
                namesz,
                descsz,
            } => format!(
                "note type {kind:#x} claims a {descsz}-byte descriptor and a {namesz}-byte name, more than any note the kernel writes (at most {MAX_NOTE_DESC} bytes): damaged or crafted; the rest of the segment is skipped"
            ),
            NoteStop::TooMany => format!(
                "more than {MAX_NOTES} notes in one segment: damaged or crafted; the rest is skipped"
            ),
            NoteStop::Overflow { .. } => "a note's sizes overflow".into(),
            NoteStop::PastEnd {
                kind, left, needed, ..
            } => format!(
                "note type {kind:#x} runs past the end of its segment ({left} bytes left, {needed} needed): truncated core?"
            ),
        });
        None
    }
}

/// Parses the notes of one `PT_NOTE` segment into `notes`.
pub fn parse_segment(arch: Arch, seg: &[u8], notes: &mut Notes) {
    let mut problems = Vec::new();
    let mut split = Vec::new();
    let mut skipped_threads = 0usize;
    for n in iter_notes(seg, &mut split) {
        // Process notes are owned by "CORE"; "LINUX" owns register sets
        // wedge does not read (xstate, arm64 pac/tls...).
        if n.name != b"CORE" {
            continue;
        }
        match n.kind {
            // Each thread costs about 1.5 KB parsed (its named registers)
            // for 336 bytes of note: the cap keeps a crafted core's cost a
            // bounded multiple of its size.
            NT_PRSTATUS if notes.threads.len() >= MAX_THREADS => skipped_threads += 1,
            NT_PRSTATUS => match parse_prstatus(arch, n.desc) {
                Some(p) => notes.threads.push(p),
                None => problems.push(format!(
                    "NT_PRSTATUS of {} bytes is too short to hold a thread",
                    n.desc.len()
                )),
            },
            NT_PRPSINFO => match parse_prpsinfo(n.desc) {
                Some(p) => notes.psinfo = Some(p),
                None => problems.push("NT_PRPSINFO is too short".into()),
            },
            NT_SIGINFO => match parse_siginfo(n.desc) {
                Some(s) => notes.siginfo = Some(s),
                None => problems.push("NT_SIGINFO is too short".into()),
            },
            NT_AUXV => notes.auxv = parse_auxv(n.desc),
            NT_FILE => match parse_file(n.desc) {
                Ok(f) => notes.files = f,
                Err(e) => problems.push(format!("NT_FILE: {e}")),
            },
            _ => {}
        }
    }
    if skipped_threads > 0 {
        problems.push(format!(
            "{skipped_threads} more threads than the {MAX_THREADS} wedge reads: their notes are skipped"
        ));
    }
    notes.problems.extend(split);
    notes.problems.extend(problems);
}

/// Parses a sequence of `PT_NOTE` segments (the fuzz target's entry).
pub fn parse_notes<'a>(arch: Arch, segments: impl IntoIterator<Item = &'a [u8]>) -> Notes {
    let mut notes = Notes::default();
    for s in segments {
        parse_segment(arch, s, &mut notes);
    }
    notes
}

pub fn parse_prstatus(arch: Arch, d: &[u8]) -> Option<PrStatus> {
    // Without the ids there is no thread to speak of; without the registers
    // (a short note from some other dumper) the thread is still listed.
    let tv = |o: usize| -> u64 {
        let s = d.u64_at(o).unwrap_or(0);
        let us = d.u64_at(o + 8).unwrap_or(0);
        s.saturating_mul(1_000_000).saturating_add(us)
    };
    Some(PrStatus {
        cursig: d
            .get(12..14)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as i32)?,
        sigpend: d.u64_at(16)?,
        sighold: d.u64_at(24)?,
        tid: d.i32_at(32)?,
        ppid: d.i32_at(36)?,
        pgrp: d.i32_at(40)?,
        sid: d.i32_at(44)?,
        utime_us: tv(48),
        stime_us: tv(64),
        regs: Registers::parse(arch, d),
    })
}

pub fn parse_prpsinfo(d: &[u8]) -> Option<PrPsInfo> {
    // struct elf_prpsinfo on 64-bit: 4 chars, pad, pr_flag at 8, u32 uid
    // and gid (both x86-64 and arm64 use 32-bit __kernel_uid_t), four pids,
    // pr_fname[16] at 40, pr_psargs[80] at 56.
    let psargs = d.get(56..136)?;
    let end = psargs.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let psargs: Vec<u8> = psargs[..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    Some(PrPsInfo {
        state: *d.get(1)? as char,
        nice: *d.get(3)? as i8,
        flags: d.u64_at(8)?,
        uid: d.u32_at(16)?,
        gid: d.u32_at(20)?,
        pid: d.i32_at(24)?,
        ppid: d.i32_at(28)?,
        pgrp: d.i32_at(32)?,
        sid: d.i32_at(36)?,
        fname: wedge_bytes::le::cstr(d.get(40..56)?),
        psargs: String::from_utf8_lossy(&psargs).trim_end().to_string(),
    })
}

pub fn parse_siginfo(d: &[u8]) -> Option<SigInfo> {
    use crate::signal::*;
    let signo = d.i32_at(0)?;
    let errno = d.i32_at(4)?;
    let code = d.i32_at(8)?;
    // The union starts at 16 on 64-bit (after three ints and padding). Which
    // member is valid follows from si_code (kernel/signal.c has_si_pid_and_uid
    // and siginfo_layout): positive codes of fault signals carry si_addr,
    // SI_USER/SI_TKILL/SI_QUEUE carry the sender, SIGSYS its call.
    let from_user = code <= 0 || code == SI_USER;
    let fault = matches!(signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP);
    let mut s = SigInfo {
        signo,
        errno,
        code,
        addr: None,
        sender_pid: None,
        sender_uid: None,
        syscall: None,
    };
    if from_user && code != SI_KERNEL {
        s.sender_pid = d.i32_at(16);
        s.sender_uid = d.u32_at(20);
    } else if signo == SIGSYS && code == SYS_SECCOMP {
        s.addr = d.u64_at(16);
        s.syscall = d.i32_at(24);
    } else if fault || code == SI_KERNEL {
        // SI_KERNEL faults (a #GP, e.g. `hlt` in user mode) carry si_addr 0.
        s.addr = d.u64_at(16);
    } else if signo == SIGCHLD {
        s.sender_pid = d.i32_at(16);
        s.sender_uid = d.u32_at(20);
    }
    Some(s)
}

pub fn parse_auxv(d: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for pair in d.chunks_exact(16) {
        let (Some(k), Some(v)) = (pair.u64_at(0), pair.u64_at(8)) else {
            break;
        };
        if k == 0 {
            break;
        }
        out.push((k, v));
    }
    out
}

/// `NT_FILE`: `count`, `page_size`, `count` × (start, end, page offset),
/// then `count` NUL-terminated paths (fs/coredump.c... binfmt_elf.c
/// `fill_files_note`).
pub fn parse_file(d: &[u8]) -> Result<Vec<FileMapping>, String> {
    let count = d.u64_at(0).ok_or("too short for its count")?;
    let page = d.u64_at(8).ok_or("too short for its page size")?;
    // Each entry needs 24 bytes plus at least a NUL: a count larger than the
    // note could hold is a lie, not an allocation to make.
    if count > (d.len() as u64) / 25 {
        return Err(format!("claims {count} mappings in {} bytes", d.len()));
    }
    let count = count as usize;
    let names_at = 16 + 24 * count;
    let mut names = d
        .get(names_at..)
        .ok_or("truncated before its paths")?
        .split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = 16 + 24 * i;
        let start = d.u64_at(e).ok_or("truncated entry")?;
        let end = d.u64_at(e + 8).ok_or("truncated entry")?;
        let pgoff = d.u64_at(e + 16).ok_or("truncated entry")?;
        let Some(name) = names.next() else {
            return Err(format!("{count} mappings but only {i} paths"));
        };
        out.push(FileMapping {
            start,
            end,
            offset: pgoff.saturating_mul(page),
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(out)
}

/// Names of the auxv entries worth showing.
pub fn auxv_name(k: u64) -> Option<&'static str> {
    Some(match k {
        3 => "AT_PHDR",
        4 => "AT_PHENT",
        5 => "AT_PHNUM",
        6 => "AT_PAGESZ",
        7 => "AT_BASE",
        8 => "AT_FLAGS",
        9 => "AT_ENTRY",
        11 => "AT_UID",
        12 => "AT_EUID",
        13 => "AT_GID",
        14 => "AT_EGID",
        15 => "AT_PLATFORM",
        16 => "AT_HWCAP",
        17 => "AT_CLKTCK",
        23 => "AT_SECURE",
        24 => "AT_BASE_PLATFORM",
        25 => "AT_RANDOM",
        26 => "AT_HWCAP2",
        27 => "AT_RSEQ_FEATURE_SIZE",
        28 => "AT_RSEQ_ALIGN",
        31 => "AT_EXECFN",
        33 => "AT_SYSINFO_EHDR",
        51 => "AT_MINSIGSTKSZ",
        _ => return None,
    })
}

pub const AT_ENTRY: u64 = 9;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_EXECFN: u64 = 31;

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn parses_a_thread_and_the_files() {
        let mut pr = vec![0u8; 336];
        pr[12] = 11; // SIGSEGV
        pr[32..36].copy_from_slice(&1234i32.to_le_bytes());
        pr[PR_REG + 16 * 8..PR_REG + 17 * 8].copy_from_slice(&0x401000u64.to_le_bytes());
        pr[PR_REG + 19 * 8..PR_REG + 20 * 8].copy_from_slice(&0x7ffd0000u64.to_le_bytes());
        let mut file = Vec::new();
        for v in [1u64, 4096, 0x400000, 0x401000, 2] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(b"/bin/true\0");
        let mut seg = note(b"CORE", NT_PRSTATUS, &pr);
        seg.extend(note(b"CORE", NT_FILE, &file));
        seg.extend(note(b"LINUX", 0x202, &[1, 2, 3]));
        let n = parse_notes(Arch::X86_64, [seg.as_slice()]);
        assert!(n.problems.is_empty(), "{:?}", n.problems);
        assert_eq!(n.threads.len(), 1);
        assert_eq!(n.threads[0].tid, 1234);
        assert_eq!(n.threads[0].cursig, 11);
        let r = n.threads[0].regs.as_ref().unwrap();
        assert_eq!((r.pc, r.sp), (0x401000, 0x7ffd0000));
        assert_eq!(n.files.len(), 1);
        assert_eq!(n.files[0].offset, 2 * 4096);
        assert_eq!(n.files[0].path, "/bin/true");
        // Every prefix parses without a panic and reports what it lost.
        for cut in 0..seg.len() {
            let _ = parse_notes(Arch::Aarch64, [&seg[..cut]]);
        }
    }

    #[test]
    fn aarch64_registers() {
        // struct elf_prstatus on arm64: pr_reg = x0..x30, sp, pc, pstate.
        let mut pr = vec![0u8; 392];
        pr[32..36].copy_from_slice(&77i32.to_le_bytes());
        let put = |pr: &mut Vec<u8>, i: usize, v: u64| {
            pr[PR_REG + 8 * i..PR_REG + 8 * i + 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut pr, 29, 0xf0);
        put(&mut pr, 30, 0x1234);
        put(&mut pr, 31, 0xffff_0000);
        put(&mut pr, 32, 0x4000_0000);
        let t = parse_prstatus(Arch::Aarch64, &pr).unwrap();
        let r = t.regs.unwrap();
        assert_eq!(
            (t.tid, r.pc, r.sp, r.fp, r.lr),
            (77, 0x4000_0000, 0xffff_0000, 0xf0, Some(0x1234))
        );
        assert_eq!(r.all[32].0, "pc");
        // Too short for the registers: the thread is kept, without them.
        assert!(parse_prstatus(Arch::Aarch64, &pr[..200])
            .unwrap()
            .regs
            .is_none());
    }

    #[test]
    fn zeroed_and_oversized_notes_stop_the_walk() {
        // A crafted core's PT_NOTE claiming 512 MiB of a sparse file reads
        // as zeros: the walk must stop at once, holding nothing per note
        // (it used to keep 44 million empty notes, 2.3 GB).
        let zeros = vec![0u8; 512 << 20];
        let mut problems = Vec::new();
        let mut seg = note(b"CORE", NT_PRPSINFO, &[0u8; 136]);
        seg.extend_from_slice(&zeros[..4096]);
        assert_eq!(iter_notes(&seg, &mut problems).count(), 1);
        assert!(problems[0].contains("zeros"), "{problems:?}");
        let t = std::time::Instant::now();
        let n = parse_notes(Arch::X86_64, [zeros.as_slice()]);
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            n.threads.is_empty() && n.problems.len() == 1,
            "{:?}",
            n.problems
        );
        // A descriptor larger than any the kernel writes is refused, not
        // looked up.
        let mut big = Vec::new();
        for v in [5u32, (MAX_NOTE_DESC + 1) as u32, NT_FILE] {
            big.extend_from_slice(&v.to_le_bytes());
        }
        big.extend_from_slice(b"CORE\0\0\0\0");
        let mut problems = Vec::new();
        assert_eq!(iter_notes(&big, &mut problems).count(), 0);
        assert!(problems[0].contains("more than any note"), "{problems:?}");
    }

    #[test]
    fn thread_count_is_capped() {
        let pr = vec![1u8; 336];
        let one = note(b"CORE", NT_PRSTATUS, &pr);
        let seg: Vec<u8> = one.repeat(MAX_THREADS + 3);
        let n = parse_notes(Arch::X86_64, [seg.as_slice()]);
        assert_eq!(n.threads.len(), MAX_THREADS);
        assert!(
            n.problems.iter().any(|p| p.starts_with("3 more threads")),
            "{:?}",
            n.problems
        );
    }

    #[test]
    fn nt_file_lies_are_refused() {
        let mut file = Vec::new();
        for v in [u64::MAX, 4096] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        assert!(parse_file(&file).is_err());
    }
}
