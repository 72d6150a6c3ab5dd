//! Where hazard reports go: the application's debug messengers (as
//! validation messages: a stable message ID name, the objects with the
//! names the application gave them) and the layer's log, once per
//! (dma-buf, kind) per device, with every occurrence counted for the
//! summary at `vkDestroyDevice`. Shared (`Arc`) with the layer's threads,
//! so a fence timeout seen by the waiter is reported where it happens.

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
        })
    }

    /// Runs `f` on the device's hazard state.
    pub fn with_tracker<R>(&self, f: impl FnOnce(&mut HazardTracker) -> R) -> R {
        f(&mut lock(&self.tracker, Level::Leaf))
    }

    /// Runs `f` on what views, framebuffers and descriptor sets lead to.
    pub fn with_usage<R>(&self, f: impl FnOnce(&mut UsageIndex) -> R) -> R {
        f(&mut lock(&self.usage, Level::Leaf))
    }

    /// Reports one occurrence of `kind` about `subject` (a dma-buf, as the
    /// log names it): the first one per (subject, kind) goes to the log and
    /// the messengers, every one is counted.
    pub fn report(&self, kind: HazardKind, subject: &str, objects: &[(vk::ObjectType, u64)], text: &str) {
        if !self.with_tracker(|t| t.first_time(subject, kind)) {
            return;
        }
        let id = kind.id_name().to_string_lossy();
        let message = format!("{id}: {subject}: {text}");
        match self.mode {
            HazardMode::Error => log_error!("{}: hazard {message}", self.device),
            _ => log_warn!("{}: hazard {message}", self.device),
        }
        if self.messengers.any() {
            let named: Vec<NamedObject> = objects.iter().map(|&(t, h)| self.names.named(t, h)).collect();
            let severity = match self.mode {
                HazardMode::Error => vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
                _ => vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
            };
            self.messengers.send(severity, kind.id_name(), kind.id_number(), &message, &named);
        }
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
