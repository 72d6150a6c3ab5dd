//! Creating images, binding buffers and images to memory, and destroying
//! them: which resources live in external memory, which planes of a
//! disjoint image live where, and (for dynamic attachments) which bytes of
//! the memory they occupy.

use ash::vk;

use crate::dispatch::Device;
use crate::registry::{ImageInfo, Planes, Resource, Span};

/// Where `planes` of `resource`, bound at `offset`, lie in the memory; asked
/// of the driver only for a dynamic attachment, whose copies cover exactly
/// what is bound (two imports of one dma-buf, such as a disjoint image's
/// planes at two offsets, must not copy over each other's bytes).
fn span_of(dev: &Device, resource: Resource, planes: Planes, offset: u64) -> Option<Span> {
    let at = |start: u64, size: u64| Some(Span { offset: offset.checked_add(start)?, size });
    match resource {
        Resource::Buffer(b) => at(0, dev.buffer_size_in_memory(b)?),
        Resource::Image(i) => {
            let info = dev.state.with_memory(|t| t.image_info(i))?;
            match planes.single().filter(|_| info.disjoint) {
                None => at(0, dev.image_size_in_memory(i, None)?),
                Some(plane) if info.has_explicit_layout() => {
                    let layout = dev.image_plane_layout(i, info.plane_aspect(plane))?;
                    at(layout.offset, info.plane_bytes(&layout))
                }
                Some(plane) => at(0, dev.image_size_in_memory(i, Some(info.plane_aspect(plane)))?),
            }
        }
    }
}

/// Byte copies of an image whose layout is not explicit rely on the driver
/// keeping all of it in its memory, as dma-buf sharing does; Vulkan's
/// aliasing rules do not promise it. Said once per process.
fn warn_if_optimal(dev: &Device, resource: Resource) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Resource::Image(i) = resource else { return };
    let optimal = dev.state.with_memory(|t| t.image_info(i)).is_some_and(|info| !info.has_explicit_layout());
    if optimal && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        log_warn!(
            "{}: an OPTIMAL-tiled image is bound to a dynamic attachment; its copies are byte copies, \
             which Vulkan does not define for non-linear images (set DYNABUF_ATTACH=pinned if it shows wrong)",
            dev.state.name
        );
    }
}

fn bound(dev: &Device, resource: Resource, memory: vk::DeviceMemory, planes: Planes, offset: u64) {
    let span = match dev.state.with_memory(|t| t.is_dynamic(memory)) {
        true => {
            warn_if_optimal(dev, resource);
            span_of(dev, resource, planes, offset)
        }
        false => None,
    };
    if dev.state.with_memory(|t| t.bind(resource, memory, planes, span)) {
        dev.state.count(|s| &s.external_binds);
        log_trace!(
            "{}: {resource:?} ({planes:?}, {span:?}) bound to external memory {:#x}",
            dev.state.name,
            vk::Handle::as_raw(memory)
        );
    }
}

/// `for_dma_buf`: the image is created for dma-buf memory. Recorded whether
/// or not the device has external memory yet: applications create the
/// image, ask its requirements, and only then import its memory.
pub fn create_image(
    dev: &Device,
    info: &vk::ImageCreateInfo<'_>,
    for_dma_buf: bool,
    allocator: Option<&vk::AllocationCallbacks<'_>>,
    image: &mut vk::Image,
) -> vk::Result {
    let result = dev.create_image(info, allocator, image);
    if result == vk::Result::SUCCESS && for_dma_buf {
        let record = ImageInfo::new(info);
        dev.state.with_memory(|t| t.image_created(*image, record));
    }
    result
}

pub fn bind_buffer(dev: &Device, buffer: vk::Buffer, memory: vk::DeviceMemory, offset: u64) -> vk::Result {
    let result = dev.bind_buffer_memory(buffer, memory, offset);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        bound(dev, Resource::Buffer(buffer), memory, Planes::ALL, offset);
    }
    result
}

pub fn bind_image(dev: &Device, image: vk::Image, memory: vk::DeviceMemory, offset: u64) -> vk::Result {
    let result = dev.bind_image_memory(image, memory, offset);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        bound(dev, Resource::Image(image), memory, Planes::ALL, offset);
    }
    result
}

pub fn bind_buffers(dev: &Device, infos: &[vk::BindBufferMemoryInfo<'_>]) -> vk::Result {
    let result = dev.bind_buffer_memory2(infos);
    // On failure the bindings' state is undefined (the spec); track none.
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        for i in infos {
            bound(dev, Resource::Buffer(i.buffer), i.memory, Planes::ALL, i.memory_offset);
        }
    }
    result
}

/// `planes[i]`: what `infos[i]` binds (a plane of a disjoint image, or all).
pub fn bind_images(dev: &Device, infos: &[vk::BindImageMemoryInfo<'_>], planes: &[Planes]) -> vk::Result {
    let result = dev.bind_image_memory2(infos);
    if result == vk::Result::SUCCESS && dev.state.has_external_memory() {
        for (i, p) in infos.iter().zip(planes) {
            bound(dev, Resource::Image(i.image), i.memory, *p, i.memory_offset);
        }
    }
    result
}

fn destroyed(dev: &Device, resource: Resource) {
    // An image may be recorded before the device had external memory.
    if dev.state.has_external_memory() || matches!(resource, Resource::Image(_)) {
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
