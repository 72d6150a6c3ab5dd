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
    /// Per batch index, the copies into the backing to run before it.
    pub copy_in: BTreeMap<usize, Vec<vk::CommandBuffer>>,
    /// The copies out of the backing to run after the last batch.
    pub copy_out: Vec<vk::CommandBuffer>,
    /// The attachments counted in flight for this submission.
    pub touched: Vec<vk::DeviceMemory>,
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
            Ok(Some(c)) => {
                copies.insert(h.memory, c);
                work.touched.push(h.memory);
            }
            Ok(None) => {}
            Err(e) => {
                finish(dev, &work.touched, None);
                return Err(e);
            }
        }
    }
    for (&batch, list) in &plan.acquires {
        for c in list.iter().filter_map(|h| copies.get(&h.memory)) {
            work.copy_in.entry(batch).or_default().push(c.copy_in);
            dev.state.count(|s| &s.copies_in);
        }
    }
    for c in plan.releases.iter().filter_map(|h| copies.get(&h.memory)) {
        work.copy_out.push(c.copy_out);
        dev.state.count(|s| &s.copies_out);
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
pub(super) fn finish(dev: &Device, touched: &[vk::DeviceMemory], used: Option<LastUse>) {
    if touched.is_empty() {
        return;
    }
    let now = Instant::now();
    dev.state.with_memory(|t| {
        for &m in touched {
            if let Some(d) = t.dynamic_mut(m) {
                d.finish_use(used, now);
            }
        }
    });
}
