//! Trampolines: memory allocation, freeing and fd export.

use ash::vk;

use super::{device_or_return, guard};
use crate::hooks::memory::{self, AllocationChain};
use crate::pnext;

pub(super) unsafe extern "system" fn allocate_memory(
    device: vk::Device,
    p_allocate_info: *const vk::MemoryAllocateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_memory: *mut vk::DeviceMemory,
) -> vk::Result {
    guard("vkAllocateMemory", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkAllocateMemory", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: valid pointers per Vulkan valid usage (allocator may be null).
        let (Some(info), Some(out), allocator) =
            (unsafe { (p_allocate_info.as_ref(), p_memory.as_mut(), p_allocator.as_ref()) })
        else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: `info.p_next` is the application's valid chain.
        let chain = unsafe {
            AllocationChain {
                import_fd: pnext::find(info.p_next),
                export: pnext::find(info.p_next),
                dedicated: pnext::find(info.p_next),
            }
        };
        memory::allocate(dev, info, chain, allocator, out)
    })
}

pub(super) unsafe extern "system" fn free_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkFreeMemory", (), || {
        let dev = device_or_return!("vkFreeMemory", device);
        // SAFETY: the application's allocator (or null).
        memory::free(dev, memory, unsafe { p_allocator.as_ref() })
    })
}

pub(super) unsafe extern "system" fn get_memory_fd(
    device: vk::Device,
    p_get_fd_info: *const vk::MemoryGetFdInfoKHR<'_>,
    p_fd: *mut i32,
) -> vk::Result {
    guard("vkGetMemoryFdKHR", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkGetMemoryFdKHR", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: valid pointers per Vulkan valid usage.
        let (Some(info), Some(fd)) = (unsafe { (p_get_fd_info.as_ref(), p_fd.as_mut()) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        memory::get_fd(dev, info, fd)
    })
}
