//! Queues: which family each queue belongs to, and submissions, where the
//! ownership transfers recorded in command buffers take effect.

use ash::vk;

use crate::dispatch::state::QueueInfo;
use crate::dispatch::Device;
use crate::registry::Direction;
use crate::sync::engine::Call;
use crate::sync::plan;
use crate::views::Submits;

pub fn get_queue(dev: &Device, family: u32, index: u32, queue: &mut vk::Queue) {
    dev.get_device_queue(family, index, queue);
    if *queue != vk::Queue::null() {
        dev.state.queue_retrieved(*queue, QueueInfo { family, index });
    }
}

pub fn get_queue2(dev: &Device, info: &vk::DeviceQueueInfo2<'_>, queue: &mut vk::Queue) {
    dev.get_device_queue2(info, queue);
    if *queue != vk::Queue::null() {
        dev.state
            .queue_retrieved(*queue, QueueInfo { family: info.queue_family_index, index: info.queue_index });
    }
}

/// Looks at what a submission's command buffers recorded. Only reached when
/// some command buffer of the device holds ownership transfers.
fn inspect(dev: &Device, queue: vk::Queue, submits: &Submits<'_>) {
    let (acquires, releases) = dev.state.with_commands(|log| {
        submits.command_buffers().flat_map(|cb| log.transfers_of(cb).iter()).fold((0, 0), |(a, r), t| match t
            .direction
        {
            Direction::Acquire => (a + 1, r),
            Direction::Release => (a, r + 1),
        })
    });
    if acquires + releases > 0 {
        dev.state.count(|s| &s.submits_with_transfers);
        let family = dev.state.queue_info(queue).map(|q| q.family);
        log_debug!(
            "{}: submission on queue {:#x} (family {family:?}) carries {acquires} acquire(s), {releases} release(s)",
            dev.state.name,
            vk::Handle::as_raw(queue),
        );
    }
}

/// Runs a submission through the sync engine when it hands dma-bufs over;
/// `None` when there is nothing for the engine to do.
fn synchronised(
    dev: &Device,
    queue: vk::Queue,
    submits: &Submits<'_>,
    call: Call<'_, '_>,
    fence: vk::Fence,
    written: Vec<(vk::DeviceMemory, bool)>,
) -> Option<vk::Result> {
    let engine = dev.state.sync::<crate::sync::SyncEngine>()?;
    let mut plan = plan::build(dev, submits, crate::settings::get().sync_scope);
    if plan.is_empty() {
        // The eviction policy runs at every submission of a device with
        // dynamic attachments, as amdkfd's does before user work.
        if dev.state.has_dynamic_attachments() {
            engine.submitted_without_handovers(dev, &written);
        }
        return None;
    }
    plan.written = written;
    dev.state.count(|s| &s.submits_with_transfers);
    log_debug!(
        "{}: submission on queue {:#x} acquires {} and releases {} imported or exported memor(ies) of dma-bufs",
        dev.state.name,
        vk::Handle::as_raw(queue),
        plan.acquires.values().map(Vec::len).sum::<usize>(),
        plan.releases.len()
    );
    Some(engine.submit(dev, queue, submits, call, fence, &plan))
}

#[inline]
pub fn submit(
    dev: &Device,
    queue: vk::Queue,
    submits: Submits<'_>,
    infos: &[vk::SubmitInfo<'_>],
    fence: vk::Fence,
) -> vk::Result {
    dev.state.count(|s| &s.submits);
    let written = super::hazards::submitted(dev, queue, &submits);
    if let Some(r) = synchronised(dev, queue, &submits, Call::V1(infos), fence, written) {
        return r;
    }
    if dev.state.has_recorded_transfers() {
        inspect(dev, queue, &submits);
    }
    dev.queue_submit(queue, infos, fence)
}

#[inline]
pub fn submit2(
    dev: &Device,
    queue: vk::Queue,
    submits: Submits<'_>,
    infos: &[vk::SubmitInfo2<'_>],
    fence: vk::Fence,
) -> vk::Result {
    dev.state.count(|s| &s.submits);
    let written = super::hazards::submitted(dev, queue, &submits);
    if let Some(r) = synchronised(dev, queue, &submits, Call::V2(infos), fence, written) {
        return r;
    }
    if dev.state.has_recorded_transfers() {
        inspect(dev, queue, &submits);
    }
    dev.queue_submit2(queue, infos, fence)
}
