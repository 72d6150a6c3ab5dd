//! Implicit sync of *images* in dma-bufs (issue 9): RGBA8 images with
//! `LINEAR` tiling, with DRM-format-modifier tiling imported at a layout
//! the client chooses (every modifier the driver offers) or exported with
//! one the driver picks, and multi-planar NV12 / three-plane 4:2:0 images
//! in one memory, with `DISJOINT` planes in dma-bufs of their own, or with
//! `DISJOINT` planes at two offsets of one dma-buf. Every client runs
//! `dynabuf-client image-*` (see its `images` module for the KINDs); every
//! check of pixels is the CPU's, through the dma-bufs' own pages; every
//! test has its control without the layer, which must read stale pixels.
//!
//! What the layer must do (and today's layer, which tracks one memory per
//! image, the last bound, does not yet for disjoint images): an acquire or
//! release of an image synchronises every dma-buf the image is bound to,
//! each once; a barrier naming `PLANE_i` of a disjoint image synchronises
//! only plane i's dma-buf; `COLOR` or every plane bit, all of them; an
//! acquire with a layout transition writes the image, so it waits for
//! foreign readers too.
//!
//! What lavapipe (Mesa 25.0) supports is checked, and printed, by
//! `support::lavapipe_supports_the_image_kinds_the_tests_share`.

mod acquire;
mod planes;
mod release;
mod support;

pub use acquire::*;
pub use planes::*;
pub use release::*;
pub use support::*;

use std::sync::OnceLock;

use crate::common::{run_unchecked, Run, CLIENT};
use dynabuf_client::env::{validation, Layer, Validation};

/// The KINDs every acquire and release test runs, `rgba8:mod=...` once
/// per modifier the driver offers for RGBA8 (with plane 0 at offset 256
/// and rows of 320 bytes, neither the driver's own choice).
pub fn kinds() -> Result<Vec<String>, String> {
    static KINDS: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    KINDS
        .get_or_init(|| {
            let mut kinds = vec!["rgba8:linear:whole".to_string()];
            kinds.extend(rgba8_modifiers()?.iter().map(|m| format!("rgba8:mod={m}/256/320:whole")));
            kinds.push("rgba8:export:whole".into());
            for format in ["nv12", "yuv420-3p"] {
                for memory in ["whole", "disjoint", "disjoint-one"] {
                    kinds.push(format!("{format}:linear:{memory}"));
                }
            }
            Ok(kinds)
        })
        .clone()
}

/// The modifiers the driver offers for RGBA8 and can import, from
/// `image-probe` (`format=rgba8 modifier=0x0 ... import=...IMPORTABLE`).
fn rgba8_modifiers() -> Result<Vec<String>, String> {
    let probe = run(&["image-probe"], Layer::Off, &[]);
    if !probe.ok {
        return Err(format!("image-probe failed:\n{}\n{}", probe.stdout, probe.stderr));
    }
    let mods: Vec<String> = probe
        .stdout
        .lines()
        .filter(|l| l.starts_with("format=rgba8 modifier=") && l.contains("IMPORTABLE"))
        .filter_map(|l| l.split_whitespace().nth(1)?.strip_prefix("modifier=").map(str::to_string))
        .collect();
    match mods.is_empty() {
        true => Err(format!("the driver offers no importable modifier for RGBA8:\n{}", probe.stdout)),
        false => Ok(mods),
    }
}

/// Runs the client as `DYNABUF_TEST_VALIDATION` says and never panics: a
/// validation report, if any, makes the run fail with the report first on
/// its stderr.
pub fn run(args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    let mode = Validation::from_env();
    let mut run = run_unchecked(CLIENT, args, layer, mode, envs);
    let what = format!("dynabuf-client {}", args.join(" "));
    if let Err(report) = validation::check(&what, layer, mode, &[&run.stderr, &run.stdout]) {
        run.ok = false;
        run.stderr = format!("{report}{}", run.stderr);
    }
    run
}

/// The run's output for a report.
pub fn output(run: &Run) -> String {
    let layer_debug = |l: &&str| !l.starts_with("dynabuf: debug") && !l.starts_with("dynabuf: trace");
    let stderr: Vec<&str> = run.stderr.lines().filter(layer_debug).collect();
    format!("({})\n--- stdout\n{}--- stderr\n{}", run.status, run.stdout, stderr.join("\n"))
}

/// Whether the run printed `KEY=true` (its subcommand's own check passed).
pub fn passed(run: &Run, key: &str) -> bool {
    run.ok && run.value(key).as_deref() == Some("true")
}

/// The client's error line (`dynabuf-client: ...`), for reports.
pub fn error_line(run: &Run) -> String {
    run.stderr.lines().find(|l| l.starts_with("dynabuf-client:")).unwrap_or("(no error line)").to_string()
}

/// The layer's names (`dma-buf DEV:INO`) of the client's dma-bufs, from
/// its `setup` line (`bufK=DEV:INO/SIZE ...`), in order.
pub fn dma_bufs(run: &Run) -> Vec<String> {
    let setup = run.stdout.lines().find(|l| l.starts_with("setup")).unwrap_or_default();
    setup
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("buf")?.split_once('=').map(|(_, v)| v))
        .filter_map(|v| v.split_once('/').map(|(id, _)| format!("dma-buf {id}")))
        .collect()
}

/// Which dma-buf (index into [`dma_bufs`]) each plane lies in, from the
/// `setup` line (`planeI=bufK@...`), in plane order.
pub fn plane_bufs(run: &Run) -> Vec<usize> {
    let setup = run.stdout.lines().find(|l| l.starts_with("setup")).unwrap_or_default();
    setup
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("plane")?.split_once("=buf")?.1.split_once('@')?.0.parse().ok())
        .collect()
}

/// The planes an ASPECT argument names (`color`, `planes`, `p0+p2`, ...)
/// of an image with `n` planes.
pub fn named_planes(aspect: &str, n: usize) -> Vec<usize> {
    if aspect == "color" || aspect == "planes" {
        return (0..n).collect();
    }
    aspect.split('+').filter_map(|p| p.strip_prefix('p')?.parse().ok()).filter(|&p| p < n).collect()
}

/// How many times the layer published a release fence into `dma_buf`.
pub fn publications(run: &Run, dma_buf: &str) -> usize {
    let line = format!("release of {dma_buf} published");
    run.stderr.lines().filter(|l| l.starts_with("dynabuf:") && l.contains(&line)).count()
}

/// The `(acquired, released)` dma-buf counts of each submission the layer
/// synchronised (`submission on queue ... acquires N and releases M`).
pub fn handovers(run: &Run) -> Vec<(usize, usize)> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("dynabuf:"))
        .filter_map(|l| {
            let rest = l.split_once(" acquires ")?.1;
            let (a, rest) = rest.split_once(" and releases ")?;
            let r = rest.split_whitespace().next()?;
            Some((a.parse().ok()?, r.parse().ok()?))
        })
        .collect()
}

/// Collects the problems of several scenarios and fails once, with all of
/// them (so a run names every kind that fails, not only the first).
#[derive(Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    pub fn into_result(self) -> Result<crate::harness::Outcome, String> {
        match self.0.is_empty() {
            true => Ok(crate::harness::Outcome::Pass),
            false => Err(format!("{} problem(s):\n\n{}", self.0.len(), self.0.join("\n\n"))),
        }
    }
}
