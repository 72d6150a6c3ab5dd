//! Releases: after a submission that hands dma-bufs to outside, its fence
//! goes into each of them (`IMPORT_SYNC_FILE`, a write fence when the GPU
//! may have written), so any peer — Vulkan, GL, a compositor, or a program
//! that just `poll()`s the dma-buf — waits for the GPU's work.

use std::os::fd::AsFd;
use std::time::Duration;

use ash::vk;

use super::plan::Handover;
use crate::dispatch::Device;
use crate::sys::dma_buf::{self, Access};

/// How the release fence reaches the dma-bufs.
#[derive(Clone, Copy, Debug)]
pub enum Publish {
    /// The trailing batch signalled this SYNC_FD-exportable semaphore.
    Semaphore(vk::Semaphore),
    /// The device cannot export SYNC_FD: wait (bounded) for the retire
    /// timeline before returning, so peers never see unfinished work.
    WaitForGpu(vk::Semaphore, u64),
}

/// Whether `semaphore` can go back to the pool (its signal was exported,
/// which unsignals it) or must be destroyed once retired (the export
/// failed, so it stays signalled).
#[derive(Debug, PartialEq, Eq)]
pub enum Reuse {
    Reuse,
    Discard,
}

/// Publishes the submission's fence into every released dma-buf.
pub fn publish(
    dev: &Device,
    releases: &[Handover],
    how: Publish,
    timeout: Duration,
    ioctl_failed: &dyn Fn(&str, &dyn std::fmt::Display),
) -> Reuse {
    let semaphore = match how {
        Publish::Semaphore(s) => s,
        Publish::WaitForGpu(timeline, value) => {
            let r = dev.wait_timeline(timeline, value, timeout.as_nanos() as u64);
            if r != vk::Result::SUCCESS {
                log_warn!(
                    "{}: the released work did not finish within the fence timeout ({r:?})",
                    dev.state.name
                );
            }
            return Reuse::Reuse;
        }
    };
    let exported = match crate::fault::injected(crate::fault::Point::SyncFdExport) {
        Some(e) => Err(e),
        None => dev.export_sync_fd(semaphore),
    };
    let file = match exported {
        Ok(f) => f,
        Err(e) => {
            log_warn!(
                "{}: vkGetSemaphoreFdKHR for a release failed ({e:?}); waiting for the GPU instead",
                dev.state.name
            );
            return Reuse::Discard;
        }
    };
    for r in releases {
        dev.state.count(|s| &s.releases_published);
        // `None`: the driver says the work is already done.
        let Some(file) = &file else { continue };
        let access = if r.writes { Access::Write } else { Access::Read };
        let imported = match crate::fault::injected_errno(crate::fault::Point::ImportSyncFile) {
            Some(e) => Err(e),
            None => dma_buf::import_sync_file(r.fd.as_fd(), file.as_fd(), access),
        };
        match imported {
            Ok(()) => log_debug!("{}: release of {} published a {access:?} fence", dev.state.name, r.key),
            Err(e) => ioctl_failed(&format!("release of {}", r.key), &e),
        }
    }
    Reuse::Reuse
}
