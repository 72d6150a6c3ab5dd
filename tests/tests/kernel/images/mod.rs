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
mod dynamic;
mod planes;
mod release;
mod support;

pub use acquire::*;
pub use dynamic::*;
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

/// What validation (1.3.239) alone reports for every transfer on an image
/// with DRM-format-modifier tiling on lavapipe (25.0): it takes the
/// image's format features from `VkDrmFormatModifierPropertiesList2EXT`,
/// which lavapipe leaves empty (`image-probe`'s `list2=[]`, checked by
/// `lavapipe_supports_the_image_kinds_the_tests_share`), so it finds none.
/// Left out of the check for runs with such images only.
const MODIFIER_FEATURES_UNSEEN: [&str; 3] = [
    "VUID-vkCmdCopyBufferToImage-dstImage-01997",
    "VUID-vkCmdCopyImageToBuffer-srcImage-01998",
    "VUID-vkCmdClearColorImage-image-01993",
];

/// Whether a client argument names a KIND with DRM-format-modifier tiling.
fn modifier_tiling(args: &[&str]) -> bool {
    args.iter().any(|a| a.contains(":mod=") || a.contains(":export:"))
}

/// `output` without the first lines of the messages in `MODIFIER_FEATURES_UNSEEN`.
fn without_unseen_features(output: &str) -> String {
    let unseen = |l: &str| {
        validation::parse_line(l).is_some_and(|m| MODIFIER_FEATURES_UNSEEN.contains(&m.id.as_str()))
    };
    output.lines().filter(|l| !unseen(l)).collect::<Vec<_>>().join("\n")
}

/// Runs the client as `DYNABUF_TEST_VALIDATION` says and never panics: a
/// validation report, if any, makes the run fail with the report first on
/// its stderr.
pub fn run(args: &[&str], layer: Layer, envs: &[(&str, &str)]) -> Run {
    let mode = Validation::from_env();
    let mut run = run_unchecked(CLIENT, args, layer, mode, envs);
    let what = format!("dynabuf-client {}", args.join(" "));
    let (stderr, stdout) = match modifier_tiling(args) {
        true => (without_unseen_features(&run.stderr), without_unseen_features(&run.stdout)),
        false => (run.stderr.clone(), run.stdout.clone()),
    };
    if let Err(report) = validation::check(&what, layer, mode, &[&stderr, &stdout]) {
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

/// The validation report [`run`] put first on a run's stderr, if any.
pub fn validation_report(run: &Run) -> Option<&str> {
    run.stderr.starts_with(dynabuf_client::env::VALIDATION_LAYER).then_some(run.stderr.as_str())
}

/// Runs client subcommand `sub` with `scenarios` (under `layer`, plus
/// `envs`) and returns the run and what each scenario said.
pub fn run_scenarios(
    sub: &str,
    scenarios_: &[String],
    layer: Layer,
    envs: &[(&str, &str)],
) -> (Run, Vec<Scenario>) {
    let argv: Vec<&str> = std::iter::once(sub).chain(scenarios_.iter().map(String::as_str)).collect();
    let run = run(&argv, layer, envs);
    let said = scenarios(&run, scenarios_.len());
    (run, said)
}

/// Checks that a run of scenarios ended as its scenarios say (no crash,
/// no validation message): with `all_ok`, it passed; in any case,
/// validation was silent.
pub fn check_run(problems: &mut Problems, run: &Run, said: &[Scenario], what: &str) {
    if let Some(report) = validation_report(run) {
        problems.check(false, || format!("{what}: {report}"));
        return;
    }
    problems.check(run.ok || !said.iter().all(Scenario::ok), || format!("{what} {}", output(run)));
}

/// What one scenario of a client run said: its `scenario=N` lines on
/// stdout, without the prefix.
#[derive(Debug, Default)]
pub struct Scenario {
    pub lines: Vec<String>,
}

impl Scenario {
    /// Whether the client found it right.
    pub fn ok(&self) -> bool {
        self.lines.iter().any(|l| l == "ok")
    }

    /// What it said: `exact`, or why it was wrong.
    pub fn verdict(&self) -> String {
        match self.ok() {
            true => "exact".into(),
            false => self
                .lines
                .iter()
                .rev()
                .find(|l| l.starts_with("wrong:"))
                .cloned()
                .unwrap_or("no verdict".into()),
        }
    }

    /// The value of `key=` in its lines.
    pub fn value(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.lines.iter().flat_map(|l| l.split_whitespace()).find_map(|w| w.strip_prefix(prefix.as_str()))
    }

    fn setup(&self) -> &str {
        self.lines.iter().find(|l| l.starts_with("setup")).map_or("", String::as_str)
    }

    /// The layer's names (`dma-buf DEV:INO`) of its dma-bufs, from the
    /// `setup` line (`bufK=DEV:INO/SIZE ...`), in order.
    pub fn dma_bufs(&self) -> Vec<String> {
        self.setup()
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("buf")?.split_once('=').map(|(_, v)| v))
            .filter_map(|v| v.split_once('/').map(|(id, _)| format!("dma-buf {id}")))
            .collect()
    }

    /// Which dma-buf (index into [`Scenario::dma_bufs`]) each plane lies
    /// in (`planeI=bufK@...`), in plane order.
    pub fn plane_bufs(&self) -> Vec<usize> {
        self.setup()
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("plane")?.split_once("=buf")?.1.split_once('@')?.0.parse().ok())
            .collect()
    }
}

/// The `n` scenarios of a run (empty ones for those it never reached).
pub fn scenarios(run: &Run, n: usize) -> Vec<Scenario> {
    let mut all: Vec<Scenario> = (0..n).map(|_| Scenario::default()).collect();
    for line in run.stdout.lines() {
        let Some((index, rest)) = line.strip_prefix("scenario=").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if let Some(s) = index.parse::<usize>().ok().and_then(|i| all.get_mut(i)) {
            s.lines.push(rest.to_string());
        }
    }
    all
}

/// The planes an ASPECT argument names (`color`, `planes`, `p0+p2`, ...)
/// of an image with `n` planes.
pub fn named_planes(aspect: &str, n: usize) -> Vec<usize> {
    if aspect == "color" || aspect == "planes" {
        return (0..n).collect();
    }
    aspect.split('+').filter_map(|p| p.strip_prefix('p')?.parse().ok()).filter(|&p| p < n).collect()
}

/// How many of the layer's lines contain both `what` and `dma_buf` (with
/// `DYNABUF_LOG=debug`: `release of DMA_BUF published` for each release
/// fence, `acquire of DMA_BUF waits ... pending fence` for each wait).
pub fn layer_lines(run: &Run, what: &str, dma_buf: &str) -> usize {
    let named = format!("{dma_buf} ");
    run.stderr.lines().filter(|l| l.starts_with("dynabuf:") && l.contains(what) && l.contains(&named)).count()
}

/// At most the first 160 characters of `s`, for one-line summaries.
pub fn short(s: &str) -> String {
    match s.char_indices().nth(160) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
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
