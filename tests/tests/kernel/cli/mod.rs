//! The `dynabuf` command on a kernel that makes dma-bufs (issue 10 part 4):
//! `ls` finds the udmabufs a child process holds by fd and by mapping (with
//! inode, size, exporter and holder pids, attachments and fences from
//! debugfs) and forgets them once closed; `doctor` reports the VM's
//! sync-file ioctls, udmabuf and DRM nodes as working; `run` over a client
//! that hands a dma-buf over reports the buffer and its acquires and
//! releases (the control: `--sync off` counts none). The command is found
//! next to the layer, where `cargo build --workspace` puts it.

mod doctor;
mod ls;
mod run;

use std::path::PathBuf;
use std::process::Command;

use dynabuf_client::env::{layer_dir, vulkan_env_with, Layer, Validation};

use crate::common::{finish, Run};

pub use doctor::*;
pub use ls::*;
pub use run::*;

/// The built command, next to the layer.
fn dynabuf() -> Result<PathBuf, String> {
    let exe = layer_dir().join("dynabuf");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} is not built (cargo build --workspace builds it; scripts/test.sh does)",
            exe.display()
        ))
    }
}

/// `dynabuf ARGS` with the tests' Vulkan environment, no layer named (the
/// validation layer alone where asked for: `run` puts dynabuf above it).
fn dynabuf_command(args: &[&str]) -> Result<Command, String> {
    let mut cmd = Command::new(dynabuf()?);
    vulkan_env_with(&mut cmd, Layer::Off, Validation::from_env()).args(args);
    Ok(cmd)
}

/// Runs `dynabuf ARGS` to the end.
fn dynabuf_output(args: &[&str]) -> Result<Run, String> {
    let out = dynabuf_command(args)?.output().map_err(|e| format!("run dynabuf {args:?}: {e}"))?;
    Ok(finish(out))
}

/// Mounts debugfs where the guest has not (the VM runs as root), for the
/// attachments and fences `ls` shows and the line `doctor` prints.
fn debugfs_mounted() -> bool {
    let list = std::path::Path::new(dynabuf::sys::dma_buf_debugfs::BUFINFO);
    if !list.exists() {
        let _ = Command::new("mount").args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"]).status();
    }
    list.exists()
}
