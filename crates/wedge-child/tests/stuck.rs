//! A child caught where SIGKILL cannot reach it: a FUSE LOOKUP (in the
//! test daemon's `stalldir`, which parks them) that the daemon has read
//! waits in `request_wait_answer` (fs/fuse/dev.c) in an uninterruptible
//! `wait_event` once the killable phase is over, so the
//! killed child cannot be reaped until the daemon answers. wedge-child must
//! neither hang on it nor lose it: it is reported as outliving its kill,
//! and reaped once the request ends.

use libtest_mimic::{Arguments, Failed, Trial};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use wedge_testkit::{setup_or_skip, FuseDaemon};

fn a_child_in_a_fuse_wait_outlives_its_kill() -> Result<(), Failed> {
    let fs = setup_or_skip!(FuseDaemon::start());
    let path = std::ffi::CString::new(fs.path("stalldir/never").as_os_str().as_encoded_bytes())?;
    let (r, w) = wedge_child::pipe()?;
    let setup = wedge_child::Setup::new(c"wedge-test", &[w.as_raw_fd()])?;
    // SAFETY: the child makes one raw open(2) on a path prepared above.
    let pid = unsafe {
        wedge_child::spawn(&setup, || {
            libc::open(path.as_ptr(), libc::O_RDONLY);
            0
        })
    }?;
    drop(w);
    let parked = fs.wait_parked("LOOKUP", Some(pid), Duration::from_secs(10));
    if let Err(e) = parked {
        wedge_child::kill_and_reap(&[pid], Duration::from_secs(5));
        return Err(format!("the child's LOOKUP never reached the daemon: {e}").into());
    }
    // Nothing comes from a child stuck in the kernel: the wait is bounded.
    let t = Instant::now();
    let mut b = [0u8; 1];
    let got = wedge_child::read_exact_until(r.as_raw_fd(), &mut b, t + Duration::from_millis(100));
    if !matches!(got, Err(wedge_child::ReadError::TimedOut)) || t.elapsed() > Duration::from_secs(2)
    {
        return Err(format!("expected a timeout, got {got:?} after {:?}", t.elapsed()).into());
    }
    wedge_child::abandon(pid);
    let stuck = wedge_child::outlived(Duration::from_millis(300));
    let stuck_ok = stuck.contains(&pid);
    // Answer the LOOKUP: the wait ends, the pending SIGKILL lands.
    fs.release()?;
    let left = wedge_child::outlived(Duration::from_secs(10));
    if !stuck_ok {
        return Err(format!("the stuck child {pid} was not reported: {stuck:?}").into());
    }
    if left.contains(&pid) {
        return Err(format!("child {pid} was not reaped once its request ended").into());
    }
    Ok(())
}

fn main() {
    wedge_testkit::role_main_if_requested();
    let args = Arguments::from_args();
    libtest_mimic::run(
        &args,
        vec![Trial::test(
            "a_child_in_a_fuse_wait_outlives_its_kill",
            a_child_in_a_fuse_wait_outlives_its_kill,
        )],
    )
    .exit();
}
