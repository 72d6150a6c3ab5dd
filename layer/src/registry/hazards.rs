//! Hazard bookkeeping for one device: which shared memory the device holds
//! (acquired and not yet released), which it wrote since its last release,
//! and which (subject, kind) pairs were already reported. Pure state
//! machine: the hooks resolve a submission's commands to [`Step`]s in
//! submission order and report what [`HazardTracker`] finds.

use std::collections::{HashMap, HashSet};

use ash::vk;

use crate::hazard::HazardKind;

/// What the hooks know about one memory at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryFacts {
    pub memory: vk::DeviceMemory,
    /// Imported from a dma-buf (a peer may write it), as opposed to
    /// allocated here and exported.
    pub imported: bool,
    /// The application holds a host-coherent mapping of it.
    pub mapped_coherent: bool,
}

/// One thing a submission does to a memory, in submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// An ownership transfer from FOREIGN/EXTERNAL.
    Acquire { facts: MemoryFacts, writes: bool },
    /// An ownership transfer to FOREIGN/EXTERNAL.
    Release { facts: MemoryFacts },
    /// A command reads or writes it.
    Use { facts: MemoryFacts, writes: bool },
}

/// A hazard found: its kind and the memory it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: HazardKind,
    pub memory: vk::DeviceMemory,
}

#[derive(Clone, Copy, Debug, Default)]
struct Holding {
    held: bool,
    written: bool,
}

/// A release submitted while waiting on timeline values nothing had
/// signalled yet.
#[derive(Clone, Debug)]
struct PendingRelease {
    queue: vk::Queue,
    waits: Vec<(vk::Semaphore, u64)>,
}

/// A submission's queue and timeline semaphore operations, for self-waits.
#[derive(Clone, Copy, Debug)]
pub struct Submission<'a> {
    pub queue: vk::Queue,
    pub waits: &'a [(vk::Semaphore, u64)],
    pub signals: &'a [(vk::Semaphore, u64)],
}

/// Per-device hazard state.
#[derive(Debug, Default)]
pub struct HazardTracker {
    holding: HashMap<vk::DeviceMemory, Holding>,
    /// The highest value any submission (or the host) signalled so far,
    /// per timeline semaphore.
    signalled: HashMap<vk::Semaphore, u64>,
    releases_waiting: HashMap<vk::DeviceMemory, PendingRelease>,
    reported: HashSet<(String, HazardKind)>,
    counts: [u64; HazardKind::COUNT],
}

impl HazardTracker {
    fn holding(&mut self, facts: MemoryFacts) -> &mut Holding {
        // Memory the device allocated and exported starts out held; an
        // import starts out with its peers.
        self.holding.entry(facts.memory).or_insert(Holding { held: !facts.imported, written: false })
    }

    /// The host signalled a timeline semaphore (`vkSignalSemaphore`).
    pub fn host_signalled(&mut self, semaphore: vk::Semaphore, value: u64) {
        let v = self.signalled.entry(semaphore).or_insert(0);
        *v = (*v).max(value);
    }

    /// Self-waits: an acquire of memory that an earlier submission on the
    /// same queue released while waiting for a timeline value nothing had
    /// signalled, which only this submission signals. Then remembers this
    /// submission's own releases that wait on unsignalled values.
    pub fn self_waits(&mut self, steps: &[Step], s: Submission<'_>) -> Vec<Found> {
        let mut found = Vec::new();
        for step in steps {
            let Step::Acquire { facts, .. } = step else { continue };
            let Some(p) = self.releases_waiting.get(&facts.memory) else { continue };
            let deadlocked = p.queue == s.queue
                && p.waits.iter().any(|&(sem, v)| {
                    self.signalled.get(&sem).copied().unwrap_or(0) < v
                        && s.signals.iter().any(|&(x, sv)| x == sem && sv >= v)
                });
            if deadlocked {
                found.push(Found { kind: HazardKind::SelfWait, memory: facts.memory });
            }
        }
        for &(sem, v) in s.signals.iter().filter(|(_, v)| *v > 0) {
            self.host_signalled(sem, v);
        }
        let unsignalled: Vec<(vk::Semaphore, u64)> = s
            .waits
            .iter()
            .copied()
            .filter(|&(sem, v)| v > 0 && self.signalled.get(&sem).copied().unwrap_or(0) < v)
            .collect();
        for step in steps {
            let Step::Release { facts } = step else { continue };
            if unsignalled.is_empty() {
                self.releases_waiting.remove(&facts.memory);
            } else {
                self.releases_waiting
                    .insert(facts.memory, PendingRelease { queue: s.queue, waits: unsignalled.clone() });
            }
        }
        found.dedup();
        found
    }

    /// Runs a submission's steps. With `scope_all` the layer itself
    /// acquires and releases every dma-buf at every submission, so only
    /// CPU-access hazards remain.
    pub fn submitted(&mut self, steps: &[Step], scope_all: bool) -> Vec<Found> {
        let mut found = Vec::new();
        for step in steps {
            match *step {
                Step::Acquire { facts, writes } => {
                    let h = self.holding(facts);
                    if h.written && !scope_all {
                        found.push(Found { kind: HazardKind::WrittenNeverReleased, memory: facts.memory });
                    }
                    h.held = true;
                    h.written = writes;
                }
                Step::Release { facts } => {
                    *self.holding(facts) = Holding { held: false, written: false };
                }
                Step::Use { facts, writes } => {
                    if facts.mapped_coherent {
                        found.push(Found { kind: HazardKind::CpuAccessUnbracketed, memory: facts.memory });
                    }
                    let h = self.holding(facts);
                    if !h.held && facts.imported && !scope_all {
                        found.push(Found { kind: HazardKind::UseWithoutAcquire, memory: facts.memory });
                    }
                    h.written |= writes;
                }
            }
        }
        found.dedup();
        found
    }

    /// `vkFreeMemory`: written and never released is a hazard.
    pub fn freed(&mut self, memory: vk::DeviceMemory, scope_all: bool) -> Option<Found> {
        self.releases_waiting.remove(&memory);
        let h = self.holding.remove(&memory)?;
        (h.written && !scope_all).then_some(Found { kind: HazardKind::WrittenNeverReleased, memory })
    }

    /// `vkDestroyDevice`: every memory written and never released.
    pub fn device_gone(&mut self, scope_all: bool) -> Vec<Found> {
        let mut out: Vec<Found> = self
            .holding
            .drain()
            .filter(|(_, h)| h.written && !scope_all)
            .map(|(memory, _)| Found { kind: HazardKind::WrittenNeverReleased, memory })
            .collect();
        out.sort_by_key(|f| vk::Handle::as_raw(f.memory));
        out
    }

    /// Counts one occurrence of `kind` about `subject` (a dma-buf); true
    /// the first time, when it is to be reported.
    pub fn first_time(&mut self, subject: &str, kind: HazardKind) -> bool {
        self.counts[kind.index()] += 1;
        self.reported.insert((subject.to_string(), kind))
    }

    /// Occurrences per kind, in [`HazardKind::ALL`] order.
    pub fn counts(&self) -> [u64; HazardKind::COUNT] {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    fn facts(n: u64, imported: bool) -> MemoryFacts {
        MemoryFacts { memory: vk::DeviceMemory::from_raw(n), imported, mapped_coherent: false }
    }
    fn kinds(found: &[Found]) -> Vec<HazardKind> {
        found.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn an_import_used_before_any_acquire_is_reported_and_not_after_one() {
        let mut t = HazardTracker::default();
        let m = facts(1, true);
        let used = t.submitted(&[Step::Use { facts: m, writes: false }], false);
        assert_eq!(kinds(&used), [HazardKind::UseWithoutAcquire]);
        let ok = t.submitted(
            &[
                Step::Acquire { facts: m, writes: false },
                Step::Use { facts: m, writes: false },
                Step::Release { facts: m },
            ],
            false,
        );
        assert!(ok.is_empty(), "{ok:?}");
        // Released: the next use needs another acquire.
        let again = t.submitted(&[Step::Use { facts: m, writes: false }], false);
        assert_eq!(kinds(&again), [HazardKind::UseWithoutAcquire]);
    }

    #[test]
    fn exported_memory_starts_held_and_scope_all_silences_hand_over_hazards() {
        let mut t = HazardTracker::default();
        assert!(t.submitted(&[Step::Use { facts: facts(2, false), writes: true }], false).is_empty());
        let mut t = HazardTracker::default();
        assert!(t.submitted(&[Step::Use { facts: facts(3, true), writes: true }], true).is_empty());
        assert_eq!(t.freed(facts(3, true).memory, true), None);
    }

    #[test]
    fn a_write_without_release_is_reported_at_free_reacquire_and_device_end() {
        let m = facts(4, true);
        let wrote = [Step::Acquire { facts: m, writes: false }, Step::Use { facts: m, writes: true }];
        let mut t = HazardTracker::default();
        assert!(t.submitted(&wrote, false).is_empty());
        assert_eq!(t.freed(m.memory, false).map(|f| f.kind), Some(HazardKind::WrittenNeverReleased));
        let mut t = HazardTracker::default();
        t.submitted(&wrote, false);
        let reacquired = t.submitted(&[Step::Acquire { facts: m, writes: false }], false);
        assert_eq!(kinds(&reacquired), [HazardKind::WrittenNeverReleased]);
        let mut t = HazardTracker::default();
        t.submitted(&wrote, false);
        assert_eq!(kinds(&t.device_gone(false)), [HazardKind::WrittenNeverReleased]);
        // The twin: released before the free.
        let mut t = HazardTracker::default();
        t.submitted(&wrote, false);
        t.submitted(&[Step::Release { facts: m }], false);
        assert_eq!(t.freed(m.memory, false), None);
        // A read-only acquire that is never released is no hazard.
        let mut t = HazardTracker::default();
        t.submitted(
            &[Step::Acquire { facts: m, writes: false }, Step::Use { facts: m, writes: false }],
            false,
        );
        assert_eq!(t.freed(m.memory, false), None);
    }

    #[test]
    fn an_acquire_for_writing_counts_as_a_write() {
        let m = facts(5, true);
        let mut t = HazardTracker::default();
        t.submitted(&[Step::Acquire { facts: m, writes: true }], false);
        assert!(t.freed(m.memory, false).is_some());
    }

    #[test]
    fn a_use_while_a_coherent_mapping_is_open_is_unbracketed_cpu_access() {
        let m = MemoryFacts { mapped_coherent: true, ..facts(6, true) };
        let mut t = HazardTracker::default();
        let found = t.submitted(
            &[Step::Acquire { facts: m, writes: false }, Step::Use { facts: m, writes: false }],
            false,
        );
        assert_eq!(kinds(&found), [HazardKind::CpuAccessUnbracketed]);
    }

    #[test]
    fn an_acquire_behind_a_release_that_waits_for_this_submissions_signal_is_a_self_wait() {
        let m = facts(7, true);
        let (q, other_q) = (vk::Queue::from_raw(1), vk::Queue::from_raw(2));
        let t = vk::Semaphore::from_raw(9);
        let released = [Step::Release { facts: m }];
        let acquired = [Step::Acquire { facts: m, writes: false }];
        let none: [(vk::Semaphore, u64); 0] = [];
        let (one, two) = ([(t, 1)], [(t, 2)]);
        let submit = |queue, waits, signals| Submission { queue, waits, signals };
        // P waits for T=1 and releases; S on the same queue acquires and
        // signals T=1: S's acquire waits for P, which waits for S.
        let mut tr = HazardTracker::default();
        assert!(tr.self_waits(&released, submit(q, &one, &none)).is_empty());
        let found = tr.self_waits(&acquired, submit(q, &none, &one));
        assert_eq!(kinds(&found), [HazardKind::SelfWait]);
        // The twin: the host signals T=1 instead.
        let mut tr = HazardTracker::default();
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(q, &none, &none)).is_empty());
        // Another queue: no deadlock through queue order.
        let mut tr = HazardTracker::default();
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(other_q, &none, &one)).is_empty());
        // A frame loop: P waits for a value an earlier frame signalled.
        let mut tr = HazardTracker::default();
        tr.self_waits(&[], submit(q, &none, &one));
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(q, &none, &two)).is_empty());
        // The host signalled it before.
        let mut tr = HazardTracker::default();
        tr.self_waits(&released, submit(q, &one, &none));
        tr.host_signalled(t, 1);
        assert!(tr.self_waits(&acquired, submit(q, &none, &one)).is_empty());
    }

    #[test]
    fn each_subject_and_kind_is_reported_once_and_counted_always() {
        let mut t = HazardTracker::default();
        assert!(t.first_time("dma-buf 0:1", HazardKind::SelfWait));
        assert!(!t.first_time("dma-buf 0:1", HazardKind::SelfWait));
        assert!(t.first_time("dma-buf 0:2", HazardKind::SelfWait));
        assert!(t.first_time("dma-buf 0:1", HazardKind::FenceTimeout));
        assert_eq!(t.counts()[HazardKind::SelfWait.index()], 3);
    }
}
