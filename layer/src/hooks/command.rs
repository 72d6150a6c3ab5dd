//! Command buffers: ownership-transfer barriers are recorded per command
//! buffer; beginning, resetting or freeing a command buffer (or resetting or
//! destroying its pool) forgets what it recorded.

use ash::vk;

use crate::dispatch::Device;
use crate::registry::transfers::{self, Barrier, CommandEvent, Direction, OwnershipTransfer};
use crate::registry::{Planes, Resource};

pub fn allocate(
    dev: &Device,
    info: &vk::CommandBufferAllocateInfo<'_>,
    out: &mut [vk::CommandBuffer],
) -> vk::Result {
    let result = dev.allocate_command_buffers(info, out);
    if result == vk::Result::SUCCESS {
        dev.state.with_commands(|log| log.allocated(info.command_pool, out));
    }
    result
}

pub fn free(dev: &Device, pool: vk::CommandPool, buffers: &[vk::CommandBuffer]) {
    dev.state.with_commands(|log| log.freed(pool, buffers));
    dev.free_command_buffers(pool, buffers);
}

pub fn begin(dev: &Device, cb: vk::CommandBuffer, info: &vk::CommandBufferBeginInfo<'_>) -> vk::Result {
    if dev.state.has_recorded_commands() {
        dev.state.with_commands(|log| log.clear(cb));
    }
    dev.begin_command_buffer(cb, info)
}

pub fn reset(dev: &Device, cb: vk::CommandBuffer, flags: vk::CommandBufferResetFlags) -> vk::Result {
    if dev.state.has_recorded_commands() {
        dev.state.with_commands(|log| log.clear(cb));
    }
    dev.reset_command_buffer(cb, flags)
}

pub fn reset_pool(dev: &Device, pool: vk::CommandPool, flags: vk::CommandPoolResetFlags) -> vk::Result {
    if dev.state.has_recorded_commands() {
        dev.state.with_commands(|log| log.pool_reset(pool));
    }
    dev.reset_command_pool(pool, flags)
}

pub fn destroy_pool(dev: &Device, pool: vk::CommandPool, allocator: Option<&vk::AllocationCallbacks<'_>>) {
    dev.state.with_commands(|log| log.pool_destroyed(pool));
    dev.destroy_command_pool(pool, allocator);
}

/// Keeps the transfers whose resource lives in external memory and records
/// them against `cb`.
fn record(dev: &Device, cb: vk::CommandBuffer, found: Vec<OwnershipTransfer>) {
    let found: Vec<_> =
        dev.state.with_memory(|t| found.into_iter().filter(|x| t.is_bound(x.resource)).collect());
    if found.is_empty() {
        return;
    }
    for x in &found {
        match x.direction {
            Direction::Acquire => dev.state.count(|s| &s.acquires_recorded),
            Direction::Release => dev.state.count(|s| &s.releases_recorded),
        }
        log_debug!(
            "{}: command buffer {:#x} records {:?} of {:?}{}",
            dev.state.name,
            vk::Handle::as_raw(cb),
            x.direction,
            x.resource,
            if x.writes { " (write)" } else { " (read)" }
        );
    }
    let hazards = dev.state.hazards.is_some();
    dev.state.with_commands(|log| {
        if hazards {
            log.record_events(cb, found.iter().map(|t| CommandEvent::Transfer(*t)));
        }
        log.record(cb, found)
    });
}

/// `vkCmdExecuteCommands`: the primary carries the ownership transfers its
/// secondaries recorded (they must be fully recorded by now, and
/// re-recording one invalidates the primary).
#[inline]
pub fn execute_commands(dev: &Device, cb: vk::CommandBuffer, secondaries: &[vk::CommandBuffer]) {
    if dev.state.has_recorded_commands() {
        dev.state.with_commands(|log| {
            let inherited: Vec<OwnershipTransfer> =
                secondaries.iter().flat_map(|s| log.transfers_of(*s).iter().copied()).collect();
            log.record(cb, inherited);
            let events: Vec<CommandEvent> =
                secondaries.iter().flat_map(|s| log.events_of(*s).iter().copied()).collect();
            log.record_events(cb, events);
        });
    }
    dev.cmd_execute_commands(cb, secondaries);
}

fn legacy_access(a: vk::AccessFlags) -> vk::AccessFlags2 {
    vk::AccessFlags2::from_raw(u64::from(a.as_raw()))
}

/// A barrier structure of `vkCmdPipelineBarrier` or `vkCmdPipelineBarrier2`,
/// as far as ownership transfers are concerned.
trait AsBarrier {
    fn as_barrier(&self) -> Barrier;
}

impl AsBarrier for vk::BufferMemoryBarrier<'_> {
    fn as_barrier(&self) -> Barrier {
        let access = (legacy_access(self.src_access_mask), legacy_access(self.dst_access_mask));
        Barrier::buffer(self.buffer, self.src_queue_family_index, self.dst_queue_family_index, access)
    }
}

impl AsBarrier for vk::BufferMemoryBarrier2<'_> {
    fn as_barrier(&self) -> Barrier {
        Barrier::buffer(
            self.buffer,
            self.src_queue_family_index,
            self.dst_queue_family_index,
            (self.src_access_mask, self.dst_access_mask),
        )
    }
}

/// An image barrier's fields (the two structures differ only in their
/// access type).
fn image_barrier(
    image: vk::Image,
    range: &vk::ImageSubresourceRange,
    families: (u32, u32),
    layouts: (vk::ImageLayout, vk::ImageLayout),
    (src_access, dst_access): (vk::AccessFlags2, vk::AccessFlags2),
) -> Barrier {
    Barrier {
        resource: Resource::Image(image),
        planes: Planes::of_aspect(range.aspect_mask),
        src_family: families.0,
        dst_family: families.1,
        src_access,
        dst_access,
        transitions_layout: layouts.0 != layouts.1,
        unmodified: false,
    }
}

impl AsBarrier for vk::ImageMemoryBarrier<'_> {
    fn as_barrier(&self) -> Barrier {
        image_barrier(
            self.image,
            &self.subresource_range,
            (self.src_queue_family_index, self.dst_queue_family_index),
            (self.old_layout, self.new_layout),
            (legacy_access(self.src_access_mask), legacy_access(self.dst_access_mask)),
        )
    }
}

impl AsBarrier for vk::ImageMemoryBarrier2<'_> {
    fn as_barrier(&self) -> Barrier {
        image_barrier(
            self.image,
            &self.subresource_range,
            (self.src_queue_family_index, self.dst_queue_family_index),
            (self.old_layout, self.new_layout),
            (self.src_access_mask, self.dst_access_mask),
        )
    }
}

/// Records the ownership transfers among one barrier command's barriers.
fn scan_and_record(
    dev: &Device,
    cb: vk::CommandBuffer,
    buffers: &[impl AsBarrier],
    images: &[impl AsBarrier],
) {
    let found: Vec<OwnershipTransfer> = buffers
        .iter()
        .map(AsBarrier::as_barrier)
        .chain(images.iter().map(AsBarrier::as_barrier))
        .filter_map(transfers::transfer_of)
        .collect();
    if !found.is_empty() {
        record(dev, cb, found);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
pub fn pipeline_barrier(
    dev: &Device,
    cb: vk::CommandBuffer,
    src_stage: vk::PipelineStageFlags,
    dst_stage: vk::PipelineStageFlags,
    flags: vk::DependencyFlags,
    memory: &[vk::MemoryBarrier<'_>],
    buffers: &[vk::BufferMemoryBarrier<'_>],
    images: &[vk::ImageMemoryBarrier<'_>],
) {
    if dev.state.has_external_memory() {
        scan_and_record(dev, cb, buffers, images);
    }
    dev.cmd_pipeline_barrier(cb, src_stage, dst_stage, flags, memory, buffers, images);
}

#[inline]
pub fn pipeline_barrier2(
    dev: &Device,
    cb: vk::CommandBuffer,
    info: &vk::DependencyInfo<'_>,
    buffers: &[vk::BufferMemoryBarrier2<'_>],
    images: &[vk::ImageMemoryBarrier2<'_>],
) {
    if dev.state.has_external_memory() {
        scan_and_record(dev, cb, buffers, images);
    }
    dev.cmd_pipeline_barrier2(cb, info);
}
