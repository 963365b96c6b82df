//! Every superblock of a kernel and how far it is frozen, from kernel
//! memory: the live kernel (through BPF) and a crash dump share this one
//! walker over [`VirtMem`] and BTF.
//!
//! The kernel links every `struct super_block` on the global list
//! `super_blocks` through `sb->s_list` (fs/super.c, under `sb_lock`). The
//! head is a bare `list_head` in the kernel's data, not a super_block, and
//! kernels without CONFIG_KALLSYMS_ALL do not name it; so the walk starts
//! from a superblock known to be live — the root filesystem of a task,
//! `task->fs->root.dentry->d_sb` — and goes once round the ring, back to
//! that start. The head is the one entry that is not a superblock: where
//! its address is known it is skipped by address, otherwise by failing the
//! check every real one passes (its root dentry's `d_sb` points back to
//! it). The live walk takes no lock (`sb_lock` is the kernel's), so a
//! superblock freed meanwhile reads as a fault or garbage: the count is
//! capped, a loop is detected, and such entries are reported, never
//! followed blindly.
//!
//! The freeze state is `sb->s_writers.frozen` (`SB_UNFROZEN` 0 …
//! `SB_FREEZE_COMPLETE` 4, include/linux/fs.h; an `int` up to 6.5, an
//! `unsigned short` since). Who froze it: 6.6–6.7 keep
//! `s_writers.freeze_holders` (FREEZE_HOLDER_KERNEL 1, _USERSPACE 2);
//! 6.8+ count each kind (`freeze_kcount`, `freeze_ucount`).

use crate::btf::Btf;
use crate::error::{Error, Result};
use crate::mem::VirtMem;
use crate::process::dev_major_minor;
use wedge_model::{FreezeLevel, SuperBlockState};

/// More superblocks than any real system mounts (each mount of a block
/// device, tmpfs, proc, cgroup, overlay… has one; a busy container host
/// has a few thousand).
pub const MAX_SUPERBLOCKS: usize = 65_536;

/// Where the fields are, from BTF.
#[derive(Debug, Clone)]
pub struct SbLayout {
    s_list: u64,
    s_dev: u64,
    s_type: u64,
    s_root: u64,
    s_id: u64,
    s_id_len: usize,
    frozen: u64,
    frozen_size: u64,
    holders: Holders,
    fstype_name: u64,
    dentry_sb: u64,
    task_fs: u64,
    fs_root_dentry: u64,
}

#[derive(Debug, Clone)]
enum Holders {
    /// 6.6–6.7: a bit mask of `enum freeze_holder`.
    Mask(u64),
    /// 6.8+: how many kernel and user-space freezes are held.
    Counts { kernel: u64, user: u64 },
    /// Before 6.6: the kernel does not record who froze it.
    None,
}

impl SbLayout {
    pub fn from_btf(b: &Btf) -> Result<SbLayout> {
        let o = |s: &str, p: &str| {
            b.offset_of(s, p).ok_or_else(|| Error::Missing {
                what: format!("{s}.{p} in BTF"),
            })
        };
        let sb = b.find_struct("super_block").ok_or_else(|| Error::Missing {
            what: "struct super_block in BTF".into(),
        })?;
        let frozen = b
            .member(sb, "s_writers.frozen")
            .ok_or_else(|| Error::Missing {
                what: "super_block.s_writers.frozen in BTF".into(),
            })?;
        let frozen_size = b.size_of(frozen.ty).unwrap_or(4);
        let s_id_len = b
            .member(sb, "s_id")
            .and_then(|m| b.array(b.resolve(m.ty)))
            .map(|(_, n)| n as usize)
            .unwrap_or(32);
        let holders = match (
            b.offset_of("super_block", "s_writers.freeze_kcount"),
            b.offset_of("super_block", "s_writers.freeze_ucount"),
            b.offset_of("super_block", "s_writers.freeze_holders"),
        ) {
            (Some(kernel), Some(user), _) => Holders::Counts { kernel, user },
            (_, _, Some(m)) => Holders::Mask(m),
            _ => Holders::None,
        };
        Ok(SbLayout {
            s_list: o("super_block", "s_list")?,
            s_dev: o("super_block", "s_dev")?,
            s_type: o("super_block", "s_type")?,
            s_root: o("super_block", "s_root")?,
            s_id: o("super_block", "s_id")?,
            s_id_len,
            frozen: frozen.bit_offset / 8,
            frozen_size,
            holders,
            fstype_name: o("file_system_type", "name")?,
            dentry_sb: o("dentry", "d_sb")?,
            task_fs: o("task_struct", "fs")?,
            fs_root_dentry: o("fs_struct", "root.dentry")?,
        })
    }

    /// The superblock of a task's root directory (`task->fs->root.dentry->d_sb`).
    pub fn root_of(&self, mem: &dyn VirtMem, task: u64) -> Result<u64> {
        let fs = mem.u64(task + self.task_fs)?;
        if fs == 0 {
            return Err(Error::Corrupt {
                what: "task_struct.fs is NULL (an exiting task)".into(),
                addr: task,
            });
        }
        let dentry = mem.u64(fs + self.fs_root_dentry)?;
        let sb = mem.u64(dentry + self.dentry_sb)?;
        if sb == 0 {
            return Err(Error::Corrupt {
                what: "the root dentry's d_sb is NULL".into(),
                addr: dentry,
            });
        }
        Ok(sb)
    }

    /// Whether `sb` is a superblock: its root dentry points back to it.
    /// (A superblock being set up or torn down has no root yet or any
    /// more, and is left out with the list head.)
    fn is_superblock(&self, mem: &dyn VirtMem, sb: u64) -> bool {
        let Ok(root) = mem.u64(sb + self.s_root) else {
            return false;
        };
        root != 0 && mem.u64(root + self.dentry_sb).is_ok_and(|back| back == sb)
    }

    fn read(&self, mem: &dyn VirtMem, sb: u64) -> Result<SuperBlockState> {
        let (major, minor) = dev_major_minor(mem.u32(sb + self.s_dev)?);
        let ty = mem.u64(sb + self.s_type)?;
        let fs_type = if ty == 0 {
            String::new()
        } else {
            mem.cstr(mem.u64(ty + self.fstype_name)?, 64)?
        };
        let id = mem.cstr(sb + self.s_id, self.s_id_len)?;
        let raw = match self.frozen_size {
            2 => mem.u16(sb + self.frozen)? as u64,
            1 => mem.u8(sb + self.frozen)? as u64,
            _ => mem.u32(sb + self.frozen)? as u64,
        };
        let frozen = FreezeLevel::from_raw(raw).ok_or_else(|| Error::Corrupt {
            what: format!(
                "super_block.s_writers.frozen = {raw} (not SB_UNFROZEN..SB_FREEZE_COMPLETE)"
            ),
            addr: sb,
        })?;
        let mut holders = Vec::new();
        match self.holders {
            Holders::Mask(o) => {
                let m = mem.u16(sb + o)?;
                if m & 1 != 0 {
                    holders.push("kernel".to_string());
                }
                if m & 2 != 0 {
                    holders.push("user".to_string());
                }
            }
            Holders::Counts { kernel, user } => {
                if mem.u32(sb + kernel)? as i32 > 0 {
                    holders.push("kernel".to_string());
                }
                if mem.u32(sb + user)? as i32 > 0 {
                    holders.push("user".to_string());
                }
            }
            Holders::None => {}
        }
        Ok(SuperBlockState {
            major,
            minor,
            fs_type,
            id,
            frozen,
            holders,
            address: sb,
        })
    }
}

/// Walks the ring of superblocks from `start` (a live superblock, e.g.
/// [`SbLayout::root_of`] a task). `head` is `&super_blocks` where a symbol
/// table names it. Entries that could not be read are described in
/// `errors`; the walk stops at a fault in the links themselves.
pub fn walk(
    mem: &dyn VirtMem,
    l: &SbLayout,
    start: u64,
    head: Option<u64>,
    errors: &mut Vec<String>,
) -> Vec<SuperBlockState> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let start_link = start + l.s_list;
    let mut not_superblocks = 0usize;
    match l.read(mem, start) {
        Ok(s) => out.push(s),
        Err(e) => errors.push(format!("superblock {start:#x}: {e}")),
    }
    seen.insert(start_link);
    let mut link = start_link;
    loop {
        let next = match mem.u64(link) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("the s_list link at {link:#x}: {e}; the walk stops"));
                break;
            }
        };
        if next == start_link {
            break;
        }
        if !seen.insert(next) {
            errors.push(format!(
                "s_list loops back to {next:#x} without reaching the start: the list changed during the walk"
            ));
            break;
        }
        if seen.len() > MAX_SUPERBLOCKS {
            errors.push(format!(
                "more than {MAX_SUPERBLOCKS} superblocks: the walk stops"
            ));
            break;
        }
        link = next;
        if Some(next) == head {
            continue;
        }
        let sb = next - l.s_list;
        if !l.is_superblock(mem, sb) {
            // The list head, or a superblock without a root (being set up
            // or torn down).
            not_superblocks += 1;
            continue;
        }
        match l.read(mem, sb) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(format!("superblock {sb:#x}: {e}")),
        }
    }
    let expected = usize::from(head.is_none());
    if not_superblocks > expected {
        errors.push(format!(
            "{} entries of s_list have no root dentry (superblocks being set up or torn down) and were left out",
            not_superblocks - expected
        ));
    }
    out
}

/// Every superblock, starting from the root filesystem of the first of
/// `tasks` (task_struct addresses; pid 1 first, then any other) whose
/// `fs` can be read. Ok: the superblocks and what could not be read of
/// them; Err: why none could.
pub fn read_all(
    mem: &dyn VirtMem,
    btf: &Btf,
    tasks: &[u64],
    head: Option<u64>,
) -> std::result::Result<(Vec<SuperBlockState>, Vec<String>), String> {
    let l = SbLayout::from_btf(btf).map_err(|e| e.to_string())?;
    let mut why = Vec::new();
    for &t in tasks.iter().take(16) {
        match l.root_of(mem, t) {
            Ok(start) => {
                let mut errors = Vec::new();
                let all = walk(mem, &l, start, head, &mut errors);
                return Ok((all, errors));
            }
            Err(e) => why.push(format!("task {t:#x}: {e}")),
        }
    }
    Err(if why.is_empty() {
        "no task to start the walk from".into()
    } else {
        format!(
            "no task's root filesystem could be read: {}",
            why.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Memory of a few 8-byte words, zero elsewhere, except the page at
    /// 0x7000, which faults.
    struct Words(HashMap<u64, u64>);

    impl VirtMem for Words {
        fn read(&self, va: u64, buf: &mut [u8]) -> Result<()> {
            for (i, b) in buf.iter_mut().enumerate() {
                let a = va + i as u64;
                if a & !0xfff == 0x7000 {
                    return Err(Error::Fault {
                        addr: a,
                        detail: "unmapped".into(),
                    });
                }
                let w = self.0.get(&(a & !7)).copied().unwrap_or(0);
                *b = w.to_le_bytes()[(a & 7) as usize];
            }
            Ok(())
        }
    }

    fn layout() -> SbLayout {
        SbLayout {
            s_list: 0,
            s_dev: 16,
            s_type: 24,
            s_root: 32,
            s_id: 40,
            s_id_len: 8,
            frozen: 48,
            frozen_size: 2,
            holders: Holders::Counts {
                kernel: 52,
                user: 56,
            },
            fstype_name: 0,
            dentry_sb: 0,
            task_fs: 0,
            fs_root_dentry: 0,
        }
    }

    /// A superblock at `sb` linked to `next`/`prev`, with its root dentry
    /// at `sb + 0x800` pointing back, type name "ext4", id "loop0".
    fn sb(m: &mut HashMap<u64, u64>, sb: u64, next: u64, prev: u64, dev: u64, frozen: u64) {
        m.insert(sb, next);
        m.insert(sb + 8, prev);
        m.insert(sb + 16, dev);
        m.insert(sb + 24, 0x9000);
        m.insert(sb + 32, sb + 0x800);
        m.insert(sb + 40, u64::from_le_bytes(*b"loop0\0\0\0"));
        m.insert(sb + 48, frozen | (1 << 32)); // frozen, freeze_kcount 0, …
        m.insert(sb + 56, 1); // freeze_ucount 1
        m.insert(sb + 0x800, sb);
    }

    #[test]
    fn a_ring_with_its_head() {
        let mut m = HashMap::new();
        m.insert(0x9000, 0x9100);
        m.insert(0x9100, u64::from_le_bytes(*b"ext4\0\0\0\0"));
        // head (0x100, in "data") -> A (0x1000) -> B (0x2000) -> head
        m.insert(0x100, 0x1000);
        m.insert(0x108, 0x2000);
        m.insert(0x120, 0); // the head's "s_root": not a dentry
        sb(&mut m, 0x1000, 0x2000, 0x100, (7 << 20) | 1, 4);
        sb(&mut m, 0x2000, 0x100, 0x1000, 259 << 20, 0);
        let mem = Words(m);
        let l = layout();
        for head in [None, Some(0x100)] {
            let mut errors = Vec::new();
            let all = walk(&mem, &l, 0x2000, head, &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(all.len(), 2);
            let a = all.iter().find(|s| s.address == 0x1000).unwrap();
            assert_eq!((a.major, a.minor, a.frozen), (7, 1, FreezeLevel::Complete));
            assert_eq!(a.fs_type, "ext4");
            assert_eq!(a.id, "loop0");
            assert_eq!(a.holders, ["kernel", "user"]);
            let b = all.iter().find(|s| s.address == 0x2000).unwrap();
            assert_eq!(
                (b.major, b.minor, b.frozen),
                (259, 0, FreezeLevel::Unfrozen)
            );
        }
    }

    #[test]
    fn a_loop_and_a_fault_end_the_walk() {
        let mut m = HashMap::new();
        m.insert(0x9000, 0x9100);
        m.insert(0x9100, u64::from_le_bytes(*b"xfs\0\0\0\0\0"));
        // A -> B -> B -> … never back to A.
        sb(&mut m, 0x1000, 0x2000, 0x2000, 1, 0);
        sb(&mut m, 0x2000, 0x2000, 0x1000, 2, 0);
        let mut errors = Vec::new();
        let all = walk(&Words(m.clone()), &layout(), 0x1000, None, &mut errors);
        assert_eq!(all.len(), 2);
        assert!(errors[0].contains("loops"), "{errors:?}");
        // B's link leads into unmapped memory.
        m.insert(0x2000, 0x7000);
        let mut errors = Vec::new();
        let all = walk(&Words(m), &layout(), 0x1000, None, &mut errors);
        assert!(!all.is_empty());
        assert!(
            errors.iter().any(|e| e.contains("walk stops")),
            "{errors:?}"
        );
    }
}
