//! Fuzz the BTF reader and its lookups.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = wedge_vmcore::btf::Btf::parse(data.to_vec()) else {
        return;
    };
    for id in 0..btf.len().min(64) as u32 {
        let _ = (
            btf.size_of(id),
            btf.array(id),
            btf.pointee(id),
            btf.name(id),
            btf.int_info(id),
            btf.enumerators(id).len(),
            btf.members(id).count(),
            btf.target(id),
        );
    }
    let _ = btf.offset_of("task_struct", "thread.sp");
    let _ = btf.enum_value("TASK_COMM_LEN");
    let _ = btf.find_var("runqueues");
    // The same bytes as a module's split BTF on top of themselves: ids and
    // string offsets continue the base's (a dump's fuse module BTF).
    if let Ok(split) = wedge_vmcore::btf::Btf::parse_split(&btf, data.to_vec()) {
        let from = btf.len() as u32;
        for id in from..split.len().min(btf.len() + 64) as u32 {
            let _ = (
                split.size_of(id),
                split.name(id),
                split.members(id).count(),
                split.target(id),
            );
        }
        let _ = split.offset_of("fuse_conn", "num_waiting");
    }
});
