//! Making a dma-buf import a dynamic attachment (`layer/DESIGN.md`, "Dynamic
//! attachments"): the driver imports the dma-buf as the
//! layer's *internal* memory, and the application gets a plain *backing*
//! allocation of the same size and type, which its resources bind to. The
//! layer copies dma-buf → backing at each acquire and backing → dma-buf at
//! each release, so the internal import can be dropped (evicted) between
//! uses and re-imported from the kept fd (re-validated).
//!
//! What can't be handled this way stays pinned (the application's memory is
//! the driver's import), with a debug line saying why.

use ash::vk::{self, Handle};

use crate::dispatch::Device;
use crate::registry::dynamic::{Dynamic, Internal, Residency};
use crate::settings::Settings;
use crate::views::AllocationChain;

/// Whether dma-buf imports may become dynamic attachments on `dev` (after
/// the sync engine is set up), or why not. Dynamic attachments are copied
/// at the hand-over points the sync engine acts on, on the submitting
/// queue: without the engine, or with a queue that cannot copy, nothing
/// would fill or save the backing, and every GPU read and write of the
/// dma-buf would be lost.
pub fn dynamic_support(dev: &Device, settings: &Settings) -> Result<(), &'static str> {
    if let Some(why) = settings.why_auto_pins() {
        log_info!("{}: {why}", dev.state.name);
        return Err(why);
    }
    if !settings.dynamic_attachments() {
        return Err("DYNABUF_ATTACH/DYNABUF_EVICT ask for pinned attachments");
    }
    if !dev.state.has_sync() {
        return Err(
            "implicit sync is off on this device, and dynamic attachments are copied at its hand-over points",
        );
    }
    if dev.state.queues.first_that_cannot_copy().is_some() {
        return Err("the device has a queue family that cannot copy (video or sparse-only)");
    }
    if dev.set_loader_data.is_none() {
        return Err("the loader gave no vkSetDeviceLoaderData for the layer's command buffers");
    }
    Ok(())
}

fn fd_identity(fd: i32) -> Option<crate::sys::dma_buf::Identity> {
    if fd < 0 {
        return None;
    }
    crate::sys::dup_raw(fd)
        .ok()
        .and_then(|d| crate::sys::dma_buf::identity(std::os::fd::AsFd::as_fd(&d)).ok())
}

/// Why an import can't be dynamic, if it can't.
pub fn pinned_because(
    dev: &Device,
    info: &vk::MemoryAllocateInfo<'_>,
    chain: &AllocationChain<'_>,
    allocator: Option<&vk::AllocationCallbacks<'_>>,
) -> Option<&'static str> {
    let flags = dev.state.memory_types.get(info.memory_type_index as usize).copied().unwrap_or_default();
    if flags.contains(vk::MemoryPropertyFlags::PROTECTED) {
        return Some("protected memory: the layer's transfer buffers would be unprotected");
    }
    if chain
        .dedicated
        .is_some_and(|d| d.buffer != vk::Buffer::null() && dev.buffer_requires_dedicated(d.buffer))
    {
        return Some(
            "the buffer requires memory dedicated to it, which the layer's transfer buffer can't share",
        );
    }
    let dedicated_image = chain.dedicated.map(|d| d.image).filter(|i| *i != vk::Image::null());
    let explicit = |i: vk::Image| {
        dev.state.with_memory(|t| t.image_info(i)).is_some_and(|info| info.has_explicit_layout())
    };
    if dedicated_image.is_some_and(|i| !explicit(i)) {
        return Some(
            "memory dedicated to an image without an explicit layout (OPTIMAL tiling): Vulkan leaves its \
             content undefined when its bytes are written through another resource, as the layer's copies do",
        );
    }
    if dedicated_image.is_some_and(|i| dev.image_requires_dedicated(i)) {
        return Some(
            "the image requires memory dedicated to it, which the layer's transfer buffer can't share \
             (an image twin for image copies is not built yet)",
        );
    }
    if allocator.is_some() {
        return Some("application allocation callbacks");
    }
    if chain.other_structures {
        return Some("the allocation chains structures the layer would have to copy");
    }
    if chain.export.is_some() {
        return Some("the import is also exportable: an export must give the dma-buf itself");
    }
    if info.allocation_size == 0 {
        return Some("zero-sized allocation");
    }
    None
}

/// Imports the dma-buf as internal memory and allocates the backing the
/// application will see. Returns the driver's result; on success `memory`
/// is the backing (dynamic) or the import itself (pinned fallback, logged).
/// A dedication (to a buffer, or to an image that does not require one) is
/// dropped from both allocations: it is a hint, and the layer binds its own
/// transfer buffers to them. Images are copied as bytes: an image shared
/// through a dma-buf is wholly in its memory (that is what lets a peer use
/// it), and the application's image is bound at the same offset of a
/// backing of the same memory type, so the same bytes are the same pixels.
pub fn import(
    dev: &Device,
    info: &vk::MemoryAllocateInfo<'_>,
    chain: &AllocationChain<'_>,
    memory: &mut vk::DeviceMemory,
) -> (vk::Result, Option<Dynamic>) {
    let Some(import) = chain.import_fd else {
        return (dev.allocate_memory(info, None, memory), None);
    };
    let mut own_import = vk::ImportMemoryFdInfoKHR::default().handle_type(import.handle_type).fd(import.fd);
    let internal_info = vk::MemoryAllocateInfo::default()
        .allocation_size(info.allocation_size)
        .memory_type_index(info.memory_type_index)
        .push_next(&mut own_import);
    let fd_before = fd_identity(import.fd);
    let mut internal = vk::DeviceMemory::null();
    let r = dev.allocate_memory(&internal_info, None, &mut internal);
    if r != vk::Result::SUCCESS {
        // The layer's import drops a dedication; the driver may need it.
        // Retry exactly as the application asked (pinned), if the failed
        // call left the fd as it was (some drivers close it on failure).
        if chain.dedicated.is_some() && fd_before.is_some() && fd_identity(import.fd) == fd_before {
            log_debug!(
                "{}: the layer's own import failed ({r:?}); importing as the application asked, pinned",
                dev.state.name
            );
            return (dev.allocate_memory(info, None, memory), None);
        }
        return (r, None);
    }
    let pinned = |why: String, memory: &mut vk::DeviceMemory| {
        log_debug!("{}: dma-buf import {:#x} stays pinned: {why}", dev.state.name, internal.as_raw());
        *memory = internal;
        (vk::Result::SUCCESS, None)
    };
    let size = info.allocation_size;
    // The application's resources were created for dma-buf memory, and
    // Vulkan wants them bound to memory of that handle type: make the
    // backing exportable as one where the driver can, plain otherwise.
    let mut export =
        vk::ExportMemoryAllocateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let exportable = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(info.memory_type_index)
        .push_next(&mut export);
    let plain =
        vk::MemoryAllocateInfo::default().allocation_size(size).memory_type_index(info.memory_type_index);
    let mut backing = vk::DeviceMemory::null();
    if let Some(e) = crate::fault::injected(crate::fault::Point::Backing) {
        return pinned(format!("no backing allocation ({e:?})"), memory);
    }
    // Only a handle type the driver offers may be asked for.
    let mut r = if dev.state.caps.dma_buf_export.yes() {
        dev.allocate_memory(&exportable, None, &mut backing)
    } else {
        vk::Result::ERROR_FEATURE_NOT_PRESENT
    };
    let exportable = r == vk::Result::SUCCESS;
    if !exportable {
        r = dev.allocate_memory(&plain, None, &mut backing);
    }
    if r != vk::Result::SUCCESS {
        return pinned(format!("no backing allocation ({r:?})"), memory);
    }
    // A buffer bound to exportable memory must name the handle type
    // (VUID-vkBindBufferMemory-memory-02726).
    let memory_type = info.memory_type_index;
    let buffers = dev.transfer_buffer(backing, memory_type, size, exportable).and_then(|b| {
        dev.transfer_buffer(internal, memory_type, size, true)
            .map(|i| (b, i))
            .inspect_err(|_| dev.destroy_buffer(b, None))
    });
    let (backing_buffer, internal_buffer) = match buffers {
        Ok(b) => b,
        Err(e) => {
            dev.free_memory(backing, None);
            return pinned(format!("no transfer buffer over the memory ({e:?})"), memory);
        }
    };
    *memory = backing;
    dev.state.count(|s| &s.dynamic_attachments);
    log_debug!(
        "{}: memory {:#x} is a dynamic attachment ({size} bytes; internal import {:#x})",
        dev.state.name,
        backing.as_raw(),
        internal.as_raw()
    );
    let dynamic =
        Dynamic::new(size, info.memory_type_index, backing_buffer, Internal::new(internal, internal_buffer));
    (vk::Result::SUCCESS, Some(dynamic))
}

/// Frees the layer's objects of a dynamic attachment whose backing the
/// application is freeing.
pub fn release(dev: &Device, d: &Dynamic) {
    // The application waited for its own work, which holds the layer's
    // copies; the layer's trailing batch may still be pending: wait for
    // every queue's last use (bounded) before freeing what it may touch.
    // One deadline for all queues: at most the fence timeout in all.
    let timeout = std::time::Duration::from_millis(crate::settings::get().fence_timeout_ms);
    let deadline = std::time::Instant::now() + timeout;
    for &(_, timeline, value) in &d.last_uses {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if dev.wait_timeline(timeline, value, left.as_nanos() as u64) != vk::Result::SUCCESS {
            log_warn!(
                "{}: a freed dynamic attachment was still in use past the fence timeout",
                dev.state.name
            );
        }
    }
    if let Residency::Resident(internal) = &d.residency {
        crate::sync::revalidate::drop_internal(dev, internal.clone());
    }
    dev.destroy_buffer(d.backing_buffer, None);
}

/// The memory the application's mapping of `memory` is of: a dynamic
/// attachment's mapped internal import, else `memory` itself.
pub fn mapped_memory(dev: &Device, memory: vk::DeviceMemory) -> vk::DeviceMemory {
    if !dev.state.has_external_memory() {
        return memory;
    }
    dev.state.with_memory(|t| t.dynamic_mut(memory).and_then(|d| d.mapped)).unwrap_or(memory)
}

/// `vkMapMemory`/`vkMapMemory2KHR`: a dynamic attachment maps its internal
/// import, so the CPU reads and writes the dma-buf itself (what a peer
/// sees), and it is kept resident while mapped. Other memory maps as usual.
/// Returns the memory to map, or the error to return.
pub fn map_target(dev: &Device, memory: vk::DeviceMemory) -> Result<vk::DeviceMemory, vk::Result> {
    if !dev.state.has_external_memory() {
        return Ok(memory);
    }
    let timeout = std::time::Duration::from_millis(crate::settings::get().fence_timeout_ms);
    match crate::sync::revalidate::for_mapping(dev, memory, timeout) {
        Ok(target) => Ok(target.unwrap_or(memory)),
        Err(e) => {
            log_warn!("{}: mapping a dynamic attachment: re-validation failed ({e:?})", dev.state.name);
            // What vkMapMemory may return.
            Err(match e {
                vk::Result::ERROR_OUT_OF_HOST_MEMORY | vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => e,
                _ => vk::Result::ERROR_MEMORY_MAP_FAILED,
            })
        }
    }
}

/// After the driver mapped `target` for `memory`: a failed map of a
/// dynamic attachment's import leaves it unmapped (evictable) again.
pub fn mapped(
    dev: &Device,
    memory: vk::DeviceMemory,
    target: vk::DeviceMemory,
    result: vk::Result,
) -> vk::Result {
    if result != vk::Result::SUCCESS && target != memory {
        unmap_target(dev, memory);
    }
    result
}

/// `vkUnmapMemory`/`vkUnmapMemory2KHR`: the memory to unmap (the mapped
/// internal import of a dynamic attachment, which may be evicted again).
pub fn unmap_target(dev: &Device, memory: vk::DeviceMemory) -> vk::DeviceMemory {
    if !dev.state.has_external_memory() {
        return memory;
    }
    dev.state.with_memory(|t| t.dynamic_mut(memory).and_then(Dynamic::unmap)).unwrap_or(memory)
}
