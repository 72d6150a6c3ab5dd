//! lavapipe and real dma-bufs, through the real loader with the layer
//! enabled: import and export with content checked both ways, the device
//! probe's findings, and the demo sharing a dma-buf.

use crate::common::{client, run_program, Layer};
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

pub fn demo_shares_a_dma_buf() -> TestResult {
    require_kernel_tier!();
    let run = run_program(env!("CARGO_BIN_EXE_dynabuf-demo"), &["3"], Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(run.ok, "demo failed:\n{}\n{}", run.stdout, run.stderr);
    ensure!(run.stdout.contains("3 frames of 4096 values shared as DMA_BUF_EXT"), "{}", run.stdout);
    ensure!(run.stderr.contains("dma_buf_imports=1"), "{}", run.stderr);
    Ok(Outcome::Pass)
}
