//! Issue 14: storage wedges, built for real on this machine by the test kit
//! (wedge_testkit::storage) and judged by the real binary.
//!
//! - a reader of a loop device whose backing file is on the kit's FUSE
//!   daemon, which parks the loop worker's READ: reader → loopN → loop
//!   worker → FUSE connection → daemon, and the remedy aborts that
//!   connection, saying what is lost;
//! - ext4, xfs and btrfs on loop devices frozen with `fsfreeze -f`, writers
//!   of three kinds waiting: "frozen", the mountpoint, `fsfreeze -u`; exact
//!   (High) with BPF reading the superblock, still "frozen" and never an
//!   inode lock with `--no-bpf`;
//! - the kernel's real storage messages, made by a FUSE disk answering EIO
//!   under ext4 on a loop device: typed events field by field, tied to the
//!   device and its mount in the live verdict;
//! - `wedge storage` and the snapshot's block devices on the loop-on-FUSE
//!   scene: the backing file, requests in flight that do not complete.
//!
//! Scenes run concurrently with other tests and other people's scenes:
//! every assertion is about the scene's own pids and devices. Nothing waits
//! on time: the kit polls /proc for each state with a generous bound.

mod common;

use common::{check, conforms, log_events, scratch, wedge, Run};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::path::Path;
use wedge_testkit::{
    setup_or_skip, skip_or_fail, FrozenFs, FsKind, LoopEio, LoopOnFuse, WriterKind,
};

type R = Result<(), Failed>;

/// Where the kit captured this kernel's lines (see its README).
const EIO_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wedge-klog/tests/data/loop-eio-ext4-6.18.44.kmsg"
);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Every limitation of a document, as "what: why".
fn limitations(doc: &Value) -> Vec<String> {
    doc["limitations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "{}: {}",
                l["what"].as_str().unwrap_or_default(),
                l["why"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Whether the run that made `doc` read the kernel through BPF. Not root, or
/// a limitation that is a missing capability of the machine or the build:
/// skipped (a failure under WEDGE_REQUIRE_ALL).
fn bpf_used(doc: &Value) -> bool {
    match limitations(doc).into_iter().find(|l| l.contains("BPF")) {
        None => true,
        Some(l) => {
            skip_or_fail(&format!("the exact checks need BPF: {l}"));
            false
        }
    }
}

/// Whether `hay` contains every needle, in this order.
fn in_order(hay: &str, needles: &[String]) -> bool {
    let mut rest = hay;
    for n in needles {
        match rest.find(n.as_str()) {
            Some(i) => rest = &rest[i + n.len()..],
            None => return false,
        }
    }
    true
}

/// The findings of a verdict about any of `pids`.
fn findings_about<'a>(v: &'a Value, pids: &[i32]) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["pids"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|x| pids.iter().any(|&q| x.as_i64() == Some(i64::from(q))))
            })
        })
        .collect()
}

/// Whether a text warns that something is lost (the data-loss note of a
/// destructive remedy).
fn warns_of_loss(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["lose", "lost", "loss", "discard"]
        .iter()
        .any(|w| t.contains(w))
}

fn shown(run: &Run) -> String {
    format!("exit {:?}\n{}\n{}", run.code, run.stdout, run.stderr)
}

// ---------------------------------------------------------------------------
// Loop device on FUSE.
// ---------------------------------------------------------------------------

/// reader → loopN → loop worker → FUSE connection N → daemon, in `wedge
/// why`, in the verdict and in their JSON; the remedy aborts the connection
/// and says what is lost.
fn loop_on_fuse_chain() -> R {
    let s = setup_or_skip!(LoopOnFuse::start());
    let (reader, worker) = (s.reader_pid, s.worker_tid);
    let dev = s.loop_device().name().to_string();
    let conn = s.daemon().conn();
    let daemon = s.daemon().daemon_pid();
    let abort = format!("echo 1 > /sys/fs/fuse/connections/{conn}/abort");
    let chain = [
        dev.clone(),
        worker.to_string(),
        format!("FUSE connection {conn}"),
        daemon.to_string(),
    ];

    let why = wedge(&["why", &reader.to_string()]);
    println!("wedge why {reader}:\n{}", why.stdout);
    let waits = common::chains(&why.stdout).unwrap_or(&why.stdout);
    check(in_order(waits, &chain), || {
        format!("wedge why {reader}: no chain {chain:?}:\n{}", shown(&why))
    })?;
    check(why.stdout.contains(&abort), || {
        format!("wedge why {reader}: no remedy {abort:?}:\n{}", shown(&why))
    })?;
    check(warns_of_loss(&why.stdout), || {
        format!(
            "wedge why {reader}: the abort remedy does not say what is lost:\n{}",
            why.stdout
        )
    })?;
    check(why.code == Some(1), || format!("why exit {:?}", why.code))?;

    let verdict = wedge(&[]);
    println!("wedge:\n{}", verdict.stdout);
    check(in_order(&verdict.stdout, &chain), || {
        format!("wedge: no chain {chain:?}:\n{}", shown(&verdict))
    })?;
    check(verdict.stdout.contains(&abort), || {
        format!("wedge: no remedy {abort:?}:\n{}", shown(&verdict))
    })?;

    let v = wedge(&["--json"]).json();
    conforms("verdict.json", "wedge --json (loop on FUSE)", &v)?;
    let about = findings_about(&v, &[reader]);
    let f = about
        .iter()
        .find(|f| {
            let chain = f["chain"].to_string();
            chain.contains(&dev) && chain.contains(&format!("FUSE connection {conn}"))
        })
        .ok_or_else(|| {
            format!("wedge --json: no finding about {reader} whose chain names {dev} and FUSE connection {conn}: {about:?}")
        })?;
    check(f["severity"] == "critical", || f.to_string())?;
    let remedies = f["remedies"].to_string();
    check(
        remedies.contains(&abort) && warns_of_loss(&remedies),
        || format!("finding's remedies lack {abort:?} with its data-loss warning: {f}"),
    )?;

    let w = wedge(&["why", &reader.to_string(), "--json"]).json();
    conforms("why.json", &format!("wedge why {reader} --json"), &w)?;
    let snap = wedge(&["ps", "--json"]).json();
    conforms("snapshot.json", "wedge ps --json (loop on FUSE)", &snap)?;
    Ok(())
}

/// `wedge storage` lists the loop device with its backing file on the FUSE
/// mount; with the daemon parked its requests stay in flight and none
/// completes (in the snapshot's block devices too).
fn storage_view_shows_stalled_loop() -> R {
    let s = setup_or_skip!(LoopOnFuse::start());
    let dev = s.loop_device().name().to_string();
    let disk = s.daemon().path("disk").display().to_string();

    let run = wedge(&["storage"]);
    println!("wedge storage:\n{}", run.stdout);
    check(run.code.is_some_and(|c| c <= 1), || shown(&run))?;
    // The device's row (NAME MAJ:MIN KIND SIZE FLIGHT I/O …) and the
    // indented lines under it.
    let mut lines = run.stdout.lines();
    let row = lines
        .find(|l| l.split_whitespace().next() == Some(dev.as_str()))
        .ok_or_else(|| format!("wedge storage: no row for {dev}:\n{}", shown(&run)))?;
    let under: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).collect();
    let cols: Vec<&str> = row.split_whitespace().collect();
    let flight: u64 = cols.get(4).and_then(|c| c.parse().ok()).unwrap_or(0);
    check(flight >= 1, || {
        format!("wedge storage: {dev} has nothing in flight: {row}")
    })?;
    check(cols.get(5) == Some(&"STALLED"), || {
        format!("wedge storage: {dev}'s I/O not called stalled while the daemon parks it: {row}")
    })?;
    check(
        under
            .iter()
            .any(|l| l.contains(&format!("backing file {disk}")) && l.contains("fuse")),
        || format!("wedge storage: {dev} without its backing file {disk} on FUSE: {under:?}"),
    )?;
    let doc = wedge(&["storage", "--json"]).json();
    conforms("storage.json", "wedge storage --json", &doc)?;
    let in_doc = doc["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["device"]["name"] == dev.as_str()))
        .ok_or_else(|| format!("wedge storage --json: no device {dev}"))?;
    check(
        in_doc["device"]["backing"]["file"] == disk.as_str() && in_doc["stalled"] == true,
        || format!("wedge storage --json: {dev} not stalled on {disk}: {in_doc}"),
    )?;

    let snap = wedge(&["ps", "--json"]).json();
    let d = snap["block_devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == dev.as_str()))
        .ok_or_else(|| {
            format!(
                "snapshot has no block device {dev}: {}",
                snap["block_devices"]
            )
        })?;
    check(d["kind"] == "loop", || d.to_string())?;
    check(d["backing"]["file"] == disk.as_str(), || {
        format!("{dev}: backing file {} (want {disk})", d["backing"])
    })?;
    let inflight = d["inflight"]["reads"].as_u64().unwrap_or(0)
        + d["inflight"]["writes"].as_u64().unwrap_or(0);
    check(inflight >= 1, || format!("{dev}: nothing in flight: {d}"))?;
    let done = |s: &Value| {
        s["reads_completed"].as_u64().unwrap_or(0) + s["writes_completed"].as_u64().unwrap_or(0)
    };
    let p = &d["progress"];
    check(
        p.is_object() && done(&p["first"]) == done(&p["second"]),
        || format!("{dev}: I/O completed while the daemon parks every request: {p}"),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Frozen filesystems.
// ---------------------------------------------------------------------------

/// `major:minor` of the mount at `mnt` (its superblock's s_dev), from
/// mountinfo.
fn mount_dev(mnt: &Path) -> Option<(u64, u64)> {
    let want = mnt.to_str()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        if f.get(4) != Some(&want) {
            return None;
        }
        let (a, b) = f.get(2)?.split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    })
}

/// Mount points whose superblock the snapshot (kernel memory, through BPF)
/// shows frozen.
fn frozen_mountpoints(snap: &Value) -> Vec<String> {
    let devs: Vec<(u64, u64)> = snap["superblocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["frozen"].as_str().is_some_and(|f| f != "unfrozen"))
        .filter_map(|s| Some((s["major"].as_u64()?, s["minor"].as_u64()?)))
        .collect();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (a, b) = f.get(2)?.split_once(':')?;
            let dev = (a.parse().ok()?, b.parse().ok()?);
            devs.contains(&dev)
                .then(|| f.get(4).map(|m| m.to_string()))?
        })
        .collect()
}

/// The mount points a text (or a JSON document's text) tells to thaw.
fn thawed_in(text: &str) -> Vec<String> {
    text.match_indices("fsfreeze -u ")
        .map(|(i, n)| {
            text[i + n.len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\\')
                .collect()
        })
        .collect()
}

/// One frozen filesystem at a time from this binary: with two frozen, a
/// create or mkdir (whose filesystem only its path argument names) is
/// ambiguous. Other people's frozen filesystems can still be there: the
/// checks below allow for them.
static FROZEN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn frozen(kind: FsKind) -> R {
    let _one = FROZEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch(&format!("frozen-{}", kind.name()));
    let f = setup_or_skip!(FrozenFs::start(kind, dir.path()));
    let mnt = f.mountpoint().display().to_string();
    let thaw = format!("fsfreeze -u {mnt}");
    let pids = f.writer_pids();
    let label = kind.name();
    let write_pid = f
        .writers()
        .iter()
        .find(|w| w.kind == WriterKind::Write)
        .map(|w| w.pid);

    // With BPF the snapshot carries the superblock's own freeze level.
    let snap = wedge(&["ps", "--json"]).json();
    conforms(
        "snapshot.json",
        &format!("[{label}] wedge ps --json"),
        &snap,
    )?;
    let bpf = bpf_used(&snap);
    let frozen_now = if bpf {
        let (maj, min) =
            mount_dev(f.mountpoint()).ok_or_else(|| format!("{mnt} not in mountinfo"))?;
        let sb = snap["superblocks"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["major"].as_u64() == Some(maj) && s["minor"].as_u64() == Some(min))
            })
            .ok_or_else(|| {
                format!(
                    "[{label}] no superblock {maj}:{min}: {}",
                    snap["superblocks"]
                )
            })?;
        check(sb["frozen"] == "complete", || {
            format!("[{label}] superblock {maj}:{min} after fsfreeze -f: {sb}")
        })?;
        check(sb["fs_type"] == label, || sb.to_string())?;
        frozen_mountpoints(&snap)
    } else {
        Vec::new()
    };
    // Ours is the only frozen filesystem on the machine: then every writer
    // is on it, and wedge can say so for a create or mkdir too.
    let alone = frozen_now == [mnt.clone()];
    if bpf && !alone {
        println!("[{label}] other frozen filesystems here: {frozen_now:?}");
    }
    // A thaw of a filesystem kernel memory shows not frozen is wrong.
    let unfrozen_named = |text: &str| -> Vec<String> {
        if !bpf {
            return Vec::new();
        }
        thawed_in(text)
            .into_iter()
            .filter(|m| !frozen_now.contains(m))
            .collect()
    };

    for w in f.writers() {
        let why = wedge(&["why", &w.pid.to_string()]);
        println!(
            "[{label}] wedge why {} ({:?}):\n{}",
            w.pid, w.kind, why.stdout
        );
        let text = why.stdout.to_ascii_lowercase();
        check(text.contains("frozen"), || {
            format!(
                "[{label}] wedge why {} ({:?}): not named frozen:\n{}",
                w.pid,
                w.kind,
                shown(&why)
            )
        })?;
        check(!text.contains("inode lock"), || {
            format!(
                "[{label}] wedge why {}: a frozen filesystem called an inode lock:\n{}",
                w.pid, why.stdout
            )
        })?;
        if w.kind == WriterKind::Write || alone {
            check(
                why.stdout.contains(&mnt) && why.stdout.contains(&thaw),
                || {
                    format!(
                        "[{label}] wedge why {} ({:?}): no {mnt} and remedy {thaw:?}:\n{}",
                        w.pid,
                        w.kind,
                        shown(&why)
                    )
                },
            )?;
        }
        let wrong = unfrozen_named(&why.stdout);
        check(wrong.is_empty(), || {
            format!(
                "[{label}] wedge why {} ({:?}): tells to thaw {wrong:?}, which kernel memory shows not frozen (frozen: {frozen_now:?}):\n{}",
                w.pid,
                w.kind,
                why.stdout
            )
        })?;
    }

    let check_verdict = |args: &[&str], exact: bool| -> R {
        let what = format!("[{label}] wedge {}", args.join(" "));
        let v = wedge(args).json();
        conforms("verdict.json", &what, &v)?;
        if exact && !bpf {
            return Ok(());
        }
        let about = findings_about(&v, &pids);
        let text = serde_json::to_string(&about).unwrap_or_default();
        check(!text.to_ascii_lowercase().contains("inode lock"), || {
            format!("{what}: an inode lock among the writers' findings: {text}")
        })?;
        let frozen: Vec<&&Value> = about
            .iter()
            .filter(|f| f.to_string().to_ascii_lowercase().contains("frozen"))
            .collect();
        for p in &pids {
            check(
                frozen.iter().any(|fd| {
                    fd["pids"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x.as_i64() == Some(i64::from(*p))))
                }),
                || format!("{what}: writer {p} is in no frozen finding: {text}"),
            )?;
        }
        for fd in &frozen {
            let s = fd.to_string();
            // The `write` writer's open fd names its filesystem, even to
            // /proc alone; a create or mkdir names it only in its path
            // argument: exact with kernel memory when ours is the only
            // frozen one, a guess (said to be one) otherwise.
            let has_write = fd["pids"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_i64().map(|x| x as i32) == write_pid));
            if has_write || (exact && alone) {
                check(s.contains(&mnt) && s.contains(&thaw), || {
                    format!("{what}: a frozen finding without {mnt} or {thaw:?}: {fd}")
                })?;
            }
            if has_write {
                let names = thawed_in(&s);
                check(names.iter().all(|m| *m == mnt), || {
                    format!("{what}: the open file's filesystem is {mnt}, the finding thaws {names:?}: {fd}")
                })?;
            }
            let wrong = unfrozen_named(&s);
            check(!exact || wrong.is_empty(), || {
                format!("{what}: tells to thaw {wrong:?}, which kernel memory shows not frozen (frozen: {frozen_now:?}): {fd}")
            })?;
            let conf = fd["confidence"].as_str().unwrap_or_default();
            if exact {
                check(conf == "high", || {
                    format!("{what}: with BPF the superblock's freeze state is exact, confidence {conf}: {fd}")
                })?;
            } else {
                check(conf != "high", || {
                    format!(
                        "{what}: --no-bpf cannot read the freeze state, yet confidence high: {fd}"
                    )
                })?;
            }
        }
        Ok(())
    };
    check_verdict(&["--json"], true)?;
    check_verdict(&["--json", "--no-bpf"], false)
}

/// Two frozen filesystems at once (a snapshot agent freezing every
/// filesystem does this): a create or mkdir, whose filesystem only its path
/// argument names, may be ambiguous between them, but it is never put on a
/// filesystem kernel memory shows unfrozen (its cwd's, say).
fn two_frozen_filesystems() -> R {
    let _one = FROZEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("two-frozen");
    let a = setup_or_skip!(FrozenFs::start(FsKind::Ext4, dir.path()));
    let b = setup_or_skip!(FrozenFs::start(FsKind::Ext4, dir.path()));
    let snap = wedge(&["ps", "--json"]).json();
    if !bpf_used(&snap) {
        return Ok(());
    }
    let frozen_now = frozen_mountpoints(&snap);
    for m in [a.mountpoint(), b.mountpoint()] {
        let m = m.display().to_string();
        check(frozen_now.contains(&m), || {
            format!("{m} not frozen in kernel memory: {frozen_now:?}")
        })?;
    }
    for w in a.writers().iter().chain(b.writers()) {
        let why = wedge(&["why", &w.pid.to_string()]);
        check(why.stdout.to_ascii_lowercase().contains("frozen"), || {
            format!(
                "wedge why {} ({:?}): not named frozen:\n{}",
                w.pid,
                w.kind,
                shown(&why)
            )
        })?;
        let wrong: Vec<String> = thawed_in(&why.stdout)
            .into_iter()
            .filter(|m| !frozen_now.contains(m))
            .collect();
        check(wrong.is_empty(), || {
            format!(
                "wedge why {} ({:?}): tells to thaw {wrong:?}, which kernel memory shows not frozen (frozen: {frozen_now:?}):\n{}",
                w.pid, w.kind, why.stdout
            )
        })?;
    }
    Ok(())
}

fn frozen_ext4() -> R {
    frozen(FsKind::Ext4)
}

fn frozen_xfs() -> R {
    frozen(FsKind::Xfs)
}

fn frozen_btrfs() -> R {
    frozen(FsKind::Btrfs)
}

// ---------------------------------------------------------------------------
// The kernel's storage messages.
// ---------------------------------------------------------------------------

/// The events of `wedge log FILE` with their checks against the kit's lines
/// for device `dev`: a block I/O error (op WRITE and a sector), a buffer I/O
/// error (a logical block), an ext4 error that remounted read-only.
fn check_storage_events(file: &Path, dev: &str, what: &str) -> R {
    let (run, events) = log_events(&[file.to_str().unwrap_or_default()]);
    check(run.code.is_some_and(|c| c <= 1), || shown(&run))?;
    for (i, e) in events.iter().enumerate() {
        conforms("log-event.json", &format!("{what}: event {}", i + 1), e)?;
    }
    let of = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["device"] == dev)
            .collect()
    };
    let blk = of("blk_io_error");
    check(
        blk.iter()
            .any(|e| e["op"] == "WRITE" && e["sector"].as_u64().is_some()),
        || {
            format!(
                "{what}: no blk_io_error on {dev} with op WRITE and a sector: {blk:?}\n{}",
                run.stdout
            )
        },
    )?;
    let buf = of("buffer_io_error");
    check(
        buf.iter().any(|e| e["logical_block"].as_u64().is_some()),
        || {
            format!(
                "{what}: no buffer_io_error on {dev} with a logical block: {buf:?}\n{}",
                run.stdout
            )
        },
    )?;
    let fse = of("fs_error");
    check(fse.iter().any(|e| e["fs"] == "ext4"), || {
        format!(
            "{what}: no fs_error of ext4 on {dev}: {fse:?}\n{}",
            run.stdout
        )
    })?;
    check(fse.iter().any(|e| e["remount_ro"] == true), || {
        format!(
            "{what}: no fs_error on {dev} with remount_ro: {fse:?}\n{}",
            run.stdout
        )
    })?;
    Ok(())
}

/// The lines captured on 6.18.44 (committed), field by field.
fn storage_messages_fixture() -> R {
    let fixture = Path::new(EIO_FIXTURE);
    check_storage_events(fixture, "loop0", "wedge log loop-eio-ext4-6.18.44.kmsg")?;
    let (_, events) = log_events(&[EIO_FIXTURE]);
    // Exact values of the first records of each kind.
    let first = |kind: &str| events.iter().find(|e| e["kind"] == kind).cloned();
    let blk = first("blk_io_error").ok_or("no blk_io_error")?;
    check(blk["sector"] == 17026 && blk["op"] == "WRITE", || {
        blk.to_string()
    })?;
    let buf = first("buffer_io_error").ok_or("no buffer_io_error")?;
    check(buf["logical_block"] == 8513, || buf.to_string())?;
    let fse = events
        .iter()
        .find(|e| e["kind"] == "fs_error" && e["function"].is_string())
        .ok_or("no fs_error with a function")?;
    check(fse["function"] == "ext4_journal_check_start", || {
        fse.to_string()
    })?;
    Ok(())
}

/// A FUSE disk answering EIO under ext4 on a loop device: this kernel's
/// real lines parse into the same events for the live device, and the live
/// verdict ties them to the device and its mount.
fn storage_messages_live() -> R {
    let dir = scratch("eio");
    let e = setup_or_skip!(LoopEio::start(dir.path()));
    let dev = e.loop_device().name().to_string();
    let mnt = e
        .mountpoint()
        .map(|m| m.display().to_string())
        .unwrap_or_default();
    println!(
        "the kernel said about {dev}:\n{}",
        e.kernel_lines().join("\n")
    );
    let file = dir.path().join("kmsg");
    std::fs::write(&file, e.kernel_lines().join("\n") + "\n").map_err(|x| x.to_string())?;
    check_storage_events(&file, &dev, "wedge log (live lines)")?;

    if !is_root() {
        skip_or_fail("the live kernel log (/dev/kmsg) needs root here");
        return Ok(());
    }
    let run = wedge(&["--json"]);
    let v = run.json();
    conforms("verdict.json", "wedge --json (loop EIO)", &v)?;
    let tied: Vec<&Value> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            let s = f.to_string();
            s.contains(&dev) && s.contains(&mnt)
        })
        .collect();
    check(!tied.is_empty(), || {
        format!(
            "wedge --json: no finding names both {dev} and its mount {mnt}: {}",
            v["findings"]
        )
    })?;
    let text = wedge(&[]);
    println!("wedge:\n{}", text.stdout);
    Ok(())
}

/// A loop device's number is reused: the kernel's errors about an earlier
/// disk attached as loopN are not the errors of the filesystem mounted from
/// loopN now. After a LoopEio scene (its ext4 remounted read-only), a fresh
/// ext4 on the same loopN must not be reported read-only or failing: the
/// earlier lines may be shown, as information about an earlier use of the
/// name.
fn earlier_errors_are_not_the_new_mounts() -> R {
    let _one = FROZEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("reuse");
    let old = {
        let e = setup_or_skip!(LoopEio::start(dir.path()));
        e.loop_device().name().to_string()
    };
    let f = setup_or_skip!(FrozenFs::start(FsKind::Ext4, dir.path()));
    let dev = f
        .loop_device()
        .map(|l| l.name().to_string())
        .unwrap_or_default();
    if dev != old {
        skip_or_fail(&format!(
            "someone else took {old} in between (the new ext4 is on {dev}): nothing to compare"
        ));
        return Ok(());
    }
    let mnt = f.mountpoint().display().to_string();
    let v = wedge(&["--json"]).json();
    let wrong: Vec<&Value> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| {
            let id = x["id"].as_str().unwrap_or_default();
            // Named as what they are (an earlier disk's, for information)
            // they may mention the new mount; never as its warning.
            (id == "storage.fs_error" || id == "storage.io_errors")
                && x.to_string().contains(&mnt)
                && x["severity"] != "info"
        })
        .collect();
    check(wrong.is_empty(), || {
        format!(
            "the errors of the disk {old} had before are reported as the new ext4's at {mnt}: {wrong:?}"
        )
    })
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("loop_on_fuse_chain", loop_on_fuse_chain),
        Trial::test(
            "storage_view_shows_stalled_loop",
            storage_view_shows_stalled_loop,
        ),
        Trial::test("frozen_ext4", frozen_ext4),
        Trial::test("frozen_xfs", frozen_xfs),
        Trial::test("frozen_btrfs", frozen_btrfs),
        Trial::test("two_frozen_filesystems", two_frozen_filesystems),
        Trial::test("storage_messages_fixture", storage_messages_fixture),
        Trial::test("storage_messages_live", storage_messages_live),
        Trial::test(
            "earlier_errors_are_not_the_new_mounts",
            earlier_errors_are_not_the_new_mounts,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}
