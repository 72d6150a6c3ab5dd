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
            let import_fd: Option<&vk::ImportMemoryFdInfoKHR<'_>> = pnext::find(info.p_next);
            let export: Option<&vk::ExportMemoryAllocateInfo<'_>> = pnext::find(info.p_next);
            let dedicated: Option<&vk::MemoryDedicatedAllocateInfo<'_>> = pnext::find(info.p_next);
            let known = usize::from(import_fd.is_some())
                + usize::from(export.is_some())
                + usize::from(dedicated.is_some());
            AllocationChain {
                import_fd,
                export,
                dedicated,
                other_structures: pnext::nodes(info.p_next).count() > known,
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

pub(super) unsafe extern "system" fn map_memory(
    device: vk::Device,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
    size: vk::DeviceSize,
    flags: vk::MemoryMapFlags,
    pp_data: *mut *mut std::ffi::c_void,
) -> vk::Result {
    guard("vkMapMemory", vk::Result::ERROR_MEMORY_MAP_FAILED, || {
        let dev = device_or_return!("vkMapMemory", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: a valid out pointer (Vulkan valid usage).
        let Some(data) = (unsafe { pp_data.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        crate::hooks::attach::map(dev, memory, offset, size, flags, data)
    })
}

pub(super) unsafe extern "system" fn unmap_memory(device: vk::Device, memory: vk::DeviceMemory) {
    guard("vkUnmapMemory", (), || {
        let dev = device_or_return!("vkUnmapMemory", device);
        crate::hooks::attach::unmap(dev, memory)
    })
}
