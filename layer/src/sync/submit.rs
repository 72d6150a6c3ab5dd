//! Rewriting a submission: the layer's work goes into batches of its own,
//! never into the application's. Before an application batch that
//! acquires, a layer batch waits for the foreign fences and runs the
//! copies into dynamic attachments (or a *gate*, a command buffer holding
//! one full pipeline barrier, so the wait orders everything after it in
//! submission order); after the last batch, a layer batch runs the copies
//! out and signals the layer's semaphores (a signal's first scope is
//! everything earlier in submission order on the queue).
//!
//! Leaving the application's batches untouched keeps every structure
//! chained to them valid: `VkTimelineSemaphoreSubmitInfo`,
//! `VkDeviceGroupSubmitInfo` and `VkProtectedSubmitInfo` count or qualify
//! exactly the semaphores and command buffers the application gave.

use std::collections::BTreeMap;

use ash::vk;

use super::Wait;
use crate::dispatch::Device;

/// A layer batch to run just before application batch `i`.
#[derive(Debug, Default)]
pub struct Before {
    pub waits: Vec<Wait>,
    pub command_buffers: Vec<vk::CommandBuffer>,
}

/// What the layer adds to one submission.
#[derive(Debug)]
pub struct Additions<'a> {
    /// Per application batch index, the layer batch to run before it.
    pub before: &'a BTreeMap<usize, Before>,
    /// The layer's command buffers to run after the application's batches
    /// (copies out of dynamic attachments, before the release fence).
    pub after: &'a [vk::CommandBuffer],
    /// What the trailing batch signals (value 0: binary).
    pub signals: &'a [Wait],
}

impl Additions<'_> {
    fn has_trailing_batch(&self) -> bool {
        !self.after.is_empty() || !self.signals.is_empty()
    }
}

const STAGE: vk::PipelineStageFlags = vk::PipelineStageFlags::ALL_COMMANDS;

/// `vkQueueSubmit` with the additions.
pub fn submit_v1(
    dev: &Device,
    queue: vk::Queue,
    infos: &[vk::SubmitInfo<'_>],
    add: &Additions<'_>,
    fence: vk::Fence,
) -> vk::Result {
    struct Storage {
        semaphores: Vec<vk::Semaphore>,
        stages: Vec<vk::PipelineStageFlags>,
        values: Vec<u64>,
        timeline: bool,
    }
    let storage: Vec<(usize, &Before, Storage)> = add
        .before
        .iter()
        .map(|(&i, b)| {
            let s = Storage {
                semaphores: b.waits.iter().map(|w| w.semaphore).collect(),
                stages: b.waits.iter().map(|_| STAGE).collect(),
                values: b.waits.iter().map(|w| w.value).collect(),
                timeline: b.waits.iter().any(|w| w.value != 0),
            };
            (i, b, s)
        })
        .collect();
    let timelines: Vec<vk::TimelineSemaphoreSubmitInfo<'_>> = storage
        .iter()
        .map(|(_, _, s)| vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&s.values))
        .collect();
    let signal_semaphores: Vec<vk::Semaphore> = add.signals.iter().map(|w| w.semaphore).collect();
    let signal_values: Vec<u64> = add.signals.iter().map(|w| w.value).collect();
    let trailing_timeline =
        vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&signal_values);

    let mut out: Vec<vk::SubmitInfo<'_>> = Vec::with_capacity(infos.len() + storage.len() + 1);
    let mut pending = storage.iter().zip(&timelines).peekable();
    for (i, info) in infos.iter().enumerate() {
        while let Some(((_, b, s), t)) = pending.next_if(|((at, _, _), _)| *at <= i) {
            let mut batch = vk::SubmitInfo::default()
                .wait_semaphores(&s.semaphores)
                .wait_dst_stage_mask(&s.stages)
                .command_buffers(&b.command_buffers);
            if s.timeline {
                batch.p_next = (t as *const vk::TimelineSemaphoreSubmitInfo<'_>).cast();
            }
            out.push(batch);
        }
        out.push(*info);
    }
    if add.has_trailing_batch() {
        let mut trailing =
            vk::SubmitInfo::default().command_buffers(add.after).signal_semaphores(&signal_semaphores);
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
    let command_buffer_info =
        |cb: &vk::CommandBuffer| vk::CommandBufferSubmitInfo::default().command_buffer(*cb);
    let storage: Vec<(usize, Vec<vk::SemaphoreSubmitInfo<'_>>, Vec<vk::CommandBufferSubmitInfo<'_>>)> = add
        .before
        .iter()
        .map(|(&i, b)| {
            (
                i,
                b.waits.iter().map(semaphore_info).collect(),
                b.command_buffers.iter().map(command_buffer_info).collect(),
            )
        })
        .collect();
    let signals: Vec<vk::SemaphoreSubmitInfo<'_>> = add.signals.iter().map(semaphore_info).collect();
    let after: Vec<vk::CommandBufferSubmitInfo<'_>> = add.after.iter().map(command_buffer_info).collect();

    let mut out: Vec<vk::SubmitInfo2<'_>> = Vec::with_capacity(infos.len() + storage.len() + 1);
    let mut pending = storage.iter().peekable();
    for (i, info) in infos.iter().enumerate() {
        while let Some((_, waits, cbs)) = pending.next_if(|(at, _, _)| *at <= i) {
            out.push(vk::SubmitInfo2::default().wait_semaphore_infos(waits).command_buffer_infos(cbs));
        }
        out.push(*info);
    }
    if add.has_trailing_batch() {
        out.push(vk::SubmitInfo2::default().command_buffer_infos(&after).signal_semaphore_infos(&signals));
    }
    dev.queue_submit2(queue, &out, fence)
}
