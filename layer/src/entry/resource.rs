//! Trampolines: binding and destroying buffers and images.

use ash::vk;

use super::{device_or_return, guard, slice};
use crate::hooks::resource;
use crate::registry::Planes;
use crate::views::images;

pub(super) unsafe extern "system" fn bind_buffer_memory(
    device: vk::Device,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guard("vkBindBufferMemory", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkBindBufferMemory", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        resource::bind_buffer(dev, buffer, memory, offset)
    })
}

pub(super) unsafe extern "system" fn bind_image_memory(
    device: vk::Device,
    image: vk::Image,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guard("vkBindImageMemory", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkBindImageMemory", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        resource::bind_image(dev, image, memory, offset)
    })
}

pub(super) unsafe extern "system" fn bind_buffer_memory2(
    device: vk::Device,
    count: u32,
    p_infos: *const vk::BindBufferMemoryInfo<'_>,
) -> vk::Result {
    guard("vkBindBufferMemory2", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkBindBufferMemory2", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: `count` valid structures, per Vulkan valid usage.
        resource::bind_buffers(dev, unsafe { slice(p_infos, count) })
    })
}

pub(super) unsafe extern "system" fn bind_image_memory2(
    device: vk::Device,
    count: u32,
    p_infos: *const vk::BindImageMemoryInfo<'_>,
) -> vk::Result {
    guard("vkBindImageMemory2", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkBindImageMemory2", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: `count` valid structures, per Vulkan valid usage.
        let infos = unsafe { slice(p_infos, count) };
        // SAFETY: each info's pNext chain is valid (Vulkan valid usage).
        let planes: Vec<Planes> = infos.iter().map(|i| unsafe { images::planes_of(i) }).collect();
        resource::bind_images(dev, infos, &planes)
    })
}

pub(super) unsafe extern "system" fn create_image(
    device: vk::Device,
    p_info: *const vk::ImageCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_image: *mut vk::Image,
) -> vk::Result {
    guard("vkCreateImage", vk::Result::ERROR_UNKNOWN, || {
        let dev = device_or_return!("vkCreateImage", device, vk::Result::ERROR_INITIALIZATION_FAILED);
        // SAFETY: valid pointers per Vulkan valid usage; the create info's
        // chain is valid, and the allocator is the application's (or null).
        let (info, allocator, image) = unsafe { (&*p_info, p_allocator.as_ref(), &mut *p_image) };
        // SAFETY: as above.
        let for_dma_buf = unsafe { images::for_dma_buf(info) };
        resource::create_image(dev, info, for_dma_buf, allocator, image)
    })
}

pub(super) unsafe extern "system" fn destroy_buffer(
    device: vk::Device,
    buffer: vk::Buffer,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyBuffer", (), || {
        let dev = device_or_return!("vkDestroyBuffer", device);
        // SAFETY: the application's allocator (or null).
        resource::destroy_buffer(dev, buffer, unsafe { p_allocator.as_ref() })
    })
}

pub(super) unsafe extern "system" fn destroy_image(
    device: vk::Device,
    image: vk::Image,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroyImage", (), || {
        let dev = device_or_return!("vkDestroyImage", device);
        // SAFETY: the application's allocator (or null).
        resource::destroy_image(dev, image, unsafe { p_allocator.as_ref() })
    })
}
