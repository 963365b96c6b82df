//! wedge-vmcore against real dumps made by QEMU (see common/fixture.rs):
//! tasks, states, signals and kernel stacks must match what the guest's own
//! /proc said just before the dump.
mod common;
use common::fixture::{boot_or_skip, Boot, BootFixture, GuestView};
use std::path::Path;
use wedge_vmcore::{Options, Vmcore};

fn open(p: &Path) -> Vmcore {
    let t = std::time::Instant::now();
    let v = Vmcore::open(p, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    eprintln!(
        "opened {} in {:?}: {} tasks",
        p.display(),
        t.elapsed(),
        v.tasks.len()
    );
    v
}

/// Function names /proc/PID/stack would show: frames outside the
/// scheduler and lock text.
fn proc_like(v: &Vmcore, t: &wedge_vmcore::tasks::Task) -> Result<Vec<String>, String> {
    let s = v.stack(t).map_err(|e| e.to_string())?;
    Ok(s.frames
        .iter()
        .filter(|f| !f.sched)
        .map(|f| {
            f.function
                .clone()
                .unwrap_or_else(|| format!("{:#x}", f.addr))
        })
        .collect())
}

/// Compares every task the guest reported; returns (checked, mismatches).
fn compare(v: &Vmcore, view: &GuestView, what: &str) -> (usize, Vec<String>) {
    let mut bad = Vec::new();
    let mut checked = 0;
    for g in view.tasks.values() {
        // pid 1 is the shell that printed the report (running then).
        if g.pid <= 1 || g.comm.is_empty() {
            continue;
        }
        checked += 1;
        let Some(t) = v.tasks.iter().find(|t| t.pid == g.pid) else {
            bad.push(format!("{what}: pid {} ({}) not in dump", g.pid, g.comm));
            continue;
        };
        // /proc extends kernel threads' names past comm's 15 bytes
        // (6.1's kthread full_name, a kworker's current workqueue).
        if !g.comm.starts_with(&t.comm) {
            bad.push(format!(
                "{what}: pid {} comm {:?} vs guest {:?}",
                g.pid, t.comm, g.comm
            ));
        }
        if t.state.code() != g.state {
            bad.push(format!(
                "{what}: pid {} ({}) state {} vs guest {}",
                g.pid,
                g.comm,
                t.state.code(),
                g.state
            ));
            continue;
        }
        if g.state == 'R' {
            continue;
        }
        match proc_like(v, t) {
            Ok(s) if s == g.stack => {}
            Ok(s) => bad.push(format!(
                "{what}: pid {} ({}) stack\n  wedge {s:?}\n  guest {:?}",
                g.pid, g.comm, g.stack
            )),
            Err(e) => bad.push(format!(
                "{what}: pid {} ({}) stack error {e}",
                g.pid, g.comm
            )),
        }
    }
    (checked, bad)
}

fn check_boot(fx: &BootFixture, formats: &[&str]) {
    for f in formats {
        let Some(p) = fx.dumps.get(*f) else {
            eprintln!("{}: no {f} dump (QEMU lacks it)", fx.boot.name());
            continue;
        };
        let v = open(p);
        let what = format!("{}/{f}", fx.boot.name());
        let (checked, bad) = compare(&v, &fx.view, &what);
        let wk_bad: Vec<_> = bad.iter().filter(|b| b.contains("(wk-")).collect();
        for b in &bad {
            eprintln!("{b}");
        }
        assert!(
            checked > 50,
            "{what}: only {checked} guest tasks to compare"
        );
        assert!(
            wk_bad.is_empty(),
            "{what}: scenario tasks differ: {wk_bad:#?}"
        );
        // Kernel threads may wake between the report and the dump.
        assert!(
            bad.len() * 20 <= checked,
            "{what}: {} of {checked} tasks differ",
            bad.len()
        );
    }
}

#[test]
fn kaslr_dumps_match_guest_view() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    check_boot(
        fx,
        &[
            "elf",
            "kdump-zlib",
            "kdump-zlib-plain",
            "kdump-lzo",
            "kdump-snappy",
        ],
    );
}

#[test]
fn nokaslr_la57_dump_matches_guest_view() {
    let Some(fx) = boot_or_skip(Boot::NoKaslr).unwrap() else {
        return;
    };
    check_boot(fx, &["elf"]);
}

#[test]
fn sleep_kinds_signals_and_namespaces() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let by = |c: &str| {
        v.tasks
            .iter()
            .find(|t| t.comm == c)
            .unwrap_or_else(|| panic!("no {c}"))
    };
    use wedge_vmcore::tasks::SleepKind;
    // vfork parent: TASK_KILLABLE; mutex and rwsem waiters: plain
    // TASK_UNINTERRUPTIBLE; /proc says D for all three.
    assert_eq!(by("wk-vfork").sleep, Some(SleepKind::Killable));
    assert_eq!(by("wk-mutex-wait").sleep, Some(SleepKind::Uninterruptible));
    assert_eq!(by("wk-rwsem-wait").sleep, Some(SleepKind::Uninterruptible));
    assert_eq!(by("wk-pipe").sleep, Some(SleepKind::Interruptible));
    assert!(
        v.tasks.iter().any(|t| t.sleep == Some(SleepKind::Idle)),
        "no TASK_IDLE kthread"
    );
    let sp = by("wk-sigpend");
    let g = fx.view.by_comm("wk-sigpend").unwrap();
    assert_eq!(format!("{:016x}", sp.pending), g.status["SigPnd"]);
    assert_eq!(format!("{:016x}", sp.shared_pending), g.status["ShdPnd"]);
    let ns = by("wk-nsinit");
    assert_eq!(ns.ns_pids.len(), 2);
    assert_eq!(ns.ns_pids[1], 1);
    assert_eq!(ns.ns_pids[0], ns.pid);
}

#[test]
fn crash_dump_names_panic_cpu_task_and_message() {
    // QEMU's dumps of a panicked guest, and the dumps the guest's own
    // capture kernel made (kexec, makedumpfile): the production path.
    for boot in [Boot::Crash, Boot::Kdump] {
        let Some(fx) = boot_or_skip(boot).unwrap() else {
            continue;
        };
        crash_dump_checks(fx);
    }
}

fn crash_dump_checks(fx: &BootFixture) {
    let b = fx.boot.name();
    for f in ["elf", "kdump-zlib"] {
        let Some(p) = fx.dumps.get(f) else {
            panic!("{b}: no {f} dump")
        };
        let v = open(p);
        let f = format!("{b}/{f}");
        let t = v
            .crashing_task()
            .unwrap_or_else(|| panic!("{f}: no crashing task"));
        assert_eq!(t.comm, "wk-crasher");
        // The crashing task's stack comes from the CPU's registers in the
        // dump's notes and runs through sysrq's handler into panic().
        let s = v.stack(t).unwrap();
        assert!(s.from_cpu.is_some());
        assert_eq!(s.from_cpu.map(|c| c as u32), v.panic_cpu, "{f}: panic_cpu");
        let names: Vec<_> = s
            .frames
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        for want in [
            "panic",
            "sysrq_handle_crash",
            "write_sysrq_trigger",
            "ksys_write",
        ] {
            assert!(names.contains(&want), "{f}: {want} not in {names:?}");
        }
        let log = wedge_vmcore::printk::read(&v.kernel).unwrap();
        assert_eq!(
            wedge_vmcore::printk::panic_message(&log).as_deref(),
            Some("sysrq triggered crash")
        );
        // The same log, through wedge log's parser: it sees the panic.
        let text = wedge_vmcore::printk::to_dmesg(&log);
        assert!(
            text.contains("Linux version 6."),
            "no boot banner in the log"
        );
        let events = wedge_klog::parse_str(&text).events;
        assert!(
            events.iter().any(|e| e.kind() == "panic"),
            "klog found no panic: {:?}",
            events.iter().map(|e| e.kind()).collect::<Vec<_>>()
        );
    }
}

/// Function names of a stack, innermost first.
fn names(s: &wedge_vmcore::stack::Stack) -> Vec<String> {
    s.frames
        .iter()
        .map(|f| {
            f.function
                .clone()
                .unwrap_or_else(|| format!("{:#x}", f.addr))
        })
        .collect()
}

/// A kexec crash dump: the panicking CPU's registers are those
/// crash_setup_regs saved inside __crash_kexec, a function objtool left
/// without ORC data; the stack must still run on to the syscall entry.
#[test]
fn kdump_crashed_stack_runs_past_crash_kexec_to_the_syscall() {
    let Some(fx) = boot_or_skip(Boot::Kdump).unwrap() else {
        return;
    };
    for f in ["kdump-zlib", "elf"] {
        let p = &fx.dumps[f];
        let v = open(p);
        let t = v.crashing_task().expect("crashing task");
        let s = v.stack(t).unwrap();
        let n = names(&s);
        eprintln!("kdump/{f} crashed task {}: {n:?}", t.pid);
        assert_eq!(s.error, None, "kdump/{f}: walk stopped: {n:?}");
        assert_eq!(n.first().map(String::as_str), Some("__crash_kexec"));
        // In this order, each after the one before (sysrq's handler is
        // split by the compiler: kallsyms names the part `.cold`).
        let mut at = 0;
        for want in [
            "panic",
            "sysrq_handle_crash",
            "__handle_sysrq",
            "write_sysrq_trigger",
            "vfs_write",
            "ksys_write",
            "do_syscall_64",
        ] {
            let i = n[at..]
                .iter()
                .position(|x| x == want || x.starts_with(&format!("{want}.")))
                .unwrap_or_else(|| panic!("kdump/{f}: {want} not after frame {at} in {n:?}"));
            at += i + 1;
        }
        assert!(
            n.last().is_some_and(|l| l.starts_with("entry_SYSCALL_64")),
            "kdump/{f}: does not end at the syscall entry: {n:?}"
        );
        // The other CPU was stopped by the NMI (crash_nmi_callback) the
        // crashing CPU sent before kexec; its note holds the registers the
        // NMI interrupted: kdump-init.sh's dd reading /dev/urandom.
        let spinner: i32 = fx
            .view
            .serial
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("WK-SPINNER "))
            .and_then(|p| p.parse().ok())
            .expect("WK-SPINNER in the serial log");
        let cpus = v.kernel.mem.dump.cpus.len();
        assert_eq!(cpus, 2, "kdump/{f}: one NT_PRSTATUS note per CPU");
        for cpu in 0..cpus {
            let cs = v.cpu_stack(cpu).unwrap();
            let cn = names(&cs);
            eprintln!("kdump/{f} CPU {cpu}: {cn:?}");
            assert_eq!(cs.error, None, "kdump/{f} CPU {cpu}: {cn:?}");
            if cpu as u32 == v.panic_cpu.unwrap() {
                assert_eq!(cn, n, "kdump/{f}: the panicking CPU runs the crashed task");
                continue;
            }
            let cur = v.cpu_current[cpu].and_then(|a| v.tasks.iter().find(|t| t.addr == a));
            let cur = cur.unwrap_or_else(|| panic!("kdump/{f} CPU {cpu}: current not a task"));
            assert_eq!(cur.pid, spinner, "kdump/{f} CPU {cpu} runs the spinner");
            // The same stack through the task, and one from its system call
            // down to the entry, unless the NMI caught it in user mode
            // (rare: its time goes to the kernel's ChaCha20), when the
            // kernel stack is empty.
            assert_eq!(names(&v.stack(cur).unwrap()), cn, "kdump/{f} CPU {cpu}");
            if cn.is_empty() {
                eprintln!("kdump/{f} CPU {cpu}: the NMI caught dd in user mode");
                continue;
            }
            for want in ["vfs_read", "ksys_read", "do_syscall_64"] {
                assert!(
                    cn.iter().any(|x| x == want),
                    "kdump/{f} CPU {cpu}: no {want}: {cn:?}"
                );
            }
            assert!(
                cn.last().is_some_and(|l| l.starts_with("entry_SYSCALL_64")),
                "kdump/{f} CPU {cpu}: {cn:?}"
            );
        }
        // Every task's stack: walked to its end, from the scheduler's saved
        // context (or the CPU's registers, for the crashed task).
        for t in &v.tasks {
            let s = v.stack(t).unwrap();
            assert_eq!(
                s.error,
                None,
                "kdump/{f}: pid {} ({}): {:?}",
                t.pid,
                t.comm,
                names(&s)
            );
        }
    }
    // And they match what the guest's /proc said, as for QEMU's dumps.
    check_boot(fx, &["kdump-zlib", "elf"]);
}

#[test]
fn printk_log_matches_serial_console() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let log = wedge_vmcore::printk::read(&v.kernel).unwrap();
    assert!(log.len() > 100, "only {} records", log.len());
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    // Every console line at loglevel ≤ 4 was printed on the serial port too.
    let console: Vec<_> = fx
        .view
        .serial
        .lines()
        .filter(|l| l.starts_with('['))
        .collect();
    let dmesg = wedge_vmcore::printk::to_dmesg(&log);
    let missing: Vec<_> = console
        .iter()
        .filter(|l| !dmesg.contains(l.trim_end_matches('\r')))
        .collect();
    assert!(
        missing.len() * 10 <= console.len().max(1),
        "{} of {} console lines not in the dump's log: {missing:?}",
        missing.len(),
        console.len()
    );
}

#[test]
fn lock_owners_from_memory() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    for f in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[f]);
        let pid = |c: &str| v.tasks.iter().find(|t| t.comm == c).unwrap().pid;
        let waits = wedge_vmcore::locks::lock_waits(&v);
        let of = |w: &str| {
            waits
                .iter()
                .find(|x| x.waiter == pid(w))
                .unwrap_or_else(|| panic!("{f}: no lock wait for {w}: {waits:?}"))
        };
        let m = of("wk-mutex-wait");
        assert_eq!(m.kind, wedge_vmcore::locks::LockKind::Mutex);
        assert_eq!(m.owner, Some(pid("wk-mutex-holder")));
        let r = of("wk-rwsem-wait");
        assert_eq!(r.kind, wedge_vmcore::locks::LockKind::RwSemaphore);
        assert_eq!(r.owner, Some(pid("wk-rwsem-holder")));
        assert_eq!(r.waiters, vec![pid("wk-rwsem-wait")]);
    }
}

#[test]
fn snapshot_runs_the_live_analysis() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    let snap = wedge_vmcore::snapshot::build(&v, true);
    assert!(matches!(snap.source, wedge_model::Source::Vmcore { .. }));
    let p = snap.processes.iter().find(|p| p.comm == "wk-pipe").unwrap();
    let t = &p.threads[0];
    assert_eq!(t.wchan_name(), Some("pipe_read"));
    match t.syscall.value() {
        Some(wedge_model::Syscall::InSyscall { name, .. }) => {
            assert_eq!(name.as_deref(), Some("read"))
        }
        other => panic!("wk-pipe syscall {other:?}"),
    }
    assert!(snap.off_cpu_ms(t).is_some(), "no last-ran time");
    let findings = wedge_analysis::analyze(&snap);
    let rules: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert!(rules.contains(&"task.stopped"), "{findings:#?}");
    assert!(rules.contains(&"vfork.waiting"), "{findings:#?}");
    // The lock owners read from memory reach the analysis: the waiter's
    // chain names the holder, as a fact.
    let waiter = snap
        .processes
        .iter()
        .find(|p| p.comm == "wk-mutex-wait")
        .unwrap();
    let holder = snap
        .processes
        .iter()
        .find(|p| p.comm == "wk-mutex-holder")
        .unwrap();
    let lw = waiter.threads[0]
        .lock_wait
        .as_ref()
        .expect("lock_wait filled");
    assert_eq!(lw.owner_tid, Some(holder.pid));
    let g = wedge_analysis::graph::build(&snap);
    let chains = g.chains(&wedge_analysis::graph::Node::Task {
        pid: waiter.pid,
        tid: waiter.threads[0].tid,
    });
    assert!(
        chains
            .iter()
            .any(|c| c.iter().any(|n| n.pid() == Some(holder.pid))),
        "{chains:?}"
    );
    let vfork = snap
        .processes
        .iter()
        .find(|p| p.threads[0].sleep_kind == Some(wedge_kernel::SleepKind::Killable));
    assert!(vfork.is_some(), "no killable sleeper in the dump");
    // JSON round trip like the live snapshot.
    let j = serde_json::to_string(&snap).unwrap();
    let back: wedge_model::Snapshot = serde_json::from_str(&j).unwrap();
    assert_eq!(back.processes.len(), snap.processes.len());
}

/// A task blocked inside a module (fuse, loaded by the guest): its frames
/// are unwound with the module's ORC tables and named from the module's
/// own symbols, like /proc/PID/stack names them, and the live analysis
/// recognises the unanswered FUSE request from the dump alone.
#[test]
fn module_frames_and_fuse_verdict() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let guest = fx
        .view
        .by_comm("wk-fuse-reader")
        .expect("guest ran the fuse scenario (fuse.ko in the initramfs)");
    assert_eq!(guest.stack_modules.first(), Some(&Some("fuse".to_string())));
    for f in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[f]);
        let t = v.tasks.iter().find(|t| t.pid == guest.pid).unwrap();
        let s = v.stack(t).unwrap();
        let frames: Vec<_> = s.frames.iter().filter(|f| !f.sched).collect();
        let names: Vec<_> = frames
            .iter()
            .map(|f| f.function.clone().unwrap_or_default())
            .collect();
        let modules: Vec<_> = frames.iter().map(|f| f.module.clone()).collect();
        assert_eq!(names, guest.stack, "{f}: frames");
        assert_eq!(modules, guest.stack_modules, "{f}: modules");
        assert!(v.kernel.modules.mods.iter().any(|m| m.name == "fuse"));

        let snap = wedge_vmcore::snapshot::build(&v, true);
        let findings = wedge_analysis::analyze(&snap);
        let fuse = findings
            .iter()
            .find(|x| x.id == wedge_analysis::FuseRule::Unanswered.into())
            .unwrap_or_else(|| panic!("{f}: no fuse.unanswered in {findings:#?}"));
        assert!(fuse.is_wedged());
        assert_eq!(fuse.pids.first(), Some(&guest.pid));
    }
}

/// Which note is which CPU's, on a kexec dump, comes from the panicked
/// kernel's per-CPU `crash_notes`, not from the notes' order (the capture
/// kernel drops the empty note of a CPU that saved none, shifting the rest).
/// The same dump with its two NT_PRSTATUS notes swapped must give the same
/// CPUs their registers.
#[test]
fn kdump_cpu_registers_follow_crash_notes_not_note_order() {
    let Some(fx) = boot_or_skip(Boot::Kdump).unwrap() else {
        return;
    };
    let mut bytes = std::fs::read(&fx.dumps["kdump-zlib"]).unwrap();
    // An x86-64 NT_PRSTATUS note: namesz 5, descsz 336, type 1, "CORE".
    let head: Vec<u8> = [5u32, 336, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .chain(*b"CORE\0\0\0\0")
        .collect();
    let len = head.len() + 336;
    let at: Vec<usize> = bytes
        .windows(head.len())
        .enumerate()
        .filter(|(_, w)| *w == head.as_slice())
        .map(|(i, _)| i)
        .take(2)
        .collect();
    assert_eq!(at.len(), 2, "two CPU notes in the kdump header");
    let first = bytes[at[0]..at[0] + len].to_vec();
    bytes.copy_within(at[1]..at[1] + len, at[0]);
    bytes[at[1]..at[1] + len].copy_from_slice(&first);
    let d = wedge_vmcore::dump::Dump::from_source(Box::new(bytes)).unwrap();
    let k = wedge_vmcore::Kernel::from_dump(d, &Options::default()).unwrap();
    let v = Vmcore::from_kernel("swapped".into(), k).unwrap();
    let orig = open(&fx.dumps["kdump-zlib"]);
    assert_eq!(
        v.kernel.mem.dump.cpus[0], orig.kernel.mem.dump.cpus[1],
        "swapped"
    );
    assert_eq!(v.cpu_regs, orig.cpu_regs, "CPU registers by CPU number");
    let t = v.crashing_task().expect("crashing task");
    let n = names(&v.stack(t).unwrap());
    assert_eq!(
        n.first().map(String::as_str),
        Some("__crash_kexec"),
        "{n:?}"
    );
    assert!(n.iter().any(|f| f == "sysrq_handle_crash"), "{n:?}");
    let other = names(&v.cpu_stack(1).unwrap());
    assert_eq!(other, names(&orig.cpu_stack(1).unwrap()), "CPU 1");
    assert!(!other.iter().any(|f| f == "__crash_kexec"), "{other:?}");
}

/// drgn, given the kernel's DWARF, walks the same kdump dump: the crashed
/// thread's frames and those of every CPU's current task must be the same
/// functions as wedge's (drgn's inlined frames left out: wedge walks ORC
/// and names the function kallsyms has). drgn and the vmlinux with DWARF
/// are the ones scripts/vmcore-debuginfo.sh fetches into the fixture cache
/// (or `WEDGE_DRGN` and `WEDGE_DEBUGINFO`); without them the test skips,
/// failing under WEDGE_REQUIRE_ALL.
#[test]
fn kdump_stacks_match_drgn() {
    let Some(fx) = boot_or_skip(Boot::Kdump).unwrap() else {
        return;
    };
    let Some(di) = common::fixture::debuginfo_or_skip(&fx.kernel_release) else {
        return;
    };
    let Some(drgn) = common::fixture::drgn_or_skip() else {
        return;
    };
    let vmlinux = di.vmlinux;
    // One line per stack: "crashed TID f1,f2,…" and "cpu N f1,f2,…".
    let script = r#"
from drgn.helpers.linux.sched import cpu_curr
from drgn.helpers.linux.cpumask import for_each_online_cpu
def names(trace):
    return ",".join(f.name or hex(f.pc) for f in trace if not f.is_inline and f.pc >= 1 << 63)
t = prog.crashed_thread()
print("crashed", t.tid, names(t.stack_trace()))
for c in for_each_online_cpu(prog):
    print("cpu", c, names(prog.stack_trace(cpu_curr(prog, c))))
"#;
    for f in ["kdump-zlib", "elf"] {
        let p = &fx.dumps[f];
        let out = run_bounded(
            std::process::Command::new(&drgn)
                .arg("-q")
                .arg("-c")
                .arg(p)
                .arg("-s")
                .arg(&vmlinux)
                .args(["-e", script]),
            std::time::Duration::from_secs(300),
        );
        let v = open(p);
        let mut seen = 0;
        for line in out.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (ours, theirs) = match w[..] {
                ["crashed", tid, fr] => {
                    let t = v.crashing_task().expect("crashing task");
                    assert_eq!(tid, t.pid.to_string(), "kdump/{f}: crashed thread");
                    (names(&v.stack(t).unwrap()), fr)
                }
                ["cpu", cpu, fr] => (names(&v.cpu_stack(cpu.parse().unwrap()).unwrap()), fr),
                _ => continue,
            };
            seen += 1;
            let theirs: Vec<&str> = theirs.split(',').collect();
            let same = ours.len() == theirs.len()
                && ours.iter().zip(&theirs).all(|(o, t)| same_function(o, t));
            assert!(same, "kdump/{f} {}: wedge {ours:?}\n drgn {theirs:?}", w[0]);
            eprintln!("kdump/{f} {} {}: {} frames as drgn", w[0], w[1], ours.len());
        }
        assert_eq!(seen, 3, "kdump/{f}: drgn printed {out}");
    }
}

/// One function in wedge's (kallsyms) and drgn's (DWARF) names: kallsyms
/// keeps the compiler's suffixes of split or specialised copies
/// (`__handle_sysrq.cold`), and labels inside assembly entry code that
/// the ELF symbol table folds into the sized symbol around them.
fn same_function(ours: &str, drgn: &str) -> bool {
    const ASM_LABELS: &[(&str, &str)] = &[
        ("entry_SYSCALL_64_after_hwframe", "entry_SYSCALL_64"),
        ("secondary_startup_64_no_verify", "secondary_startup_64"),
    ];
    ours.split('.').next() == Some(drgn) || ASM_LABELS.contains(&(ours, drgn))
}

/// Runs a command with a time limit; its stdout, or a panic with stderr.
fn run_bounded(cmd: &mut std::process::Command, limit: std::time::Duration) -> String {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "{cmd:?}: {status}: {err}");
    out
}

/// What a process owns beyond its task_struct, read from kernel objects:
/// the command lines are what the guest's /init ran (`wk X &`, forks
/// keeping their parent's), open files carry their paths and mounts, the
/// mount table has the guest's mounts with the FUSE connection's number as
/// its device, and signal dispositions are what a non-interactive shell
/// leaves its background jobs (SIGINT and SIGQUIT ignored, POSIX's rule
/// for asynchronous lists without job control).
#[test]
fn command_lines_files_mounts_and_signals_from_memory() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let init_sh = include_str!("../testdata/init.sh");
    let scenarios: Vec<&str> = init_sh
        .lines()
        .filter_map(|l| l.strip_prefix("wk ")?.strip_suffix(" &"))
        .collect();
    assert!(scenarios.contains(&"fuse"), "{scenarios:?}");
    // Each task of a scenario (and its forks, which do not exec) by comm.
    let by_comm = [
        ("wk-pipe", "pipe"),
        ("wk-vfork", "vfork"),
        ("wk-zombie-par", "zombie"),
        ("wk-stopped", "stop"),
        ("wk-sigpend", "sigpend"),
        ("wk-fused", "fuse"),
        ("wk-fuse-reader", "fuse"),
        ("wk-mutex-holder", "locks"),
        ("wk-rwsem-wait", "locks"),
        ("wk-sleeper", "sleep"),
    ];
    for f in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[f]);
        let t0 = std::time::Instant::now();
        let snap = wedge_vmcore::snapshot::build(&v, true);
        eprintln!("{f}: snapshot in {:?}", t0.elapsed());
        let p = |comm: &str| {
            snap.processes
                .iter()
                .find(|p| p.comm == comm)
                .unwrap_or_else(|| panic!("{f}: no {comm}"))
        };
        for (comm, what) in by_comm {
            assert!(scenarios.contains(&what), "{what} not in init.sh");
            let q = p(comm);
            assert_eq!(
                q.cmdline.value(),
                Some(&vec!["wk".to_string(), what.to_string()]),
                "{f}: {comm}"
            );
            assert_eq!(q.exe.value().map(String::as_str), Some("/bin/wk"), "{f}");
            assert_eq!(q.cwd.value().map(String::as_str), Some("/"), "{f}");
            // Started by `&` from a shell without job control.
            let ign: Vec<String> = q.ignored.iter().map(|s| s.to_string()).collect();
            assert_eq!(ign, ["SIGINT", "SIGQUIT"], "{f}: {comm} ignores");
            assert!(q.caught.is_empty(), "{f}: {comm} catches {}", q.caught);
            assert!(q.dispositions_missing.is_none());
        }
        // The shell running /init (busybox ash) catches SIGCHLD to reap
        // its jobs; its own command line is the interpreter's.
        let init = snap.process(1).expect("pid 1");
        assert_eq!(
            init.cmdline.value().map(|a| a.join(" ")).as_deref(),
            Some("/bin/busybox sh /init"),
            "{f}"
        );
        assert!(
            init.caught.contains(wedge_kernel::Signal::SIGCHLD),
            "{f}: init catches {}",
            init.caught
        );
        // The handler of each caught signal: ash's one signal_handler()
        // for both, and exactly the caught set.
        let hs: Vec<(u8, u64)> = init
            .handlers
            .iter()
            .map(|h| (h.signal.0, h.handler))
            .collect();
        assert_eq!(
            hs.iter().map(|h| h.0).collect::<Vec<_>>(),
            init.caught.iter().map(|s| s.0).collect::<Vec<_>>(),
            "{f}"
        );
        assert!(hs.windows(2).all(|w| w[0].1 == w[1].1), "{f}: {hs:x?}");
        assert!(hs.iter().all(|h| h.1 > 1), "{f}: {hs:x?}");
        assert!(p("wk-fuse-reader").handlers.is_empty(), "{f}");
        // A zombie and a kernel thread have no mm: empty command lines.
        assert_eq!(p("wk-zombie").cmdline.value(), Some(&Vec::new()), "{f}");
        assert_eq!(p("kthreadd").cmdline.value(), Some(&Vec::new()), "{f}");

        // Mounts: the ones /init made, at their paths, in init's
        // namespace (kdevtmpfs unshares one of its own).
        let ns = init.namespace("mnt");
        assert!(ns.is_some(), "{f}: {:?}", init.namespaces);
        let mount = |mp: &str| {
            snap.mounts
                .iter()
                .find(|m| m.mount_point == mp && m.mnt_ns == ns)
                .unwrap_or_else(|| panic!("{f}: no mount at {mp}: {:#?}", snap.mounts))
        };
        assert_eq!(mount("/proc").fs_type, "proc");
        assert_eq!(mount("/sys").fs_type, "sysfs");
        assert_eq!(mount("/tmp").fs_type, "tmpfs");
        let fuse = mount("/tmp/wk-fuse");
        assert_eq!(fuse.fs_type, "fuse.wk");
        assert_eq!(fuse.source, "wk");
        assert_eq!(fuse.major, 0);
        assert_eq!(fuse.parent_id, mount("/tmp").mount_id);
        assert_eq!(p("wk-fuse-reader").namespace("mnt"), ns);
        // The connection behind it, numbered as fusectl would: the
        // superblock's device minor; the unanswered requests wait on it.
        let conns = snap
            .fuse_connections
            .value()
            .expect("FUSE connections read");
        assert_eq!(conns.len(), 1, "{conns:?}");
        assert_eq!(conns[0].id, fuse.minor);
        assert!(conns[0].waiting.unwrap_or(0) >= 1, "{conns:?}");

        // Open files with their paths and mounts.
        let fds = |comm: &str| p(comm).fds.value().cloned().unwrap_or_default();
        let daemon = fds("wk-fused");
        let dev = daemon
            .iter()
            .find(|d| d.fd == 3)
            .unwrap_or_else(|| panic!("{f}: wk-fused fds {daemon:?}"));
        assert_eq!(dev.target, "/dev/fuse");
        assert_eq!(dev.flags.map(|fl| fl & 3), Some(2), "O_RDWR");
        assert_eq!(dev.mount_id, Some(mount("/").mount_id));
        let holder = fds("wk-rwsem-holder");
        let file = holder
            .iter()
            .find(|d| d.target == "/tmp/wk-rwsem")
            .unwrap_or_else(|| panic!("{f}: {holder:?}"));
        assert_eq!(file.mount_id, Some(mount("/tmp").mount_id));
        let pipe = fds("wk-pipe");
        assert!(
            pipe.iter()
                .any(|d| d.kind == wedge_model::FileKind::Pipe && d.target.starts_with("pipe:[")),
            "{f}: {pipe:?}"
        );
        assert!(p("wk-zombie").fds.value().is_some_and(|v| v.is_empty()));
    }
}

/// User memory through 5-level page tables: the `nokaslr` boot runs on
/// `-cpu max` (LA57), where a process's `mm->pgd` is a PML5.
#[test]
fn command_lines_through_five_level_page_tables() {
    let Some(fx) = boot_or_skip(Boot::NoKaslr).unwrap() else {
        return;
    };
    let v = open(&fx.dumps["elf"]);
    if !v.kernel.mem.arch.five_level {
        common::fixture::skip_or_fail(
            "this QEMU's `-cpu max` has no LA57: 4-level page tables only",
        );
        return;
    }
    let snap = wedge_vmcore::snapshot::build(&v, false);
    for (comm, what) in [("wk-fuse-reader", "fuse"), ("wk-sleeper", "sleep")] {
        let p = snap.processes.iter().find(|p| p.comm == comm).unwrap();
        assert_eq!(
            p.cmdline.value(),
            Some(&vec!["wk".to_string(), what.to_string()]),
            "{comm}"
        );
    }
}

/// Superblocks from the dump's memory: the ring of `s_list` walked from
/// pid 1's root, every mount's superblock on it by device number, the
/// guest's filesystem types by name, and none frozen (nothing froze one).
/// And each task's `in_iowait` bit.
#[test]
fn superblocks_from_memory_are_all_unfrozen() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    for f in ["elf", "kdump-zlib"] {
        let v = open(&fx.dumps[f]);
        let snap = wedge_vmcore::snapshot::build(&v, false);
        let sbs = snap
            .superblocks
            .value()
            .unwrap_or_else(|| panic!("{f}: {:?}", snap.superblocks));
        assert!(sbs.len() >= 5, "{f}: {sbs:#?}");
        for s in sbs {
            assert_eq!(s.frozen, wedge_model::FreezeLevel::Unfrozen, "{f}: {s:?}");
            assert!(s.holders.is_empty(), "{f}: {s:?}");
        }
        let init = snap.process(1).expect("pid 1");
        let ns = init.namespace("mnt");
        for m in snap.mounts.iter().filter(|m| m.mnt_ns == ns) {
            let s = snap
                .superblock(m.major, m.minor)
                .unwrap_or_else(|| panic!("{f}: no superblock for {m:?}: {sbs:#?}"));
            let base = m.fs_type.split('.').next().unwrap_or_default();
            assert_eq!(s.fs_type, base, "{f}: {m:?}");
        }
        let root = snap
            .mounts
            .iter()
            .find(|m| m.mount_point == "/" && m.mnt_ns == ns)
            .expect("root mount");
        assert!(snap.superblock(root.major, root.minor).is_some());
        for ty in ["proc", "sysfs", "tmpfs", "fuse"] {
            assert!(
                sbs.iter().any(|s| s.fs_type == ty),
                "{f}: no {ty}: {sbs:#?}"
            );
        }
        // task->in_iowait from the same BTF: read for every task; the FUSE
        // reader's request wait is not io_schedule().
        let all: Vec<&wedge_model::Thread> =
            snap.processes.iter().flat_map(|p| &p.threads).collect();
        assert!(all.iter().all(|t| t.in_iowait.is_some()), "{f}");
        let reader = snap
            .processes
            .iter()
            .find(|p| p.comm == "wk-fuse-reader")
            .expect("wk-fuse-reader");
        assert_eq!(reader.threads[0].in_iowait, Some(false), "{f}");
    }
}
