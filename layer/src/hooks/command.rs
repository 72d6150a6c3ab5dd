//! Command buffers: ownership-transfer barriers are recorded per command
//! buffer; beginning, resetting or freeing a command buffer (or resetting or
//! destroying its pool) forgets what it recorded. Where the layer emulates
//! `VK_EXT_external_memory_acquire_unmodified`, barrier commands go down
//! without its structure.

use ash::vk;

use crate::dispatch::Device;
use crate::registry::transfers::{self, Barrier, CommandEvent, Direction, OwnershipTransfer};
use crate::registry::{Planes, Resource};
use crate::views::barriers::{Barriers, Chained, ChainedBarrier, Stripped};

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
            "{}: command buffer {:#x} records {:?} of {:?}{}{}",
            dev.state.name,
            vk::Handle::as_raw(cb),
            x.direction,
            x.resource,
            if x.writes { " (write)" } else { " (read)" },
            if x.unmodified { " (unmodified)" } else { "" }
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

/// `b`, with `unmodified` read from its chain when it is an acquire (the
/// only barriers whose chain is walked: the structure means nothing on
/// others).
#[inline]
fn with_unmodified(mut b: Barrier, chained: impl FnOnce() -> bool) -> Barrier {
    if transfers::classify(b.src_family, b.dst_family) == Some(Direction::Acquire) {
        b.unmodified = chained();
    }
    b
}

impl AsBarrier for Chained<'_, vk::BufferMemoryBarrier<'_>> {
    fn as_barrier(&self) -> Barrier {
        let b = self.get();
        let access = (legacy_access(b.src_access_mask), legacy_access(b.dst_access_mask));
        let barrier = Barrier::buffer(b.buffer, b.src_queue_family_index, b.dst_queue_family_index, access);
        with_unmodified(barrier, || self.acquire_unmodified())
    }
}

impl AsBarrier for Chained<'_, vk::BufferMemoryBarrier2<'_>> {
    fn as_barrier(&self) -> Barrier {
        let b = self.get();
        let barrier = Barrier::buffer(
            b.buffer,
            b.src_queue_family_index,
            b.dst_queue_family_index,
            (b.src_access_mask, b.dst_access_mask),
        );
        with_unmodified(barrier, || self.acquire_unmodified())
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

impl AsBarrier for Chained<'_, vk::ImageMemoryBarrier<'_>> {
    fn as_barrier(&self) -> Barrier {
        let b = self.get();
        let barrier = image_barrier(
            b.image,
            &b.subresource_range,
            (b.src_queue_family_index, b.dst_queue_family_index),
            (b.old_layout, b.new_layout),
            (legacy_access(b.src_access_mask), legacy_access(b.dst_access_mask)),
        );
        with_unmodified(barrier, || self.acquire_unmodified())
    }
}

impl AsBarrier for Chained<'_, vk::ImageMemoryBarrier2<'_>> {
    fn as_barrier(&self) -> Barrier {
        let b = self.get();
        let barrier = image_barrier(
            b.image,
            &b.subresource_range,
            (b.src_queue_family_index, b.dst_queue_family_index),
            (b.old_layout, b.new_layout),
            (b.src_access_mask, b.dst_access_mask),
        );
        with_unmodified(barrier, || self.acquire_unmodified())
    }
}

/// Records the ownership transfers among one barrier command's barriers.
fn scan_and_record<'a, B: ChainedBarrier, I: ChainedBarrier>(
    dev: &Device,
    cb: vk::CommandBuffer,
    buffers: Barriers<'a, B>,
    images: Barriers<'a, I>,
) where
    Chained<'a, B>: AsBarrier,
    Chained<'a, I>: AsBarrier,
{
    let found: Vec<OwnershipTransfer> = buffers
        .iter()
        .map(|b| b.as_barrier())
        .chain(images.iter().map(|b| b.as_barrier()))
        .filter_map(transfers::transfer_of)
        .collect();
    if !found.is_empty() {
        record(dev, cb, found);
    }
}

/// `vkCmdPipelineBarrier`: records the ownership transfers; where the layer
/// emulates `VK_EXT_external_memory_acquire_unmodified`, calls down with
/// copies of the barrier arrays without its structure (when one holds it).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn pipeline_barrier(
    dev: &Device,
    cb: vk::CommandBuffer,
    src_stage: vk::PipelineStageFlags,
    dst_stage: vk::PipelineStageFlags,
    flags: vk::DependencyFlags,
    memory: &[vk::MemoryBarrier<'_>],
    buffers: Barriers<'_, vk::BufferMemoryBarrier<'_>>,
    images: Barriers<'_, vk::ImageMemoryBarrier<'_>>,
) {
    if dev.state.has_external_memory() {
        scan_and_record(dev, cb, buffers, images);
    }
    if dev.state.emulates_acquire_unmodified {
        let (b, i) = (buffers.without_acquire_unmodified(), images.without_acquire_unmodified());
        if b.is_some() || i.is_some() {
            let b = b.as_ref().map_or(buffers.as_slice(), Stripped::barriers);
            let i = i.as_ref().map_or(images.as_slice(), Stripped::barriers);
            return dev.cmd_pipeline_barrier(cb, src_stage, dst_stage, flags, memory, b, i);
        }
    }
    dev.cmd_pipeline_barrier(cb, src_stage, dst_stage, flags, memory, buffers.as_slice(), images.as_slice());
}

/// `vkCmdPipelineBarrier2`, as [`pipeline_barrier`].
#[inline]
pub fn pipeline_barrier2(
    dev: &Device,
    cb: vk::CommandBuffer,
    info: &vk::DependencyInfo<'_>,
    buffers: Barriers<'_, vk::BufferMemoryBarrier2<'_>>,
    images: Barriers<'_, vk::ImageMemoryBarrier2<'_>>,
) {
    if dev.state.has_external_memory() {
        scan_and_record(dev, cb, buffers, images);
    }
    if dev.state.emulates_acquire_unmodified {
        let (b, i) = (buffers.without_acquire_unmodified(), images.without_acquire_unmodified());
        if b.is_some() || i.is_some() {
            let mut copy = *info;
            if let Some(b) = &b {
                copy.p_buffer_memory_barriers = b.barriers().as_ptr();
            }
            if let Some(i) = &i {
                copy.p_image_memory_barriers = i.barriers().as_ptr();
            }
            return dev.cmd_pipeline_barrier2(cb, &copy);
        }
    }
    dev.cmd_pipeline_barrier2(cb, info);
}
