//! Reading a core file into a [`CoreReport`].

use crate::binaries::{self, build_id_hex, BinaryState, Lookup};
use crate::elf::{self, Arch, HeaderError, Memory};
use crate::error::CoreError;
use crate::notes::{self, Notes};
use crate::report::*;
use crate::signal;
use crate::unwind::{StartRegs, Walker};
use crate::{insn, story, symbolize};
use std::path::{Path, PathBuf};

/// How to read a core.
#[derive(Debug, Clone)]
pub struct Options {
    /// Look for the process's files under this directory (a container's
    /// root, or the unpacked image of the machine the core came from).
    pub root: Option<PathBuf>,
    /// Split debug info directories; the usual ones when empty.
    pub debug_dirs: Vec<PathBuf>,
    /// Frames per thread at most (a stack overflow has tens of thousands).
    pub max_frames: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: None,
            debug_dirs: Vec::new(),
            max_frames: 256,
        }
    }
}

/// Reads a core file: an error only when nothing could be read; anything
/// less is a partial report whose `missing` says what is lacking.
pub fn read_core(path: &Path, opts: &Options) -> Result<CoreReport, CoreError> {
    let opened = crate::source::open(path)?;
    let data: &[u8] = &opened.bytes;
    let layout = elf::parse_layout(data).map_err(|e| match e {
        HeaderError::NotElf => CoreError::NotElf {
            path: path.to_path_buf(),
        },
        HeaderError::NotCore(t) => CoreError::NotCore {
            path: path.to_path_buf(),
            e_type: t,
        },
        HeaderError::Unsupported(what) => CoreError::Unsupported {
            path: path.to_path_buf(),
            what,
        },
        HeaderError::Malformed(what) => CoreError::Malformed {
            path: path.to_path_buf(),
            what,
        },
    })?;
    let mut missing: Vec<String> = Vec::new();
    missing.extend(opened.damage.clone());
    missing.extend(layout.problems.iter().cloned());

    let mut notes = Notes::default();
    for r in &layout.notes {
        notes::parse_segment(layout.arch, data.get(r.clone()).unwrap_or(&[]), &mut notes);
    }
    missing.extend(notes.problems.iter().cloned());
    if layout.notes.is_empty() {
        missing.push("the core has no PT_NOTE segment: no threads, signal or mappings".into());
    }
    if notes.threads.is_empty() && !layout.notes.is_empty() {
        missing.push("no NT_PRSTATUS note: no thread's registers".into());
    }
    if notes.files.is_empty() {
        missing.push(
            "no NT_FILE note: which files were mapped is unknown, so nothing can be symbolized"
                .into(),
        );
    }
    if let Some(last) = layout
        .segments
        .iter()
        .map(|s| s.offset.saturating_add(s.filesz))
        .max()
    {
        if last > data.len() as u64 {
            missing.push(format!(
                "the core is truncated: {} of {} bytes (RLIMIT_CORE, a full disk, or an interrupted copy); memory past the end is missing",
                data.len(),
                last
            ));
        }
    }

    let mem = Memory::new(data, &layout.segments);
    let host = Arch::host();
    let foreign = host != Some(layout.arch);
    let lookup = Lookup {
        root: opts.root.clone(),
    };
    let mut bins = binaries::load(&notes.files, &lookup, Some(&mem));
    let auxv_get = |k| {
        notes
            .auxv
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
    };
    if let Some(base) = auxv_get(notes::AT_SYSINFO_EHDR) {
        if let Some(v) = binaries::vdso(&mem, base) {
            bins.push(v);
        }
    }
    if foreign && opts.root.is_none() {
        missing.push(format!(
            "a core of a {} process read on a {} machine: its binaries are looked up on this machine (use --root with the other machine's files)",
            layout.arch.name(),
            host.map_or("different", Arch::name)
        ));
    }
    // Only binaries with code matter: a missing data file (a locale
    // archive, a deleted shm file) takes nothing from the backtraces.
    let has_code = |b: &binaries::Binary| {
        b.path == "[vdso]"
            || b.mappings.iter().any(|m| {
                mem.segment_of(m.start)
                    .is_some_and(|s| s.vaddr == m.start && s.flags & 1 != 0)
            })
    };
    for b in bins.iter().filter(|b| has_code(b)) {
        match &b.state {
            BinaryState::Missing { reason } => missing.push(format!("{}: {reason}", b.path)),
            BinaryState::Unusable { reason } => missing.push(format!("{}: {reason}", b.path)),
            BinaryState::BuildIdMismatch => missing.push(format!(
                "{}: build-id {} on disk, {} in the core: not the file the process ran (upgraded since?); its frames are marked",
                binaries::display_path(b),
                build_id_hex(&b.build_id_file).unwrap_or_default(),
                build_id_hex(&b.build_id_core).unwrap_or_default()
            )),
            BinaryState::Ok | BinaryState::Data => {}
        }
    }

    let walker = Walker::new(layout.arch, &bins);
    let mut raw = Vec::new();
    let mut stops = Vec::new();
    for t in &notes.threads {
        match &t.regs {
            Some(r) => {
                let (frames, stop) = walker.walk(
                    StartRegs {
                        pc: r.pc,
                        sp: r.sp,
                        fp: r.fp,
                        lr: r.lr,
                    },
                    opts.max_frames,
                    &mut |a| mem.read_u64(a).ok(),
                );
                raw.push(frames);
                stops.push(stop);
            }
            None => {
                raw.push(Vec::new());
                stops.push(Some("no registers in its NT_PRSTATUS".into()));
            }
        }
    }
    let debug_dirs = if opts.debug_dirs.is_empty() {
        symbolize::default_debug_dirs(opts.root.as_deref())
    } else {
        opts.debug_dirs.clone()
    };
    let symbolized = symbolize::symbolize(&bins, &raw, &debug_dirs);

    let mut threads = Vec::new();
    for (i, ((t, frames), stop)) in notes.threads.iter().zip(symbolized).zip(stops).enumerate() {
        let crashed = i == 0 && t.cursig != 0;
        let instruction = if crashed {
            t.regs
                .as_ref()
                .and_then(|r| insn::at_pc(layout.arch, &mem, &bins, r.pc))
        } else {
            None
        };
        threads.push(ThreadReport {
            tid: t.tid,
            crashed,
            pending: signal::mask_names(t.sigpend),
            blocked: signal::mask_names(t.sighold),
            utime_us: t.utime_us,
            stime_us: t.stime_us,
            registers: t.regs.as_ref().map(|r| RegisterSummary {
                pc: r.pc,
                sp: r.sp,
                fp: r.fp,
                all: r.all.clone(),
            }),
            instruction,
            frames,
            unwind_stopped: stop,
        });
    }

    let signal = signal_report(&notes);
    let executable = executable(&notes, &mem, &bins);
    let process = ProcessInfo {
        pid: notes.psinfo.as_ref().map(|p| p.pid),
        ppid: notes.psinfo.as_ref().map(|p| p.ppid),
        uid: notes.psinfo.as_ref().map(|p| p.uid),
        gid: notes.psinfo.as_ref().map(|p| p.gid),
        command: notes.psinfo.as_ref().map(|p| p.fname.clone()),
        args: notes.psinfo.as_ref().map(|p| p.psargs.clone()),
        executable,
    };
    if notes.psinfo.is_none() {
        missing.push("no NT_PRPSINFO note: command and pid unknown".into());
    }

    let mut mappings = Vec::new();
    for f in &notes.files {
        let b = bins.iter().find(|b| b.path == f.path);
        mappings.push(MappingReport {
            start: f.start,
            end: f.end,
            offset: f.offset,
            path: f.path.clone(),
            build_id: b.and_then(|b| build_id_hex(&b.build_id_core)),
            file_build_id: b.and_then(|b| build_id_hex(&b.build_id_file)),
            state: match b.map(|b| &b.state) {
                Some(BinaryState::Ok) => "ok",
                Some(BinaryState::BuildIdMismatch) => "build_id_mismatch",
                Some(BinaryState::Missing { .. }) | None => "missing",
                Some(BinaryState::Unusable { .. }) => "unusable",
                Some(BinaryState::Data) => "data",
            }
            .into(),
        });
    }

    let mut report = CoreReport {
        file: path.display().to_string(),
        compression: opened.compression.map(str::to_string),
        arch: layout.arch.name().into(),
        process,
        signal,
        threads,
        mappings,
        auxv: notes
            .auxv
            .iter()
            .map(|&(k, v)| AuxvEntry {
                key: k,
                name: notes::auxv_name(k),
                value: v,
            })
            .collect(),
        story: Vec::new(),
        missing,
    };
    report.story = story::tell(&report, &mem);
    Ok(report)
}

fn signal_report(notes: &Notes) -> Option<SignalReport> {
    if let Some(s) = &notes.siginfo {
        let (code_name, meaning) = signal::code(s.signo, s.code);
        return Some(SignalReport {
            number: s.signo,
            name: signal::name(s.signo),
            code: s.code,
            code_name: code_name.into(),
            meaning: meaning.into(),
            fault_address: s.addr,
            sender_pid: s.sender_pid,
            sender_uid: s.sender_uid,
            syscall: s.syscall,
        });
    }
    // Cores from before Linux 3.7 (or from some dumpers) have no
    // NT_SIGINFO: the first thread's pr_cursig still names the signal.
    let t = notes.threads.first()?;
    (t.cursig != 0).then(|| SignalReport {
        number: t.cursig,
        name: signal::name(t.cursig),
        code: 0,
        code_name: "?".into(),
        meaning: "no NT_SIGINFO note: origin unknown".into(),
        fault_address: None,
        sender_pid: None,
        sender_uid: None,
        syscall: None,
    })
}

/// The executable: the binary that holds AT_ENTRY, else AT_EXECFN's string.
fn executable(notes: &Notes, mem: &Memory, bins: &[binaries::Binary]) -> Option<String> {
    let get = |k| {
        notes
            .auxv
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
    };
    if let Some(entry) = get(notes::AT_ENTRY) {
        if let Some(b) = bins.iter().find(|b| b.file_offset(entry).is_some()) {
            return Some(b.path.clone());
        }
    }
    let at = get(notes::AT_EXECFN)?;
    let bytes = mem.read_upto(at, 4096).ok()?;
    let end = bytes.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}
