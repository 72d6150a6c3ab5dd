//! `dynabuf`: the layer's command.
//!
//! ```text
//! dynabuf run [OPTIONS] -- APP [ARGS]   APP under the layer, then a summary of what it did
//! dynabuf ls [--json] [--pid PID]       every dma-buf this user can see, like lsof
//! dynabuf doctor [--json]               what this machine can do for dma-buf sharing
//! ```
//!
//! `run` needs no install and no environment: it finds the layer's manifest
//! next to its own executable (a build tree, or the prefix
//! `scripts/install.sh` installs into) or where the loader looks, and sets
//! the loader's variables and the layer's `DYNABUF_*` settings for APP
//! alone. One behaviour per file: `run.rs` (the child and its exit status),
//! `layer_env.rs` (finding the layer, the loader's environment),
//! `summary.rs` (the statistics at exit), `proc_scan.rs` and `bufinfo.rs`
//! (what `ls` reads), `ls.rs`, `doctor.rs` with `doctor_kernel.rs` and
//! `doctor_vulkan.rs` (the layer's `sys::udmabuf` makes a dma-buf to try ioctls on).

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod bufinfo;
mod doctor;
mod doctor_kernel;
mod doctor_vulkan;
mod layer_env;
mod ls;
mod proc_scan;
mod run;
mod settings_args;
mod summary;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dynabuf: run Vulkan applications under the dynabuf layer, list the
/// system's dma-bufs, and check what this machine can do for sharing them.
#[derive(Debug, Parser)]
#[command(name = "dynabuf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run APP under the layer (no install needed) and print what the layer
    /// saw when it exits; exits with APP's status.
    Run(run::RunArgs),
    /// List every dma-buf this user can see: inode, size, exporter, name,
    /// the processes holding it by fd or by mapping, and (from debugfs,
    /// when readable) attached devices and fences.
    Ls(ls::LsArgs),
    /// Check what this machine can do for dma-buf sharing, one line each:
    /// `ok`, or `no` and what to do about it. Always exits 0.
    Doctor(doctor::DoctorArgs),
    /// Prints the instance layers the Vulkan loader finds, one name a line
    /// (`doctor` runs it under the environment it checks).
    #[command(name = "list-instance-layers", hide = true)]
    ListInstanceLayers,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Ls(args) => ls::main(args),
        Command::Doctor(args) => doctor::main(args),
        Command::ListInstanceLayers => doctor_vulkan::list_instance_layers(),
    }
}
