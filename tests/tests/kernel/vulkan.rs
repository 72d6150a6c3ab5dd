//! lavapipe and real dma-bufs, through the real loader with the layer
//! enabled: import and export with content checked both ways, the device
//! probe's findings, and the demo sharing a dma-buf image (with and
//! without implicit sync).

use dynabuf_client::contact_sheet::{read_png, Picture};

use crate::common::{client, run_program, Layer, Run};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

pub fn vulkan_imports_a_dma_buf_under_the_layer() -> TestResult {
    require_kernel_tier!();
    let run = client(&["dmabuf-import"], Layer::On, &[("DYNABUF_LOG", "debug")]);
    ensure!(run.ok, "dmabuf-import failed:\n{}\n{}", run.stdout, run.stderr);
    ensure!(run.value("dmabuf_import_ok").as_deref() == Some("true"), "{}", run.stdout);
    ensure!(run.stderr.contains("imported DMA_BUF_EXT"), "the layer did not see the import:\n{}", run.stderr);
    ensure!(run.stderr.contains("records Acquire"), "the layer did not see the acquire:\n{}", run.stderr);
    Ok(Outcome::Pass)
}

pub fn vulkan_exports_a_dma_buf_under_the_layer() -> TestResult {
    require_kernel_tier!();
    let run = client(&["dmabuf-export"], Layer::On, &[("DYNABUF_LOG", "debug")]);
    ensure!(run.ok, "dmabuf-export failed:\n{}\n{}", run.stdout, run.stderr);
    ensure!(run.value("exporter").as_deref() == Some("udmabuf"), "{}", run.stdout);
    ensure!(
        run.stderr.contains("exported as DMA_BUF_EXT"),
        "the layer did not see the export:\n{}",
        run.stderr
    );
    Ok(Outcome::Pass)
}

pub fn probe_finds_dma_buf_and_sync_fd_support() -> TestResult {
    require_kernel_tier!();
    for (sync, bridge) in [("auto", "thread bridge"), ("semaphore", "semaphore bridge")] {
        let run =
            client(&["compute", "1", "64"], Layer::On, &[("DYNABUF_LOG", "info"), ("DYNABUF_SYNC", sync)]);
        ensure!(run.ok, "compute failed:\n{}", run.stderr);
        let lines = run.layer_lines();
        let probe = lines.iter().find(|l| l.contains("sync strategy")).ok_or("no probe line")?;
        let strategy = format!("{bridge}, release fences published as SYNC_FD");
        for want in [
            "dma-buf export yes, import yes",
            "dma-buf sync-file ioctls yes",
            "SYNC_FD semaphore export yes, import yes",
            &format!("sync strategy: {strategy}"),
        ] {
            ensure!(probe.contains(want), "DYNABUF_SYNC={sync}: {want:?} not in {probe}");
        }
        // The engine uses what the probe line names (one decision).
        let engine = lines.iter().find(|l| l.contains("implicit sync:")).ok_or("no engine line")?;
        ensure!(
            engine.contains(&strategy),
            "DYNABUF_SYNC={sync}: the engine says {engine}, the probe {probe}"
        );
    }
    Ok(Outcome::Pass)
}

/// Runs the demo's `run` (`with-sync` or `without-sync`) for `frames`
/// frames into a fresh directory; returns the run, how many frames were
/// exact, and the contact sheet it wrote.
fn demo(run: &str, frames: u32) -> Result<(Run, usize, Picture), String> {
    let out = std::env::temp_dir().join(format!("dynabuf-demo-{run}-{}", std::process::id()));
    let frames_arg = frames.to_string();
    let args = [frames_arg.as_str(), "--only", run, "--out", out.to_str().ok_or("temp dir")?];
    let r = run_program(env!("CARGO_BIN_EXE_dynabuf-demo"), &args, Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(r.ok, "demo {run} failed:\n{}\n{}", r.stdout, r.stderr);
    ensure!(
        r.stdout.contains("as a dma-buf, DRM format modifier"),
        "not a DRM-modifier dma-buf:\n{}",
        r.stdout
    );
    let exact = r.stdout.lines().filter(|l| l.contains("exactly the producer's frame")).count();
    let sheet = read_png(&out.join(format!("{run}.png"))).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&out);
    Ok((r, exact, sheet))
}

/// The demo on a real dma-buf image: with the layer's implicit sync the
/// consumer samples exactly what the producer drew, every frame, though
/// the application never waits for the producer before the consumer's
/// submission; the layer published every release; the sheet decodes.
pub fn demo_shares_a_dma_buf() -> TestResult {
    require_kernel_tier!();
    let (run, exact, sheet) = demo("with-sync", 4)?;
    ensure!(exact == 4, "the consumer saw {exact} of 4 frames exactly:\n{}", run.stdout);
    ensure!(run.stdout.contains("with-sync: 4 of 4 frames exact"), "{}", run.stdout);
    // The producer releases at each frame and a warm-up frame, the
    // consumer at those and once before them.
    for want in ["dma_buf_imports=1", "releases_published=5", "releases_published=6"] {
        ensure!(run.stderr.contains(want), "no {want} in the layer's statistics:\n{}", run.stderr);
    }
    ensure!(sheet.width > 4 * 128 && sheet.height > 128, "contact sheet {}x{}", sheet.width, sheet.height);
    Ok(Outcome::Pass)
}

/// The control: the same demo with `DYNABUF_SYNC=off` (the application
/// unchanged) lets the consumer sample frames still being drawn.
pub fn demo_without_sync_samples_unfinished_frames() -> TestResult {
    require_kernel_tier!();
    let (run, exact, _) = demo("without-sync", 4)?;
    ensure!(exact < 4, "without sync the consumer still saw every frame whole:\n{}", run.stdout);
    Ok(Outcome::Pass)
}
