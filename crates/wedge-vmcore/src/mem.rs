//! Kernel virtual memory: one trait for every source of it (a dump's
//! page-table walk here, the running kernel through BPF in wedge-bpf), so
//! the ORC unwinder and the readers of kernel structures run over either.

use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::x86_64::X86_64;

/// Reads of a kernel's virtual address space. Only [`VirtMem::read`] is
/// the source's own; the typed readers are built on it.
pub trait VirtMem {
    /// Fills `buf` from `va`, or names the first address that failed.
    fn read(&self, va: u64, buf: &mut [u8]) -> Result<()>;

    /// Reads `len` bytes; refuses absurd sizes (a corrupt length field)
    /// before allocating.
    fn read_vec(&self, va: u64, len: usize) -> Result<Vec<u8>> {
        if len > 256 << 20 {
            return Err(Error::Corrupt {
                what: format!("a {len}-byte object"),
                addr: va,
            });
        }
        let mut v = vec![0u8; len];
        self.read(va, &mut v)?;
        Ok(v)
    }

    fn u64(&self, va: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn u32(&self, va: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u16(&self, va: u64) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read(va, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u8(&self, va: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read(va, &mut b)?;
        Ok(b[0])
    }

    /// A NUL-terminated string of at most `max` bytes.
    fn cstr(&self, va: u64, max: usize) -> Result<String> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 64];
        while out.len() < max {
            let n = chunk
                .len()
                .min(max - out.len())
                .min(4096 - ((va as usize + out.len()) & 0xfff));
            self.read(va + out.len() as u64, &mut chunk[..n])?;
            if let Some(z) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Reads of the kernel's virtual address space of a dump.
pub struct KernelMem {
    pub dump: Dump,
    pub arch: X86_64,
}

impl VirtMem for KernelMem {
    fn read(&self, va: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let n = (4096 - (cur & 0xfff) as usize).min(buf.len() - done);
            let pa = self.arch.translate(&self.dump, cur)?;
            self.dump.read_phys(pa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }
}
