//! `wedge vmcore DUMP`: placeholder until wedge-vmcore lands.

use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct VmcoreArgs {
    /// A kernel crash dump (ELF vmcore or kdump-compressed).
    pub dump: std::path::PathBuf,
}

pub fn run(_json: bool, args: &VmcoreArgs) -> Result<ExitCode, String> {
    Err(format!(
        "{}: reading kernel crash dumps is not implemented yet",
        args.dump.display()
    ))
}
