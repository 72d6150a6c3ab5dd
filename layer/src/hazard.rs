//! Hazard kinds: the sharing mistakes dynabuf reports (`DYNABUF_HAZARDS`),
//! each with a stable message ID name for debug messengers, statistics and
//! tests. What detects them lives in `hooks/hazards.rs`; this is only the
//! vocabulary, so the bottom floor (statistics) can count them.

#![forbid(unsafe_code)]

/// One kind of hazard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HazardKind {
    /// A submission uses memory of an imported dma-buf that the device does
    /// not hold (no acquire since its last release, or never acquired).
    UseWithoutAcquire,
    /// A submission wrote a dma-buf, and the device freed it, acquired it
    /// again or went away without releasing it to FOREIGN/EXTERNAL.
    WrittenNeverReleased,
    /// The GPU uses a dma-buf memory while the application holds a
    /// host-coherent mapping of it open: CPU writes reach the dma-buf
    /// without `DMA_BUF_IOCTL_SYNC` brackets.
    CpuAccessUnbracketed,
    /// An acquire waits for a fence that only work submitted later on the
    /// same queue can signal: a deadlock the fence timeout breaks.
    SelfWait,
    /// A peer's fence did not signal within `DYNABUF_FENCE_TIMEOUT_MS`.
    FenceTimeout,
}

impl HazardKind {
    /// Every kind, in a fixed order (statistics index by it).
    pub const ALL: [HazardKind; 5] = [
        HazardKind::UseWithoutAcquire,
        HazardKind::WrittenNeverReleased,
        HazardKind::CpuAccessUnbracketed,
        HazardKind::SelfWait,
        HazardKind::FenceTimeout,
    ];

    /// How many kinds there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The position of this kind in [`HazardKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable message ID name (`pMessageIdName` of the debug messenger
    /// callback data).
    pub fn id_name(self) -> &'static std::ffi::CStr {
        match self {
            HazardKind::UseWithoutAcquire => c"DYNABUF-hazard-use-without-acquire",
            HazardKind::WrittenNeverReleased => c"DYNABUF-hazard-written-never-released",
            HazardKind::CpuAccessUnbracketed => c"DYNABUF-hazard-cpu-access-unbracketed",
            HazardKind::SelfWait => c"DYNABUF-hazard-self-wait",
            HazardKind::FenceTimeout => c"DYNABUF-hazard-fence-timeout",
        }
    }

    /// The short name used as a JSON field and on the command line
    /// (`use_without_acquire`, ...).
    pub fn key(self) -> &'static str {
        match self {
            HazardKind::UseWithoutAcquire => "use_without_acquire",
            HazardKind::WrittenNeverReleased => "written_never_released",
            HazardKind::CpuAccessUnbracketed => "cpu_access_unbracketed",
            HazardKind::SelfWait => "self_wait",
            HazardKind::FenceTimeout => "fence_timeout",
        }
    }

    /// A stable numeric ID (`messageIdNumber`): a hash of the name, as the
    /// Khronos layers derive theirs.
    pub fn id_number(self) -> i32 {
        // FNV-1a over the name: stable across builds and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in self.id_name().to_bytes() {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all_and_names_are_distinct() {
        for (i, k) in HazardKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            let id = k.id_name().to_str().unwrap();
            assert!(id.starts_with("DYNABUF-hazard-"), "{id}");
            assert_eq!(id.trim_start_matches("DYNABUF-hazard-").replace('-', "_"), k.key());
        }
        let mut numbers: Vec<i32> = HazardKind::ALL.iter().map(|k| k.id_number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), HazardKind::COUNT);
    }
}
