//! The `wedge` command: arguments, dispatch and exit codes only. Every
//! view is `wedge-render`'s, from a snapshot a source gives (the live
//! /proc, a crash dump) and its diagnosis.

mod args;
mod cmd_core;
mod cmd_kernel;
mod cmd_log;
mod cmd_metrics;
mod cmd_record;
mod cmd_vmcore;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;
use wedge_model::{Process, Snapshot, SnapshotSource};
use wedge_render::view::{self, Status};

/// The exit status, in one place: 0 nothing found, 1 something wedged (or
/// found: a panic, a serious kernel-log event), 2 error, 3 nothing found
/// but the view is partial (a dump cut short: no all-clear).
fn main() -> ExitCode {
    let result = run(Cli::parse());
    if let Err(e) = &result {
        eprintln!("wedge: {e}");
    }
    // A sacrificial reader given up on (a /proc read, an open on a dead
    // FUSE or NFS mount) that is past the killable part of its wait cannot
    // die of its SIGKILL until the wait ends: say so rather than leave it
    // unexplained in ps. init reaps it once it dies.
    let stuck = wedge_child::outlived(std::time::Duration::from_millis(100));
    if !stuck.is_empty() {
        let pids: Vec<String> = stuck.iter().map(|p| p.to_string()).collect();
        eprintln!(
            "wedge: {} reader process(es) wedge forked (pid {}) are stuck in the kernel past SIGKILL; each exits when the wait it is in ends",
            stuck.len(),
            pids.join(", ")
        );
    }
    match result {
        Ok(Status::Clear) => ExitCode::SUCCESS,
        Ok(Status::Found) => ExitCode::from(1),
        Ok(Status::Partial) => ExitCode::from(3),
        Err(_) => ExitCode::from(2),
    }
}

/// The live snapshot: /proc, joined with the kernel's own task objects
/// through BPF unless `--no-bpf` (the pass says why when it cannot run).
fn live_snapshot(opts: &wedge_procfs::ScanOptions, bpf: bool) -> Result<Snapshot, String> {
    let pass = wedge_bpf::snapshot::LivePass::open(bpf);
    let mut opts = opts.clone();
    if pass.replaces_stacks() {
        opts.stacks = false;
        opts.wchan = false;
    }
    let mut snap = wedge_procfs::LiveSource(opts).snapshot()?;
    pass.apply(&mut snap);
    Ok(snap)
}

fn run(cli: Cli) -> Result<Status, String> {
    let opts = cli.scan_options()?;
    let bpf = cli.bpf()?;
    let live = || live_snapshot(&opts, bpf);
    let out = &mut std::io::stdout().lock();
    match cli.command {
        None => {
            let mut snap = live()?;
            // The kernel log of this boot: what dead processes left behind
            // and the kernel's own hang reports.
            let events = wedge_klog::live_log_events(&mut snap.limitations);
            let mut d = wedge_analysis::diagnose(&snap, &events);
            // Since when each finding's task has been stuck, where the
            // recorder saw it.
            let mut pids: Vec<i32> = Vec::new();
            for &p in d.findings.iter().flat_map(|f| &f.pids) {
                if !pids.contains(&p) {
                    pids.push(p);
                }
            }
            // One indexed query a pid; a finding naming thousands of
            // tasks tells its episode by its first ones.
            pids.truncate(64);
            cmd_record::attach_history(&mut snap, &mut d, cli.db.as_deref(), &pids);
            view::verdict::<()>(&snap, &d, cli.verbose, cli.json, None, out)
        }
        Some(Command::Ps(ps)) => {
            let snap = live()?;
            let status = view::ps::<()>(&snap, ps.options(), cli.json, None, out);
            // The process ends here: freeing 10,000 threads' worth of
            // records one by one would only delay the exit.
            std::mem::forget(snap);
            status
        }
        Some(Command::Why(why)) => {
            let mut snap = live()?;
            // The kernel's own words about the task's wait (an NFS server
            // not responding, a hung-task report) join its finding.
            let events = wedge_klog::live_log_events(&mut snap.limitations);
            let mut d = wedge_analysis::diagnose(&snap, &events);
            let pid = snap
                .process(why.pid)
                .or_else(|| snap.thread(why.pid).map(|(p, _)| p))
                .map_or(why.pid, |p| p.pid);
            cmd_record::attach_history(&mut snap, &mut d, cli.db.as_deref(), &[pid]);
            let deadline = opts.deadline.max(std::time::Duration::from_secs(1));
            let stacks = |p: &Process| {
                why.user_stacks.then(|| {
                    let refusal = wedge_analysis::user_stacks_refusal(&snap, p);
                    let u = wedge_coredump::user_stacks::read(&snap, p, deadline, refusal);
                    let text = wedge_coredump::user_stacks::render(&u);
                    (u, text)
                })
            };
            view::why::<(), _>(&snap, &d, why.pid, cli.json, None, stacks, out)
        }
        Some(Command::Storage(_)) => {
            let snap = live()?;
            wedge_render::storage::storage(&snap, cli.json, out)
        }
        Some(Command::Log(a)) => cmd_log::run(cli.json, a),
        Some(Command::Core(a)) => cmd_core::run(cli.json, &a, out),
        Some(Command::Vmcore(a)) => cmd_vmcore::run(cli.json, cli.verbose, &a, out),
        Some(Command::Kernel(a)) => cmd_kernel::run(cli.json, &a, out),
        Some(Command::Record(a)) => cmd_record::record(&a, &opts, bpf, cli.db.as_deref()),
        Some(Command::History(a)) => cmd_record::history(cli.json, &a, cli.db.as_deref(), out),
        Some(Command::Metrics(a)) => cmd_metrics::run_metrics(&a, &opts, bpf, out),
        Some(Command::Serve(a)) => cmd_metrics::run_serve(&a, &opts, bpf),
        Some(Command::Check(_)) => cmd_metrics::run_check(&opts, bpf, out),
    }
}
