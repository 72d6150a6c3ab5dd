//! The per-device sync engine: the bridge for foreign fences, a pool of
//! SYNC_FD-exportable binary semaphores, one retire timeline per queue
//! (so the layer knows when its semaphores are free again without ever
//! waiting for a queue to idle), and publishing release fences.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ash::vk;

use super::acquire::{self, Inline};
use super::plan::Plan;
use super::release::{self, Publisher, Reuse};
use super::strategy::{self, Strategy};
use super::submit::{self, Additions, AroundBatch};
use super::waiter::ThreadBridge;
use super::{attachments, evict, Bridge, SemaphoreBridge, Wait};
use crate::dispatch::Device;
use crate::settings::{EvictPolicy, Settings};
use crate::views::Submits;

/// The engine's locks are leaves of the lock order (`lock_order`).
fn lock<T>(m: &Mutex<T>) -> crate::lock_order::Guard<'_, T> {
    crate::lock_order::lock(m, crate::lock_order::Level::Leaf)
}

/// Binary semaphores created exportable as SYNC_FD, reused once the queue
/// operation that used them has retired.
#[derive(Debug, Default)]
pub struct SemaphorePool {
    free: Mutex<Vec<vk::Semaphore>>,
    /// (retire timeline, value, semaphore): free again once the timeline
    /// reaches the value.
    busy: Mutex<Vec<(vk::Semaphore, u64, vk::Semaphore)>>,
    /// As `busy`, destroyed instead of freed.
    doomed: Mutex<Vec<(vk::Semaphore, u64, vk::Semaphore)>>,
}

impl SemaphorePool {
    pub fn take(&self, dev: &Device) -> Result<vk::Semaphore, vk::Result> {
        let reused = lock(&self.free).pop();
        if let Some(s) = reused {
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

    /// A semaphore left signalled (its export failed): destroyed once the
    /// queue operation that signalled it has completed, never reused.
    fn discard_after(&self, timeline: vk::Semaphore, value: u64, s: vk::Semaphore) {
        lock(&self.doomed).push((timeline, value, s));
    }

    /// Moves semaphores whose queue operation has completed back to `free`
    /// (or destroys the doomed ones). The timeline values are read before
    /// the lists are locked, and no lock is held across a call down.
    fn reclaim(&self, dev: &Device) {
        let mut timelines: Vec<vk::Semaphore> = lock(&self.busy).iter().map(|&(t, _, _)| t).collect();
        timelines.extend(lock(&self.doomed).iter().map(|&(t, _, _)| t));
        timelines.sort_by_key(|t| vk::Handle::as_raw(*t));
        timelines.dedup();
        if timelines.is_empty() {
            return;
        }
        let mut reached: HashMap<vk::Semaphore, u64> = HashMap::new();
        for t in timelines {
            reached.entry(t).or_insert_with(|| dev.timeline_value(t).unwrap_or(0));
        }
        let done = |t: &vk::Semaphore, v: u64| reached.get(t).is_some_and(|&r| r >= v);
        let freed: Vec<vk::Semaphore> = {
            let mut busy = lock(&self.busy);
            let (ready, pending): (Vec<_>, Vec<_>) = busy.drain(..).partition(|(t, v, _)| done(t, *v));
            *busy = pending;
            ready.into_iter().map(|(_, _, s)| s).collect()
        };
        lock(&self.free).extend(freed);
        let gone: Vec<vk::Semaphore> = {
            let mut doomed = lock(&self.doomed);
            let (ready, pending): (Vec<_>, Vec<_>) = doomed.drain(..).partition(|(t, v, _)| done(t, *v));
            *doomed = pending;
            ready.into_iter().map(|(_, _, s)| s).collect()
        };
        for s in gone {
            dev.destroy_semaphore(s);
        }
    }

    fn destroy_all(&self, dev: &Device) {
        let free: Vec<_> = lock(&self.free).drain(..).collect();
        for s in free {
            dev.destroy_semaphore(s);
        }
        let mut busy: Vec<_> = lock(&self.busy).drain(..).collect();
        busy.extend(lock(&self.doomed).drain(..));
        for (_, _, s) in busy {
            dev.destroy_semaphore(s);
        }
    }
}

/// A queue's retire timeline.
#[derive(Debug)]
struct Retire {
    timeline: vk::Semaphore,
    next: u64,
    /// The last value a successful submission will signal.
    submitted: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct SyncEngine {
    bridge: Box<dyn Bridge>,
    pool: SemaphorePool,
    retire: Mutex<HashMap<vk::Queue, Retire>>,
    /// Per queue family, the gate command buffer (one full barrier) that
    /// makes a layer batch's waits order what follows it.
    gates: Mutex<HashMap<u32, (vk::CommandPool, vk::CommandBuffer)>>,
    /// Whether release fences can be exported (SYNC_FD export works).
    can_publish: bool,
    timeout: Duration,
    warned_no_publish: AtomicBool,
    warned_ioctl: AtomicBool,
    /// Publishes release fences (when SYNC_FD export works).
    publisher: Option<Publisher>,
    /// Synchronised submissions so far (for `DYNABUF_EVICT=every:N`).
    submissions: AtomicU64,
    evict: EvictPolicy,
}

/// A `vkQueueSubmit` result the specification allows, for a failure of the
/// layer's own work (logged where it happened).
fn legal_submit_error(e: vk::Result) -> vk::Result {
    match e {
        vk::Result::ERROR_OUT_OF_HOST_MEMORY | vk::Result::ERROR_DEVICE_LOST => e,
        _ => vk::Result::ERROR_OUT_OF_DEVICE_MEMORY,
    }
}

impl SyncEngine {
    /// The engine for a device under `strategy` (from
    /// [`strategy::choose`]), or `None` (logged) when implicit sync is off.
    pub fn new(dev: &Device, strategy: Strategy, settings: &Settings) -> Option<SyncEngine> {
        let name = &dev.state.name;
        let Strategy::On { bridge, publish } = strategy else {
            log_info!("{name}: implicit sync {strategy}");
            return None;
        };
        let timeout = Duration::from_millis(settings.fence_timeout_ms);
        let bridge: Box<dyn Bridge> = match bridge {
            strategy::Bridge::Semaphore => Box::new(SemaphoreBridge),
            strategy::Bridge::Thread => match ThreadBridge::new(dev, timeout, name) {
                Ok(t) => Box::new(t),
                Err(e) => {
                    log_error!("{name}: no fence waiter thread ({e:?}); implicit sync off");
                    return None;
                }
            },
        };
        let publisher = match publish.then(|| Publisher::new(dev)) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                log_warn!("{name}: no release publisher thread ({e:?}); releases wait for the GPU instead");
                None
            }
            None => None,
        };
        log_info!("{name}: implicit sync: {strategy}; fence timeout {} ms", settings.fence_timeout_ms);
        Some(SyncEngine {
            bridge,
            pool: SemaphorePool::default(),
            retire: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            can_publish: publisher.is_some(),
            timeout,
            warned_no_publish: AtomicBool::new(false),
            warned_ioctl: AtomicBool::new(false),
            publisher,
            submissions: AtomicU64::new(0),
            evict: settings.evict,
        })
    }

    fn retire_value(&self, dev: &Device, queue: vk::Queue) -> Result<(vk::Semaphore, u64), vk::Result> {
        {
            let mut map = lock(&self.retire);
            if let Some(r) = map.get_mut(&queue) {
                r.next += 1;
                return Ok((r.timeline, r.next));
            }
        }
        let created = dev.create_timeline(0)?;
        let mut map = lock(&self.retire);
        let r = map.entry(queue).or_insert(Retire { timeline: created, next: 0, submitted: 0 });
        let raced = r.timeline != created;
        r.next += 1;
        let out = (r.timeline, r.next);
        drop(map);
        if raced {
            dev.destroy_semaphore(created);
        }
        Ok(out)
    }

    /// The gate command buffer for `family`, recorded once.
    fn gate(&self, dev: &Device, family: u32) -> Option<vk::CommandBuffer> {
        if let Some(&(_, cb)) = lock(&self.gates).get(&family) {
            return Some(cb);
        }
        let pool = dev.layer_command_pool(family).ok()?;
        let cb = match dev.layer_command_buffer(pool).and_then(|cb| match dev.record_gate(cb) {
            vk::Result::SUCCESS => Ok(cb),
            e => Err(e),
        }) {
            Ok(cb) => cb,
            Err(e) => {
                log_warn!("{}: no gate command buffer for family {family} ({e:?})", dev.state.name);
                dev.destroy_command_pool(pool, None);
                return None;
            }
        };
        let mut gates = lock(&self.gates);
        let &mut (_, kept) = gates.entry(family).or_insert((pool, cb));
        drop(gates);
        if kept != cb {
            dev.destroy_command_pool(pool, None);
        }
        Some(kept)
    }

    fn ioctl_failed(&self, dev: &Device, what: &str, e: &dyn std::fmt::Display) {
        if !self.warned_ioctl.swap(true, Ordering::Relaxed) {
            log_warn!("{}: {what}: {e} (further failures are not logged)", dev.state.name);
        }
    }

    /// A submission that hands nothing over: it counts for the eviction
    /// policy, which runs before it (nothing it does needs an import: the
    /// application's memory is the backing).
    /// `written`: the dynamic attachments its watched commands write.
    pub fn submitted_without_handovers(&self, dev: &Device, written: &[(vk::DeviceMemory, bool)]) {
        if !written.is_empty() {
            attachments::written(dev, written);
        }
        if self.evict == EvictPolicy::Off {
            return;
        }
        let count = self.submissions.fetch_add(1, Ordering::Relaxed) + 1;
        evict::run(dev, &evict::choose(dev, &Plan::default(), self.evict, count), self.timeout);
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
        let total = start.elapsed();
        let in_driver = match driver {
            Driver::Timed(d) => d,
            Driver::Untimed => Duration::ZERO,
        };
        stats.synced_submit(total, in_driver);
        r
    }

    /// How this submission's pending acquires are waited for, and the gate
    /// its layer batches use.
    fn inline_and_gate(
        &self,
        dev: &Device,
        queue: vk::Queue,
        plan: &Plan,
    ) -> (Inline, Option<vk::CommandBuffer>) {
        let family = dev.state.queue_info(queue).map(|q| q.family);
        let gate = family.filter(|&f| dev.state.queues.runs_barriers(f)).and_then(|f| self.gate(dev, f));
        let inline = if gate.is_none() {
            Inline::NoGate
        } else if self.bridge.is_timeline() && self.can_publish && !plan.releases.is_empty() {
            Inline::ReleaseFollows
        } else {
            Inline::No
        };
        (inline, gate)
    }

    /// Release semaphores the publisher finished with after their
    /// submissions stopped waiting go back to the pool's lists.
    fn take_published(&self) {
        let Some(p) = &self.publisher else { return };
        for f in p.take_finished() {
            let (timeline, value) = f.retire;
            match f.reuse {
                Reuse::Reuse => self.pool.retire_after(timeline, value, &[f.semaphore]),
                Reuse::Discard => self.pool.discard_after(timeline, value, f.semaphore),
            }
        }
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
        self.take_published();
        self.pool.reclaim(dev);
        let count = self.submissions.fetch_add(1, Ordering::Relaxed) + 1;
        let waits_ahead = plan.releases.iter().any(|h| h.dynamic) && waits_ahead(dev, submits);
        let dynamic =
            match attachments::prepare(dev, queue, plan, count, (self.evict, waits_ahead), self.timeout) {
                Ok(d) => d,
                Err(e) => {
                    log_warn!("{}: a dynamic attachment could not be re-validated: {e:?}", dev.state.name);
                    return legal_submit_error(e);
                }
            };
        let (inline, gate) = self.inline_and_gate(dev, queue, plan);
        let ioctl_failed = |what: &str, e: &dyn std::fmt::Display| self.ioctl_failed(dev, what, e);
        let mut used = Vec::new();
        let mut around: BTreeMap<usize, AroundBatch> = BTreeMap::new();
        let deadline = std::time::Instant::now() + self.timeout;
        let fill = (!dynamic.fill_acquires.is_empty()).then_some((0, &dynamic.fill_acquires));
        for (batch, list) in fill.into_iter().chain(plan.acquires.iter().map(|(&b, l)| (b, l))) {
            let got = acquire::batch(dev, &*self.bridge, &self.pool, list, inline, deadline, &ioctl_failed);
            used.extend(got.pool_semaphores);
            if !got.waits.is_empty() {
                around.entry(batch).or_default().waits.extend(got.waits);
            }
        }
        for (&batch, copies) in &dynamic.copy_in {
            around.entry(batch).or_default().first.extend(copies);
        }
        for (&batch, copies) in &dynamic.copy_out {
            around.entry(batch).or_default().last.extend(copies);
        }
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
        if around.is_empty() && used.is_empty() && plan.releases.is_empty() && dynamic.touched.is_empty() {
            let r = driver.time(|| call.plain(dev, queue, fence));
            if r == vk::Result::SUCCESS {
                attachments::submitted_without_copies(dev, &dynamic);
            }
            return r;
        }
        let fail = |e: vk::Result, used: Vec<vk::Semaphore>| {
            for s in used {
                self.pool.discard(dev, s);
            }
            attachments::finish(dev, &dynamic, None);
            e
        };
        // Every submission the layer adds to gets a retire point: its pool
        // semaphores, dynamic attachments and a release without SYNC_FD
        // export need to know when the work is done.
        let (timeline, value) = match self.retire_value(dev, queue) {
            Ok(r) => r,
            Err(e) => {
                log_warn!("{}: no retire timeline ({e:?}); the submission fails", dev.state.name);
                return fail(legal_submit_error(e), used);
            }
        };
        let mut signals = vec![Wait { semaphore: timeline, value }];
        signals.extend(release.map(|semaphore| Wait { semaphore, value: 0 }));
        let add = Additions { around: &around, gate, signals: &signals };
        let result = driver.time(|| match call {
            Call::V1(infos) => submit::submit_v1(dev, queue, submits, infos, &add, fence),
            Call::V2(infos) => submit::submit_v2(dev, queue, submits, infos, &add, fence),
        });
        if result != vk::Result::SUCCESS {
            return fail(result, used);
        }
        if let Some(r) = lock(&self.retire).get_mut(&queue) {
            r.submitted = r.submitted.max(value);
        }
        let mut reusable = used;
        if !plan.releases.is_empty() {
            match (release, &self.publisher) {
                (Some(s), Some(publisher)) => {
                    reusable.retain(|&u| u != s);
                    let outcome = driver
                        .time(|| publisher.publish(dev, s, (timeline, value), &plan.releases, self.timeout));
                    match outcome {
                        Some(Reuse::Reuse) => self.pool.retire_after(timeline, value, &[s]),
                        Some(Reuse::Discard) => {
                            self.pool.discard_after(timeline, value, s);
                            // Peers must still not see unfinished work.
                            release::wait_for_gpu(dev, timeline, value, self.timeout);
                        }
                        // Published later; the semaphore comes back then.
                        None => {}
                    }
                }
                _ => {
                    if !self.can_publish {
                        self.warn_no_publish(dev);
                    }
                    release::wait_for_gpu(dev, timeline, value, self.timeout);
                }
            }
        }
        self.pool.retire_after(timeline, value, &reusable);
        attachments::finish(dev, &dynamic, Some((queue, timeline, value)));
        result
    }

    fn warn_no_publish(&self, dev: &Device) {
        if !self.warned_no_publish.swap(true, Ordering::Relaxed) {
            log_warn!(
                "{}: this device cannot export SYNC_FD fences, so releases publish none; \
                 the layer waits (bounded) for the GPU before returning instead",
                dev.state.name
            );
        }
    }

    /// Stops the bridge and frees the layer's objects (at `vkDestroyDevice`,
    /// when the application has waited for the device).
    pub fn shutdown(&self, dev: &Device) {
        self.bridge.shutdown(dev);
        if let Some(p) = &self.publisher {
            p.shutdown();
        }
        self.take_published();
        // The application waited for its work; the layer's trailing batches
        // may still be pending (bounded wait for each queue's last one).
        let last: Vec<(vk::Semaphore, u64)> =
            lock(&self.retire).values().map(|r| (r.timeline, r.submitted)).collect();
        for (timeline, value) in last {
            let _ = dev.wait_timeline(timeline, value, self.timeout.as_nanos() as u64);
        }
        self.pool.destroy_all(dev);
        let retire: Vec<_> = lock(&self.retire).drain().map(|(_, r)| r.timeline).collect();
        for t in retire {
            dev.destroy_semaphore(t);
        }
        let gates: Vec<_> = lock(&self.gates).drain().map(|(_, (pool, _))| pool).collect();
        for pool in gates {
            dev.destroy_command_pool(pool, None);
        }
    }
}

impl crate::dispatch::state::Engine for SyncEngine {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn shutdown(&self, dev: &Device) {
        SyncEngine::shutdown(self, dev)
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

/// Whether the submission waits for a timeline value not reached yet (work
/// submitted after it may run before it: wait-before-signal), asked of the
/// semaphores themselves, without a lock.
fn waits_ahead(dev: &Device, submits: &Submits<'_>) -> bool {
    submits.waits().into_iter().any(|(s, v)| v > 0 && dev.timeline_value(s).is_ok_and(|now| now < v))
}
