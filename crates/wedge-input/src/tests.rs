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
    let zst =
        ruzstd::encoding::compress_to_vec(&t[..], ruzstd::encoding::CompressionLevel::Fastest);
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &t[..], &mut xz).unwrap();
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
    let zst =
        ruzstd::encoding::compress_to_vec(&t[..], ruzstd::encoding::CompressionLevel::Fastest);
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
    let zst =
        ruzstd::encoding::compress_to_vec(&t[..], ruzstd::encoding::CompressionLevel::Fastest);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &t[..], &mut xz).unwrap();
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
    }
}

#[test]
fn decompression_bombs_stop_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB of zeros in a few KB.
    let zeros = io::repeat(0).take(16 << 20);
    let zst = ruzstd::encoding::compress_to_vec(zeros, ruzstd::encoding::CompressionLevel::Fastest);
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
fn ruzstd_io_errors_are_words() {
    // What wedge-vmcore's kdump pages go through: StreamingDecoder wraps
    // its errors in io::Error, whose Display is partly Rust debug text.
    let t = text();
    let zst =
        ruzstd::encoding::compress_to_vec(&t[..], ruzstd::encoding::CompressionLevel::Fastest);
    let mut worded = 0;
    for at in (20..zst.len()).step_by(97) {
        let mut bad = zst.clone();
        bad[at] ^= 0xff;
        let Ok(mut d) = ruzstd::decoding::StreamingDecoder::new(&bad[..]) else {
            continue;
        };
        if let Err(e) = d.read_to_end(&mut Vec::new()) {
            let w = zstd_io_error_words(&e);
            assert!(!w.contains("Error(") && !w.contains("{ "), "{w}");
            worded += 1;
        }
    }
    assert!(worded > 0);
}
