//! CPU access bracketing (`DYNABUF_CPU_SYNC`, issue 10): on dma-buf
//! memory, `vkMapMemory`, `vkFlushMappedMemoryRanges` and
//! `vkInvalidateMappedMemoryRanges` wait (bounded by
//! `DYNABUF_FENCE_TIMEOUT_MS`) for the dma-buf's fences, as
//! `DMA_BUF_IOCTL_SYNC` START does. A foreign writer (a vgem write fence)
//! writes new content 300 ms after the client starts the call and then
//! signals: with bracketing the call returns after the signal and reads
//! the new content; the control, `DYNABUF_CPU_SYNC=off`, returns at once
//! with the old content.

use dynabuf_client::env::Layer;

use crate::common::{client, Run};
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::hazards::failed;
use crate::require_kernel_tier;

const OFF: &[(&str, &str)] = &[("DYNABUF_CPU_SYNC", "off")];

/// Runs `cpu-sync MODE` and returns (how long the call took, the first
/// word it read, the run).
fn cpu_sync(mode: &str, envs: &[(&str, &str)]) -> Result<(u64, Option<u64>, Run), String> {
    let run = client(&["cpu-sync", mode], Layer::On, envs);
    let what = format!("cpu-sync {mode} with {envs:?}");
    ensure!(run.ok, "{}", failed(&run, &what));
    let ms = run.value("call_ms").and_then(|v| v.parse().ok()).ok_or_else(|| failed(&run, &what))?;
    let first = run.value("first").and_then(|v| v.parse().ok());
    Ok((ms, first, run))
}

/// With bracketing: the call waited for the fence and read the new
/// content (5000); without: it returned at once with the old (1).
fn waited_or_not(mode: &str) -> Result<(String, Run), String> {
    let (ms, first, run) = cpu_sync(mode, &[])?;
    ensure!(
        ms >= 250 && first == Some(5000),
        "{mode}: the call took {ms} ms and read {first:?}: it did not wait for the foreign write fence (held \
         300 ms) and its new content (5000):\n{}",
        failed(&run, mode)
    );
    let (off_ms, off_first, off) = cpu_sync(mode, OFF)?;
    ensure!(
        off_ms < 200 && off_first == Some(1),
        "{mode}, DYNABUF_CPU_SYNC=off: the call took {off_ms} ms and read {off_first:?}, expected at once and \
         the old content (1):\n{}",
        failed(&off, mode)
    );
    Ok((format!("{mode}: {ms} ms (off: {off_ms} ms)"), run))
}

pub fn vkmapmemory_waits_for_a_foreign_write_fence_and_reads_what_it_wrote() -> TestResult {
    require_kernel_tier!();
    let (imported, _) = waited_or_not("map")?;
    let (exported, _) = waited_or_not("map-exported")?;
    // DYNABUF_SYNC=off turns the bracketing off too.
    let (ms, first, run) = cpu_sync("map", &[("DYNABUF_SYNC", "off")])?;
    ensure!(
        ms < 200 && first == Some(1),
        "DYNABUF_SYNC=off: {ms} ms, read {first:?}:\n{}",
        failed(&run, "map")
    );
    println!("  {imported}; {exported}; DYNABUF_SYNC=off: {ms} ms");
    Ok(Outcome::Pass)
}

pub fn vkmapmemory_does_not_wait_for_foreign_readers() -> TestResult {
    require_kernel_tier!();
    // vkMapMemory starts a read (layer/DESIGN.md, "CPU access"): a peer
    // that only reads does not delay it. The control is a write fence
    // held as long, which does.
    let (ms, first, run) = cpu_sync("map-reader", &[])?;
    ensure!(
        ms < 200 && first == Some(1),
        "behind a read fence: {ms} ms, read {first:?}:\n{}",
        failed(&run, "map")
    );
    let (write_ms, _, _) = cpu_sync("map", &[])?;
    ensure!(write_ms >= 250, "behind a write fence held 300 ms vkMapMemory took {write_ms} ms");
    println!("  behind a foreign read fence: {ms} ms; behind a write fence: {write_ms} ms");
    Ok(Outcome::Pass)
}

pub fn invalidate_waits_for_a_foreign_write_fence_and_flush_does_not() -> TestResult {
    require_kernel_tier!();
    let (invalidate, _) = waited_or_not("invalidate")?;
    // vkFlushMappedMemoryRanges ends the CPU's writes and reopens the
    // access only if the dma-buf is idle: it does not wait. The
    // invalidate right after it does (the fence was pending all along).
    let (flush, run) = waited_or_not("flush")?;
    let flush_ms: u64 = run.value("flush_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    ensure!(flush_ms < 200, "vkFlushMappedMemoryRanges waited {flush_ms} ms for a writer:\n{}", run.stdout);
    println!("  {invalidate}; {flush} (the flush itself {flush_ms} ms)");
    Ok(Outcome::Pass)
}

/// The layer's lines between the client's markers around `vkMapMemory`.
fn lines_during_the_map(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .skip_while(|l| !l.contains("client: vkMapMemory begins"))
        .take_while(|l| !l.contains("client: vkMapMemory returned"))
        .filter(|l| l.starts_with("dynabuf: warn: "))
        .collect()
}

pub fn a_fence_that_never_signals_delays_vkmapmemory_only_up_to_the_timeout() -> TestResult {
    require_kernel_tier!();
    let envs = [("DYNABUF_FENCE_TIMEOUT_MS", "300")];
    let (ms, _, run) = cpu_sync("timeout", &envs)?;
    ensure!(
        (250..3000).contains(&ms),
        "vkMapMemory took {ms} ms with a 300 ms timeout:\n{}",
        failed(&run, "timeout")
    );
    ensure!(run.value("after_ok").as_deref() == Some("true"), "{}", failed(&run, "the job after the map"));
    let warned = lines_during_the_map(&run);
    ensure!(!warned.is_empty(), "no warning while vkMapMemory waited past the timeout:\n{}", run.stderr);
    // The control: without bracketing the map neither waits nor warns.
    let (off_ms, _, off) = cpu_sync("timeout", &[envs[0], OFF[0]])?;
    ensure!(off_ms < 200, "DYNABUF_CPU_SYNC=off: vkMapMemory took {off_ms} ms");
    ensure!(lines_during_the_map(&off).is_empty(), "DYNABUF_CPU_SYNC=off warned:\n{}", off.stderr);
    println!("  vkMapMemory behind a fence that never signals: {ms} ms; {}", warned[0]);
    Ok(Outcome::Pass)
}

pub fn fd_count_stays_flat_over_map_and_unmap_cycles() -> TestResult {
    require_kernel_tier!();
    // The first map of the run waits for a foreign writer (bracketing is
    // on), then 2000 map + flush + invalidate + unmap cycles.
    let (ms, first, run) = cpu_sync("cycles", &[])?;
    ensure!(ms >= 250 && first == Some(5000), "the first map did not wait ({ms} ms, read {first:?})");
    let v = |k: &str| run.value(k).and_then(|v| v.parse::<u64>().ok());
    ensure!(v("cycles") == Some(2000), "{}", failed(&run, "cycles"));
    ensure!(
        v("fds_before").is_some() && v("fds_before") == v("fds_after"),
        "the fd count grew over the cycles:\n{}",
        run.stdout
    );
    // The control that bracketing is what ran: off, the first map does not wait.
    let (off_ms, off_first, _) = cpu_sync("map", OFF)?;
    ensure!(off_ms < 200 && off_first == Some(1), "DYNABUF_CPU_SYNC=off waited ({off_ms} ms, {off_first:?})");
    Ok(Outcome::Pass)
}
