//! CPU access to mapped dma-buf memory, bracketed as the kernel asks
//! (`DMA_BUF_IOCTL_SYNC`, Documentation/driver-api/dma-buf.rst "CPU
//! access"):
//!
//! - `vkMapMemory` opens an access window: START READ, which waits for the
//!   buffer's writers (a peer still writing delays the map);
//! - `vkInvalidateMappedMemoryRanges` starts a read again (START READ), so
//!   the CPU sees what other devices wrote since;
//! - `vkFlushMappedMemoryRanges` ends the CPU's writes (END WRITE: the
//!   exporter makes them visible to devices) and reopens the window;
//! - `vkUnmapMemory` closes it (END READ|WRITE).
//!
//! Vulkan gives no point at which the CPU *starts* writing, so no START
//! waits for the buffer's readers: a CPU write while a peer still reads is
//! the application's to order (the hazard report for an open coherent
//! mapping says so). `DYNABUF_CPU_SYNC=off`, or `DYNABUF_SYNC=off` (no
//! implicit sync at all), leaves all of it out.
//!
//! START waits in the kernel, unbounded. The layer waits first, bounded by
//! the fence timeout, with `poll()` on the dma-buf; a writer still pending
//! then is reported (a fence-timeout hazard) and the START is skipped, so
//! the application keeps running. After a flush the window is reopened
//! only if no writer is pending (the flush itself must not block on, say,
//! the application's own GPU writing another part of the buffer).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use ash::vk;

use crate::dispatch::Device;
use crate::registry::DmaBufKey;
use crate::sys::dma_buf::{self, Access};

/// Which ioctl a Vulkan host-access call stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bracket {
    /// `vkMapMemory`: START READ.
    Map,
    /// `vkUnmapMemory`: END READ|WRITE.
    Unmap,
    /// `vkFlushMappedMemoryRanges`: END WRITE, then START READ.
    Flush,
    /// `vkInvalidateMappedMemoryRanges`: START READ.
    Invalidate,
}

/// The dma-buf behind `memory` (its fd and key), when the application's
/// host access to it must be bracketed; records whether it is mapped.
fn dma_buf_of(
    dev: &Device,
    memory: vk::DeviceMemory,
    mapped: Option<bool>,
) -> Option<(Arc<OwnedFd>, DmaBufKey)> {
    if !dev.state.has_dma_buf_memory() {
        return None;
    }
    dev.state.with_memory(|t| {
        let m = t.get_mut(memory)?;
        if let Some(mapped) = mapped {
            m.host_mapped = mapped;
        }
        m.dma_buf.as_ref().map(|d| (d.fd.clone(), d.key))
    })
}

/// How long a START may wait for the buffer's writers first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Up to the fence timeout; past it the START is skipped and reported.
    Bounded,
    /// Not at all: the START is issued only if no writer is pending (after
    /// a flush, whose writes are already ended).
    IfIdle,
}

/// Issues a START for `access` once it would not block in the kernel
/// (`poll()` on the dma-buf, bounded). Returns whether it was issued.
fn start(
    dev: &Device,
    (fd, key): (&OwnedFd, DmaBufKey),
    memory: vk::DeviceMemory,
    wait: Wait,
    call: &str,
) -> bool {
    let timeout = match wait {
        Wait::Bounded => Duration::from_millis(crate::settings::get().fence_timeout_ms),
        Wait::IfIdle => Duration::ZERO,
    };
    // A failed poll counts as busy: a START would then wait without bound.
    let ready = dma_buf::wait_idle(fd.as_fd(), Access::Read, timeout).unwrap_or(false);
    if !ready {
        if wait == Wait::Bounded {
            super::hazards::fence_timeout(
                dev,
                key,
                Some(memory),
                &format!(
                    "{call}: a peer's write fence on the dma-buf did not signal within DYNABUF_FENCE_TIMEOUT_MS; \
                     the CPU reads it without DMA_BUF_IOCTL_SYNC START (the content may be unfinished)"
                ),
            );
        }
        return false;
    }
    if let Err(e) = dma_buf::cpu_access(fd.as_fd(), Access::Read, true) {
        log_warn!("{}: {call}: DMA_BUF_IOCTL_SYNC START failed: {e}", dev.state.name);
        return false;
    }
    true
}

fn end(dev: &Device, fd: &OwnedFd, access: Access, call: &str) {
    if let Err(e) = dma_buf::cpu_access(fd.as_fd(), access, false) {
        log_warn!("{}: {call}: DMA_BUF_IOCTL_SYNC END failed: {e}", dev.state.name);
    }
}

fn bracket(dev: &Device, memory: vk::DeviceMemory, what: Bracket) {
    let mapped = match what {
        Bracket::Map => Some(true),
        Bracket::Unmap => Some(false),
        Bracket::Flush | Bracket::Invalidate => None,
    };
    let Some((fd, key)) = dma_buf_of(dev, memory, mapped) else { return };
    let settings = crate::settings::get();
    if !settings.cpu_sync || settings.sync == crate::settings::SyncMode::Off {
        return;
    }
    log_trace!("{}: memory {:#x}: CPU access {what:?}", dev.state.name, vk::Handle::as_raw(memory));
    match what {
        Bracket::Map => {
            start(dev, (&fd, key), memory, Wait::Bounded, "vkMapMemory");
        }
        Bracket::Unmap => end(dev, &fd, Access::ReadWrite, "vkUnmapMemory"),
        Bracket::Flush => {
            end(dev, &fd, Access::Write, "vkFlushMappedMemoryRanges");
            start(dev, (&fd, key), memory, Wait::IfIdle, "vkFlushMappedMemoryRanges");
        }
        Bracket::Invalidate => {
            start(dev, (&fd, key), memory, Wait::Bounded, "vkInvalidateMappedMemoryRanges");
        }
    }
}

/// After a successful `vkMapMemory`/`vkMapMemory2KHR` of `memory`.
pub fn mapped(dev: &Device, memory: vk::DeviceMemory, result: vk::Result) -> vk::Result {
    if result == vk::Result::SUCCESS {
        bracket(dev, memory, Bracket::Map);
    }
    result
}

/// Before `vkUnmapMemory`/`vkUnmapMemory2KHR` of `memory`.
pub fn unmapping(dev: &Device, memory: vk::DeviceMemory) {
    bracket(dev, memory, Bracket::Unmap);
}

/// After `vkFlushMappedMemoryRanges` (once per memory).
pub fn flushed(dev: &Device, ranges: &[vk::MappedMemoryRange<'_>]) {
    if !dev.state.has_dma_buf_memory() {
        return;
    }
    for m in distinct(ranges) {
        bracket(dev, m, Bracket::Flush);
    }
}

/// Before `vkInvalidateMappedMemoryRanges` (once per memory).
pub fn invalidating(dev: &Device, ranges: &[vk::MappedMemoryRange<'_>]) {
    if !dev.state.has_dma_buf_memory() {
        return;
    }
    for m in distinct(ranges) {
        bracket(dev, m, Bracket::Invalidate);
    }
}

fn distinct(ranges: &[vk::MappedMemoryRange<'_>]) -> Vec<vk::DeviceMemory> {
    let mut out: Vec<vk::DeviceMemory> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if !out.contains(&r.memory) {
            out.push(r.memory);
        }
    }
    out
}
