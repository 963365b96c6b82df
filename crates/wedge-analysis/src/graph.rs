//! The wait-for graph: who waits on whom, across processes and threads,
//! with the kind of wait on every edge.
//!
//! Nodes are tasks, FUSE connections and remote servers. A task's edges come
//! from its wait (FUSE request → connection → daemon; io_uring exit → the
//! ring's blocked workers; vfork parent → child; tracee → tracer; zombie →
//! parent; pid-namespace init → the tasks it must reap; mmap_lock waiter →
//! the thread holding the lock across another wait). Roots — nodes with no
//! way forward — are where the blame lies.

use crate::wait::{wait_kind, WaitKind};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use wedge_kernel::TaskState;
use wedge_model::{FileKind, FsClass, Process, Snapshot, Thread};

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Task {
        pid: i32,
        tid: i32,
    },
    FuseConnection {
        id: u32,
        mount_point: String,
    },
    Server {
        fs: String,
        name: String,
    },
    /// A block device (`loop0`, `sda1`, `dm-3`), by its kernel name.
    BlockDevice {
        name: String,
    },
    /// A mounted filesystem: where, what type, its superblock's device
    /// number and, for a block filesystem, the block device.
    Filesystem {
        mount_point: String,
        fs_type: String,
        major: u32,
        minor: u32,
        device: Option<String>,
    },
    /// Something wedge cannot name (a FUSE daemon it cannot find).
    Unknown {
        what: String,
    },
}

/// Why one node waits on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    FuseRequest,
    FuseDaemon,
    NetworkServer,
    IoUringWorker,
    VforkChild,
    Tracer,
    ZombieParent,
    PidNamespaceMember,
    /// Queued on a lock whose (likely) holder is the target.
    LockHolder,
    /// A task held at a frozen filesystem's gate.
    FrozenFilesystem,
    /// A task waiting for I/O or a journal commit of a filesystem.
    FilesystemIo,
    /// A task waiting for I/O on a block device itself (its node opened
    /// directly, or a kernel thread of that device).
    DeviceIo,
    /// A filesystem and the block device it lives on.
    FilesystemDevice,
    /// A filesystem whose journal thread (jbd2) is itself blocked.
    JournalThread,
    /// A partition and its whole disk.
    PartitionOf,
    /// A device-mapper or md device and a device it is built on.
    StackedOn,
    /// A loop device and the kernel thread doing its I/O now.
    DeviceWorker,
    /// A loop device and where its backing file lives.
    LoopBacking,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: Node,
    pub to: Node,
    pub kind: EdgeKind,
    /// Why wedge drew this edge, in words.
    pub detail: String,
    /// Drawn from a heuristic rather than a kernel fact.
    pub likely: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Graph {
    pub edges: Vec<Edge>,
}

fn remote_mounts(snap: &Snapshot, p: &Process) -> Vec<(String, String)> {
    snap.mounts_of(p)
        .into_iter()
        .filter_map(|m| match m.class() {
            FsClass::Nfs { server } => Some(("nfs".to_string(), server)),
            FsClass::Lustre { server } => Some(("lustre".to_string(), server)),
            FsClass::Cifs { server } => Some(("cifs".to_string(), server)),
            _ => None,
        })
        .collect()
}

/// The process serving a FUSE mount: one holding /dev/fuse open, preferably
/// one whose command line names the mount point. The kernel does not
/// expose which /dev/fuse file belongs to which connection, so this is a
/// likely answer, said so.
pub fn fuse_daemon<'a>(snap: &'a Snapshot, mount_point: &str) -> (Vec<&'a Process>, bool) {
    let holders: Vec<&Process> = snap
        .processes
        .iter()
        .filter(|p| {
            p.fds
                .value()
                .is_some_and(|f| f.iter().any(|f| f.target == "/dev/fuse"))
        })
        .collect();
    // A holder whose every thread waits for a FUSE reply is a client, not
    // the server: typically a child that inherited the daemon's /dev/fuse
    // descriptor across fork() (the fixture's reader does). Naming it
    // would close a false circle (reader → connection → reader). Dropped
    // when another holder is not waiting; then the answer is only likely.
    let serving = |p: &&Process| {
        !p.threads.iter().all(|t| {
            matches!(
                crate::wait::wait_kind(t),
                crate::wait::WaitKind::FuseRequest { .. } | crate::wait::WaitKind::FuseFlush
            )
        })
    };
    let dropped = holders.iter().any(|p| !serving(p)) && holders.iter().any(serving);
    let holders: Vec<&Process> = if dropped {
        holders.into_iter().filter(serving).collect()
    } else {
        holders
    };
    let named: Vec<&Process> = holders
        .iter()
        .copied()
        .filter(|p| {
            p.cmdline.value().is_some_and(|a| {
                a.iter()
                    .any(|x| x == mount_point || x.trim_end_matches('/') == mount_point)
            })
        })
        .collect();
    if !named.is_empty() {
        return (named, true);
    }
    let sure = holders.len() == 1 && !dropped;
    (holders, sure)
}

fn task(p: &Process, t: &Thread) -> Node {
    Node::Task {
        pid: p.pid,
        tid: t.tid,
    }
}

fn leader_node(p: &Process) -> Node {
    Node::Task {
        pid: p.pid,
        tid: p.leader().map_or(p.pid, |l| l.tid),
    }
}

/// Threads of `p` that hold its mmap_lock while waiting on something else:
/// inside a page fault or get_user_pages (which take the lock for read)
/// and asleep.
pub fn mmap_lock_holders(p: &Process) -> Vec<&Thread> {
    p.threads
        .iter()
        .filter(|t| {
            t.state != TaskState::Running
                && t.stack_has(&[
                    "__access_remote_vm",
                    "__get_user_pages",
                    "get_user_pages_remote",
                ])
                && t.stack_has(&[
                    "request_wait_answer",
                    "rpc_wait_bit_killable",
                    "folio_wait_bit_common",
                    "io_schedule",
                ])
        })
        .collect()
}

/// A full stack (an ORC unwind: the live kernel through BPF, a dump) of a
/// task queued for writing on an rw-semaphore right inside an open's last
/// lookup: `rwsem_down_write_slowpath ← down_write ← open_last_lookups` (or
/// `path_openat`, where it is inlined) — the directory's inode lock, which
/// /proc's stack shows only as `path_openat`.
fn queued_in_open(t: &Thread) -> bool {
    let Some(stack) = t.kernel_stack.value() else {
        return false;
    };
    let mut rest = stack
        .iter()
        .map(|f| f.base_name())
        .skip_while(|f| !f.starts_with("rwsem_down_write"))
        .skip_while(|f| wedge_kernel::frames::is_sleeping_lock(f));
    matches!(rest.next(), Some("open_last_lookups" | "path_openat"))
}

/// Builds the graph of a snapshot.
pub fn build(snap: &Snapshot) -> Graph {
    let mut g = Graph::default();
    let index = snap.index();
    let by_pid = |pid: i32| index.get(&pid).map(|&i| &snap.processes[i]);
    for p in &snap.processes {
        for t in &p.threads {
            let from = task(p, t);
            // The kernel names this task's lock owner: that edge (below) is
            // the fact, and no holder is inferred for it.
            let exact_owner = t.lock_wait.as_ref().is_some_and(|l| l.owner_tid.is_some());
            match crate::storage::wait_kind_in(snap, p, t) {
                WaitKind::FuseRequest { .. } | WaitKind::FuseFlush
                    if crate::storage::loop_worker_fuse(snap, t).is_some() =>
                {
                    // A loop worker's request is on its device's backing
                    // file: that file's mount is the connection.
                    if let Some((id, mount_point, dev, file)) =
                        crate::storage::loop_worker_fuse(snap, t)
                    {
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: Node::FuseConnection { id, mount_point },
                            kind: EdgeKind::FuseRequest,
                            detail: format!(
                                "a FUSE request is unanswered: the I/O of {dev}, whose backing file {file} is on this mount"
                            ),
                            likely: false,
                        });
                    }
                }
                WaitKind::FuseRequest { .. } | WaitKind::FuseFlush => {
                    match crate::fuse::target(snap, p, t) {
                        crate::fuse::Target::Tied(tie) => g.edges.push(Edge {
                            from: from.clone(),
                            kind: EdgeKind::FuseRequest,
                            detail: match &tie.by {
                                crate::fuse::TieBy::Fd { fd, .. } => {
                                    format!("a FUSE request on fd {fd} is unanswered")
                                }
                                crate::fuse::TieBy::DirFd { fd, .. } => format!(
                                    "a FUSE request is unanswered (a lookup from directory fd {fd})"
                                ),
                                crate::fuse::TieBy::Cwd { .. } => {
                                    "a FUSE request is unanswered (tied by the working directory only)"
                                        .into()
                                }
                                crate::fuse::TieBy::OnlyBusy => {
                                    "a FUSE request is unanswered; the only connection with requests waiting"
                                        .into()
                                }
                                crate::fuse::TieBy::OnlyOpenFile => {
                                    "a FUSE request is unanswered; the process's only open FUSE file is here"
                                        .into()
                                }
                            },
                            likely: !tie.sure(),
                            to: Node::FuseConnection {
                                id: tie.connection,
                                mount_point: tie.mount_point,
                            },
                        }),
                        // One node for all candidates: a chain (and a
                        // remedy) per candidate would blame connections of
                        // other processes.
                        crate::fuse::Target::Candidates { candidates, why } => {
                            let what = if candidates.is_empty() {
                                format!("a FUSE daemon (no connection can be tied to it: {why})")
                            } else {
                                format!(
                                    "one of {} FUSE connection(s), not tied to it ({why}): {}",
                                    candidates.len(),
                                    candidates
                                        .iter()
                                        .map(crate::fuse::Candidate::describe)
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                )
                            };
                            g.edges.push(Edge {
                                from: from.clone(),
                                to: Node::Unknown { what },
                                kind: EdgeKind::FuseRequest,
                                detail: "waits in request_wait_answer".into(),
                                likely: true,
                            });
                        }
                    }
                }
                WaitKind::NfsServer | WaitKind::LustreServer | WaitKind::CifsServer => {
                    // The mount of the wait's own kind where the process's
                    // files tell; else every remote mount it has, each a guess.
                    let tied = crate::rules::wait_mounts(snap, p, t);
                    if tied.is_empty() {
                        for (fs, server) in remote_mounts(snap, p) {
                            g.edges.push(Edge {
                                from: from.clone(),
                                to: Node::Server { fs, name: server },
                                kind: EdgeKind::NetworkServer,
                                detail: "waits for the server's reply".into(),
                                likely: true,
                            });
                        }
                    }
                    for m in tied {
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: Node::Server {
                                fs: m.fs.to_string(),
                                name: m.server.clone(),
                            },
                            kind: EdgeKind::NetworkServer,
                            detail: format!("waits for the server's reply on {}", m.describe()),
                            likely: !m.sure,
                        });
                    }
                }
                WaitKind::IoUringCancel => {
                    for w in p.threads.iter().filter(|w| {
                        w.kind.is_io_uring()
                            && !matches!(w.state, TaskState::Sleeping | TaskState::Idle)
                            || w.kind.is_io_uring()
                                && !matches!(wait_kind(w), WaitKind::None | WaitKind::Other { .. })
                    }) {
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: task(p, w),
                            kind: EdgeKind::IoUringWorker,
                            detail: format!(
                                "exit waits for io_uring work that {} is still doing",
                                w.comm
                            ),
                            likely: false,
                        });
                    }
                }
                WaitKind::VforkChild => {
                    for c in snap.children(p.pid) {
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: leader_node(c),
                            kind: EdgeKind::VforkChild,
                            detail: "vfork: the parent resumes when the child execs or exits"
                                .into(),
                            likely: snap.children(p.pid).count() > 1,
                        });
                    }
                }
                WaitKind::PidNamespaceReap => {
                    if let Some(ns) = p.namespace("pid_for_children").or(p.namespace("pid")) {
                        let members = snap
                            .processes
                            .iter()
                            .filter(|q| q.pid != p.pid && q.namespace("pid") == Some(ns));
                        for q in members {
                            // Fully dead members are reaped by the init's
                            // own wait; the ones it waits for still have a
                            // live thread (a leader can be a zombie while
                            // another thread is stuck exiting).
                            for lt in q.threads.iter().filter(|t| t.state != TaskState::Zombie) {
                                g.edges.push(Edge {
                                    from: from.clone(),
                                    to: task(q, lt),
                                    kind: EdgeKind::PidNamespaceMember,
                                    detail: "an exiting pid-namespace init waits until every task of its namespace is gone".into(),
                                    likely: false,
                                });
                            }
                        }
                    }
                }
                WaitKind::Lock { ref function }
                    if !exact_owner && (function == "path_openat" || queued_in_open(t)) =>
                {
                    // Queued on a directory's inode lock: the likely holder
                    // is a task inside a lookup or create that is itself
                    // waiting (on 6.x the rwsem slow path is hidden).
                    for q in &snap.processes {
                        for u in &q.threads {
                            if u.tid != t.tid
                                && u.stack_has(&[
                                    "path_openat",
                                    "lookup_slow",
                                    "filename_create",
                                    "do_mkdirat",
                                    "do_unlinkat",
                                ])
                                && matches!(
                                    wait_kind(u),
                                    WaitKind::FuseRequest { .. }
                                        | WaitKind::NfsServer
                                        | WaitKind::CifsServer
                                        | WaitKind::LustreServer
                                )
                            {
                                g.edges.push(Edge {
                                    from: from.clone(),
                                    to: task(q, u),
                                    kind: EdgeKind::LockHolder,
                                    detail: "likely holds the directory's inode lock while it waits inside a lookup/create".into(),
                                    likely: true,
                                });
                            }
                        }
                    }
                }
                ref k @ (WaitKind::FrozenFilesystem { .. }
                | WaitKind::BlockIo { .. }
                | WaitKind::Journal { .. }) => storage_edge(snap, p, t, k, &from, &mut g),
                _ => {}
            }
            // mmap_lock: a writer (mmap, munmap, mprotect) of p queued
            // behind a holder of p, or a reader of another process's memory
            // (its cmdline, environ, maps, mem) queued on that process.
            let mm_wait = matches!(
                t.wchan_name(),
                Some(
                    "vm_mmap_pgoff"
                        | "__vm_munmap"
                        | "do_mprotect_pkey"
                        | "__access_remote_vm"
                        | "do_madvise"
                        | "exit_mmap"
                        | "mmap_read_lock"
                )
            );
            if t.state == TaskState::DiskSleep && mm_wait && !exact_owner {
                let mut targets: Vec<&Process> = Vec::new();
                if t.wchan_name() == Some("__access_remote_vm") {
                    for f in p.fds.value().into_iter().flatten() {
                        if f.kind != FileKind::Path {
                            continue;
                        }
                        let rest = f.target.strip_prefix("/proc/");
                        if let Some(pid) = rest
                            .and_then(|r| r.split('/').next())
                            .and_then(|s| s.parse::<i32>().ok())
                        {
                            if let Some(q) = by_pid(pid) {
                                targets.push(q);
                            }
                        }
                    }
                } else {
                    targets.push(p);
                }
                for q in targets {
                    for h in mmap_lock_holders(q) {
                        if h.tid == t.tid {
                            continue;
                        }
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: task(q, h),
                            kind: EdgeKind::LockHolder,
                            detail: format!(
                                "queued on the mmap_lock of {} ({}), which {} holds inside a page fault while it waits",
                                q.comm, q.pid, h.comm
                            ),
                            likely: true,
                        });
                    }
                }
            }
            // The owner read off the lock itself (the live kernel's
            // task->blocker through BPF, a crash dump's lock): a fact, not a
            // guess.
            if let Some(lw) = &t.lock_wait {
                if let Some((q, h)) = lw.owner_tid.and_then(|o| snap.thread(o)) {
                    g.edges.push(Edge {
                        from: from.clone(),
                        to: task(q, h),
                        kind: EdgeKind::LockHolder,
                        detail: exact_lock_detail(lw),
                        likely: false,
                    });
                }
            }
            if let Some(tr) = t.tracer_pid {
                if t.state == TaskState::TracingStop {
                    if let Some(q) = by_pid(tr) {
                        g.edges.push(Edge {
                            from: from.clone(),
                            to: leader_node(q),
                            kind: EdgeKind::Tracer,
                            detail: "stopped until its tracer resumes it".into(),
                            likely: false,
                        });
                    }
                }
            }
        }
        let live: Vec<&Thread> = p
            .threads
            .iter()
            .filter(|t| t.state != TaskState::Zombie)
            .collect();
        let leader_dead = p.leader().is_some_and(|l| l.state == TaskState::Zombie);
        if leader_dead && !live.is_empty() {
            // A thread-group leader stays a zombie until its other threads
            // have exited: it waits on them, not on its parent.
            for t in live {
                g.edges.push(Edge {
                    from: leader_node(p),
                    to: task(p, t),
                    kind: EdgeKind::ZombieParent,
                    detail: "the exited thread-group leader waits for its last threads to exit"
                        .into(),
                    likely: false,
                });
            }
        } else if leader_dead {
            if let Some(par) = by_pid(p.ppid) {
                g.edges.push(Edge {
                    from: leader_node(p),
                    to: leader_node(par),
                    kind: EdgeKind::ZombieParent,
                    detail: "a zombie waits for its parent to reap it".into(),
                    likely: false,
                });
            }
        }
    }
    expand_storage(snap, &mut g);
    // FUSE connections lead to their daemons.
    let conns: BTreeSet<(u32, String)> = g
        .edges
        .iter()
        .filter_map(|e| match &e.to {
            Node::FuseConnection { id, mount_point } => Some((*id, mount_point.clone())),
            _ => None,
        })
        .collect();
    for (id, mp) in conns {
        let from = Node::FuseConnection {
            id,
            mount_point: mp.clone(),
        };
        let (daemons, sure) = fuse_daemon(snap, &mp);
        if daemons.is_empty() {
            g.edges.push(Edge {
                from,
                to: Node::Unknown {
                    what: format!("the daemon of FUSE connection {id} (no process holds /dev/fuse open: it is gone)"),
                },
                kind: EdgeKind::FuseDaemon,
                detail: "served by".into(),
                likely: false,
            });
            continue;
        }
        for d in daemons {
            g.edges.push(Edge {
                from: from.clone(),
                to: leader_node(d),
                kind: EdgeKind::FuseDaemon,
                detail: if sure {
                    "served by this daemon".into()
                } else {
                    "served, likely, by this process (it holds /dev/fuse open)".into()
                },
                likely: !sure,
            });
        }
    }
    g
}

/// An exact lock edge in words: `waits for rw_semaphore 0xffff… (as a
/// writer) — the lock's owner field names thread 123`.
pub fn exact_lock_detail(lw: &wedge_model::LockWait) -> String {
    let name = lw
        .symbol
        .clone()
        .unwrap_or_else(|| format!("{:#x}", lw.address));
    let how = lw
        .waits_as
        .as_deref()
        .map(|h| format!(" (as a {h})"))
        .unwrap_or_default();
    match lw.owner_tid {
        Some(o) => format!(
            "waits for {} {name}{how} — the lock's owner field names thread {o}",
            lw.kind
        ),
        None => format!("waits for {} {name}{how}", lw.kind),
    }
}

impl EdgeKind {
    /// Every kind, in the order the JSON schema lists their names.
    pub const ALL: &'static [EdgeKind] = &[
        EdgeKind::FuseRequest,
        EdgeKind::FuseDaemon,
        EdgeKind::NetworkServer,
        EdgeKind::IoUringWorker,
        EdgeKind::VforkChild,
        EdgeKind::Tracer,
        EdgeKind::ZombieParent,
        EdgeKind::PidNamespaceMember,
        EdgeKind::LockHolder,
        EdgeKind::FrozenFilesystem,
        EdgeKind::FilesystemIo,
        EdgeKind::DeviceIo,
        EdgeKind::FilesystemDevice,
        EdgeKind::JournalThread,
        EdgeKind::PartitionOf,
        EdgeKind::StackedOn,
        EdgeKind::DeviceWorker,
        EdgeKind::LoopBacking,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            EdgeKind::FuseRequest => "fuse_request",
            EdgeKind::FuseDaemon => "fuse_daemon",
            EdgeKind::NetworkServer => "network_server",
            EdgeKind::IoUringWorker => "io_uring_worker",
            EdgeKind::VforkChild => "vfork_child",
            EdgeKind::Tracer => "tracer",
            EdgeKind::ZombieParent => "zombie_parent",
            EdgeKind::PidNamespaceMember => "pid_namespace_member",
            EdgeKind::LockHolder => "lock_holder",
            EdgeKind::FrozenFilesystem => "frozen_filesystem",
            EdgeKind::FilesystemIo => "filesystem_io",
            EdgeKind::DeviceIo => "device_io",
            EdgeKind::FilesystemDevice => "filesystem_device",
            EdgeKind::JournalThread => "journal_thread",
            EdgeKind::PartitionOf => "partition_of",
            EdgeKind::StackedOn => "stacked_on",
            EdgeKind::DeviceWorker => "device_worker",
            EdgeKind::LoopBacking => "loop_backing",
        }
    }
}

impl Node {
    pub fn pid(&self) -> Option<i32> {
        match self {
            Node::Task { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

impl Graph {
    pub fn out(&self, n: &Node) -> impl Iterator<Item = &Edge> {
        let n = n.clone();
        self.edges.iter().filter(move |e| e.from == n)
    }

    /// The paths from `start` to the nodes it ultimately waits on (those
    /// with no way forward), without cycles; a cycle ends a path and is
    /// marked by repeating its first node.
    pub fn chains(&self, start: &Node) -> Vec<Vec<Node>> {
        let mut out = Vec::new();
        let mut path = vec![start.clone()];
        let mut seen = HashSet::new();
        seen.insert(start.clone());
        self.walk(&mut path, &mut seen, &mut out);
        out
    }

    fn walk(&self, path: &mut Vec<Node>, seen: &mut HashSet<Node>, out: &mut Vec<Vec<Node>>) {
        if out.len() >= 16 || path.len() > 32 {
            out.push(path.clone());
            return;
        }
        let last = path.last().cloned().unwrap_or(Node::Unknown {
            what: String::new(),
        });
        let next: Vec<&Edge> = self.out(&last).collect();
        if next.is_empty() {
            out.push(path.clone());
            return;
        }
        for e in next {
            path.push(e.to.clone());
            if seen.insert(e.to.clone()) {
                self.walk(path, seen, out);
                seen.remove(&e.to);
            } else {
                out.push(path.clone());
            }
            path.pop();
        }
    }

    /// Cycles among tasks: each once, as the list of its nodes (a deadlock
    /// when every edge is a fact; a likely one when some are guesses).
    pub fn cycles(&self) -> Vec<Vec<Node>> {
        let mut found: Vec<Vec<Node>> = Vec::new();
        let starts: BTreeSet<&Node> = self.edges.iter().map(|e| &e.from).collect();
        for start in starts {
            for chain in self.chains(start) {
                // A path that ends on a node it already passed closed a loop.
                let Some(last) = chain.last() else { continue };
                let Some(first_seen) = chain.iter().position(|n| n == last) else {
                    continue;
                };
                if first_seen + 1 >= chain.len() {
                    continue;
                }
                let mut cycle: Vec<Node> = chain[first_seen..chain.len() - 1].to_vec();
                // One canonical rotation, so each cycle is reported once.
                if let Some(min) = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map(|(i, _)| i)
                {
                    cycle.rotate_left(min);
                }
                if !found.contains(&cycle) {
                    found.push(cycle);
                }
            }
        }
        found
    }

    /// Tasks that wait on `n`, directly.
    pub fn waiters(&self, n: &Node) -> Vec<&Node> {
        self.edges
            .iter()
            .filter(|e| &e.to == n)
            .map(|e| &e.from)
            .collect()
    }

    /// Nodes some task waits on and that wait on nothing: the roots.
    pub fn roots(&self) -> Vec<Node> {
        let from: HashSet<&Node> = self.edges.iter().map(|e| &e.from).collect();
        let mut counts: HashMap<&Node, usize> = HashMap::new();
        for e in &self.edges {
            if !from.contains(&e.to) {
                *counts.entry(&e.to).or_default() += 1;
            }
        }
        let mut v: Vec<(&Node, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }
}

/// A node in words: `npm 4242 (D, SIGKILL pending)`, `FUSE connection 42
/// (/mnt/x)`.
pub fn describe(snap: &Snapshot, n: &Node) -> String {
    match n {
        Node::Task { pid, tid } => match snap.thread(*tid) {
            Some((p, t)) => {
                let mut notes = vec![t.state.code().to_string()];
                if p.shared_pending.union(t.pending).has_sigkill() && t.state != TaskState::Zombie {
                    notes.push("SIGKILL pending".into());
                }
                if t.flags.exiting() && t.state != TaskState::Zombie {
                    notes.push("exiting".into());
                }
                if let Some(w) = t.wchan_name() {
                    notes.push(w.to_string());
                }
                if t.tid == p.pid {
                    format!("{} {} ({})", p.comm, p.pid, notes.join(", "))
                } else {
                    format!(
                        "{} {} of {} {} ({})",
                        t.comm,
                        t.tid,
                        p.comm,
                        p.pid,
                        notes.join(", ")
                    )
                }
            }
            None => format!("task {tid} of {pid} (gone)"),
        },
        Node::FuseConnection { id, mount_point } => format!("FUSE connection {id} ({mount_point})"),
        Node::Server { fs, name } => format!("{fs} server {name}"),
        Node::BlockDevice { name } => crate::storage::device_words(snap, name),
        Node::Filesystem {
            mount_point,
            fs_type,
            major,
            minor,
            device,
        } => {
            let mut s = format!(
                "filesystem {mount_point} ({fs_type} on {}",
                device.clone().unwrap_or_else(|| format!("{major}:{minor}"))
            );
            if let Some(sb) = snap.superblock(*major, *minor) {
                if sb.frozen.is_frozen() {
                    s.push_str(", frozen");
                }
            }
            s.push(')');
            s
        }
        Node::Unknown { what } => what.clone(),
    }
}

/// The node of a mount's filesystem.
pub fn fs_node(snap: &Snapshot, m: &wedge_model::Mount) -> Node {
    Node::Filesystem {
        mount_point: m.mount_point.clone(),
        fs_type: m.fs_type.clone(),
        major: m.major,
        minor: m.minor,
        device: crate::storage::device_of_mount(snap, m),
    }
}

/// A storage waiter's edge to the filesystem or device it waits on.
fn storage_edge(
    snap: &Snapshot,
    p: &Process,
    t: &Thread,
    kind: &WaitKind,
    from: &Node,
    g: &mut Graph,
) {
    use crate::storage::Target;
    let Some(target) = crate::storage::target(snap, p, t) else {
        return;
    };
    let what = crate::storage::kind_words(kind).unwrap_or_default();
    let by = target.by().clone();
    let (to, edge) = match &target {
        Target::Device { name, .. } => {
            (Node::BlockDevice { name: name.clone() }, EdgeKind::DeviceIo)
        }
        Target::Filesystem { .. } => {
            let Some(m) = target.mount(snap) else { return };
            let kind = if matches!(kind, WaitKind::FrozenFilesystem { .. }) {
                EdgeKind::FrozenFilesystem
            } else {
                EdgeKind::FilesystemIo
            };
            (fs_node(snap, m), kind)
        }
    };
    g.edges.push(Edge {
        from: from.clone(),
        to,
        kind: edge,
        detail: format!("{what}; {}", by.words()),
        likely: by.likely(),
    });
}

/// From the filesystems and devices tasks wait on, down the stack: the
/// filesystem's device (and its blocked journal thread), a partition's
/// disk, a dm/md device's slaves, a loop device's worker or, when no
/// worker is seen, where its backing file lives (a FUSE connection, a
/// server, another filesystem: the chain goes on).
fn expand_storage(snap: &Snapshot, g: &mut Graph) {
    use crate::storage::DeviceThread;
    let mut todo: Vec<Node> = g
        .edges
        .iter()
        .map(|e| e.to.clone())
        .filter(|n| matches!(n, Node::BlockDevice { .. } | Node::Filesystem { .. }))
        .collect();
    let mut done: HashSet<Node> = HashSet::new();
    let threads = || {
        snap.processes
            .iter()
            .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
            .filter(|(_, t)| t.flags.kthread())
    };
    while let Some(n) = todo.pop() {
        if !done.insert(n.clone()) || done.len() > 256 {
            continue;
        }
        let mut push = |g: &mut Graph, to: Node, kind: EdgeKind, detail: String, likely: bool| {
            if matches!(to, Node::BlockDevice { .. } | Node::Filesystem { .. }) {
                todo.push(to.clone());
            }
            g.edges.push(Edge {
                from: n.clone(),
                to,
                kind,
                detail,
                likely,
            });
        };
        match &n {
            // Writers held at a freeze wait on the thaw, not on the
            // device: the chain ends at the filesystem.
            Node::Filesystem { .. }
                if g.edges
                    .iter()
                    .filter(|e| e.to == n)
                    .all(|e| e.kind == EdgeKind::FrozenFilesystem) => {}
            Node::Filesystem {
                device: Some(dev), ..
            } => {
                let exact = snap.block_device_named(dev).is_some();
                push(
                    g,
                    Node::BlockDevice { name: dev.clone() },
                    EdgeKind::FilesystemDevice,
                    if exact {
                        "lives on this device (the superblock's device number)".into()
                    } else {
                        "lives on this device (the mount's source; sysfs not read)".into()
                    },
                    !exact,
                );
                for (p, t) in threads().filter(|(_, t)| {
                    t.state == TaskState::DiskSleep
                        && DeviceThread::of(&t.comm) == Some(DeviceThread::Journal(dev.clone()))
                }) {
                    push(
                        g,
                        task(p, t),
                        EdgeKind::JournalThread,
                        format!("its journal thread {} is blocked", t.comm),
                        true,
                    );
                }
            }
            Node::BlockDevice { name } => {
                let d = snap.block_device_named(name);
                if let Some(parent) = d.and_then(|d| d.parent.clone()) {
                    push(
                        g,
                        Node::BlockDevice { name: parent },
                        EdgeKind::PartitionOf,
                        "a partition of this disk".into(),
                        false,
                    );
                }
                for s in d.map(|d| d.slaves.clone()).unwrap_or_default() {
                    push(
                        g,
                        Node::BlockDevice { name: s },
                        EdgeKind::StackedOn,
                        "built on this device (slaves/)".into(),
                        false,
                    );
                }
                let loop_dev = d.map_or(name.starts_with("loop"), |d| {
                    d.kind == wedge_model::BlockKind::Loop
                });
                if !loop_dev {
                    continue;
                }
                let workers: Vec<(&Process, &Thread)> = threads()
                    .filter(|(_, t)| {
                        t.state != TaskState::Running
                            && DeviceThread::of(&t.comm)
                                == Some(DeviceThread::LoopWorker(name.clone()))
                    })
                    .collect();
                for (p, t) in &workers {
                    push(
                        g,
                        task(p, t),
                        EdgeKind::DeviceWorker,
                        format!("its I/O is being done by kernel thread {}", t.comm),
                        true,
                    );
                }
                // The backing file matters while requests are in flight:
                // an idle loop device waits on nothing.
                let busy = d.is_some_and(|d| {
                    d.inflight.is_some_and(|i| i.total() > 0)
                        || d.progress.is_some_and(|p| p.stalled())
                });
                if !workers.is_empty() || !busy {
                    continue;
                }
                let Some(file) = d.and_then(|d| d.backing.as_ref()).map(|b| b.file.clone()) else {
                    continue;
                };
                let Some(m) = crate::storage::mount_of_path(snap, &file) else {
                    continue;
                };
                let to = match m.class() {
                    FsClass::Fuse { connection, .. } => Node::FuseConnection {
                        id: connection,
                        mount_point: m.mount_point.clone(),
                    },
                    FsClass::Nfs { server } => Node::Server {
                        fs: "nfs".into(),
                        name: server,
                    },
                    FsClass::Cifs { server } => Node::Server {
                        fs: "cifs".into(),
                        name: server,
                    },
                    FsClass::Lustre { server } => Node::Server {
                        fs: "lustre".into(),
                        name: server,
                    },
                    _ => fs_node(snap, m),
                };
                push(
                    g,
                    to,
                    EdgeKind::LoopBacking,
                    format!(
                        "its backing file {file} is on {} ({}); no worker thread of it is seen",
                        m.mount_point, m.fs_type
                    ),
                    true,
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: i32) -> Node {
        Node::Task { pid, tid: pid }
    }

    fn e(a: i32, b: i32) -> Edge {
        Edge {
            from: t(a),
            to: t(b),
            kind: EdgeKind::LockHolder,
            detail: String::new(),
            likely: false,
        }
    }

    #[test]
    fn chains_and_cycles() {
        // 1 → 2 → 3 → 2 (a cycle of 2 and 3), and 4 → 5 (a plain chain).
        let g = Graph {
            edges: vec![e(1, 2), e(2, 3), e(3, 2), e(4, 5)],
        };
        assert_eq!(g.chains(&t(4)), vec![vec![t(4), t(5)]]);
        assert_eq!(g.chains(&t(1)), vec![vec![t(1), t(2), t(3), t(2)]]);
        assert_eq!(g.cycles(), vec![vec![t(2), t(3)]]);
        assert_eq!(g.roots(), vec![t(5)]);
    }
}
