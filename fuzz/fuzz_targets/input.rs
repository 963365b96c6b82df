//! Fuzz wedge-input's one decoder of user input: whatever the bytes (a
//! gzip, zstd, xz or lz4 magic followed by garbage, frames cut short,
//! concatenated streams), decoding ends in output or an error and never
//! panics or exceeds its output cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Small enough that a decompression bomb is cut quickly.
const CAP: u64 = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok((mut r, _)) = wedge_input::decode(std::io::Cursor::new(data.to_vec()), CAP) else {
        return;
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        assert!(out.len() as u64 <= CAP, "output past the cap");
    }
});
