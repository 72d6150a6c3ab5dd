//! Hazard reports (`DYNABUF_HAZARDS`): sharing mistakes the layer sees,
//! checked where they happen (a submission, a free, the device's end, a
//! fence wait) and sent through the device's [`HazardReporter`]. With
//! `off` the device has no reporter, and every function here returns at
//! its first line.
//!
//! [`HazardReporter`]: crate::dispatch::hazard_reporter::HazardReporter

use ash::vk;

use crate::dispatch::Device;
use crate::hazard::HazardKind;
use crate::registry::hazards::{Found, MemoryFacts, Step, Submission};
use crate::registry::{CommandEvent, Direction, DmaBufKey, MemoryTable, Planes};
use crate::views::Submits;

/// The dma-buf a memory imports or exports, as the log names it.
fn subject_of(dev: &Device, memory: vk::DeviceMemory) -> String {
    dev.state
        .with_memory(|t| t.get(memory).and_then(|m| m.dma_buf.as_ref().map(|d| d.key)))
        .map_or_else(|| format!("memory {:#x}", vk::Handle::as_raw(memory)), |k| k.to_string())
}

/// What each kind tells the application to do.
fn advice(kind: HazardKind) -> &'static str {
    match kind {
        HazardKind::UseWithoutAcquire => {
            "a submission uses this imported dma-buf while the device does not hold it (no acquire since its \
             last release, or never acquired): a peer may be writing it. Record a queue family ownership \
             transfer from VK_QUEUE_FAMILY_FOREIGN_EXT (or EXTERNAL) before the use, or run with \
             DYNABUF_SYNC_SCOPE=all"
        }
        HazardKind::WrittenNeverReleased => {
            "the device wrote this dma-buf and then freed it, acquired it again or went away without \
             releasing it to VK_QUEUE_FAMILY_FOREIGN_EXT/EXTERNAL: peers may read it before the write is \
             done. Record a release barrier after the last write"
        }
        HazardKind::CpuAccessUnbracketed => {
            "the GPU uses this dma-buf while the application holds a host-coherent mapping of it open: CPU \
             writes through it reach the dma-buf without DMA_BUF_IOCTL_SYNC brackets, so other devices may \
             see them torn. Unmap before submitting, or bracket CPU writes with vkFlushMappedMemoryRanges \
             (dynabuf issues DMA_BUF_IOCTL_SYNC there) or DMA_BUF_IOCTL_SYNC yourself"
        }
        HazardKind::SelfWait => {
            "an acquire waits for the fence of an earlier submission on the same queue that itself waits for \
             a semaphore only this submission signals: a deadlock, which dynabuf breaks after \
             DYNABUF_FENCE_TIMEOUT_MS by letting the GPU go on without the fence. Signal the semaphore \
             from elsewhere, or acquire on another queue"
        }
        HazardKind::FenceTimeout => "",
    }
}

/// Reports what the tracker found.
fn report_found(dev: &Device, found: &[Found], queue: Option<vk::Queue>) {
    let Some(reporter) = &dev.state.hazards else { return };
    for f in found {
        let mut objects = vec![(vk::ObjectType::DEVICE_MEMORY, vk::Handle::as_raw(f.memory))];
        if let Some(q) = queue {
            objects.push((vk::ObjectType::QUEUE, vk::Handle::as_raw(q)));
        }
        let subject = subject_of(dev, f.memory);
        let text = format!("memory {:#x}: {}", vk::Handle::as_raw(f.memory), advice(f.kind));
        dev.state.count_hazard(f.kind);
        reporter.report(f.kind, &subject, &objects, &text);
    }
}

/// A peer's fence on `key` did not signal in time (`text` says what the
/// layer did instead).
pub fn fence_timeout(dev: &Device, key: DmaBufKey, memory: Option<vk::DeviceMemory>, text: &str) {
    let Some(reporter) = &dev.state.hazards else {
        log_warn!("{}: {key}: {text}", dev.state.name);
        return;
    };
    let objects: Vec<(vk::ObjectType, u64)> =
        memory.map(|m| (vk::ObjectType::DEVICE_MEMORY, vk::Handle::as_raw(m))).into_iter().collect();
    dev.state.count_hazard(HazardKind::FenceTimeout);
    reporter.report(HazardKind::FenceTimeout, &key.to_string(), &objects, text);
}

/// A submission: what its command buffers recorded, in submission order,
/// turned into steps on memories and run through the tracker. Its timeline
/// signals are watched while some release waits on an unsignalled value.
/// Returns the dynamic attachments the submission's watched commands write,
/// each with whether a write follows its last release in the submission
/// (empty, without allocating, when nothing is watched).
pub fn submitted(dev: &Device, queue: vk::Queue, submits: &Submits<'_>) -> Vec<(vk::DeviceMemory, bool)> {
    let Some(reporter) = &dev.state.hazards else { return Vec::new() };
    reporter.deliver_deferred();
    let events: Vec<CommandEvent> = if dev.state.has_dma_buf_memory() && dev.state.has_recorded_events() {
        dev.state.with_commands(|log| {
            submits.command_buffers().flat_map(|cb| log.events_of(cb).iter().copied()).collect()
        })
    } else {
        Vec::new()
    };
    if events.is_empty() {
        if reporter.watches_signals() {
            let signals = submits.signals();
            reporter.with_tracker(|t| t.signals_seen(&signals));
        }
        return Vec::new();
    }
    let (steps, written) = dev.state.with_memory(|t| {
        let steps = steps_of(dev, t, &events);
        let written = written_backings(t, &steps);
        (steps, written)
    });
    let (waits, signals) = (submits.waits(), submits.signals());
    let submission = Submission { queue, waits: &waits, signals: &signals };
    let (mut found, self_waits) = reporter
        .with_tracker(|t| (t.submitted(&steps, dev.state.scope_all), t.self_waits(&steps, submission)));
    // Confirm with the semaphore itself (another device, process or
    // thread may have signalled it meanwhile): no lock is held here.
    found.extend(
        self_waits
            .into_iter()
            .filter(|w| dev.timeline_value(w.semaphore).is_ok_and(|v| v < w.value))
            .map(|w| Found { kind: HazardKind::SelfWait, memory: w.memory }),
    );
    report_found(dev, &found, Some(queue));
    written
}

/// The dynamic attachments the watched commands write, each with whether a
/// write comes after its last release in the submission: their releases
/// copy out even when the release's source access does not say it wrote
/// (an earlier barrier of the application's may have made the writes
/// available). The sync engine settles it with the submission's copies.
fn written_backings(t: &MemoryTable, steps: &[Step]) -> Vec<(vk::DeviceMemory, bool)> {
    let mut written: Vec<(vk::DeviceMemory, bool)> = Vec::new();
    for s in steps {
        match *s {
            Step::Use { facts, writes: true } if t.get(facts.memory).is_some_and(|r| r.dynamic.is_some()) => {
                match written.iter_mut().find(|w| w.0 == facts.memory) {
                    Some(w) => w.1 = true,
                    None => written.push((facts.memory, true)),
                }
            }
            Step::Release { facts } => {
                if let Some(w) = written.iter_mut().find(|w| w.0 == facts.memory) {
                    w.1 = false;
                }
            }
            _ => {}
        }
    }
    written
}

/// `vkCreateSemaphore`: timeline semaphores take part in self-waits.
pub fn semaphore_created(dev: &Device, semaphore: vk::Semaphore, timeline_initial: Option<u64>) {
    if let Some(reporter) = &dev.state.hazards {
        reporter.with_tracker(|t| t.semaphore_created(semaphore, timeline_initial));
    }
}

/// Resolves recorded events to steps on the memories their resources are
/// bound to now (a barrier's planes pick a disjoint image's memories).
fn steps_of(dev: &Device, t: &MemoryTable, events: &[CommandEvent]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(events.len());
    for e in events {
        let (resource, planes) = match *e {
            CommandEvent::Transfer(x) => (x.resource, x.planes),
            CommandEvent::Use { resource, .. } => (resource, Planes::ALL),
        };
        for (memory, _) in t.bindings_of(resource, planes) {
            let Some(facts) = facts_of(dev, t, memory) else { continue };
            steps.push(match *e {
                CommandEvent::Transfer(x) if x.direction == Direction::Acquire => {
                    Step::Acquire { facts, writes: x.writes }
                }
                CommandEvent::Transfer(_) => Step::Release { facts },
                CommandEvent::Use { writes, .. } => Step::Use { facts, writes },
            });
        }
    }
    steps
}

/// `vkSignalSemaphore`: a timeline value the host signalled (it cannot
/// be a submission's self-wait).
pub fn host_signalled(dev: &Device, semaphore: vk::Semaphore, value: u64) {
    if let Some(reporter) = &dev.state.hazards {
        reporter.with_tracker(|t| t.host_signalled(semaphore, value));
    }
}

/// `vkFreeMemory` of tracked external memory.
pub fn freed(dev: &Device, memory: vk::DeviceMemory) {
    let Some(reporter) = &dev.state.hazards else { return };
    if let Some(f) = reporter.with_tracker(|t| t.freed(memory, dev.state.scope_all)) {
        report_found(dev, &[f], None);
    }
    reporter.names.forget(vk::ObjectType::DEVICE_MEMORY, vk::Handle::as_raw(memory));
}

/// `vkDestroyDevice`, before the sync engine stops: what was written and
/// never released.
pub fn device_going(dev: &Device) {
    let Some(reporter) = &dev.state.hazards else { return };
    reporter.deliver_deferred();
    let found = reporter.with_tracker(|t| t.device_gone(dev.state.scope_all));
    report_found(dev, &found, None);
}

/// `vkDestroyDevice`, after the engine's threads stopped (their last fence
/// timeouts included): deliver what they reported, then the summary.
pub fn device_gone(dev: &Device) {
    let Some(reporter) = &dev.state.hazards else { return };
    reporter.deliver_deferred();
    if let Some(summary) = reporter.summary() {
        log_warn!("hazards for {} ({:#x}): {summary}", dev.state.name, vk::Handle::as_raw(dev.handle));
    }
}

/// What the hook knows about `memory` for a step (`None`: not a dma-buf's).
fn facts_of(dev: &Device, t: &MemoryTable, memory: vk::DeviceMemory) -> Option<MemoryFacts> {
    let m = t.get(memory)?;
    m.dma_buf.as_ref()?;
    let coherent = dev
        .state
        .memory_types
        .get(m.memory_type as usize)
        .is_some_and(|f| f.contains(vk::MemoryPropertyFlags::HOST_COHERENT));
    Some(MemoryFacts {
        memory,
        imported: matches!(m.kind, crate::registry::ExternalKind::Import(_)),
        mapped_coherent: m.host_mapped && coherent,
    })
}
