//! Fuzz the ELF note walker, the prstatus decoder and the VMCOREINFO parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut notes = Vec::new();
    let _ = wedge_vmcore::notes::parse_notes(data, 0, &mut notes);
    for n in &notes {
        let _ = wedge_vmcore::notes::parse_prstatus(&n.desc);
        let vi = wedge_vmcore::notes::VmcoreInfo::parse(&String::from_utf8_lossy(&n.desc));
        let _ = (
            vi.osrelease(),
            vi.number("phys_base"),
            vi.symbol("init_top_pgt"),
        );
        let _ = (vi.kernel_offset(), vi.page_size(), vi.crash_time());
    }
});
