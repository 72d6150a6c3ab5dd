//! Trampolines: queues and submission.

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::dispatch;
use crate::hooks::queue;
use crate::views::Submits;

pub(super) unsafe extern "system" fn get_device_queue(
    device: vk::Device,
    family: u32,
    index: u32,
    p_queue: *mut vk::Queue,
) {
    guard("vkGetDeviceQueue", (), || {
        let dev = device_or_return!("vkGetDeviceQueue", device);
        // SAFETY: a valid out pointer (Vulkan valid usage).
        let Some(out) = (unsafe { p_queue.as_mut() }) else {
            return;
        };
        queue::get_queue(dev, family, index, out)
    })
}

pub(super) unsafe extern "system" fn get_device_queue2(
    device: vk::Device,
    p_info: *const vk::DeviceQueueInfo2<'_>,
    p_queue: *mut vk::Queue,
) {
    guard("vkGetDeviceQueue2", (), || {
        let dev = device_or_return!("vkGetDeviceQueue2", device);
        // SAFETY: valid pointers (Vulkan valid usage).
        let (Some(info), Some(out)) = (unsafe { (p_info.as_ref(), p_queue.as_mut()) }) else {
            return;
        };
        queue::get_queue2(dev, info, out)
    })
}

/// `vkQueueSubmit`. The fast path (no command buffer of the device holds a
/// recorded ownership transfer, statistics off) goes straight down with the
/// application's arguments; it has no panic site, so it needs no guard.
pub(super) unsafe extern "system" fn queue_submit(
    q: vk::Queue,
    count: u32,
    p_submits: *const vk::SubmitInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    // SAFETY: the application passes a valid queue.
    if let Some(dev) = unsafe { dispatch::device(q) } {
        if let (true, Some(f)) = (dev.state.is_quiet(), dev.fns.queue_submit) {
            // SAFETY: the application's arguments, unchanged, to the next
            // layer's vkQueueSubmit.
            return unsafe { f(q, count, p_submits, fence) };
        }
    }
    // SAFETY: forwarded.
    unsafe { queue_submit_tracked(q, count, p_submits, fence) }
}

/// The slow path of [`queue_submit`], kept out of line so the fast path stays a
/// tail call.
#[inline(never)]
unsafe fn queue_submit_tracked(
    q: vk::Queue,
    count: u32,
    p_submits: *const vk::SubmitInfo<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueSubmit", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkQueueSubmit", q, vk::Result::ERROR_DEVICE_LOST);
        // SAFETY: `count` valid submit infos whose arrays are valid for the
        // call (Vulkan valid usage).
        let (infos, submits) = unsafe {
            let infos = slice(p_submits, count);
            (infos, Submits::v1(infos))
        };
        queue::submit(dev, q, submits, infos, fence)
    })
}

/// `vkQueueSubmit2`, with the same fast path as `vkQueueSubmit`.
pub(super) unsafe extern "system" fn queue_submit2(
    q: vk::Queue,
    count: u32,
    p_submits: *const vk::SubmitInfo2<'_>,
    fence: vk::Fence,
) -> vk::Result {
    // SAFETY: the application passes a valid queue.
    if let Some(dev) = unsafe { dispatch::device(q) } {
        if let (true, Some(f)) = (dev.state.is_quiet(), dev.fns.queue_submit2) {
            // SAFETY: the application's arguments, unchanged, to the next
            // layer's vkQueueSubmit2.
            return unsafe { f(q, count, p_submits, fence) };
        }
    }
    // SAFETY: forwarded.
    unsafe { queue_submit2_tracked(q, count, p_submits, fence) }
}

/// The slow path of [`queue_submit2`], kept out of line so the fast path stays a
/// tail call.
#[inline(never)]
unsafe fn queue_submit2_tracked(
    q: vk::Queue,
    count: u32,
    p_submits: *const vk::SubmitInfo2<'_>,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueSubmit2", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkQueueSubmit2", q, vk::Result::ERROR_DEVICE_LOST);
        // SAFETY: as for vkQueueSubmit.
        let (infos, submits) = unsafe {
            let infos = slice(p_submits, count);
            (infos, Submits::v2(infos))
        };
        queue::submit2(dev, q, submits, infos, fence)
    })
}
