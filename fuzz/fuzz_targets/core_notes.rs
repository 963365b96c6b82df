//! Fuzz the core-file parsers: the ELF header and program headers, the
//! notes (NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_FILE, NT_AUXV) for both
//! architectures, reads of the memory image, and the build-id lookup in an
//! ELF header page. Whatever the bytes: no panic, no huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wedge_coredump::binaries::from_memory_header;
use wedge_coredump::elf::{parse_layout, Arch, Memory};
use wedge_coredump::notes;

fuzz_target!(|data: &[u8]| {
    // The bytes as notes alone (what a PT_NOTE segment holds).
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let n = notes::parse_notes(arch, [data]);
        let _ = serde_json::to_string(&n);
    }
    let _ = notes::parse_file(data);
    let _ = notes::parse_siginfo(data);
    let _ = notes::parse_prpsinfo(data);
    let _ = notes::parse_auxv(data);

    // The bytes as a whole core.
    if let Ok(layout) = parse_layout(data) {
        let mut n = notes::Notes::default();
        for r in &layout.notes {
            notes::parse_segment(layout.arch, data.get(r.clone()).unwrap_or(&[]), &mut n);
        }
        let mem = Memory::new(data, &layout.segments);
        for s in layout.segments.iter().take(64) {
            let _ = mem.read(s.vaddr, 64);
            let _ = mem.read_upto(s.vaddr, 4096);
            let _ = mem.read_u64(s.end().wrapping_sub(4));
            let _ = from_memory_header(&mem, s.vaddr);
        }
        for t in &n.threads {
            if let Some(r) = &t.regs {
                let _ = mem.read_u64(r.sp);
            }
        }
        for f in n.files.iter().take(64) {
            let _ = from_memory_header(&mem, f.start);
        }
    }
});
