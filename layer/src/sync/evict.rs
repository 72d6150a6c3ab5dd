//! Eviction (the kernel's `move_notify` / `invalidate_mappings`): which
//! dynamic attachments the policy picks, and dropping their internal
//! imports once every use has retired.
//!
//! Nothing is copied at eviction: the application's memory is the backing,
//! which stays, and the dma-buf gets the backing's content at the next
//! release (after re-validation). Copying at eviction would overwrite what
//! a peer wrote since this device's last release, as with a consumer that
//! acquires read-only and never releases.
//!
//! The lock rule: victims are taken out (`Moving`) under the memory lock,
//! waited for and freed without it, and the outcome put back under it.

use std::time::{Duration, Instant};

use ash::vk;

use super::plan::Plan;
use super::revalidate::drop_internal;
use crate::dispatch::Device;
use crate::registry::dynamic::{victims, Candidate, Internal, LastUse};
use crate::registry::DmaBufKey;
use crate::settings::EvictPolicy;

/// The attachments `policy` evicts before this submission (`count`: the
/// device's synchronised submissions so far, this one included).
pub fn choose(dev: &Device, plan: &Plan, policy: EvictPolicy, count: u64) -> Vec<vk::DeviceMemory> {
    if policy == EvictPolicy::Off {
        return Vec::new();
    }
    let in_plan: Vec<vk::DeviceMemory> = plan.handovers().map(|h| h.memory).collect();
    // every:N is the stress mode: it evicts even what this submission is
    // about to use, which is then re-validated.
    let every = matches!(policy, EvictPolicy::Every(_));
    let (candidates, incoming, resident_types) = dev.state.with_memory(|t| {
        let candidates: Vec<Candidate> = t
            .dynamics_mut()
            .filter(|(_, d)| d.evictable())
            .map(|(m, d)| Candidate {
                id: vk::Handle::as_raw(m),
                size: d.size,
                last_used_at: d.last_used_at,
                in_use: !every && in_plan.contains(&m),
            })
            .collect();
        let incoming: u64 = plan
            .handovers()
            .filter(|h| h.dynamic)
            .filter_map(|h| t.get(h.memory).and_then(|r| r.dynamic.as_ref()))
            .filter(|d| !d.is_resident() || every)
            .map(|d| d.size)
            .sum();
        let mut types: Vec<u32> =
            t.dynamics_mut().filter(|(_, d)| d.is_resident()).map(|(_, d)| d.memory_type).collect();
        types.sort_unstable();
        types.dedup();
        (candidates, incoming, types)
    });
    let mut chosen = victims(policy, count, Instant::now(), &candidates, incoming);
    // A budget also follows the driver's (asked without the lock): under
    // memory pressure every idle attachment goes.
    if let (EvictPolicy::Budget(_), Some(budget)) = (policy, dev.state.memory_budget) {
        if resident_types.iter().any(|&t| budget.over_budget(t)) {
            log_debug!(
                "{}: the driver reports its memory budget exceeded; evicting every idle attachment",
                dev.state.name
            );
            chosen = candidates.iter().filter(|c| !c.in_use).map(|c| c.id).collect();
        }
    }
    chosen.into_iter().map(<vk::DeviceMemory as vk::Handle>::from_raw).collect()
}

/// Waits (bounded: `timeout` for all queues together) for every use of an
/// import to retire.
fn retired(dev: &Device, uses: &[LastUse], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    uses.iter().all(|&(_, timeline, value)| {
        let left = deadline.saturating_duration_since(Instant::now());
        dev.wait_timeline(timeline, value, left.as_nanos() as u64) == vk::Result::SUCCESS
    })
}

/// Invalidates the attachments of `victims` that can go now (resident, not
/// in flight in another submission, not mapped): waits (bounded) until
/// their last uses are done and drops their internal imports. Returns how
/// many went.
pub fn run(dev: &Device, victims: &[vk::DeviceMemory], timeout: Duration) -> usize {
    if victims.is_empty() {
        return 0;
    }
    type Taken = (vk::DeviceMemory, u64, DmaBufKey, Internal, Vec<LastUse>);
    let taken: Vec<Taken> = dev.state.with_memory(|t| {
        victims
            .iter()
            .filter_map(|&m| {
                let key = t.get(m).and_then(|r| r.dma_buf.as_ref()).map(|d| d.key)?;
                let d = t.dynamic_mut(m)?;
                let generation = d.generation;
                let (internal, uses) = d.begin_evict()?;
                Some((m, generation, key, internal, uses))
            })
            .collect()
    });
    let mut evicted = 0;
    // Each victim goes back as soon as it is done, so a submission that
    // needs one waits for that one only.
    for (m, generation, key, internal, uses) in taken {
        let outcome = if retired(dev, &uses, timeout) {
            drop_internal(dev, internal);
            dev.state.count(|s| &s.evictions);
            dev.state.with_stats(|s| s.evicted(key));
            log_debug!("{}: {key} invalidated (internal import dropped)", dev.state.name);
            evicted += 1;
            Ok(())
        } else {
            log_warn!("{}: {key} stayed busy past the fence timeout; not evicted", dev.state.name);
            Err(internal)
        };
        let orphan = dev.state.with_memory(|t| match t.dynamic_of(m, generation) {
            Some(d) => {
                d.end_evict(outcome);
                None
            }
            // Freed by the application meanwhile (it must not be, while in
            // use): nothing to put back.
            None => outcome.err(),
        });
        if let Some(i) = orphan {
            drop_internal(dev, i);
        }
    }
    evicted
}
