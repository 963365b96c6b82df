//! `wedge core FILE`: placeholder until wedge-coredump lands.

use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CoreArgs {
    /// An ELF core file (or a systemd-coredump .zst/.xz/.lz4 file).
    pub file: std::path::PathBuf,
}

pub fn run(_json: bool, args: &CoreArgs) -> Result<ExitCode, String> {
    Err(format!(
        "{}: reading core files is not implemented yet",
        args.file.display()
    ))
}
