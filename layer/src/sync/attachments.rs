//! The dynamic-attachment part of a submission: the eviction policy,
//! making the submission's attachments resident (re-validating them), the
//! copies in and out it must carry, and recording its use afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ash::vk;

use super::plan::Plan;
use super::{evict, revalidate};
use crate::dispatch::Device;
use crate::registry::dynamic::LastUse;
use crate::settings::EvictPolicy;

/// The dynamic-attachment work of one submission.
#[derive(Debug, Default)]
pub(super) struct DynamicWork {
    /// Per batch index, the copies into the backing to run first in it.
    pub copy_in: BTreeMap<usize, Vec<vk::CommandBuffer>>,
    /// Per batch index, the copies out of the backing to run last in it
    /// (the batch that releases: before its own signals).
    pub copy_out: BTreeMap<usize, Vec<vk::CommandBuffer>>,
    /// Read acquires to wait for before batch 0: never-filled backings
    /// copied in there (their copy must see the dma-buf's finished writes).
    pub fill_acquires: Vec<super::plan::Handover>,
    /// The attachments counted in flight for this submission (memory,
    /// generation).
    pub touched: Vec<(vk::DeviceMemory, u64)>,
}

/// Applies the eviction policy, makes the submission's dynamic
/// attachments resident, and lists their copies. On failure nothing stays
/// counted in flight.
pub(super) fn prepare(
    dev: &Device,
    queue: vk::Queue,
    plan: &Plan,
    count: u64,
    policy: EvictPolicy,
    timeout: Duration,
) -> Result<DynamicWork, vk::Result> {
    let has_dynamic = plan.handovers().any(|h| h.dynamic);
    if !has_dynamic && policy == EvictPolicy::Off {
        return Ok(DynamicWork::default());
    }
    evict::run(dev, &evict::choose(dev, plan, policy, count), timeout);
    if !has_dynamic {
        return Ok(DynamicWork::default());
    }
    let Some(family) = dev.state.queue_info(queue).map(|q| q.family) else {
        log_error!(
            "{}: a submission on queue {:#x}, which the layer never saw retrieved, uses a dynamic attachment",
            dev.state.name,
            vk::Handle::as_raw(queue)
        );
        return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
    };
    let mut work = DynamicWork::default();
    let mut copies = BTreeMap::new();
    for h in plan.handovers().filter(|h| h.dynamic) {
        if copies.contains_key(&h.memory) {
            continue;
        }
        match revalidate::for_submission(dev, h.memory, family, timeout) {
            Ok(Some((c, generation))) => {
                copies.insert(h.memory, c);
                work.touched.push((h.memory, generation));
            }
            Ok(None) => {}
            Err(e) => {
                finish(dev, &work.touched, None);
                return Err(e);
            }
        }
    }
    for (&batch, list) in &plan.acquires {
        for (h, c) in list.iter().filter_map(|h| Some((h, copies.get(&h.memory)?))) {
            work.copy_in.entry(batch).or_default().push(c.copy_in);
            dev.state.count(|s| &s.copies_in);
            dev.state.with_stats(|s| s.copied(h.key, c.extent.size, true));
        }
    }
    // A backing that never had the dma-buf's content, released without an
    // acquire here: copied in before the submission's first batch.
    // An acquire at or before the first release fills it anyway.
    let filled_first = |m: vk::DeviceMemory| {
        let first_acquire =
            plan.acquires.iter().find(|(_, l)| l.iter().any(|h| h.memory == m)).map(|(&b, _)| b);
        let first_release = plan
            .releases
            .iter()
            .filter(|h| h.memory == m)
            .flat_map(|h| h.release_batches.iter().copied())
            .min();
        match (first_acquire, first_release) {
            (Some(a), Some(r)) => a <= r,
            (Some(_), None) => true,
            (None, _) => false,
        }
    };
    let stale: Vec<vk::DeviceMemory> = dev.state.with_memory(|t| {
        work.touched
            .iter()
            .filter(|&&(m, g)| !filled_first(m) && t.dynamic_of(m, g).is_some_and(|d| d.stale))
            .map(|&(m, _)| m)
            .collect()
    });
    for m in stale {
        if let Some(c) = copies.get(&m) {
            work.copy_in.entry(0).or_default().insert(0, c.copy_in);
            dev.state.count(|s| &s.copies_in);
            if let Some(h) = plan.handovers().find(|h| h.memory == m) {
                dev.state.with_stats(|s| s.copied(h.key, c.extent.size, true));
            }
        }
        if let Some(h) = plan.releases.iter().find(|h| h.memory == m) {
            work.fill_acquires.push(super::plan::Handover { writes: false, batch: 0, ..h.clone() });
        }
    }
    for h in &plan.releases {
        let Some(c) = copies.get(&h.memory) else { continue };
        for &batch in &h.release_batches {
            work.copy_out.entry(batch).or_default().push(c.copy_out);
            dev.state.count(|s| &s.copies_out);
            dev.state.with_stats(|s| s.copied(h.key, c.extent.size, false));
        }
    }
    if let Some(stats) = &dev.state.stats {
        let resident: u64 = dev
            .state
            .with_memory(|t| t.dynamics_mut().filter(|(_, d)| d.is_resident()).map(|(_, d)| d.size).sum());
        stats.resident_peak_bytes.fetch_max(resident, Ordering::Relaxed);
    }
    Ok(work)
}

/// Ends the submission's use of its dynamic attachments: `Some` with its
/// retire point once submitted, `None` when it failed.
pub(super) fn finish(dev: &Device, touched: &[(vk::DeviceMemory, u64)], used: Option<LastUse>) {
    if touched.is_empty() {
        return;
    }
    let now = Instant::now();
    dev.state.with_memory(|t| {
        for &(m, generation) in touched {
            if let Some(d) = t.dynamic_of(m, generation) {
                d.finish_use(used, now);
            }
        }
    });
}
