//! Trampolines: semaphores. The layer notes which are timelines, so a
//! submission that waits for a timeline value nobody has signalled yet
//! (the application will, from the host, after the call) is not made to
//! export a release fence that could only come once it has.

use ash::vk;

use super::{device_or_return, guard};
use crate::views::pnext;

pub(super) unsafe extern "system" fn create_semaphore(
    device: vk::Device,
    p_create_info: *const vk::SemaphoreCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_semaphore: *mut vk::Semaphore,
) -> vk::Result {
    guard("vkCreateSemaphore", vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        let dev = device_or_return!("vkCreateSemaphore", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: valid pointers per Vulkan valid usage (allocator may be null).
        let (Some(info), Some(out), allocator) =
            (unsafe { (p_create_info.as_ref(), p_semaphore.as_mut(), p_allocator.as_ref()) })
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: the application's valid chain.
        let kind: Option<&vk::SemaphoreTypeCreateInfo<'_>> = unsafe { pnext::find(info.p_next) };
        let r = dev.create_semaphore_for_app(info, allocator, out);
        if r == vk::Result::SUCCESS && kind.is_some_and(|k| k.semaphore_type == vk::SemaphoreType::TIMELINE) {
            dev.state.app_semaphore(*out, true);
        }
        r
    })
}

pub(super) unsafe extern "system" fn destroy_semaphore(
    device: vk::Device,
    semaphore: vk::Semaphore,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroySemaphore", (), || {
        let dev = device_or_return!("vkDestroySemaphore", device);
        dev.state.app_semaphore(semaphore, false);
        // SAFETY: the application's allocator (or null), valid per usage.
        dev.destroy_semaphore_for_app(semaphore, unsafe { p_allocator.as_ref() })
    })
}
