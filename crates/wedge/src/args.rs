//! Command-line arguments: the raw clap layer and the scan options built
//! from it.

use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Why is this process stuck, unkillable, or dead?
///
/// With no command: scan the whole machine and report what is wedged.
/// Exit status: 0 nothing wedged, 1 something wedged, 2 error.
#[derive(Parser, Debug)]
#[command(name = "wedge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Emit JSON instead of text: one compact line per document (`wedge
    /// log`: one line per event), for jq and friends.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show evidence and remedies for every finding, not only wedged ones.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// How the verdict scans /proc (also accepted after `ps` and `why`).
    #[command(flatten)]
    pub scan: ScanArgs,
    /// The recorder's database (`wedge record`): written by `record`, read
    /// by `history`, and by the verdict and `why` for when each task got
    /// stuck [default: $WEDGE_DB, else /var/lib/wedge/history.db for root,
    /// else $XDG_STATE_HOME/wedge/history.db].
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<std::path::PathBuf>,
}

/// How /proc is scanned: only for the commands that scan it (the verdict,
/// `ps`, `why`), so `log`, `core` and `vmcore` neither list nor take them.
#[derive(Args, Debug, Default, Clone)]
pub struct ScanArgs {
    /// Longest any single read of /proc may take, in milliseconds; a read
    /// past it is abandoned and reported as evidence [default: 250]. At
    /// least 20: below that an ordinary read of a busy process is cut and
    /// reported as blocked.
    #[arg(long, value_name = "MS", value_parser = parse_deadline)]
    pub deadline_ms: Option<u64>,
    /// Do not read command lines (they can block on a stuck process's
    /// mmap_lock; wedge bounds the read either way).
    #[arg(long)]
    pub no_cmdline: bool,
    /// Scanning threads (default: the number of CPUs, 2 to 4).
    #[arg(long, hide = true)]
    pub workers: Option<usize>,
    /// Do not read the live kernel's task objects through BPF (exact
    /// states, lock owners, kernel stacks): /proc's summaries only.
    #[arg(long)]
    pub no_bpf: bool,
    /// Do not read the block devices from sysfs (their stack, requests in
    /// flight, whether I/O completes during the scan, queue settings).
    #[arg(long)]
    pub no_devices: bool,
}

fn parse_deadline(s: &str) -> Result<u64, String> {
    let ms: u64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of milliseconds: {e}"))?;
    if ms < wedge_procfs::MIN_DEADLINE_MS {
        return Err(format!(
            "{ms} ms is below the floor of {} ms: shorter deadlines cut ordinary reads of busy \
             processes and report them as blocked",
            wedge_procfs::MIN_DEADLINE_MS
        ));
    }
    Ok(ms)
}

impl ScanArgs {
    /// Flags given after the command win over those given before it.
    fn or(&self, before: &ScanArgs) -> ScanArgs {
        ScanArgs {
            deadline_ms: self.deadline_ms.or(before.deadline_ms),
            no_cmdline: self.no_cmdline || before.no_cmdline,
            workers: self.workers.or(before.workers),
            no_bpf: self.no_bpf || before.no_bpf,
            no_devices: self.no_devices || before.no_devices,
        }
    }

    fn given(&self) -> bool {
        self.deadline_ms.is_some()
            || self.no_cmdline
            || self.workers.is_some()
            || self.no_bpf
            || self.no_devices
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tasks that matter: D, Z, T/t, fatal signal pending, and sleepers
    /// in waits known to hang (FUSE, NFS, Lustre, io_uring, locks).
    Ps(PsArgs),
    /// Everything about one process, and what it waits for.
    Why(WhyArgs),
    /// The block devices as a stack (disk, partitions, dm/md, loop and its
    /// backing file), with mounts, frozen filesystems, requests in flight
    /// and whether I/O completes.
    Storage(StorageArgs),
    /// Kernel logs as typed, decoded events: hung tasks, traps, segfaults,
    /// oopses, lockups, stalls, OOM kills, NFS/Lustre/CIFS messages.
    Log(crate::cmd_log::LogArgs),
    /// Threads, signal and backtraces of a user-space core file.
    Core(crate::cmd_core::CoreArgs),
    /// Tasks, states, kernel stacks and verdicts from a kernel crash dump.
    Vmcore(crate::cmd_vmcore::VmcoreArgs),
    /// The running kernel's own objects through BPF: typed memory (eval,
    /// ptype, sym, rd, dis), full kernel stacks (bt), the task pass (tasks).
    Kernel(crate::cmd_kernel::KernelArgs),
    /// Keep watching: sample the machine at an interval into the history
    /// database (tasks that matter, findings, kernel-log events, the
    /// system calls that led into a hang) until stopped.
    Record(crate::cmd_record::RecordArgs),
    /// What the recorder saw: when each task got stuck, how long it
    /// stayed, on what, and how it ended.
    History(crate::cmd_record::HistoryArgs),
    /// The scan as Prometheus metrics (tasks by state, wedged findings by
    /// id, blocked tasks by cause, kernel-log events, FUSE waiting), on
    /// stdout or in a file for node_exporter's textfile collector.
    Metrics(crate::cmd_metrics::MetricsArgs),
    /// Serve the metrics over HTTP (GET /metrics), one scan per scrape,
    /// until SIGTERM or SIGINT.
    Serve(crate::cmd_metrics::ServeArgs),
    /// node-problem-detector's custom plugin: one line (at most 80
    /// characters) naming what is wedged and its cause; exit 0 OK, 1
    /// problem, 2 unknown.
    Check(crate::cmd_metrics::CheckArgs),
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Every task, not only those that matter.
    #[arg(long, short)]
    pub all: bool,
    /// The process tree, threads under their process.
    #[arg(long, short)]
    pub tree: bool,
    /// Do not cut long command lines.
    #[arg(long, short)]
    pub wide: bool,
    #[command(flatten)]
    pub scan: ScanArgs,
}

impl PsArgs {
    pub fn options(&self) -> wedge_render::ps::PsOptions {
        wedge_render::ps::PsOptions {
            all: self.all,
            tree: self.tree,
            wide: self.wide,
        }
    }
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// A process id (or the id of one of its threads).
    pub pid: i32,
    /// Also show each thread's user-space backtrace, read without ptrace
    /// (bounded copies of its stacks; refused when the process uses a FUSE
    /// or network filesystem, where opening its binaries could block).
    #[arg(long)]
    pub user_stacks: bool,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Args, Debug)]
pub struct StorageArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
}

impl Cli {
    /// The scan options of the command, or an error when scan flags were
    /// given to a command that does not scan /proc.
    pub fn scan_options(&self) -> Result<wedge_procfs::ScanOptions, String> {
        Ok(self.scan_args()?.0)
    }

    /// Whether the scan also reads the live kernel through BPF (not with
    /// `--no-bpf`).
    pub fn bpf(&self) -> Result<bool, String> {
        Ok(self.scan_args()?.1)
    }

    fn scan_args(&self) -> Result<(wedge_procfs::ScanOptions, bool), String> {
        let args = match &self.command {
            None => self.scan.clone(),
            Some(Command::Ps(a)) => a.scan.or(&self.scan),
            Some(Command::Why(a)) => a.scan.or(&self.scan),
            Some(Command::Storage(a)) => a.scan.or(&self.scan),
            Some(Command::Record(a)) => a.scan.or(&self.scan),
            Some(Command::Metrics(a)) => a.scan.or(&self.scan),
            Some(Command::Serve(a)) => a.scan.or(&self.scan),
            Some(Command::Check(a)) => a.scan.or(&self.scan),
            Some(_) if self.scan.given() => return Err(
                "--deadline-ms, --no-cmdline, --no-bpf, --no-devices and --workers apply only to \
                     the commands that scan /proc (wedge, wedge ps, wedge why, wedge storage, \
                     wedge record, wedge metrics, wedge serve, wedge check)"
                    .into(),
            ),
            Some(_) => ScanArgs::default(),
        };
        let mut o = wedge_procfs::ScanOptions {
            cmdline: !args.no_cmdline,
            block_devices: !args.no_devices,
            ..wedge_procfs::ScanOptions::default()
        };
        if let Some(ms) = args.deadline_ms {
            // clap already refused values below the floor.
            o.deadline = Duration::from_millis(ms.max(wedge_procfs::MIN_DEADLINE_MS));
        }
        if let Some(w) = args.workers {
            o.workers = w.clamp(1, 64);
        }
        Ok((o, !args.no_bpf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn help(sub: &str) -> String {
        let mut cmd = Cli::command();
        cmd.build();
        cmd.find_subcommand_mut(sub)
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn scan_flags_only_where_proc_is_scanned() {
        for sub in ["log", "core", "vmcore"] {
            let h = help(sub);
            assert!(!h.is_empty(), "no help for {sub}");
            for flag in [
                "--deadline-ms",
                "--no-cmdline",
                "--workers",
                "--no-bpf",
                "--no-devices",
            ] {
                assert!(!h.contains(flag), "{sub} --help lists {flag}:\n{h}");
            }
            assert!(h.contains("--json"), "{sub} lost --json");
        }
        for sub in ["ps", "why"] {
            assert!(help(sub).contains("--deadline-ms"), "{sub}");
        }
        let cli = Cli::try_parse_from(["wedge", "--deadline-ms", "40", "log"]).unwrap();
        assert!(cli.scan_options().is_err());
        let cli = Cli::try_parse_from(["wedge", "--deadline-ms", "40", "ps"]).unwrap();
        assert_eq!(cli.scan_options().unwrap().deadline.as_millis(), 40);
        let cli = Cli::try_parse_from(["wedge", "ps", "--deadline-ms", "60"]).unwrap();
        assert_eq!(cli.scan_options().unwrap().deadline.as_millis(), 60);
        let cli = Cli::try_parse_from(["wedge", "why", "1"]).unwrap();
        assert_eq!(cli.scan_options().unwrap().deadline.as_millis(), 250);
        assert!(cli.bpf().unwrap(), "BPF is on by default");
        for args in [
            vec!["wedge", "--no-bpf"],
            vec!["wedge", "ps", "--no-bpf"],
            vec!["wedge", "--no-bpf", "why", "1"],
        ] {
            let cli = Cli::try_parse_from(&args).unwrap();
            assert!(!cli.bpf().unwrap(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["wedge", "--no-bpf", "log"]).unwrap();
        assert!(cli.bpf().is_err());
    }

    #[test]
    fn deadline_below_the_floor_is_refused() {
        for ms in ["0", "1", "19"] {
            for args in [
                vec!["wedge", "--deadline-ms", ms],
                vec!["wedge", "ps", "--deadline-ms", ms],
                vec!["wedge", "why", "1", "--deadline-ms", ms],
            ] {
                let e = Cli::try_parse_from(&args).expect_err(&format!("{args:?} accepted"));
                assert!(e.to_string().contains("20"), "{e}");
            }
        }
        assert!(Cli::try_parse_from(["wedge", "--deadline-ms", "20"]).is_ok());
    }
}
