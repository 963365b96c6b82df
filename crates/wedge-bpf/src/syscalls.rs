//! The last system calls of every thread, kept in the kernel: BPF programs
//! on raw_syscalls:sys_enter and sys_exit (bpf/syscalls.bpf.c) write each
//! call into a per-thread ring of [`SLOTS`] slots; the recorder reads the
//! rings of the threads that matter at each sample. This is seed 000's
//! `strace` of the calls that led into a hang, always on and without
//! ptrace: nothing stops the traced thread, and a thread that is stuck in a
//! call shows that call last, unfinished.
//!
//! The rings live in one LRU hash map keyed by thread id (in the initial
//! pid namespace), [`MAX_THREADS`] entries of 1,288 bytes, preallocated
//! when the map is created (LRU maps cannot be allocated lazily): about
//! 42 MB of kernel memory, charged to the recorder's memory cgroup. A
//! thread that exits stops touching its ring, which is evicted once the
//! map is full and another thread needs one. A thread that is stuck is
//! also "least recently used": when more than [`MAX_THREADS`] other threads
//! made calls since it stuck, its ring may be gone — the recorder stores
//! what it read at the first sample, so that loses nothing it had seen.
//!
//! Attach: `tp_btf` first (the programs read the registers as BTF-typed
//! loads, no helper call), `raw_tp` where the kernel has no BTF attach
//! points (one `bpf_probe_read_kernel` per call). Both cost the same
//! tracepoint machinery; `examples/syscall_cost.rs` measures them. Held by
//! file descriptors only: dropping the trace (or the recorder dying, even
//! by SIGKILL) detaches the programs and frees the map.
//!
//! The calls of the process that opened the trace are not recorded (its
//! tgid is a constant of the loaded program), so that reading the rings
//! does not fill them.

use std::collections::HashMap;
use wedge_model::SyscallEvent;

/// Slots in each thread's ring: `WEDGE_SC_SLOTS` in bpf/syscalls.bpf.c,
/// a constant of the compiled program. A trace keeps at most this many
/// calls per thread whatever `open` is asked.
pub const SLOTS: usize = 16;

/// Threads the map holds rings for (`WEDGE_SC_THREADS`).
pub const MAX_THREADS: u32 = 32768;

/// One slot: args[6], start_ns, end_ns, ret, nr — ten u64 words.
const SLOT_WORDS: usize = 10;
/// The ring: head, then the slots.
const RING_WORDS: usize = 1 + SLOTS * SLOT_WORDS;

/// Which program type carries the tracepoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// `tp_btf/sys_enter`, `tp_btf/sys_exit` (5.5+, needs the kernel's BTF).
    BtfTracePoint,
    /// `raw_tp/sys_enter`, `raw_tp/sys_exit` (4.17+).
    RawTracePoint,
}

impl Attach {
    pub fn name(self) -> &'static str {
        match self {
            Attach::BtfTracePoint => "tp_btf",
            Attach::RawTracePoint => "raw_tp",
        }
    }
}

/// Attached tracepoints and their rings; detached when dropped.
pub struct SyscallTrace {
    inner: imp::Inner,
    per_thread: usize,
    attach: Attach,
}

impl SyscallTrace {
    /// Attaches, keeping the last `per_thread` calls of each thread. The
    /// ring size is a constant of the BPF program ([`SLOTS`]): more than
    /// that is taken as [`SLOTS`] (see [`SyscallTrace::per_thread`]), 0 is
    /// refused. Says why not (not root, no BPF, lockdown, a tracepoint that
    /// does not attach).
    pub fn open(per_thread: usize) -> Result<SyscallTrace, String> {
        SyscallTrace::open_with(per_thread, None)
    }

    /// [`SyscallTrace::open`] with the program type chosen (`None`: tp_btf,
    /// falling back to raw_tp), for the cost benchmark.
    pub fn open_with(per_thread: usize, attach: Option<Attach>) -> Result<SyscallTrace, String> {
        if per_thread == 0 {
            return Err("system-call tracing: 0 calls per thread keeps nothing".into());
        }
        let (inner, attach) = imp::Inner::open(attach)?;
        Ok(SyscallTrace {
            inner,
            per_thread: per_thread.min(SLOTS),
            attach,
        })
    }

    /// How many calls per thread `read` returns at most.
    pub fn per_thread(&self) -> usize {
        self.per_thread
    }

    /// The program type that was attached.
    pub fn attach(&self) -> Attach {
        self.attach
    }

    /// The recorded calls of `tids`, oldest first (an unfinished call
    /// last, with no duration). A thread with no ring (it made no call
    /// since the trace was attached, it belongs to this process, or its
    /// ring was evicted) is absent from the map.
    pub fn read(&self, tids: &[i32]) -> HashMap<i32, Vec<SyscallEvent>> {
        let mut out = HashMap::new();
        let Some((boot_ns, real_ns)) = clocks() else {
            return out;
        };
        for &tid in tids {
            let Ok(key) = u32::try_from(tid) else {
                continue;
            };
            if let Some(ring) = self.inner.ring(key) {
                let ev = events(&ring, boot_ns, real_ns, self.per_thread);
                if !ev.is_empty() {
                    out.insert(tid, ev);
                }
            }
        }
        out
    }
}

fn clock_ns(id: libc::clockid_t) -> Option<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively
    // borrowed `ts`.
    let r = unsafe { libc::clock_gettime(id, &mut ts) };
    (r == 0).then(|| ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128)
}

/// CLOCK_BOOTTIME (what bpf_ktime_get_boot_ns reads: it counts suspend,
/// unlike CLOCK_MONOTONIC) and CLOCK_REALTIME, read together once per read.
fn clocks() -> Option<(i128, i128)> {
    Some((
        clock_ns(libc::CLOCK_BOOTTIME)?,
        clock_ns(libc::CLOCK_REALTIME)?,
    ))
}

/// A ring's slots as calls, oldest first, the last `keep` of them. Slots
/// are sorted by their start time rather than walked from `head`: a slot
/// the reader copied while its thread rewrote it cannot then misorder the
/// rest. An empty slot (start 0) is skipped; a slot with no end is a call
/// the thread is still in (the newest) or one whose exit was not matched.
fn events(
    ring: &[u64; RING_WORDS],
    boot_ns: i128,
    real_ns: i128,
    keep: usize,
) -> Vec<SyscallEvent> {
    let mut slots: Vec<&[u64]> = ring[1..]
        .chunks_exact(SLOT_WORDS)
        .filter(|s| s[6] != 0)
        .collect();
    slots.sort_by_key(|s| s[6]);
    let skip = slots.len().saturating_sub(keep);
    slots
        .into_iter()
        .skip(skip)
        .map(|s| {
            let (start, end) = (s[6], s[7]);
            let nr = s[9] as i64;
            let unix_ns = real_ns - (boot_ns - start as i128);
            let done = end != 0 && end >= start;
            SyscallEvent {
                nr,
                name: wedge_kernel::syscall_name(nr).map(str::to_string),
                args: s[0..6].to_vec(),
                start_unix_ms: unix_ns.div_euclid(1_000_000) as i64,
                duration_ns: done.then(|| end - start),
                ret: done.then_some(s[8] as i64),
            }
        })
        .collect()
}

#[cfg(wedge_no_syscalls)]
mod imp {
    use super::{Attach, RING_WORDS};

    pub(super) struct Inner {
        never: std::convert::Infallible,
    }

    impl Inner {
        pub(super) fn open(_: Option<Attach>) -> Result<(Inner, Attach), String> {
            Err(format!(
                "wedge was built without its system-call program: {}",
                env!("WEDGE_NO_SYSCALLS_WHY")
            ))
        }
        pub(super) fn ring(&self, _: u32) -> Option<[u64; RING_WORDS]> {
            match self.never {}
        }
    }
}

#[cfg(not(wedge_no_syscalls))]
mod imp {
    use super::{Attach, MAX_THREADS, RING_WORDS};
    use crate::load::{chain, precheck, refused, verifier_reason, SelfStatus};
    use aya::maps::{HashMap as BpfHashMap, MapData};
    use aya::programs::{BtfTracePoint, ProgramError, RawTracePoint};
    use aya::{Btf, Ebpf, EbpfLoader};

    /// bpf/syscalls.bpf.c compiled by build.rs.
    static PROGRAM: &[u8] =
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syscalls.bpf.o"));

    const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

    pub(super) struct Inner {
        /// Owns the programs, their links and the map: dropping it closes
        /// every fd, which detaches the programs.
        ebpf: Ebpf,
    }

    fn load_err(what: &str, e: ProgramError, st: &SelfStatus) -> String {
        if let ProgramError::LoadError {
            io_error,
            verifier_log,
        } = &e
        {
            if io_error.raw_os_error() != Some(libc::EPERM) {
                let log = verifier_log.to_string();
                return format!(
                    "the kernel refused wedge's system-call program {what}: {} ({io_error})",
                    verifier_reason(&log).unwrap_or_else(|| "no verifier log".into())
                );
            }
        }
        refused(what, &e, st).reason
    }

    impl Inner {
        pub(super) fn open(want: Option<Attach>) -> Result<(Inner, Attach), String> {
            let st = precheck().map_err(|u| u.reason)?;
            // aya's EbpfLoader::new() parses the whole of the kernel's BTF;
            // the program has no CO-RE relocation, so that BTF goes unused:
            // let it parse on another CPU while the attach ids are found in
            // a trimmed copy.
            let loader = std::thread::Builder::new()
                .name("wedge-sc-load".into())
                .spawn(EbpfLoader::new);
            let btf = match want {
                Some(Attach::RawTracePoint) => Err(String::new()),
                _ => attach_btf(),
            };
            let mut loader = match loader {
                Ok(h) => h.join().unwrap_or_else(|_| EbpfLoader::new()),
                Err(_) => EbpfLoader::new(),
            };
            let pid = std::process::id();
            let mut ebpf = loader
                .btf(None)
                .map_max_entries("wedge_sc", MAX_THREADS)
                .override_global("wedge_tgid", &pid, true)
                .load(PROGRAM)
                .map_err(|e| refused("creating the system-call rings", &e, &st).reason)?;
            // The value size is the program's ring: a mismatch with SLOTS
            // is a build inconsistency, named here rather than misread.
            {
                let map = ebpf
                    .map("wedge_sc")
                    .ok_or("BPF map wedge_sc missing from the system-call object")?;
                BpfHashMap::<&MapData, u32, [u64; RING_WORDS]>::try_from(map).map_err(|e| {
                    format!(
                        "BPF map wedge_sc does not hold rings of {} slots: {e}",
                        super::SLOTS
                    )
                })?;
            }
            let attach = match (want, btf) {
                (Some(Attach::BtfTracePoint), Err(why)) => return Err(why),
                (_, Ok(btf)) => match attach_tp_btf(&mut ebpf, &btf, &st) {
                    Ok(()) => Attach::BtfTracePoint,
                    Err(why) if want.is_none() => {
                        attach_raw(&mut ebpf, &st).map_err(|raw| format!("{why}; {raw}"))?;
                        Attach::RawTracePoint
                    }
                    Err(why) => return Err(why),
                },
                (_, Err(_)) => {
                    attach_raw(&mut ebpf, &st)?;
                    Attach::RawTracePoint
                }
            };
            Ok((Inner { ebpf }, attach))
        }

        pub(super) fn ring(&self, tid: u32) -> Option<[u64; RING_WORDS]> {
            let map = self.ebpf.map("wedge_sc")?;
            let h = BpfHashMap::<&MapData, u32, [u64; RING_WORDS]>::try_from(map).ok()?;
            h.get(&tid, 0).ok()
        }
    }

    /// The kernel's BTF cut down to the two tracepoint typedefs whose ids
    /// the tp_btf programs attach by (type ids unchanged: btf_trim).
    fn attach_btf() -> Result<Btf, String> {
        let raw = std::fs::read(BTF_PATH).map_err(|e| format!("{BTF_PATH}: {e}"))?;
        let small = crate::btf_trim::trim_to(&raw, &["btf_trace_sys_enter", "btf_trace_sys_exit"])
            .unwrap_or(raw);
        Btf::parse(&small, aya::Endianness::default())
            .map_err(|e| format!("cannot parse the kernel's BTF ({BTF_PATH}): {}", chain(&e)))
    }

    fn attach_tp_btf(ebpf: &mut Ebpf, btf: &Btf, st: &SelfStatus) -> Result<(), String> {
        for (prog, tp) in [
            ("wedge_sc_enter", "sys_enter"),
            ("wedge_sc_exit", "sys_exit"),
        ] {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("{prog} missing from the system-call object"))?
                .try_into()
                .map_err(|e: ProgramError| format!("{prog}: {e}"))?;
            p.load(tp, btf).map_err(|e| match e {
                ProgramError::Btf(e) => format!(
                    "tp_btf/{tp}: the tracepoint raw_syscalls:{tp} is not in the kernel's BTF \
                     ({}; CONFIG_FTRACE_SYSCALLS off?)",
                    chain(&e)
                ),
                e => load_err(&format!("{prog} (tp_btf/{tp})"), e, st),
            })?;
            p.attach().map_err(|e| {
                format!(
                    "attaching tp_btf to the tracepoint raw_syscalls:{tp}: {}",
                    chain(&e)
                )
            })?;
        }
        Ok(())
    }

    fn attach_raw(ebpf: &mut Ebpf, st: &SelfStatus) -> Result<(), String> {
        for (prog, tp) in [
            ("wedge_sc_enter_raw", "sys_enter"),
            ("wedge_sc_exit_raw", "sys_exit"),
        ] {
            let p: &mut RawTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("{prog} missing from the system-call object"))?
                .try_into()
                .map_err(|e: ProgramError| format!("{prog}: {e}"))?;
            p.load()
                .map_err(|e| load_err(&format!("{prog} (raw_tp/{tp})"), e, st))?;
            p.attach(tp).map_err(|e| {
                format!(
                    "attaching raw_tp to the tracepoint raw_syscalls:{tp}: {} \
                     (CONFIG_FTRACE_SYSCALLS off?)",
                    chain(&e)
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ring: &mut [u64; RING_WORDS], i: usize, nr: u64, start: u64, end: u64, ret: i64) {
        let s = &mut ring[1 + i * SLOT_WORDS..1 + (i + 1) * SLOT_WORDS];
        for (k, a) in s[0..6].iter_mut().enumerate() {
            *a = nr * 10 + k as u64;
        }
        s[6] = start;
        s[7] = end;
        s[8] = ret as u64;
        s[9] = nr;
    }

    #[test]
    fn slots_come_oldest_first_with_the_unfinished_call_last() {
        let mut ring = [0u64; RING_WORDS];
        // A wrapped ring: slot 2 holds the call in progress (head 18),
        // slots 3.. hold older calls, 0 and 1 newer ones.
        ring[0] = 18;
        slot(&mut ring, 3, 39, 1_000_000_000, 1_000_001_000, 4242); // getpid
        slot(&mut ring, 0, 257, 2_000_000_000, 2_000_050_000, 3); // openat
        slot(&mut ring, 1, 1, 3_000_000_000, 3_000_002_000, 6); // write
        slot(&mut ring, 2, 0, 4_000_000_000, 0, 0); // read, in progress
                                                    // Now: boot 5 s; real 1,700,000,000 s.
        let real = 1_700_000_000i128 * 1_000_000_000;
        let ev = events(&ring, 5_000_000_000, real, SLOTS);
        let names: Vec<_> = ev
            .iter()
            .map(|e| e.name.as_deref().unwrap_or("?"))
            .collect();
        assert_eq!(names, ["getpid", "openat", "write", "read"]);
        assert_eq!(ev[0].start_unix_ms, 1_699_999_996_000);
        assert_eq!(ev[0].duration_ns, Some(1000));
        assert_eq!(ev[0].ret, Some(4242));
        assert_eq!(ev[2].args, vec![10, 11, 12, 13, 14, 15]);
        assert_eq!(ev[3].start_unix_ms, 1_699_999_999_000);
        assert_eq!(ev[3].duration_ns, None);
        assert_eq!(ev[3].ret, None);
        // A negative errno survives the u64 slot.
        slot(&mut ring, 1, 1, 3_000_000_000, 3_000_002_000, -32);
        assert_eq!(events(&ring, 5_000_000_000, real, 2)[0].ret, Some(-32));
        // keep: the newest two.
        let last2 = events(&ring, 5_000_000_000, real, 2);
        assert_eq!(last2.len(), 2);
        assert_eq!(last2[1].nr, 0);
    }

    #[test]
    fn an_empty_ring_has_no_calls() {
        let ring = [0u64; RING_WORDS];
        assert!(events(&ring, 1, 1, SLOTS).is_empty());
    }

    #[test]
    fn zero_calls_per_thread_is_refused() {
        let e = SyscallTrace::open(0).err().unwrap_or_default();
        assert!(e.contains("0 calls"), "{e}");
    }
}
