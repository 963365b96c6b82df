//! Which FUSE connection a waiting task waits on.
//!
//! The kernel does not say: a task in request_wait_answer() (or queued in
//! fuse_get_req()) shows only its stack. What ties it to a connection is
//! the file its blocked system call works on: the fd argument (read, write,
//! fsync…) names an open file, whose fdinfo gives its mount, whose device
//! minor is the connection number; a path lookup (stat, openat on
//! AT_FDCWD) starts from the cwd. Where none of that ties it, the
//! connections that could be the one are candidates, never a remedy:
//! aborting a connection fails every request of every process on it.

use wedge_model::{FsClass, Mount, OpenFile, Process, Snapshot, Syscall, Thread};

/// How a waiter was tied to its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TieBy {
    /// The blocked system call's fd argument is a file on the mount.
    Fd { fd: i32, target: String },
    /// A `*at()` call's directory fd is on the mount (the path argument,
    /// in user memory, is not read: it could be absolute).
    DirFd { fd: i32, target: String },
    /// A path lookup from the cwd, which is on the mount. The path
    /// argument is not read (it is in the process's memory; reading that
    /// takes the stuck process's mmap_lock), so an absolute path elsewhere
    /// cannot be ruled out.
    Cwd { cwd: String },
    /// The only FUSE connection with requests waiting: every FUSE waiter
    /// counts in its connection's `waiting` (fuse_get_req() raises
    /// num_waiting before anything can block), so it must be this one.
    OnlyBusy,
    /// The process's only open file on a FUSE mount, for a wait whose
    /// system call names no file (a page fault, an exit).
    OnlyOpenFile,
}

/// A waiter tied to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tie {
    pub connection: u32,
    pub mount_point: String,
    pub by: TieBy,
}

impl Tie {
    /// Tied by a kernel fact or by deduction, not by a likely guess.
    pub fn sure(&self) -> bool {
        matches!(self.by, TieBy::Fd { .. } | TieBy::OnlyBusy)
    }

    /// The tie as evidence: where it was read, and what it says.
    pub fn evidence(&self, snap: &Snapshot, p: &Process, t: &Thread) -> (String, String) {
        let conn = format!("FUSE connection {} ({})", self.connection, self.mount_point);
        let call = syscall_name(t).unwrap_or("its system call");
        let fd_path = |fd: i32| match p.fds_via_tid {
            Some(tid) => format!("{}/fd/{fd}", snap.source.thread_locator(p.pid, tid)),
            None => format!("{}/fd/{fd}", snap.source.process_locator(p.pid)),
        };
        match &self.by {
            TieBy::Fd { fd, target } => (
                fd_path(*fd),
                format!(
                    "thread {} is in {call}() on fd {fd}, which is {target} on {conn}",
                    t.tid
                ),
            ),
            TieBy::DirFd { fd, target } => (
                fd_path(*fd),
                format!(
                    "thread {} is in {call}() relative to directory fd {fd}, {target} on {conn} \
                     (the path argument is not read: an absolute path would lead elsewhere)",
                    t.tid
                ),
            ),
            TieBy::Cwd { cwd } => (
                format!("{}/cwd", snap.source.process_locator(p.pid)),
                format!(
                    "tied by the working directory only: thread {} is in {call}(), a path lookup, and \
                     the cwd {cwd} is on {conn}; the path argument is in the process's memory and is \
                     not read (that takes the stuck process's mmap_lock), so an absolute path \
                     elsewhere cannot be ruled out",
                    t.tid
                ),
            ),
            TieBy::OnlyBusy => (
                snap.source.fuse_locator(None),
                format!(
                    "{conn} is the only FUSE connection with requests waiting, and every FUSE \
                     waiter counts in its own connection's waiting"
                ),
            ),
            TieBy::OnlyOpenFile => (
                match p.fds_via_tid {
                    Some(tid) => format!("{}/fd", snap.source.thread_locator(p.pid, tid)),
                    None => format!("{}/fd", snap.source.process_locator(p.pid)),
                },
                format!(
                    "likely: the only open file of the process on a FUSE mount is on {conn}; \
                     thread {} {}",
                    t.tid,
                    match &t.syscall {
                        wedge_model::Field::Value(Syscall::InSyscall { .. }) =>
                            format!("is in {call}(), which names no file"),
                        _ => "is not in a system call that names a file".to_string(),
                    }
                ),
            ),
        }
    }
}

/// One connection the waiter may wait on, with what tells it apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub connection: u32,
    pub mount_point: String,
    pub waiting: Option<u64>,
    /// Processes (`comm (pid)`) with open files or their cwd under it.
    pub users: Vec<String>,
}

impl Candidate {
    pub fn describe(&self) -> String {
        let mut s = format!("FUSE connection {} ({})", self.connection, self.mount_point);
        if let Some(w) = self.waiting {
            s.push_str(&format!(", {w} request(s) waiting"));
        }
        if self.users.is_empty() {
            s.push_str(", no other process seen using it");
        } else {
            s.push_str(&format!(", used by {}", self.users.join(", ")));
        }
        s
    }
}

/// What wedge can say about the connection a FUSE waiter waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tied(Tie),
    /// Not tied: the connections it could be, and why it cannot tell.
    Candidates {
        candidates: Vec<Candidate>,
        why: String,
    },
}

pub(crate) const AT_FDCWD: i32 = -100;

/// System calls whose first argument is the file they work on.
pub(crate) const FD_CALLS: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fstat",
    "newfstat",
    "fstatfs",
    "getdents",
    "getdents64",
    "ioctl",
    "fcntl",
    "flock",
    "lseek",
    "fallocate",
    "fadvise64",
    "sync_file_range",
    "syncfs",
    "fgetxattr",
    "fsetxattr",
    "flistxattr",
    "fremovexattr",
    "fchmod",
    "fchown",
    "copy_file_range",
    "splice",
    "sendfile",
    "fchdir",
];

/// `*at()` calls: directory fd first, then a path.
pub(crate) const AT_CALLS: &[&str] = &[
    "openat",
    "openat2",
    "newfstatat",
    "fstatat64",
    "statx",
    "faccessat",
    "faccessat2",
    "mkdirat",
    "mknodat",
    "unlinkat",
    "renameat",
    "renameat2",
    "linkat",
    "readlinkat",
    "fchmodat",
    "fchmodat2",
    "fchownat",
    "utimensat",
    "futimesat",
    "name_to_handle_at",
    "execveat",
    "getxattrat",
    "setxattrat",
    "listxattrat",
    "removexattrat",
];

/// Calls that take a path and nothing else to resolve it from.
pub(crate) const PATH_CALLS: &[&str] = &[
    "open",
    "creat",
    "stat",
    "lstat",
    "access",
    "mkdir",
    "rmdir",
    "unlink",
    "rename",
    "readlink",
    "chdir",
    "chroot",
    "chmod",
    "chown",
    "lchown",
    "truncate",
    "statfs",
    "getxattr",
    "lgetxattr",
    "setxattr",
    "lsetxattr",
    "listxattr",
    "llistxattr",
    "removexattr",
    "lremovexattr",
    "execve",
    "utime",
    "utimes",
    "mknod",
    "link",
    "symlink",
];

pub(crate) fn syscall_name(t: &Thread) -> Option<&str> {
    match t.syscall.value()? {
        Syscall::InSyscall { name, .. } => name.as_deref(),
        _ => None,
    }
}

pub(crate) fn syscall_arg0(t: &Thread) -> Option<i32> {
    match t.syscall.value()? {
        // The kernel takes an fd as an int: the upper half of the register
        // is whatever the caller left there.
        Syscall::InSyscall { args, .. } => args.first().map(|&a| a as u32 as i32),
        _ => None,
    }
}

/// Whether the thread's blocked system call resolves a path.
pub fn in_path_call(t: &Thread) -> bool {
    syscall_name(t).is_some_and(|n| AT_CALLS.contains(&n) || PATH_CALLS.contains(&n))
}

fn fuse_of(m: &Mount) -> Option<u32> {
    match m.class() {
        FsClass::Fuse { connection, .. } => Some(connection),
        _ => None,
    }
}

fn file(p: &Process, fd: i32) -> Option<&OpenFile> {
    p.fds.value()?.iter().find(|f| f.fd == fd)
}

/// `waiting` of a connection, when fusectl was readable.
pub fn waiting(snap: &Snapshot, connection: u32) -> Option<u64> {
    snap.fuse_connections
        .value()?
        .iter()
        .find(|c| c.id == connection)
        .and_then(|c| c.waiting)
}

/// A likely tie that fusectl contradicts (no request waiting there) is no
/// tie.
fn contradicted(snap: &Snapshot, connection: u32) -> bool {
    waiting(snap, connection) == Some(0)
}

/// The connection thread `t` of `p` waits on, or the candidates.
pub fn target(snap: &Snapshot, p: &Process, t: &Thread) -> Target {
    let tie = |m: &Mount, by: TieBy| {
        fuse_of(m).map(|connection| Tie {
            connection,
            mount_point: m.mount_point.clone(),
            by,
        })
    };
    let name = syscall_name(t);
    let arg0 = syscall_arg0(t);
    // 1. The fd the call works on.
    if let (Some(n), Some(fd)) = (name, arg0) {
        if FD_CALLS.contains(&n) || (AT_CALLS.contains(&n) && fd != AT_FDCWD) {
            if let Some(f) = file(p, fd) {
                let by = if FD_CALLS.contains(&n) {
                    TieBy::Fd {
                        fd,
                        target: f.target.clone(),
                    }
                } else {
                    TieBy::DirFd {
                        fd,
                        target: f.target.clone(),
                    }
                };
                let sure = matches!(by, TieBy::Fd { .. });
                if let Some(t) = f
                    .mount_id
                    .and_then(|m| snap.mount(m))
                    .and_then(|m| tie(m, by))
                {
                    if sure || !contradicted(snap, t.connection) {
                        return Target::Tied(t);
                    }
                }
            }
        }
    }
    // 2. A path lookup from the cwd.
    let from_cwd = name.is_some_and(|n| PATH_CALLS.contains(&n))
        || (name.is_some_and(|n| AT_CALLS.contains(&n)) && arg0 == Some(AT_FDCWD));
    if from_cwd {
        if let Some(cwd) = p.cwd.value() {
            let t = snap
                .mount_at(p, cwd)
                .and_then(|m| tie(m, TieBy::Cwd { cwd: cwd.clone() }));
            if let Some(t) = t.filter(|t| !contradicted(snap, t.connection)) {
                return Target::Tied(t);
            }
        }
    }
    // 3. By elimination: the only connection with requests waiting.
    let busy: Vec<&Mount> = busy_mounts(snap);
    if busy.len() == 1 {
        if let Some(t) = tie(busy[0], TieBy::OnlyBusy) {
            return Target::Tied(t);
        }
    }
    // 4. The only FUSE file the process has open, for a wait that names no
    // file (a path lookup's file is not among the open ones).
    let open: Vec<&Mount> = snap
        .mounts_of(p)
        .into_iter()
        .filter(|m| fuse_of(m).is_some())
        .collect();
    if !from_cwd && open.len() == 1 {
        if let Some(t) = tie(open[0], TieBy::OnlyOpenFile) {
            if !contradicted(snap, t.connection) {
                return Target::Tied(t);
            }
        }
    }
    // Candidates: the busy connections when fusectl tells, else the FUSE
    // mounts the process can see.
    let fusectl = snap.fuse_connections.value().is_some();
    let pool: Vec<&Mount> = if fusectl {
        busy
    } else if !open.is_empty() && !from_cwd {
        open
    } else {
        let ns = p.namespace("mnt");
        snap.mounts
            .iter()
            .filter(|m| fuse_of(m).is_some())
            .filter(|m| ns.is_none() || m.mnt_ns.is_none() || m.mnt_ns == ns)
            .collect()
    };
    let mut why = Vec::new();
    match &t.syscall {
        wedge_model::Field::Value(Syscall::InSyscall { .. }) => match name {
            Some(n) if FD_CALLS.contains(&n) || (AT_CALLS.contains(&n) && !from_cwd) => {
                if p.fds.value().is_none() {
                    why.push(format!("the fd argument of {n}() cannot be resolved: the open files are not known"));
                } else {
                    why.push(format!("the fd argument of {n}() is not an open file on a FUSE mount"));
                }
            }
            Some(n) if from_cwd => why.push(format!(
                "{n}() resolves a path wedge does not read (it is in the process's memory) and the cwd ({}) is not on a FUSE mount",
                match &p.cwd {
                    wedge_model::Field::Value(c) => c.clone(),
                    wedge_model::Field::Missing(m) => format!("unknown: {}", m.detail),
                }
            )),
            Some(n) => why.push(format!("{n}() names no file")),
            None => why.push("the system call is unknown".into()),
        },
        wedge_model::Field::Value(_) => {
            why.push("the task is not in a system call (a page fault on a mapped file, or an exit whose files are already closed)".into())
        }
        wedge_model::Field::Missing(m) => why.push(format!("its system call is not known: {}", m.detail)),
    }
    if let wedge_model::Field::Missing(m) = &snap.fuse_connections {
        why.push(format!(
            "fusectl cannot be read ({}), so which connections have requests waiting is not known",
            m.detail
        ));
    }
    let mut candidates: Vec<Candidate> = pool
        .into_iter()
        .filter_map(|m| {
            let connection = fuse_of(m)?;
            Some(Candidate {
                connection,
                mount_point: m.mount_point.clone(),
                waiting: waiting(snap, connection),
                users: users(snap, p, m),
            })
        })
        .collect();
    candidates.sort_by_key(|c| c.connection);
    candidates.dedup_by_key(|c| c.connection);
    Target::Candidates {
        candidates,
        why: why.join("; "),
    }
}

/// FUSE mounts whose connection has requests waiting, one per connection.
pub fn busy_mounts(snap: &Snapshot) -> Vec<&Mount> {
    let Some(conns) = snap.fuse_connections.value() else {
        return Vec::new();
    };
    let mut v: Vec<&Mount> = Vec::new();
    for c in conns.iter().filter(|c| c.waiting.unwrap_or(0) > 0) {
        if let Some(m) = snap.mounts.iter().find(|m| fuse_of(m) == Some(c.id)) {
            v.push(m);
        }
    }
    v
}

/// Other processes with an open file on mount `m` or their cwd under it:
/// the way to tell candidate connections apart (whose request is this?).
fn users(snap: &Snapshot, me: &Process, m: &Mount) -> Vec<String> {
    let mut v: Vec<String> = snap
        .processes
        .iter()
        .filter(|q| q.pid != me.pid)
        .filter(|q| {
            q.fds
                .value()
                .is_some_and(|f| f.iter().any(|f| f.mount_id == Some(m.mount_id)))
                || q.cwd
                    .value()
                    .and_then(|c| snap.mount_at(q, c))
                    .is_some_and(|x| x.mount_id == m.mount_id)
        })
        .map(|q| format!("{} ({})", q.comm, q.pid))
        .take(4)
        .collect();
    v.dedup();
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::finding::Finding;
    use wedge_kernel::{SignalSet, TaskFlags, TaskState, ThreadKind};
    use wedge_model::{
        Field, FileKind, FuseConnection, KernelFrame, MissingReason, Source, Syscall,
    };

    const READ: i64 = 0;
    const STATX: i64 = 332;
    const EXIT_GROUP: i64 = 231;

    fn mount(id: u64, minor: u32, mp: &str, fs: &str) -> Mount {
        Mount {
            mount_id: id,
            parent_id: 1,
            major: 0,
            minor,
            root: "/".into(),
            mount_point: mp.into(),
            options: "rw".into(),
            fs_type: fs.into(),
            source: "x".into(),
            super_options: String::new(),
            mnt_ns: Some(7),
        }
    }

    pub(crate) fn thread(
        tid: i32,
        state: TaskState,
        call: Option<(i64, &str, Vec<u64>)>,
    ) -> Thread {
        let fuse = call.is_some();
        Thread {
            tid,
            comm: format!("t{tid}"),
            state,
            flags: TaskFlags(0),
            kind: ThreadKind::User,
            start_time: 0,
            processor: None,
            ns_tids: vec![tid],
            tracer_pid: None,
            pending: SignalSet(0),
            blocked: SignalSet(0),
            wchan: Field::Value(fuse.then(|| "request_wait_answer".to_string())),
            kernel_stack: Field::Value(if fuse {
                vec![
                    KernelFrame::named("request_wait_answer"),
                    KernelFrame::named("__fuse_simple_request"),
                ]
            } else {
                Vec::new()
            }),
            syscall: match call {
                Some((nr, name, args)) => Field::Value(Syscall::InSyscall {
                    nr,
                    name: Some(name.into()),
                    args,
                    sp: 0,
                    pc: 0,
                }),
                None => Field::missing(MissingReason::NotCollected, "-"),
            },
            sched: Field::missing(MissingReason::NotCollected, "-"),
            utime: 0,
            stime: 0,
            sleep_kind: None,
            lock_wait: None,
            stack_source: None,
            in_iowait: None,
        }
    }

    pub(crate) fn process(
        pid: i32,
        threads: Vec<Thread>,
        fds: Vec<(i32, &str, u64)>,
        cwd: &str,
    ) -> Process {
        Process {
            pid,
            start_time: 0,
            comm: format!("p{pid}"),
            ppid: 1,
            pgrp: pid,
            session: pid,
            tty_nr: 0,
            uid: Some(0),
            ns_pids: vec![pid],
            cmdline: Field::Value(vec![format!("p{pid}")]),
            exe: Field::missing(MissingReason::NotCollected, "-"),
            cwd: Field::Value(cwd.into()),
            root: Field::Value("/".into()),
            namespaces: Field::Value(vec![wedge_model::Namespace {
                kind: "mnt".into(),
                inode: 7,
            }]),
            cgroup: Field::missing(MissingReason::NotCollected, "-"),
            shared_pending: SignalSet(0),
            ignored: SignalSet(0),
            caught: SignalSet(0),
            handlers: Vec::new(),
            sigq: None,
            cap_effective: None,
            fds: Field::Value(
                fds.into_iter()
                    .map(|(fd, target, mnt)| OpenFile {
                        fd,
                        target: target.into(),
                        kind: FileKind::classify(target),
                        pos: None,
                        flags: None,
                        mount_id: Some(mnt),
                        inode: None,
                        detail: None,
                    })
                    .collect(),
            ),
            fds_via_tid: None,
            dispositions_missing: None,
            threads,
        }
    }

    /// Two FUSE mounts (connections 41 at /mnt/a and 42 at /mnt/b), both
    /// with a request waiting, and `procs`.
    fn snap(procs: Vec<Process>, fusectl: bool) -> Snapshot {
        let mut s = Snapshot::new(Source::Live {
            root: "/proc".into(),
        });
        s.mounts = vec![
            mount(1, 1, "/", "ext4"),
            mount(41, 41, "/mnt/a", "fuse.a"),
            mount(42, 42, "/mnt/b", "fuse.b"),
        ];
        s.fuse_connections = if fusectl {
            Field::Value(
                [41, 42]
                    .iter()
                    .map(|&id| FuseConnection {
                        id,
                        waiting: Some(1),
                        max_background: None,
                        congestion_threshold: None,
                    })
                    .collect(),
            )
        } else {
            Field::missing(MissingReason::NotSupported, "fusectl is not mounted")
        };
        s.processes = procs;
        s
    }

    fn finding_of(s: &Snapshot, pid: i32) -> Finding {
        crate::analyze(s)
            .into_iter()
            .find(|f| matches!(f.id, crate::RuleId::Fuse(_)) && f.pids.contains(&pid))
            .expect("a FUSE finding")
    }

    fn commands(f: &Finding) -> Vec<String> {
        f.remedies
            .iter()
            .filter_map(|r| r.command.clone())
            .collect()
    }

    #[test]
    fn zombie_leader_is_tied_through_the_threads_fd() {
        // The leader has exited (its fd table is gone); the table came
        // from the reading thread's task/TID/fd.
        let mut p = process(
            100,
            vec![
                thread(100, TaskState::Zombie, None),
                thread(
                    101,
                    TaskState::DiskSleep,
                    Some((READ, "read", vec![3, 0, 4096])),
                ),
            ],
            vec![(3, "/mnt/a/stall", 41)],
            "/",
        );
        p.fds_via_tid = Some(101);
        // Another process waits on the other busy connection.
        let other = process(
            200,
            vec![thread(
                200,
                TaskState::DiskSleep,
                Some((READ, "read", vec![5, 0, 1])),
            )],
            vec![(5, "/mnt/b/f", 42)],
            "/",
        );
        let s = snap(vec![p, other], true);
        let (p, t) = s.thread(101).expect("thread");
        match target(&s, p, t) {
            Target::Tied(tie) => {
                assert_eq!(tie.connection, 41);
                assert!(tie.sure());
                let (source, _) = tie.evidence(&s, p, t);
                assert_eq!(source, "/proc/100/task/101/fd/3");
            }
            other => panic!("not tied: {other:?}"),
        }
        let f = finding_of(&s, 100);
        let cmds = commands(&f).join("\n");
        assert!(cmds.contains("connections/41/abort"), "{cmds}");
        assert!(!cmds.contains("connections/42/"), "{cmds}");
        assert!(
            f.chain.iter().all(|c| !c.contains("connection 42")),
            "{:?}",
            f.chain
        );
    }

    #[test]
    fn untied_waiter_gets_candidates_not_remedies() {
        // An exiting task: its files are closed, exit_group() names none,
        // and two connections have requests waiting.
        let p = process(
            300,
            vec![thread(
                300,
                TaskState::DiskSleep,
                Some((EXIT_GROUP, "exit_group", vec![9])),
            )],
            vec![],
            "/",
        );
        let s = snap(vec![p], true);
        let (p, t) = s.thread(300).expect("thread");
        match target(&s, p, t) {
            Target::Candidates { candidates, .. } => {
                let ids: Vec<u32> = candidates.iter().map(|c| c.connection).collect();
                assert_eq!(ids, vec![41, 42]);
            }
            other => panic!("tied: {other:?}"),
        }
        let f = finding_of(&s, 300);
        assert!(
            commands(&f).iter().all(|c| !c.contains("/abort")),
            "{:?}",
            f.remedies
        );
        let ev: Vec<&str> = f.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            ev.iter()
                .any(|e| e.starts_with("candidate: FUSE connection 41")),
            "{ev:?}"
        );
        assert!(
            ev.iter()
                .any(|e| e.starts_with("candidate: FUSE connection 42")),
            "{ev:?}"
        );
        assert_eq!(
            f.chain.len(),
            1,
            "one chain for all candidates: {:?}",
            f.chain
        );
    }

    #[test]
    fn only_busy_connection_is_tied_by_elimination() {
        let p = process(
            400,
            vec![thread(
                400,
                TaskState::DiskSleep,
                Some((EXIT_GROUP, "exit_group", vec![0])),
            )],
            vec![],
            "/",
        );
        let mut s = snap(vec![p], true);
        if let Field::Value(c) = &mut s.fuse_connections {
            c[1].waiting = Some(0);
        }
        let (p, t) = s.thread(400).expect("thread");
        assert!(matches!(
            target(&s, p, t),
            Target::Tied(Tie {
                connection: 41,
                by: TieBy::OnlyBusy,
                ..
            })
        ));
    }

    #[test]
    fn stat_waiter_without_fusectl_is_tied_by_cwd() {
        // statx(AT_FDCWD, "stalldir/x", ...) from a cwd on /mnt/b; fusectl
        // not mounted: the connection is the mount's minor.
        let p = process(
            500,
            vec![thread(
                500,
                TaskState::Sleeping,
                Some((STATX, "statx", vec![0xffff_ff9c, 0x7ffd_0000, 0])),
            )],
            vec![(3, "/mnt/a/open-but-irrelevant", 41)],
            "/mnt/b/sub",
        );
        let s = snap(vec![p], false);
        let (p, t) = s.thread(500).expect("thread");
        match target(&s, p, t) {
            Target::Tied(tie) => {
                assert_eq!(tie.connection, 42);
                assert!(!tie.sure());
                assert!(matches!(tie.by, TieBy::Cwd { .. }));
            }
            other => panic!("not tied: {other:?}"),
        }
        let f = finding_of(&s, 500);
        let cmds = commands(&f);
        assert_eq!(cmds[0], "mount -t fusectl none /sys/fs/fuse/connections");
        assert_eq!(cmds[1], "echo 1 > /sys/fs/fuse/connections/42/abort");
        assert!(cmds.iter().all(|c| !c.contains("/41/")), "{cmds:?}");
        assert!(
            f.evidence
                .iter()
                .any(|e| e.fact.contains("working directory only")),
            "{:?}",
            f.evidence
        );
    }

    /// A child that inherited the daemon's /dev/fuse across fork() and
    /// only waits on the mount is a client: the daemon is the other
    /// holder (no circle reader → connection → reader). Alone, a holder
    /// stays named: a daemon stuck on its own mount is a real circle.
    #[test]
    fn a_holder_that_only_waits_is_not_the_daemon() {
        let reader = process(
            600,
            vec![thread(
                600,
                TaskState::DiskSleep,
                Some((STATX, "statx", vec![0xffff_ff9c, 0x7ffd_0000, 0])),
            )],
            vec![(3, "/dev/fuse", 1)],
            "/",
        );
        let daemon = process(
            601,
            vec![thread(601, TaskState::Sleeping, None)],
            vec![(3, "/dev/fuse", 1)],
            "/",
        );
        let s = snap(vec![reader.clone(), daemon], true);
        let (d, sure) = crate::graph::fuse_daemon(&s, "/mnt/a");
        assert_eq!(d.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![601]);
        assert!(!sure, "a deduction, said as likely");
        let s = snap(vec![reader], true);
        let (d, _) = crate::graph::fuse_daemon(&s, "/mnt/a");
        assert_eq!(d.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![600]);
    }

    #[test]
    fn mount_at_matches_whole_components() {
        let p = process(1, vec![thread(1, TaskState::Sleeping, None)], vec![], "/");
        let s = snap(vec![p], true);
        let p = &s.processes[0];
        assert_eq!(s.mount_at(p, "/mnt/b/x").map(|m| m.mount_id), Some(42));
        assert_eq!(s.mount_at(p, "/mnt/b").map(|m| m.mount_id), Some(42));
        assert_eq!(s.mount_at(p, "/mnt/bb").map(|m| m.mount_id), Some(1));
        assert_eq!(s.mount_at(p, "relative"), None);
    }
}
