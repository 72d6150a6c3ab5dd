//! Dynamic attachments: an imported dma-buf whose application-visible
//! memory is a device-local *backing* allocation the layer owns, with the
//! dma-buf kept as a separate *internal* import used only for copies. The
//! internal import can be evicted (the kernel's `move_notify`) and is
//! re-validated at the attachment's next use. This module holds the state
//! and the eviction policy; the engine does the Vulkan work.

use std::time::{Duration, Instant};

use ash::vk;

pub use super::contents::{copies_needed, Contents, CopiesNeeded, Marks, Step, Watched};
use super::span::Span;

/// `DYNABUF_ATTACH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// The application's memory is the driver's import; never evicted.
    Pinned,
    /// Backing allocation + internal import; evictable.
    Dynamic,
    /// Dynamic when an eviction policy is set (there is nothing to gain from
    /// the copies otherwise), pinned when not.
    Auto,
}

/// `DYNABUF_EVICT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictPolicy {
    Off,
    /// Evict attachments unused for this long.
    Idle(Duration),
    /// Keep resident internal imports within this many bytes.
    Budget(u64),
    /// Evict every resident attachment every N submissions (stress).
    Every(u64),
}

impl EvictPolicy {
    /// Parses `off`, `idle:<ms>`, `budget:<MiB>`, `every:<N>`.
    pub fn parse(v: &str) -> Option<EvictPolicy> {
        let v = v.trim().to_ascii_lowercase();
        if v == "off" {
            return Some(EvictPolicy::Off);
        }
        let (kind, n) = v.split_once(':')?;
        let n: u64 = n.trim().parse().ok()?;
        match kind.trim() {
            "idle" => Some(EvictPolicy::Idle(Duration::from_millis(n))),
            "budget" => Some(EvictPolicy::Budget(n.checked_mul(1 << 20)?)),
            "every" if n > 0 => Some(EvictPolicy::Every(n)),
            _ => None,
        }
    }
}

/// The layer's two copies of an attachment, recorded for one queue family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copies {
    pub family: u32,
    /// The bytes they copy: those the attachment's resources occupy.
    pub extent: Span,
    pub pool: vk::CommandPool,
    /// dma-buf → backing, and backing → dma-buf.
    pub copy_in: vk::CommandBuffer,
    pub copy_out: vk::CommandBuffer,
}

/// The live internal import of a resident attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Internal {
    pub memory: vk::DeviceMemory,
    pub buffer: vk::Buffer,
    /// Copies per queue family the attachment was used on; destroyed only
    /// with the import, after every use has retired.
    pub copies: Vec<Copies>,
}

impl Internal {
    pub fn new(memory: vk::DeviceMemory, buffer: vk::Buffer) -> Self {
        Internal { memory, buffer, copies: Vec::new() }
    }

    /// The copies recorded for `family` over `extent` (a binding that
    /// changes the extent gets copies of its own; the older ones stay until
    /// the import goes, since submissions may still hold them).
    pub fn copies_for(&self, family: u32, extent: Span) -> Option<Copies> {
        self.copies.iter().find(|c| c.family == family && c.extent == extent).copied()
    }
}

/// Where an attachment's internal import is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Residency {
    Resident(Internal),
    /// Evicted: only the fd is left.
    Invalidated,
    /// A thread took the import out to evict it, re-validate it or record
    /// copies, without holding the lock; others wait for it to come back.
    Moving,
}

/// One submission's (or one thread's) use of a queue: (queue, retire
/// timeline, value).
pub type LastUse = (vk::Queue, vk::Semaphore, u64);

/// A process-wide number for each dynamic attachment, so work that took
/// one out of the table puts its result back into the same attachment even
/// if the application freed it meanwhile and got the memory handle back for
/// another allocation.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A dynamic attachment's state.
#[derive(Clone, Debug)]
pub struct Dynamic {
    /// See [`next_generation`].
    pub generation: u64,
    pub size: u64,
    pub memory_type: u32,
    /// A transfer buffer over the backing (the application's) memory.
    pub backing_buffer: vk::Buffer,
    pub residency: Residency,
    /// Submissions that were handed the internal import and have not
    /// recorded their use yet: the import may not go.
    pub in_flight: u32,
    /// The latest use on each queue (ordered per queue, not across queues).
    pub last_uses: Vec<LastUse>,
    pub last_used_at: Instant,
    /// The internal import the application has mapped (the dma-buf
    /// itself): not evicted until unmapped.
    pub mapped: Option<vk::DeviceMemory>,
    /// The bytes the backing holds the dma-buf's content for (copies cover
    /// the extent of the bound resources; a binding outside it makes the
    /// backing stale again).
    pub extent: Span,
    /// What the backing holds against the dma-buf (see [`Contents`]).
    pub contents: Contents,
    /// Bumped by every change of `contents`; [`Marks`] says when each kind
    /// of change last happened, so a submission settling what it computed
    /// keeps what changed since (see [`Dynamic::settle`]).
    pub contents_epoch: u64,
    pub marks: Marks,
    /// A copy in overwrote writes that were never released (logged once).
    pub warned_overwrite: bool,
}

/// What [`Dynamic::begin_use`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Use {
    /// Resident with copies for the family: counted in flight.
    Ready(Copies),
    /// The caller must re-validate (when `None`) and/or record copies, then
    /// call [`Dynamic::end_work`]; the attachment is `Moving` meanwhile.
    Work(Option<Internal>),
    /// Another thread is moving it: try again shortly.
    Busy,
    /// Resident and now mapped: the internal import to map.
    Mapped(vk::DeviceMemory),
}

impl Dynamic {
    pub fn new(size: u64, memory_type: u32, backing_buffer: vk::Buffer, internal: Internal) -> Self {
        Dynamic {
            generation: next_generation(),
            size,
            memory_type,
            backing_buffer,
            residency: Residency::Resident(internal),
            in_flight: 0,
            last_uses: Vec::new(),
            last_used_at: Instant::now(),
            mapped: None,
            extent: Span { offset: 0, size },
            contents: Contents::NEW,
            contents_epoch: 0,
            marks: Marks::default(),
            warned_overwrite: false,
        }
    }

    pub fn is_resident(&self) -> bool {
        matches!(self.residency, Residency::Resident(_))
    }

    pub fn internal(&self) -> Option<&Internal> {
        match &self.residency {
            Residency::Resident(i) => Some(i),
            _ => None,
        }
    }

    /// Whether it can be evicted now.
    pub fn evictable(&self) -> bool {
        self.is_resident() && self.in_flight == 0 && self.mapped.is_none()
    }

    /// Takes the import out for eviction: `Some((import, uses to wait
    /// for))`, the attachment `Moving` until [`Self::end_evict`].
    pub fn begin_evict(&mut self) -> Option<(Internal, Vec<LastUse>)> {
        if !self.evictable() {
            return None;
        }
        let Residency::Resident(i) = std::mem::replace(&mut self.residency, Residency::Moving) else {
            return None;
        };
        Some((i, self.last_uses.clone()))
    }

    /// `Ok`: evicted. `Err(import)`: still busy, put back.
    pub fn end_evict(&mut self, outcome: Result<(), Internal>) {
        match outcome {
            Ok(()) => {
                self.residency = Residency::Invalidated;
                self.last_uses.clear();
            }
            Err(i) => self.residency = Residency::Resident(i),
        }
    }

    /// The bytes now bound are `extent`: a binding beyond what the backing
    /// was filled for makes it stale.
    pub fn widen(&mut self, extent: Span) {
        if !self.extent.contains(extent) {
            self.contents.stale = true;
            self.contents.current = false;
            self.contents_epoch += 1;
            self.marks.stale = self.contents_epoch;
        }
        self.extent = extent;
    }

    /// A watched command of a submission that hands it nothing over wrote
    /// the backing.
    pub fn written(&mut self) {
        self.contents.dirty = true;
        self.contents_epoch += 1;
        self.marks.written = self.contents_epoch;
    }

    /// The application mapped the dma-buf: CPU writes may reach it.
    fn mapped_now(&mut self) {
        self.contents.current = false;
        self.contents_epoch += 1;
        self.marks.not_current = self.contents_epoch;
    }

    /// What a submission computed at `epoch` the backing holds once it ran:
    /// its result, with whatever happened since forced back in (a wider
    /// binding leaves it stale, a mapping not current, a write dirty: by
    /// another thread's submission, its settling, or the application). A
    /// settling is itself such a change for settlings computed before it.
    pub fn settle(&mut self, after: Contents, epoch: u64) {
        let mut c = after;
        if self.marks.stale > epoch {
            c.stale = true;
            c.current = false;
        }
        if self.marks.not_current > epoch || self.mapped.is_some() {
            c.current = false;
        }
        if self.marks.written > epoch {
            c.dirty = true;
        }
        self.contents = c;
        self.contents_epoch += 1;
        let now = self.contents_epoch;
        if c.stale {
            self.marks.stale = now;
        }
        if !c.current {
            self.marks.not_current = now;
        }
        if c.dirty {
            self.marks.written = now;
        }
    }

    /// Starts a use on queue family `family` of the bytes in `extent`.
    pub fn begin_use(&mut self, family: u32, extent: Span) -> Use {
        if !matches!(self.residency, Residency::Moving) {
            self.widen(extent);
        }
        match &self.residency {
            Residency::Moving => Use::Busy,
            Residency::Resident(i) => match i.copies_for(family, extent) {
                Some(c) => {
                    self.in_flight += 1;
                    Use::Ready(c)
                }
                None => match std::mem::replace(&mut self.residency, Residency::Moving) {
                    Residency::Resident(i) => Use::Work(Some(i)),
                    _ => Use::Busy,
                },
            },
            Residency::Invalidated => {
                self.residency = Residency::Moving;
                Use::Work(None)
            }
        }
    }

    /// Ends the work [`Self::begin_use`] asked for: `Some(import)` is
    /// resident (and, when `counted`, in flight), `None` failed
    /// (invalidated, consistent, retried at the next use).
    pub fn end_work(&mut self, result: Option<Internal>, counted: bool) {
        match result {
            Some(i) => {
                self.residency = Residency::Resident(i);
                if counted {
                    self.in_flight += 1;
                }
            }
            None => self.residency = Residency::Invalidated,
        }
    }

    /// Starts a mapping: resident ones are marked mapped at once; an
    /// invalidated one must be re-validated first ([`Self::end_map_work`]).
    pub fn begin_map(&mut self) -> Use {
        match &self.residency {
            Residency::Moving => Use::Busy,
            Residency::Resident(i) => {
                let m = i.memory;
                self.mapped = Some(m);
                self.mapped_now();
                Use::Mapped(m)
            }
            Residency::Invalidated => {
                self.residency = Residency::Moving;
                Use::Work(None)
            }
        }
    }

    /// Ends the re-validation [`Self::begin_map`] asked for.
    pub fn end_map_work(&mut self, result: Option<Internal>) {
        self.mapped = result.as_ref().map(|i| i.memory);
        if self.mapped.is_some() {
            self.mapped_now();
        }
        self.end_work(result, false);
    }

    /// `vkUnmapMemory`: the mapped import, which may go again.
    pub fn unmap(&mut self) -> Option<vk::DeviceMemory> {
        self.mapped.take()
    }

    /// A submission handed the import has been submitted (`Some`, with its
    /// retire point) or failed (`None`).
    pub fn finish_use(&mut self, used: Option<LastUse>, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(u) = used {
            match self.last_uses.iter_mut().find(|l| l.0 == u.0) {
                Some(l) => *l = u,
                None => self.last_uses.push(u),
            }
            self.last_used_at = now;
        }
    }
}

/// What the policy needs to know of one resident attachment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub id: u64,
    pub size: u64,
    pub last_used_at: Instant,
    /// In use by the submission being built (never a victim).
    pub in_use: bool,
}

/// Which resident attachments to evict now. `submits` counts the device's
/// submissions (this one included); `incoming` is what the submission is
/// about to make resident (a budget must hold after that too). Victims go
/// least recently used first.
pub fn victims(
    policy: EvictPolicy,
    submits: u64,
    now: Instant,
    resident: &[Candidate],
    incoming: u64,
) -> Vec<u64> {
    let mut free: Vec<&Candidate> = resident.iter().filter(|c| !c.in_use).collect();
    free.sort_by_key(|c| c.last_used_at);
    match policy {
        EvictPolicy::Off => Vec::new(),
        EvictPolicy::Every(n) if submits % n == 0 => free.iter().map(|c| c.id).collect(),
        EvictPolicy::Every(_) => Vec::new(),
        EvictPolicy::Idle(d) => {
            free.iter().filter(|c| now.duration_since(c.last_used_at) >= d).map(|c| c.id).collect()
        }
        EvictPolicy::Budget(limit) => {
            let mut total: u64 = resident.iter().map(|c| c.size).sum::<u64>() + incoming;
            let mut out = Vec::new();
            for c in free {
                if total <= limit {
                    break;
                }
                total -= c.size;
                out.push(c.id);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ash::vk::Handle;

    fn internal(n: u64) -> Internal {
        Internal::new(vk::DeviceMemory::from_raw(n), vk::Buffer::from_raw(n))
    }

    const ALL: Span = Span { offset: 0, size: 64 };

    fn copies(family: u32) -> Copies {
        Copies {
            family,
            extent: ALL,
            pool: vk::CommandPool::from_raw(7),
            copy_in: vk::CommandBuffer::from_raw(8),
            copy_out: vk::CommandBuffer::from_raw(9),
        }
    }

    #[test]
    fn an_attachment_in_flight_or_mapped_is_not_evicted() {
        let mut d = Dynamic::new(64, 0, vk::Buffer::null(), internal(1));
        assert_eq!(d.begin_use(0, ALL), Use::Work(Some(internal(1))));
        let mut i = internal(1);
        i.copies.push(copies(0));
        d.end_work(Some(i), true);
        assert_eq!(d.in_flight, 1);
        assert!(d.begin_evict().is_none(), "in flight");
        let q = vk::Queue::from_raw(5);
        d.finish_use(Some((q, vk::Semaphore::from_raw(6), 3)), Instant::now());
        d.mapped = Some(vk::DeviceMemory::from_raw(1));
        assert!(d.begin_evict().is_none(), "mapped");
        assert_eq!(d.unmap(), Some(vk::DeviceMemory::from_raw(1)));
        let (taken, uses) = d.begin_evict().unwrap();
        assert_eq!(uses, vec![(q, vk::Semaphore::from_raw(6), 3)]);
        assert_eq!(d.begin_use(0, ALL), Use::Busy, "moving");
        d.end_evict(Ok(()));
        drop(taken);
        assert_eq!(d.residency, Residency::Invalidated);
        assert!(d.last_uses.is_empty());
        assert_eq!(d.begin_use(0, ALL), Use::Work(None));
        d.end_work(None, true);
        assert_eq!((d.residency.clone(), d.in_flight), (Residency::Invalidated, 0));
    }

    #[test]
    fn last_uses_are_kept_per_queue() {
        let mut i = internal(1);
        i.copies.push(copies(0));
        let mut d = Dynamic::new(64, 0, vk::Buffer::null(), i);
        let (a, b) = (vk::Queue::from_raw(1), vk::Queue::from_raw(2));
        let t = vk::Semaphore::from_raw(9);
        for (q, v) in [(a, 1), (b, 1), (a, 2)] {
            assert!(matches!(d.begin_use(0, ALL), Use::Ready(_)));
            d.finish_use(Some((q, t, v)), Instant::now());
        }
        assert_eq!(d.last_uses, vec![(a, t, 2), (b, t, 1)]);
        assert_eq!(d.in_flight, 0);
        // A use on another family needs copies recorded first.
        assert_eq!(d.begin_use(1, ALL), Use::Work(Some(d_internal_with(0))));
    }

    fn d_internal_with(family: u32) -> Internal {
        let mut i = internal(1);
        i.copies.push(copies(family));
        i
    }

    fn cand(id: u64, size: u64, age_ms: u64, in_use: bool, now: Instant) -> Candidate {
        Candidate { id, size, last_used_at: now - Duration::from_millis(age_ms), in_use }
    }

    #[test]
    fn parsing() {
        assert_eq!(EvictPolicy::parse("off"), Some(EvictPolicy::Off));
        assert_eq!(EvictPolicy::parse("every:3"), Some(EvictPolicy::Every(3)));
        assert_eq!(EvictPolicy::parse("idle:250"), Some(EvictPolicy::Idle(Duration::from_millis(250))));
        assert_eq!(EvictPolicy::parse("Budget:2"), Some(EvictPolicy::Budget(2 << 20)));
        for bad in ["every:0", "every", "sometimes:3", "idle:-1", ""] {
            assert_eq!(EvictPolicy::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_n_evicts_all_idle_on_the_nth_submit() {
        let now = Instant::now();
        let r = [cand(1, 10, 5, false, now), cand(2, 10, 1, true, now)];
        assert_eq!(victims(EvictPolicy::Every(2), 3, now, &r, 0), Vec::<u64>::new());
        assert_eq!(victims(EvictPolicy::Every(2), 4, now, &r, 0), vec![1]);
        assert_eq!(victims(EvictPolicy::Every(1), 1, now, &r, 0), vec![1]);
    }

    #[test]
    fn idle_evicts_the_unused() {
        let now = Instant::now();
        let r = [cand(1, 10, 500, false, now), cand(2, 10, 50, false, now), cand(3, 10, 900, true, now)];
        assert_eq!(victims(EvictPolicy::Idle(Duration::from_millis(100)), 1, now, &r, 0), vec![1]);
    }

    #[test]
    fn budget_evicts_least_recently_used_until_within() {
        let now = Instant::now();
        let mib = 1 << 20;
        let r = [
            cand(1, 2 * mib, 10, false, now),
            cand(2, 2 * mib, 30, false, now),
            cand(3, 2 * mib, 20, true, now),
            cand(4, 2 * mib, 5, false, now),
        ];
        // 8 MiB resident, budget 3 MiB: evict LRU idle ones (2, then 1, then 4)
        // until within; 3 is in use and stays.
        assert_eq!(victims(EvictPolicy::Budget(3 * mib), 1, now, &r, 0), vec![2, 1, 4]);
        assert_eq!(victims(EvictPolicy::Budget(6 * mib), 1, now, &r, 0), vec![2]);
        // 2 MiB about to come in: one more must go.
        assert_eq!(victims(EvictPolicy::Budget(6 * mib), 1, now, &r, 2 * mib), vec![2, 1]);
        assert_eq!(victims(EvictPolicy::Budget(8 * mib), 1, now, &r, 0), Vec::<u64>::new());
    }

    /// A binding beyond what the backing was filled for makes it stale (its
    /// next use copies in); a narrower one needs copies of its own but keeps
    /// the content.
    #[test]
    fn an_extent_beyond_the_filled_one_refills_the_backing() {
        let mut d = Dynamic::new(64, 0, vk::Buffer::null(), d_internal_with(0));
        d.contents = Contents { stale: false, current: true, dirty: false };
        let low = Span { offset: 0, size: 16 };
        assert_eq!(d.begin_use(0, low), Use::Work(Some(d_internal_with(0))), "no copies for this extent yet");
        assert!(!d.contents.stale);
        let mut i = d_internal_with(0);
        i.copies.push(Copies { extent: low, ..copies(0) });
        d.end_work(Some(i), true);
        d.finish_use(None, Instant::now());
        assert!(matches!(d.begin_use(0, low), Use::Ready(c) if c.extent == low));
        d.finish_use(None, Instant::now());
        assert!(!d.contents.stale);
        let wider = Span { offset: 0, size: 32 };
        assert!(matches!(d.begin_use(0, wider), Use::Work(Some(_))));
        assert!(d.contents.stale && !d.contents.current, "bytes 16..32 were never copied in");
        assert_eq!(d.extent, wider);
    }

    const FRESH: Contents = Contents { stale: false, current: true, dirty: false };
    const NONE: Watched = Watched { writes: false, trailing: false, unseen: false };

    fn acquire(batch: usize, writes: bool, unmodified: bool) -> Step {
        Step::Acquire { batch, writes, unmodified }
    }

    fn release(batch: usize, src_writes: bool) -> Step {
        Step::Release { batch, src_writes }
    }

    /// Settling keeps what happened since the submission computed its
    /// contents, and nothing older: a mapping meanwhile leaves the backing
    /// not current but filled (its next release does not fill over the
    /// submission's writes); a write meanwhile (another thread's, or an
    /// earlier settling computed at the same point) stays dirty.
    #[test]
    fn settling_keeps_what_changed_since_and_only_that() {
        let mut d = Dynamic::new(64, 0, vk::Buffer::null(), internal(1));
        let before = d.contents_epoch;
        let s1 = copies_needed(d.contents, &[acquire(0, true, false)], NONE).after.unwrap();
        d.mapped = Some(vk::DeviceMemory::from_raw(1));
        d.mapped_now();
        d.mapped = None;
        d.settle(s1, before);
        assert_eq!(d.contents, Contents { stale: false, current: false, dirty: true });
        let release_only = copies_needed(d.contents, &[release(0, false)], NONE);
        assert!(!release_only.fill && release_only.copy_out == vec![0], "{release_only:?}");

        let mut d = Dynamic::new(64, 0, vk::Buffer::null(), internal(1));
        d.contents = FRESH;
        let at = d.contents_epoch;
        d.settle(Contents { dirty: true, ..FRESH }, at);
        d.settle(FRESH, at);
        assert!(d.contents.dirty, "a settling computed at the same point keeps the first one's write");
        let at = d.contents_epoch;
        d.settle(FRESH, at);
        assert_eq!(d.contents, FRESH, "nothing changed since: taken as computed");
    }
}
