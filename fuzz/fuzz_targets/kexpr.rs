//! Fuzz the expression parser (and its error rendering): any input gives a
//! tree or an error, never a panic, a hang or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A few names are types, as typedefs are in BTF.
    let is_type = |n: &str| matches!(n, "pid_t" | "u64" | "atomic_t");
    if let Err(e) = wedge_kmem::parse(text, &is_type) {
        let _ = e.render(text);
    }
    if let Err(e) = wedge_kmem::parse::parse_type(text, &is_type) {
        let _ = e.render(text);
    }
});
