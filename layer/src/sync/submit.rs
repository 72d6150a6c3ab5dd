//! Rewriting a submission: the application's batches get the layer's waits
//! appended (in the batch whose command buffers acquire), and a trailing
//! batch with no command buffers signals the layer's semaphores. A
//! semaphore signal's first synchronisation scope is everything earlier in
//! submission order on the queue, so the trailing batch signals only when
//! the application's work is done, without touching its batches' signals.
//!
//! When a legacy batch needs timeline values and already chains a
//! `VkTimelineSemaphoreSubmitInfo`, the layer's extended copy is put first
//! in its pNext chain (drivers read the first one); the application's
//! structures are never written.

use std::collections::BTreeMap;

use ash::vk;

use super::Wait;
use crate::dispatch::Device;
use crate::entry::views::Submits;

/// What the layer adds to one submission.
#[derive(Debug)]
pub struct Additions<'a> {
    /// Per batch index, the waits to append.
    pub waits: &'a BTreeMap<usize, Vec<Wait>>,
    /// What the trailing batch signals (value 0: binary).
    pub signals: &'a [Wait],
    /// Per batch index, the layer's command buffers to run first (copies
    /// into dynamic attachments after the batch's waits).
    pub prepend: &'a BTreeMap<usize, Vec<vk::CommandBuffer>>,
    /// The layer's command buffers to run after the last batch's own
    /// (copies out of dynamic attachments before the release fence).
    pub append_last: &'a [vk::CommandBuffer],
}

impl Additions<'_> {
    /// The command buffers of batch `i` with the layer's around them, when
    /// the layer adds any.
    fn command_buffers(
        &self,
        i: usize,
        last: usize,
        app: &[vk::CommandBuffer],
    ) -> Option<Vec<vk::CommandBuffer>> {
        let pre = self.prepend.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let post = if i == last { self.append_last } else { &[] };
        if pre.is_empty() && post.is_empty() {
            return None;
        }
        Some(pre.iter().chain(app).chain(post).copied().collect())
    }
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
    // First pass: storage for every changed batch (nothing may move once
    // pointers into it are taken).
    struct Batch {
        index: usize,
        semaphores: Vec<vk::Semaphore>,
        stages: Vec<vk::PipelineStageFlags>,
        wait_values: Option<Vec<u64>>,
        signal_values: Vec<u64>,
    }
    let batches: Vec<Batch> = add
        .waits
        .iter()
        .filter(|(i, _)| **i < infos.len())
        .map(|(&index, ours)| {
            let (app_sems, app_stages) = submits.v1_waits(index);
            let app_timeline = submits.v1_timeline(index);
            let mut semaphores = app_sems.to_vec();
            semaphores.extend(ours.iter().map(|w| w.semaphore));
            let mut stages = app_stages.to_vec();
            stages.extend(ours.iter().map(|_| STAGE));
            let needs_values = app_timeline.is_some() || ours.iter().any(|w| w.value != 0);
            let wait_values = needs_values.then(|| {
                let mut v: Vec<u64> = app_timeline.map(|(w, _)| w.to_vec()).unwrap_or_default();
                v.resize(app_sems.len(), 0);
                v.extend(ours.iter().map(|w| w.value));
                v
            });
            let signal_values = app_timeline.map(|(_, s)| s.to_vec()).unwrap_or_default();
            Batch { index, semaphores, stages, wait_values, signal_values }
        })
        .collect();
    let timelines: Vec<Option<vk::TimelineSemaphoreSubmitInfo<'_>>> = batches
        .iter()
        .map(|b| {
            b.wait_values.as_ref().map(|wv| {
                let mut t = vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(wv)
                    .signal_semaphore_values(&b.signal_values);
                t.p_next = infos[b.index].p_next;
                t
            })
        })
        .collect();
    let last = infos.len().saturating_sub(1);
    let command_buffers: Vec<(usize, Vec<vk::CommandBuffer>)> = (0..infos.len())
        .filter_map(|i| add.command_buffers(i, last, &submits.batch_command_buffers(i)).map(|c| (i, c)))
        .collect();
    let mut out: Vec<vk::SubmitInfo<'_>> = infos.to_vec();
    for (i, cbs) in &command_buffers {
        out[*i].command_buffer_count = cbs.len() as u32;
        out[*i].p_command_buffers = cbs.as_ptr();
    }
    for (b, t) in batches.iter().zip(&timelines) {
        let info = &mut out[b.index];
        info.wait_semaphore_count = b.semaphores.len() as u32;
        info.p_wait_semaphores = b.semaphores.as_ptr();
        info.p_wait_dst_stage_mask = b.stages.as_ptr();
        if let Some(t) = t {
            info.p_next = (t as *const vk::TimelineSemaphoreSubmitInfo<'_>).cast();
        }
    }
    let signal_semaphores: Vec<vk::Semaphore> = add.signals.iter().map(|w| w.semaphore).collect();
    let signal_values: Vec<u64> = add.signals.iter().map(|w| w.value).collect();
    let mut trailing_timeline =
        vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&signal_values);
    if !signal_semaphores.is_empty() {
        let trailing =
            vk::SubmitInfo::default().signal_semaphores(&signal_semaphores).push_next(&mut trailing_timeline);
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
    let waits: Vec<(usize, Vec<vk::SemaphoreSubmitInfo<'_>>)> = add
        .waits
        .iter()
        .filter(|(i, _)| **i < infos.len())
        .map(|(&i, ours)| {
            let mut all = submits.v2_waits(i).to_vec();
            all.extend(ours.iter().map(semaphore_info));
            (i, all)
        })
        .collect();
    let last = infos.len().saturating_sub(1);
    let command_buffers: Vec<(usize, Vec<vk::CommandBufferSubmitInfo<'_>>)> = (0..infos.len())
        .filter_map(|i| {
            let cbs = add.command_buffers(i, last, &submits.batch_command_buffers(i))?;
            // The application's own entries keep their device masks.
            let app = submits.v2_command_buffer_infos(i);
            let pre = add.prepend.get(&i).map(Vec::len).unwrap_or(0);
            let infos = cbs
                .iter()
                .enumerate()
                .map(|(k, cb)| match k.checked_sub(pre).and_then(|a| app.get(a)) {
                    Some(own) => *own,
                    None => vk::CommandBufferSubmitInfo::default().command_buffer(*cb),
                })
                .collect();
            Some((i, infos))
        })
        .collect();
    let mut out: Vec<vk::SubmitInfo2<'_>> = infos.to_vec();
    for (i, cbs) in &command_buffers {
        out[*i].command_buffer_info_count = cbs.len() as u32;
        out[*i].p_command_buffer_infos = cbs.as_ptr();
    }
    for (i, all) in &waits {
        out[*i].wait_semaphore_info_count = all.len() as u32;
        out[*i].p_wait_semaphore_infos = all.as_ptr();
    }
    let signals: Vec<vk::SemaphoreSubmitInfo<'_>> = add.signals.iter().map(semaphore_info).collect();
    if !signals.is_empty() {
        out.push(vk::SubmitInfo2::default().signal_semaphore_infos(&signals));
    }
    dev.queue_submit2(queue, &out, fence)
}
