//! The dynamic-attachment part of a submission: the eviction policy, making
//! the submission's attachments resident (re-validating them), the copies
//! in and out it must carry, and recording its use afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ash::vk;

use super::plan::Plan;
use super::residency;
use crate::config::EvictPolicy;
use crate::dispatch::Device;
use crate::registry::dynamic::{victims, Candidate};

/// The dynamic-attachment work of one submission.
#[derive(Debug, Default)]
pub(super) struct DynamicWork {
    pub prepend: BTreeMap<usize, Vec<vk::CommandBuffer>>,
    pub append: Vec<vk::CommandBuffer>,
    /// (memory, acquired, released)
    pub touched: Vec<(vk::DeviceMemory, bool, bool)>,
}

/// Applies the eviction policy, makes the submission's dynamic
/// attachments resident, and lists their copies.
pub(super) fn prepare(
    dev: &Device,
    queue: vk::Queue,
    plan: &Plan,
    count: u64,
    evict: EvictPolicy,
    timeout: Duration,
) -> Result<DynamicWork, vk::Result> {
    let has_dynamic = plan.acquires.values().flatten().chain(&plan.releases).any(|h| h.dynamic);
    if !has_dynamic && evict == EvictPolicy::Off {
        return Ok(DynamicWork::default());
    }
    let family = dev.state.queue_info(queue).map(|q| q.family).unwrap_or(0);
    let mut work = DynamicWork::default();
    dev.state.with_memory(|t| {
        if evict != EvictPolicy::Off {
            let in_plan: Vec<vk::DeviceMemory> =
                plan.acquires.values().flatten().chain(&plan.releases).map(|h| h.memory).collect();
            // every:N is the stress mode: it evicts even what this
            // submission is about to use, which is then re-validated.
            let every = matches!(evict, EvictPolicy::Every(_));
            let candidates: Vec<Candidate> = t
                .dynamics_mut()
                .filter(|(_, d)| d.internal.is_some())
                .map(|(m, d)| Candidate {
                    id: vk::Handle::as_raw(m),
                    size: d.size,
                    last_used_at: d.last_used_at,
                    in_use: !every && in_plan.contains(&m),
                })
                .collect();
            let incoming: u64 = plan
                .acquires
                .values()
                .flatten()
                .chain(&plan.releases)
                .filter(|h| h.dynamic)
                .filter_map(|h| t.get(h.memory).and_then(|r| r.dynamic.as_ref()))
                .filter(|d| d.internal.is_none() || every)
                .map(|d| d.size)
                .sum();
            let mut chosen = victims(evict, count, std::time::Instant::now(), &candidates, incoming);
            // A budget also follows the driver's: under memory pressure
            // every idle attachment goes.
            if let (EvictPolicy::Budget(_), Some(budget)) = (evict, dev.state.memory_budget) {
                let pressured =
                    t.dynamics_mut().any(|(_, d)| d.internal.is_some() && budget.over_budget(d.memory_type));
                if pressured {
                    log_debug!(
                        "{}: the driver reports its memory budget exceeded; evicting every idle attachment",
                        dev.state.name
                    );
                    chosen = candidates.iter().filter(|c| !c.in_use).map(|c| c.id).collect();
                }
            }
            for id in chosen {
                let m = <vk::DeviceMemory as vk::Handle>::from_raw(id);
                let Some(key) = t.get(m).and_then(|r| r.dma_buf.as_ref()).map(|d| d.key) else {
                    continue;
                };
                if let Some(d) = t.dynamic_mut(m) {
                    residency::evict(dev, d, key, queue, timeout);
                }
            }
        }
        for (&batch, list) in &plan.acquires {
            for h in list.iter().filter(|h| h.dynamic) {
                let Some(d) = t.dynamic_mut(h.memory) else { continue };
                let internal = residency::ensure_resident(dev, d, h.key, &h.fd, family)?;
                work.prepend.entry(batch).or_default().push(internal.copy_in);
                work.touched.push((h.memory, true, false));
                dev.state.count(|s| &s.copies_in);
            }
        }
        for h in plan.releases.iter().filter(|h| h.dynamic) {
            let Some(d) = t.dynamic_mut(h.memory) else { continue };
            let internal = residency::ensure_resident(dev, d, h.key, &h.fd, family)?;
            work.append.push(internal.copy_out);
            work.touched.push((h.memory, false, true));
            dev.state.count(|s| &s.copies_out);
        }
        if let Some(stats) = &dev.state.stats {
            let resident: u64 =
                t.dynamics_mut().filter(|(_, d)| d.internal.is_some()).map(|(_, d)| d.size).sum();
            stats.resident_peak_bytes.fetch_max(resident, Ordering::Relaxed);
        }
        Ok(work)
    })
}

/// Records the submission's use of its dynamic attachments.
pub(super) fn finish(
    dev: &Device,
    touched: &[(vk::DeviceMemory, bool, bool)],
    last_use: (vk::Semaphore, u64, vk::Queue),
) {
    let now = std::time::Instant::now();
    dev.state.with_memory(|t| {
        for &(m, acquired, released) in touched {
            if let Some(d) = t.dynamic_mut(m) {
                d.last_use = Some(last_use);
                d.last_used_at = now;
                if acquired {
                    d.dirty = true;
                }
                if released {
                    d.dirty = false;
                }
            }
        }
    });
}
