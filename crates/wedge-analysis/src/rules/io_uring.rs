//! Exits held by io_uring: do_exit() cancels the task's io_uring requests
//! and waits for the io-wq workers and the SQPOLL thread (the D waits are
//! found by the uninterruptible rule, which gives them these ids and texts).

use crate::finding::Remedy;
use wedge_model::Process;

rule_ids! {
    /// The io_uring family.
    pub enum IoUringRule {
        /// An exit waiting in io_uring_cancel_generic / io_wq_put_and_exit.
        Stuck = "io_uring.stuck",
    }
}

impl IoUringRule {
    pub fn explanation(self) -> &'static str {
        match self {
            IoUringRule::Stuck => {
                "The process is exiting but cannot finish: exit cancels its io_uring requests and \
                 waits (io_uring_cancel_generic, io_wq_put_and_exit) for the io-wq workers and the \
                 SQPOLL thread to stop. A request one of them is executing is blocked (the chain names \
                 on what), so the exit — and the SIGKILL — wait with it; a machine in this state can \
                 also fail to power off. Linux 6.6 LTS (6.6.58 in libuv#4598 / node#55587) had such \
                 hangs with iou-sqp threads reported as hung tasks."
            }
        }
    }

    pub fn remedies(self, p: &Process) -> Vec<Remedy> {
        match self {
            IoUringRule::Stuck => vec![
                Remedy {
                    action: "unblock what the io_uring worker waits on (see the chain): e.g. abort the FUSE connection it waits for".into(),
                    command: None,
                },
                Remedy {
                    action: format!(
                        "for libuv / Node.js programs ({}), turn off libuv's io_uring use until the kernel is fixed",
                        p.comm
                    ),
                    command: Some("export UV_USE_IO_URING=0".into()),
                },
                Remedy {
                    action: "update the kernel to a release with the io_uring exit/cancel fixes".into(),
                    command: None,
                },
            ],
        }
    }
}
