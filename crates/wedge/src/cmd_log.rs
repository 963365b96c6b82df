//! `wedge log [FILE…]`: kernel logs as typed events (wedge-klog reads,
//! wedge-render's log view writes).

use clap::Args;
use wedge_render::view::Status;

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Log files (dmesg, syslog, journalctl, console captures, pasted
    /// reports; .gz, .zst, .xz and .lz4 read directly). `-` is standard input.
    /// Without any, the live kernel log (/dev/kmsg).
    pub files: Vec<std::path::PathBuf>,
    /// Keep reading /dev/kmsg and print events as they complete.
    #[arg(long, short)]
    pub follow: bool,
    /// Only these kinds (repeatable; `lustre_*` matches a prefix).
    #[arg(long = "kind", value_name = "KIND", value_parser = wedge_klog::parse_kind, help = wedge_klog::kind_help())]
    pub kinds: Vec<String>,
    /// Only events at or after this time: seconds since boot (`3600`) or a
    /// UTC date (`2024-05-22` or `2024-05-22T19:04:47`). A date is compared
    /// with since-boot stamps through the boot time (the live log's
    /// /proc/stat btime, or syslog/journal lines carrying both clocks);
    /// events that cannot be compared (other clock with no boot time, or no
    /// stamp) are not shown, and stderr says how many.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events about this pid.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only events about this task name (comm).
    #[arg(long)]
    pub task: Option<String>,
}

/// Exit status 1 when a kept event is a panic, oops, hung task, lockup or stall.
pub fn run(json: bool, a: LogArgs) -> Result<Status, String> {
    let req = wedge_klog::LogRequest::new(a.files, a.follow, a.kinds, a.since, a.pid, a.task)?;
    Ok(Status::of(wedge_render::log::run(&req, json)?, false))
}
