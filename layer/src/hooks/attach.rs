//! Making a dma-buf import a dynamic attachment (DESIGN.md, "How a dynamic
//! attachment survives eviction"): the driver imports the dma-buf as the
//! layer's *internal* memory, and the application gets a plain *backing*
//! allocation of the same size and type, which its resources bind to. The
//! layer copies dma-buf → backing at each acquire and backing → dma-buf at
//! each release, so the internal import can be dropped (evicted) between
//! uses and re-imported from the kept fd (re-validated).
//!
//! What can't be handled this way stays pinned (the application's memory is
//! the driver's import), with a debug line saying why.

use std::time::Instant;

use ash::vk::{self, Handle};

use super::memory::AllocationChain;
use crate::dispatch::Device;
use crate::registry::dynamic::{Dynamic, Internal};

/// Why an import can't be dynamic, if it can't.
pub fn pinned_because(
    info: &vk::MemoryAllocateInfo<'_>,
    chain: &AllocationChain<'_>,
    allocator: Option<&vk::AllocationCallbacks<'_>>,
) -> Option<&'static str> {
    if chain.dedicated.is_some_and(|d| d.image != vk::Image::null()) {
        return Some("memory dedicated to an image can't back the layer's byte copies");
    }
    if allocator.is_some() {
        return Some("application allocation callbacks");
    }
    if chain.other_structures {
        return Some("the allocation chains structures the layer would have to copy");
    }
    if info.allocation_size == 0 {
        return Some("zero-sized allocation");
    }
    None
}

/// Imports the dma-buf as internal memory and allocates the backing the
/// application will see. Returns the driver's result; on success `memory`
/// is the backing (dynamic) or the import itself (pinned fallback, logged).
/// A dedication to a buffer is dropped from both allocations: it is a hint,
/// and the layer binds its own transfer buffers to them.
pub fn import(
    dev: &Device,
    info: &vk::MemoryAllocateInfo<'_>,
    import: &vk::ImportMemoryFdInfoKHR<'_>,
    memory: &mut vk::DeviceMemory,
) -> (vk::Result, Option<Dynamic>) {
    let mut own_import = vk::ImportMemoryFdInfoKHR::default().handle_type(import.handle_type).fd(import.fd);
    let internal_info = vk::MemoryAllocateInfo::default()
        .allocation_size(info.allocation_size)
        .memory_type_index(info.memory_type_index)
        .push_next(&mut own_import);
    let mut internal = vk::DeviceMemory::null();
    let r = dev.allocate_memory(&internal_info, None, &mut internal);
    if r != vk::Result::SUCCESS {
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
    let mut r = dev.allocate_memory(&exportable, None, &mut backing);
    if r != vk::Result::SUCCESS {
        r = dev.allocate_memory(&plain, None, &mut backing);
    }
    if r != vk::Result::SUCCESS {
        return pinned(format!("no backing allocation ({r:?})"), memory);
    }
    let buffers = dev.transfer_buffer(backing, size, false).and_then(|b| {
        dev.transfer_buffer(internal, size, true).map(|i| (b, i)).inspect_err(|_| dev.destroy_buffer(b, None))
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
    let dynamic = Dynamic {
        size,
        memory_type: info.memory_type_index,
        backing_buffer,
        internal: Some(Internal {
            memory: internal,
            buffer: internal_buffer,
            pool: vk::CommandPool::null(),
            copy_in: vk::CommandBuffer::null(),
            copy_out: vk::CommandBuffer::null(),
            family: u32::MAX,
        }),
        last_use: None,
        last_used_at: Instant::now(),
        dirty: false,
        mapped: false,
    };
    (vk::Result::SUCCESS, Some(dynamic))
}

/// Frees the layer's objects of a dynamic attachment whose backing the
/// application is freeing (it has waited for its work, as Vulkan requires).
pub fn release(dev: &Device, d: &Dynamic) {
    if let Some(internal) = d.internal {
        crate::sync::residency::drop_internal(dev, internal);
    }
    dev.destroy_buffer(d.backing_buffer, None);
}

/// `vkMapMemory`: a dynamic attachment maps its internal import, so the CPU
/// reads and writes the dma-buf itself (what a peer sees), and it is kept
/// resident while mapped. Other memory maps as usual.
pub fn map(
    dev: &Device,
    memory: vk::DeviceMemory,
    offset: u64,
    size: u64,
    flags: vk::MemoryMapFlags,
    data: &mut *mut std::ffi::c_void,
) -> vk::Result {
    if !dev.state.has_external_memory() {
        return dev.map_memory(memory, offset, size, flags, data);
    }
    let target = dev.state.with_memory(|t| {
        let key = t.get(memory).and_then(|r| r.dma_buf.as_ref()).map(|d| (d.key, d.fd.clone()));
        let d = t.dynamic_mut(memory)?;
        let (key, fd) = key?;
        let internal = crate::sync::residency::ensure_imported(dev, d, key, &fd);
        Some(internal.map(|i| {
            d.mapped = true;
            i.memory
        }))
    });
    match target {
        None => dev.map_memory(memory, offset, size, flags, data),
        Some(Ok(internal)) => dev.map_memory(internal, offset, size, flags, data),
        Some(Err(e)) => e,
    }
}

/// `vkUnmapMemory`.
pub fn unmap(dev: &Device, memory: vk::DeviceMemory) {
    if dev.state.has_external_memory() {
        let internal = dev.state.with_memory(|t| {
            let d = t.dynamic_mut(memory)?;
            d.mapped = false;
            d.internal.map(|i| i.memory)
        });
        if let Some(internal) = internal {
            return dev.unmap_memory(internal);
        }
    }
    dev.unmap_memory(memory)
}
