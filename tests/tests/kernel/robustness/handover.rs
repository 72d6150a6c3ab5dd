//! Hand-overs right after `vkQueueSubmit`, ordered only by the released fences.

use super::{failed, stat};
use crate::common::client;
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;

/// A size that keeps each GPU job busy long enough (under TCG) that a peer
/// that does not wait for it reads unfinished values.
const HANDOVER_LEN: &str = "65536";

pub fn two_processes_handing_over_at_submit_rely_on_the_released_fence() -> TestResult {
    require_kernel_tier!();
    // As the 200-frame ping-pong, but each side passes the token as soon as
    // vkQueueSubmit returns: only the fences the layer releases into the
    // dma-buf order the two GPUs and the CPU checks.
    let frames = "20";
    let args = ["pingpong", frames, HANDOVER_LEN, "nowait"];
    let run = client(&args, Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(run.ok && run.value("pingpong_ok").as_deref() == Some("true"), "{}", failed(&run, "ping-pong"));
    ensure!(run.value("handover").as_deref() == Some("nowait"), "{}", run.stdout);
    ensure!(stat(&run.stderr, "releases_published") == [20, 20], "{}", run.stderr);
    // The control: the same processes without the layer read a frame that
    // is still being written.
    let control = client(&args, Layer::Off, &[]);
    ensure!(
        !control.ok && control.stderr.contains("expected"),
        "without the layer the ping-pong should read a wrong value:\n{}",
        failed(&control, "control")
    );
    let wrong = control.stderr.lines().find(|l| l.contains("expected")).unwrap_or_default();
    println!("  without the layer: {}", wrong.trim());
    Ok(Outcome::Pass)
}

pub fn two_devices_in_one_process_handing_over_at_submit_rely_on_the_released_fence() -> TestResult {
    require_kernel_tier!();
    let args = ["two-devices", "10", HANDOVER_LEN, "nowait"];
    let run = client(&args, Layer::On, &[("DYNABUF_STATS", "1")]);
    ensure!(
        run.ok && run.value("two_devices_ok").as_deref() == Some("true"),
        "{}",
        failed(&run, "two devices")
    );
    // Both devices released every frame.
    ensure!(stat(&run.stderr, "releases_published") == [10, 10], "{}", run.stderr);
    let control = client(&args, Layer::Off, &[]);
    ensure!(
        !control.ok && control.stderr.contains("the producer reads"),
        "without the layer the producer should read a wrong value:\n{}",
        failed(&control, "control")
    );
    let wrong = control.stderr.lines().find(|l| l.contains("the producer reads")).unwrap_or_default();
    println!("  without the layer: {}", wrong.trim());
    Ok(Outcome::Pass)
}
