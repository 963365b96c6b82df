//! Loading the embedded programs with aya, running the task iterator and
//! the kernel-memory reader, and the checks that name why BPF cannot be
//! used here.

// Without the program (cfg wedge_no_bpf) the checks and helpers below
// have no caller.
#![cfg_attr(wedge_no_bpf, allow(dead_code))]

use crate::{ReadFault, Tasks, Unavailable};
use std::io::{BufRead, BufReader};

/// The reader's batch: `WEDGE_READ_SLOTS` output slots of one page each
/// (bpf/wedge.bpf.c). A slot never crosses a page boundary, so a fault
/// names the exact page that is not mapped.
pub(crate) const READ_SLOTS: usize = 128;
pub(crate) const SLOT_SIZE: usize = 4096;

/// The most iterator output one pass accepts: 256 MiB is ~390,000 tasks
/// of 680 bytes, far over any real pid_max in use; past it the pass is an
/// error rather than unbounded memory.
const MAX_TASK_BYTES: usize = 256 << 20;

pub(crate) fn unavailable(reason: impl Into<String>) -> Unavailable {
    Unavailable {
        reason: reason.into(),
    }
}

/// Addresses of kernel symbols from /proc/kallsyms, in the order asked;
/// `None` for a symbol that is absent or shown as 0 (kptr_restrict hides
/// addresses from readers without CAP_SYSLOG). Stops reading as soon as all
/// are found; core kernel symbols come before modules'.
pub fn kallsyms_addrs(names: &[&str]) -> Result<Vec<Option<u64>>, String> {
    const PATH: &str = "/proc/kallsyms";
    let f = std::fs::File::open(PATH).map_err(|e| format!("{PATH}: {e}"))?;
    let mut out: Vec<Option<u64>> = vec![None; names.len()];
    let mut left = names.len();
    let mut line = String::new();
    let mut rd = BufReader::with_capacity(1 << 16, f);
    while left > 0 {
        line.clear();
        match rd.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("{PATH}: {e}")),
        }
        let mut it = line.split_ascii_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| *n == name) {
            if out[i].is_none() {
                let a = u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0);
                if a.is_some() {
                    out[i] = a;
                    left -= 1;
                }
            }
        }
    }
    Ok(out)
}

/// `/proc/self/status` fields: effective uid, CapEff, Seccomp mode.
pub(crate) struct SelfStatus {
    euid: Option<u32>,
    cap_eff: Option<u64>,
    seccomp: Option<u32>,
}

fn self_status() -> SelfStatus {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    SelfStatus {
        euid: field("Uid:").and_then(|v| v.split_whitespace().nth(1)?.parse().ok()),
        cap_eff: field("CapEff:").and_then(|v| u64::from_str_radix(&v, 16).ok()),
        seccomp: field("Seccomp:").and_then(|v| v.parse().ok()),
    }
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The checks that need no bpf() call, each with its own reason.
pub(crate) fn precheck() -> Result<SelfStatus, Unavailable> {
    let st = self_status();
    if let Some(caps) = st.cap_eff {
        let has = |c: u32| caps & (1u64 << c) != 0;
        // bpf_capable() and perfmon_capable() both accept CAP_SYS_ADMIN
        // (the only capability before 5.8 split them out).
        let ok = (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && (has(CAP_PERFMON) || has(CAP_SYS_ADMIN));
        if !ok {
            return Err(unavailable(if st.euid != Some(0) {
                "not root (BPF task iterators need CAP_BPF and CAP_PERFMON)"
            } else {
                "root without CAP_BPF and CAP_PERFMON in its effective capabilities \
                 (a container or the capability bounding set removed them)"
            }));
        }
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(unavailable(
            "kernel has no BTF (/sys/kernel/btf/vmlinux missing: CONFIG_DEBUG_INFO_BTF is off), \
             which CO-RE relocation needs",
        ));
    }
    // The selected lockdown mode is the bracketed word. "integrity" still
    // allows bpf_probe_read_kernel; "confidentiality" forbids it
    // (LOCKDOWN_BPF_READ_KERNEL).
    if let Ok(l) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        if l.contains("[confidentiality]") {
            return Err(unavailable(
                "kernel lockdown (confidentiality) forbids reading kernel memory with BPF \
                 (/sys/kernel/security/lockdown)",
            ));
        }
    }
    Ok(st)
}

/// The first errno found in an error's source chain.
fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Some(n);
            }
        }
        cur = c.source();
    }
    None
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The line of a verifier log that says what was refused: the last line
/// that is not the statistics the kernel appends.
pub(crate) fn verifier_reason(log: &str) -> Option<String> {
    log.lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && !l.starts_with("-- END PROG LOAD LOG --")
        })
        .map(str::to_string)
}

/// Names why a bpf() step failed: EPERM although the capabilities are
/// there is a seccomp filter or an LSM; the verifier's own line otherwise.
pub(crate) fn refused(
    step: &str,
    e: &(dyn std::error::Error + 'static),
    st: &SelfStatus,
) -> Unavailable {
    if errno_of(e) == Some(libc::EPERM) {
        let why = if st.seccomp.unwrap_or(0) != 0 {
            "a seccomp filter is active on this process"
        } else {
            "an LSM or container policy refused it"
        };
        return unavailable(format!("bpf() returned EPERM while {step} ({why})"));
    }
    unavailable(format!(
        "the kernel refused wedge's BPF program ({step}): {}",
        chain(e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_line_is_the_reason() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n387: (85) call unknown#195896080\n\
                   invalid func unknown#195896080\nprocessed 388 insns (limit 1000000)\n\
                   verification time 912 usec\nstack depth 48\n";
        assert_eq!(
            verifier_reason(log).as_deref(),
            Some("invalid func unknown#195896080")
        );
        assert_eq!(verifier_reason(""), None);
    }
}

#[cfg(wedge_no_bpf)]
mod imp {
    use super::*;

    pub(crate) struct Loaded {
        never: std::convert::Infallible,
    }

    impl Loaded {
        pub(crate) fn open(_trimmed: bool) -> Result<Loaded, Unavailable> {
            Err(unavailable(format!(
                "wedge was built without its BPF program: {}",
                env!("WEDGE_NO_BPF_WHY")
            )))
        }
        pub(crate) fn tasks(&self) -> Result<Tasks, String> {
            match self.never {}
        }
        pub(crate) fn reuse_stacks(&self) -> Result<(), String> {
            match self.never {}
        }
        pub(crate) fn read_many(&self, _: &mut [(u64, &mut [u8])]) -> Vec<Result<(), ReadFault>> {
            match self.never {}
        }
        pub(crate) fn program_ids(&self) -> Vec<u32> {
            match self.never {}
        }
        pub(crate) fn trimmed(&self) -> bool {
            match self.never {}
        }
    }
}

#[cfg(not(wedge_no_bpf))]
mod imp {
    use super::*;
    use crate::record;
    use aya::maps::{Array, Map, MapData};
    use aya::programs::{Iter, ProgramError, RawTracePoint};
    use aya::{Btf, Ebpf, EbpfLoader};
    use std::collections::HashMap;
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd};
    use std::ptr::NonNull;
    use std::sync::Mutex;
    use std::time::Instant;

    /// bpf/wedge.bpf.c compiled by build.rs; aligned because the ELF parser
    /// reads its headers in place.
    static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/wedge.bpf.o"));

    const REQS_HEADER: usize = 8;
    const REQ_SIZE: usize = 16;
    const REQS_BYTES: usize = REQS_HEADER + READ_SLOTS * REQ_SIZE;

    /// A shared mapping of an mmap-able array map (BPF_F_MMAPABLE): the
    /// requests and the copied bytes are exchanged in place.
    struct Mapping {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: the mapping is plain shared memory owned by this value; it is
    // only touched while holding the Mutex in `Loaded`, so moving it to
    // another thread is sound.
    unsafe impl Send for Mapping {}

    impl Mapping {
        fn new(map: &MapData, len: usize, name: &str) -> Result<Mapping, String> {
            let fd = map.fd().as_fd().as_raw_fd();
            // SAFETY: a fresh MAP_SHARED mapping chosen by the kernel (no
            // address hint), of a length within the map's value area; the
            // result is checked before use and unmapped in Drop.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(format!(
                    "mmap of BPF map {name}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let ptr = NonNull::new(p.cast::<u8>())
                .ok_or_else(|| format!("mmap of BPF map {name}: null"))?;
            Ok(Mapping { ptr, len })
        }

        /// The bytes, for a short scope in which no program runs (the
        /// kernel writes them only inside BPF_PROG_TEST_RUN, which needs
        /// `&mut self` through the lock).
        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: ptr/len describe a live mapping owned by self; the
            // exclusive borrow of self means no other slice exists.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping created in new(); no slice
            // outlives the &mut borrow that produced it.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
        }
    }

    struct State {
        // Field order is drop order: unmap before the maps' fds close
        // (either order is safe; the mapping holds its own reference).
        reqs: Mapping,
        out: Mapping,
        ebpf: Ebpf,
    }

    pub(crate) struct Loaded {
        st: Mutex<State>,
        read_fd: i32,
        /// None until the `wedge_rq` fallback was tried; then its result.
        rq_why: Mutex<Option<Result<(), String>>>,
        /// Relocated against the trimmed BTF (not the fallback).
        pub(crate) trimmed: bool,
        /// After [`Loaded::reuse_stacks`]: the last pass's stack of each
        /// task (by task_struct address, with its start time), for the
        /// records the program marks reused.
        /// Boxed, as `buf`: `Bpf` sits beside `LiveKernel` in enums.
        kept: Mutex<Option<Box<KeptStacks>>>,
        /// The iterator's output, kept between passes.
        buf: Box<Mutex<Vec<u8>>>,
        /// wedge_cfg.pass: set anew before each kept pass.
        pass_no: std::sync::atomic::AtomicU32,
    }

    /// Per task_struct address: its start time and last walked stack.
    type KeptStacks = HashMap<u64, (u64, Vec<u64>)>;

    /// wedge_cfg.stacks (STACKS_* in the C).
    const STACKS_REMEMBER: u32 = 1;
    const STACKS_REUSE: u32 = 2;

    /// `union bpf_attr` for BPF_PROG_TEST_RUN (include/uapi/linux/bpf.h,
    /// the `test` member up to `batch_size`). aya 0.14 keeps its test-run
    /// call crate-private.
    #[repr(C)]
    #[derive(Default)]
    struct TestRunAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        pad: u32,
    }
    const BPF_PROG_TEST_RUN: libc::c_long = 10;

    fn test_run(prog_fd: i32) -> std::io::Result<u32> {
        let mut attr = TestRunAttr {
            prog_fd: prog_fd as u32,
            ..Default::default()
        };
        // SAFETY: bpf(2) with a zero-initialised attr of the documented
        // layout and its true size; the kernel only reads/writes within it.
        // A raw tracepoint program takes no data and no context here (it
        // reads none: max_ctx_offset is 0).
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_TEST_RUN,
                &mut attr as *mut TestRunAttr,
                std::mem::size_of::<TestRunAttr>() as libc::c_uint,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(attr.retval)
    }

    fn map_data<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a MapData, String> {
        match ebpf.map(name) {
            Some(Map::Array(d)) | Some(Map::PerCpuArray(d)) => Ok(d),
            Some(_) => Err(format!("BPF map {name} is not an array")),
            None => Err(format!("BPF map {name} missing from the object")),
        }
    }

    /// Possible CPUs (/sys/devices/system/cpu/possible, "0-3,8"): the
    /// highest id + 1, which is how many __per_cpu_offset entries matter.
    fn nr_possible_cpus() -> Option<usize> {
        let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
        s.trim()
            .split(',')
            .filter_map(|r| r.rsplit('-').next()?.trim().parse::<usize>().ok())
            .max()
            .map(|m| m + 1)
    }

    /// Number of `wedge_rq` entries (WEDGE_MAX_CPUS in the C).
    const MAX_CPUS: usize = 1024;

    impl Loaded {
        pub(crate) fn open(trimmed: bool) -> Result<Loaded, Unavailable> {
            const PATH: &str = "/sys/kernel/btf/vmlinux";
            let status = precheck()?;
            // aya's EbpfLoader::new() always parses the whole of
            // /sys/kernel/btf/vmlinux for its default target, which we then
            // replace: let it do that on another CPU meanwhile.
            let loader = std::thread::Builder::new()
                .name("wedge-bpf-load".into())
                .spawn(EbpfLoader::new);
            let take_loader = move || -> EbpfLoader<'static> {
                match loader {
                    Ok(h) => h.join().unwrap_or_else(|_| EbpfLoader::new()),
                    Err(_) => EbpfLoader::new(),
                }
            };
            let raw = std::fs::read(PATH).map_err(|e| unavailable(format!("{PATH}: {e}")))?;
            let parse = |b: &[u8]| {
                Btf::parse(b, aya::Endianness::default()).map_err(|e| {
                    unavailable(format!(
                        "cannot parse the kernel's BTF ({PATH}): {}",
                        chain(&e)
                    ))
                })
            };
            // The trimmed BTF first (see btf_trim: most of the load time is
            // aya going through the whole BTF); should anything the program
            // needs be missing from it, the whole BTF decides.
            let mut loader = Some(take_loader);
            if trimmed {
                if let Ok(small) = crate::btf_trim::trim(&raw) {
                    if let Ok(btf) = parse(&small) {
                        let l = loader.take().map(|f| f()).unwrap_or_default();
                        if let Ok(mut l) = Self::load(l, &btf, &status) {
                            l.trimmed = true;
                            return Ok(l);
                        }
                    }
                }
            }
            let l = loader.take().map(|f| f()).unwrap_or_default();
            Self::load(l, &parse(&raw)?, &status)
        }

        fn load<'a>(
            mut loader: EbpfLoader<'a>,
            btf: &'a Btf,
            status: &SelfStatus,
        ) -> Result<Loaded, Unavailable> {
            let mut ebpf = loader
                .btf(Some(btf))
                .load(PROGRAM)
                .map_err(|e| refused("creating its maps", &e, status))?;

            let load_err = |what: &str, e: ProgramError| -> Unavailable {
                if let ProgramError::LoadError {
                    io_error,
                    verifier_log,
                } = &e
                {
                    if io_error.raw_os_error() == Some(libc::EPERM) {
                        return refused(what, &e, status);
                    }
                    let log = verifier_log.to_string();
                    return unavailable(format!(
                        "the kernel refused wedge's BPF program {what}: {} ({io_error})",
                        if std::env::var_os("WEDGE_BPF_LOG").is_some() {
                            log.clone()
                        } else {
                            verifier_reason(&log).unwrap_or_else(|| "no verifier log".into())
                        }
                    ));
                }
                refused(what, &e, status)
            };
            {
                let prog: &mut Iter = ebpf
                    .program_mut("wedge_tasks")
                    .ok_or_else(|| unavailable("wedge_tasks missing from the BPF object"))?
                    .try_into()
                    .map_err(|e| load_err("wedge_tasks", e))?;
                prog.load("task", btf).map_err(|e| match e {
                    // Iterators arrived in 5.8: an older kernel's BTF has
                    // no bpf_iter_task function to attach to.
                    ProgramError::Btf(_) => unavailable(
                        "kernel without BPF task iterators (bpf_iter_task is not in its BTF; needs 5.8+)",
                    ),
                    e => load_err("wedge_tasks", e),
                })?;
            }
            let read_fd = {
                let prog: &mut RawTracePoint = ebpf
                    .program_mut("wedge_read")
                    .ok_or_else(|| unavailable("wedge_read missing from the BPF object"))?
                    .try_into()
                    .map_err(|e| load_err("wedge_read", e))?;
                prog.load().map_err(|e| load_err("wedge_read", e))?;
                prog.fd()
                    .map_err(|e| load_err("wedge_read", e))?
                    .as_fd()
                    .as_raw_fd()
            };
            let reqs = map_data(&ebpf, "wedge_reqs")
                .and_then(|m| Mapping::new(m, REQS_BYTES, "wedge_reqs"))
                .map_err(unavailable)?;
            let out = map_data(&ebpf, "wedge_out")
                .and_then(|m| Mapping::new(m, READ_SLOTS * SLOT_SIZE, "wedge_out"))
                .map_err(unavailable)?;
            Ok(Loaded {
                st: Mutex::new(State { reqs, out, ebpf }),
                read_fd,
                rq_why: Mutex::new(None),
                trimmed: false,
                kept: Mutex::new(None),
                buf: Box::new(Mutex::new(Vec::new())),
                pass_no: std::sync::atomic::AtomicU32::new(0),
            })
        }

        /// Each CPU's `struct rq` address into `wedge_rq`: kallsyms
        /// `runqueues` is the per-CPU variable's offset in the per-CPU
        /// area, `__per_cpu_offset[cpu]` that CPU's area (both zero-based
        /// and, since 6.15 on x86-64, absolute per-CPU symbols add up).
        fn fill_runqueues(&self) -> Result<(), String> {
            let addrs = kallsyms_addrs(&["runqueues", "__per_cpu_offset"])?;
            let (Some(rq), Some(pco)) = (addrs[0], addrs[1]) else {
                return Err(
                    "runqueues or __per_cpu_offset not in /proc/kallsyms (kptr_restrict?)".into(),
                );
            };
            let n = nr_possible_cpus().unwrap_or(1).min(MAX_CPUS);
            let mut raw = vec![0u8; n * 8];
            self.read_many(&mut [(pco, &mut raw[..])])
                .pop()
                .unwrap_or(Ok(()))
                .map_err(|f| format!("reading __per_cpu_offset: {f}"))?;
            let mut st = self.st.lock().map_err(|_| "lock poisoned".to_string())?;
            let map = st
                .ebpf
                .map_mut("wedge_rq")
                .ok_or("BPF map wedge_rq missing")?;
            let mut arr: Array<&mut MapData, u64> =
                Array::try_from(map).map_err(|e| format!("wedge_rq: {e}"))?;
            for (cpu, w) in raw.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                let off = u64::from_ne_bytes(b);
                arr.set(cpu as u32, rq.wrapping_add(off), 0)
                    .map_err(|e| format!("wedge_rq[{cpu}]: {e}"))?;
            }
            Ok(())
        }

        fn set_stacks_mode(&self, mode: u32) -> Result<(), String> {
            let pass = self
                .pass_no
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .wrapping_add(1);
            let mut st = self.st.lock().map_err(|_| "lock poisoned".to_string())?;
            let map = st
                .ebpf
                .map_mut("wedge_cfg")
                .ok_or("BPF map wedge_cfg missing")?;
            let mut arr: Array<&mut MapData, [u32; 2]> =
                Array::try_from(map).map_err(|e| format!("wedge_cfg: {e}"))?;
            arr.set(0, [mode, pass], 0)
                .map_err(|e| format!("wedge_cfg: {e}"))
        }

        pub(crate) fn reuse_stacks(&self) -> Result<(), String> {
            self.set_stacks_mode(STACKS_REUSE)?;
            let mut kept = self.kept.lock().map_err(|_| "lock poisoned".to_string())?;
            kept.get_or_insert_with(Default::default);
            Ok(())
        }

        /// A pass, with the stacks the program did not walk again taken
        /// from the previous one. A record marked reused without a kept
        /// stack (wedge_seen outlived a failed pass) makes one pass that
        /// walks every stack.
        pub(crate) fn tasks(&self) -> Result<Tasks, String> {
            let mut kept = self.kept.lock().map_err(|_| "lock poisoned".to_string())?;
            let Some(prev) = kept.as_mut() else {
                return self.tasks_once();
            };
            self.set_stacks_mode(STACKS_REUSE)?;
            let mut tasks = self.tasks_once()?;
            let complete = |tasks: &mut Tasks, prev: &KeptStacks| {
                let mut all = true;
                for r in tasks.records.iter_mut().filter(|r| r.stack_reused) {
                    match prev.get(&r.task) {
                        Some((start, stack)) if *start == r.start_time_ns => {
                            r.stack.clone_from(stack)
                        }
                        _ => all = false,
                    }
                }
                all
            };
            if !complete(&mut tasks, prev) {
                self.set_stacks_mode(STACKS_REMEMBER)?;
                tasks = self.tasks_once()?;
            }
            // Only the walked stacks are stored again (the reused ones are
            // there already); tasks gone since the last pass are dropped,
            // and their wedge_seen entries with them, which would fill the
            // map (a new task at the same address is told apart by its
            // start time, so a stale entry is harmless meanwhile).
            let seen: std::collections::HashSet<u64> =
                tasks.records.iter().map(|r| r.task).collect();
            let mut gone = Vec::new();
            prev.retain(|t, _| {
                let keep = seen.contains(t);
                if !keep {
                    gone.push(*t);
                }
                keep
            });
            for r in tasks.records.iter().filter(|r| !r.stack_reused) {
                prev.insert(r.task, (r.start_time_ns, r.stack.clone()));
            }
            drop(kept);
            if !gone.is_empty() {
                let mut st = self.st.lock().map_err(|_| "lock poisoned".to_string())?;
                if let Some(map) = st.ebpf.map_mut("wedge_seen") {
                    if let Ok(mut seen) =
                        aya::maps::HashMap::<&mut MapData, u64, [u64; 3]>::try_from(map)
                    {
                        for t in gone {
                            let _ = seen.remove(&t);
                        }
                    }
                }
            }
            Ok(tasks)
        }

        fn tasks_once(&self) -> Result<Tasks, String> {
            let (mut tasks, rq_clock) = self.pass()?;
            if rq_clock || tasks.records.is_empty() {
                return Ok(tasks);
            }
            // The program reached no rq through cfs_rq: fill the wedge_rq
            // fallback once (kallsyms) and pass again.
            let tried = {
                let mut g = self
                    .rq_why
                    .lock()
                    .map_err(|_| "BPF state lock poisoned".to_string())?;
                match &*g {
                    Some(r) => r.clone(),
                    None => {
                        let r = self.fill_runqueues();
                        *g = Some(r.clone());
                        if r.is_ok() {
                            let (again, ok) = self.pass()?;
                            tasks = again;
                            if ok {
                                return Ok(tasks);
                            }
                        }
                        r
                    }
                }
            };
            let why = match tried {
                Ok(()) => "the run queue addresses gave no clock".to_string(),
                Err(e) => e,
            };
            tasks.missing.push(format!(
                "rq->clock_task (off-CPU time on the task's own CPU clock): no cfs_rq->rq \
                 (CONFIG_FAIR_GROUP_SCHED) and {why}"
            ));
            Ok(tasks)
        }

        pub(crate) fn trimmed(&self) -> bool {
            self.trimmed
        }

        pub(crate) fn program_ids(&self) -> Vec<u32> {
            let Ok(st) = self.st.lock() else {
                return Vec::new();
            };
            ["wedge_tasks", "wedge_read"]
                .iter()
                .filter_map(|n| {
                    let p = st.ebpf.program(n)?;
                    let info = match p {
                        aya::programs::Program::Iter(p) => p.info(),
                        aya::programs::Program::RawTracePoint(p) => p.info(),
                        _ => return None,
                    };
                    info.ok().map(|i| i.id())
                })
                .collect()
        }

        fn pass(&self) -> Result<(Tasks, bool), String> {
            let t0 = Instant::now();
            let mut file = {
                let mut st = self
                    .st
                    .lock()
                    .map_err(|_| "BPF state lock poisoned".to_string())?;
                let prog: &mut Iter = st
                    .ebpf
                    .program_mut("wedge_tasks")
                    .ok_or("wedge_tasks missing")?
                    .try_into()
                    .map_err(|e| format!("wedge_tasks: {e}"))?;
                let id = prog
                    .attach()
                    .map_err(|e| format!("attaching the task iterator: {}", chain(&e)))?;
                let link = prog
                    .take_link(id)
                    .map_err(|e| format!("task iterator link: {}", chain(&e)))?;
                link.into_file()
                    .map_err(|e| format!("creating the task iterator: {}", chain(&e)))?
            };
            // Room for every task at once: /proc/loadavg's "running/total"
            // counts the threads, and growing a 7 MB buffer by doubling
            // would copy and fault in twice as much.
            let threads = std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(3)?
                        .split('/')
                        .nth(1)?
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(1024);
            // The kept pass's buffer is reused: a new 7 MB one each second
            // is 1,700 pages faulted in and zeroed again (perf:
            // clear_page_erms).
            let mut kept_buf = self.buf.lock().map_err(|_| "lock poisoned".to_string())?;
            let buf: &mut Vec<u8> = &mut kept_buf;
            buf.clear();
            buf.reserve(
                (threads + threads / 8 + 64)
                    .saturating_mul(record::REC_SIZE)
                    .min(MAX_TASK_BYTES + 1),
            );
            // Each read() returns what the seq_file buffer holds (up to 8
            // pages of records); the take() bounds the total.
            (&mut file)
                .take(MAX_TASK_BYTES as u64 + 1)
                .read_to_end(buf)
                .map_err(|e| format!("reading the task iterator: {e}"))?;
            if buf.len() > MAX_TASK_BYTES {
                return Err(format!(
                    "the task iterator produced more than {MAX_TASK_BYTES} bytes"
                ));
            }
            let (mut tasks, rq_clock) = record::parse(buf)?;
            tasks.pass_ms = t0.elapsed().as_secs_f64() * 1e3;
            Ok((tasks, rq_clock))
        }

        pub(crate) fn read_many(
            &self,
            reqs: &mut [(u64, &mut [u8])],
        ) -> Vec<Result<(), ReadFault>> {
            let mut res: Vec<Result<(), ReadFault>> = vec![Ok(()); reqs.len()];
            // Pieces: (request, offset in its buffer, address, length), each
            // within one page.
            let mut pieces: Vec<(usize, usize, u64, usize)> = Vec::new();
            for (i, (addr, buf)) in reqs.iter().enumerate() {
                let mut off = 0usize;
                while off < buf.len() {
                    let a = addr.wrapping_add(off as u64);
                    if a < *addr {
                        res[i] = Err(ReadFault {
                            addr: a,
                            detail: "the range wraps past the end of the address space".into(),
                        });
                        break;
                    }
                    let room = SLOT_SIZE - (a as usize % SLOT_SIZE);
                    let len = room.min(buf.len() - off);
                    pieces.push((i, off, a, len));
                    off += len;
                }
            }
            let mut st = match self.st.lock() {
                Ok(g) => g,
                Err(_) => {
                    return reqs
                        .iter()
                        .map(|(a, _)| {
                            Err(ReadFault {
                                addr: *a,
                                detail: "BPF state lock poisoned".into(),
                            })
                        })
                        .collect()
                }
            };
            for batch in pieces.chunks(READ_SLOTS) {
                // Skip pieces of requests that already faulted.
                let live: Vec<&(usize, usize, u64, usize)> =
                    batch.iter().filter(|p| res[p.0].is_ok()).collect();
                if live.is_empty() {
                    continue;
                }
                {
                    let q = st.reqs.bytes();
                    q[0..4].copy_from_slice(&(live.len() as u32).to_ne_bytes());
                    for (k, p) in live.iter().enumerate() {
                        let o = REQS_HEADER + k * REQ_SIZE;
                        q[o..o + 8].copy_from_slice(&p.2.to_ne_bytes());
                        q[o + 8..o + 12].copy_from_slice(&(p.3 as u32).to_ne_bytes());
                        q[o + 12..o + 16].copy_from_slice(&i32::MIN.to_ne_bytes());
                    }
                }
                if let Err(e) = test_run(self.read_fd) {
                    for p in &live {
                        if res[p.0].is_ok() {
                            res[p.0] = Err(ReadFault {
                                addr: p.2,
                                detail: format!("BPF_PROG_TEST_RUN: {e}"),
                            });
                        }
                    }
                    continue;
                }
                let State { reqs: rq, out, .. } = &mut *st;
                let q = rq.bytes();
                let o_bytes = out.bytes();
                for (k, p) in live.iter().enumerate() {
                    if res[p.0].is_err() {
                        continue;
                    }
                    let o = REQS_HEADER + k * REQ_SIZE + 12;
                    let mut sb = [0u8; 4];
                    sb.copy_from_slice(&q[o..o + 4]);
                    let status = i32::from_ne_bytes(sb);
                    if status == 0 {
                        let (req, off, _, len) = **p;
                        reqs[req].1[off..off + len]
                            .copy_from_slice(&o_bytes[k * SLOT_SIZE..k * SLOT_SIZE + len]);
                    } else {
                        let detail = if status == i32::MIN {
                            "the reader did not reach this request".to_string()
                        } else {
                            format!(
                                "bpf_probe_read_kernel: {}",
                                std::io::Error::from_raw_os_error(-status)
                            )
                        };
                        res[p.0] = Err(ReadFault { addr: p.2, detail });
                    }
                }
            }
            res
        }
    }
}

pub(crate) use imp::Loaded;
