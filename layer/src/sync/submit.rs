//! Putting the layer's work around the application's batches.
//!
//! Before an application batch that acquires, a layer batch waits for the
//! foreign fences and runs a *gate* (a command buffer holding one full
//! pipeline barrier, so the waits order everything after it in submission
//! order). The copies into dynamic attachments run first *inside* the
//! acquiring batch (after its own semaphore waits), the copies out last
//! inside the releasing batch (before its own semaphore signals), so the
//! application's semaphores order them as they order its own work. A
//! trailing layer batch signals the layer's semaphores (a signal's first
//! scope is everything earlier in submission order on the queue).
//!
//! The application's batches keep their waits, signals and pNext chains;
//! the layer only adds command buffers to a batch whose chain does not
//! count them (`VkDeviceGroupSubmitInfo`) and that is not protected. For
//! those, the copies go into batches of their own just before or after
//! (ordered by their barriers, but not by that batch's semaphores).

use std::collections::BTreeMap;

use ash::vk;

use super::Wait;
use crate::dispatch::Device;
use crate::views::Submits;

/// What the layer adds around application batch `i`.
#[derive(Debug, Default)]
pub struct AroundBatch {
    /// Waits for a layer batch just before it (with the gate).
    pub waits: Vec<Wait>,
    /// Command buffers to run first in it (copies in).
    pub first: Vec<vk::CommandBuffer>,
    /// Command buffers to run last in it (copies out).
    pub last: Vec<vk::CommandBuffer>,
}

/// What the layer adds to one submission.
#[derive(Debug)]
pub struct Additions<'a> {
    /// Per application batch index.
    pub around: &'a BTreeMap<usize, AroundBatch>,
    /// The gate command buffer for this queue's family (present whenever a
    /// batch gets waits).
    pub gate: Option<vk::CommandBuffer>,
    /// What the trailing batch signals (value 0: binary).
    pub signals: &'a [Wait],
}

/// How the layer's additions sit around one application batch.
struct Layout {
    /// The layer batch before it: waits and command buffers.
    before: Option<(Vec<Wait>, Vec<vk::CommandBuffer>)>,
    /// The batch's command buffers with the layer's in them, when changed.
    inside: Option<Vec<vk::CommandBuffer>>,
    /// A layer batch after it (copies out that could not go inside).
    after: Vec<vk::CommandBuffer>,
}

fn layout(i: usize, add: &Additions<'_>, submits: &Submits<'_>) -> Option<Layout> {
    let a = add.around.get(&i)?;
    let takes = submits.takes_layer_command_buffers(i);
    let mut before_cbs: Vec<vk::CommandBuffer> = Vec::new();
    if !a.waits.is_empty() {
        before_cbs.extend(add.gate);
    }
    let mut after = Vec::new();
    let inside = if takes && (!a.first.is_empty() || !a.last.is_empty()) {
        let app = submits.batch_command_buffers(i);
        Some(a.first.iter().chain(&app).chain(&a.last).copied().collect())
    } else {
        before_cbs.extend(&a.first);
        after.extend(&a.last);
        None
    };
    let before = (!a.waits.is_empty() || !before_cbs.is_empty()).then(|| (a.waits.clone(), before_cbs));
    Some(Layout { before, inside, after })
}

const STAGE: vk::PipelineStageFlags = vk::PipelineStageFlags::ALL_COMMANDS;

/// `vkQueueSubmit` with the additions.
pub fn submit_v1(
    dev: &Device,
    queue: vk::Queue,
    submits: &Submits<'_>,
    infos: &[vk::SubmitInfo<'_>],
    add: &Additions<'_>,
    fence: vk::Fence,
) -> vk::Result {
    struct Waits {
        semaphores: Vec<vk::Semaphore>,
        stages: Vec<vk::PipelineStageFlags>,
        values: Vec<u64>,
    }
    let layouts: Vec<Option<Layout>> = (0..infos.len()).map(|i| layout(i, add, submits)).collect();
    let waits: Vec<Option<Waits>> = layouts
        .iter()
        .map(|l| {
            let (w, _) = l.as_ref()?.before.as_ref()?;
            Some(Waits {
                semaphores: w.iter().map(|w| w.semaphore).collect(),
                stages: w.iter().map(|_| STAGE).collect(),
                values: w.iter().map(|w| w.value).collect(),
            })
        })
        .collect();
    let timelines: Vec<Option<vk::TimelineSemaphoreSubmitInfo<'_>>> = waits
        .iter()
        .map(|w| {
            let w = w.as_ref().filter(|w| w.values.iter().any(|&v| v != 0))?;
            Some(vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&w.values))
        })
        .collect();
    let signal_semaphores: Vec<vk::Semaphore> = add.signals.iter().map(|w| w.semaphore).collect();
    let signal_values: Vec<u64> = add.signals.iter().map(|w| w.value).collect();
    let trailing_timeline =
        vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&signal_values);

    let mut out: Vec<vk::SubmitInfo<'_>> = Vec::with_capacity(infos.len() * 2 + 1);
    for (i, info) in infos.iter().enumerate() {
        let Some(l) = &layouts[i] else {
            out.push(*info);
            continue;
        };
        if let (Some((_, cbs)), Some(w)) = (&l.before, &waits[i]) {
            let mut batch = vk::SubmitInfo::default()
                .wait_semaphores(&w.semaphores)
                .wait_dst_stage_mask(&w.stages)
                .command_buffers(cbs);
            if let Some(t) = &timelines[i] {
                batch.p_next = (t as *const vk::TimelineSemaphoreSubmitInfo<'_>).cast();
            }
            out.push(batch);
        }
        let mut own = *info;
        if let Some(cbs) = &l.inside {
            own.command_buffer_count = cbs.len() as u32;
            own.p_command_buffers = cbs.as_ptr();
        }
        out.push(own);
        if !l.after.is_empty() {
            out.push(vk::SubmitInfo::default().command_buffers(&l.after));
        }
    }
    if !signal_semaphores.is_empty() {
        let mut trailing = vk::SubmitInfo::default().signal_semaphores(&signal_semaphores);
        if signal_values.iter().any(|&v| v != 0) {
            trailing.p_next = (&trailing_timeline as *const vk::TimelineSemaphoreSubmitInfo<'_>).cast();
        }
        out.push(trailing);
    }
    dev.queue_submit(queue, &out, fence)
}

/// `vkQueueSubmit2` with the additions.
pub fn submit_v2(
    dev: &Device,
    queue: vk::Queue,
    submits: &Submits<'_>,
    infos: &[vk::SubmitInfo2<'_>],
    add: &Additions<'_>,
    fence: vk::Fence,
) -> vk::Result {
    let semaphore_info = |w: &Wait| {
        vk::SemaphoreSubmitInfo::default()
            .semaphore(w.semaphore)
            .value(w.value)
            .stage_mask(vk::PipelineStageFlags2::ALL_COMMANDS)
    };
    let cb_info = |cb: &vk::CommandBuffer| vk::CommandBufferSubmitInfo::default().command_buffer(*cb);
    struct Storage<'s> {
        waits: Vec<vk::SemaphoreSubmitInfo<'s>>,
        before: Vec<vk::CommandBufferSubmitInfo<'s>>,
        inside: Option<Vec<vk::CommandBufferSubmitInfo<'s>>>,
        /// The batch's own signals widened to every stage, when copies out
        /// run last in it (a narrower stage mask would leave the layer's
        /// transfer out of the signal's first scope).
        signals: Option<Vec<vk::SemaphoreSubmitInfo<'s>>>,
        after: Vec<vk::CommandBufferSubmitInfo<'s>>,
    }
    let storage: Vec<Option<Storage<'_>>> = (0..infos.len())
        .map(|i| {
            let l = layout(i, add, submits)?;
            let (waits, before) = l.before.as_ref().map_or((Vec::new(), Vec::new()), |(w, cbs)| {
                (w.iter().map(semaphore_info).collect(), cbs.iter().map(cb_info).collect())
            });
            // The application's own entries keep their device masks.
            let inside = l.inside.as_ref().map(|_| {
                let a = &add.around[&i];
                let app = submits.v2_command_buffer_infos(i);
                a.first
                    .iter()
                    .map(cb_info)
                    .chain(app.iter().copied())
                    .chain(a.last.iter().map(cb_info))
                    .collect()
            });
            let signals = (l.inside.is_some() && !add.around[&i].last.is_empty()).then(|| {
                let all = vk::PipelineStageFlags2::ALL_COMMANDS;
                submits
                    .v2_signals(i)
                    .iter()
                    .map(|s| vk::SemaphoreSubmitInfo { stage_mask: all, ..*s })
                    .collect()
            });
            Some(Storage { waits, before, inside, signals, after: l.after.iter().map(cb_info).collect() })
        })
        .collect();
    let signals: Vec<vk::SemaphoreSubmitInfo<'_>> = add.signals.iter().map(semaphore_info).collect();

    let mut out: Vec<vk::SubmitInfo2<'_>> = Vec::with_capacity(infos.len() * 2 + 1);
    for (i, info) in infos.iter().enumerate() {
        let Some(s) = &storage[i] else {
            out.push(*info);
            continue;
        };
        if !s.waits.is_empty() || !s.before.is_empty() {
            out.push(
                vk::SubmitInfo2::default().wait_semaphore_infos(&s.waits).command_buffer_infos(&s.before),
            );
        }
        let mut own = *info;
        if let Some(cbs) = &s.inside {
            own.command_buffer_info_count = cbs.len() as u32;
            own.p_command_buffer_infos = cbs.as_ptr();
        }
        if let Some(signals) = &s.signals {
            own.p_signal_semaphore_infos = signals.as_ptr();
        }
        out.push(own);
        if !s.after.is_empty() {
            out.push(vk::SubmitInfo2::default().command_buffer_infos(&s.after));
        }
    }
    if !signals.is_empty() {
        out.push(vk::SubmitInfo2::default().signal_semaphore_infos(&signals));
    }
    dev.queue_submit2(queue, &out, fence)
}
