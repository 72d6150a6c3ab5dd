//! Host access to dynamic attachments.

use super::{failed, stat, validated};
use crate::common::{run_unchecked, CLIENT};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::env::{Layer, Validation};

pub fn host_access_maps_flushes_and_unmaps_the_dma_buf_of_a_dynamic_attachment() -> TestResult {
    require_kernel_tier!();
    // vkMapMemory + flush + invalidate + vkUnmapMemory, then the same with
    // vkMapMemory2KHR/vkUnmapMemory2KHR, on an attachment evicted at every
    // submission: no validation message (flush and invalidate must name
    // the memory that is mapped), the CPU's writes are the dma-buf's
    // content and what the GPU sees, and after each unmap the attachment
    // is evicted again.
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_STATS", "1"),
        ("DYNABUF_LOG", "debug"),
    ];
    let map = validated(&["host-access", "map"], &envs)?;
    // The validation layer here (1.3.239) crashes on vkMapMemory2KHR even
    // without dynabuf: the map2 variant runs without it.
    let map2 = run_unchecked(CLIENT, &["host-access", "map2"], Layer::On, Validation::Off, &envs);
    for (run, how) in [(&map, "map"), (&map2, "map2")] {
        let what = format!("host-access {how}");
        ensure!(run.ok && run.value("host_access_ok").as_deref() == Some("true"), "{}", failed(run, &what));
        let submits: u64 = run.value("submits").and_then(|v| v.parse().ok()).unwrap_or(0);
        ensure!(stat(&run.stderr, "dynamic_attachments") == [1], "{what}:\n{}", run.stderr);
        ensure!(
            stat(&run.stderr, "evictions") == [submits],
            "{what}: expected {submits} evictions, one per submission (a mapping still marked after its unmap \
             is never evicted):\n{}",
            run.stderr
        );
    }
    if map2.value("map2").as_deref() != Some("yes") {
        println!("  note: the device has no VK_KHR_map_memory2; only vkMapMemory was tested");
    }
    Ok(Outcome::Pass)
}
