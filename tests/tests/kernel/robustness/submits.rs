//! What the application puts in its submissions: transfers in secondaries,
//! pNext chains on batches.

use super::{failed, stat, validated};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::implicit_sync::{acquire_behind_a_write_fence_in, waited};
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

pub fn an_acquire_in_a_secondary_command_buffer_waits_for_a_foreign_write_fence() -> TestResult {
    require_kernel_tier!();
    // The acquire barrier is recorded in a secondary command buffer the
    // primary executes; the dispatch and the release are in the primary.
    let (early, first) = acquire_behind_a_write_fence_in("acquire-secondary", Layer::On, "write", &[])?;
    waited(early, first, "acquire recorded in a secondary command buffer")?;
    // The control: lavapipe alone finishes early with the stale content,
    // so the check above can fail.
    let (early, first) = acquire_behind_a_write_fence_in("acquire-secondary", Layer::Off, "write", &[])?;
    ensure!(
        waited(early, first, "without the layer").is_err(),
        "without the layer the client also waited and saw the late content (early {early}, first {first}): \
         the test cannot tell whether the layer saw the secondary's acquire"
    );
    Ok(Outcome::Pass)
}

pub fn application_pnext_chains_on_submits_survive_the_layers_batches() -> TestResult {
    require_kernel_tier!();
    // The acquiring batch chains VkTimelineSemaphoreSubmitInfo (signalling
    // the application's timeline), VkDeviceGroupSubmitInfo, or both, while
    // a foreign fence is pending so the layer adds its own batches: waits
    // (thread or semaphore bridge), copies of a dynamic attachment.
    let runs: [(&str, &[(&str, &str)]); 3] = [
        ("acquire-only", &[("DYNABUF_SYNC", "thread")]),
        ("release", &[("DYNABUF_SYNC", "semaphore")]),
        (
            "release",
            &[("DYNABUF_SYNC", "thread"), ("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1")],
        ),
    ];
    for (mode, extra) in runs {
        let mut envs = vec![("DYNABUF_STATS", "1")];
        envs.extend_from_slice(extra);
        let run = validated(&["pnext", mode], &envs)?;
        let what = format!("pnext {mode} {extra:?}");
        ensure!(run.ok && run.value("pnext_ok").as_deref() == Some("true"), "{}", failed(&run, &what));
        let chains = run.stdout.lines().filter(|l| l.starts_with("chain=") && l.contains(" ok ")).count();
        ensure!(chains == 3, "{what}: {chains} of 3 chains checked:\n{}", run.stdout);
        // The fence was pending at every submission: the layer did act.
        ensure!(stat(&run.stderr, "acquires_waited") == [3], "{what}:\n{}", run.stderr);
    }
    Ok(Outcome::Pass)
}
