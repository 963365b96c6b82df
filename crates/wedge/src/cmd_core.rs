//! `wedge core FILE`: threads, fatal signal and symbolized backtraces of a
//! user-space core file, without gdb.
//!
//! Exit status: 0 when the core was read (even partially: what is missing
//! is listed), 2 when it could not be read at all.

use clap::Args;
use std::path::PathBuf;
use wedge_render::view::{self, Status};

#[derive(Args, Debug)]
pub struct CoreArgs {
    /// An ELF core file (or a systemd-coredump .zst/.xz/.lz4 file); `-` is
    /// standard input.
    pub file: PathBuf,
    /// Look for the process's binaries under this directory (a container's
    /// root filesystem, or an image of the machine the core came from).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A directory of split debug info (searched by .gnu_debuglink and by
    /// build-id under .build-id/); repeatable. Default: /usr/lib/debug and
    /// /lib/debug.
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
    /// Frames per thread at most.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_frames: usize,
    /// Also show every register, every mapping and the auxiliary vector.
    #[arg(long)]
    pub full: bool,
}

pub fn run(json: bool, args: &CoreArgs, out: &mut dyn std::io::Write) -> Result<Status, String> {
    let opts = wedge_coredump::Options {
        root: args.root.clone(),
        debug_dirs: args.debug_dirs.clone(),
        max_frames: args.max_frames.clamp(1, 100_000),
    };
    let report = wedge_coredump::read_core(&args.file, &opts).map_err(|e| e.to_string())?;
    let text = if json {
        view::json_line(&wedge_model::Versioned::new(&report))?
    } else {
        wedge_coredump::text::render(&report, args.full)
    };
    view::write_out(out, &text)?;
    Ok(Status::Clear)
}
