//! Open files, the filesystems they live on, and FUSE connections.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenFile {
    pub fd: i32,
    /// What the descriptor points at: a path, `pipe:[123]`,
    /// `anon_inode:[io_uring]`, `socket:[456]`…
    pub target: String,
    pub kind: FileKind,
    pub pos: Option<u64>,
    /// open(2) flags, as the kernel prints them (octal).
    pub flags: Option<u32>,
    /// The mount the file lives on; resolves through
    /// [`crate::Snapshot::mount`].
    pub mount_id: Option<u64>,
    pub inode: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<FdDetail>,
}

/// The broad kind of an open file, from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Path,
    Pipe,
    Socket,
    IoUring,
    Eventfd,
    Epoll,
    Inotify,
    Fanotify,
    Signalfd,
    Timerfd,
    Pidfd,
    AnonInode,
    /// A path whose file was unlinked (`(deleted)` suffix).
    Deleted,
    Other,
}

impl FileKind {
    /// Classifies a descriptor's link target.
    pub fn classify(target: &str) -> FileKind {
        if let Some(anon) = target.strip_prefix("anon_inode:") {
            let anon = anon.trim_matches(['[', ']']);
            return match anon {
                "io_uring" => FileKind::IoUring,
                "eventfd" => FileKind::Eventfd,
                "eventpoll" => FileKind::Epoll,
                "inotify" => FileKind::Inotify,
                "fanotify" => FileKind::Fanotify,
                "signalfd" => FileKind::Signalfd,
                "timerfd" => FileKind::Timerfd,
                "pidfd" => FileKind::Pidfd,
                _ => FileKind::AnonInode,
            };
        }
        if target.starts_with("pipe:") {
            FileKind::Pipe
        } else if target.starts_with("socket:") {
            FileKind::Socket
        } else if target.starts_with('/') {
            if target.ends_with(" (deleted)") {
                FileKind::Deleted
            } else {
                FileKind::Path
            }
        } else {
            FileKind::Other
        }
    }
}

/// Type-specific state of a descriptor, from its fdinfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FdDetail {
    IoUring(IoUringInfo),
    Eventfd {
        count: Option<u64>,
    },
    /// Each watched descriptor number and its event mask.
    Epoll {
        targets: Vec<(i32, u32)>,
    },
    /// Each watch: inode and device of the watched object.
    Inotify {
        watches: Vec<(u64, String)>,
    },
}

/// An io_uring instance, from its fdinfo. The layout changed often (5.x to
/// 6.x): every key is kept raw, and the ones analysis needs are parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IoUringInfo {
    pub sq_entries: Option<u64>,
    pub cq_entries: Option<u64>,
    /// Submissions not yet consumed by the kernel (SqTail - SqHead).
    pub sq_pending: Option<u64>,
    /// Completions not yet reaped by the application (CqTail - CqHead).
    pub cq_ready: Option<u64>,
    /// Pid of the SQPOLL thread, when the ring has one.
    pub sq_thread: Option<i32>,
    pub overflow: Option<u64>,
    pub raw: BTreeMap<String, String>,
}

/// One mount, as the mount table lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub mount_id: u64,
    pub parent_id: u64,
    /// The superblock's device number; for FUSE its minor is the
    /// connection number under /sys/fs/fuse/connections.
    pub major: u32,
    pub minor: u32,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
    /// The mount namespace whose mount table listed it: mount points are
    /// paths in that namespace only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt_ns: Option<u64>,
}

/// What kind of filesystem a mount is, for deciding who a waiter waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum FsClass {
    /// Served by a user-space daemon over /dev/fuse.
    Fuse {
        subtype: Option<String>,
        connection: u32,
    },
    /// NFS client: the server is the part of the source before `:`.
    Nfs {
        server: String,
    },
    Cifs {
        server: String,
    },
    Lustre {
        server: String,
    },
    /// Other network or cluster filesystems (ceph, 9p, glusterfs via FUSE…).
    Network {
        fs_type: String,
    },
    Local,
    Pseudo,
}

impl Mount {
    pub fn class(&self) -> FsClass {
        let t = self.fs_type.as_str();
        if t == "fuse" || t == "fuseblk" || t.starts_with("fuse.") {
            return FsClass::Fuse {
                subtype: t.strip_prefix("fuse.").map(str::to_string),
                connection: self.minor,
            };
        }
        let server = || {
            let s = self.source.as_str();
            if let Some(rest) = s.strip_prefix("//") {
                rest.split('/').next().unwrap_or(rest).to_string()
            } else {
                s.rsplit_once(":/")
                    .map(|(h, _)| h)
                    .unwrap_or_else(|| s.split(':').next().unwrap_or(s))
                    .to_string()
            }
        };
        match t {
            "nfs" | "nfs4" => FsClass::Nfs { server: server() },
            "cifs" | "smb3" | "smbfs" => FsClass::Cifs { server: server() },
            "lustre" => FsClass::Lustre { server: server() },
            "ceph" | "9p" | "afs" | "gfs2" | "ocfs2" | "glusterfs" | "orangefs" | "virtiofs" => {
                FsClass::Network {
                    fs_type: t.to_string(),
                }
            }
            "proc" | "sysfs" | "devtmpfs" | "devpts" | "tmpfs" | "cgroup" | "cgroup2"
            | "securityfs" | "debugfs" | "tracefs" | "bpf" | "mqueue" | "hugetlbfs" | "pstore"
            | "configfs" | "fusectl" | "binfmt_misc" | "autofs" | "efivarfs" | "nsfs"
            | "rpc_pipefs" | "ramfs" => FsClass::Pseudo,
            _ => FsClass::Local,
        }
    }

    /// Filesystems where a stat, statfs or read can wait on something
    /// outside this machine's control (a daemon or a server).
    pub fn is_remote_or_userspace(&self) -> bool {
        matches!(
            self.class(),
            FsClass::Fuse { .. }
                | FsClass::Nfs { .. }
                | FsClass::Cifs { .. }
                | FsClass::Lustre { .. }
                | FsClass::Network { .. }
        )
    }
}

/// A FUSE connection, as /sys/fs/fuse/connections/N shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuseConnection {
    pub id: u32,
    /// Requests sent to the daemon (or queued for it) and not yet answered.
    pub waiting: Option<u64>,
    pub max_background: Option<u64>,
    pub congestion_threshold: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(fs: &str, source: &str) -> Mount {
        Mount {
            mount_id: 1,
            parent_id: 0,
            major: 0,
            minor: 52,
            root: "/".into(),
            mount_point: "/mnt".into(),
            options: "rw".into(),
            fs_type: fs.into(),
            source: source.into(),
            super_options: String::new(),
            mnt_ns: None,
        }
    }

    #[test]
    fn classes() {
        assert_eq!(
            mount("fuse.sshfs", "me@host:/").class(),
            FsClass::Fuse {
                subtype: Some("sshfs".into()),
                connection: 52
            }
        );
        assert_eq!(
            mount("nfs4", "fileserver:/export/home").class(),
            FsClass::Nfs {
                server: "fileserver".into()
            }
        );
        assert_eq!(
            mount("nfs", "[fd00::1]:/export").class(),
            FsClass::Nfs {
                server: "[fd00::1]".into()
            }
        );
        assert_eq!(
            mount("cifs", "//nas/share").class(),
            FsClass::Cifs {
                server: "nas".into()
            }
        );
        assert_eq!(
            mount("lustre", "10.0.0.1@o2ib:/scratch").class(),
            FsClass::Lustre {
                server: "10.0.0.1@o2ib".into()
            }
        );
        assert_eq!(mount("ext4", "/dev/vda").class(), FsClass::Local);
    }

    #[test]
    fn file_kinds() {
        assert_eq!(
            FileKind::classify("anon_inode:[io_uring]"),
            FileKind::IoUring
        );
        assert_eq!(
            FileKind::classify("anon_inode:[eventpoll]"),
            FileKind::Epoll
        );
        assert_eq!(FileKind::classify("anon_inode:inotify"), FileKind::Inotify);
        assert_eq!(FileKind::classify("/tmp/x (deleted)"), FileKind::Deleted);
        assert_eq!(FileKind::classify("pipe:[12]"), FileKind::Pipe);
    }
}
