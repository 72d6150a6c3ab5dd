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
use crate::registry::dynamic::{copies_needed, Contents, CopiesNeeded, LastUse, Step, Watched};
use crate::registry::{CopyExtent, Span};
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
    /// generation): those it copies, which needed their imports resident.
    pub touched: Vec<(vk::DeviceMemory, u64)>,
    /// What each attachment's backing holds once the submission has run
    /// (memory, generation, contents, the contents' epoch they were computed
    /// at), set when it was submitted.
    pub settle: Vec<Settled>,
}

/// See [`DynamicWork::settle`].
pub(super) type Settled = (vk::DeviceMemory, u64, Contents, u64);

/// Each dynamic attachment's hand-overs in the plan.
fn steps_of(plan: &Plan) -> BTreeMap<vk::DeviceMemory, Vec<Step>> {
    let mut steps: BTreeMap<vk::DeviceMemory, Vec<Step>> = BTreeMap::new();
    for (&batch, list) in &plan.acquires {
        for h in list.iter().filter(|h| h.dynamic) {
            let step = Step::Acquire { batch, writes: h.writes, unmodified: h.unmodified };
            steps.entry(h.memory).or_default().push(step);
        }
    }
    for h in plan.releases.iter().filter(|h| h.dynamic) {
        for &batch in &h.release_batches {
            steps.entry(h.memory).or_default().push(Step::Release { batch, src_writes: h.src_writes });
        }
    }
    steps
}

/// One attachment's copies for a submission: (memory, generation, copies,
/// the contents' epoch they were computed at).
type Needed = (vk::DeviceMemory, u64, CopiesNeeded, u64);

/// Which copies each dynamic attachment of the plan needs, from what its
/// backing holds. A written attachment the plan hands nothing over is
/// dirty from now on.
fn copies_of(dev: &Device, plan: &Plan, waits_ahead: bool) -> Vec<Needed> {
    let steps = steps_of(plan);
    let name = &dev.state.name;
    // Nothing watched: a release may follow writes the layer cannot see.
    let unseen = waits_ahead || dev.state.hazards.is_none();
    dev.state.with_memory(|t| {
        for (m, _) in plan.written.iter().filter(|(m, _)| !steps.contains_key(m)) {
            if let Some(d) = t.dynamic_mut(*m) {
                d.written();
            }
        }
        steps
            .iter()
            .filter_map(|(&m, steps)| {
                let size = t.dynamic_mut(m)?.size;
                let extent = match t.copy_extent(m, size) {
                    CopyExtent::Part(e) => e,
                    CopyExtent::Whole | CopyExtent::Nothing => Span { offset: 0, size },
                };
                let d = t.dynamic_mut(m)?;
                d.widen(extent);
                let trailing = plan.written.iter().find(|w| w.0 == m).map(|w| w.1);
                let watched =
                    Watched { writes: trailing.is_some(), trailing: trailing == Some(true), unseen };
                let needed = copies_needed(d.contents, steps, watched);
                if needed.overwrites_unreleased && !d.warned_overwrite {
                    d.warned_overwrite = true;
                    log_warn!(
                        "{name}: memory {:#x}: an acquire copies the dma-buf over writes this device never \
                         released (another resource bound to the same memory, or a wider binding); release \
                         every written resource before acquiring another of the same memory",
                        vk::Handle::as_raw(m)
                    );
                }
                Some((m, d.generation, needed, d.contents_epoch))
            })
            .collect()
    })
}

/// Applies the eviction policy, makes the dynamic attachments the
/// submission copies resident, and lists their copies. On failure nothing
/// stays counted in flight.
pub(super) fn prepare(
    dev: &Device,
    queue: vk::Queue,
    plan: &Plan,
    count: u64,
    (policy, waits_ahead): (EvictPolicy, bool),
    timeout: Duration,
) -> Result<DynamicWork, vk::Result> {
    let has_dynamic = plan.handovers().any(|h| h.dynamic);
    if !has_dynamic && !plan.written.is_empty() {
        written(dev, &plan.written);
    }
    if !has_dynamic && policy == EvictPolicy::Off {
        return Ok(DynamicWork::default());
    }
    evict::run(dev, &evict::choose(dev, plan, policy, count), timeout);
    if !has_dynamic {
        return Ok(DynamicWork::default());
    }
    let needs = copies_of(dev, plan, waits_ahead);
    let settle = needs.iter().filter_map(|(m, g, n, epoch)| Some((*m, *g, n.after?, *epoch))).collect();
    let mut work = DynamicWork { settle, ..DynamicWork::default() };
    if !needs.iter().any(|(_, _, n, _)| n.any()) {
        return Ok(work);
    }
    let Some(family) = dev.state.queue_info(queue).map(|q| q.family) else {
        log_error!(
            "{}: a submission on queue {:#x}, which the layer never saw retrieved, uses a dynamic attachment",
            dev.state.name,
            vk::Handle::as_raw(queue)
        );
        return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
    };
    for (memory, _, needed, _) in needs.iter().filter(|(_, _, n, _)| n.any()) {
        let c = match revalidate::for_submission(dev, *memory, family, timeout) {
            Ok(Some((c, generation))) => {
                work.touched.push((*memory, generation));
                c
            }
            Ok(None) => continue,
            Err(e) => {
                finish(dev, &work, None);
                return Err(e);
            }
        };
        let Some(h) = plan.handovers().find(|h| h.memory == *memory) else { continue };
        for &batch in &needed.copy_in {
            work.copy_in.entry(batch).or_default().push(c.copy_in);
            dev.state.count(|s| &s.copies_in);
            dev.state.with_stats(|s| s.copied(h.key, c.extent.size, true));
        }
        if needed.fill {
            // Copied in before the submission's first batch, after the
            // dma-buf's writers.
            work.copy_in.entry(0).or_default().insert(0, c.copy_in);
            dev.state.count(|s| &s.copies_in);
            dev.state.with_stats(|s| s.copied(h.key, c.extent.size, true));
            work.fill_acquires.push(super::plan::Handover { writes: false, batch: 0, ..h.clone() });
        }
        for &batch in &needed.copy_out {
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
/// retire point once submitted (what their backings hold is settled),
/// `None` when it failed.
pub(super) fn finish(dev: &Device, work: &DynamicWork, used: Option<LastUse>) {
    if work.touched.is_empty() && (used.is_none() || work.settle.is_empty()) {
        return;
    }
    let now = Instant::now();
    dev.state.with_memory(|t| {
        for &(m, generation) in &work.touched {
            if let Some(d) = t.dynamic_of(m, generation) {
                d.finish_use(used, now);
            }
        }
        if used.is_some() {
            settle(t, &work.settle);
        }
    });
}

/// A submission that copied nothing went down as it was: what its
/// attachments' backings hold is settled all the same.
pub(super) fn submitted_without_copies(dev: &Device, work: &DynamicWork) {
    if !work.settle.is_empty() {
        dev.state.with_memory(|t| settle(t, &work.settle));
    }
}

fn settle(t: &mut crate::registry::MemoryTable, settle: &[Settled]) {
    for &(m, generation, contents, epoch) in settle {
        if let Some(d) = t.dynamic_of(m, generation) {
            d.settle(contents, epoch);
        }
    }
}

/// A submission that hands nothing over wrote these dynamic attachments
/// (watched commands): their next release copies out.
pub(super) fn written(dev: &Device, written: &[(vk::DeviceMemory, bool)]) {
    dev.state.with_memory(|t| {
        for (m, _) in written {
            if let Some(d) = t.dynamic_mut(*m) {
                d.written();
            }
        }
    });
}
