//! Dynamic attachments: an imported dma-buf whose application-visible
//! memory is a device-local *backing* allocation the layer owns, with the
//! dma-buf kept as a separate *internal* import used only for copies. The
//! internal import can be evicted (the kernel's `move_notify`) and is
//! re-validated at the attachment's next use. This module holds the state
//! and the eviction policy; the engine does the Vulkan work.

use std::time::{Duration, Instant};

use ash::vk;

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

/// The live internal import of a resident attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Internal {
    pub memory: vk::DeviceMemory,
    pub buffer: vk::Buffer,
    /// The attachment's own command pool (null until first recorded).
    pub pool: vk::CommandPool,
    /// Copy dma-buf → backing, and backing → dma-buf, for `family`.
    pub copy_in: vk::CommandBuffer,
    pub copy_out: vk::CommandBuffer,
    pub family: u32,
}

/// A dynamic attachment's state.
#[derive(Clone, Debug)]
pub struct Dynamic {
    pub size: u64,
    pub memory_type: u32,
    /// A transfer buffer over the backing (the application's) memory.
    pub backing_buffer: vk::Buffer,
    /// `None`: invalidated (evicted).
    pub internal: Option<Internal>,
    /// The last submission that used it: (retire timeline, value, queue).
    pub last_use: Option<(vk::Semaphore, u64, vk::Queue)>,
    pub last_used_at: Instant,
    /// The GPU may have written the backing since the last copy-out.
    pub dirty: bool,
    /// The application has it mapped: the mapping is of the internal import
    /// (the dma-buf itself), so it is not evicted until unmapped.
    pub mapped: bool,
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
}
