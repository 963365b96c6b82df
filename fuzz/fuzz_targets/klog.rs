//! Fuzz the kernel-log parser: whole-buffer streaming parse, the
//! line-at-a-time API, serialization and the derived strings must never
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = wedge_klog::parse_bytes(data);
    for ev in &parsed.events {
        let _ = serde_json::to_string(ev);
        let _ = ev.signature();
        let _ = ev.meaning();
    }
    let mut p = wedge_klog::Parser::new();
    for line in data.split(|&b| b == b'\n') {
        p.push_line(line);
        while p.next_event().is_some() {}
    }
    p.finish();
    while let Some(ev) = p.next_event() {
        let _ = serde_json::to_string(&ev);
    }
});
