//! Trampolines: command buffers, pools and barriers.

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::dispatch;
use crate::hooks::command;
use crate::views::barriers::Barriers;

pub(super) unsafe extern "system" fn allocate_command_buffers(
    device: vk::Device,
    p_allocate_info: *const vk::CommandBufferAllocateInfo<'_>,
    p_command_buffers: *mut vk::CommandBuffer,
) -> vk::Result {
    guard("vkAllocateCommandBuffers", vk::Result::ERROR_UNKNOWN, || {
        let dev =
            device_or_return!("vkAllocateCommandBuffers", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: a valid create info, per Vulkan valid usage.
        let Some(info) = (unsafe { p_allocate_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let out: &mut [vk::CommandBuffer] = if info.command_buffer_count == 0 || p_command_buffers.is_null() {
            &mut []
        } else {
            // SAFETY: the application provides room for
            // `command_buffer_count` handles (Vulkan valid usage).
            unsafe { std::slice::from_raw_parts_mut(p_command_buffers, info.command_buffer_count as usize) }
        };
        command::allocate(dev, info, out)
    })
}

pub(super) unsafe extern "system" fn free_command_buffers(
    device: vk::Device,
    pool: vk::CommandPool,
    count: u32,
    p_command_buffers: *const vk::CommandBuffer,
) {
    guard("vkFreeCommandBuffers", (), || {
        let dev = device_or_return!("vkFreeCommandBuffers", device);
        // SAFETY: `count` handles, per Vulkan valid usage.
        command::free(dev, pool, unsafe { slice(p_command_buffers, count) })
    })
}

pub(super) unsafe extern "system" fn begin_command_buffer(
    cb: vk::CommandBuffer,
    p_begin_info: *const vk::CommandBufferBeginInfo<'_>,
) -> vk::Result {
    guard("vkBeginCommandBuffer", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkBeginCommandBuffer", cb, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: a valid begin info, per Vulkan valid usage.
        let Some(info) = (unsafe { p_begin_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        command::begin(dev, cb, info)
    })
}

pub(super) unsafe extern "system" fn reset_command_buffer(
    cb: vk::CommandBuffer,
    flags: vk::CommandBufferResetFlags,
) -> vk::Result {
    guard("vkResetCommandBuffer", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkResetCommandBuffer", cb, vk::Result::ERROR_INITIALIZATION_FAILED);
        command::reset(dev, cb, flags)
    })
}

pub(super) unsafe extern "system" fn reset_command_pool(
    device: vk::Device,
    pool: vk::CommandPool,
    flags: vk::CommandPoolResetFlags,
) -> vk::Result {
    guard("vkResetCommandPool", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkResetCommandPool", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        command::reset_pool(dev, pool, flags)
    })
}

pub(super) unsafe extern "system" fn destroy_command_pool(
    device: vk::Device,
    pool: vk::CommandPool,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyCommandPool", (), || {
        let dev = device_or_return!("vkDestroyCommandPool", device);
        // SAFETY: the application's allocator (or null).
        command::destroy_pool(dev, pool, unsafe { p_allocator.as_ref() })
    })
}

/// `vkCmdPipelineBarrier`. The fast path (the device has no external memory,
/// so no barrier can be an ownership transfer the layer tracks, and the layer
/// does not emulate `VK_EXT_external_memory_acquire_unmodified`) goes straight
/// down with the application's arguments; it contains no panic site, so it
/// needs no guard, and compiles to a lookup and a tail call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn cmd_pipeline_barrier(
    cb: vk::CommandBuffer,
    src_stage: vk::PipelineStageFlags,
    dst_stage: vk::PipelineStageFlags,
    flags: vk::DependencyFlags,
    memory_count: u32,
    p_memory: *const vk::MemoryBarrier<'_>,
    buffer_count: u32,
    p_buffers: *const vk::BufferMemoryBarrier<'_>,
    image_count: u32,
    p_images: *const vk::ImageMemoryBarrier<'_>,
) {
    // SAFETY: the application passes a valid command buffer.
    if let Some(dev) = unsafe { dispatch::device(cb) } {
        if let (false, false, Some(f)) = (
            dev.state.has_external_memory(),
            dev.state.emulates_acquire_unmodified,
            dev.fns.cmd_pipeline_barrier,
        ) {
            // SAFETY: the application's arguments, unchanged, to the next
            // layer's vkCmdPipelineBarrier.
            return unsafe {
                f(
                    cb,
                    src_stage,
                    dst_stage,
                    flags,
                    memory_count,
                    p_memory,
                    buffer_count,
                    p_buffers,
                    image_count,
                    p_images,
                )
            };
        }
    }
    // SAFETY: forwarded.
    unsafe {
        cmd_pipeline_barrier_tracked(
            cb,
            src_stage,
            dst_stage,
            flags,
            memory_count,
            p_memory,
            buffer_count,
            p_buffers,
            image_count,
            p_images,
        )
    }
}

/// The slow path of [`cmd_pipeline_barrier`], kept out of line so the fast
/// path stays a tail call.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
unsafe fn cmd_pipeline_barrier_tracked(
    cb: vk::CommandBuffer,
    src_stage: vk::PipelineStageFlags,
    dst_stage: vk::PipelineStageFlags,
    flags: vk::DependencyFlags,
    memory_count: u32,
    p_memory: *const vk::MemoryBarrier<'_>,
    buffer_count: u32,
    p_buffers: *const vk::BufferMemoryBarrier<'_>,
    image_count: u32,
    p_images: *const vk::ImageMemoryBarrier<'_>,
) {
    guard("vkCmdPipelineBarrier", (), || {
        let dev = device_or_return!("vkCmdPipelineBarrier", cb);
        // SAFETY: each array holds its count of valid barriers (Vulkan valid usage).
        let (memory, buffers, images) = unsafe {
            (slice(p_memory, memory_count), slice(p_buffers, buffer_count), slice(p_images, image_count))
        };
        // SAFETY: each barrier's chain is valid for the call (Vulkan valid usage).
        let (buffers, images) = unsafe { (Barriers::new(buffers), Barriers::new(images)) };
        command::pipeline_barrier(dev, cb, src_stage, dst_stage, flags, memory, buffers, images)
    })
}

/// `vkCmdPipelineBarrier2`, with the same fast path as `vkCmdPipelineBarrier`.
pub(super) unsafe extern "system" fn cmd_pipeline_barrier2(
    cb: vk::CommandBuffer,
    p_info: *const vk::DependencyInfo<'_>,
) {
    // SAFETY: the application passes a valid command buffer.
    if let Some(dev) = unsafe { dispatch::device(cb) } {
        if let (false, false, Some(f)) = (
            dev.state.has_external_memory(),
            dev.state.emulates_acquire_unmodified,
            dev.fns.cmd_pipeline_barrier2,
        ) {
            // SAFETY: the application's arguments, unchanged, to the next
            // layer's vkCmdPipelineBarrier2.
            return unsafe { f(cb, p_info) };
        }
    }
    // SAFETY: forwarded.
    unsafe { cmd_pipeline_barrier2_tracked(cb, p_info) }
}

/// The slow path of [`cmd_pipeline_barrier2`], kept out of line.
#[inline(never)]
unsafe fn cmd_pipeline_barrier2_tracked(cb: vk::CommandBuffer, p_info: *const vk::DependencyInfo<'_>) {
    guard("vkCmdPipelineBarrier2", (), || {
        let dev = device_or_return!("vkCmdPipelineBarrier2", cb);
        // SAFETY: a valid dependency info (Vulkan valid usage).
        let Some(info) = (unsafe { p_info.as_ref() }) else {
            return;
        };
        // SAFETY: its arrays hold their counts of valid barriers.
        let (buffers, images) = unsafe {
            (
                slice(info.p_buffer_memory_barriers, info.buffer_memory_barrier_count),
                slice(info.p_image_memory_barriers, info.image_memory_barrier_count),
            )
        };
        // SAFETY: each barrier's chain is valid for the call (Vulkan valid usage).
        let (buffers, images) = unsafe { (Barriers::new(buffers), Barriers::new(images)) };
        command::pipeline_barrier2(dev, cb, info, buffers, images)
    })
}

pub(super) unsafe extern "system" fn cmd_execute_commands(
    cb: vk::CommandBuffer,
    count: u32,
    p_command_buffers: *const vk::CommandBuffer,
) {
    guard("vkCmdExecuteCommands", (), || {
        let dev = device_or_return!("vkCmdExecuteCommands", cb);
        // SAFETY: `count` handles, per Vulkan valid usage.
        command::execute_commands(dev, cb, unsafe { slice(p_command_buffers, count) })
    })
}
