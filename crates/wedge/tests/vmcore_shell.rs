//! `wedge vmcore DUMP shell` as a user runs it with commands piped in, on
//! the QEMU guest's dumps (wedge-vmcore's fixtures, cached under target/):
//! the dump opened once, several commands, one bad one that does not end
//! the session.

mod common;
#[path = "../../wedge-vmcore/tests/common/fixture.rs"]
mod fixture;

use fixture::{boot_or_skip, Boot};
use std::time::Duration;

#[test]
fn a_piped_session_on_a_dump() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = fx.dumps["kdump-zlib"].to_str().expect("utf-8 fixture path");
    // The history lives under HOME / XDG_STATE_HOME: both point at a
    // scratch directory (removed on drop), never the user's own.
    let home = common::scratch("shell");
    let reader = fx
        .view
        .by_comm("wk-fuse-reader")
        .expect("fuse scenario ran")
        .pid;
    let script = format!(
        "eval init_task.comm\n\
         eval init_task.comn\n\
         p task(1)->mm ? task(1)->pid : -1\n\
         eval --depth 0 init_task\n\
         sym current_task\n\
         frobnicate 1\n\
         rd init_task 2\n\
         dis schedule 3\n\
         ptype struct list_head\n\
         ps\n\
         why {reader}\n\
         ps --bogus\n\
         help\n\
         bt 1\n\
         eval task(1)->comm --json\n\
         quit\n\
         eval 1\n"
    );
    let r = common::run(
        &["vmcore", dump, "shell"],
        common::Opts::within(Duration::from_secs(300))
            .stdin(script.as_bytes())
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state")),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = &r.stdout;
    assert!(
        out.starts_with("(char [16])\"swapper/0\"\n(pid_t)1\n"),
        "{out}"
    );
    assert!(
        out.contains("*(struct task_struct *)0x") && out.contains(" = {...}\n"),
        "{out}"
    );
    assert!(out.contains(" current_task  per-CPU"), "{out}");
    // rd reads the words where eval found init_task.
    let addr = out
        .split("*(struct task_struct *)0x")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("init_task's address");
    assert!(out.contains(&format!("\n{addr:0>16}:  ")), "{out}");
    assert!(out.contains(" <schedule+0>:\t"), "{out}");
    assert!(out.contains("struct list_head {\n"), "{out}");
    // bt with the one-shot arm's arguments (frames from ORC, no DWARF).
    assert!(out.contains("#0  __schedule+0x"), "{out}");
    // The dump views share one snapshot.
    assert!(out.contains("wk-fuse-reader"), "{out}");
    assert!(
        out.contains(&format!("wk-fuse-reader (pid {reader})")),
        "{out}"
    );
    assert!(out.contains("why PID"), "help lists the views: {out}");
    let init = &fx.view.tasks[&1].comm;
    assert!(
        out.ends_with(&format!("\"type\":\"char [16]\",\"value\":\"{init}\"}}\n")),
        "{out}"
    );
    // Nothing after quit ran.
    assert!(!out.contains("(int)1\n"), "{out}");
    // Each bad command: its error on stderr, and the session went on.
    let err = &r.stderr;
    assert!(
        err.contains("error: struct task_struct has no member \"comn\" (near: comm) (column 11)\n  init_task.comn\n            ^^^^\n"),
        "{err}"
    );
    assert!(
        err.contains("error: unknown command \"frobnicate\""),
        "{err}"
    );
    assert!(
        err.contains("error: unexpected argument '--bogus'"),
        "{err}"
    );
    // A piped session keeps no history.
    assert!(!home.path().join("state").exists());
    assert!(!home.path().join(".local").exists());
}

/// A terminal for wedge: the master side, read on a thread into `seen`.
struct Pty {
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    /// A pty pair: the master, and the slave for the child's stdio.
    fn open() -> (Pty, std::os::fd::OwnedFd) {
        use std::os::fd::FromRawFd;
        let (mut m, mut s) = (-1, -1);
        let ws = libc::winsize {
            ws_row: 24,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid out-pointers; no name buffer, default termios.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors we now own.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(m),
                std::os::fd::OwnedFd::from_raw_fd(s),
            )
        };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut rd = master.try_clone().expect("dup the pty master");
        let sink = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut b = [0u8; 4096];
            // Ends with EIO once the child has exited and closed the slave.
            while let Ok(n) = rd.read(&mut b) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&b[..n]);
            }
        });
        (Pty { master, seen }, slave)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until `what` shows after byte `from` of the output, and
    /// gives where it ends.
    fn wait_for(&self, what: &str, from: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let t = self.text();
            if let Some(i) = t.get(from..).and_then(|r| r.find(what)) {
                return from + i + what.len();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {what:?} on the terminal after byte {from}:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, keys: &str) {
        use std::io::Write;
        self.master.write_all(keys.as_bytes()).unwrap();
    }
}

/// Runs `wedge vmcore DUMP shell` on a terminal with HOME and
/// XDG_STATE_HOME at `home`, typing each of `session`'s keys at a prompt
/// and waiting for what it should show before the next.
fn on_a_terminal(dump: &str, home: &std::path::Path, session: &[(&str, &str)]) -> String {
    let (mut pty, slave) = Pty::open();
    let io = |fd: &std::os::fd::OwnedFd| std::process::Stdio::from(fd.try_clone().unwrap());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wedge"))
        .args(["vmcore", dump, "shell"])
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("TERM", "xterm")
        .stdin(io(&slave))
        .stdout(io(&slave))
        .stderr(io(&slave))
        .spawn()
        .expect("spawn wedge");
    drop(slave);
    let mut at = 0;
    for (keys, shows) in session {
        // The editor prints its prompt once the terminal is in raw mode:
        // keys typed before it would be cooked by the line discipline.
        at = pty.wait_for("wedge> ", at);
        pty.send(keys);
        at = pty.wait_for(shows, at);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the shell did not end:\n{}", pty.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // What the terminal shows once the reader has drained it.
    std::thread::sleep(Duration::from_millis(200));
    assert!(status.success(), "{status}:\n{}", pty.text());
    pty.text()
}

#[test]
fn on_a_terminal_tab_completes_and_keeps_history() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    if !std::path::Path::new("/dev/ptmx").exists() {
        wedge_testkit::skip_or_fail("no /dev/ptmx: no pseudo-terminal to run the shell on");
        return;
    }
    let dump = fx.dumps["elf"].to_str().expect("utf-8 fixture path");
    let home = common::scratch("shell-tty");
    // Tab completes the member of what was typed so far, and the command
    // runs: init's real_parent is the idle task.
    let out = on_a_terminal(
        dump,
        home.path(),
        &[
            (
                "eval task(1)->real_pa\t->comm\r",
                "(char [16])\"swapper/0\"",
            ),
            ("evl 1\r", "error: unknown command \"evl\""),
            ("quit\r", ""),
        ],
    );
    // The editor redrew the line with the member completed.
    assert!(out.contains("wedge> eval task(1)->real_parent"), "{out}");
    assert!(out.contains("(char [16])\"swapper/0\""), "{out}");
    assert!(out.contains("error: unknown command \"evl\""), "{out}");
    let hist = home.path().join("state/wedge/history");
    let h = std::fs::read_to_string(&hist).unwrap_or_else(|e| panic!("{}: {e}", hist.display()));
    assert!(h.contains("eval task(1)->real_parent->comm\n"), "{h}");
    // The next session has it: up three times (quit, evl 1, the eval)
    // and Enter runs it again; Ctrl-D ends the session.
    let out = on_a_terminal(
        dump,
        home.path(),
        &[
            ("\x1b[A\x1b[A\x1b[A\r", "(char [16])\"swapper/0\""),
            ("\x04", ""),
        ],
    );
    assert!(out.contains("(char [16])\"swapper/0\""), "{out}");
}

#[test]
fn garbage_piped_in_is_errors_not_a_crash() {
    let Some(fx) = boot_or_skip(Boot::Kaslr).unwrap() else {
        return;
    };
    let dump = fx.dumps["elf"].to_str().expect("utf-8 fixture path");
    let home = common::scratch("shell-junk");
    let mut junk: Vec<u8> = Vec::new();
    junk.extend(b"\xff\xfe\x00eval \x00\x01\n");
    junk.extend(b"eval ((((((((((\n");
    junk.extend(b"rd init_task 99999999999\n");
    junk.extend(b"dis 0 0\n");
    junk.extend(b"why notapid\n");
    junk.extend(b"eval --depth 100000 init_task\n");
    // A line past the 64 KiB cap, then one that works, then no newline.
    junk.extend(std::iter::repeat_n(b'(', 200_000));
    junk.extend(b"\neval init_task.pid\neval 1 ? 2");
    let r = common::run(
        &["vmcore", dump, "shell"],
        common::Opts::within(Duration::from_secs(300))
            .stdin(&junk)
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path()),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "(pid_t)0\n");
    let err = &r.stderr;
    assert!(!err.contains("panicked"), "{err}");
    for want in [
        "error: unknown command",
        "error: expected an expression",
        "error: COUNT 99999999999 is too many",
        "error: COUNT must be at least 1",
        "invalid value 'notapid'",
        "error: --depth 100000 is too deep",
        "error: a line longer than 65536 bytes, skipped",
        "error: expected \":\", found the end of the expression",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}
