//! `vkAllocateMemory`, `vkFreeMemory`, `vkGetMemoryFdKHR`: which memory is
//! shared with the world outside this device.

use ash::vk;

use super::{attach, dma_bufs, prime};
use crate::dispatch::Device;
use crate::registry::{ExternalKind, ExternalMemory};
use crate::views::AllocationChain;

pub fn allocate(
    dev: &Device,
    info: &vk::MemoryAllocateInfo<'_>,
    chain: AllocationChain<'_>,
    allocator: Option<&vk::AllocationCallbacks<'_>>,
    memory: &mut vk::DeviceMemory,
) -> vk::Result {
    dev.state.count(|s| &s.allocations);
    let kind = chain.external_kind();
    // Read before calling down: a successful import hands the fd to the
    // driver. The layer keeps its own dup of an imported dma-buf (closed
    // again at once if the import fails or it is no dma-buf).
    let import_fd = chain.import_fd.map(|i| i.fd);
    let dma_buf = chain
        .import_fd
        .filter(|i| i.handle_type == vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)
        .and_then(|i| dma_bufs::identify(i.fd));
    let dynamic_import = dma_buf.is_some() && crate::settings::get().dynamic_attachments();
    let why_pinned = || match dev.state.dynamic {
        Ok(()) => attach::pinned_because(dev, info, &chain, allocator)
            .or_else(|| dma_buf.as_ref().and_then(|id| prime::auto_keeps_pinned(dev, id))),
        Err(why) => Some(why),
    };
    let (result, dynamic) = match dynamic_import.then(why_pinned) {
        Some(None) => attach::import(dev, info, &chain, memory),
        Some(Some(why)) => {
            log_debug!("{}: dma-buf import stays pinned: {why}", dev.state.name);
            (dev.allocate_memory(info, allocator, memory), None)
        }
        None => (dev.allocate_memory(info, allocator, memory), None),
    };
    let Some(kind) = kind else { return result };
    if result != vk::Result::SUCCESS {
        log_debug!(
            "{}: {:?} of {} bytes failed: {result:?} (nothing tracked)",
            dev.state.name,
            kind,
            info.allocation_size
        );
        return result;
    }
    match kind {
        ExternalKind::Import(t) if t == vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT => {
            dev.state.count(|s| &s.dma_buf_imports)
        }
        ExternalKind::Import(_) => dev.state.count(|s| &s.opaque_fd_imports),
        ExternalKind::Exportable(_) => dev.state.count(|s| &s.exportable_allocations),
    }
    log_debug!(
        "{}: memory {:#x}: {} {:?}, {} bytes, type {}{}",
        dev.state.name,
        vk::Handle::as_raw(*memory),
        match kind {
            ExternalKind::Import(_) => "imported",
            ExternalKind::Exportable(_) => "exportable",
        },
        match kind {
            ExternalKind::Import(t) | ExternalKind::Exportable(t) => t,
        },
        info.allocation_size,
        info.memory_type_index,
        import_fd.map(|fd| format!(", from fd {fd}")).unwrap_or_default(),
    );
    let mut record =
        ExternalMemory::new(kind, info.allocation_size, info.memory_type_index, chain.dedicated_to());
    record.dynamic = dynamic;
    dev.state.with_memory(|t| t.insert(*memory, record));
    if let Some(id) = dma_buf {
        dma_bufs::joined(dev, *memory, id, false);
    }
    result
}

pub fn free(dev: &Device, memory: vk::DeviceMemory, allocator: Option<&vk::AllocationCallbacks<'_>>) {
    if dev.state.has_external_memory() && memory != vk::DeviceMemory::null() {
        super::hazards::freed(dev, memory);
        if let Some(gone) = dev.state.with_memory(|t| t.remove(memory)) {
            if let Some(d) = &gone.dma_buf {
                dma_bufs::left(dev, memory, d.key);
            }
            if let Some(d) = &gone.dynamic {
                attach::release(dev, d);
            }
            log_debug!(
                "{}: memory {:#x} freed ({:?}, {} resources were bound)",
                dev.state.name,
                vk::Handle::as_raw(memory),
                gone.kind,
                gone.bound.len()
            );
        }
    }
    dev.free_memory(memory, allocator);
}

pub fn get_fd(dev: &Device, info: &vk::MemoryGetFdInfoKHR<'_>, fd: &mut i32) -> vk::Result {
    let result = dev.get_memory_fd(info, fd);
    if result == vk::Result::SUCCESS {
        dev.state.count(|s| &s.fd_exports);
        let tracked = dev.state.with_memory(|t| t.exported(info.memory, info.handle_type));
        if tracked && info.handle_type == vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT {
            if let Some(id) = dma_bufs::identify(*fd) {
                dma_bufs::joined(dev, info.memory, id, true);
            }
        }
        log_debug!(
            "{}: memory {:#x} exported as {:?}: fd {}{}",
            dev.state.name,
            vk::Handle::as_raw(info.memory),
            info.handle_type,
            *fd,
            if tracked { "" } else { " (memory was not allocated exportable through this layer)" }
        );
    }
    result
}
