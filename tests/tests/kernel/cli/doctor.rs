//! `dynabuf doctor` in the VM: every dma-buf facility the kernel tier
//! relies on reported `ok` (the host, without udmabuf or DRM, reports them
//! `no`: tests/tests/cli.rs checks the lines are there).

use super::{debugfs_mounted, dynabuf_output};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

pub fn doctor_reports_sync_file_ioctls_udmabuf_and_drm_nodes_ok() -> TestResult {
    require_kernel_tier!();
    ensure!(debugfs_mounted(), "no debugfs in the VM");
    let run = dynabuf_output(&["doctor"])?;
    ensure!(run.ok, "doctor failed: {run:?}");
    let line = |prefix: &str| run.stdout.lines().find(|l| l.get(4..).is_some_and(|w| w.starts_with(prefix)));
    for what in [
        "kernel:",
        "udmabuf:",
        "sync-file ioctls:",
        "debugfs bufinfo:",
        "Vulkan loader:",
        "layer for dynabuf run:",
    ] {
        let l = line(what).unwrap_or("");
        ensure!(l.starts_with("ok  "), "{what} not ok:\n{}", run.stdout);
    }
    ensure!(line("udmabuf:").is_some_and(|l| l.contains("exporter udmabuf")), "{}", run.stdout);
    // DRM nodes by driver name, with the caps KERNEL-TIER.md measured.
    let drm: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("ok  DRM /dev/dri/")).collect();
    ensure!(drm.iter().any(|l| l.contains(": vgem") && l.contains("DRM_CAP_SYNCOBJ no")), "{}", run.stdout);
    ensure!(
        drm.iter()
            .any(|l| l.contains(": virtio_gpu")
                && l.contains("DRM_CAP_SYNCOBJ yes, DRM_CAP_SYNCOBJ_TIMELINE yes")),
        "{}",
        run.stdout
    );
    // lavapipe exports dma-bufs and SYNC_FDs only where udmabuf opens.
    let dev = |w: &str| run.stdout.lines().find(|l| l.contains("Vulkan dev0") && l.contains(w)).unwrap_or("");
    ensure!(
        dev("dma-buf memory:").starts_with("ok  ") && dev("dma-buf memory:").contains("export yes"),
        "{}",
        run.stdout
    );
    ensure!(dev("SYNC_FD semaphores:").starts_with("ok  "), "{}", run.stdout);
    ensure!(dev("DRM format modifiers:").starts_with("ok  "), "{}", run.stdout);
    Ok(Outcome::Pass)
}
