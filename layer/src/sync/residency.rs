//! Keeping dynamic attachments resident, and evicting them: the kernel's
//! `dma_buf_map_attachment` (re-validation) and `move_notify`
//! (invalidation), done with Vulkan objects.
//!
//! Everything here runs with the device's memory table locked by the
//! caller, so one attachment is never re-validated and evicted at once.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use ash::vk;

use crate::dispatch::Device;
use crate::registry::dynamic::{Dynamic, Internal};
use crate::registry::BufferKey;
use crate::sys::dma_buf;

const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

/// Frees an internal import and what the layer made over it.
pub fn drop_internal(dev: &Device, internal: Internal) {
    if internal.pool != vk::CommandPool::null() {
        dev.destroy_command_pool(internal.pool, None);
    }
    dev.destroy_buffer(internal.buffer, None);
    dev.free_memory(internal.memory, None);
}

/// Records the two copies of `internal` for queue family `family`.
fn record_copies(dev: &Device, d: &Dynamic, internal: &mut Internal, family: u32) -> Result<(), vk::Result> {
    if internal.pool != vk::CommandPool::null() {
        dev.destroy_command_pool(internal.pool, None);
        internal.pool = vk::CommandPool::null();
    }
    let pool = dev.layer_command_pool(family)?;
    internal.pool = pool;
    internal.copy_in = dev.layer_command_buffer(pool)?;
    internal.copy_out = dev.layer_command_buffer(pool)?;
    internal.family = family;
    let r = dev.record_copy(internal.copy_in, internal.buffer, d.backing_buffer, d.size);
    if r != vk::Result::SUCCESS {
        return Err(r);
    }
    match dev.record_copy(internal.copy_out, d.backing_buffer, internal.buffer, d.size) {
        vk::Result::SUCCESS => Ok(()),
        e => Err(e),
    }
}

/// Re-imports an invalidated attachment from the layer's fd, after checking
/// the fd still names the same buffer of at least the same size.
fn revalidate(dev: &Device, d: &Dynamic, key: BufferKey, fd: &OwnedFd) -> Result<Internal, vk::Result> {
    let id = dma_buf::identity(fd.as_fd()).map_err(|e| e.to_vk())?;
    let size = dma_buf::info(fd.as_fd()).map_err(|e| e.to_vk())?.map(|i| i.size).unwrap_or(0);
    if id.dev != key.dev || id.ino != key.ino || size < d.size {
        log_error!("{}: {key} changed under its fd (size {size}); it cannot be re-validated", dev.state.name);
        return Err(vk::Result::ERROR_INVALID_EXTERNAL_HANDLE);
    }
    let dup = fd.try_clone().map_err(|_| vk::Result::ERROR_TOO_MANY_OBJECTS)?;
    let mut memory = vk::DeviceMemory::null();
    let r = dev.import_memory_fd(d.size, d.memory_type, DMA_BUF, dup, &mut memory);
    if r != vk::Result::SUCCESS {
        return Err(r);
    }
    match dev.transfer_buffer(memory, d.size, true) {
        Ok(buffer) => Ok(Internal {
            memory,
            buffer,
            pool: vk::CommandPool::null(),
            copy_in: vk::CommandBuffer::null(),
            copy_out: vk::CommandBuffer::null(),
            family: u32::MAX,
        }),
        Err(e) => {
            dev.free_memory(memory, None);
            Err(e)
        }
    }
}

/// Makes `d` resident (re-validating it if it was invalidated), without
/// recording copies.
pub fn ensure_imported(
    dev: &Device,
    d: &mut Dynamic,
    key: BufferKey,
    fd: &OwnedFd,
) -> Result<Internal, vk::Result> {
    if let Some(i) = d.internal {
        return Ok(i);
    }
    let i = revalidate(dev, d, key, fd)?;
    dev.state.count(|s| &s.revalidations);
    log_debug!("{}: {key} re-validated (re-imported)", dev.state.name);
    d.internal = Some(i);
    Ok(i)
}

/// Makes `d` resident with copies recorded for `family`; returns its
/// internal import. On failure the attachment stays invalidated and
/// consistent, and a later submission can try again.
pub fn ensure_resident(
    dev: &Device,
    d: &mut Dynamic,
    key: BufferKey,
    fd: &OwnedFd,
    family: u32,
) -> Result<Internal, vk::Result> {
    let mut internal = ensure_imported(dev, d, key, fd)?;
    if internal.family != family || internal.copy_in == vk::CommandBuffer::null() {
        if let Err(e) = record_copies(dev, d, &mut internal, family) {
            drop_internal(dev, internal);
            d.internal = None;
            return Err(e);
        }
    }
    d.internal = Some(internal);
    Ok(internal)
}

/// Invalidates `d`: waits (bounded) until its last use is done, copies out
/// what the GPU wrote since the last release (only on `queue`, the one the
/// caller may use), and drops the internal import. Returns whether it was
/// evicted.
pub fn evict(dev: &Device, d: &mut Dynamic, key: BufferKey, queue: vk::Queue, timeout: Duration) -> bool {
    let Some(internal) = d.internal else { return false };
    if d.mapped {
        return false;
    }
    if let Some((timeline, value, last_queue)) = d.last_use {
        if dev.wait_timeline(timeline, value, timeout.as_nanos() as u64) != vk::Result::SUCCESS {
            log_warn!("{}: {key} stayed busy past the fence timeout; not evicted", dev.state.name);
            return false;
        }
        if d.dirty {
            if last_queue != queue || internal.copy_out == vk::CommandBuffer::null() {
                return false;
            }
            if !copy_out_now(dev, internal.copy_out, queue, timeout) {
                return false;
            }
            dev.state.count(|s| &s.copies_out);
            d.dirty = false;
        }
    }
    drop_internal(dev, internal);
    d.internal = None;
    dev.state.count(|s| &s.evictions);
    log_debug!("{}: {key} invalidated (internal import dropped)", dev.state.name);
    true
}

fn copy_out_now(dev: &Device, cb: vk::CommandBuffer, queue: vk::Queue, timeout: Duration) -> bool {
    let mut fence = vk::Fence::null();
    if dev.create_fence(&mut fence) != vk::Result::SUCCESS {
        return false;
    }
    let cbs = [cb];
    let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
    if dev.queue_submit(queue, &submit, fence) != vk::Result::SUCCESS {
        dev.destroy_fence(fence);
        return false;
    }
    if dev.wait_for_fence(fence, timeout.as_nanos() as u64) != vk::Result::SUCCESS {
        // Still pending: the fence must outlive the copy, so it is leaked.
        log_warn!("{}: an eviction copy-out did not finish within the fence timeout", dev.state.name);
        return false;
    }
    dev.destroy_fence(fence);
    true
}
