//! A lock-free lookup table from dispatch key to per-object state.
//!
//! Every hook starts by finding the state of the instance or device it was
//! called on. A map behind a lock would put an atomic read-modify-write (and,
//! with many threads, a contended cache line) on every `vkQueueSubmit` and
//! `vkCmdPipelineBarrier`, whose whole cost on lavapipe is 60–140 ns. Here a
//! lookup is a scan of a few slots with plain atomic loads.
//!
//! Soundness rests on Vulkan's external-synchronisation rules: an object is
//! removed only by `vkDestroyInstance`/`vkDestroyDevice`, and the application
//! must not call anything on that object or its children (queues, command
//! buffers, physical devices) concurrently with, or after, that call. So a
//! reference handed out by [`SlotTable::get`] for a live key is never
//! outlived by its object in a valid program. Lookups of *other* keys never
//! dereference a slot whose key does not match, so they are unaffected by
//! concurrent insertion and removal.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many instances (or devices) can be live at once in one process.
pub const CAPACITY: usize = 256;

struct Slot<T> {
    key: AtomicUsize,
    value: AtomicPtr<T>,
}

/// A fixed-capacity table of `Arc<T>` keyed by dispatch key.
pub struct SlotTable<T> {
    slots: [Slot<T>; CAPACITY],
    /// One past the highest slot ever used: lookups scan no further.
    used: AtomicUsize,
    writers: Mutex<()>,
}

impl<T> std::fmt::Debug for SlotTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable").field("used", &self.used.load(Ordering::Relaxed)).finish()
    }
}

impl<T> SlotTable<T> {
    pub const fn new() -> Self {
        SlotTable {
            slots: [const { Slot { key: AtomicUsize::new(0), value: AtomicPtr::new(std::ptr::null_mut()) } };
                CAPACITY],
            used: AtomicUsize::new(0),
            writers: Mutex::new(()),
        }
    }

    /// Publishes `value` under `key`. Returns it back when the table is full
    /// or `key` is 0 (not a dispatch key).
    pub fn insert(&self, key: usize, value: Arc<T>) -> Result<(), Arc<T>> {
        if key == 0 {
            return Err(value);
        }
        let _w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(index) = self.slots.iter().position(|s| s.key.load(Ordering::Relaxed) == 0) else {
            return Err(value);
        };
        let slot = &self.slots[index];
        slot.value.store(Arc::into_raw(value).cast_mut(), Ordering::Relaxed);
        // Release: a reader that sees the key also sees the value.
        slot.key.store(key, Ordering::Release);
        if index >= self.used.load(Ordering::Relaxed) {
            self.used.store(index + 1, Ordering::Release);
        }
        Ok(())
    }

    /// The state for `key`, if any.
    #[inline]
    pub fn get(&self, key: usize) -> Option<&T> {
        // 0 marks an empty slot (and is the key of a null handle).
        if key == 0 {
            return None;
        }
        let used = self.used.load(Ordering::Acquire);
        for slot in &self.slots[..used.min(CAPACITY)] {
            if slot.key.load(Ordering::Acquire) == key {
                let p = slot.value.load(Ordering::Relaxed);
                // `p` came from `Arc::into_raw` in `insert`, published before
                // the key (Release/Acquire), and is released only by `remove`
                // of this key, which Vulkan forbids during any use of it.
                // SAFETY: so the `Arc` it points into outlives the borrow.
                return unsafe { p.as_ref() };
            }
        }
        None
    }

    /// Takes the state for `key` out of the table.
    pub fn remove(&self, key: usize) -> Option<Arc<T>> {
        if key == 0 {
            return None;
        }
        let _w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        let slot = self.slots.iter().find(|s| s.key.load(Ordering::Relaxed) == key)?;
        slot.key.store(0, Ordering::Release);
        let p = slot.value.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // `p` is what `insert` made with `Arc::into_raw` for this key, whose
        // slot was cleared above under the writers' lock (no second take).
        // SAFETY: so this turns it back into the one `Arc` it was.
        (!p.is_null()).then(|| unsafe { Arc::from_raw(p) })
    }

    /// How many entries are live.
    pub fn len(&self) -> usize {
        let used = self.used.load(Ordering::Acquire);
        self.slots[..used].iter().filter(|s| s.key.load(Ordering::Relaxed) != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Default for SlotTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the table only hands out `&T` and moves `Arc<T>` in and out, so it
// is as thread-safe as `Arc<T>` is: both need `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for SlotTable<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for SlotTable<T> {}

impl<T> Drop for SlotTable<T> {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            let p = *slot.value.get_mut();
            if !p.is_null() {
                // SAFETY: a non-null value is an `Arc::into_raw` pointer owned
                // by the table; `&mut self` means nobody else can see it.
                drop(unsafe { Arc::from_raw(p) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let t: SlotTable<u32> = SlotTable::new();
        assert!(t.get(7).is_none());
        t.insert(7, Arc::new(70)).unwrap();
        t.insert(9, Arc::new(90)).unwrap();
        assert_eq!(t.get(7), Some(&70));
        assert_eq!(t.get(9), Some(&90));
        assert_eq!(t.len(), 2);
        assert_eq!(*t.remove(7).unwrap(), 70);
        assert!(t.get(7).is_none());
        assert_eq!(t.get(9), Some(&90));
        t.insert(11, Arc::new(110)).unwrap();
        assert_eq!(t.get(11), Some(&110));
        assert!(t.remove(7).is_none());
        assert!(t.insert(0, Arc::new(0)).is_err());
    }

    #[test]
    fn the_null_key_never_matches_an_empty_slot() {
        let t: SlotTable<u32> = SlotTable::new();
        t.insert(7, Arc::new(70)).unwrap();
        t.insert(8, Arc::new(80)).unwrap();
        t.remove(7);
        assert!(t.get(0).is_none());
        assert_eq!(t.get(8), Some(&80));
    }

    #[test]
    fn full_table_refuses() {
        let t: SlotTable<usize> = SlotTable::new();
        for k in 1..=CAPACITY {
            t.insert(k, Arc::new(k)).unwrap();
        }
        assert!(t.insert(CAPACITY + 1, Arc::new(0)).is_err());
        assert_eq!(t.get(CAPACITY), Some(&CAPACITY));
    }

    #[test]
    fn removal_drops_the_value() {
        let t: SlotTable<u8> = SlotTable::new();
        let v = Arc::new(1u8);
        t.insert(5, v.clone()).unwrap();
        assert_eq!(Arc::strong_count(&v), 2);
        drop(t.remove(5));
        assert_eq!(Arc::strong_count(&v), 1);
    }
}
