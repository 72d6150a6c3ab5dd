//! Binding buffers and images to memory, and destroying them: which
//! resources live in external memory.

use ash::vk;

use crate::dispatch::Device;
use crate::registry::Resource;

fn bound(dev: &Device, resource: Resource, memory: vk::DeviceMemory) {
    if dev.state.with_memory(|t| t.bind(resource, memory)) {
        dev.state.count(|s| &s.external_binds);
        log_trace!(
            "{}: {resource:?} bound to external memory {:#x}",
            dev.state.name,
            vk::Handle::as_raw(memory)
        );
    }
}

pub fn bind_buffer(dev: &Device, buffer: vk::Buffer, memory: vk::DeviceMemory, offset: u64) -> vk::Result {
    let result = dev.bind_buffer_memory(buffer, memory, offset);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        bound(dev, Resource::Buffer(buffer), memory);
    }
    result
}

pub fn bind_image(dev: &Device, image: vk::Image, memory: vk::DeviceMemory, offset: u64) -> vk::Result {
    let result = dev.bind_image_memory(image, memory, offset);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        bound(dev, Resource::Image(image), memory);
    }
    result
}

pub fn bind_buffers(dev: &Device, infos: &[vk::BindBufferMemoryInfo<'_>]) -> vk::Result {
    let result = dev.bind_buffer_memory2(infos);
    // On failure the bindings' state is undefined (the spec); track none.
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        for i in infos {
            bound(dev, Resource::Buffer(i.buffer), i.memory);
        }
    }
    result
}

pub fn bind_images(dev: &Device, infos: &[vk::BindImageMemoryInfo<'_>]) -> vk::Result {
    let result = dev.bind_image_memory2(infos);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        for i in infos {
            bound(dev, Resource::Image(i.image), i.memory);
        }
    }
    result
}

fn destroyed(dev: &Device, resource: Resource) {
    if dev.state.has_external_memory() {
        dev.state.with_memory(|t| t.unbind(resource));
    }
}

pub fn destroy_buffer(dev: &Device, buffer: vk::Buffer, allocator: Option<&vk::AllocationCallbacks<'_>>) {
    destroyed(dev, Resource::Buffer(buffer));
    dev.destroy_buffer(buffer, allocator);
}

pub fn destroy_image(dev: &Device, image: vk::Image, allocator: Option<&vk::AllocationCallbacks<'_>>) {
    destroyed(dev, Resource::Image(image));
    dev.destroy_image(image, allocator);
}
