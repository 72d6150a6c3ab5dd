//! Dynamic attachments: evicted (internal import dropped) and re-validated
//! (re-imported) transparently, with content and ordering kept.

use dynabuf_client::env::Layer;

use crate::common::client;
use crate::ensure;
use crate::harness::{Outcome, TestResult};
use crate::require_kernel_tier;

fn stat(stderr: &str, key: &str) -> Vec<u64> {
    stderr
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
        .collect()
}

pub fn every_submit_evicts_and_revalidates_and_two_processes_keep_exact_values() -> TestResult {
    require_kernel_tier!();
    // Two processes, both under the layer with every attachment dynamic and
    // invalidated at every submission: 500 frames each way (1,000 submits),
    // every frame's values checked by both sides.
    let envs = [("DYNABUF_ATTACH", "dynamic"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let run = client(&["pingpong", "500"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("pingpong_ok").as_deref() == Some("true"),
        "ping-pong failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    // The importer's attachment is the dynamic one (the exporter's memory
    // is its own allocation, not an import).
    ensure!(stat(&run.stderr, "dynamic_attachments").contains(&1), "no dynamic attachment:\n{}", run.stderr);
    ensure!(stat(&run.stderr, "evictions").contains(&500), "expected 500 evictions:\n{}", run.stderr);
    ensure!(
        stat(&run.stderr, "revalidations").contains(&500),
        "expected 500 re-validations:\n{}",
        run.stderr
    );
    ensure!(
        stat(&run.stderr, "copies_in").contains(&500) && stat(&run.stderr, "copies_out").contains(&500),
        "{}",
        run.stderr
    );
    Ok(Outcome::Pass)
}

pub fn a_budget_holds_resident_imports_within_it_at_every_point() -> TestResult {
    require_kernel_tier!();
    // Four 1 MiB dma-bufs used round robin under a 2 MiB budget.
    let envs = [("DYNABUF_EVICT", "budget:2"), ("DYNABUF_STATS", "1")];
    let run = client(&["budget", "4", "1", "40"], Layer::On, &envs);
    ensure!(
        run.ok && run.value("budget_ok").as_deref() == Some("true"),
        "budget run failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    let peak = stat(&run.stderr, "resident_peak_bytes");
    ensure!(
        peak.first().is_some_and(|&p| p > 0 && p <= 2 << 20),
        "resident peak {peak:?} over 2 MiB:\n{}",
        run.stderr
    );
    let mapped: usize = run.value("max_mapped").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    ensure!(mapped <= 2, "lavapipe had {mapped} dma-buf mappings at once under a 2 MiB budget");
    ensure!(
        stat(&run.stderr, "evictions").first().is_some_and(|&e| e >= 30),
        "too few evictions:\n{}",
        run.stderr
    );
    Ok(Outcome::Pass)
}

pub fn pinned_attachments_are_never_evicted() -> TestResult {
    require_kernel_tier!();
    let envs = [("DYNABUF_ATTACH", "pinned"), ("DYNABUF_EVICT", "every:1"), ("DYNABUF_STATS", "1")];
    let run = client(&["budget", "2", "1", "10"], Layer::On, &envs);
    ensure!(run.ok && run.value("budget_ok").as_deref() == Some("true"), "{}\n{}", run.stdout, run.stderr);
    ensure!(stat(&run.stderr, "evictions") == vec![0], "pinned attachments were evicted:\n{}", run.stderr);
    ensure!(stat(&run.stderr, "dynamic_attachments") == vec![0], "{}", run.stderr);
    Ok(Outcome::Pass)
}
