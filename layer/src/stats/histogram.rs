//! Log2 histograms of durations, recorded without a lock or an allocation:
//! a fixed array of atomic counters, one per power of two.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use super::document::Histogram;

/// How many buckets a histogram has: 0, then one per power of two up to
/// `2^38`, the last holding everything from `2^38` up.
pub const BUCKETS: usize = 40;

/// The bucket of `value`: 0 for 0, `i` for `[2^(i-1), 2^i)`, and the last
/// for everything from `2^(BUCKETS-2)` up.
#[inline]
pub fn bucket_of(value: u64) -> usize {
    ((u64::BITS - value.leading_zeros()) as usize).min(BUCKETS - 1)
}

/// The values bucket `i` holds: `[low, high)`, `high` being `None` for the
/// last bucket (no upper bound).
pub fn bucket_bounds(i: usize) -> (u64, Option<u64>) {
    let low = if i == 0 { 0 } else { 1u64 << (i - 1).min(63) };
    let high = (i + 1 < BUCKETS).then(|| 1u64 << i.min(63));
    (low, high)
}

/// A histogram that threads record into at once.
#[derive(Debug)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    /// Records one value.
    #[inline]
    pub fn record(&self, value: u64) {
        self.buckets[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        // Saturating: a sum past u64 stays at the top instead of wrapping.
        let _ =
            self.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some(s.saturating_add(value)));
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// What it holds now (a reader racing recorders may see a value in
    /// `count` a moment before its bucket: the document takes `count` as
    /// the buckets' sum, so both always agree).
    pub fn snapshot(&self) -> Histogram {
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        Histogram {
            count: buckets.iter().sum(),
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(2), 2);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 3);
        assert_eq!(bucket_of(1023), 10);
        assert_eq!(bucket_of(1024), 11);
        assert_eq!(bucket_of(1 << 38), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_bounds(0), (0, Some(1)));
        assert_eq!(bucket_bounds(1), (1, Some(2)));
        assert_eq!(bucket_bounds(11), (1024, Some(2048)));
        assert_eq!(bucket_bounds(BUCKETS - 1), (1 << 38, None));
        // Every value lies within its bucket's bounds, and the bounds tile
        // the line without gaps.
        for v in [0, 1, 2, 5, 999, 1 << 20, (1 << 38) - 1, 1 << 38, u64::MAX] {
            let (low, high) = bucket_bounds(bucket_of(v));
            assert!(low <= v && high.map_or(true, |h| v < h), "{v}");
        }
        for i in 1..BUCKETS {
            assert_eq!(bucket_bounds(i - 1).1, Some(bucket_bounds(i).0));
        }
    }

    #[test]
    fn records_count_sum_and_max() {
        let h = AtomicHistogram::default();
        for v in [0, 3, 3, 1000, u64::MAX] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets.len(), BUCKETS);
        assert_eq!((s.count, s.max, s.sum), (5, u64::MAX, u64::MAX));
        assert_eq!((s.buckets[0], s.buckets[2], s.buckets[10], s.buckets[BUCKETS - 1]), (1, 2, 1, 1));
        assert_eq!(s.quantile_bound(0.5), Some(4));
        assert_eq!(s.quantile_bound(0.8), Some(1024));
        assert_eq!(s.quantile_bound(1.0), Some(u64::MAX));
        assert_eq!(AtomicHistogram::default().snapshot().quantile_bound(0.5), None);
    }

    #[test]
    fn threads_record_at_once() {
        let h = AtomicHistogram::default();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let h = &h;
                s.spawn(move || (0..1000).for_each(|i| h.record(i * t)));
            }
        });
        assert_eq!(h.snapshot().count, 4000);
    }
}
