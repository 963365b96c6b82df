//! On real files: this test binary's own DWARF (an x86-64 ELF built with
//! debuginfo), and broken copies of it.

use crate::{Debuginfo, Dwarf, Expect};
use object::{Object, ObjectSymbol};
use std::path::PathBuf;

fn me() -> PathBuf {
    std::env::current_exe().expect("the test binary")
}

#[inline(never)]
fn a_function_to_find(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

#[test]
fn names_a_function_of_its_own_binary_with_its_file() {
    let _ = a_function_to_find(1);
    let bytes = std::fs::read(me()).unwrap();
    let obj = object::File::parse(&*bytes).unwrap();
    let sym = obj
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| n.contains("a_function_to_find") && !n.contains("closure"))
        })
        .expect("the symbol");
    let d = Dwarf::open(&me(), &Expect::default()).expect("own DWARF");
    let frames = d.frames_at(sym.address() + 1).expect("lookup");
    let f = frames.last().expect("a frame");
    assert_eq!(f.function, "a_function_to_find");
    assert!(
        f.file.as_deref().is_some_and(|p| p.ends_with("tests.rs")),
        "{frames:?}"
    );
    assert!(f.line.is_some_and(|l| l > 0));
}

#[test]
fn bad_files_are_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let junk = dir.join("vmlinux");
    std::fs::write(&junk, b"\x7fELF but not really").unwrap();
    let e = Dwarf::open(&junk, &Expect::default())
        .err()
        .expect("an error");
    assert!(e.starts_with(&junk.display().to_string()), "{e}");
    assert!(e.contains("not a readable ELF file"), "{e}");
    // Truncated: the headers say sections lie past the end.
    let bytes = std::fs::read(me()).unwrap();
    let cut = dir.join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let e = Dwarf::open(&cut, &Expect::default())
        .err()
        .expect("an error");
    assert!(e.starts_with(&cut.display().to_string()), "{e}");
    // Another build: a build-id that cannot be this one's.
    let want = Expect {
        build_id: Some("00".repeat(20)),
        ..Expect::default()
    };
    let e = Dwarf::open(&me(), &want).err().expect("an error");
    assert!(
        e.contains("does not match the dump's") || e.contains("cannot tell which kernel"),
        "{e}"
    );
    // A directory with nothing in it.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = Debuginfo::open(std::slice::from_ref(&empty), &Expect::default())
        .err()
        .expect("an error");
    assert!(e.contains("no vmlinux or module debuginfo found"), "{e}");
}
