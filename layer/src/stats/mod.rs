//! Statistics, kept only when `DYNABUF_STATS=1` or `DYNABUF_STATS_FILE` is
//! set, so the hot paths pay one predictable branch and no shared cache
//! line otherwise: plain counters, per-dma-buf aggregates, log2 histograms
//! and hazard counts. [`document`] is what they look like as JSON
//! (`docs/stats.md`), [`file`] writes them to the stats file.
//!
//! The per-dma-buf map has its own lock, the innermost of the lock order
//! (`lock_order::Level::Stats`): nothing is taken while it is held, so it
//! may be taken under any other.

#![forbid(unsafe_code)]

pub mod document;
pub mod file;
pub mod histogram;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::hazard::HazardKind;
use crate::lock_order::{lock, Level};
use crate::registry::DmaBufKey;
use document::{DmaBufStats, Histograms, StatsDocument};
use histogram::AtomicHistogram;

macro_rules! counters {
    ($($name:ident: $what:literal),* $(,)?) => {
        /// Per-device statistics: the counters, then the rest.
        #[derive(Debug)]
        pub struct DeviceStats {
            $( #[doc = $what] pub $name: AtomicU64, )*
            /// When the device was created.
            created: Instant,
            fence_wait_us: AtomicHistogram,
            layer_ns_per_synced_submit: AtomicHistogram,
            hazards: [AtomicU64; HazardKind::COUNT],
            /// Per dma-buf, by key (lock level `Stats`).
            dma_bufs: Mutex<HashMap<DmaBufKey, DmaBufStats>>,
        }

        impl Default for DeviceStats {
            fn default() -> Self {
                DeviceStats {
                    $( $name: AtomicU64::new(0), )*
                    created: Instant::now(),
                    fence_wait_us: AtomicHistogram::default(),
                    layer_ns_per_synced_submit: AtomicHistogram::default(),
                    hazards: std::array::from_fn(|_| AtomicU64::new(0)),
                    dma_bufs: Mutex::default(),
                }
            }
        }

        /// The counters' values in a stats document (`counters`): the
        /// same names as [`DeviceStats`]' counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counters {
            $( #[doc = $what] pub $name: u64, )*
        }

        impl DeviceStats {
            /// `name=value` pairs, in declaration order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($name), self.$name.load(Ordering::Relaxed)), )*]
            }

            /// The counters' values now.
            pub fn counters(&self) -> Counters {
                Counters { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    submits: "vkQueueSubmit/vkQueueSubmit2 calls",
    submits_with_transfers: "submissions carrying recorded ownership transfers",
    acquires_recorded: "acquire barriers (FOREIGN/EXTERNAL to local) recorded",
    releases_recorded: "release barriers (local to FOREIGN/EXTERNAL) recorded",
    allocations: "vkAllocateMemory calls",
    dma_buf_imports: "memory imported from a dma-buf fd",
    opaque_fd_imports: "memory imported from an opaque fd",
    exportable_allocations: "memory allocated exportable",
    fd_exports: "vkGetMemoryFdKHR calls that returned an fd",
    external_binds: "buffers and images bound to external memory",
    acquires_ready: "acquires whose fences had already signalled (no wait)",
    acquires_waited: "acquires that made the GPU wait for a pending fence",
    releases_published: "fences published into released dma-bufs",
    dynamic_attachments: "dma-buf imports made dynamic attachments",
    evictions: "dynamic attachments invalidated (internal import dropped)",
    revalidations: "dynamic attachments re-validated (re-imported)",
    copies_in: "copies dma-buf -> backing at acquire",
    copies_out: "copies backing -> dma-buf at release or eviction",
    resident_peak_bytes: "the most bytes of internal dma-buf imports resident at once (checked at each synchronised submission)",
    sync_total_ns: "time spent in synchronised submissions, in ns",
    sync_driver_ns: "of which in the driver (the submission itself and SYNC_FD export), in ns",
}

/// What the layer learnt of a dma-buf when an fd of it was identified.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    pub size: u64,
    pub exporter: &'a str,
    pub name: Option<&'a str>,
}

impl DeviceStats {
    /// Adds one to a counter.
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to the count of hazards of `kind`.
    #[inline]
    pub fn hazard(&self, kind: HazardKind) {
        Self::bump(&self.hazards[kind.index()]);
    }

    /// Runs `f` on the aggregates of `key` (created empty at first sight).
    fn with_dma_buf(&self, key: DmaBufKey, f: impl FnOnce(&mut DmaBufStats)) {
        let mut map = lock(&self.dma_bufs, Level::Stats);
        let entry = map.entry(key).or_insert_with(|| DmaBufStats {
            st_dev: key.dev,
            inode: key.ino,
            ..DmaBufStats::default()
        });
        f(entry);
    }

    /// An fd of `key` was identified: imported into a memory object of the
    /// device (`exported == false`) or exported from one.
    pub fn identified(&self, key: DmaBufKey, id: Identity<'_>, exported: bool) {
        self.with_dma_buf(key, |b| {
            b.size = Some(id.size);
            b.exporter = Some(id.exporter.to_string());
            b.name = id.name.map(str::to_string);
            if exported {
                b.exports += 1;
            } else {
                b.imports += 1;
            }
        });
    }

    /// An acquire of `key`; `waited`: it found a fence pending.
    pub fn acquired(&self, key: DmaBufKey, waited: bool) {
        self.with_dma_buf(key, |b| {
            b.acquires += 1;
            b.waits += u64::from(waited);
        });
    }

    /// A pending fence of `key` signalled (or its wait timed out) after
    /// `waited`.
    pub fn fence_waited(&self, key: DmaBufKey, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.fence_wait_us.record(us);
        self.with_dma_buf(key, |b| b.wait_us = b.wait_us.saturating_add(us));
    }

    /// A release fence was published into `key`.
    pub fn released(&self, key: DmaBufKey) {
        self.with_dma_buf(key, |b| b.releases += 1);
    }

    /// The dynamic attachment of `key` was invalidated.
    pub fn evicted(&self, key: DmaBufKey) {
        self.with_dma_buf(key, |b| b.evictions += 1);
    }

    /// The dynamic attachment of `key` was re-validated.
    pub fn revalidated(&self, key: DmaBufKey) {
        self.with_dma_buf(key, |b| b.revalidations += 1);
    }

    /// A copy of `bytes` from `key` into a backing (`into_backing`) or
    /// back, was added to a submission.
    pub fn copied(&self, key: DmaBufKey, bytes: u64, into_backing: bool) {
        self.with_dma_buf(key, |b| match into_backing {
            true => b.bytes_copied_in = b.bytes_copied_in.saturating_add(bytes),
            false => b.bytes_copied_out = b.bytes_copied_out.saturating_add(bytes),
        });
    }

    /// A synchronised submission took `total`, of which `driver` in the
    /// driver.
    pub fn synced_submit(&self, total: Duration, driver: Duration) {
        let (total, driver) = (nanos(total), nanos(driver));
        self.sync_total_ns.fetch_add(total, Ordering::Relaxed);
        self.sync_driver_ns.fetch_add(driver, Ordering::Relaxed);
        self.layer_ns_per_synced_submit.record(total.saturating_sub(driver));
    }

    /// One log-friendly line; with synchronised submissions, also the
    /// layer's own time per such submission (total minus driver).
    pub fn line(&self) -> String {
        let mut line = self.snapshot().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let n = self.submits_with_transfers.load(Ordering::Relaxed);
        let total = self.sync_total_ns.load(Ordering::Relaxed);
        if n > 0 && total > 0 {
            let own = total.saturating_sub(self.sync_driver_ns.load(Ordering::Relaxed));
            line.push_str(&format!(" layer_ns_per_synced_submit={}", own / n));
        }
        let hazards = self.hazard_counts();
        if hazards.iter().any(|&(_, n)| n > 0) {
            for (k, n) in hazards {
                line.push_str(&format!(" hazard_{k}={n}"));
            }
        }
        line
    }

    fn hazard_counts(&self) -> Vec<(&'static str, u64)> {
        HazardKind::ALL.iter().map(|k| (k.key(), self.hazards[k.index()].load(Ordering::Relaxed))).collect()
    }

    /// The statistics as a document of device `device` (see
    /// [`document::StatsDocument`]).
    pub fn document(&self, device: &str, sequence: u64, is_final: bool) -> StatsDocument {
        let mut dma_bufs: Vec<DmaBufStats> = lock(&self.dma_bufs, Level::Stats).values().cloned().collect();
        dma_bufs.sort_by_key(|b| (b.st_dev, b.inode));
        let since_epoch =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        StatsDocument {
            schema: document::SCHEMA.to_string(),
            layer_version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            process: process_name(),
            device: device.to_string(),
            sequence,
            is_final,
            time_unix_ms: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
            uptime_ms: u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX),
            counters: self.counters(),
            dma_bufs,
            histograms: Histograms {
                fence_wait_us: self.fence_wait_us.snapshot(),
                layer_ns_per_synced_submit: self.layer_ns_per_synced_submit.snapshot(),
            },
            hazards: self.hazard_counts().into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The executable's file name.
fn process_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
