//! The summary `dynabuf run` prints on stderr when the application has
//! exited: per device of every process that ran under the layer, the
//! dma-bufs it saw, acquires (and how many waited), releases, evictions and
//! re-validations, bytes copied, and hazards by kind; with `--stats` every
//! counter, every dma-buf and the histograms too. It reads the layer's
//! statistics file (`docs/stats.md`) through the layer's own types.

use std::fmt::Write as _;
use std::path::Path;

use dynabuf::hazard::HazardKind;
use dynabuf::stats::document::{self, Histogram, StatsDocument, SCHEMA};

/// Every line starts with this or with spaces.
pub const PREFIX: &str = "dynabuf run:";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// `kind count, ...` for every hazard reported, known kinds first in their
/// order, then any this build does not know; `none` when there were none.
pub fn hazards(doc: &StatsDocument) -> String {
    let known: Vec<&str> = HazardKind::ALL.iter().map(|k| k.key()).collect();
    let mut keys: Vec<&str> = known.clone();
    keys.extend(doc.hazards.keys().map(String::as_str).filter(|k| !known.contains(k)));
    let found: Vec<String> = keys
        .into_iter()
        .filter_map(|k| doc.hazards.get(k).filter(|n| **n > 0).map(|n| format!("{k} {n}")))
        .collect();
    if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    }
}

/// The lines of one device.
pub fn device(doc: &StatsDocument, all: bool) -> String {
    let c = &doc.counters;
    let bufs = &doc.dma_bufs;
    let bytes: u64 = bufs.iter().filter_map(|b| b.size).sum();
    let (copied_in, copied_out) =
        bufs.iter().fold((0u64, 0u64), |(i, o), b| (i + b.bytes_copied_in, o + b.bytes_copied_out));
    let wait_us: u64 = bufs.iter().map(|b| b.wait_us).sum();
    let mut out = String::new();
    let state = if doc.is_final { "" } else { " (not destroyed: its last periodic statistics)" };
    let _ = writeln!(
        out,
        "  {}: {}, {} synchronised{state}",
        doc.device,
        plural(c.submits as usize, "submit", "submits"),
        c.submits_with_transfers
    );
    let _ = writeln!(out, "    dma-bufs seen: {} ({bytes} bytes)", bufs.len());
    let _ = writeln!(
        out,
        "    acquires {} ({} waited, {}), releases {}",
        c.acquires_ready + c.acquires_waited,
        c.acquires_waited,
        ms(wait_us),
        c.releases_published
    );
    let _ = writeln!(
        out,
        "    evictions {}, revalidations {}, bytes copied {} (in {copied_in}, out {copied_out})",
        c.evictions,
        c.revalidations,
        copied_in + copied_out
    );
    let _ = writeln!(out, "    hazards: {}", hazards(doc));
    if all {
        out.push_str(&details(doc));
    }
    out
}

/// `--stats`: every counter, every dma-buf, the histograms.
fn details(doc: &StatsDocument) -> String {
    let mut out = String::new();
    if let Ok(serde_json::Value::Object(counters)) = serde_json::to_value(&doc.counters) {
        let pairs: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "    counters: {}", pairs.join(" "));
    }
    for b in &doc.dma_bufs {
        let size = b.size.map_or("size unknown".to_string(), |s| format!("{s} bytes"));
        let exporter = b.exporter.as_deref().unwrap_or("exporter unknown");
        let name = b.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "    dma-buf {}:{} ({size}, {exporter}{name}): imports {}, exports {}, acquires {} ({} waited, {}), \
             releases {}, evictions {}, revalidations {}, copied in {}, out {}",
            b.st_dev,
            b.inode,
            b.imports,
            b.exports,
            b.acquires,
            b.waits,
            ms(b.wait_us),
            b.releases,
            b.evictions,
            b.revalidations,
            b.bytes_copied_in,
            b.bytes_copied_out
        );
    }
    let h = &doc.histograms;
    let _ = writeln!(out, "    fence waits (us): {}", histogram(&h.fence_wait_us));
    let _ = writeln!(
        out,
        "    layer time per synchronised submit (ns): {}",
        histogram(&h.layer_ns_per_synced_submit)
    );
    out
}

fn histogram(h: &Histogram) -> String {
    if h.count == 0 {
        return "none".to_string();
    }
    let q = |q| h.quantile_bound(q).map_or("-".to_string(), |v| v.to_string());
    format!(
        "count {}, mean {}, p50 <= {}, p99 <= {}, max {}",
        h.count,
        h.mean().unwrap_or(0),
        q(0.5),
        q(0.99),
        h.max
    )
}

/// The whole summary of a stats file's text.
pub fn render(text: &str, all: bool) -> String {
    let mut docs = Vec::new();
    let mut unreadable = 0;
    for d in document::parse_lines(text) {
        match d {
            Ok(d) => docs.push(d),
            Err(_) => unreadable += 1,
        }
    }
    let mut out = String::new();
    let latest = document::latest_per_device(&docs);
    if latest.is_empty() {
        let _ = writeln!(
            out,
            "{PREFIX} no statistics: the application created no Vulkan device under the layer, or the layer \
             was disabled (DYNABUF_DISABLE) or not loaded"
        );
    } else {
        let _ = writeln!(out, "{PREFIX} summary, {}:", plural(latest.len(), "device", "devices"));
    }
    let mut last_pid = None;
    for doc in &latest {
        if last_pid != Some(doc.pid) {
            let process = doc.process.as_deref().unwrap_or("?");
            let _ = writeln!(out, "  process {} (pid {}):", process, doc.pid);
            last_pid = Some(doc.pid);
        }
        if !doc.schema.is_empty() && doc.schema != SCHEMA {
            let _ = writeln!(
                out,
                "  (schema {}: this dynabuf reads {SCHEMA}; fields it does not know are left out)",
                doc.schema
            );
        }
        for line in device(doc, all).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if unreadable > 0 {
        let _ = writeln!(
            out,
            "{PREFIX} {} of the statistics file skipped (not JSON)",
            plural(unreadable, "line", "lines")
        );
    }
    out
}

/// Prints the summary of `stats_file` on stderr. A layer that was
/// disabled (`DYNABUF_DISABLE`) hooked nothing, so whatever it wrote
/// (devices are still created through it) is not its work.
pub fn print(stats_file: &Path, all: bool, disabled: bool) {
    if disabled {
        eprintln!("{PREFIX} the layer was disabled (DYNABUF_DISABLE): it hooked nothing, no statistics");
        return;
    }
    let text = std::fs::read_to_string(stats_file).unwrap_or_default();
    eprint!("{}", render(&text, all));
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynabuf::stats::document::DmaBufStats;

    fn doc(pid: u32, device: &str, sequence: u64, is_final: bool) -> StatsDocument {
        let mut d = StatsDocument {
            schema: SCHEMA.into(),
            pid,
            process: Some("app".into()),
            device: device.into(),
            sequence,
            is_final,
            ..StatsDocument::default()
        };
        d.counters.submits = 10 + sequence;
        d.counters.submits_with_transfers = 4;
        d.counters.acquires_ready = 3;
        d.counters.acquires_waited = 1;
        d.counters.releases_published = 4;
        d.dma_bufs.push(DmaBufStats {
            st_dev: 13,
            inode: 77,
            size: Some(65536),
            exporter: Some("udmabuf".into()),
            acquires: 4,
            waits: 1,
            wait_us: 1500,
            releases: 4,
            bytes_copied_in: 100,
            bytes_copied_out: 28,
            ..DmaBufStats::default()
        });
        d.hazards.insert("fence_timeout".into(), 2);
        d.hazards.insert("use_without_acquire".into(), 0);
        d
    }

    #[test]
    fn the_latest_document_of_each_device_is_summarised() {
        let lines: Vec<String> =
            [doc(7, "dev1 x", 0, false), doc(7, "dev1 x", 1, true), doc(7, "dev2 y", 0, false)]
                .iter()
                .map(StatsDocument::to_json_line)
                .collect();
        let text = format!("{}\n{{\"half\n", lines.join("\n"));
        let s = render(&text, false);
        assert!(s.starts_with("dynabuf run: summary, 2 devices:\n  process app (pid 7):\n"), "{s}");
        assert!(s.contains("    dev1 x: 11 submits, 4 synchronised\n"), "{s}");
        assert!(s.contains("    dev2 y: 10 submits, 4 synchronised (not destroyed"), "{s}");
        assert!(s.contains("      dma-bufs seen: 1 (65536 bytes)\n"), "{s}");
        assert!(s.contains("      acquires 4 (1 waited, 1.5 ms), releases 4\n"), "{s}");
        assert!(s.contains("      evictions 0, revalidations 0, bytes copied 128 (in 100, out 28)\n"), "{s}");
        assert!(s.contains("      hazards: fence_timeout 2\n"), "{s}");
        assert!(s.contains("1 line of the statistics file skipped"), "{s}");
        assert!(!s.contains("counters:"));
        let all = render(&lines[1], true);
        assert!(all.contains("counters: acquires_ready=3 acquires_recorded=0"), "{all}");
        assert!(all.contains("dma-buf 13:77 (65536 bytes, udmabuf): imports 0"), "{all}");
        assert!(all.contains("fence waits (us): none"), "{all}");
    }

    #[test]
    fn no_documents_say_why() {
        assert!(render("", false).starts_with("dynabuf run: no statistics"));
        let mut d = doc(1, "dev1 x", 0, true);
        d.hazards.clear();
        assert_eq!(hazards(&d), "none");
    }
}
