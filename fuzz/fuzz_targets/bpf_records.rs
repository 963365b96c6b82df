//! Fuzz the parser of the BPF task iterator's records: any bytes give
//! records or an error naming the size mismatch, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = wedge_bpf::parse_records(data) {
        assert_eq!(t.records.len() * wedge_bpf::RECORD_SIZE, data.len());
    }
});
