//! Robustness of the layer where applications and drivers leave the common
//! path: dynamic attachments without the sync engine, read-only acquires
//! that are never released, how long `vkQueueSubmit` blocks in thread mode,
//! ownership transfers recorded in secondary command buffers, application
//! `pNext` chains on submits, host access to dynamic attachments, failures
//! injected into the layer's own calls (`DYNABUF_FAULT`), and peers that
//! hand a dma-buf over without waiting for their own fences. Each test has
//! what proves it measures the layer: a control without it that must fail
//! the same check, or a check the layer before these fixes failed.
//!
//! Tests whose point is valid Vulkan below the layer run their client with
//! the Khronos validation layer below dynabuf whatever
//! `DYNABUF_TEST_VALIDATION` says, and fail on any message validation alone
//! does not produce.

mod blocking;
mod content;
mod faults;
mod handover;
mod host_access;
mod pinning;
mod submits;

use crate::common::{run_unchecked, Run, CLIENT};
use dynabuf_client::env::{validation, Layer, Validation};
use std::time::Duration;

pub use blocking::*;
pub use content::*;
pub use faults::*;
pub use handover::*;
pub use host_access::*;
pub use pinning::*;
pub use submits::*;

const STARTUP: Duration = Duration::from_secs(60);

/// Every `key=N` among `text`'s words (one per device for statistics).
fn stat(text: &str, key: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
        .collect()
}

/// The layer's lines that contain every one of `parts`.
fn layer_lines_with<'a>(run_stderr: &'a str, parts: &[&str]) -> Vec<&'a str> {
    run_stderr.lines().filter(|l| l.starts_with("dynabuf:") && parts.iter().all(|p| l.contains(p))).collect()
}

/// Runs the client under the layer with the validation layer below it
/// (whatever `DYNABUF_TEST_VALIDATION` says, but `alone`, which re-measures
/// what validation alone reports), and fails on any message validation
/// alone does not produce.
fn validated(args: &[&str], envs: &[(&str, &str)]) -> Result<Run, String> {
    let mode = match Validation::from_env() {
        Validation::Alone => Validation::Alone,
        _ => Validation::Below,
    };
    let run = run_unchecked(CLIENT, args, Layer::On, mode, envs);
    let what = format!("dynabuf-client {} with {envs:?}", args.join(" "));
    validation::check(&what, Layer::On, mode, &[&run.stderr, &run.stdout])?;
    Ok(run)
}

fn failed(run: &Run, what: &str) -> String {
    format!("{what} ({})\n--- stdout\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr)
}

fn stats_lines(stderr: &str) -> String {
    stderr.lines().filter(|l| l.contains("stats") || l.contains("pinned")).collect::<Vec<_>>().join("\n")
}

/// The client's `NAME=ok checksum=X` values, in order.
fn checksums(run: &Run, names: &[&str]) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|n| match run.value(n).as_deref() {
            Some("ok") => {
                let line = run.stdout.lines().find(|l| l.starts_with(&format!("{n}="))).unwrap_or_default();
                Ok(line.to_string())
            }
            _ => Err(format!("{n}: no ok line:\n{}", run.stdout)),
        })
        .collect()
}
