//! Where hazard reports go: the application's debug messengers (as
//! validation messages: a stable message ID name, the objects with the
//! names the application gave them) and the layer's log, once per
//! (dma-buf, kind) per device, with every occurrence counted for the
//! summary at `vkDestroyDevice`. Shared (`Arc`) with the layer's threads:
//! a fence timeout the waiter sees is logged at once and handed to the
//! messengers at the application's next submission (the application's
//! callback never runs on a layer thread, nor delays the GPU's signal).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use super::debug_utils::{Messengers, NamedObject, ObjectNames};
use crate::hazard::HazardKind;
use crate::lock_order::{lock, Level};
use crate::registry::usage_index::UsageIndex;
use crate::registry::HazardTracker;
use crate::settings::HazardMode;

/// One device's hazard reporting.
#[derive(Debug)]
pub struct HazardReporter {
    device: String,
    mode: HazardMode,
    messengers: Arc<Messengers>,
    /// The names the application gave the device's objects.
    pub names: ObjectNames,
    tracker: Mutex<HazardTracker>,
    usage: Mutex<UsageIndex>,
    /// How many descriptor sets lead to external memory, readable without
    /// the lock (zero: a descriptor bind has nothing to look up).
    tracked_sets: AtomicUsize,
    /// Whether a release waits on an unsignalled timeline value (then every
    /// submission's signals are looked at), readable without the lock.
    watch_signals: AtomicBool,
    /// Messages from layer threads waiting for an application thread.
    deferred: Mutex<Vec<Message>>,
    has_deferred: AtomicBool,
}

/// One report's message for the messengers.
#[derive(Debug)]
struct Message {
    kind: HazardKind,
    text: String,
    objects: Vec<(vk::ObjectType, u64)>,
}

impl HazardReporter {
    /// `None` with `DYNABUF_HAZARDS=off`.
    pub fn new(device: String, mode: HazardMode, messengers: Arc<Messengers>) -> Option<Self> {
        (mode != HazardMode::Off).then(|| HazardReporter {
            device,
            mode,
            messengers,
            names: ObjectNames::default(),
            tracker: Mutex::default(),
            usage: Mutex::default(),
            tracked_sets: AtomicUsize::new(0),
            watch_signals: AtomicBool::new(false),
            deferred: Mutex::default(),
            has_deferred: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the device's hazard state.
    pub fn with_tracker<R>(&self, f: impl FnOnce(&mut HazardTracker) -> R) -> R {
        let mut tracker = lock(&self.tracker, Level::Leaf);
        let r = f(&mut tracker);
        self.watch_signals.store(tracker.has_waiting_releases(), Ordering::Relaxed);
        r
    }

    /// Whether submissions must be looked at even when no command buffer
    /// holds hazard events: timeline signals to watch, or reports from
    /// layer threads to deliver.
    #[inline]
    pub fn needs_submissions(&self) -> bool {
        self.watches_signals() || self.has_deferred.load(Ordering::Relaxed)
    }

    /// Whether every submission's timeline signals must be looked at.
    #[inline]
    pub fn watches_signals(&self) -> bool {
        self.watch_signals.load(Ordering::Relaxed)
    }

    /// Runs `f` on what views, framebuffers and descriptor sets lead to.
    pub fn with_usage<R>(&self, f: impl FnOnce(&mut UsageIndex) -> R) -> R {
        let mut index = lock(&self.usage, Level::Leaf);
        let r = f(&mut index);
        self.tracked_sets.store(index.set_count(), Ordering::Relaxed);
        r
    }

    /// Whether any descriptor set leads to external memory.
    #[inline]
    pub fn has_tracked_sets(&self) -> bool {
        self.tracked_sets.load(Ordering::Relaxed) != 0
    }

    /// Reports one occurrence of `kind` about `subject` (a dma-buf, as the
    /// log names it): the first one per (subject, kind) goes to the log and
    /// the messengers, every one is counted.
    pub fn report(&self, kind: HazardKind, subject: &str, objects: &[(vk::ObjectType, u64)], text: &str) {
        if let Some(m) = self.first(kind, subject, objects, text) {
            self.send(&m);
        }
    }

    /// As [`report`](Self::report), from a layer thread: logged now, sent
    /// to the messengers by [`deliver_deferred`](Self::deliver_deferred).
    pub fn report_later(
        &self,
        kind: HazardKind,
        subject: &str,
        objects: &[(vk::ObjectType, u64)],
        text: &str,
    ) {
        if let Some(m) = self.first(kind, subject, objects, text) {
            let mut deferred = lock(&self.deferred, Level::Leaf);
            deferred.push(m);
            self.has_deferred.store(true, Ordering::Release);
        }
    }

    /// Sends what layer threads reported (on an application thread).
    #[inline]
    pub fn deliver_deferred(&self) {
        if !self.has_deferred.load(Ordering::Acquire) {
            return;
        }
        // The flag is cleared under the lock: a report pushed after the
        // take sets it again after this.
        let messages = {
            let mut deferred = lock(&self.deferred, Level::Leaf);
            self.has_deferred.store(false, Ordering::Release);
            std::mem::take(&mut *deferred)
        };
        for m in &messages {
            self.send(m);
        }
    }

    /// Counts an occurrence; the first per (subject, kind) is logged and
    /// returned as the message to send.
    fn first(
        &self,
        kind: HazardKind,
        subject: &str,
        objects: &[(vk::ObjectType, u64)],
        text: &str,
    ) -> Option<Message> {
        if !self.with_tracker(|t| t.first_time(subject, kind)) {
            return None;
        }
        let text = format!("{}: {subject}: {text}", kind.id_name().to_string_lossy());
        match self.mode {
            HazardMode::Error => log_error!("{}: hazard {text}", self.device),
            _ => log_warn!("{}: hazard {text}", self.device),
        }
        Some(Message { kind, text, objects: objects.to_vec() })
    }

    fn send(&self, m: &Message) {
        if !self.messengers.any() {
            return;
        }
        let named: Vec<NamedObject> = m.objects.iter().map(|&(t, h)| self.names.named(t, h)).collect();
        let severity = match self.mode {
            HazardMode::Error => vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
            _ => vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
        };
        self.messengers.send(severity, m.kind.id_name(), m.kind.id_number(), &m.text, &named);
    }

    /// Occurrences per kind, in [`HazardKind::ALL`] order.
    pub fn counts(&self) -> [u64; HazardKind::COUNT] {
        self.with_tracker(|t| t.counts())
    }

    /// The summary for `vkDestroyDevice`: `None` when nothing happened.
    pub fn summary(&self) -> Option<String> {
        let counts = self.counts();
        counts.iter().any(|&n| n > 0).then(|| {
            HazardKind::ALL
                .iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{}={n}", k.key()))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }
}
