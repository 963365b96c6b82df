//! The BPF source on this machine's live kernel: reads of kernel memory,
//! one task-iterator pass, the blocker of a real rw-semaphore wait, nothing
//! left loaded after SIGKILL, and the reason given to a non-root user.

use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use wedge_bpf::{kallsyms_addrs, BlockerKind, Bpf, TaskRecord};
use wedge_testkit::{setup_or_skip, skip_or_fail, wait_until, FuseDaemon, InodeLockQueue};

type R = Result<(), Failed>;

/// This test binary re-executed for one job (see `main`).
const ROLE: &str = "WEDGE_BPF_TEST_ROLE";

/// include/linux/sched.h
const TASK_RUNNING: u32 = 0;
const TASK_INTERRUPTIBLE: u32 = 1;
const TASK_UNINTERRUPTIBLE: u32 = 2;
/// The run-state bits, without modifiers such as TASK_FREEZABLE (0x2000,
/// which futex and nanosleep waits add since 6.1).
fn run_state(state: u32) -> u32 {
    state & 0xff
}

fn check(ok: bool, what: impl FnOnce() -> String) -> R {
    if ok {
        Ok(())
    } else {
        Err(what().into())
    }
}

/// Opens the programs, or says why the test is skipped.
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
    kallsyms_addrs(&[name]).ok().and_then(|v| v[0])
}

fn tid_of_current_thread() -> i32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

fn record(tasks: &[TaskRecord], tid: i32) -> Option<&TaskRecord> {
    tasks.iter().find(|r| r.pid == tid)
}

/// `linux_banner` (where /proc/kallsyms has data symbols:
/// CONFIG_KALLSYMS_ALL) is the string /proc/version prints. Without it,
/// the test reads this thread's own task_struct at the address the
/// iterator gave and finds the comm it just set, and its pid: the bytes
/// are the kernel's, not zeros or another page.
fn read_matches_known_kernel_data() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    if let Some(addr) = sym("linux_banner") {
        let mut buf = vec![0u8; 512];
        bpf.read(addr, &mut buf)
            .map_err(|f| format!("linux_banner: {f}"))?;
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        let banner = String::from_utf8_lossy(&buf[..end]).into_owned();
        let version = std::fs::read_to_string("/proc/version").map_err(|e| e.to_string())?;
        check(banner.trim_end() == version.trim_end(), || {
            format!("banner at {addr:#x}: {banner:?} vs /proc/version {version:?}")
        })?;
    }
    let name = "wk-bpf-readme";
    let bpf = std::sync::Arc::new(bpf);
    let b2 = std::sync::Arc::clone(&bpf);
    let r = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || -> R {
            let tid = tid_of_current_thread();
            let tasks = b2.tasks()?;
            let me = record(&tasks.records, tid).ok_or("own thread not iterated")?;
            let mut ts = vec![0u8; 16 << 10];
            b2.read(me.task, &mut ts)
                .map_err(|f| format!("own task_struct: {f}"))?;
            let comm = ts
                .windows(name.len() + 1)
                .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0);
            check(comm.is_some(), || {
                format!("comm {name} not in task_struct at {:#x}", me.task)
            })?;
            // task_struct keeps `pid_t pid; pid_t tgid;` side by side.
            let me_tgid = std::process::id() as i32;
            let pair = [tid.to_ne_bytes(), me_tgid.to_ne_bytes()].concat();
            check(ts.windows(8).any(|w| w == pair), || {
                format!(
                    "pid {tid}, tgid {me_tgid} not in task_struct at {:#x}",
                    me.task
                )
            })
        })
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "reader thread panicked")?;
    r?;
    // Kernel text: every `__pfx_` symbol is the function padding before a
    // function (CONFIG_FUNCTION_PADDING_BYTES): NOPs or INT3s, never code.
    if let Some(pfx) = sym("__pfx_schedule") {
        let mut b = [0u8; 16];
        bpf.read(pfx, &mut b).map_err(|f| f.to_string())?;
        check(b.iter().all(|&c| c == 0x90 || c == 0xcc), || {
            format!("__pfx_schedule at {pfx:#x}: {b:02x?}")
        })?;
    }
    Ok(())
}

fn read_faults_name_the_address() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    let mut buf = [0u8; 64];
    let f = match bpf.read(0, &mut buf) {
        Err(f) => f,
        Ok(()) => return Err("a read of address 0 succeeded".into()),
    };
    check(
        f.addr == 0 && f.detail.contains("bpf_probe_read_kernel"),
        || format!("{f:?}"),
    )?;
    // A canonical kernel address in the unused hole between the direct
    // map's end and vmalloc (x86-64, 4-level: ffffc88000000000 starts the
    // hole after ffffc87fffffffff, documented unused).
    let hole = 0xffff_c87f_ffff_0000u64 + 8;
    let f = match bpf.read(hole, &mut buf) {
        Err(f) => f,
        Ok(()) => return Err(format!("a read of unmapped {hole:#x} succeeded").into()),
    };
    check(f.addr == hole, || format!("fault names {f}"))?;
    // A read running from mapped text into the hole names the first bad
    // page, and a batch keeps the good read.
    let text = sym("_text").ok_or("_text not in /proc/kallsyms")?;
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    let mut many: Vec<(u64, &mut [u8])> = vec![(text, &mut a), (0x10, &mut b)];
    let r = bpf.read_many(&mut many);
    check(r[0].is_ok() && r[1].is_err(), || format!("{r:?}"))?;
    check(a.iter().any(|&c| c != 0), || "text read as zeros".into())
}

fn read_one_megabyte_of_kernel_text() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    let text = sym("_text").ok_or("_text not in /proc/kallsyms")?;
    let mut buf = vec![0u8; 1 << 20];
    let t = std::time::Instant::now();
    bpf.read(text, &mut buf).map_err(|f| f.to_string())?;
    let dt = t.elapsed();
    check(buf.iter().any(|&c| c != 0), || "text is all zeros".into())?;
    // The same bytes read again at an odd offset and length agree.
    let mut piece = vec![0u8; 5000];
    bpf.read(text + 4000, &mut piece)
        .map_err(|f| f.to_string())?;
    check(piece[..] == buf[4000..9000], || "re-read differs".into())?;
    println!(
        "1 MiB of kernel text in {:.2} ms ({} bytes per run)",
        dt.as_secs_f64() * 1e3,
        Bpf::READ_BATCH_BYTES
    );
    Ok(())
}

/// Every tid under /proc/*/task.
fn proc_tids() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(t) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            out.extend(
                t.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()),
            );
        }
    }
    out
}

fn tasks_find_this_process_its_thread_and_a_sleeper() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    let me = std::process::id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ttx, trx) = std::sync::mpsc::channel::<i32>();
    let th = std::thread::Builder::new()
        .name("wk-bpf-waiter".into())
        .spawn(move || {
            let _ = ttx.send(tid_of_current_thread());
            let _ = rx.recv();
        })
        .map_err(|e| e.to_string())?;
    let tid = trx.recv().map_err(|e| e.to_string())?;
    let mut sleep = Command::new("sleep")
        .arg("30")
        .spawn()
        .map_err(|e| format!("sleep: {e}"))?;
    let sleep_pid = sleep.id() as i32;
    // Both asleep (S) before the pass.
    let asleep = |t: i32| {
        std::fs::read_to_string(format!("/proc/{t}/stat"))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().starts_with('S')))
            .unwrap_or(false)
    };
    wait_until(Duration::from_secs(3), || asleep(tid) && asleep(sleep_pid));
    let before = proc_tids();
    let runner_tid = tid_of_current_thread();
    let tasks = bpf.tasks();
    let after = proc_tids();
    let _ = sleep.kill();
    let _ = sleep.wait();
    let _ = tx.send(());
    let _ = th.join();
    let tasks = tasks?;

    let leader = record(&tasks.records, me).ok_or("this process not iterated")?;
    check(leader.tgid == me && !leader.comm.is_empty(), || {
        format!("leader: {leader:?}")
    })?;
    // The thread running the pass is on a CPU while the iterator reads it.
    let runner = record(&tasks.records, runner_tid).ok_or("the running thread not iterated")?;
    check(runner.tgid == me && runner.state == TASK_RUNNING, || {
        format!("running thread: {runner:?}")
    })?;
    check(leader.stack_base != 0 && leader.start_time_ns != 0, || {
        format!("leader: {leader:?}")
    })?;
    let t = record(&tasks.records, tid).ok_or("the thread not iterated")?;
    check(
        t.tgid == me && t.comm == "wk-bpf-waiter" && run_state(t.state) == TASK_INTERRUPTIBLE,
        || format!("thread: {t:?}"),
    )?;
    // A sleeper's saved stack pointer lies inside its own kernel stack
    // (THREAD_SIZE is 16 KiB on x86-64, more with KASAN).
    check(
        t.saved_sp > t.stack_base && t.saved_sp < t.stack_base + (64 << 10),
        || format!("thread sp {:#x} stack {:#x}", t.saved_sp, t.stack_base),
    )?;
    check(
        !t.stack.is_empty() && t.stack.iter().all(|&a| a >= 0xffff_8000_0000_0000),
        || format!("thread stack: {:x?}", t.stack),
    )?;
    check(
        t.ns_tids.first().map(|l| l.1) == Some(tid) && t.ns_tgids.first().map(|l| l.1) == Some(me),
        || format!("ns numbers {:?} {:?}", t.ns_tids, t.ns_tgids),
    )?;
    let inum = std::fs::read_link("/proc/self/ns/pid").ok().and_then(|l| {
        let s = l.to_string_lossy().into_owned();
        s.strip_prefix("pid:[")?
            .strip_suffix(']')?
            .parse::<u32>()
            .ok()
    });
    check(t.ns_tids.last().map(|l| l.0) == inum, || {
        format!("innermost pid ns of {:?} is not {inum:?}", t.ns_tids)
    })?;
    // Off-CPU time on the task's own CPU clock: the sleeper stopped running
    // before the rq clock read in the same pass.
    check(
        t.rq_clock_task_ns == 0 || t.exec_start_ns <= t.rq_clock_task_ns,
        || {
            format!(
                "exec_start {} rq clock {}",
                t.exec_start_ns, t.rq_clock_task_ns
            )
        },
    )?;
    let s = record(&tasks.records, sleep_pid).ok_or("sleep 30 not iterated")?;
    check(
        run_state(s.state) == TASK_INTERRUPTIBLE && s.comm == "sleep" && s.ppid == me,
        || format!("sleep: {s:?}"),
    )?;
    // The count: every tid present in /proc before and after the pass was
    // iterated, except thread groups the kernel hides from this process as
    // a whole (an init whose /proc/PID/ns links root cannot read here is
    // the sandbox's own, and its threads are not iterated either).
    let got: BTreeSet<i32> = tasks.records.iter().map(|r| r.pid).collect();
    let stable: BTreeSet<i32> = before.intersection(&after).copied().collect();
    let hidden_tgid = |tid: i32| {
        std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Tgid:"))
                    .and_then(|v| v.trim().parse::<i32>().ok())
            })
            .map(|tg| std::fs::read_link(format!("/proc/{tg}/ns/pid")).is_err())
            .unwrap_or(true)
    };
    let lost: Vec<i32> = stable
        .difference(&got)
        .copied()
        .filter(|&t| !hidden_tgid(t))
        .collect();
    check(lost.len() <= 3, || {
        format!(
            "{} records vs {} stable /proc tids; not iterated: {lost:?}",
            tasks.records.len(),
            stable.len()
        )
    })?;
    println!(
        "{} records, {} /proc tids, pass {:.2} ms, missing {:?}",
        tasks.records.len(),
        stable.len(),
        tasks.pass_ms,
        tasks.missing
    );
    Ok(())
}

fn blocker_names_the_rwsem_owner() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    let tasks = bpf.tasks()?;
    if tasks.missing.iter().any(|m| m.starts_with("task->blocker")) {
        skip_or_fail(&format!(
            "kernel without task->blocker: {:?}",
            tasks.missing
        ));
        return Ok(());
    }
    let b = record(&tasks.records, q.second_pid).ok_or("second creator not iterated")?;
    check(run_state(b.state) == TASK_UNINTERRUPTIBLE, || {
        format!("second: {b:?}")
    })?;
    let bl = b
        .blocker
        .as_ref()
        .ok_or_else(|| format!("second creator has no blocker: {b:?}"))?;
    // open_last_lookups() takes the directory's i_rwsem for writing for
    // O_CREAT (inode_lock = down_write), and the first creator holds it.
    check(bl.kind == BlockerKind::RwsemWriter && bl.lock != 0, || {
        format!("{bl:?}")
    })?;
    check(
        bl.owner_pid == Some(q.first_pid) && !bl.reader_owned,
        || {
            format!(
                "owner {:?}, first creator {}: {bl:?}",
                bl.owner_pid, q.first_pid
            )
        },
    )?;
    let a = record(&tasks.records, q.first_pid).ok_or("first creator not iterated")?;
    check(bl.owner_task == a.task, || {
        format!("owner task {:#x} vs first's {:#x}", bl.owner_task, a.task)
    })?;
    // The holder itself waits on FUSE, not on a lock.
    check(a.blocker.is_none(), || format!("first: {a:?}"))
}

/// `wedge record`'s kept pass (Bpf::reuse_stacks) does not walk again the
/// stack of a task that has not run since the last pass: a FUSE creator
/// parked in D and the one waiting behind it on the directory's i_rwsem
/// keep the frames of the pass before, and those are the frames a one-shot
/// pass (what `wedge ps`/`why` use) walks now. A one-shot pass reuses
/// nothing.
fn kept_pass_reuses_the_stack_a_fresh_walk_gives() -> R {
    let Some(kept) = open() else { return Ok(()) };
    let fs = setup_or_skip!(FuseDaemon::start());
    let q = setup_or_skip!(InodeLockQueue::start(&fs));
    // Enough idle threads that a pass spans several read()s of the
    // iterator: the record that does not fit the seq_file buffer is made
    // again by the next read, which must walk it again, not reuse it.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let idle: Vec<_> = (0..2000)
        .filter_map(|_| {
            let rx = rx.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || drop(rx.lock().map(|r| r.recv())))
                .ok()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    kept.reuse_stacks()?;
    let first = kept.tasks()?;
    check(first.records.iter().all(|r| !r.stack_reused), || {
        "the first kept pass reused a stack it never walked".into()
    })?;
    let second = kept.tasks()?;
    let fresh = open().ok_or("BPF opened once but not twice")?.tasks()?;
    check(fresh.records.iter().all(|r| !r.stack_reused), || {
        "a one-shot pass reused a stack".into()
    })?;
    for pid in [q.first_pid, q.second_pid] {
        let k = record(&second.records, pid).ok_or("parked task not in the kept pass")?;
        let f = record(&fresh.records, pid).ok_or("parked task not in the fresh pass")?;
        check(k.stack_reused, || {
            format!("parked {pid} walked again: {k:?}")
        })?;
        check(!k.stack.is_empty() && k.stack == f.stack, || {
            format!("parked {pid}: reused {:x?}, fresh {:x?}", k.stack, f.stack)
        })?;
    }
    // This thread runs the pass: it is on a CPU, walked every time.
    let me = tid_of_current_thread();
    let r = record(&second.records, me).ok_or("this thread not iterated")?;
    check(!r.stack_reused, || {
        format!("the running thread reused: {r:?}")
    })?;
    let reused = second.records.iter().filter(|r| r.stack_reused).count();
    eprintln!(
        "kept pass: {reused} of {} stacks reused",
        second.records.len()
    );
    drop(tx);
    for h in idle {
        let _ = h.join();
    }
    // Most of the idle threads did not run between the passes.
    check(reused > 1000, || format!("only {reused} stacks reused"))
}

/// The trimmed BTF (src/btf_trim.rs) relocates the program exactly as the
/// whole BTF does: the same facts missing, the same members read.
fn trimmed_btf_relocates_like_the_whole() -> R {
    let Some(small) = open() else { return Ok(()) };
    check(small.relocated_against_trimmed_btf(), || {
        "open() fell back to the whole BTF".into()
    })?;
    let whole = Bpf::open_with_whole_btf().map_err(|u| u.to_string())?;
    check(!whole.relocated_against_trimmed_btf(), || {
        "whole is trimmed?".into()
    })?;
    let me = std::process::id() as i32;
    let a = small.tasks()?;
    let b = whole.tasks()?;
    check(a.missing == b.missing, || {
        format!("{:?} vs {:?}", a.missing, b.missing)
    })?;
    let (x, y) = (
        record(&a.records, me).ok_or("not in trimmed pass")?,
        record(&b.records, me).ok_or("not in whole pass")?,
    );
    check(
        x.task == y.task
            && x.comm == y.comm
            && x.tgid == y.tgid
            && x.ppid == y.ppid
            && x.flags == y.flags
            && x.stack_base == y.stack_base
            && x.start_time_ns == y.start_time_ns
            && x.ns_tids == y.ns_tids
            && x.ns_tgids == y.ns_tgids
            && x.in_iowait.is_some() == y.in_iowait.is_some(),
        || format!("trimmed {x:?}\nwhole {y:?}"),
    )?;
    // Kernel threads too (kthreadd: pid 2 in the initial namespace).
    let (k, l) = (record(&a.records, 2), record(&b.records, 2));
    check(
        k.map(|k| (k.comm.clone(), k.flags, k.state))
            == l.map(|l| (l.comm.clone(), l.flags, l.state)),
        || format!("{k:?} vs {l:?}"),
    )
}

/// A reader of a loop device whose backing file is on a FUSE daemon that
/// parks its READs: the reader sleeps on the block device's folio lock
/// (folio_wait_bit_common → io_schedule: `in_iowait` set), the loop worker
/// (a kworker) in FUSE's request_wait_answer, which is not io_schedule
/// (`in_iowait` clear). Torn down in Drop, also on panic: the daemon
/// answers, the reader exits, the loop device is detached, the FUSE mount
/// goes.
struct LoopOnFuse {
    reader: std::process::Child,
    dev: wedge_testkit::LoopDevice,
    fs: FuseDaemon,
}

impl Drop for LoopOnFuse {
    fn drop(&mut self) {
        let _ = self.fs.release();
        let _ = self.reader.kill();
        let _ = self.reader.wait();
        let _ = &self.dev;
    }
}

fn in_iowait_is_the_kernels() -> R {
    let Some(bpf) = open() else { return Ok(()) };
    let fs = setup_or_skip!(FuseDaemon::start());
    let dev = setup_or_skip!(wedge_testkit::LoopDevice::attach(&fs.path("stall")));
    let reader = Command::new("dd")
        .arg(format!("if={}", dev.dev_path().display()))
        .args(["of=/dev/null", "bs=4096", "count=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dd: {e}"))?;
    let s = LoopOnFuse { reader, dev, fs };
    let parked =
        s.fs.wait_parked("READ", None, Duration::from_secs(10))
            .map_err(|e| format!("the loop worker's READ never reached the daemon: {e}"))?;
    let rpid = s.reader.id() as i32;
    let mut tasks = bpf.tasks()?;
    // The reader reaches its folio wait just after submitting the read.
    wait_until(Duration::from_secs(10), || {
        tasks = bpf.tasks().unwrap_or_else(|_| tasks.clone());
        record(&tasks.records, rpid).is_some_and(|r| r.state & TASK_UNINTERRUPTIBLE != 0)
    });
    let r = record(&tasks.records, rpid).ok_or("reader not iterated")?;
    check(r.state & TASK_UNINTERRUPTIBLE != 0, || {
        format!("reader: {r:?}")
    })?;
    check(r.in_iowait == Some(true), || {
        format!("a reader in the block layer's folio wait is in io_schedule: {r:?}")
    })?;
    let w = record(&tasks.records, parked.pid).ok_or("loop worker not iterated")?;
    check(w.comm.starts_with("kworker"), || format!("worker: {w:?}"))?;
    check(w.in_iowait == Some(false), || {
        format!("a FUSE request wait is not io_schedule: {w:?}")
    })?;
    drop(s);
    Ok(())
}

/// An ext4 on a loop device frozen with fsfreeze: the superblock walk of
/// the live kernel shows it SB_FREEZE_COMPLETE, frozen by user space, at
/// its mount's major:minor; the machine's own filesystems unfrozen.
fn superblocks_show_a_frozen_ext4() -> R {
    if open().is_none() {
        return Ok(());
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpf-freeze");
    // Undoes the loop device, the mount and the freeze if this process
    // dies before its Drops do.
    let g = setup_or_skip!(wedge_testkit::Guardian::start());
    let dev = setup_or_skip!(wedge_testkit::LoopDevice::new(&dir, 32, &[]));
    setup_or_skip!(dev.guard(&g));
    let mnt = dir.join("mnt");
    setup_or_skip!(g.arm("umount", &mnt));
    let mut m = setup_or_skip!(wedge_testkit::MountedFs::make(
        &dev.dev_path(),
        &mnt,
        wedge_testkit::FsKind::Ext4,
    ));
    // The mount's major:minor as mountinfo prints it (field 3).
    let mp = m.mountpoint().display().to_string();
    let majmin = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(mp.as_str()))
        .and_then(|l| l.split(' ').nth(2).map(str::to_string))
        .ok_or_else(|| format!("{mp} not in mountinfo"))?;
    let (major, minor) = majmin
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("mountinfo major:minor {majmin:?}"))?;
    setup_or_skip!(g.arm("thaw", &mnt));
    setup_or_skip!(m.freeze());
    let k = wedge_bpf::live::LiveKernel::open().map_err(|u| u.to_string());
    let walked = k.as_ref().map_err(Clone::clone).and_then(|k| {
        let tasks = k.tasks()?;
        let mut limits = Vec::new();
        Ok(wedge_bpf::snapshot::live_superblocks(k, tasks, &mut limits))
    });
    // Thawed and gone before any check can fail.
    m.thaw();
    drop(m);
    drop(dev);
    g.disarm();
    let walked = walked?;
    let sbs = walked
        .value()
        .ok_or_else(|| format!("superblocks: {walked:?}"))?;
    let s = sbs
        .iter()
        .find(|s| (s.major, s.minor) == (major, minor))
        .ok_or_else(|| format!("no superblock {major}:{minor} among {sbs:#?}"))?;
    check(
        s.frozen == wedge_model::FreezeLevel::Complete && s.fs_type == "ext4",
        || format!("{s:?}"),
    )?;
    check(s.holders == ["user"], || {
        format!("fsfreeze is user space: {s:?}")
    })?;
    // Everything else unfrozen — but other tests on this machine freeze
    // their own filesystems on their own loop devices: those are left out.
    let others: Vec<_> = sbs
        .iter()
        .filter(|o| o.address != s.address && o.frozen.is_frozen() && o.major != 7)
        .collect();
    check(others.is_empty(), || format!("frozen: {others:#?}"))?;
    for ty in ["proc", "sysfs", "tmpfs"] {
        check(sbs.iter().any(|o| o.fs_type == ty), || {
            format!("no {ty} superblock: {sbs:#?}")
        })?;
    }
    Ok(())
}

/// The ids of loaded programs named wedge_*.
fn wedge_program_ids() -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .flatten()
        .filter(|p| p.name_as_str().is_some_and(|n| n.starts_with("wedge_")))
        .map(|p| p.id())
        .collect()
}

fn nothing_stays_loaded_after_sigkill() -> R {
    if open().is_none() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(ROLE, "hold")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let ids: Vec<u32> = line
        .trim()
        .strip_prefix("ids ")
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let loaded = wedge_program_ids();
    let present = !ids.is_empty() && ids.iter().all(|i| loaded.contains(i));
    let _ = child.kill();
    let _ = child.wait();
    check(present, || {
        format!("the child's programs {ids:?} ({line:?}) not among loaded {loaded:?}")
    })?;
    // Programs are freed after an RCU grace period once their last fd is
    // closed; other engineers' wedge runs may hold their own, so only the
    // child's ids count.
    let gone = wait_until(Duration::from_secs(3), || {
        let now = wedge_program_ids();
        ids.iter().all(|i| !now.contains(i))
    });
    check(gone, || {
        format!(
            "programs {ids:?} still loaded after SIGKILL: {:?}",
            wedge_program_ids()
        )
    })
}

fn not_root_is_told_why() -> R {
    if open().is_none() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe)
        .env(ROLE, "open")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            skip_or_fail(&format!("setpriv: {e}"));
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if text.is_empty() {
        skip_or_fail(&format!("the test binary did not run as nobody: {err}"));
        return Ok(());
    }
    check(
        text.starts_with("unavailable: ") && text.contains("not root") && text.contains("CAP_BPF"),
        || format!("as nobody: {text:?} {err:?}"),
    )
}

/// Jobs of this binary re-executed: `hold` opens Bpf, prints its program
/// ids and waits to be killed; `open` prints what Bpf::open() said.
fn role(role: &str) -> ! {
    match (role, Bpf::open()) {
        ("hold", Ok(b)) => {
            let ids: Vec<String> = b.program_ids().iter().map(u32::to_string).collect();
            println!("ids {}", ids.join(","));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        (_, Ok(_)) => println!("opened"),
        (_, Err(u)) => println!("unavailable: {u}"),
    }
    std::process::exit(0)
}

fn main() {
    if let Ok(r) = std::env::var(ROLE) {
        role(&r);
    }
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test(
            "read_matches_known_kernel_data",
            read_matches_known_kernel_data,
        ),
        Trial::test("read_faults_name_the_address", read_faults_name_the_address),
        Trial::test(
            "read_one_megabyte_of_kernel_text",
            read_one_megabyte_of_kernel_text,
        ),
        Trial::test(
            "tasks_find_this_process_its_thread_and_a_sleeper",
            tasks_find_this_process_its_thread_and_a_sleeper,
        ),
        Trial::test(
            "blocker_names_the_rwsem_owner",
            blocker_names_the_rwsem_owner,
        ),
        Trial::test(
            "nothing_stays_loaded_after_sigkill",
            nothing_stays_loaded_after_sigkill,
        ),
        Trial::test("not_root_is_told_why", not_root_is_told_why),
        Trial::test("in_iowait_is_the_kernels", in_iowait_is_the_kernels),
        Trial::test(
            "kept_pass_reuses_the_stack_a_fresh_walk_gives",
            kept_pass_reuses_the_stack_a_fresh_walk_gives,
        ),
        Trial::test(
            "superblocks_show_a_frozen_ext4",
            superblocks_show_a_frozen_ext4,
        ),
        Trial::test(
            "trimmed_btf_relocates_like_the_whole",
            trimmed_btf_relocates_like_the_whole,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
