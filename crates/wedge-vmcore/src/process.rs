//! What a process owns beyond its task_struct, read from kernel objects the
//! way /proc builds its files: the command line (user memory, through the
//! process's own page tables), the open files (`files->fdt`), the paths of
//! files, cwd and executable (dentries walked up, mounts crossed, as
//! `d_path()` does), the mount table of its namespace, and its signal
//! handlers (`sighand->action[]`).
//!
//! Offsets come from the dump's BTF, looked up once ([`ProcLayout`]); a
//! member a kernel lacks leaves that part unread with the member named.
//! Every walk is bounded (path depth and length, fd count, mount count,
//! command-line length) and loop-checked: the dump is hostile input.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mem::VirtMem;
use crate::tasks::Task;
use std::collections::HashMap;

/// PATH_MAX: `d_path()` fails past it (ENAMETOOLONG); so does this.
const PATH_MAX: usize = 4096;
/// Components of one path: deeper than any real tree (PATH_MAX / 2), so
/// only a dentry loop reaches it.
const MAX_DEPTH: usize = 2048;
/// More descriptors than anyone raises RLIMIT_NOFILE to read in one table
/// (fs.nr_open defaults to 1 Mi).
const MAX_FDS: u64 = 1 << 20;
/// Mounts per namespace (fs.mount-max defaults to 100,000).
const MAX_MOUNTS: usize = 100_000;
/// A command line longer than this is cut: argv may reach a quarter of the
/// stack rlimit (2 MiB by default), but what a reader needs is its start.
const MAX_CMDLINE: u64 = 256 << 10;
/// `O_CLOEXEC`: fdinfo's `flags` include it when the descriptor has it.
const O_CLOEXEC: u32 = 0o2000000;

/// Offsets of the structures behind a process, from BTF.
pub struct ProcLayout {
    task_mm: u64,
    task_files: u64,
    task_fs: u64,
    task_nsproxy: u64,
    task_sighand: u64,
    mm_arg_start: u64,
    mm_arg_end: u64,
    mm_pgd: u64,
    mm_exe_file: Option<u64>,
    files_fdt: u64,
    fdt_max_fds: u64,
    fdt_fd: u64,
    fdt_close_on_exec: u64,
    file_path: u64,
    file_inode: u64,
    file_pos: u64,
    file_flags: u64,
    file_private: u64,
    path_mnt: u64,
    path_dentry: u64,
    dentry_parent: u64,
    dentry_name_len: u64,
    dentry_name: u64,
    dentry_sb: u64,
    dentry_inode: u64,
    dentry_hash_pprev: u64,
    mount_parent: u64,
    mount_mountpoint: u64,
    mount_mnt: u64,
    mount_id: u64,
    /// How a namespace links its mounts: `mnt_namespace.list` of
    /// `mount.mnt_list` up to 6.7, an rbtree `mnt_namespace.mounts` of
    /// `mount.mnt_node` (by mount id) since 6.8.
    mount_links: MountLinks,
    mount_devname: u64,
    vfsmount_root: u64,
    vfsmount_sb: u64,
    vfsmount_flags: u64,
    sb_dev: u64,
    sb_type: u64,
    sb_subtype: Option<u64>,
    sb_flags: u64,
    pub(crate) sb_fs_info: u64,
    fstype_name: u64,
    inode_ino: u64,
    nsproxy_mnt_ns: u64,
    mnt_ns_inum: u64,
    fs_root: u64,
    fs_pwd: u64,
    sighand_action: u64,
    k_sigaction_size: u64,
    sa_handler: u64,
}

impl ProcLayout {
    pub fn from_btf(k: &Kernel) -> Result<ProcLayout> {
        let o = |s: &str, m: &str| k.off(s, m);
        let b = k.btf()?;
        let k_sigaction_size = b
            .find_struct("k_sigaction")
            .and_then(|id| b.size_of(id))
            .ok_or_else(|| Error::Missing {
                what: "struct k_sigaction in BTF".into(),
            })?;
        Ok(ProcLayout {
            task_mm: o("task_struct", "mm")?,
            task_files: o("task_struct", "files")?,
            task_fs: o("task_struct", "fs")?,
            task_nsproxy: o("task_struct", "nsproxy")?,
            task_sighand: o("task_struct", "sighand")?,
            mm_arg_start: o("mm_struct", "arg_start")?,
            mm_arg_end: o("mm_struct", "arg_end")?,
            mm_pgd: o("mm_struct", "pgd")?,
            mm_exe_file: o("mm_struct", "exe_file").ok(),
            files_fdt: o("files_struct", "fdt")?,
            fdt_max_fds: o("fdtable", "max_fds")?,
            fdt_fd: o("fdtable", "fd")?,
            fdt_close_on_exec: o("fdtable", "close_on_exec")?,
            file_path: o("file", "f_path")?,
            file_inode: o("file", "f_inode")?,
            file_pos: o("file", "f_pos")?,
            file_flags: o("file", "f_flags")?,
            file_private: o("file", "private_data")?,
            path_mnt: o("path", "mnt")?,
            path_dentry: o("path", "dentry")?,
            dentry_parent: o("dentry", "d_parent")?,
            dentry_name_len: o("dentry", "d_name.len")?,
            dentry_name: o("dentry", "d_name.name")?,
            dentry_sb: o("dentry", "d_sb")?,
            dentry_inode: o("dentry", "d_inode")?,
            dentry_hash_pprev: o("dentry", "d_hash.pprev")?,
            mount_parent: o("mount", "mnt_parent")?,
            mount_mountpoint: o("mount", "mnt_mountpoint")?,
            mount_mnt: o("mount", "mnt")?,
            mount_id: o("mount", "mnt_id")?,
            mount_links: match (o("mnt_namespace", "list"), o("mount", "mnt_list")) {
                (Ok(head), Ok(node)) => MountLinks::List { head, node },
                _ => MountLinks::Tree {
                    root: o("mnt_namespace", "mounts")?,
                    node: o("mount", "mnt_node")?,
                    left: o("rb_node", "rb_left")?,
                    right: o("rb_node", "rb_right")?,
                },
            },
            mount_devname: o("mount", "mnt_devname")?,
            vfsmount_root: o("vfsmount", "mnt_root")?,
            vfsmount_sb: o("vfsmount", "mnt_sb")?,
            vfsmount_flags: o("vfsmount", "mnt_flags")?,
            sb_dev: o("super_block", "s_dev")?,
            sb_type: o("super_block", "s_type")?,
            sb_subtype: o("super_block", "s_subtype").ok(),
            sb_flags: o("super_block", "s_flags")?,
            sb_fs_info: o("super_block", "s_fs_info")?,
            fstype_name: o("file_system_type", "name")?,
            inode_ino: o("inode", "i_ino")?,
            nsproxy_mnt_ns: o("nsproxy", "mnt_ns")?,
            mnt_ns_inum: o("mnt_namespace", "ns.inum")?,
            fs_root: o("fs_struct", "root")?,
            fs_pwd: o("fs_struct", "pwd")?,
            sighand_action: o("sighand_struct", "action")?,
            k_sigaction_size,
            sa_handler: o("k_sigaction", "sa.sa_handler")?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum MountLinks {
    List {
        head: u64,
        node: u64,
    },
    Tree {
        root: u64,
        node: u64,
        left: u64,
        right: u64,
    },
}

/// One open descriptor, as fdinfo and the fd link show it.
#[derive(Debug, Clone)]
pub struct DumpFile {
    pub fd: i32,
    pub target: String,
    pub pos: u64,
    pub flags: u32,
    pub mount_id: Option<u64>,
    pub inode: Option<u64>,
    /// The superblock the file lives on.
    pub sb: u64,
    /// `file->private_data` (for /dev/fuse, the `struct fuse_dev`).
    pub private_data: u64,
}

/// One mount of a namespace, as mountinfo lists it.
#[derive(Debug, Clone)]
pub struct DumpMount {
    pub mount_id: u64,
    pub parent_id: u64,
    pub dev: u32,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
    pub mnt_ns: u64,
    pub sb: u64,
}

/// `MAJOR()`/`MINOR()` of the kernel's internal dev_t (20 minor bits).
pub fn dev_major_minor(dev: u32) -> (u32, u32) {
    (dev >> 20, dev & 0xf_ffff)
}

/// The reader of process-owned objects, with caches shared across tasks
/// (threads share their files and mm; every file on a mount shares its
/// dentries' parents).
pub struct ProcReader<'a> {
    k: &'a Kernel,
    l: ProcLayout,
    fs_names: std::cell::RefCell<HashMap<u64, String>>,
}

impl<'a> ProcReader<'a> {
    pub fn new(k: &'a Kernel) -> Result<ProcReader<'a>> {
        Ok(ProcReader {
            k,
            l: ProcLayout::from_btf(k)?,
            fs_names: Default::default(),
        })
    }

    pub fn layout(&self) -> &ProcLayout {
        &self.l
    }

    fn ptr(&self, addr: u64) -> Result<u64> {
        self.k.mem.u64(addr)
    }

    /// `task->mm`, 0 for a kernel thread or an exited task.
    pub fn mm(&self, t: &Task) -> Result<u64> {
        self.ptr(t.addr + self.l.task_mm)
    }

    /// `task->files`, 0 once exit_files() ran.
    pub fn files(&self, t: &Task) -> Result<u64> {
        self.ptr(t.addr + self.l.task_files)
    }

    /// The command line: `mm->arg_start..arg_end` in the process's memory,
    /// split at NULs as /proc/PID/cmdline is read. `Ok(None)` when there
    /// is no mm (a kernel thread, a zombie): no command line, like /proc's
    /// empty file.
    pub fn cmdline(&self, t: &Task) -> Result<Option<Vec<u8>>> {
        let mm = self.mm(t)?;
        if mm == 0 {
            return Ok(None);
        }
        let start = self.ptr(mm + self.l.mm_arg_start)?;
        let end = self.ptr(mm + self.l.mm_arg_end)?;
        if end < start {
            return Err(Error::Corrupt {
                what: format!("mm_struct of {}: arg_end below arg_start", t.pid),
                addr: mm,
            });
        }
        let len = (end - start).min(MAX_CMDLINE);
        let pgd = self.ptr(mm + self.l.mm_pgd)?;
        self.read_user(pgd, start, len as usize).map(Some)
    }

    /// Reads user memory through the page tables rooted at `pgd` (a kernel
    /// virtual address, as `mm->pgd` holds it). A page that is not present
    /// (never touched, swapped out) or not in the dump (makedumpfile's
    /// `-d 31` drops user pages) is an error naming the address.
    pub fn read_user(&self, pgd: u64, va: u64, len: usize) -> Result<Vec<u8>> {
        let m = &self.k.mem;
        let root = m.arch.translate(&m.dump, pgd)?;
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let cur = va.wrapping_add(done as u64);
            let n = (4096 - (cur & 0xfff) as usize).min(len - done);
            let pa = m.arch.translate_in(&m.dump, root, cur)?;
            m.dump.read_phys(pa, &mut out[done..done + n])?;
            done += n;
        }
        Ok(out)
    }

    /// The name of a superblock's file system type (`proc`, `fuse`), with
    /// FUSE's subtype as mountinfo prints it (`fuse.sshfs`).
    pub fn fs_type(&self, sb: u64) -> Result<String> {
        if let Some(n) = self.fs_names.borrow().get(&sb) {
            return Ok(n.clone());
        }
        let ty = self.ptr(sb + self.l.sb_type)?;
        let mut name = self.k.mem.cstr(self.ptr(ty + self.l.fstype_name)?, 64)?;
        if let Some(o) = self.l.sb_subtype {
            let sub = self.ptr(sb + o)?;
            if sub != 0 {
                let s = self.k.mem.cstr(sub, 64)?;
                if !s.is_empty() {
                    name = format!("{name}.{s}");
                }
            }
        }
        self.fs_names.borrow_mut().insert(sb, name.clone());
        Ok(name)
    }

    fn dentry_name(&self, d: u64) -> Result<Vec<u8>> {
        let len = self.k.mem.u32(d + self.l.dentry_name_len)? as usize;
        if len > 255 {
            return Err(Error::Corrupt {
                what: format!("a {len}-byte dentry name"),
                addr: d,
            });
        }
        let name = self.ptr(d + self.l.dentry_name)?;
        self.k.mem.read_vec(name, len)
    }

    /// The path of `(vfsmount, dentry)` as `d_path()` builds it for a task
    /// whose root is its namespace's root: names prepended while walking
    /// `d_parent`, and at each mount's root the walk continues from where
    /// it is mounted (`mnt_mountpoint` in `mnt_parent`). Pseudo file
    /// systems name their files as their `d_dname` does (`pipe:[ino]`,
    /// `socket:[ino]`, `anon_inode:[eventpoll]`); an unlinked file gets
    /// ` (deleted)`.
    pub fn path(&self, vfsmnt: u64, dentry: u64) -> Result<String> {
        let l = &self.l;
        let sb = self.ptr(dentry + l.dentry_sb)?;
        let ino = |d: u64| -> Result<u64> {
            let inode = self.ptr(d + l.dentry_inode)?;
            self.ptr(inode + l.inode_ino)
        };
        match self.fs_type(sb)?.as_str() {
            "pipefs" => return Ok(format!("pipe:[{}]", ino(dentry)?)),
            "sockfs" => return Ok(format!("socket:[{}]", ino(dentry)?)),
            "anon_inodefs" => {
                return Ok(format!(
                    "anon_inode:{}",
                    String::from_utf8_lossy(&self.dentry_name(dentry)?)
                ))
            }
            _ => {}
        }
        let unlinked = {
            let parent = self.ptr(dentry + l.dentry_parent)?;
            parent != dentry && self.ptr(dentry + l.dentry_hash_pprev)? == 0
        };
        let mut mnt = vfsmnt.wrapping_sub(l.mount_mnt);
        let mut d = dentry;
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut total = 0usize;
        for _ in 0..MAX_DEPTH {
            let mnt_root = self.ptr(mnt + l.mount_mnt + l.vfsmount_root)?;
            let parent = self.ptr(d + l.dentry_parent)?;
            if d == mnt_root || d == parent {
                let up = self.ptr(mnt + l.mount_parent)?;
                if d == mnt_root && up != mnt && up != 0 {
                    d = self.ptr(mnt + l.mount_mountpoint)?;
                    mnt = up;
                    continue;
                }
                // The namespace's root (or a dentry cut off from its
                // mount: a lazily unmounted tree, shown from its own root).
                let mut s = Vec::with_capacity(total + parts.len() + 1);
                for p in parts.iter().rev() {
                    s.push(b'/');
                    s.extend_from_slice(p);
                }
                if s.is_empty() {
                    s.push(b'/');
                }
                let mut s = String::from_utf8_lossy(&s).into_owned();
                if unlinked {
                    s.push_str(" (deleted)");
                }
                return Ok(s);
            }
            let name = self.dentry_name(d)?;
            total += name.len() + 1;
            if total > PATH_MAX {
                return Err(Error::Corrupt {
                    what: format!("a path longer than PATH_MAX ({PATH_MAX})"),
                    addr: dentry,
                });
            }
            parts.push(name);
            d = parent;
        }
        Err(Error::Corrupt {
            what: format!("a path deeper than {MAX_DEPTH} components (a dentry loop?)"),
            addr: dentry,
        })
    }

    /// A dentry's path inside its own file system (mountinfo's root
    /// column): `d_parent` up to the superblock's root, no mount crossed.
    fn path_in_sb(&self, dentry: u64) -> Result<String> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut d = dentry;
        let mut total = 0usize;
        for _ in 0..MAX_DEPTH {
            let parent = self.ptr(d + self.l.dentry_parent)?;
            if parent == d {
                let mut s = String::new();
                for p in parts.iter().rev() {
                    s.push('/');
                    s.push_str(&String::from_utf8_lossy(p));
                }
                return Ok(if s.is_empty() { "/".into() } else { s });
            }
            let name = self.dentry_name(d)?;
            total += name.len() + 1;
            if total > PATH_MAX {
                break;
            }
            parts.push(name);
            d = parent;
        }
        Err(Error::Corrupt {
            what: "a mount root path too deep or too long".into(),
            addr: dentry,
        })
    }

    /// The path of a `struct path` at `addr` (`f_path`, `fs->pwd`).
    pub fn path_at(&self, addr: u64) -> Result<String> {
        let mnt = self.ptr(addr + self.l.path_mnt)?;
        let dentry = self.ptr(addr + self.l.path_dentry)?;
        if mnt == 0 || dentry == 0 {
            return Err(Error::Missing {
                what: format!("a path at {addr:#x} (no mount or dentry)"),
            });
        }
        self.path(mnt, dentry)
    }

    /// `fs->pwd` and `fs->root` paths, `None` when the task has no
    /// fs_struct (exited).
    pub fn cwd_root(&self, t: &Task) -> Result<Option<(Result<String>, Result<String>)>> {
        let fs = self.ptr(t.addr + self.l.task_fs)?;
        if fs == 0 {
            return Ok(None);
        }
        Ok(Some((
            self.path_at(fs + self.l.fs_pwd),
            self.path_at(fs + self.l.fs_root),
        )))
    }

    /// `mm->exe_file`'s path.
    pub fn exe(&self, t: &Task) -> Result<Option<String>> {
        let Some(off) = self.l.mm_exe_file else {
            return Err(Error::Missing {
                what: "member mm_struct.exe_file in BTF".into(),
            });
        };
        let mm = self.mm(t)?;
        if mm == 0 {
            return Ok(None);
        }
        let f = self.ptr(mm + off)?;
        if f == 0 {
            return Ok(None);
        }
        self.path_at(f + self.l.file_path).map(Some)
    }

    /// The real_mount() of a vfsmount: its `mnt_id`.
    fn mount_id_of(&self, vfsmnt: u64) -> Result<u64> {
        let m = vfsmnt.wrapping_sub(self.l.mount_mnt);
        Ok(self.k.mem.u32(m + self.l.mount_id)? as u64)
    }

    /// The open files of a `files_struct`: `fdt` (RCU-published; in a dump
    /// nothing changes under us), `max_fds` slots of `fd[]`, each a
    /// `struct file *`. Files that cannot be read are listed with what
    /// went wrong as their target, never dropped silently.
    pub fn open_files(&self, files: u64) -> Result<Vec<DumpFile>> {
        let l = &self.l;
        let fdt = self.ptr(files + l.files_fdt)?;
        let max = self.k.mem.u32(fdt + l.fdt_max_fds)? as u64;
        if max > MAX_FDS {
            return Err(Error::Corrupt {
                what: format!("an fd table of {max} descriptors"),
                addr: fdt,
            });
        }
        let arr = self.ptr(fdt + l.fdt_fd)?;
        let slots = self.k.mem.read_vec(arr, (max * 8) as usize)?;
        let cloexec = self.ptr(fdt + l.fdt_close_on_exec)?;
        let mut out = Vec::new();
        for (i, w) in slots.chunks_exact(8).enumerate() {
            let f = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if f == 0 {
                continue;
            }
            let fd = i as i32;
            let word = self.ptr(cloexec + 8 * (i as u64 / 64)).unwrap_or(0);
            let ce = word >> (i % 64) & 1 != 0;
            out.push(self.file(fd, f, ce));
        }
        Ok(out)
    }

    fn file(&self, fd: i32, f: u64, cloexec: bool) -> DumpFile {
        let l = &self.l;
        let m = &self.k.mem;
        let mnt = self.ptr(f + l.file_path + l.path_mnt).unwrap_or(0);
        let dentry = self.ptr(f + l.file_path + l.path_dentry).unwrap_or(0);
        let target = match self.path(mnt, dentry) {
            Ok(p) => p,
            Err(e) => format!("<unreadable: {e}>"),
        };
        let inode = self.ptr(f + l.file_inode).ok().filter(|&i| i != 0);
        DumpFile {
            fd,
            target,
            pos: m.u64(f + l.file_pos).unwrap_or(0),
            flags: m.u32(f + l.file_flags).unwrap_or(0) | if cloexec { O_CLOEXEC } else { 0 },
            mount_id: (mnt != 0).then(|| self.mount_id_of(mnt).ok()).flatten(),
            inode: inode.and_then(|i| m.u64(i + l.inode_ino).ok()),
            sb: self.ptr(dentry + l.dentry_sb).unwrap_or(0),
            private_data: self.ptr(f + l.file_private).unwrap_or(0),
        }
    }

    /// The task's mount namespace (`nsproxy->mnt_ns`), 0 when it has none
    /// (an exited task).
    pub fn mnt_ns(&self, t: &Task) -> Result<u64> {
        let ns = self.ptr(t.addr + self.l.task_nsproxy)?;
        if ns == 0 {
            return Ok(0);
        }
        self.ptr(ns + self.l.nsproxy_mnt_ns)
    }

    /// The namespace's inode number (what /proc/PID/ns/mnt links to).
    pub fn mnt_ns_inum(&self, ns: u64) -> Result<u64> {
        Ok(self.k.mem.u32(ns + self.l.mnt_ns_inum)? as u64)
    }

    /// Every mount of a namespace, in list order (mountinfo's order).
    pub fn mounts(&self, ns: u64, errors: &mut Vec<String>) -> Vec<DumpMount> {
        let l = &self.l;
        let inum = match self.mnt_ns_inum(ns) {
            Ok(i) => i,
            Err(e) => {
                errors.push(format!("mount namespace at {ns:#x}: {e}"));
                return Vec::new();
            }
        };
        let mounts: Vec<u64> = match l.mount_links {
            MountLinks::List { head, node } => crate::tasks::list(self.k, ns + head, errors)
                .into_iter()
                .take(MAX_MOUNTS)
                .map(|n| n.wrapping_sub(node))
                .collect(),
            MountLinks::Tree {
                root,
                node,
                left,
                right,
            } => self
                .rb_in_order(ns + root, left, right, errors)
                .into_iter()
                .map(|n| n.wrapping_sub(node))
                .collect(),
        };
        let mut out = Vec::new();
        for m in mounts {
            match self.mount(m, inum) {
                Ok(dm) => out.push(dm),
                Err(e) => errors.push(format!("mount at {m:#x}: {e}")),
            }
        }
        out
    }

    /// The nodes of an rbtree (`struct rb_root` at `root`) in order: the
    /// tree is sorted by mount id, so this is mountinfo's order. An
    /// explicit stack, bounded in nodes and depth (a real rbtree of
    /// MAX_MOUNTS nodes is under 40 deep), with a visited set against
    /// loops.
    fn rb_in_order(&self, root: u64, left: u64, right: u64, errors: &mut Vec<String>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<u64> = Vec::new();
        let mut cur = match self.ptr(root) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("mount tree at {root:#x}: {e}"));
                return out;
            }
        };
        while (cur != 0 || !stack.is_empty()) && out.len() < MAX_MOUNTS {
            while cur != 0 {
                if !seen.insert(cur) || stack.len() > 128 {
                    errors.push(format!("mount tree at {root:#x} loops at {cur:#x}"));
                    return out;
                }
                stack.push(cur);
                cur = match self.ptr(cur + left) {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(format!("mount tree node {cur:#x}: {e}"));
                        0
                    }
                };
            }
            let Some(n) = stack.pop() else { break };
            out.push(n);
            cur = match self.ptr(n + right) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("mount tree node {n:#x}: {e}"));
                    0
                }
            };
        }
        out
    }

    fn mount(&self, m: u64, inum: u64) -> Result<DumpMount> {
        let l = &self.l;
        let mem = &self.k.mem;
        let vfs = m + l.mount_mnt;
        let sb = self.ptr(vfs + l.vfsmount_sb)?;
        let parent = self.ptr(m + l.mount_parent)?;
        let flags = mem.u32(vfs + l.vfsmount_flags)?;
        // fs/proc_namespace.c: show_mnt_opts() after "rw"/"ro".
        let mut options = String::from(if flags & 0x40 != 0 { "ro" } else { "rw" });
        for (bit, name) in [
            (0x01, "nosuid"),
            (0x02, "nodev"),
            (0x04, "noexec"),
            (0x08, "noatime"),
            (0x10, "nodiratime"),
            (0x20, "relatime"),
        ] {
            if flags & bit != 0 {
                options.push(',');
                options.push_str(name);
            }
        }
        let sb_flags = self.ptr(sb + l.sb_flags)?;
        let devname = self.ptr(m + l.mount_devname)?;
        let mount_point = if parent == m || parent == 0 {
            "/".to_string()
        } else {
            self.path(parent + l.mount_mnt, self.ptr(m + l.mount_mountpoint)?)?
        };
        Ok(DumpMount {
            mount_id: mem.u32(m + l.mount_id)? as u64,
            parent_id: if parent == 0 {
                0
            } else {
                mem.u32(parent + l.mount_id)? as u64
            },
            dev: mem.u32(sb + l.sb_dev)?,
            root: self.path_in_sb(self.ptr(vfs + l.vfsmount_root)?)?,
            mount_point,
            options,
            fs_type: self.fs_type(sb)?,
            source: if devname == 0 {
                "none".into()
            } else {
                mem.cstr(devname, 256)?
            },
            // Only the read-only bit: the file system's own options are
            // printed by its show_options(), code a dump cannot run.
            super_options: if sb_flags & 1 != 0 { "ro" } else { "rw" }.into(),
            mnt_ns: inum,
            sb,
        })
    }

    /// Each signal's handler (`sighand->action[N-1].sa.sa_handler`): 0 is
    /// SIG_DFL, 1 SIG_IGN, anything else a user address. `None` without a
    /// sighand (a reaped task).
    pub fn handlers(&self, t: &Task) -> Result<Option<[u64; 64]>> {
        let sh = self.ptr(t.addr + self.l.task_sighand)?;
        if sh == 0 {
            return Ok(None);
        }
        let base = sh + self.l.sighand_action;
        let mut out = [0u64; 64];
        for (i, h) in out.iter_mut().enumerate() {
            *h = self.ptr(base + i as u64 * self.l.k_sigaction_size + self.l.sa_handler)?;
        }
        Ok(Some(out))
    }
}
