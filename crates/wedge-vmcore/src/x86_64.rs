//! x86-64 virtual-to-physical translation.
//!
//! The kernel image is mapped linearly at `__START_KERNEL_map`
//! (0xffffffff80000000): physical = virtual − __START_KERNEL_map + phys_base,
//! where phys_base (VMCOREINFO `NUMBER(phys_base)`) carries the physical
//! KASLR slide and the virtual slide is already in the symbol values.
//! Everything else (the direct map at the randomised page_offset_base,
//! vmalloc and vmap'd stacks, modules, per-CPU areas) goes through the page
//! tables rooted at `init_top_pgt`, 4 levels or 5 when the CPU had LA57 and
//! the kernel enabled it (`NUMBER(pgtable_l5_enabled)`).

use crate::dump::Dump;
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;

pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// KERNEL_IMAGE_SIZE with KASLR (1 GiB); modules start right after it.
const KERNEL_IMAGE_SIZE: u64 = 1 << 30;
const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;
/// Physical address bits 12..51 of an entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Page-table walker for one address space (the kernel's).
pub struct X86_64 {
    pub root: u64,
    pub phys_base: u64,
    pub five_level: bool,
    /// Encryption mask (AMD SME) to strip from entries.
    pub sme_mask: u64,
    tlb: RefCell<HashMap<u64, u64>>,
}

impl X86_64 {
    /// `root_vaddr` is `init_top_pgt`'s (kernel image) address.
    pub fn new(root_vaddr: u64, phys_base: u64, five_level: bool, sme_mask: u64) -> X86_64 {
        X86_64 {
            root: root_vaddr
                .wrapping_sub(START_KERNEL_MAP)
                .wrapping_add(phys_base),
            phys_base,
            five_level,
            sme_mask,
            tlb: RefCell::new(HashMap::new()),
        }
    }

    /// Translates a kernel virtual address.
    pub fn translate(&self, dump: &Dump, va: u64) -> Result<u64> {
        if (START_KERNEL_MAP..START_KERNEL_MAP + KERNEL_IMAGE_SIZE).contains(&va) {
            return Ok((va - START_KERNEL_MAP).wrapping_add(self.phys_base));
        }
        let page = va & !0xfff;
        if let Some(pa) = self.tlb.borrow().get(&page) {
            return Ok(pa | (va & 0xfff));
        }
        let pa = self.walk(dump, va)?;
        let mut tlb = self.tlb.borrow_mut();
        if tlb.len() > 1 << 16 {
            tlb.clear();
        }
        tlb.insert(page, pa & !0xfff);
        Ok(pa)
    }

    fn entry(&self, dump: &Dump, table: u64, index: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        dump.read_phys(table + index * 8, &mut b)?;
        Ok(u64::from_le_bytes(b) & !self.sme_mask)
    }

    /// Translates an address of another address space: a process's user
    /// memory through its own page tables, `root_pa` being the physical
    /// address of its top-level table (`mm->pgd` translated). Not cached:
    /// the cache is the kernel's, and user addresses repeat across
    /// processes. A user page that is not present (never touched, swapped
    /// out) is an error, never a guess.
    pub fn translate_in(&self, dump: &Dump, root_pa: u64, va: u64) -> Result<u64> {
        self.walk_from(dump, root_pa, va)
    }

    fn walk(&self, dump: &Dump, va: u64) -> Result<u64> {
        self.walk_from(dump, self.root, va)
    }

    fn walk_from(&self, dump: &Dump, root: u64, va: u64) -> Result<u64> {
        // Canonical check: bits above the top level's must sign-extend.
        let bits = if self.five_level { 57 } else { 48 };
        let top = (va as i64) >> (bits - 1);
        if top != 0 && top != -1 {
            return Err(Error::Unmapped {
                vaddr: va,
                level: "non-canonical",
            });
        }
        let mut table = root & ADDR_MASK;
        if self.five_level {
            let e = self.entry(dump, table, (va >> 48) & 511)?;
            if e & PRESENT == 0 {
                return Err(Error::Unmapped {
                    vaddr: va,
                    level: "PML5",
                });
            }
            table = e & ADDR_MASK;
        }
        let e = self.entry(dump, table, (va >> 39) & 511)?;
        if e & PRESENT == 0 {
            return Err(Error::Unmapped {
                vaddr: va,
                level: "PML4",
            });
        }
        let e = self.entry(dump, e & ADDR_MASK, (va >> 30) & 511)?;
        if e & PRESENT == 0 {
            return Err(Error::Unmapped {
                vaddr: va,
                level: "PUD",
            });
        }
        if e & HUGE != 0 {
            return Ok((e & ADDR_MASK & !0x3fff_ffff) | (va & 0x3fff_ffff));
        }
        let e = self.entry(dump, e & ADDR_MASK, (va >> 21) & 511)?;
        if e & PRESENT == 0 {
            return Err(Error::Unmapped {
                vaddr: va,
                level: "PMD",
            });
        }
        if e & HUGE != 0 {
            return Ok((e & ADDR_MASK & !0x1f_ffff) | (va & 0x1f_ffff));
        }
        let e = self.entry(dump, e & ADDR_MASK, (va >> 12) & 511)?;
        if e & PRESENT == 0 {
            return Err(Error::Unmapped {
                vaddr: va,
                level: "PTE",
            });
        }
        Ok((e & ADDR_MASK) | (va & 0xfff))
    }
}
