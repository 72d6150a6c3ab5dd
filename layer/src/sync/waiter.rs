//! The thread bridge: a per-device thread polls every pending sync_file at
//! once (one `poll()` over all of them and a wake pipe), each with its own
//! deadline, and signals the timeline semaphore its batch waits on. The
//! submitting thread never blocks; a fence that never signals costs the
//! GPU work behind it at most the timeout (and a warning naming the
//! buffer), and delays nothing else.
//!
//! Each pending wait has a timeline semaphore of its own (taken from a
//! free list, next value = last + 1), because timeline values signal in
//! order: one shared timeline would make a later fence wait for an
//! earlier, stuck one.
//!
//! If the thread panics, it signals every pending wait and stops; later
//! acquires then go on without a GPU wait (an error line says so), so
//! nothing hangs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ash::vk;

use crate::dispatch::hazard_reporter::HazardReporter;
use crate::hazard::HazardKind;

use super::{Bridge, SemaphorePool, Wait};
use crate::dispatch::Device;
use crate::registry::DmaBufKey;
use crate::stats::DeviceStats;
use crate::sys::sync_file;

/// A fence the GPU was to wait for did not signal in time: a hazard report
/// (once per dma-buf, sent to the application's messengers at its next
/// submission; counted in `stats` every time), or a warning when hazards
/// are off.
pub fn fence_timed_out(
    device: &str,
    hazards: Option<&HazardReporter>,
    stats: Option<&DeviceStats>,
    what: &str,
    memory: Option<vk::DeviceMemory>,
) {
    const TEXT: &str =
        "the fence did not signal within DYNABUF_FENCE_TIMEOUT_MS; letting the GPU go on without it";
    match hazards {
        Some(h) => {
            if let Some(s) = stats {
                s.hazard(HazardKind::FenceTimeout);
            }
            let objects: Vec<(vk::ObjectType, u64)> =
                memory.map(|m| (vk::ObjectType::DEVICE_MEMORY, vk::Handle::as_raw(m))).into_iter().collect();
            h.report_later(HazardKind::FenceTimeout, what, &objects, TEXT)
        }
        None => log_warn!("{device}: {what}: {TEXT}"),
    }
}

/// The engine's locks are leaves of the lock order (`lock_order`).
fn lock<T>(m: &Mutex<T>) -> crate::lock_order::Guard<'_, T> {
    crate::lock_order::lock(m, crate::lock_order::Level::Leaf)
}

struct Job {
    file: OwnedFd,
    timeline: vk::Semaphore,
    value: u64,
    deadline: Instant,
    what: String,
    /// Where a timeout is reported (`None`: `DYNABUF_HAZARDS=off`, a plain
    /// warning).
    hazards: Option<Arc<HazardReporter>>,
    /// The dma-buf, and when its fence was found pending (statistics).
    key: DmaBufKey,
    /// The application's memory of it (named in a timeout's report).
    memory: vk::DeviceMemory,
    since: Instant,
}

/// Timeline semaphores ready for another wait: (semaphore, value it has
/// reached).
type FreeList = Arc<Mutex<Vec<(vk::Semaphore, u64)>>>;

#[derive(Debug)]
struct Thread {
    sender: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

/// See the module doc.
#[derive(Debug)]
pub struct ThreadBridge {
    timeout: Duration,
    thread: Mutex<Thread>,
    wake: OwnedFd,
    free: FreeList,
    /// Every timeline the bridge created (destroyed at shutdown).
    all: Mutex<Vec<vk::Semaphore>>,
    /// Set when the thread died: waits are no longer bridged.
    dead: Arc<AtomicBool>,
}

impl ThreadBridge {
    /// Starts the thread.
    pub fn new(dev: &Device, timeout: Duration, name: &str) -> Result<Self, vk::Result> {
        let signaller = dev.signaller().ok_or(vk::Result::ERROR_FEATURE_NOT_PRESENT)?;
        let wake = sync_file::wake_fd().map_err(|e| e.to_vk())?;
        let wake_read = wake.try_clone().map_err(|_| vk::Result::ERROR_TOO_MANY_OBJECTS)?;
        let (sender, receiver) = channel::<Job>();
        let free: FreeList = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let thread_state = Waiter {
            jobs: receiver,
            wake: wake_read,
            signal: Box::new(move |s, v| signaller.signal(s, v)),
            free: free.clone(),
            device: name.to_string(),
            pending: Vec::new(),
            stats: dev.state.stats.clone(),
        };
        let thread_dead = dead.clone();
        let spawned = std::thread::Builder::new()
            .name("dynabuf-waiter".into())
            .spawn(move || thread_state.run_guarded(&thread_dead));
        let handle = match spawned {
            Ok(t) => t,
            Err(e) => {
                log_error!("{name}: cannot start the fence waiter thread: {e}");
                return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
            }
        };
        Ok(ThreadBridge {
            timeout,
            thread: Mutex::new(Thread { sender: Some(sender), handle: Some(handle) }),
            wake,
            free,
            all: Mutex::default(),
            dead,
        })
    }

    /// A timeline for one more wait, and the value to wait for.
    fn timeline(&self, dev: &Device) -> Result<(vk::Semaphore, u64), vk::Result> {
        let reused = lock(&self.free).pop();
        if let Some((s, reached)) = reused {
            return Ok((s, reached + 1));
        }
        let s = dev.create_timeline(0)?;
        lock(&self.all).push(s);
        Ok((s, 1))
    }
}

/// Signals a timeline semaphore to a value (the device's
/// `vkSignalSemaphore`, or a recorder in unit tests).
type Signal = Box<dyn Fn(vk::Semaphore, u64) -> vk::Result + Send>;

/// The thread's side.
struct Waiter {
    jobs: Receiver<Job>,
    wake: OwnedFd,
    signal: Signal,
    free: FreeList,
    device: String,
    pending: Vec<Job>,
    /// The device's statistics, when on: how long each fence took.
    stats: Option<Arc<DeviceStats>>,
}

impl Waiter {
    fn run_guarded(mut self, dead: &AtomicBool) {
        if catch_unwind(AssertUnwindSafe(|| self.run())).is_ok() {
            return;
        }
        self.release_all(dead);
    }

    /// After a panic: mark the bridge dead and signal every pending wait.
    fn release_all(&mut self, dead: &AtomicBool) {
        dead.store(true, Ordering::Relaxed);
        log_error!(
            "{}: the fence waiter thread failed; releasing every pending wait, and from now on \
             acquires are not waited for on this device",
            self.device
        );
        let left: Vec<Job> = self.pending.drain(..).chain(self.jobs.try_iter()).collect();
        for job in left {
            let _ = (self.signal)(job.timeline, job.value);
        }
    }

    fn run(&mut self) {
        let mut open = true;
        loop {
            loop {
                match self.jobs.try_recv() {
                    Ok(j) => self.pending.push(j),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if self.pending.is_empty() {
                if !open {
                    return;
                }
                match self.jobs.recv() {
                    Ok(j) => self.pending.push(j),
                    Err(_) => return,
                }
                continue;
            }
            let now = Instant::now();
            let soonest = self.pending.iter().map(|j| j.deadline).min().unwrap_or(now);
            let done = {
                let fences: Vec<BorrowedFd<'_>> = self.pending.iter().map(|j| j.file.as_fd()).collect();
                let timeout = soonest.saturating_duration_since(now);
                match sync_file::wait_any(&fences, self.wake.as_fd(), timeout) {
                    Ok(d) => d,
                    Err(e) => {
                        log_warn!("{}: waiting for fences: {e}; letting the GPU go on", self.device);
                        vec![true; fences.len()]
                    }
                }
            };
            sync_file::drain(self.wake.as_fd());
            let now = Instant::now();
            let ended: Vec<(usize, bool)> = self
                .pending
                .iter()
                .zip(&done)
                .enumerate()
                .filter(|(_, (job, &signalled))| signalled || job.deadline <= now)
                .map(|(i, (_, &signalled))| (i, signalled))
                .collect();
            // Descending, so each swap_remove moves a job that stays.
            for (i, signalled) in ended.into_iter().rev() {
                let job = self.pending.swap_remove(i);
                self.complete(job, signalled);
            }
        }
    }

    fn complete(&self, job: Job, signalled: bool) {
        let r = (self.signal)(job.timeline, job.value);
        if let Some(s) = &self.stats {
            s.fence_waited(job.key, job.since.elapsed());
        }
        if !signalled {
            fence_timed_out(
                &self.device,
                job.hazards.as_deref(),
                self.stats.as_deref(),
                &job.what,
                Some(job.memory),
            );
        }
        if r != vk::Result::SUCCESS {
            log_error!("{}: vkSignalSemaphore({}) failed: {r:?}", self.device, job.value);
            return;
        }
        lock(&self.free).push((job.timeline, job.value));
    }
}

impl Bridge for ThreadBridge {
    fn wait_for(
        &self,
        dev: &Device,
        _pool: &SemaphorePool,
        file: OwnedFd,
        key: DmaBufKey,
        memory: vk::DeviceMemory,
    ) -> Result<Wait, vk::Result> {
        if self.dead.load(Ordering::Relaxed) {
            return Err(vk::Result::ERROR_DEVICE_LOST);
        }
        let sender = lock(&self.thread).sender.clone().ok_or(vk::Result::ERROR_DEVICE_LOST)?;
        let (timeline, value) = self.timeline(dev)?;
        let since = Instant::now();
        let job = Job {
            file,
            timeline,
            value,
            deadline: since + self.timeout,
            what: key.to_string(),
            hazards: dev.state.hazards.clone(),
            key,
            memory,
            since,
        };
        if sender.send(job).is_err() {
            lock(&self.free).push((timeline, value - 1));
            return Err(vk::Result::ERROR_DEVICE_LOST);
        }
        sync_file::wake(self.wake.as_fd());
        Ok(Wait { semaphore: timeline, value })
    }

    fn is_timeline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "thread"
    }

    fn shutdown(&self, dev: &Device) {
        let handle = {
            let mut t = lock(&self.thread);
            t.sender = None;
            t.handle.take()
        };
        sync_file::wake(self.wake.as_fd());
        // Every queued job ends within the fence timeout.
        if let Some(t) = handle {
            let _ = t.join();
        }
        let all: Vec<_> = lock(&self.all).drain(..).collect();
        for s in all {
            dev.destroy_semaphore(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    /// One `poll()` over every pending fence: a fence that never signals
    /// does not delay another that does (pipes stand in for sync_files:
    /// `poll()` reports both readable the same way).
    #[test]
    fn a_stuck_fence_does_not_delay_another() {
        let (stuck_read, _stuck_write) = sync_file::pipe().unwrap();
        let (quick_read, quick_write) = sync_file::pipe().unwrap();
        let wake_write = sync_file::wake_fd().unwrap();
        let wake_read = wake_write.try_clone().unwrap();
        let (sender, receiver) = channel::<Job>();
        let signalled: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let record = signalled.clone();
        let stats = Arc::new(DeviceStats::default());
        let waiter = Waiter {
            jobs: receiver,
            wake: wake_read,
            signal: Box::new(move |_, v| {
                record.lock().unwrap().push((v, Instant::now()));
                vk::Result::SUCCESS
            }),
            free: FreeList::default(),
            device: "test".into(),
            pending: Vec::new(),
            stats: Some(stats.clone()),
        };
        let start = Instant::now();
        let thread = std::thread::spawn(move || waiter.run_guarded(&AtomicBool::new(false)));
        let job = |file, value, deadline| Job {
            file,
            timeline: vk::Semaphore::from_raw(value),
            value,
            deadline: start + deadline,
            what: format!("job {value}"),
            hazards: None,
            key: DmaBufKey { dev: 0, ino: value },
            memory: vk::DeviceMemory::null(),
            since: start,
        };
        sender.send(job(stuck_read, 1, Duration::from_millis(1500))).unwrap();
        sender.send(job(quick_read, 2, Duration::from_millis(1500))).unwrap();
        sync_file::wake(wake_write.as_fd());
        std::thread::sleep(Duration::from_millis(50));
        sync_file::wake(quick_write.as_fd());
        drop(sender);
        sync_file::wake(wake_write.as_fd());
        thread.join().unwrap();
        let seen = signalled.lock().unwrap().clone();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 1], "{seen:?}");
        let quick = seen[0].1 - start;
        let stuck = seen[1].1 - start;
        assert!(quick < Duration::from_millis(700), "the signalled fence waited {quick:?}");
        assert!(stuck >= Duration::from_millis(1500), "the stuck fence ended early: {stuck:?}");
        // Statistics: each wait, as long as it lasted (the stuck one until
        // its deadline), in the fence-wait histogram and per buffer.
        let doc = stats.document("test", 0, true);
        let waits = &doc.histograms.fence_wait_us;
        assert_eq!(waits.count, 2, "{waits:?}");
        assert!(waits.max >= 1_500_000 && waits.buckets[crate::stats::histogram::bucket_of(waits.max)] >= 1);
        let per_buffer: Vec<(u64, u64)> = doc.dma_bufs.iter().map(|b| (b.inode, b.wait_us)).collect();
        assert_eq!(per_buffer.len(), 2, "{per_buffer:?}");
        // Job 1 (inode 1) is the stuck one.
        assert!(per_buffer[0].1 >= 1_500_000 && per_buffer[1].1 < 700_000, "{per_buffer:?}");
    }

    #[test]
    fn a_panicking_waiter_releases_every_pending_wait() {
        let (stuck_read, _stuck_write) = sync_file::pipe().unwrap();
        let (ready_read, ready_write) = sync_file::pipe().unwrap();
        sync_file::wake(ready_write.as_fd());
        let wake_read = sync_file::wake_fd().unwrap();
        let (sender, receiver) = channel::<Job>();
        let signalled: Arc<Mutex<Vec<u64>>> = Arc::default();
        let record = signalled.clone();
        let waiter = Waiter {
            jobs: receiver,
            wake: wake_read,
            // The first signal (of the ready job) panics, as a bug would.
            signal: Box::new(move |_, v| {
                assert_ne!(v, 1, "waiter bug");
                record.lock().unwrap().push(v);
                vk::Result::SUCCESS
            }),
            free: FreeList::default(),
            device: "test".into(),
            pending: Vec::new(),
            stats: None,
        };
        let far = Instant::now() + Duration::from_secs(60);
        let job = |file, value| Job {
            file,
            timeline: vk::Semaphore::from_raw(value),
            value,
            deadline: far,
            what: "x".into(),
            hazards: None,
            key: DmaBufKey { dev: 0, ino: value },
            memory: vk::DeviceMemory::null(),
            since: Instant::now(),
        };
        sender.send(job(stuck_read, 2)).unwrap();
        sender.send(job(ready_read, 1)).unwrap();
        let dead = AtomicBool::new(false);
        let start = Instant::now();
        waiter.run_guarded(&dead);
        assert!(start.elapsed() < Duration::from_secs(10), "the stuck wait was not released");
        assert!(dead.load(Ordering::Relaxed));
        assert_eq!(*signalled.lock().unwrap(), vec![2]);
        drop(sender);
    }
}
