//! Releases: after a submission that hands dma-bufs to outside, its fence
//! goes into each of them (`IMPORT_SYNC_FILE`, a write fence when the GPU
//! may have written), so any peer — Vulkan, GL, a compositor, or a program
//! that just `poll()`s the dma-buf — waits for the GPU's work.
//!
//! The SYNC_FD export runs on a publisher thread, waited for at most the
//! fence timeout: Mesa's `vkGetSemaphoreFdKHR` blocks until the signal it
//! exports is really submitted, which waits for anything the queue is
//! waiting for that nobody has signalled yet (a timeline value the
//! application signals from the host after this call, a thread-bridge wait
//! ahead on the queue). Past the timeout the application goes on and the
//! fence is published when the export returns (logged).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ash::vk;

use super::plan::Handover;
use crate::dispatch::off_thread::SyncFdExporter;
use crate::dispatch::Device;
use crate::sys::dma_buf::{self, Access};

/// Whether `semaphore` can go back to the pool (its signal was exported,
/// which unsignals it) or must be destroyed once retired (the export
/// failed, so it stays signalled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    Reuse,
    Discard,
}

/// Waits (bounded) for the GPU work of a release when no fence can be
/// published: peers then never see unfinished work.
pub fn wait_for_gpu(dev: &Device, timeline: vk::Semaphore, value: u64, timeout: Duration) {
    let r = dev.wait_timeline(timeline, value, timeout.as_nanos() as u64);
    if r != vk::Result::SUCCESS {
        log_warn!("{}: the released work did not finish within the fence timeout ({r:?})", dev.state.name);
    }
}

/// A dma-buf to publish into: the layer's fd, the fence kind, its name.
type Target = (Arc<OwnedFd>, Access, String);

/// A published (or abandoned) release semaphore, for the pool: free again
/// once the retire timeline reaches the value.
#[derive(Clone, Copy, Debug)]
pub struct Finished {
    pub semaphore: vk::Semaphore,
    pub retire: (vk::Semaphore, u64),
    pub reuse: Reuse,
}

#[derive(Debug)]
enum JobState {
    Pending,
    Done(Reuse),
    /// The submitting thread stopped waiting: the publisher hands the
    /// semaphore back through [`Publisher::take_finished`].
    Abandoned,
}

type JobSlot = Arc<(Mutex<JobState>, Condvar)>;

struct Job {
    semaphore: vk::Semaphore,
    retire: (vk::Semaphore, u64),
    targets: Vec<Target>,
    slot: JobSlot,
}

/// The publisher thread of one device.
#[derive(Debug)]
pub struct Publisher {
    sender: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    finished: Arc<Mutex<Vec<Finished>>>,
    warned_late: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> crate::lock_order::Guard<'_, T> {
    crate::lock_order::lock(m, crate::lock_order::Level::Leaf)
}

impl Publisher {
    pub fn new(dev: &Device) -> Result<Publisher, vk::Result> {
        let exporter = dev.sync_fd_exporter().ok_or(vk::Result::ERROR_FEATURE_NOT_PRESENT)?;
        let (sender, jobs) = channel::<Job>();
        let finished: Arc<Mutex<Vec<Finished>>> = Arc::default();
        let returned = finished.clone();
        let name = dev.state.name.clone();
        let thread = std::thread::Builder::new()
            .name("dynabuf-publish".into())
            .spawn(move || {
                for job in jobs {
                    let reuse = export_and_import(&exporter, &name, job.semaphore, &job.targets);
                    let (state, done) = &*job.slot;
                    let mut state = lock(state);
                    if matches!(*state, JobState::Abandoned) {
                        drop(state);
                        let f = Finished { semaphore: job.semaphore, retire: job.retire, reuse };
                        lock(&returned).push(f);
                    } else {
                        *state = JobState::Done(reuse);
                        done.notify_all();
                    }
                }
            })
            .map_err(|_| vk::Result::ERROR_INITIALIZATION_FAILED)?;
        Ok(Publisher {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            finished,
            warned_late: Default::default(),
        })
    }

    /// Publishes the fence signalled through `semaphore` (the trailing
    /// batch's, retired at `retire`) into every released dma-buf. `Some`:
    /// done within `timeout`, and what becomes of the semaphore. `None`: the
    /// export is still blocked; the semaphore comes back through
    /// [`Self::take_finished`].
    pub fn publish(
        &self,
        dev: &Device,
        semaphore: vk::Semaphore,
        retire: (vk::Semaphore, u64),
        releases: &[Handover],
        timeout: Duration,
    ) -> Option<Reuse> {
        let targets: Vec<Target> = super::plan::once_per_dma_buf(releases)
            .into_iter()
            .map(|r| {
                dev.state.count(|s| &s.releases_published);
                dev.state.with_stats(|s| s.released(r.key));
                (r.fd, if r.writes { Access::Write } else { Access::Read }, r.key.to_string())
            })
            .collect();
        let slot: JobSlot = Arc::new((Mutex::new(JobState::Pending), Condvar::new()));
        let sender = lock(&self.sender).clone()?;
        if sender.send(Job { semaphore, retire, targets, slot: slot.clone() }).is_err() {
            return Some(Reuse::Discard);
        }
        let deadline = Instant::now() + timeout;
        let (state, done) = &*slot;
        let mut state = lock(state);
        loop {
            if let JobState::Done(reuse) = *state {
                return Some(reuse);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                *state = JobState::Abandoned;
                drop(state);
                if !self.warned_late.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    log_warn!(
                        "{}: exporting a release fence took longer than DYNABUF_FENCE_TIMEOUT_MS (the driver's \
                         export returns once the queue has taken the submission: slower work ahead of it, or a \
                         wait nobody has signalled yet); the application goes on and the fence is published \
                         when the export returns, so until then peers see the dma-buf idle (further cases are \
                         not logged)",
                        dev.state.name
                    );
                }
                return None;
            }
            // The condition variable's own guard is not tracked by the lock
            // order (it is released while waiting).
            state = crate::lock_order::wait_timeout(state, done, left);
        }
    }

    /// Release semaphores whose publishing finished after the submitting
    /// thread stopped waiting.
    pub fn take_finished(&self) -> Vec<Finished> {
        std::mem::take(&mut *lock(&self.finished))
    }

    /// Stops the thread (at `vkDestroyDevice`: the application has waited
    /// for its work, so no export blocks any more).
    pub fn shutdown(&self) {
        lock(&self.sender).take();
        let thread = lock(&self.thread).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The publisher thread's work for one release.
fn export_and_import(
    exporter: &SyncFdExporter,
    device: &str,
    semaphore: vk::Semaphore,
    targets: &[Target],
) -> Reuse {
    let exported = match crate::fault::injected(crate::fault::Point::SyncFdExport) {
        Some(e) => Err(e),
        None => exporter.export(semaphore),
    };
    let file = match exported {
        Ok(f) => f,
        Err(e) => {
            log_warn!(
                "{device}: vkGetSemaphoreFdKHR for a release failed ({e:?}); waiting for the GPU instead"
            );
            return Reuse::Discard;
        }
    };
    // `None`: the driver says the work is already done.
    let Some(file) = file else { return Reuse::Reuse };
    for (fd, access, key) in targets {
        let imported = match crate::fault::injected_errno(crate::fault::Point::ImportSyncFile) {
            Some(e) => Err(e),
            None => dma_buf::import_sync_file(fd.as_fd(), file.as_fd(), *access),
        };
        match imported {
            Ok(()) => log_debug!("{device}: release of {key} published a {access:?} fence"),
            Err(e) => log_warn!("{device}: release of {key}: {e}"),
        }
    }
    Reuse::Reuse
}
