//! Fuzz dump opening: ELF, kdump-compressed and flattened headers, bitmaps,
//! page descriptors and page decompression, then the kernel layer on top
//! (VMCOREINFO-driven translation, kallsyms, BTF) as far as the input goes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dump) = wedge_vmcore::dump::Dump::from_source(Box::new(data.to_vec())) else {
        return;
    };
    let mut page = [0u8; 4096];
    for (start, end) in dump.ranges().into_iter().take(8) {
        let _ = dump.read_phys(start, &mut page);
        let _ = dump.read_phys(end.saturating_sub(1), &mut page[..1]);
    }
    for pa in [0u64, 0x1000, 0x10_0000, u64::MAX - 10] {
        let _ = dump.read_phys(pa, &mut page[..16]);
    }
    if let Ok(k) = wedge_vmcore::Kernel::from_dump(dump, &Default::default()) {
        let _ = wedge_vmcore::Vmcore::from_kernel(String::new(), k);
    }
});
