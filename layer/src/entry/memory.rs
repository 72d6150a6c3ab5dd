//! Trampolines: memory allocation, freeing, fd export, and host access
//! (mapping and flushing, which for a dynamic attachment act on its
//! internal import, the dma-buf itself).

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::dispatch::Device;
use crate::hooks::memory;
use crate::hooks::{attach, cpu_access};
use crate::views::AllocationChain;

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
        let chain = unsafe { AllocationChain::of(info) };
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
        match attach::map_target(dev, memory) {
            Ok(target) => {
                let r =
                    attach::mapped(dev, memory, target, dev.map_memory(target, offset, size, flags, data));
                cpu_access::mapped(dev, memory, r)
            }
            Err(e) => e,
        }
    })
}

pub(super) unsafe extern "system" fn map_memory2(
    device: vk::Device,
    p_info: *const vk::MemoryMapInfoKHR<'_>,
    pp_data: *mut *mut std::ffi::c_void,
) -> vk::Result {
    guard("vkMapMemory2KHR", vk::Result::ERROR_MEMORY_MAP_FAILED, || {
        let dev = device_or_return!("vkMapMemory2KHR", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: valid pointers (Vulkan valid usage).
        let (Some(info), Some(data)) = (unsafe { (p_info.as_ref(), pp_data.as_mut()) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        match attach::map_target(dev, info.memory) {
            Ok(target) => {
                let r = dev.map_memory2(&vk::MemoryMapInfoKHR { memory: target, ..*info }, data);
                cpu_access::mapped(dev, info.memory, attach::mapped(dev, info.memory, target, r))
            }
            Err(e) => e,
        }
    })
}

pub(super) unsafe extern "system" fn unmap_memory(device: vk::Device, memory: vk::DeviceMemory) {
    guard("vkUnmapMemory", (), || {
        let dev = device_or_return!("vkUnmapMemory", device);
        cpu_access::unmapping(dev, memory);
        dev.unmap_memory(attach::unmap_target(dev, memory))
    })
}

pub(super) unsafe extern "system" fn unmap_memory2(
    device: vk::Device,
    p_info: *const vk::MemoryUnmapInfoKHR<'_>,
) -> vk::Result {
    guard("vkUnmapMemory2KHR", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkUnmapMemory2KHR", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: a valid pointer (Vulkan valid usage).
        let Some(info) = (unsafe { p_info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        cpu_access::unmapping(dev, info.memory);
        let target = attach::unmap_target(dev, info.memory);
        dev.unmap_memory2(&vk::MemoryUnmapInfoKHR { memory: target, ..*info })
    })
}

/// The ranges with each dynamic attachment's memory replaced by its mapped
/// internal import (`None`: nothing to replace).
fn mapped_ranges<'a>(
    dev: &Device,
    ranges: &[vk::MappedMemoryRange<'a>],
) -> Option<Vec<vk::MappedMemoryRange<'a>>> {
    if !dev.state.has_external_memory() {
        return None;
    }
    let out: Vec<_> = ranges
        .iter()
        .map(|r| vk::MappedMemoryRange { memory: attach::mapped_memory(dev, r.memory), ..*r })
        .collect();
    (out.iter().zip(ranges).any(|(a, b)| a.memory != b.memory)).then_some(out)
}

/// Which of the two range calls, for [`mapped_ranges_call`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeCall {
    Flush,
    Invalidate,
}

/// `vkFlushMappedMemoryRanges` and `vkInvalidateMappedMemoryRanges`: the
/// ranges of dynamic attachments name their mapped import, and CPU access
/// to dma-bufs is bracketed (an invalidate starts a read before the call,
/// a flush ends the writes after it).
///
/// # Safety
/// `p_ranges` holds `count` valid ranges (Vulkan valid usage).
unsafe fn mapped_ranges_call(
    which: RangeCall,
    device: vk::Device,
    count: u32,
    p_ranges: *const vk::MappedMemoryRange<'_>,
) -> vk::Result {
    let call = match which {
        RangeCall::Flush => "vkFlushMappedMemoryRanges",
        RangeCall::Invalidate => "vkInvalidateMappedMemoryRanges",
    };
    guard(call, vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a valid device handle (Vulkan valid usage).
        let Some(dev) = (unsafe { crate::dispatch::device(device) }) else {
            super::unknown_handle(call);
            return vk::Result::ERROR_OUT_OF_HOST_MEMORY;
        };
        // SAFETY: forwarded from this function's contract.
        let ranges = unsafe { slice(p_ranges, count) };
        let down = match which {
            RangeCall::Flush => Device::flush_mapped_memory_ranges,
            RangeCall::Invalidate => {
                cpu_access::invalidating(dev, ranges);
                Device::invalidate_mapped_memory_ranges
            }
        };
        let result = match mapped_ranges(dev, ranges) {
            Some(r) => down(dev, &r),
            None => down(dev, ranges),
        };
        if which == RangeCall::Flush && result == vk::Result::SUCCESS {
            cpu_access::flushed(dev, ranges);
        }
        result
    })
}

pub(super) unsafe extern "system" fn flush_mapped_memory_ranges(
    device: vk::Device,
    count: u32,
    p_ranges: *const vk::MappedMemoryRange<'_>,
) -> vk::Result {
    // SAFETY: the application's arguments (Vulkan valid usage).
    unsafe { mapped_ranges_call(RangeCall::Flush, device, count, p_ranges) }
}

pub(super) unsafe extern "system" fn invalidate_mapped_memory_ranges(
    device: vk::Device,
    count: u32,
    p_ranges: *const vk::MappedMemoryRange<'_>,
) -> vk::Result {
    // SAFETY: the application's arguments (Vulkan valid usage).
    unsafe { mapped_ranges_call(RangeCall::Invalidate, device, count, p_ranges) }
}
