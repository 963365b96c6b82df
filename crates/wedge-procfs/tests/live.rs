//! Scans of this very machine: the test process itself is a known subject.

use std::time::Duration;
use wedge_procfs::{scan, ScanOptions};

#[test]
fn scans_self_and_threads() {
    let me = std::process::id() as i32;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let b = barrier.clone();
    let t = std::thread::Builder::new()
        .name("wk-sleeper".into())
        .spawn(move || {
            b.wait();
            std::thread::sleep(Duration::from_secs(3));
        })
        .unwrap();
    barrier.wait();
    let snap = scan(&ScanOptions::default()).unwrap();
    let p = snap.process(me).expect("own process in snapshot");
    assert!(p.threads.len() >= 2, "threads: {:?}", p.threads.len());
    assert!(p.threads.iter().any(|t| t.comm == "wk-sleeper"));
    assert_eq!(p.threads[0].tid, me, "leader first");
    let argv = p.cmdline.value().expect("cmdline readable");
    assert!(argv[0].contains("live"), "{argv:?}");
    assert!(p.fds.value().is_some_and(|f| !f.is_empty()));
    assert!(!snap.mounts.is_empty());
    assert!(snap.system.kernel_release.is_some());
    // Root sees kernel stacks; others get a stated reason.
    let stack = &p.threads[0].kernel_stack;
    if snap.system.viewer_uid == 0 {
        assert!(stack.value().is_some(), "{stack:?}");
    } else {
        assert!(stack.missing_info().is_some());
    }
    // Every fd on a path resolves to a mount (pipes, sockets and anon
    // inodes live on internal mounts that no mount table lists).
    for f in p.fds.value().unwrap() {
        if f.kind != wedge_model::FileKind::Path {
            continue;
        }
        if let Some(id) = f.mount_id {
            assert!(
                snap.mount(id).is_some(),
                "fd {} mount {id} unresolved",
                f.fd
            );
        }
    }
    assert!(snap.stats.duration_ms < 10_000.0);
    t.join().unwrap();
}
