//! The statistics document: its field names (the schema `docs/stats.md`
//! describes) and its round trip through JSON.

use std::time::Duration;

use super::document::{self, StatsDocument};
use super::{DeviceStats, Identity};
use crate::hazard::HazardKind;
use crate::registry::DmaBufKey;

const KEY: DmaBufKey = DmaBufKey { dev: 9, ino: 4242 };

fn busy_stats() -> DeviceStats {
    let s = DeviceStats::default();
    DeviceStats::bump(&s.submits);
    DeviceStats::bump(&s.submits);
    s.identified(KEY, Identity { size: 65536, exporter: "udmabuf", name: Some("frame") }, false);
    s.acquired(KEY, false);
    s.acquired(KEY, true);
    s.fence_waited(KEY, Duration::from_millis(3));
    s.released(KEY);
    s.copied(KEY, 4096, true);
    s.copied(KEY, 100, false);
    s.evicted(KEY);
    s.revalidated(KEY);
    s.synced_submit(Duration::from_micros(50), Duration::from_micros(30));
    s.hazard(HazardKind::SelfWait);
    s
}

#[test]
fn a_document_survives_its_round_trip() {
    let doc = busy_stats().document("dev0 test", 3, true);
    let line = doc.to_json_line();
    assert!(!line.contains('\n'));
    let back = StatsDocument::from_json_line(&line).unwrap();
    assert_eq!(back, doc);
    assert_eq!(back.schema, document::SCHEMA);
    assert!(back.is_final);
    assert_eq!(back.counters.submits, 2);
    assert_eq!(back.counters.sync_total_ns, 50_000);
    let b = &back.dma_bufs[0];
    assert_eq!((b.st_dev, b.inode, b.size), (9, 4242, Some(65536)));
    assert_eq!((b.exporter.as_deref(), b.name.as_deref()), (Some("udmabuf"), Some("frame")));
    assert_eq!((b.imports, b.exports, b.acquires, b.waits, b.releases), (1, 0, 2, 1, 1));
    assert_eq!((b.evictions, b.revalidations, b.bytes_copied_in, b.bytes_copied_out), (1, 1, 4096, 100));
    assert_eq!(b.wait_us, 3000);
    let waits = &back.histograms.fence_wait_us;
    assert_eq!((waits.count, waits.sum, waits.max), (1, 3000, 3000));
    assert_eq!(waits.buckets[document::bucket_of(3000)], 1);
    assert_eq!(back.histograms.layer_ns_per_synced_submit.sum, 20_000);
    assert_eq!(back.hazards["self_wait"], 1);
    assert_eq!(back.hazards["fence_timeout"], 0);
}

/// The names tools read: changing one is a new schema version.
#[test]
fn field_names_are_the_schema() {
    let doc = busy_stats().document("dev0 test", 0, false);
    let v: serde_json::Value = serde_json::from_str(&doc.to_json_line()).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "counters",
            "device",
            "dma_bufs",
            "final",
            "hazards",
            "histograms",
            "layer_version",
            "pid",
            "process",
            "schema",
            "sequence",
            "time_unix_ms",
            "uptime_ms"
        ]
    );
    assert_eq!(v["schema"], "dynabuf-stats/1");
    assert_eq!(v["final"], false);
    assert_eq!(v["pid"], std::process::id());
    assert_eq!(
        keys(&v["dma_bufs"][0]),
        [
            "acquires",
            "bytes_copied_in",
            "bytes_copied_out",
            "evictions",
            "exporter",
            "exports",
            "imports",
            "inode",
            "name",
            "releases",
            "revalidations",
            "size",
            "st_dev",
            "wait_us",
            "waits"
        ]
    );
    assert_eq!(keys(&v["histograms"]), ["fence_wait_us", "layer_ns_per_synced_submit"]);
    assert_eq!(keys(&v["histograms"]["fence_wait_us"]), ["buckets", "count", "max", "sum"]);
    assert_eq!(v["histograms"]["fence_wait_us"]["buckets"].as_array().unwrap().len(), document::BUCKETS);
    let hazards: Vec<&str> = HazardKind::ALL.iter().map(|k| k.key()).collect();
    let mut want: Vec<String> = hazards.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys(&v["hazards"]), want);
    // Every counter, by the name the log line uses too.
    let counters: Vec<String> = {
        let mut c: Vec<String> = busy_stats().snapshot().iter().map(|(k, _)| k.to_string()).collect();
        c.sort();
        c
    };
    assert_eq!(keys(&v["counters"]), counters);
    assert!(counters.contains(&"submits".to_string()));
}

/// Readers take what they know: missing fields default, unknown ones are
/// ignored (later versions of the same schema only add fields).
#[test]
fn reading_is_lenient() {
    let d = StatsDocument::from_json_line(
        r#"{"schema":"dynabuf-stats/1","device":"dev1 x","final":true,"counters":{"submits":7,"new":1},"extra":[1]}"#,
    )
    .unwrap();
    assert_eq!(
        (d.device.as_str(), d.is_final, d.counters.submits, d.counters.allocations),
        ("dev1 x", true, 7, 0)
    );
    assert!(d.dma_bufs.is_empty() && d.histograms.fence_wait_us.buckets.is_empty());
}

#[test]
fn the_latest_document_of_each_device_wins() {
    let s = DeviceStats::default();
    let text = [
        s.document("dev0 a", 0, false),
        s.document("dev1 b", 0, true),
        s.document("dev0 a", 1, false),
        s.document("dev0 a", 2, true),
    ]
    .iter()
    .map(StatsDocument::to_json_line)
    .collect::<Vec<_>>()
    .join("\n")
        + "\n\n{\"schema\": \"dynabuf-st";
    let parsed: Vec<_> = document::parse_lines(&text).collect();
    assert_eq!(parsed.len(), 5);
    assert!(parsed[4].is_err(), "a half-written line is an error in its place");
    let docs: Vec<StatsDocument> = parsed.into_iter().filter_map(Result::ok).collect();
    let latest = document::latest_per_device(&docs);
    assert_eq!(
        latest.iter().map(|d| (d.device.as_str(), d.sequence, d.is_final)).collect::<Vec<_>>(),
        [("dev0 a", 2, true), ("dev1 b", 0, true)]
    );
}

#[test]
fn documents_append_one_per_line() {
    let dir = std::env::temp_dir().join(format!("dynabuf-stats-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stats.jsonl");
    let _ = std::fs::remove_file(&path);
    let s = std::sync::Arc::new(busy_stats());
    let file = std::sync::Arc::new(super::file::StatsFile::new(path.clone(), "dev0 t".into()));
    let periodic = super::file::Periodic::start(s.clone(), file.clone(), Duration::from_millis(10)).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    periodic.stop();
    file.write(&s, true);
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<StatsDocument> = document::parse_lines(&text).map(Result::unwrap).collect();
    assert!(docs.len() >= 3, "{} documents", docs.len());
    let (last, earlier) = docs.split_last().unwrap();
    assert!(last.is_final && earlier.iter().all(|d| !d.is_final));
    assert!(docs.iter().enumerate().all(|(i, d)| d.sequence == i as u64));
    let _ = std::fs::remove_dir_all(&dir);
}
