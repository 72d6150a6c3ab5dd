//! Statistics: plain counters, kept only when `DYNABUF_STATS=1`, so the hot
//! paths pay one predictable branch and no shared cache line otherwise.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $what:literal),* $(,)?) => {
        /// Per-device counters.
        #[derive(Debug, Default)]
        pub struct DeviceStats {
            $( #[doc = $what] pub $name: AtomicU64, )*
        }

        impl DeviceStats {
            /// `name=value` pairs, in declaration order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($name), self.$name.load(Ordering::Relaxed)), )*]
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

impl DeviceStats {
    /// Adds one to a counter.
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
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
        line
    }
}
