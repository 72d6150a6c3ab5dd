//! `DYNABUF_STATS_FILE` through the real Vulkan loader on lavapipe: one
//! valid JSON document per device at `vkDestroyDevice`, counting what the
//! client did, several devices appending to one file, and no file without
//! the layer. `docs/stats.md` is the schema; the kernel tier checks the
//! dma-buf parts (`tests/kernel/statistics.rs`).

mod common;

use std::path::{Path, PathBuf};

use common::{client, Layer};
use dynabuf::stats::document::{self, StatsDocument};

/// A fresh path for one test's stats file.
fn stats_path(test: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("dynabuf-stats-host-{}-{test}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Every document of the file (each line must be one), and the file gone.
fn take_docs(path: &Path) -> Vec<StatsDocument> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let _ = std::fs::remove_file(path);
    assert!(text.ends_with('\n'), "every document ends its line:\n{text}");
    text.lines()
        .map(|l| {
            assert!(l.starts_with('{') && l.ends_with('}'), "not one JSON object per line: {l}");
            let d = StatsDocument::from_json_line(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert_eq!(d.schema, document::SCHEMA);
            d
        })
        .collect()
}

#[test]
fn a_stats_file_gets_one_final_document_counting_every_submit() {
    let path = stats_path("threads");
    let envs = [("DYNABUF_STATS_FILE", path.to_str().unwrap())];
    let run = client(&["threads", "4", "100"], Layer::On, &envs).expect_ok("threads");
    assert_eq!(run.value("submits").as_deref(), Some("400"));
    // The file alone turns statistics on, but not the log line.
    assert!(!run.stderr.contains("stats for"), "{}", run.stderr);
    let docs = take_docs(&path);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let d = &docs[0];
    assert!(d.is_final && d.sequence == 0, "{d:?}");
    assert_eq!(d.counters.submits, 400, "{d:?}");
    assert!(d.pid != std::process::id() && d.device.starts_with("dev"), "{d:?}");
    assert!(d.dma_bufs.is_empty(), "no dma-buf in this client: {:?}", d.dma_bufs);
    assert_eq!(d.histograms.fence_wait_us.buckets.len(), document::BUCKETS);
    assert!(d.hazards.values().all(|&n| n == 0), "{:?}", d.hazards);
}

#[test]
fn several_devices_append_to_one_file() {
    let path = stats_path("multi");
    let envs = [("DYNABUF_STATS_FILE", path.to_str().unwrap()), ("DYNABUF_STATS", "1")];
    let run = client(&["multi"], Layer::On, &envs).expect_ok("multi");
    let docs = take_docs(&path);
    assert_eq!(docs.len(), 3, "{docs:?}");
    let mut names: Vec<&str> = docs.iter().map(|d| d.device.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 3, "one document per device: {names:?}");
    assert!(docs.iter().all(|d| d.is_final && d.pid == docs[0].pid && d.counters.submits > 0), "{docs:?}");
    // With DYNABUF_STATS=1 as well, the log line says the same.
    for d in &docs {
        let word = format!("submits={}", d.counters.submits);
        assert!(run.stderr.split_whitespace().any(|w| w == word), "{word}:\n{}", run.stderr);
    }
}

#[test]
fn without_the_layer_or_the_setting_no_file_is_written() {
    let path = stats_path("control");
    let envs = [("DYNABUF_STATS_FILE", path.to_str().unwrap())];
    client(&["compute"], Layer::Off, &envs).expect_ok("compute without the layer");
    assert!(!path.exists(), "a run without the layer wrote {}", path.display());
    client(&["compute"], Layer::On, &[("DYNABUF_STATS", "1")]).expect_ok("compute");
    assert!(!path.exists());
    client(&["compute"], Layer::On, &envs).expect_ok("compute with the stats file");
    assert_eq!(take_docs(&path).len(), 1);
}
