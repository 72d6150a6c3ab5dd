//! Injected faults (`DYNABUF_FAULT`): legal errors or correct fallbacks, flat
//! fd counts.

use super::{failed, layer_lines_with, stat, stats_lines, validated};
use crate::child::{spawn, value};
use crate::common::client;
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;
use dynabuf_client::env::Layer;
use std::time::Duration;

pub fn an_injected_reimport_failure_fails_one_submit_and_the_next_succeeds() -> TestResult {
    require_kernel_tier!();
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_FAULT", "reimport:1"),
        ("DYNABUF_STATS", "1"),
    ];
    let run = client(&["fault-reimport", "20"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("content_ok").as_deref() == Some("true"),
        "{}",
        failed(&run, "fault-reimport")
    );
    let faulted = run.value("faulted").unwrap_or_default();
    ensure!(faulted.contains("ERROR_OUT_OF_DEVICE_MEMORY"), "the faulted submission returned {faulted:?}");
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["could not be re-validated"]).is_empty(), "{}", run.stderr);
    Ok(Outcome::Pass)
}

/// Values per job in `release-peek`: enough that, without the layer, a
/// peek right after `vkQueueSubmit` finds the job unfinished (under TCG,
/// 4096 already does in 10 of 10 submissions).
const PEEK_LEN: &str = "65536";

pub fn an_injected_sync_fd_export_failure_waits_for_the_gpu_instead() -> TestResult {
    require_kernel_tier!();
    // Every release's vkGetSemaphoreFdKHR fails: the layer publishes no
    // fence and waits for the GPU before vkQueueSubmit returns, so a peer
    // that finds the dma-buf ready right after the submit reads the
    // finished frame; the semaphore left signalled is never signalled again
    // (validation would report it).
    let rounds = "50";
    let envs = [("DYNABUF_FAULT", "sync_fd_export"), ("DYNABUF_STATS", "1")];
    let run = validated(&["release-peek", rounds, PEEK_LEN], &envs)?;
    ensure!(run.ok, "{}", failed(&run, "release-peek"));
    ensure!(run.value("rounds").as_deref() == Some(rounds), "{}", run.stdout);
    ensure!(run.value("early").as_deref() == Some("0"), "a peer read unfinished frames:\n{}", run.stdout);
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(
        !layer_lines_with(&run.stderr, &["vkGetSemaphoreFdKHR for a release failed", "waiting for the GPU"])
            .is_empty(),
        "{}",
        run.stderr
    );
    // The control: without the layer the same peek sees unfinished frames,
    // so `early=0` above is the layer's doing.
    let control = client(&["release-peek", "10", PEEK_LEN], Layer::Off, &[]);
    ensure!(control.ok, "{}", failed(&control, "release-peek without the layer"));
    let early: u64 = control.value("early").and_then(|v| v.parse().ok()).unwrap_or(0);
    println!("  without the layer, {early} of 10 submissions looked ready but unfinished right after vkQueueSubmit");
    ensure!(
        early > 0,
        "without the layer no frame was caught unfinished: the peek cannot fail:\n{}",
        control.stdout
    );
    Ok(Outcome::Pass)
}

pub fn injected_sync_file_ioctl_failures_are_logged_and_the_application_goes_on() -> TestResult {
    require_kernel_tier!();
    // EXPORT_SYNC_FILE of an acquire fails: a foreign reader's fence stays
    // pending (it never writes), so every writing acquire asks for the
    // buffer's fences; the acquire goes on without them.
    let envs = [("DYNABUF_FAULT", "export_sync_file"), ("DYNABUF_FENCE_TIMEOUT_MS", "3000")];
    let run = client(&["sync-file-fault", "20", "reader"], Layer::On, &envs);
    ensure!(run.ok && run.value("content_ok").as_deref() == Some("true"), "{}", failed(&run, "export fault"));
    ensure!(run.value("reader_pending_during_rounds").as_deref() == Some("true"), "{}", run.stdout);
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["acquire of", "DYNABUF_FAULT"]).is_empty(), "{}", run.stderr);
    let elapsed: u64 = run.value("elapsed_ms").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    ensure!(elapsed < 3000, "20 submissions took {elapsed} ms:\n{}", run.stderr);
    // IMPORT_SYNC_FILE of a release fails: logged, nothing published.
    let envs = [("DYNABUF_FAULT", "import_sync_file")];
    let run = client(&["sync-file-fault", "20", "none"], Layer::On, &envs);
    ensure!(run.ok && run.value("content_ok").as_deref() == Some("true"), "{}", failed(&run, "import fault"));
    ensure!(run.value("fds_before") == run.value("fds_after"), "fds grew:\n{}", run.stdout);
    ensure!(!layer_lines_with(&run.stderr, &["release of", "DYNABUF_FAULT"]).is_empty(), "{}", run.stderr);
    Ok(Outcome::Pass)
}

pub fn an_injected_backing_failure_keeps_imports_pinned() -> TestResult {
    require_kernel_tier!();
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, 4096)?;
    let n = 200u64;
    let envs = [
        ("DYNABUF_ATTACH", "dynamic"),
        ("DYNABUF_EVICT", "every:1"),
        ("DYNABUF_FAULT", "backing"),
        ("DYNABUF_LOG", "debug"),
        ("DYNABUF_STATS", "1"),
    ];
    let mut child = spawn("cycles", buf.fd(), &[&n.to_string()], Layer::On, &envs)?;
    let line = child.expect_line("fds_before", Duration::from_secs(120));
    let (ok, stderr) = child.finish();
    let line = line.map_err(|e| format!("{e}\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    let v = |k| value(&line, k).unwrap_or(u64::MAX);
    ensure!(v("fds_after_submits") == v("fds_before"), "fds grew over {n} submits: {line}");
    ensure!(v("fds_after_imports") == v("fds_before"), "fds grew over {n} imports: {line}");
    ensure!(v("first") == n + 1, "every submit ran once: {line}");
    ensure!(
        !layer_lines_with(&stderr, &["stays pinned", "backing"]).is_empty(),
        "no debug line saying the import stays pinned:\n{}",
        stderr
            .lines()
            .filter(|l| !l.contains("records") && !l.contains("submission"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ensure!(stat(&stderr, "dynamic_attachments") == [0], "{}", stats_lines(&stderr));
    ensure!(stat(&stderr, "evictions") == [0], "{}", stats_lines(&stderr));
    Ok(Outcome::Pass)
}
