//! The per-device sync engine: the bridge for foreign fences, a pool of
//! SYNC_FD-exportable binary semaphores, one retire timeline per queue
//! (so the layer knows when its semaphores are free again without ever
//! waiting for a queue to idle), and publishing release fences.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ash::vk;

use super::plan::Plan;
use super::submit::{self, Additions};
use super::waiter::ThreadBridge;
use super::{attachments, Bridge, SemaphoreBridge, Wait};
use crate::config::{EvictPolicy, Settings, SyncMode};
use crate::dispatch::Device;
use crate::entry::views::Submits;
use crate::registry::caps::{Capabilities, SyncStrategy};
use crate::sys::dma_buf::{self, Access};
use crate::sys::sync_file;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Binary semaphores created exportable as SYNC_FD, reused once the queue
/// operation that used them has retired.
#[derive(Debug, Default)]
pub struct SemaphorePool {
    free: Mutex<Vec<vk::Semaphore>>,
    /// (retire timeline, value, semaphore): free again once the timeline
    /// reaches the value.
    busy: Mutex<Vec<(vk::Semaphore, u64, vk::Semaphore)>>,
}

impl SemaphorePool {
    pub fn take(&self, dev: &Device) -> Result<vk::Semaphore, vk::Result> {
        if let Some(s) = lock(&self.free).pop() {
            return Ok(s);
        }
        let mut export = vk::ExportSemaphoreCreateInfo::default()
            .handle_types(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut export);
        let mut s = vk::Semaphore::null();
        match dev.create_semaphore(&info, &mut s) {
            vk::Result::SUCCESS => Ok(s),
            e => Err(e),
        }
    }

    /// A semaphore whose state is unknown (a failed import or submission):
    /// destroyed rather than reused.
    pub fn discard(&self, dev: &Device, s: vk::Semaphore) {
        dev.destroy_semaphore(s);
    }

    fn retire_after(&self, timeline: vk::Semaphore, value: u64, used: &[vk::Semaphore]) {
        lock(&self.busy).extend(used.iter().map(|&s| (timeline, value, s)));
    }

    /// Moves semaphores whose queue operation has completed back to `free`.
    fn reclaim(&self, dev: &Device) {
        let mut busy = lock(&self.busy);
        if busy.is_empty() {
            return;
        }
        let mut reached: HashMap<vk::Semaphore, u64> = HashMap::new();
        let mut free = lock(&self.free);
        busy.retain(|&(timeline, value, s)| {
            let done = *reached.entry(timeline).or_insert_with(|| dev.timeline_value(timeline).unwrap_or(0));
            if done >= value {
                free.push(s);
                false
            } else {
                true
            }
        });
    }

    fn destroy_all(&self, dev: &Device) {
        for s in lock(&self.free).drain(..) {
            dev.destroy_semaphore(s);
        }
        for (_, _, s) in lock(&self.busy).drain(..) {
            dev.destroy_semaphore(s);
        }
    }
}

/// A queue's retire timeline.
#[derive(Debug)]
struct Retire {
    timeline: vk::Semaphore,
    next: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct SyncEngine {
    bridge: Box<dyn Bridge>,
    pool: SemaphorePool,
    retire: Mutex<HashMap<vk::Queue, Retire>>,
    /// Whether release fences can be exported (SYNC_FD export works).
    can_publish: bool,
    timeout: Duration,
    warned_no_publish: AtomicBool,
    warned_ioctl: AtomicBool,
    /// Synchronised submissions so far (for `DYNABUF_EVICT=every:N`).
    submissions: std::sync::atomic::AtomicU64,
    evict: EvictPolicy,
}

impl SyncEngine {
    /// The engine for a device, or `None` (logged) when implicit sync is off
    /// or impossible here.
    pub fn new(dev: &Device, caps: &Capabilities, settings: &Settings) -> Option<SyncEngine> {
        let name = &dev.state.name;
        if settings.sync == SyncMode::Off {
            log_info!("{name}: implicit sync off (DYNABUF_SYNC=off)");
            return None;
        }
        if caps.strategy() == SyncStrategy::Unavailable {
            log_warn!("{name}: the dma-buf sync-file ioctls do not work here; implicit sync off");
            return None;
        }
        let timeout = Duration::from_millis(settings.fence_timeout_ms);
        let has_timeline = dev.fns.signal_semaphore.is_some()
            && dev.fns.get_semaphore_counter_value.is_some()
            && dev.create_timeline(0).map(|t| dev.destroy_semaphore(t)).is_ok();
        if !has_timeline {
            log_warn!("{name}: no timeline semaphores; implicit sync off");
            return None;
        }
        let bridge: Box<dyn Bridge> = match settings.sync {
            SyncMode::Semaphore if caps.sync_fd_import.yes() => Box::new(SemaphoreBridge),
            SyncMode::Semaphore => {
                log_warn!(
                    "{name}: DYNABUF_SYNC=semaphore, but the device cannot import SYNC_FD; using the thread"
                );
                Box::new(ThreadBridge::new(dev, timeout, name).ok()?)
            }
            _ => match ThreadBridge::new(dev, timeout, name) {
                Ok(t) => Box::new(t),
                Err(_) if caps.sync_fd_import.yes() => Box::new(SemaphoreBridge),
                Err(_) => return None,
            },
        };
        let can_publish = caps.sync_fd_export.yes();
        log_info!(
            "{name}: implicit sync by {}; release fences {}; fence timeout {} ms",
            bridge.name(),
            if can_publish {
                "published as SYNC_FD"
            } else {
                "not exportable (the layer waits for the GPU instead)"
            },
            settings.fence_timeout_ms
        );
        Some(SyncEngine {
            bridge,
            pool: SemaphorePool::default(),
            retire: Mutex::new(HashMap::new()),
            can_publish,
            timeout,
            warned_no_publish: AtomicBool::new(false),
            warned_ioctl: AtomicBool::new(false),
            submissions: std::sync::atomic::AtomicU64::new(0),
            evict: settings.evict,
        })
    }

    fn retire_value(&self, dev: &Device, queue: vk::Queue) -> Result<(vk::Semaphore, u64), vk::Result> {
        let mut map = lock(&self.retire);
        let r = match map.entry(queue) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Retire { timeline: dev.create_timeline(0)?, next: 0 })
            }
        };
        r.next += 1;
        Ok((r.timeline, r.next))
    }

    fn ioctl_failed(&self, dev: &Device, what: &str, e: &dyn std::fmt::Display) {
        if !self.warned_ioctl.swap(true, Ordering::Relaxed) {
            log_warn!("{}: {what}: {e} (further failures are not logged)", dev.state.name);
        }
    }

    /// The waits for one batch's acquires. Already-signalled fences cost
    /// no wait at all.
    fn acquire(
        &self,
        dev: &Device,
        acquires: &[super::plan::Handover],
        used: &mut Vec<vk::Semaphore>,
    ) -> Vec<Wait> {
        let mut waits = Vec::new();
        for a in acquires {
            let access = if a.writes { Access::Write } else { Access::Read };
            if dma_buf::is_idle(a.fd.as_fd(), access).unwrap_or(false) {
                dev.state.count(|s| &s.acquires_ready);
                continue;
            }
            let file = match dma_buf::export_sync_file(a.fd.as_fd(), access) {
                Ok(f) => f,
                Err(e) => {
                    self.ioctl_failed(dev, &format!("acquire of {}", a.key), &e);
                    continue;
                }
            };
            if sync_file::wait(file.as_fd(), Duration::ZERO).unwrap_or(false) {
                dev.state.count(|s| &s.acquires_ready);
                continue;
            }
            dev.state.count(|s| &s.acquires_waited);
            log_debug!("{}: acquire of {} waits for a pending fence ({:?})", dev.state.name, a.key, access);
            match self.bridge.wait_for(dev, &self.pool, file, &a.key.to_string()) {
                Ok(w) => {
                    if !self.bridge.is_timeline() {
                        used.push(w.semaphore);
                    }
                    waits.push(w);
                }
                Err(e) => log_warn!("{}: cannot make the GPU wait for {}: {e:?}", dev.state.name, a.key),
            }
        }
        waits
    }

    /// Submits with implicit sync for `plan` (timed when statistics are on:
    /// the layer's own share is `sync_total_ns - sync_driver_ns`).
    pub fn submit(
        &self,
        dev: &Device,
        queue: vk::Queue,
        submits: &Submits<'_>,
        call: Call<'_, '_>,
        fence: vk::Fence,
        plan: &Plan,
    ) -> vk::Result {
        let Some(stats) = &dev.state.stats else {
            return self.run_submission(dev, queue, submits, call, fence, plan, &mut Driver::Untimed);
        };
        let start = std::time::Instant::now();
        let mut driver = Driver::Timed(Duration::ZERO);
        let r = self.run_submission(dev, queue, submits, call, fence, plan, &mut driver);
        let total = start.elapsed().as_nanos() as u64;
        stats.sync_total_ns.fetch_add(total, Ordering::Relaxed);
        if let Driver::Timed(d) = driver {
            stats.sync_driver_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn run_submission(
        &self,
        dev: &Device,
        queue: vk::Queue,
        submits: &Submits<'_>,
        call: Call<'_, '_>,
        fence: vk::Fence,
        plan: &Plan,
        driver: &mut Driver,
    ) -> vk::Result {
        self.pool.reclaim(dev);
        let count = self.submissions.fetch_add(1, Ordering::Relaxed) + 1;
        let dynamic = match attachments::prepare(dev, queue, plan, count, self.evict, self.timeout) {
            Ok(d) => d,
            Err(e) => {
                log_warn!("{}: a dynamic attachment could not be re-validated: {e:?}", dev.state.name);
                return e;
            }
        };
        let mut used = Vec::new();
        let waits: BTreeMap<usize, Vec<Wait>> = plan
            .acquires
            .iter()
            .map(|(&batch, list)| (batch, self.acquire(dev, list, &mut used)))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        let release = if !plan.releases.is_empty() && self.can_publish {
            match self.pool.take(dev) {
                Ok(s) => {
                    used.push(s);
                    Some(s)
                }
                Err(e) => {
                    log_warn!("{}: no release semaphore ({e:?})", dev.state.name);
                    None
                }
            }
        } else {
            None
        };
        // The common case, an acquire whose fences had all signalled and no
        // release: nothing to add, so the submission goes down untouched.
        if waits.is_empty() && used.is_empty() && plan.releases.is_empty() && dynamic.touched.is_empty() {
            return driver.time(|| call.plain(dev, queue, fence));
        }
        // Pool semaphores, dynamic attachments (and a release without
        // SYNC_FD export) need the queue's retire timeline to know when the
        // work is done.
        let retire = if used.is_empty()
            && dynamic.touched.is_empty()
            && (self.can_publish || plan.releases.is_empty())
        {
            None
        } else {
            match self.retire_value(dev, queue) {
                Ok(r) => Some(r),
                Err(e) => {
                    log_warn!(
                        "{}: no retire timeline ({e:?}); submitting without implicit sync",
                        dev.state.name
                    );
                    for s in used {
                        self.pool.discard(dev, s);
                    }
                    return call.plain(dev, queue, fence);
                }
            }
        };
        let mut signals: Vec<Wait> =
            retire.map(|(semaphore, value)| Wait { semaphore, value }).into_iter().collect();
        signals.extend(release.map(|semaphore| Wait { semaphore, value: 0 }));
        let add = Additions {
            waits: &waits,
            signals: &signals,
            prepend: &dynamic.prepend,
            append_last: &dynamic.append,
        };
        let result = driver.time(|| match call {
            Call::V1(infos) => submit::submit_v1(dev, queue, submits, infos, &add, fence),
            Call::V2(infos) => submit::submit_v2(dev, queue, submits, infos, &add, fence),
        });
        if result != vk::Result::SUCCESS {
            for s in used {
                self.pool.discard(dev, s);
            }
            return result;
        }
        if !plan.releases.is_empty() {
            self.publish(dev, plan, release, retire, driver);
        }
        if let Some((timeline, value)) = retire {
            self.pool.retire_after(timeline, value, &used);
            if !dynamic.touched.is_empty() {
                attachments::finish(dev, &dynamic.touched, (timeline, value, queue));
            }
        }
        result
    }

    /// Puts the submission's fence into every released buffer.
    fn publish(
        &self,
        dev: &Device,
        plan: &Plan,
        release: Option<vk::Semaphore>,
        retire: Option<(vk::Semaphore, u64)>,
        driver: &mut Driver,
    ) {
        let Some(semaphore) = release else {
            if !self.warned_no_publish.swap(true, Ordering::Relaxed) {
                log_warn!(
                    "{}: this device cannot export SYNC_FD fences, so releases publish none; \
                     the layer waits (bounded) for the GPU before returning instead",
                    dev.state.name
                );
            }
            let Some((timeline, value)) = retire else { return };
            let r = dev.wait_timeline(timeline, value, self.timeout.as_nanos() as u64);
            if r != vk::Result::SUCCESS {
                log_warn!(
                    "{}: the released work did not finish within the fence timeout ({r:?})",
                    dev.state.name
                );
            }
            return;
        };
        let file = match driver.time(|| dev.export_sync_fd(semaphore)) {
            Ok(f) => f,
            Err(e) => {
                log_warn!("{}: vkGetSemaphoreFdKHR for a release failed: {e:?}", dev.state.name);
                return;
            }
        };
        for r in &plan.releases {
            dev.state.count(|s| &s.releases_published);
            // `None`: the driver says the work is already done.
            let Some(file) = &file else { continue };
            let access = if r.writes { Access::Write } else { Access::Read };
            if let Err(e) = dma_buf::import_sync_file(r.fd.as_fd(), file.as_fd(), access) {
                self.ioctl_failed(dev, &format!("release of {}", r.key), &e);
            } else {
                log_debug!("{}: release of {} published a {access:?} fence", dev.state.name, r.key);
            }
        }
    }

    /// Stops the bridge and frees the layer's semaphores (at
    /// `vkDestroyDevice`, when the application has waited for the device).
    pub fn shutdown(&self, dev: &Device) {
        self.bridge.shutdown(dev);
        self.pool.destroy_all(dev);
        for (_, r) in lock(&self.retire).drain() {
            dev.destroy_semaphore(r.timeline);
        }
    }
}

/// Time spent in the driver, when statistics are on.
#[derive(Debug)]
pub enum Driver {
    Untimed,
    Timed(Duration),
}

impl Driver {
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        match self {
            Driver::Untimed => f(),
            Driver::Timed(total) => {
                let t = std::time::Instant::now();
                let r = f();
                *total += t.elapsed();
                r
            }
        }
    }
}

/// The application's call, to pass on.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a, 'b> {
    V1(&'a [vk::SubmitInfo<'b>]),
    V2(&'a [vk::SubmitInfo2<'b>]),
}

impl Call<'_, '_> {
    fn plain(self, dev: &Device, queue: vk::Queue, fence: vk::Fence) -> vk::Result {
        match self {
            Call::V1(i) => dev.queue_submit(queue, i, fence),
            Call::V2(i) => dev.queue_submit2(queue, i, fence),
        }
    }
}
