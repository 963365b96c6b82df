//! Network filesystems: a task waiting for a server's reply (found by the
//! uninterruptible rule, with this id), and stdio on files the server
//! deleted.

use super::{ev, pid_path};
use crate::finding::{Confidence, Finding, Remedy, Severity};
use crate::wait::{wait_kind, WaitKind};
use wedge_model::{FsClass, Mount, Process, Snapshot, Thread};

rule_ids! {
    /// The network-filesystem family.
    pub enum NetFsRule {
        /// A task (or, from the kernel log, the NFS client) waits for a
        /// server that does not answer.
        ServerUnreachable = "netfs.server_unreachable",
        /// stdio on deleted files of a network filesystem.
        StdioStale = "stdio.stale",
    }
}

impl NetFsRule {
    pub fn explanation(self) -> &'static str {
        match self {
            NetFsRule::ServerUnreachable => {
                "The task waits for a network filesystem server's reply. With a hard mount the \
                 client retries forever; the wait ends when the server answers."
            }
            NetFsRule::StdioStale => {
                "A file deleted on the NFS server is stale for this client: fstat() and write() on \
                 the descriptor fail with ESTALE. Runtimes that check their stdio at exit (Node.js's \
                 ResetStdio) abort on it; as PID 1 of a container that abort ends in a general \
                 protection fault (seed 002)."
            }
        }
    }

    pub fn remedies(self) -> Vec<Remedy> {
        match self {
            NetFsRule::ServerUnreachable => server_remedies(None, Sleeper::Unknown),
            NetFsRule::StdioStale => vec![Remedy {
                action: "give the process pipes for stdio (the container runtime's log driver) instead of files on NFS".into(),
                command: None,
            }],
        }
    }
}

/// A network-filesystem mount a task's wait is tied to.
#[derive(Debug, Clone)]
pub struct NetMount<'a> {
    pub mount: &'a Mount,
    /// `nfs`, `cifs`, `lustre`.
    pub fs: &'static str,
    pub server: String,
    /// From the process's own open files or cwd; otherwise the only mount
    /// of its kind in the snapshot (a stat(2) of a path holds no file).
    pub sure: bool,
}

impl NetMount<'_> {
    /// `hard` / `soft` / `softerr` from the superblock's options (the
    /// NFS client shows them in mountinfo); NFS mounts are hard by default.
    pub fn retry_mode(&self) -> Option<&'static str> {
        if self.fs != "nfs" {
            return None;
        }
        let opts = |o: &str| {
            self.mount
                .super_options
                .split(',')
                .chain(self.mount.options.split(','))
                .any(|x| x == o)
        };
        Some(if opts("softerr") {
            "softerr"
        } else if opts("soft") {
            "soft"
        } else {
            "hard"
        })
    }

    /// `/mnt/nfs (nfs4 from 127.0.0.1:/, hard)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} from {}{})",
            self.mount.mount_point,
            self.mount.fs_type,
            self.mount.source,
            self.retry_mode()
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        )
    }
}

fn class_of(m: &Mount) -> Option<(&'static str, String)> {
    match m.class() {
        FsClass::Nfs { server } => Some(("nfs", server)),
        FsClass::Cifs { server } => Some(("cifs", server)),
        FsClass::Lustre { server } => Some(("lustre", server)),
        _ => None,
    }
}

/// The mounts of the filesystem `t` waits on (NFS for an RPC wait, CIFS,
/// Lustre): those of the process's open files and cwd, or else the only
/// mount of that kind in the snapshot, said to be likely. Empty for a
/// wait on no network filesystem.
pub fn wait_mounts<'a>(snap: &'a Snapshot, p: &Process, t: &Thread) -> Vec<NetMount<'a>> {
    let fs = match wait_kind(t) {
        WaitKind::NfsServer => "nfs",
        WaitKind::CifsServer => "cifs",
        WaitKind::LustreServer => "lustre",
        _ => return Vec::new(),
    };
    let mut own: Vec<&'a Mount> = snap.mounts_of(p);
    if let Some(m) = p.cwd.value().and_then(|c| snap.mount_at(p, c)) {
        own.push(m);
    }
    own.sort_by_key(|m| m.mount_id);
    own.dedup_by_key(|m| m.mount_id);
    let pick = |ms: Vec<&'a Mount>, sure: bool| -> Vec<NetMount<'a>> {
        ms.into_iter()
            .filter_map(|m| {
                let (f, server) = class_of(m)?;
                (f == fs).then_some(NetMount {
                    mount: m,
                    fs,
                    server,
                    sure,
                })
            })
            .collect()
    };
    let tied = pick(own, true);
    if !tied.is_empty() {
        return tied;
    }
    let all = pick(snap.mounts.iter().collect(), false);
    if all.len() == 1 {
        all
    } else {
        Vec::new()
    }
}

/// How a task waiting on a server sleeps: what kill -9 would do to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sleeper {
    /// TASK_KILLABLE (the sleep kind read through BPF, or /proc's wchan
    /// rpc_wait_bit_killable): SIGKILL ends the wait.
    Killable {
        pid: i32,
    },
    /// TASK_UNINTERRUPTIBLE, in this function (folio_wait_bit_common in
    /// fsync's wait for writeback).
    Uninterruptible {
        function: String,
    },
    KernelThread,
    /// Neither the sleep kind nor the stack says.
    Unknown,
}

impl Sleeper {
    pub fn of(p: &Process, t: &Thread) -> Sleeper {
        use wedge_kernel::SleepKind;
        if t.flags.kthread() {
            return Sleeper::KernelThread;
        }
        let top = t
            .kernel_stack
            .value()
            .and_then(|s| s.first())
            .map(|f| f.base_name().to_string())
            .or_else(|| t.wchan_name().map(str::to_string));
        match (t.sleep_kind, top) {
            (Some(SleepKind::Killable), _) => Sleeper::Killable { pid: p.pid },
            (_, Some(f)) if f == "rpc_wait_bit_killable" => Sleeper::Killable { pid: p.pid },
            (Some(SleepKind::Uninterruptible), f) => Sleeper::Uninterruptible {
                function: f.unwrap_or_else(|| "the kernel".into()),
            },
            (None, Some(f)) if f.starts_with("folio_wait") || f.ends_with("wait_on_page_bit") => {
                Sleeper::Uninterruptible { function: f }
            }
            _ => Sleeper::Unknown,
        }
    }
}

/// What ends a wait on a network filesystem's server, and what each way
/// loses; `at` is the mount when it is known. The NFS sentences follow the
/// kernel: a hard mount retries every call until the server answers
/// (net/sunrpc/clnt.c call_timeout); `umount -f` runs nfs_umount_begin,
/// which ends every pending RPC of the mount's clients with -EIO
/// (rpc_killall_tasks); `umount -l` only detaches the name (the superblock
/// lives while files are open); the waits sleep in rpc_wait_bit_killable
/// (TASK_KILLABLE), so SIGKILL ends them.
pub fn server_remedies(at: Option<&NetMount<'_>>, who: Sleeper) -> Vec<Remedy> {
    let mp = at.map_or("MOUNTPOINT", |m| m.mount.mount_point.as_str());
    let server = at.map_or("the server", |m| m.server.as_str());
    let nfs = at.is_none_or(|m| m.fs == "nfs");
    let hard = at
        .and_then(NetMount::retry_mode)
        .is_none_or(|m| m == "hard");
    let mut v = vec![Remedy {
        action: if hard {
            format!(
                "restart or fix the server {server} (on an NFS server: rpc.nfsd 8 or systemctl restart \
                 nfs-server) or the network path to it: the mount is hard, so the client retries \
                 every call and the waiting reads and writes complete; nothing is lost"
            )
        } else {
            format!(
                "restart or fix the server {server} or the network path to it: calls still \
                 pending then complete"
            )
        },
        command: None,
    }];
    if !nfs {
        v.push(Remedy {
            action: format!(
                "force-unmount {mp} (umount -f, then umount -l): pending requests fail and data not \
                 yet on the server is lost"
            ),
            command: Some(format!("umount -f {mp}")),
        });
        return v;
    }
    v.push(Remedy {
        action: format!(
            "umount -f {mp} kills the mount's pending RPCs (nfs_umount_begin → rpc_killall_tasks): \
             the waiting calls fail with EIO, and data written but not yet on the server is lost; \
             the unmount itself still fails while files are open (EBUSY)"
        ),
        command: Some(format!("umount -f {mp}")),
    });
    v.push(Remedy {
        action: format!(
            "umount -l {mp} only detaches the name: the tasks already waiting stay in D and the \
             superblock lives on until its last file closes, still waiting for {server} (run \
             umount -f first to end them)"
        ),
        command: Some(format!("umount -l {mp}")),
    });
    match who {
        Sleeper::Killable { pid } => v.push(Remedy {
            action: format!(
                "kill -9 {pid} ends it: it sleeps killable (rpc_wait_bit_killable); the call it \
                 waited for is abandoned, and what it wrote that is not yet on the server stays \
                 dirty in the page cache, written back if the server returns and lost if the \
                 mount is then forced away, with no error ever reaching it"
            ),
            command: Some(format!("kill -9 {pid}")),
        }),
        Sleeper::Uninterruptible { function } => v.push(Remedy {
            action: format!(
                "kill -9 does not end it now: it sleeps uninterruptibly in {function} (for a \
                 writer, its pages' writeback), so SIGKILL acts only once the server answers or \
                 umount -f fails the call with EIO, and then the pages it wrote are lost"
            ),
            command: None,
        }),
        // A kernel thread (the NFSv4 state manager, a flusher) takes no
        // signal: it follows the server or umount -f.
        Sleeper::KernelThread => {}
        Sleeper::Unknown => v.push(Remedy {
            action: "kill -9 ends a task that sleeps killable (rpc_wait_bit_killable, most RPC \
                     waits), not one waiting for page writeback (folio_wait_writeback); what it \
                     wrote that is not yet on the server is lost if the mount is then forced away"
                .into(),
            command: None,
        }),
    }
    if hard {
        v.push(Remedy {
            action: "for the future, mount with soft (or softerr) and timeo=/retrans= if a \
             timeout is better than waiting: calls then fail after the retries instead \
             of blocking, at the risk of silent data corruption (a write that timed out \
             may or may not have reached the server)"
                .into(),
            command: None,
        });
    }
    v
}

/// stdio on files of a network filesystem that were deleted: after the
/// server removes the file, fstat() on the descriptor fails with ESTALE
/// (NFSv3), which some runtimes treat as fatal — Node.js aborts in
/// ResetStdio (seed 002).
pub(super) fn stdio_stale(snap: &Snapshot, out: &mut Vec<Finding>) {
    let id = NetFsRule::StdioStale;
    for p in &snap.processes {
        let Some(fds) = p.fds.value() else { continue };
        let risky: Vec<String> = fds
            .iter()
            .filter(|f| f.fd <= 2)
            .filter(|f| {
                f.mount_id.and_then(|m| snap.mount(m)).is_some_and(|m| {
                    matches!(m.class(), FsClass::Nfs { .. } | FsClass::Cifs { .. })
                })
            })
            .filter(|f| f.kind == wedge_model::FileKind::Deleted)
            .map(|f| format!("fd {} → {}", f.fd, f.target))
            .collect();
        if risky.is_empty() {
            continue;
        }
        out.push(Finding {
            severity: Severity::Warning,
            confidence: Confidence::Medium,
            pids: vec![p.pid],
            evidence: risky
                .into_iter()
                .map(|r| ev(format!("{}/fd", pid_path(snap, p.pid)), r))
                .collect(),
            explanation: id.explanation().into(),
            remedies: id.remedies(),
            ..Finding::new(
                id,
                format!(
                    "{} ({}) writes its stdio to deleted files on a network filesystem",
                    p.comm, p.pid
                ),
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::fuse::tests::{process, thread};
    use wedge_kernel::TaskState;
    use wedge_model::{Field, KernelFrame, LogDetail, LogEvent, Source};

    /// The guest's mount (crates/wedge/tests/nfs_guest.rs), as 6.1's
    /// mountinfo shows it.
    fn nfs_mount(id: u64, mp: &str, source: &str, opts: &str) -> Mount {
        Mount {
            mount_id: id,
            parent_id: 1,
            major: 0,
            minor: 40 + id as u32,
            root: "/".into(),
            mount_point: mp.into(),
            options: "rw,relatime".into(),
            fs_type: "nfs4".into(),
            source: source.into(),
            super_options: opts.into(),
            mnt_ns: Some(7),
        }
    }

    const HARD: &str = "rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,\
                        timeo=10,retrans=1,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1";

    /// The guest's writer in fsync(2) once the server stopped, its stack
    /// as the guest's /proc/PID/stack showed it: it waits for its pages'
    /// writeback (the WRITE's reply), uninterruptibly.
    fn rpc_waiter(tid: i32) -> Thread {
        let mut t = thread(tid, TaskState::DiskSleep, None);
        t.comm = "wk-nfs-writer".into();
        t.wchan = Field::Value(Some("folio_wait_bit_common".into()));
        t.kernel_stack = Field::Value(
            [
                "folio_wait_bit_common",
                "folio_wait_writeback",
                "__filemap_fdatawait_range",
                "file_write_and_wait_range",
                "nfs_file_fsync",
                "__x64_sys_fsync",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe",
            ]
            .into_iter()
            .map(KernelFrame::named)
            .collect(),
        );
        t
    }

    fn snap(mounts: Vec<Mount>, procs: Vec<Process>) -> Snapshot {
        let mut s = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        s.mounts = mounts;
        s.processes = procs;
        s
    }

    fn root() -> Mount {
        let mut m = nfs_mount(1, "/", "/dev/vda1", "rw");
        m.fs_type = "ext4".into();
        m
    }

    #[test]
    fn a_wait_is_tied_to_the_nfs_mount_of_its_files() {
        let writer = process(
            200,
            vec![rpc_waiter(200)],
            vec![(3, "/mnt/nfs/data", 2)],
            "/",
        );
        let s = snap(
            vec![
                root(),
                nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", HARD),
                nfs_mount(3, "/mnt/other", "fs2:/export", "rw,vers=4.2,soft,proto=tcp"),
            ],
            vec![writer],
        );
        let p = &s.processes[0];
        let ms = wait_mounts(&s, p, &p.threads[0]);
        assert_eq!(ms.len(), 1, "{ms:?}");
        assert!(ms[0].sure);
        assert_eq!(ms[0].server, "127.0.0.1");
        assert_eq!(ms[0].retry_mode(), Some("hard"));
        assert_eq!(ms[0].describe(), "/mnt/nfs (nfs4 from 127.0.0.1:/, hard)");
        let other = nfs_mount(3, "/mnt/other", "fs2:/export", "rw,vers=4.2,soft,proto=tcp");
        assert_eq!(
            NetMount {
                mount: &other,
                fs: "nfs",
                server: "fs2".into(),
                sure: true
            }
            .retry_mode(),
            Some("soft")
        );
    }

    #[test]
    fn a_stat_with_no_file_is_tied_only_to_the_only_nfs_mount() {
        // stat(2) of a path holds no file: its process has none there.
        let stater = || process(201, vec![rpc_waiter(201)], vec![], "/");
        let one = snap(
            vec![root(), nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", HARD)],
            vec![stater()],
        );
        let p = &one.processes[0];
        let ms = wait_mounts(&one, p, &p.threads[0]);
        assert_eq!(ms.len(), 1);
        assert!(!ms[0].sure);
        let two = snap(
            vec![
                root(),
                nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", HARD),
                nfs_mount(3, "/mnt/other", "fs2:/export", HARD),
            ],
            vec![stater()],
        );
        let p = &two.processes[0];
        assert!(wait_mounts(&two, p, &p.threads[0]).is_empty());
        // Its cwd on the mount ties it.
        let mut s = snap(
            vec![
                root(),
                nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", HARD),
                nfs_mount(3, "/mnt/other", "fs2:/export", HARD),
            ],
            vec![process(
                202,
                vec![rpc_waiter(202)],
                vec![],
                "/mnt/other/dir",
            )],
        );
        s.processes[0].namespaces = Field::Value(Vec::new());
        let p = &s.processes[0];
        let ms = wait_mounts(&s, p, &p.threads[0]);
        assert_eq!(ms.len(), 1, "{ms:?}");
        assert_eq!(ms[0].server, "fs2");
    }

    #[test]
    fn the_verdict_names_mount_and_server_and_what_each_remedy_loses() {
        let writer = process(
            200,
            vec![rpc_waiter(200)],
            vec![(3, "/mnt/nfs/data", 2)],
            "/",
        );
        let s = snap(
            vec![root(), nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", HARD)],
            vec![writer],
        );
        let event = LogEvent {
            kind: "nfs_not_responding".into(),
            line: 7,
            monotonic: Some(41.5),
            meaning: "NFS server 127.0.0.1 is not responding".into(),
            detail: LogDetail::NfsNotResponding {
                server: "127.0.0.1".into(),
            },
            ..LogEvent::default()
        };
        let d = crate::diagnose(&s, &[event]);
        let fs: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.id == NetFsRule::ServerUnreachable.into())
            .collect();
        // The log's report joined the task's finding: one, not two.
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let f = fs[0];
        assert_eq!(f.pids, vec![200]);
        assert!(
            f.title
                .contains("waits for an NFS server 127.0.0.1 for /mnt/nfs"),
            "{}",
            f.title
        );
        // The kernel gave up on a reply: wedged, whatever the task's time.
        assert_eq!(f.severity, Severity::Critical);
        let ev: Vec<String> = f.evidence.iter().map(|e| e.fact.clone()).collect();
        assert!(
            ev.iter()
                .any(|e| e.starts_with("nfs: server 127.0.0.1 not responding")),
            "{ev:#?}"
        );
        assert!(
            ev.iter()
                .any(|e| e.contains("/mnt/nfs (nfs4 from 127.0.0.1:/, hard)")),
            "{ev:#?}"
        );
        let r = |w: &str| {
            f.remedies
                .iter()
                .find(|r| r.action.contains(w))
                .unwrap_or_else(|| panic!("no {w:?} in {:#?}", f.remedies))
        };
        assert!(r("restart").action.contains("nothing is lost"));
        let force = r("umount -f");
        assert_eq!(force.command.as_deref(), Some("umount -f /mnt/nfs"));
        assert!(force.action.contains("EIO") && force.action.contains("lost"));
        let lazy = r("umount -l");
        assert_eq!(lazy.command.as_deref(), Some("umount -l /mnt/nfs"));
        assert!(lazy.action.contains("stay in D"));
        // fsync waits for writeback uninterruptibly: kill -9 does not help.
        assert!(r("kill -9").action.contains("does not end it"));
        assert!(r("kill -9").command.is_none());
        assert!(r("soft").action.contains("corruption"));
        // The graph's edge names the mount.
        let edge = d
            .graph
            .edges
            .iter()
            .find(|e| e.kind == crate::graph::EdgeKind::NetworkServer)
            .expect("an edge to the server");
        assert!(!edge.likely);
        assert!(edge.detail.contains("/mnt/nfs"), "{}", edge.detail);
    }

    #[test]
    fn a_soft_mount_is_not_offered_soft_again() {
        let writer = process(
            200,
            vec![rpc_waiter(200)],
            vec![(3, "/mnt/nfs/data", 2)],
            "/",
        );
        let s = snap(
            vec![
                root(),
                nfs_mount(2, "/mnt/nfs", "127.0.0.1:/", "rw,vers=4.2,soft,proto=tcp"),
            ],
            vec![writer],
        );
        let p = &s.processes[0];
        let ms = wait_mounts(&s, p, &p.threads[0]);
        let rs = server_remedies(ms.first(), Sleeper::Unknown);
        assert!(!rs.iter().any(|r| r.action.contains("mount with soft")));
        assert!(!rs[0].action.contains("nothing is lost"));
    }

    #[test]
    fn kill_is_offered_only_where_the_sleep_is_killable() {
        // A GETATTR waits in rpc_wait_bit_killable (the guest's stat loop).
        let mut t = rpc_waiter(201);
        t.kernel_stack = Field::Value(
            [
                "rpc_wait_bit_killable",
                "__rpc_execute",
                "rpc_execute",
                "_nfs4_proc_getattr",
            ]
            .into_iter()
            .map(KernelFrame::named)
            .collect(),
        );
        let p = process(201, vec![t], vec![], "/");
        let who = Sleeper::of(&p, &p.threads[0]);
        assert_eq!(who, Sleeper::Killable { pid: 201 });
        let rs = server_remedies(None, who);
        let k = rs
            .iter()
            .find(|r| r.action.contains("kill -9"))
            .expect("kill");
        assert_eq!(k.command.as_deref(), Some("kill -9 201"));
        assert!(k.action.contains("lost"));
        // The writer in fsync: folio_wait_bit_common.
        let mut w = rpc_waiter(200);
        w.kernel_stack = Field::Value(
            [
                "folio_wait_bit_common",
                "folio_wait_writeback",
                "nfs_file_fsync",
            ]
            .into_iter()
            .map(KernelFrame::named)
            .collect(),
        );
        let p = process(200, vec![w], vec![], "/");
        assert_eq!(
            Sleeper::of(&p, &p.threads[0]),
            Sleeper::Uninterruptible {
                function: "folio_wait_bit_common".into()
            }
        );
        // The NFSv4 state manager is a kernel thread: no kill remedy.
        assert!(!server_remedies(None, Sleeper::KernelThread)
            .iter()
            .any(|r| r.action.contains("kill -9")));
    }
}
