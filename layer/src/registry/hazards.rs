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

/// A possible self-wait: the acquire of `memory` waits for a release that
/// waits for `semaphore` to reach `value`, which only this submission
/// signals (the hook confirms the semaphore has not reached it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfWait {
    pub memory: vk::DeviceMemory,
    pub semaphore: vk::Semaphore,
    pub value: u64,
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
    /// The highest value any submission (or the host, or its initial
    /// value) signalled so far, per timeline semaphore the application
    /// created; only these take part in self-waits.
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

    /// The application created a semaphore (a timeline one with its
    /// initial value; `None` for a binary one, whose submit values mean
    /// nothing).
    pub fn semaphore_created(&mut self, semaphore: vk::Semaphore, timeline_initial: Option<u64>) {
        match timeline_initial {
            Some(v) => self.signalled.insert(semaphore, v),
            None => self.signalled.remove(&semaphore),
        };
    }

    /// The host signalled a timeline semaphore (`vkSignalSemaphore`).
    pub fn host_signalled(&mut self, semaphore: vk::Semaphore, value: u64) {
        if let Some(v) = self.signalled.get_mut(&semaphore) {
            *v = (*v).max(value);
        }
    }

    /// Whether some release waits for an unsignalled timeline value (then
    /// every submission's signals must be seen).
    pub fn has_waiting_releases(&self) -> bool {
        !self.releases_waiting.is_empty()
    }

    /// A submission with no steps: only its timeline signals matter.
    pub fn signals_seen(&mut self, signals: &[(vk::Semaphore, u64)]) {
        for &(sem, v) in signals {
            self.host_signalled(sem, v);
        }
    }

    /// Self-waits: an acquire of memory that an earlier submission on the
    /// same queue released while waiting for a timeline value nothing had
    /// signalled, which only this submission signals. Then remembers this
    /// submission's own releases that wait on unsignalled values.
    pub fn self_waits(&mut self, steps: &[Step], s: Submission<'_>) -> Vec<SelfWait> {
        let mut found = Vec::new();
        for step in steps {
            let Step::Acquire { facts, .. } = step else { continue };
            let Some(p) = self.releases_waiting.get(&facts.memory) else { continue };
            if p.queue != s.queue {
                continue;
            }
            let blocking = p.waits.iter().find(|&&(sem, v)| {
                self.signalled.get(&sem).is_some_and(|&reached| reached < v)
                    && s.signals.iter().any(|&(x, sv)| x == sem && sv >= v)
            });
            if let Some(&(semaphore, value)) = blocking {
                found.push(SelfWait { memory: facts.memory, semaphore, value });
            }
        }
        self.signals_seen(s.signals);
        let unsignalled: Vec<(vk::Semaphore, u64)> = s
            .waits
            .iter()
            .copied()
            .filter(|&(sem, v)| self.signalled.get(&sem).is_some_and(|&reached| reached < v))
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
                    // An acquire's own access (or layout transition) is not
                    // counted as a write: only commands that write are.
                    let _ = writes;
                    h.held = true;
                    h.written = false;
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
    fn an_acquire_alone_is_no_write_and_a_write_after_it_is() {
        let m = facts(5, true);
        let mut t = HazardTracker::default();
        t.submitted(&[Step::Acquire { facts: m, writes: true }], false);
        assert!(t.freed(m.memory, false).is_none());
        t.submitted(&[Step::Acquire { facts: m, writes: true }, Step::Use { facts: m, writes: true }], false);
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
        let created = || {
            let mut tr = HazardTracker::default();
            tr.semaphore_created(t, Some(0));
            tr
        };
        // P waits for T=1 and releases; S on the same queue acquires and
        // signals T=1: S's acquire waits for P, which waits for S.
        let mut tr = created();
        assert!(tr.self_waits(&released, submit(q, &one, &none)).is_empty());
        let found = tr.self_waits(&acquired, submit(q, &none, &one));
        assert_eq!(found, [SelfWait { memory: m.memory, semaphore: t, value: 1 }]);
        // The twin: the host signals T=1 instead.
        let mut tr = created();
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(q, &none, &none)).is_empty());
        // Another queue: no deadlock through queue order.
        let mut tr = created();
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(other_q, &none, &one)).is_empty());
        // A frame loop: P waits for a value an earlier frame signalled.
        let mut tr = created();
        tr.self_waits(&[], submit(q, &none, &one));
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(q, &none, &two)).is_empty());
        // The host signalled it before.
        let mut tr = created();
        tr.self_waits(&released, submit(q, &one, &none));
        tr.host_signalled(t, 1);
        assert!(tr.self_waits(&acquired, submit(q, &none, &one)).is_empty());
        // A binary semaphore (or one the layer did not see created) never
        // takes part: its submit values mean nothing.
        let mut tr = HazardTracker::default();
        tr.self_waits(&released, submit(q, &one, &none));
        assert!(tr.self_waits(&acquired, submit(q, &none, &one)).is_empty());
        // The initial value counts as signalled.
        let mut tr = HazardTracker::default();
        tr.semaphore_created(t, Some(1));
        tr.self_waits(&released, submit(q, &one, &none));
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
