//! Implicit synchronisation at the points where a dma-buf changes hands.
//!
//! At `vkQueueSubmit`/`vkQueueSubmit2`, [`plan`] finds the dma-bufs the
//! submission acquires and releases (from the ownership transfers its
//! command buffers recorded, or every dma-buf of the device with
//! `DYNABUF_SYNC_SCOPE=all`). [`engine::SyncEngine`] then, for each acquire,
//! exports the buffer's fences (`EXPORT_SYNC_FILE`, READ for a read-only
//! acquire, WRITE otherwise) and, when the fence is still pending, hands it
//! to a [`Bridge`] that turns it into a semaphore wait for the batch; for
//! releases it signals one SYNC_FD-exportable semaphore after the
//! submission, exports it and `IMPORT_SYNC_FILE`s it into each released
//! buffer (WRITE if written). [`submit`] rewrites the application's batches
//! to carry those waits and signals.
//!
//! Two bridges sit behind the [`Bridge`] trait: [`SemaphoreBridge`] imports
//! the sync_file into a SYNC_FD semaphore (the GPU waits, unbounded), and
//! [`waiter::ThreadBridge`] has a thread poll it for at most
//! `DYNABUF_FENCE_TIMEOUT_MS` and then signal a timeline semaphore the
//! batch waits on (bounded; a fence that never signals is logged and
//! skipped). `DYNABUF_SYNC=auto` picks the thread wherever the device has
//! timeline semaphores, because only it can keep the promise that the
//! application never hangs on a peer's fence.

#![forbid(unsafe_code)]

pub mod acquire;
pub mod attachments;
pub mod engine;
pub mod evict;
pub mod plan;
pub mod release;
pub mod revalidate;
pub mod strategy;
pub mod submit;
pub mod waiter;

use std::os::fd::OwnedFd;

use ash::vk;

use crate::dispatch::Device;
pub use engine::{SemaphorePool, SyncEngine};

/// A semaphore wait to add to a batch (`value` is 0 for a binary semaphore).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub semaphore: vk::Semaphore,
    pub value: u64,
}

/// Turns a pending sync_file into a wait the GPU can do.
pub trait Bridge: Send + Sync + std::fmt::Debug {
    /// `file`, a fence of dma-buf `key` (imported as the application's
    /// `memory`), is pending. Binary semaphores come from (and are
    /// accounted to) `pool`.
    fn wait_for(
        &self,
        dev: &Device,
        pool: &SemaphorePool,
        file: OwnedFd,
        key: crate::registry::DmaBufKey,
        memory: vk::DeviceMemory,
    ) -> Result<Wait, vk::Result>;
    /// Whether the wait is on a timeline semaphore (needs values chained).
    fn is_timeline(&self) -> bool;
    fn name(&self) -> &'static str;
    /// Stops whatever runs in the background, before the device goes.
    fn shutdown(&self, dev: &Device);
}

/// The GPU waits on a SYNC_FD semaphore holding the sync_file.
#[derive(Debug)]
pub struct SemaphoreBridge;

impl Bridge for SemaphoreBridge {
    fn wait_for(
        &self,
        dev: &Device,
        pool: &SemaphorePool,
        file: OwnedFd,
        _key: crate::registry::DmaBufKey,
        _memory: vk::DeviceMemory,
    ) -> Result<Wait, vk::Result> {
        let semaphore = pool.take(dev)?;
        let r = dev.import_sync_fd(semaphore, Some(file));
        if r != vk::Result::SUCCESS {
            pool.discard(dev, semaphore);
            return Err(r);
        }
        Ok(Wait { semaphore, value: 0 })
    }

    fn is_timeline(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "semaphore"
    }

    fn shutdown(&self, _dev: &Device) {}
}
