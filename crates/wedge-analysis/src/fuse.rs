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

use crate::rules::pid_path;
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
            Some(tid) => format!("{}/task/{tid}/fd/{fd}", pid_path(snap, p.pid)),
            None => format!("{}/fd/{fd}", pid_path(snap, p.pid)),
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
                format!("{}/cwd", pid_path(snap, p.pid)),
                format!(
                    "tied by the working directory only: thread {} is in {call}(), a path lookup, and \
                     the cwd {cwd} is on {conn}; the path argument is in the process's memory and is \
                     not read (that takes the stuck process's mmap_lock), so an absolute path \
                     elsewhere cannot be ruled out",
                    t.tid
                ),
            ),
            TieBy::OnlyBusy => (
                "/sys/fs/fuse/connections".to_string(),
                format!(
                    "{conn} is the only FUSE connection with requests waiting, and every FUSE \
                     waiter counts in its own connection's waiting"
                ),
            ),
            TieBy::OnlyOpenFile => (
                match p.fds_via_tid {
                    Some(tid) => format!("{}/task/{tid}/fd", pid_path(snap, p.pid)),
                    None => format!("{}/fd", pid_path(snap, p.pid)),
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

const AT_FDCWD: i32 = -100;

/// System calls whose first argument is the file they work on.
const FD_CALLS: &[&str] = &[
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
const AT_CALLS: &[&str] = &[
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
const PATH_CALLS: &[&str] = &[
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

fn syscall_name(t: &Thread) -> Option<&str> {
    match t.syscall.value()? {
        Syscall::InSyscall { name, .. } => name.as_deref(),
        _ => None,
    }
}

fn syscall_arg0(t: &Thread) -> Option<i32> {
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

fn file<'a>(p: &'a Process, fd: i32) -> Option<&'a OpenFile> {
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
            Some(n) if FD_CALLS.contains(&n) || AT_CALLS.contains(&n) => {
                if p.fds.value().is_none() {
                    why.push(format!("the fd argument of {n}() cannot be resolved: the open files are not known"));
                } else {
                    why.push(format!("the fd argument of {n}() is not an open file on a FUSE mount"));
                }
            }
            Some(n) if PATH_CALLS.contains(&n) => why.push(format!(
                "{n}() resolves a path wedge does not read (it is in the process's memory) and the cwd is not on a FUSE mount"
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
