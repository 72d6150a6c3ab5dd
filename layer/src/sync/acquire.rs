//! Acquires: before a batch that takes a dma-buf from outside runs, the
//! fences others left in it must have signalled. Fences that already have
//! cost one `poll()`; a pending one becomes a wait for the GPU through the
//! bridge, or, where the submission cannot carry such a wait without
//! blocking the application anyway, a bounded wait right here (see
//! [`Inline`]).

use std::os::fd::AsFd;
use std::time::Duration;

use ash::vk;

use super::plan::Handover;
use super::{Bridge, SemaphorePool, Wait};
use crate::dispatch::Device;
use crate::sys::dma_buf::{self, Access};
use crate::sys::sync_file;

/// Why pending fences are waited for on the submitting thread (bounded by
/// the fence timeout) instead of through the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inline {
    /// Through the bridge.
    No,
    /// The submission also releases a dma-buf: exporting its release fence
    /// waits until the GPU work behind it is really submitted (Mesa's
    /// wait-before-signal), which with the thread bridge is once the
    /// foreign fence signals. Waiting here keeps that bounded.
    ReleaseFollows,
    /// The queue cannot run the layer's gate command buffer (unknown queue
    /// or sparse-binding-only family).
    NoGate,
}

/// What an acquire found, for the caller's statistics and log.
#[derive(Debug, Default)]
pub struct Acquired {
    pub waits: Vec<Wait>,
    /// Binary semaphores from the pool the waits use.
    pub pool_semaphores: Vec<vk::Semaphore>,
}

/// The waits for one batch's acquires. Inline waits end by `deadline`,
/// shared by the whole submission: it waits at most the fence timeout,
/// however many fences are pending.
pub fn batch(
    dev: &Device,
    bridge: &dyn Bridge,
    pool: &SemaphorePool,
    acquires: &[Handover],
    inline: Inline,
    deadline: std::time::Instant,
    ioctl_failed: &dyn Fn(&str, &dyn std::fmt::Display),
) -> Acquired {
    let mut out = Acquired::default();
    for a in &super::plan::once_per_dma_buf(acquires) {
        let access = if a.writes { Access::Write } else { Access::Read };
        if dma_buf::is_idle(a.fd.as_fd(), access).unwrap_or(false) {
            dev.state.count(|s| &s.acquires_ready);
            dev.state.with_stats(|s| s.acquired(a.key, false));
            continue;
        }
        let exported = match crate::fault::injected_errno(crate::fault::Point::ExportSyncFile) {
            Some(e) => Err(e),
            None => dma_buf::export_sync_file(a.fd.as_fd(), access),
        };
        let file = match exported {
            Ok(f) => f,
            Err(e) => {
                ioctl_failed(&format!("acquire of {}", a.key), &e);
                continue;
            }
        };
        if sync_file::wait(file.as_fd(), Duration::ZERO).unwrap_or(false) {
            dev.state.count(|s| &s.acquires_ready);
            dev.state.with_stats(|s| s.acquired(a.key, false));
            continue;
        }
        dev.state.count(|s| &s.acquires_waited);
        dev.state.with_stats(|s| s.acquired(a.key, true));
        if inline != Inline::No {
            log_debug!(
                "{}: acquire of {} waits here for a pending fence ({access:?}; {inline:?})",
                dev.state.name,
                a.key
            );
            let since = std::time::Instant::now();
            let left = deadline.saturating_duration_since(since);
            let signalled = sync_file::wait(file.as_fd(), left).unwrap_or(false);
            dev.state.with_stats(|s| s.fence_waited(a.key, since.elapsed()));
            if !signalled {
                let what = a.key.to_string();
                let (hazards, stats) = (dev.state.hazards.as_deref(), dev.state.stats.as_deref());
                super::waiter::fence_timed_out(&dev.state.name, hazards, stats, &what, Some(a.memory));
            }
            continue;
        }
        log_debug!("{}: acquire of {} waits for a pending fence ({access:?})", dev.state.name, a.key);
        match bridge.wait_for(dev, pool, file, a.key, a.memory) {
            Ok(w) => {
                if !bridge.is_timeline() {
                    out.pool_semaphores.push(w.semaphore);
                }
                out.waits.push(w);
            }
            Err(e) => log_warn!("{}: cannot make the GPU wait for {}: {e:?}", dev.state.name, a.key),
        }
    }
    out
}
