//! The process-wide dma-buf registry and how a memory object joins it.
//!
//! Its lock is level `Registry` of the lock order (`lock_order`).

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::{Arc, LazyLock, Mutex};

use ash::vk::{self, Handle};

use crate::dispatch::Device;
use crate::registry::{AttachmentRef, DmaBufInfo, DmaBufKey, DmaBufRef, DmaBufRegistry};
use crate::sys::{self, dma_buf};

static DMA_BUFS: LazyLock<Mutex<DmaBufRegistry>> = LazyLock::new(Default::default);

/// The registry (poisoning is survivable: the map stays consistent).
pub fn registry() -> crate::lock_order::Guard<'static, DmaBufRegistry> {
    crate::lock_order::lock(&DMA_BUFS, crate::lock_order::Level::Registry)
}

/// A dma-buf identified from one of its fds.
#[derive(Debug)]
pub struct Identified {
    pub key: DmaBufKey,
    pub info: DmaBufInfo,
    pub fd: OwnedFd,
}

/// Dups `raw` and asks the kernel what it is; `None` (and the dup closed)
/// when it is not a dma-buf or cannot be read.
pub fn identify(raw: RawFd) -> Option<Identified> {
    let fd = sys::dup_raw(raw).ok()?;
    let id = dma_buf::identity(fd.as_fd()).ok()?;
    let info = dma_buf::info(fd.as_fd()).ok()??;
    Some(Identified {
        key: DmaBufKey { dev: id.dev, ino: id.ino },
        info: DmaBufInfo { size: info.size, exporter: info.exporter, name: info.name },
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
    dev.state.with_stats(|s| {
        let id =
            crate::stats::Identity { size: info.size, exporter: &info.exporter, name: info.name.as_deref() };
        s.identified(key, id, exported);
    });
    let mut registry = registry();
    if exported {
        registry.exported(key, info, at(dev, memory));
    } else {
        registry.attach(key, info, at(dev, memory));
    }
}

/// `memory` is freed.
pub fn left(dev: &Device, memory: vk::DeviceMemory, key: DmaBufKey) {
    registry().release(key, at(dev, memory));
}

/// The device is destroyed.
pub fn device_gone(dev: &Device) {
    registry().device_destroyed(dev.handle.as_raw());
}
