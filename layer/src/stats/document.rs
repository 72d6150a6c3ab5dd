//! The statistics document (`DYNABUF_STATS_FILE`, schema
//! [`SCHEMA`]): what one device's statistics look like as JSON, one
//! document per line. Every field is described in `docs/stats.md`.
//!
//! These types derive both `Serialize` (the layer writes them) and
//! `Deserialize` (tools such as `dynabuf run` read them back through this
//! crate's rlib). Reading is lenient: a missing field takes its default and
//! an unknown one is ignored, so a reader built against this version reads
//! documents of later versions of the same schema (which only add fields).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::histogram::{bucket_bounds, bucket_of, BUCKETS};
pub use super::Counters;

/// The value of every document's `schema` field. A change that removes or
/// renames a field, or changes a unit, makes it `dynabuf-stats/2`.
pub const SCHEMA: &str = "dynabuf-stats/1";

/// One device's statistics at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsDocument {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The layer's version (`CARGO_PKG_VERSION`).
    pub layer_version: String,
    /// The application's process ID.
    pub pid: u32,
    /// The application's executable name, when known.
    pub process: Option<String>,
    /// The device as the layer's log lines name it: `dev<N> <physical
    /// device name>`, N counting devices created in the process.
    pub device: String,
    /// This document's number among the device's documents (0, 1, ...).
    pub sequence: u64,
    /// Whether this is the device's last document (written at
    /// `vkDestroyDevice`); periodic ones say `false`.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// When the document was made, in ms since the Unix epoch.
    pub time_unix_ms: u64,
    /// How long the device had existed then, in ms.
    pub uptime_ms: u64,
    /// The device's counters (cumulative since device creation).
    pub counters: Counters,
    /// One entry per dma-buf the device has seen, in (st_dev, inode) order.
    pub dma_bufs: Vec<DmaBufStats>,
    pub histograms: Histograms,
    /// One count per hazard kind, by its key (`use_without_acquire`, ...):
    /// every kind the layer knows is present, zero or not.
    pub hazards: BTreeMap<String, u64>,
}

/// What happened to one dma-buf on one device (cumulative).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DmaBufStats {
    /// `st_dev` of the dma-buf (the dma-buf filesystem's device number).
    pub st_dev: u64,
    /// `st_ino` of the dma-buf: with `st_dev`, its identity in the process
    /// (and system-wide: the same inode in another process is the same
    /// buffer).
    pub inode: u64,
    /// Its size in bytes, from `/proc/self/fdinfo` (`null` when the layer
    /// never identified an fd of it).
    pub size: Option<u64>,
    /// Its exporter's name (`udmabuf`, `drm`, ...), when known.
    pub exporter: Option<String>,
    /// The name its exporter or a user gave it (`DMA_BUF_SET_NAME`), when
    /// it has one.
    pub name: Option<String>,
    /// Memory objects imported from it.
    pub imports: u64,
    /// Times it was exported (`vkGetMemoryFdKHR` returning it).
    pub exports: u64,
    /// Acquires of it (ownership taken from FOREIGN/EXTERNAL) that found
    /// its fences signalled or waited for them.
    pub acquires: u64,
    /// Of `acquires`, those that found a fence pending and waited.
    pub waits: u64,
    /// How long those waits lasted in total, in µs, where the layer sees
    /// the fence signal (see `fence_wait_us`).
    pub wait_us: u64,
    /// Release fences published into it.
    pub releases: u64,
    /// Times its dynamic attachment was invalidated.
    pub evictions: u64,
    /// Times its dynamic attachment was re-validated (re-imported).
    pub revalidations: u64,
    /// Bytes copied from it into a dynamic attachment's backing.
    pub bytes_copied_in: u64,
    /// Bytes copied from a dynamic attachment's backing into it.
    pub bytes_copied_out: u64,
}

/// The device's histograms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Histograms {
    /// How long each acquire's pending foreign fence took to signal, in µs
    /// (acquires whose fences had signalled are not in it).
    pub fence_wait_us: Histogram,
    /// The layer's own time in each synchronised submission (its total
    /// time minus the driver's), in ns.
    pub layer_ns_per_synced_submit: Histogram,
}

/// A histogram with log2 buckets: `buckets[0]` counts the value 0,
/// `buckets[i]` the values in `[2^(i-1), 2^i)`, and the last bucket
/// everything from `2^(BUCKETS-2)` up (see [`bucket_bounds`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Histogram {
    /// How many values were recorded (the sum of `buckets`).
    pub count: u64,
    /// Their sum (saturating).
    pub sum: u64,
    /// The largest.
    pub max: u64,
    /// [`BUCKETS`] counts, always all of them.
    pub buckets: Vec<u64>,
}

impl Histogram {
    /// The mean value, when anything was recorded.
    pub fn mean(&self) -> Option<u64> {
        self.sum.checked_div(self.count)
    }

    /// An upper bound of the `q` quantile (`0.0..=1.0`): the smaller of
    /// `max` and the exclusive end of the bucket holding it. `None` when
    /// nothing was recorded.
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_bounds(i).1.map_or(self.max, |end| end.min(self.max)));
            }
        }
        Some(self.max)
    }
}

impl StatsDocument {
    /// The document as one JSON line (no newline inside, none at the end).
    pub fn to_json_line(&self) -> String {
        // Serialising these plain structures cannot fail (string keys,
        // no floats); an empty object is the fallback if it ever did.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses one line of a stats file.
    pub fn from_json_line(line: &str) -> Result<StatsDocument, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// Every document of a stats file's text, in file order, skipping blank
/// lines; a line that does not parse (a document a crashing process left
/// half written) is an `Err` in its place.
pub fn parse_lines(text: &str) -> impl Iterator<Item = Result<StatsDocument, serde_json::Error>> + '_ {
    text.lines().filter(|l| !l.trim().is_empty()).map(StatsDocument::from_json_line)
}

/// The last document of each device of each process (by `(pid, device)`),
/// the final one where there is one: what a summary shows.
pub fn latest_per_device(docs: &[StatsDocument]) -> Vec<&StatsDocument> {
    let mut latest: BTreeMap<(u32, &str), &StatsDocument> = BTreeMap::new();
    for d in docs {
        let slot = latest.entry((d.pid, d.device.as_str())).or_insert(d);
        if (d.is_final, d.sequence) >= (slot.is_final, slot.sequence) {
            *slot = d;
        }
    }
    latest.into_values().collect()
}
