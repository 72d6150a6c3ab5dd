//! The stats file (`DYNABUF_STATS_FILE`, `docs/stats.md`) on real
//! dma-bufs and foreign fences: the dma-buf appears with its inode and
//! size, the counts match what the client did, the fence wait lands in the
//! histogram bucket of its delay, and with `DYNABUF_STATS_INTERVAL_MS`
//! periodic documents come before each process's final one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dynabuf::stats::document::{self, DmaBufStats, StatsDocument};
use dynabuf::sys::dma_buf;
use dynabuf_client::env::Layer;

use crate::child::spawn;
use crate::ensure;
use crate::fixture::{vgem, Buf};
use crate::harness::{Check, Outcome, TestResult};
use crate::require_kernel_tier;

const LEN: u32 = 1024;
const BYTES: u64 = LEN as u64 * 4;
const STARTUP: Duration = Duration::from_secs(60);
/// How long the test holds the foreign fence after the client submitted.
const DELAY: Duration = Duration::from_millis(300);

/// A fresh path for one test's stats file (removed if left over).
fn stats_path(test: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("dynabuf-stats-{}-{test}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Every document of the file; any line that does not parse fails.
fn read_docs(path: &Path) -> Result<Vec<StatsDocument>, String> {
    let text = std::fs::read_to_string(path).check(&format!("read {}", path.display()))?;
    let docs: Result<Vec<_>, _> = document::parse_lines(&text).collect();
    let docs =
        docs.map_err(|e| format!("a line of {} is not a stats document: {e}\n{text}", path.display()))?;
    for d in &docs {
        ensure!(d.schema == document::SCHEMA, "schema {:?}", d.schema);
    }
    Ok(docs)
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// One `acquire` client run (an acquire for writing and a release in one
/// submission) with `envs`; `hold`: the test attaches a foreign write
/// fence to the buffer and signals it this long after the client's `go`.
/// Returns the buffer's identity and whether the client finished while the
/// fence was held.
fn acquire_run(
    layer: Layer,
    hold: Option<Duration>,
    envs: &[(&str, &str)],
) -> Result<(dma_buf::Identity, bool), String> {
    let vgem = vgem()?;
    let buf = Buf::new(&vgem, BYTES)?;
    let id = dma_buf::identity(buf.fd()).check("fstat dma-buf")?;
    let mut child = spawn("acquire", buf.fd(), &[&LEN.to_string(), "write", "1"], layer, envs)?;
    let outcome = (|| {
        child.expect_line("ready", STARTUP)?;
        let attached = match hold {
            Some(h) => Some((vgem.attach(buf.handle, true).check("attach write fence")?, h)),
            None => None,
        };
        child.say("go")?;
        let mut early = None;
        if let Some((fence, hold)) = attached {
            early = child.line(hold)?;
            vgem.signal(fence).check("signal")?;
        }
        let done = match early.clone() {
            Some(l) => l,
            None => child.expect_line("done", Duration::from_secs(30))?,
        };
        ensure!(done.starts_with("done"), "expected done, got {done:?}");
        Ok(early.is_some())
    })();
    let (ok, stderr) = child.finish();
    let early = outcome.map_err(|e: String| format!("{e}\n--- client stderr\n{stderr}"))?;
    ensure!(ok, "the client failed:\n{stderr}");
    Ok((id, early))
}

fn the_buffer<'a>(d: &'a StatsDocument, id: &dma_buf::Identity) -> Result<&'a DmaBufStats, String> {
    d.dma_bufs
        .iter()
        .find(|b| (b.st_dev, b.inode) == (id.dev, id.ino))
        .ok_or_else(|| format!("dma-buf {}:{} not in {:?}", id.dev, id.ino, d.dma_bufs))
}

pub fn a_stats_file_counts_a_waited_acquire_and_its_fence_wait() -> TestResult {
    require_kernel_tier!();
    let path = stats_path("acquire");
    let (id, early) = acquire_run(Layer::On, Some(DELAY), &[("DYNABUF_STATS_FILE", path_str(&path)?)])?;
    ensure!(!early, "the client finished before the foreign fence signalled");
    let docs = read_docs(&path)?;
    let _ = std::fs::remove_file(&path);
    ensure!(docs.len() == 1, "one device, no interval: one document, got {}", docs.len());
    let d = &docs[0];
    ensure!(d.is_final && d.sequence == 0 && d.pid != std::process::id(), "{d:?}");
    ensure!(d.process.as_deref() == Some("dynabuf-client"), "process {:?}", d.process);
    let b = the_buffer(d, &id)?;
    ensure!(b.size == Some(BYTES) && b.exporter.as_deref() == Some("udmabuf"), "{b:?}");
    ensure!((b.imports, b.exports, b.acquires, b.waits, b.releases) == (1, 0, 1, 1, 1), "{b:?}");
    let c = &d.counters;
    ensure!(
        (c.dma_buf_imports, c.acquires_waited, c.acquires_ready, c.releases_published) == (1, 1, 0, 1),
        "{c:?}"
    );
    // The fence signalled about DELAY after the client's go: one value, in
    // the bucket its own value belongs to, and that value near DELAY.
    let h = &d.histograms.fence_wait_us;
    ensure!(h.buckets.len() == document::BUCKETS && h.count == 1, "{h:?}");
    let waited = h.max;
    ensure!(
        h.sum == waited && b.wait_us == waited,
        "sum {} / per buffer {} / max {waited}",
        h.sum,
        b.wait_us
    );
    ensure!((100_000..10_000_000).contains(&waited), "the wait of a {DELAY:?} fence took {waited} µs");
    let i = document::bucket_of(waited);
    let (low, high) = document::bucket_bounds(i);
    ensure!(h.buckets[i] == 1 && low <= waited && high.is_some_and(|h| waited < h), "{h:?}");
    ensure!(
        (document::bucket_of(100_000)..=document::bucket_of(DELAY.as_micros() as u64 * 4)).contains(&i),
        "bucket {i} for a {DELAY:?} fence"
    );
    let layer = &d.histograms.layer_ns_per_synced_submit;
    ensure!(layer.count >= 1 && layer.count == c.submits_with_transfers, "{layer:?} / {c:?}");
    let hazards: Vec<&str> = d.hazards.keys().map(String::as_str).collect();
    ensure!(hazards.contains(&"fence_timeout") && hazards.contains(&"use_without_acquire"), "{hazards:?}");

    // Control: without the layer nothing writes the file, whatever the
    // environment says.
    acquire_run(Layer::Off, None, &[("DYNABUF_STATS_FILE", path_str(&path)?)])?;
    ensure!(!path.exists(), "a run without the layer wrote {}", path.display());
    Ok(Outcome::Pass)
}

pub fn a_fence_timeout_is_a_bounded_wait_and_a_hazard_in_the_stats() -> TestResult {
    require_kernel_tier!();
    // The fence is held 3 s; the layer lets the GPU go on after 0.5 s. With
    // hazards off (the control) the timeout is no hazard, the wait the same.
    for (hazards, counted) in [("warn", true), ("off", false)] {
        let path = stats_path(&format!("timeout-{hazards}"));
        let envs = [
            ("DYNABUF_STATS_FILE", path_str(&path)?),
            ("DYNABUF_FENCE_TIMEOUT_MS", "500"),
            ("DYNABUF_HAZARDS", hazards),
        ];
        let (id, early) = acquire_run(Layer::On, Some(Duration::from_secs(3)), &envs)?;
        ensure!(early, "hazards {hazards}: the client waited past the 500 ms fence timeout");
        let docs = read_docs(&path)?;
        let _ = std::fs::remove_file(&path);
        ensure!(docs.len() == 1, "{} documents", docs.len());
        let d = &docs[0];
        let b = the_buffer(d, &id)?;
        ensure!((b.acquires, b.waits) == (1, 1), "{b:?}");
        let h = &d.histograms.fence_wait_us;
        ensure!(h.count == 1 && (400_000..2_500_000).contains(&h.max), "hazards {hazards}: {h:?}");
        ensure!(h.buckets[document::bucket_of(h.max)] == 1, "{h:?}");
        let timeouts = d.hazards.get("fence_timeout").copied().unwrap_or(0);
        ensure!((timeouts >= 1) == counted, "hazards {hazards}: fence_timeout {timeouts}");
    }
    Ok(Outcome::Pass)
}

/// Two processes ping-pong a dma-buf; each process's device writes to one
/// shared stats file.
fn pingpong(frames: u32, envs: &[(&str, &str)]) -> Result<(), String> {
    let run = crate::common::client(&["pingpong", &frames.to_string()], Layer::On, envs);
    ensure!(run.ok, "ping-pong failed:\n{}\n{}", run.stdout, run.stderr);
    ensure!(run.value("pingpong_ok").as_deref() == Some("true"), "{}", run.stdout);
    Ok(())
}

/// The documents of each process, in file order.
fn by_process(docs: &[StatsDocument]) -> std::collections::BTreeMap<u32, Vec<&StatsDocument>> {
    let mut m: std::collections::BTreeMap<u32, Vec<&StatsDocument>> = Default::default();
    for d in docs {
        m.entry(d.pid).or_default().push(d);
    }
    m
}

pub fn periodic_documents_come_before_each_processs_final_one() -> TestResult {
    require_kernel_tier!();
    let frames = 200;
    let path = stats_path("pingpong");
    let file = path_str(&path)?.to_string();
    pingpong(frames, &[("DYNABUF_STATS_FILE", &file), ("DYNABUF_STATS_INTERVAL_MS", "50")])?;
    let docs = read_docs(&path)?;
    let _ = std::fs::remove_file(&path);
    let processes = by_process(&docs);
    ensure!(processes.len() == 2, "two processes wrote documents: {:?}", processes.keys());
    let mut finals = Vec::new();
    for (pid, list) in &processes {
        let (last, periodic) = list.split_last().ok_or("no documents")?;
        ensure!(last.is_final, "pid {pid}: the last document is not final");
        ensure!(!periodic.is_empty(), "pid {pid}: no periodic document before the final one");
        ensure!(periodic.iter().all(|d| !d.is_final), "pid {pid}: a final document before the last");
        ensure!(
            list.iter().enumerate().all(|(i, d)| d.sequence == i as u64 && d.device == last.device),
            "pid {pid}: documents out of order"
        );
        ensure!(
            list.windows(2)
                .all(|w| w[0].counters.submits <= w[1].counters.submits && w[0].uptime_ms <= w[1].uptime_ms),
            "pid {pid}: counts went back"
        );
        ensure!(last.dma_bufs.len() == 1, "pid {pid}: {:?}", last.dma_bufs);
        let b = &last.dma_bufs[0];
        ensure!(b.acquires == u64::from(frames) && b.releases == u64::from(frames), "pid {pid}: {b:?}");
        ensure!(b.acquires == last.counters.acquires_ready + last.counters.acquires_waited, "{last:?}");
        ensure!(b.size.is_some_and(|s| s >= u64::from(dynabuf_client::pingpong::LEN) * 4), "{b:?}");
        finals.push(b.clone());
    }
    // One buffer, seen by both: the exporter's and the importer's.
    ensure!(finals[0].inode == finals[1].inode && finals[0].st_dev == finals[1].st_dev, "{finals:?}");
    let mut roles: Vec<(u64, u64)> = finals.iter().map(|b| (b.exports, b.imports)).collect();
    roles.sort_unstable();
    ensure!(roles == [(0, 1), (1, 0)], "exports/imports per process: {roles:?}");

    // Control: without an interval, only the final documents.
    let path = stats_path("pingpong-final-only");
    pingpong(20, &[("DYNABUF_STATS_FILE", path_str(&path)?)])?;
    let docs = read_docs(&path)?;
    let _ = std::fs::remove_file(&path);
    ensure!(
        docs.len() == 2 && docs.iter().all(|d| d.is_final && d.sequence == 0),
        "without DYNABUF_STATS_INTERVAL_MS: {} documents",
        docs.len()
    );
    Ok(Outcome::Pass)
}

pub fn a_dynamic_attachments_evictions_and_copies_are_counted_per_dma_buf() -> TestResult {
    require_kernel_tier!();
    // The importer's attachment is dynamic and invalidated at every
    // submission: each frame evicts, re-validates, copies in and out. The
    // control keeps it pinned: none of that.
    let frames: u64 = 50;
    for (attach, dynamic) in [("dynamic", true), ("pinned", false)] {
        let path = stats_path(&format!("dynamic-{attach}"));
        let envs = [
            ("DYNABUF_STATS_FILE", path_str(&path)?),
            ("DYNABUF_ATTACH", attach),
            ("DYNABUF_EVICT", "every:1"),
        ];
        pingpong(frames as u32, &envs)?;
        let docs = read_docs(&path)?;
        let _ = std::fs::remove_file(&path);
        ensure!(docs.len() == 2, "{attach}: {} documents", docs.len());
        let importer = docs.iter().find(|d| d.dma_bufs.first().is_some_and(|b| b.imports == 1));
        let importer = importer.ok_or_else(|| format!("{attach}: no importer document: {docs:?}"))?;
        let (b, c) = (&importer.dma_bufs[0], &importer.counters);
        ensure!(b.acquires == frames && b.releases == frames, "{attach}: {b:?}");
        ensure!(
            (b.evictions, b.revalidations) == (c.evictions, c.revalidations),
            "{attach}: per buffer {b:?}, counters {c:?}"
        );
        if !dynamic {
            ensure!(
                (b.evictions, b.revalidations, b.bytes_copied_in, b.bytes_copied_out) == (0, 0, 0, 0),
                "pinned: {b:?}"
            );
            continue;
        }
        ensure!(b.evictions == frames && b.revalidations == frames, "dynamic: {b:?}");
        ensure!(c.copies_in == frames && c.copies_out == frames, "dynamic: {c:?}");
        // Each copy covers the whole memory: the imported bytes, at most
        // the dma-buf's size.
        let size = b.size.ok_or("dynamic: no size")?;
        let per_copy = b.bytes_copied_in / frames;
        ensure!(
            b.bytes_copied_in == per_copy * frames
                && b.bytes_copied_out == b.bytes_copied_in
                && (u64::from(dynabuf_client::pingpong::LEN) * 4..=size).contains(&per_copy),
            "dynamic: {b:?}"
        );
        let exporter = docs.iter().find(|d| !std::ptr::eq(*d, importer)).ok_or("no exporter document")?;
        let e = exporter.dma_bufs.first().ok_or("the exporter saw no dma-buf")?;
        ensure!(e.exports == 1 && e.evictions == 0 && e.bytes_copied_in == 0, "exporter: {e:?}");
    }
    Ok(Outcome::Pass)
}
