//! The layer's locks and their order, written once and checked in debug
//! builds (as lockdep checks `dma_resv` nesting in the kernel).
//!
//! Levels, outermost first:
//!
//! 1. `Memory`: a device's external-memory table (`DeviceState::with_memory`);
//! 2. `Registry`: the process-wide dma-buf registry (`hooks::dma_bufs`);
//! 3. `Commands`: a device's recorded ownership transfers;
//! 4. `Queues`: a device's queue → family map;
//! 5. `Leaf`: every lock of the sync engine and the waiter (semaphore
//!    pools, retire timelines, gates, the waiter's free list); nothing but
//!    `Stats` is taken while one is held;
//! 6. `Stats`: a device's per-dma-buf statistics (`stats`), taken under
//!    any other to count what happens there; nothing is taken while it is
//!    held.
//!
//! A thread may only take a lock of a higher level than any it holds, and
//! **no lock is held across a call down the chain, a wait or an ioctl**:
//! every call-down wrapper in `dispatch` asserts that this thread holds
//! none. Take the state out, drop the lock, call down, put the result back.

#![forbid(unsafe_code)]

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A lock's level (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Memory = 1,
    Registry = 2,
    Commands = 3,
    Queues = 4,
    Leaf = 5,
    Stats = 6,
}

#[cfg(debug_assertions)]
thread_local! {
    /// The highest level this thread holds (0: none).
    static HELD: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// A held lock: its guard, and (in debug builds) the level it raised.
#[derive(Debug)]
pub struct Guard<'a, T> {
    /// Always `Some` but inside [`wait_timeout`].
    guard: Option<MutexGuard<'a, T>>,
    #[cfg(debug_assertions)]
    previous: u8,
}

/// Locks `m` at `level`. A poisoned lock means a hook panicked (and was
/// caught) mid-update; the state is still structurally valid, so it is
/// used rather than failing every later call.
pub fn lock<T>(m: &Mutex<T>, level: Level) -> Guard<'_, T> {
    #[cfg(debug_assertions)]
    let previous = HELD.with(|h| {
        let held = h.get();
        assert!(held < level as u8, "lock order: taking {level:?} while holding level {held}");
        h.set(level as u8);
        held
    });
    #[cfg(not(debug_assertions))]
    let _ = level;
    Guard {
        guard: Some(m.lock().unwrap_or_else(PoisonError::into_inner)),
        #[cfg(debug_assertions)]
        previous,
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        HELD.with(|h| h.set(self.previous));
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.guard {
            Some(g) => g,
            None => unreachable!("a guard is only empty inside wait_timeout"),
        }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.guard {
            Some(g) => g,
            None => unreachable!("a guard is only empty inside wait_timeout"),
        }
    }
}

/// Waits on `condvar` with the lock released meanwhile (up to
/// `timeout`); the held level stays as it was.
pub fn wait_timeout<'a, T>(
    mut guard: Guard<'a, T>,
    condvar: &std::sync::Condvar,
    timeout: std::time::Duration,
) -> Guard<'a, T> {
    if let Some(inner) = guard.guard.take() {
        let (inner, _) = condvar.wait_timeout(inner, timeout).unwrap_or_else(PoisonError::into_inner);
        guard.guard = Some(inner);
    }
    guard
}

/// Asserts (debug builds) that this thread holds none of the layer's
/// locks: called before every call down the chain.
#[inline(always)]
pub fn assert_unlocked(call: &str) {
    #[cfg(debug_assertions)]
    HELD.with(|h| assert!(h.get() == 0, "{call} called down while holding a lock of level {}", h.get()));
    #[cfg(not(debug_assertions))]
    let _ = call;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_nest_only_outward_in() {
        let (a, b) = (Mutex::new(1), Mutex::new(2));
        {
            let _m = lock(&a, Level::Memory);
            let _c = lock(&b, Level::Commands);
        }
        assert_unlocked("after both dropped");
        let backwards = std::panic::catch_unwind(|| {
            let (a, b) = (Mutex::new(1), Mutex::new(2));
            let _c = lock(&b, Level::Commands);
            let _m = lock(&a, Level::Memory);
        });
        assert_eq!(backwards.is_err(), cfg!(debug_assertions));
    }

    #[test]
    fn calling_down_under_a_lock_is_caught() {
        let r = std::panic::catch_unwind(|| {
            let a = Mutex::new(1);
            let _m = lock(&a, Level::Leaf);
            assert_unlocked("vkTest");
        });
        assert_eq!(r.is_err(), cfg!(debug_assertions));
        assert_unlocked("after unwinding");
    }
}
