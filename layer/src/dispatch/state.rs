//! The layer's per-device state, kept in [`super::Device`] (so it sits
//! with the dispatch tables, below every module that uses it).
//!
//! Its locks take part in the lock order written in `lock_order`: memory
//! before commands before queues, and none held across a call down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use crate::hazard::HazardKind;
use crate::registry::caps::Capabilities;
use crate::registry::{CommandLog, MemoryTable};
use crate::stats::file::StatsOutput;
use crate::stats::DeviceStats;
use crate::sys::drm::Node;

/// A device's implicit-sync engine, as the state below `sync` knows it:
/// something to shut down, and to hand back to `sync` by its type.
pub trait Engine: std::any::Any + std::fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn std::any::Any;
    /// Stops what runs in the background and frees the engine's objects.
    fn shutdown(&self, dev: &super::Device);
}

/// The device's queue families: what each can do, and which the
/// application created queues in.
#[derive(Clone, Debug, Default)]
pub struct QueueFamilies {
    flags: Vec<vk::QueueFlags>,
    created: Vec<u32>,
}

impl QueueFamilies {
    pub fn new(flags: Vec<vk::QueueFlags>, infos: &[vk::DeviceQueueCreateInfo<'_>]) -> Self {
        QueueFamilies { flags, created: infos.iter().map(|q| q.queue_family_index).collect() }
    }

    /// Whether queues of `family` can record copies (graphics, compute and
    /// transfer queues can; video and sparse-only queues cannot).
    pub fn can_copy(&self, family: u32) -> bool {
        let copy = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE | vk::QueueFlags::TRANSFER;
        self.flags.get(family as usize).is_some_and(|f| f.intersects(copy))
    }

    /// Whether queues of `family` run command buffers with pipeline
    /// barriers (everything but sparse-binding-only families).
    pub fn runs_barriers(&self, family: u32) -> bool {
        self.flags.get(family as usize).is_some_and(|f| !(*f & !vk::QueueFlags::SPARSE_BINDING).is_empty())
    }

    /// The first created family that cannot copy, if any.
    pub fn first_that_cannot_copy(&self) -> Option<u32> {
        self.created.iter().copied().find(|&f| !self.can_copy(f))
    }
}

/// A queue's family and index, from `vkGetDeviceQueue{,2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub family: u32,
    pub index: u32,
}

#[derive(Debug)]
pub struct DeviceState {
    /// `dev<N> <physical device name>`, for log lines (N counts devices
    /// created in this process).
    pub name: String,
    memory: Mutex<MemoryTable>,
    /// `memory.len()`, readable without the lock: zero means no hook has
    /// anything to look up.
    tracked_memory: AtomicUsize,
    /// `memory.dma_buf_memory_count()`, readable without the lock: zero
    /// means hazard watching has nothing to look at.
    tracked_dma_bufs: AtomicUsize,
    /// How many of them are dynamic attachments (the eviction policy runs
    /// at every submission while there are any).
    tracked_dynamic: AtomicUsize,
    commands: Mutex<CommandLog>,
    /// `commands.recorded()`, readable without the lock.
    recorded_transfers: AtomicUsize,
    /// `commands.with_events()` (hazard events), readable without the lock.
    recorded_events: AtomicUsize,
    queue_infos: Mutex<HashMap<vk::Queue, QueueInfo>>,
    /// Statistics, when `DYNABUF_STATS=1` or `DYNABUF_STATS_FILE` is set
    /// (shared with the threads that record or write them).
    pub stats: Option<Arc<DeviceStats>>,
    /// `DYNABUF_STATS=1` when the device was created: print the summary
    /// line at `vkDestroyDevice` (settings may change later).
    pub stats_line: bool,
    /// `DYNABUF_STATS_FILE` and `DYNABUF_STATS_INTERVAL_MS` when the device
    /// was created.
    pub stats_file: Option<std::path::PathBuf>,
    pub stats_interval_ms: u64,
    /// The stats file's writer, between device creation and destruction
    /// (lock level `Leaf`).
    stats_output: Mutex<Option<StatsOutput>>,
    /// What the probe found.
    pub caps: Capabilities,
    /// The device's DRM node, when it has one.
    pub drm: Option<Node>,
    /// Functions of extensions only the layer enabled: hidden from the
    /// application's `vkGetDeviceProcAddr`.
    pub hidden: Vec<&'static std::ffi::CStr>,
    /// Implicit sync, when on and possible (the engine lives above this
    /// module: see [`Engine`]).
    sync: Option<Box<dyn Engine>>,
    /// `DYNABUF_SYNC_SCOPE=all`: every submission touches every dma-buf.
    pub scope_all: bool,
    /// The device's memory budget, when `VK_EXT_memory_budget` is enabled.
    pub memory_budget: Option<crate::dispatch::instance::MemoryBudget>,
    /// Whether the `timelineSemaphore` feature is on.
    pub timeline: bool,
    /// The application enabled `VK_EXT_external_memory_acquire_unmodified`,
    /// which the driver lacks: the layer took it out of the enabled list and
    /// takes its structure out of barrier chains (decided at `vkCreateDevice`).
    pub emulates_acquire_unmodified: bool,
    /// The device's queue families.
    pub queues: QueueFamilies,
    /// Whether dma-buf imports may become dynamic attachments here, or why
    /// not.
    pub dynamic: Result<(), &'static str>,
    /// The property flags of each memory type.
    pub memory_types: Vec<vk::MemoryPropertyFlags>,
    /// Hazard bookkeeping and reporting, unless `DYNABUF_HAZARDS=off`.
    pub hazards: Option<std::sync::Arc<super::hazard_reporter::HazardReporter>>,
}

use crate::lock_order::{lock, Level};

impl DeviceState {
    pub fn new(name: String, stats: bool) -> Self {
        DeviceState {
            name,
            memory: Mutex::default(),
            tracked_memory: AtomicUsize::new(0),
            tracked_dma_bufs: AtomicUsize::new(0),
            tracked_dynamic: AtomicUsize::new(0),
            commands: Mutex::default(),
            recorded_transfers: AtomicUsize::new(0),
            recorded_events: AtomicUsize::new(0),
            queue_infos: Mutex::default(),
            stats: stats.then(Arc::default),
            stats_output: Mutex::default(),
            caps: Capabilities::default(),
            drm: None,
            hidden: Vec::new(),
            sync: None,
            scope_all: false,
            memory_budget: None,
            timeline: false,
            emulates_acquire_unmodified: false,
            queues: QueueFamilies::default(),
            dynamic: Err("the layer is disabled"),
            memory_types: Vec::new(),
            hazards: None,
            stats_line: false,
            stats_file: None,
            stats_interval_ms: 0,
        }
    }

    /// The device's sync engine, of type `E` (`sync::SyncEngine`).
    #[inline]
    pub fn sync<E: Engine>(&self) -> Option<&E> {
        self.sync.as_deref()?.as_any().downcast_ref()
    }

    /// Whether implicit sync is on.
    pub fn has_sync(&self) -> bool {
        self.sync.is_some()
    }

    pub fn set_sync(&mut self, engine: Option<Box<dyn Engine>>) {
        self.sync = engine;
    }

    /// Shuts the engine down (at `vkDestroyDevice`).
    pub fn shutdown_sync(&self, dev: &super::Device) {
        if let Some(e) = &self.sync {
            e.shutdown(dev);
        }
    }

    /// Whether `name` belongs to an extension only the layer enabled.
    pub fn hides(&self, name: &std::ffi::CStr) -> bool {
        self.hidden.contains(&name)
    }

    /// Whether the device has any external memory.
    #[inline]
    pub fn has_external_memory(&self) -> bool {
        self.tracked_memory.load(Ordering::Relaxed) != 0
    }

    /// Whether any command buffer holds recorded ownership transfers.
    #[inline]
    pub fn has_recorded_transfers(&self) -> bool {
        self.recorded_transfers.load(Ordering::Relaxed) != 0
    }

    /// Whether the device has memory of a dma-buf (imported, or exported
    /// as one): what hazard watching looks at.
    #[inline]
    pub fn has_dma_buf_memory(&self) -> bool {
        self.tracked_dma_bufs.load(Ordering::Relaxed) != 0
    }

    /// Whether the device has dynamic attachments.
    #[inline]
    pub fn has_dynamic_attachments(&self) -> bool {
        self.tracked_dynamic.load(Ordering::Relaxed) != 0
    }

    /// Whether any command buffer holds hazard events.
    #[inline]
    pub fn has_recorded_events(&self) -> bool {
        self.recorded_events.load(Ordering::Relaxed) != 0
    }

    /// Whether anything is recorded per command buffer (what beginning,
    /// resetting or freeing one must forget).
    #[inline]
    pub fn has_recorded_commands(&self) -> bool {
        self.has_recorded_transfers() || self.has_recorded_events()
    }

    /// Whether a submission has nothing for the layer to do: no recorded
    /// ownership transfer anywhere on the device, no statistics, and no
    /// hazard to check.
    #[inline]
    pub fn is_quiet(&self) -> bool {
        let hazards_to_check =
            self.hazards.as_ref().is_some_and(|h| self.has_recorded_events() || h.needs_submissions());
        let scope_all = self.scope_all && self.has_external_memory();
        !(self.stats.is_some() || self.has_recorded_transfers() || scope_all || hazards_to_check)
    }

    /// Runs `f` on the memory table, keeping the lock-free count in step.
    pub fn with_memory<R>(&self, f: impl FnOnce(&mut MemoryTable) -> R) -> R {
        let mut table = lock(&self.memory, Level::Memory);
        let r = f(&mut table);
        self.tracked_memory.store(table.len(), Ordering::Relaxed);
        self.tracked_dma_bufs.store(table.dma_buf_memory_count(), Ordering::Relaxed);
        self.tracked_dynamic.store(table.dynamic_count(), Ordering::Relaxed);
        r
    }

    /// Runs `f` on the command log, keeping the lock-free count in step.
    pub fn with_commands<R>(&self, f: impl FnOnce(&mut CommandLog) -> R) -> R {
        let mut log = lock(&self.commands, Level::Commands);
        let r = f(&mut log);
        self.recorded_transfers.store(log.recorded(), Ordering::Relaxed);
        self.recorded_events.store(log.with_events(), Ordering::Relaxed);
        r
    }

    pub fn queue_retrieved(&self, queue: vk::Queue, info: QueueInfo) {
        lock(&self.queue_infos, Level::Queues).insert(queue, info);
    }

    pub fn queue_info(&self, queue: vk::Queue) -> Option<QueueInfo> {
        lock(&self.queue_infos, Level::Queues).get(&queue).copied()
    }

    /// Adds one to a counter when statistics are on.
    #[inline]
    pub fn count(&self, pick: impl FnOnce(&DeviceStats) -> &std::sync::atomic::AtomicU64) {
        if let Some(s) = &self.stats {
            DeviceStats::bump(pick(s));
        }
    }

    /// Counts a hazard of `kind` when statistics are on.
    #[inline]
    pub fn count_hazard(&self, kind: HazardKind) {
        if let Some(s) = &self.stats {
            s.hazard(kind);
        }
    }

    /// Records per-dma-buf statistics when they are on (`f` is not called
    /// otherwise).
    #[inline]
    pub fn with_stats(&self, f: impl FnOnce(&DeviceStats)) {
        if let Some(s) = &self.stats {
            f(s);
        }
    }

    /// Starts writing statistics to `path` (every `interval` too, unless
    /// zero), when they are on.
    pub fn start_stats_file(&self, path: std::path::PathBuf, interval: std::time::Duration) {
        let Some(stats) = &self.stats else { return };
        let output = StatsOutput::start(stats, path, &self.name, interval);
        *lock(&self.stats_output, Level::Leaf) = Some(output);
    }

    /// Stops the periodic writer and appends the final document (at
    /// `vkDestroyDevice`).
    pub fn finish_stats_file(&self) {
        let output = lock(&self.stats_output, Level::Leaf).take();
        if let (Some(output), Some(stats)) = (output, &self.stats) {
            output.finish(stats);
        }
    }
}
