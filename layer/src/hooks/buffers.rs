//! The process-wide dma-buf registry and how a memory object joins it.
//!
//! Lock order: a device's `memory` lock before this registry's lock.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use ash::vk::{self, Handle};

use crate::dispatch::Device;
use crate::registry::{AttachmentRef, BufferInfo, BufferKey, BufferRegistry, DmaBufRef};
use crate::sys::{self, dma_buf};

static BUFFERS: LazyLock<Mutex<BufferRegistry>> = LazyLock::new(Default::default);

/// The registry (poisoning is survivable: the map stays consistent).
pub fn buffers() -> MutexGuard<'static, BufferRegistry> {
    BUFFERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A dma-buf identified from one of its fds.
#[derive(Debug)]
pub struct Identified {
    pub key: BufferKey,
    pub info: BufferInfo,
    pub fd: OwnedFd,
}

/// Dups `raw` and asks the kernel what it is; `None` (and the dup closed)
/// when it is not a dma-buf or cannot be read.
pub fn identify(raw: RawFd) -> Option<Identified> {
    let fd = sys::dup_raw(raw).ok()?;
    let id = dma_buf::identity(fd.as_fd()).ok()?;
    let info = dma_buf::info(fd.as_fd()).ok()??;
    Some(Identified {
        key: BufferKey { dev: id.dev, ino: id.ino },
        info: BufferInfo { size: info.size, exporter: info.exporter, name: info.name },
        fd,
    })
}

fn at(dev: &Device, memory: vk::DeviceMemory) -> AttachmentRef {
    AttachmentRef { device: dev.handle.as_raw(), memory: memory.as_raw() }
}

/// `memory` was imported from (or exported as) the dma-buf `id`: record it
/// in the device's memory table and in the registry.
pub fn joined(dev: &Device, memory: vk::DeviceMemory, id: Identified, exported: bool) {
    let Identified { key, info, fd } = id;
    let reference = DmaBufRef { key, fd: Arc::new(fd) };
    if !dev.state.with_memory(|t| t.set_dma_buf(memory, reference)) {
        return;
    }
    log_debug!(
        "{}: memory {:#x} is {} {key} ({} bytes, exporter {}{})",
        dev.state.name,
        memory.as_raw(),
        if exported { "the exporter of" } else { "an attachment of" },
        info.size,
        info.exporter,
        info.name.as_deref().map(|n| format!(", name {n}")).unwrap_or_default()
    );
    let mut registry = buffers();
    if exported {
        registry.exported(key, info, at(dev, memory));
    } else {
        registry.attach(key, info, at(dev, memory));
    }
}

/// `memory` is freed.
pub fn left(dev: &Device, memory: vk::DeviceMemory, key: BufferKey) {
    buffers().release(key, at(dev, memory));
}

/// The device is destroyed.
pub fn device_gone(dev: &Device) {
    buffers().device_destroyed(dev.handle.as_raw());
}
