use super::*;
use std::io::Write;
use std::time::Instant;

fn limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        io_timeout: Duration::from_secs(5),
    }
}

fn text() -> Vec<u8> {
    (0..4_000)
        .map(|i| format!("[{i}.000000] INFO: task t{i}:{i} blocked for more than 120 seconds.\n"))
        .collect::<String>()
        .into_bytes()
}

/// As zstd(1) and systemd-coredump write it: one frame with its content
/// size (single-segment: the window is the whole content) and checksum.
fn zst(t: &[u8]) -> Vec<u8> {
    let mut c = ::zstd::bulk::Compressor::new(3).unwrap();
    c.set_parameter(::zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .unwrap();
    c.compress(t).unwrap()
}

/// As xz(1) writes it (CRC64 block checks).
fn xz(t: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(t).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn stream_all(p: &Path, l: &Limits) -> io::Result<Vec<u8>> {
    let (mut r, _) = open(p, l)
        .map_err(|e| io::Error::other(e.to_string()))?
        .stream()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[test]
fn fifo_without_writer_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fifo");
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let t = Instant::now();
    let e = open(&p, &limits()).err().expect("a FIFO must be refused");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let s = e.to_string();
    assert!(
        s.contains("fifo") && s.contains("FIFO") && s.contains("- <"),
        "{s}"
    );
}

#[test]
fn devices_and_directories_are_refused() {
    for p in ["/dev/zero", "/dev/urandom", "/dev/null"] {
        let e = open(Path::new(p), &limits()).err().expect(p).to_string();
        assert!(e.starts_with(p) && e.contains("character device"), "{e}");
    }
    let e = open(Path::new("/"), &limits()).err().unwrap().to_string();
    assert!(e.contains("directory"), "{e}");
    let e = open(Path::new("/nonexistent/x"), &limits())
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("/nonexistent/x:"), "{e}");
}

#[test]
fn plain_and_every_compression_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = text();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zst(&t);
    let xz = xz(&t);
    // Two xz streams back to back, as `cat a.xz b.xz` makes.
    let xz2 = [xz.clone(), xz.clone()].concat();
    let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz.write_all(&t).unwrap();
    let lz = lz.finish().unwrap();
    // Two zstd frames back to back, as zstd(1) writes for `cat a.zst b.zst`.
    let mut two = zst.clone();
    two.extend_from_slice(&zst);
    for (name, data, want, c) in [
        ("plain", t.clone(), t.clone(), None),
        ("gz", gz, t.clone(), Some(Compression::Gzip)),
        ("zst", zst, t.clone(), Some(Compression::Zstd)),
        (
            "zst2",
            two,
            [t.clone(), t.clone()].concat(),
            Some(Compression::Zstd),
        ),
        ("xz", xz, t.clone(), Some(Compression::Xz)),
        (
            "xz2",
            xz2,
            [t.clone(), t.clone()].concat(),
            Some(Compression::Xz),
        ),
        ("lz4", lz, t.clone(), Some(Compression::Lz4)),
    ] {
        let p = write(dir.path(), name, &data);
        let l = Limits {
            max_bytes: 1 << 24,
            ..limits()
        };
        assert_eq!(stream_all(&p, &l).unwrap(), want, "{name}");
        let loaded = open(&p, &l).unwrap().load().unwrap();
        assert_eq!(&loaded.bytes[..], &want[..], "{name}");
        assert_eq!(loaded.compression, c, "{name}");
        assert!(loaded.damage.is_none(), "{name}: {:?}", loaded.damage);
    }
}

#[test]
fn zstd_flipped_bytes_are_reported_not_passed() {
    // Every single-byte flip past the frame header must either fail to
    // decode or fail the checksum/content size: none may pass silently.
    let dir = tempfile::tempdir().unwrap();
    let t = text();
    let zst = zst(&t);
    let step = (zst.len() / 40).max(1);
    let mut silent = Vec::new();
    for at in (6..zst.len()).step_by(step) {
        let mut bad = zst.clone();
        bad[at] ^= 0x55;
        let p = write(dir.path(), "flip.zst", &bad);
        match stream_all(&p, &limits()) {
            Ok(v) if v == t => {} // a flip in padding or an unused bit
            Ok(_) => silent.push(at),
            Err(e) => {
                let s = e.to_string();
                assert!(s.starts_with("zstd: "), "{s}");
                assert!(
                    !s.contains("Error(") && !s.contains("{ "),
                    "debug text: {s}"
                );
            }
        }
        let l = open(&p, &limits()).unwrap().load().unwrap();
        if &l.bytes[..] != t.as_slice() {
            assert!(
                l.damage.is_some(),
                "flip at {at}: damaged bytes with no damage"
            );
        }
    }
    assert!(silent.is_empty(), "flips passed silently at {silent:?}");
}

#[test]
fn truncated_streams_keep_their_prefix_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let t = text();
    let zst = zst(&t);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    let xz = xz(&t);
    for (name, data) in [("zst", zst), ("gz", gz), ("xz", xz)] {
        let cut = &data[..data.len() * 2 / 3];
        let p = write(dir.path(), name, cut);
        let l = open(&p, &limits()).unwrap().load().unwrap();
        let d = l.damage.expect(name);
        assert!(d.contains("broke off"), "{name}: {d}");
        assert!(
            t.starts_with(&l.bytes),
            "{name}: prefix is not the content's"
        );
        // A decoder that keeps its window to itself until the frame ends
        // (ruzstd for a single-segment frame, lzma-rs for the dictionary)
        // gives nothing at all before the cut.
        assert!(
            l.bytes.len() >= t.len() / 4,
            "{name}: only {} of {} bytes kept before the cut",
            l.bytes.len(),
            t.len()
        );
        // The stream says the same, after handing out the same prefix.
        let (mut r, _) = open(&p, &limits()).unwrap().stream().unwrap();
        let mut got = Vec::new();
        let e = read_to_end_capped(&mut r, &mut got, u64::MAX).unwrap_err();
        assert_eq!(got.len(), l.bytes.len(), "{name}");
        let e = e.to_string();
        assert!(
            e.contains("cut short") || e.contains("ends early"),
            "{name}: {e}"
        );
    }
}

#[test]
fn decompression_bombs_stop_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB of zeros in a few KB.
    let zeros = io::repeat(0).take(16 << 20);
    let zst = ::zstd::encode_all(zeros, 3).unwrap();
    assert!(zst.len() < 1 << 20);
    let p = write(dir.path(), "bomb.zst", &zst);
    let l = Limits {
        max_bytes: 1 << 20,
        ..limits()
    };
    let e = stream_all(&p, &l).unwrap_err().to_string();
    assert!(e.contains("more than 1048576 bytes"), "{e}");
    let loaded = open(&p, &l).unwrap().load().unwrap();
    assert_eq!(loaded.bytes.len(), 1 << 20);
    assert!(loaded
        .damage
        .unwrap()
        .contains("only the first 1048576 bytes"));
}

#[test]
fn plain_files_are_mapped_and_empty_files_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a", b"\x7fELF....");
    let l = open(&p, &limits()).unwrap().load().unwrap();
    assert!(matches!(l.bytes, Bytes::Mapped(_)));
    let p = write(dir.path(), "empty", b"");
    let i = open(&p, &limits()).unwrap();
    assert!(i.is_empty());
    assert!(i.load().unwrap().bytes.is_empty());
    assert!(stream_all(&p, &limits()).unwrap().is_empty());
}

#[test]
fn zstd_errors_are_words() {
    let dir = tempfile::tempdir().unwrap();
    // A zstd magic followed by a reserved-bit frame descriptor.
    let p = write(
        dir.path(),
        "bad.zst",
        &[0x28, 0xb5, 0x2f, 0xfd, 0x08, 0, 0, 0],
    );
    let e = stream_all(&p, &limits()).unwrap_err().to_string();
    assert!(e.starts_with("zstd: ") && !e.contains("Error("), "{e}");
}

#[test]
fn sockets_are_named_and_holes_of_plain_streams_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let e = open(&sock, &limits()).err().unwrap().to_string();
    assert!(e.contains("is a socket, not a regular file"), "{e}");
    // 1 TiB claimed, a line at the start and one at the end on disk.
    let p = dir.path().join("sparse.log");
    {
        use std::os::unix::fs::FileExt;
        let f = File::create(&p).unwrap();
        f.write_all_at(b"first\n", 0).unwrap();
        f.write_all_at(b"last\n", 1 << 40).unwrap();
    }
    let t = Instant::now();
    let v = stream_all(&p, &limits()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let text: Vec<u8> = v.into_iter().filter(|&b| b != 0).collect();
    assert_eq!(text, b"first\nlast\n");
}

#[test]
fn xz_flipped_bytes_are_reported_not_passed() {
    // liblzma verifies each block's check (CRC64 from xz(1)) and the
    // index: no flip past the stream header may pass silently.
    let dir = tempfile::tempdir().unwrap();
    let t = text();
    let xz = xz(&t);
    let step = (xz.len() / 40).max(1);
    let mut silent = Vec::new();
    for at in (12..xz.len()).step_by(step) {
        let mut bad = xz.clone();
        bad[at] ^= 0x55;
        let p = write(dir.path(), "flip.xz", &bad);
        match stream_all(&p, &limits()) {
            Ok(v) if v == t => {}
            Ok(_) => silent.push(at),
            Err(e) => {
                let s = e.to_string();
                assert!(s.starts_with("xz: ") && !s.contains("Error"), "{s}");
            }
        }
    }
    assert!(silent.is_empty(), "flips passed silently at {silent:?}");
}

#[test]
fn gzip_and_lz4_damage_is_said_in_words() {
    // flate2 says "corrupt deflate stream", lz4_flex prints its Debug text
    // (`DecompressionError(OffsetOutOfBounds)`): neither tells a user the
    // file is damaged.
    let dir = tempfile::tempdir().unwrap();
    let t = text();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    // With a content checksum, as lz4(1) writes by default.
    let mut lz = lz4_flex::frame::FrameEncoder::with_frame_info(
        lz4_flex::frame::FrameInfo::new().content_checksum(true),
        Vec::new(),
    );
    lz.write_all(&t).unwrap();
    let lz = lz.finish().unwrap();
    for (name, data) in [("gz", gz), ("lz4", lz)] {
        let mut errors = 0;
        for at in (20..data.len()).step_by((data.len() / 40).max(1)) {
            let mut bad = data.clone();
            bad[at] ^= 0x55;
            let p = write(dir.path(), name, &bad);
            if let Err(e) = stream_all(&p, &limits()) {
                let s = e.to_string();
                // A flip may also turn the data into what reads as a
                // stream cut short.
                assert!(
                    (s.contains("damaged") || s.contains("ends early"))
                        && !s.contains("Error(")
                        && !s.contains("Error {"),
                    "{name} flip at {at}: {s}"
                );
                errors += 1;
            }
        }
        assert!(errors > 0, "{name}: no flip was noticed");
    }
}

#[test]
fn zstd_windows_past_the_limit_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    // Frame header: no single segment, no content size; the window
    // descriptor's exponent 21 asks for 2^31 bytes (RFC 8878 §3.1.1.1.2).
    let p = write(
        dir.path(),
        "huge.zst",
        &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0, 0, 0, 0],
    );
    let e = stream_all(&p, &limits()).unwrap_err().to_string();
    assert!(e.starts_with("zstd: ") && e.contains("128 MiB"), "{e}");
}

#[test]
fn zstd_pages_decode_into_their_buffer_and_fail_in_words() {
    // What wedge-vmcore's kdump pages go through: one frame per page.
    let page: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let z = zst(&page);
    let mut out = vec![0u8; 4096];
    assert_eq!(zstd_decompress_into(&z, &mut out), Ok(4096));
    assert_eq!(out, page);
    // A page that decodes to more than the buffer holds is an error.
    let mut small = vec![0u8; 1024];
    let e = zstd_decompress_into(&z, &mut small).unwrap_err();
    assert!(e.contains("more than 1024 bytes"), "{e}");
    let mut worded = 0;
    for at in (4..z.len()).step_by(7) {
        let mut bad = z.clone();
        bad[at] ^= 0xff;
        match zstd_decompress_into(&bad, &mut out) {
            Ok(_) => assert_eq!(out, page, "flip at {at} passed silently"),
            Err(w) => {
                assert!(w.starts_with("zstd: ") && !w.contains("Error"), "{w}");
                worded += 1;
            }
        }
    }
    assert!(worded > 0);
    let e = zstd_decompress_into(b"not zstd", &mut out).unwrap_err();
    assert!(e.contains("not a zstd frame"), "{e}");
}
