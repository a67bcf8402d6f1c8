//! Counting `ImmutableBlock` handles with one atomic operation per handle.
//!
//! A block's live handle count is `acquired − released`:
//! - `acquired` is only written under the store lock, by matches,
//!   registrations and upgrades, with a plain load and store — handing out
//!   a handle costs no atomic read-modify-write;
//! - `released` is only changed by read-modify-writes: a drop adds one, a
//!   clone (which has no lock) subtracts one.
//!
//! A drop that is certainly not the last one (`acquired − released ≥ 2`)
//! compare-exchanges `released` and is done. One that may be the last takes
//! the store lock and decrements there, so the decision to cache the block
//! and its revival by a concurrent match are ordered by the lock, and no
//! dropper is ever on its way to the store after the count reached zero —
//! which is what lets the store's lease (see `lease`) end safely.
//!
//! While a handle exists `acquired` only grows, so a stale read of it is a
//! lower bound: a fast drop can only err towards taking the lock. Both
//! counters go back to zero under the lock when the count reaches zero.

use std::sync::atomic::{AtomicU32, Ordering};

/// The handle count of one block.
#[derive(Debug, Default)]
pub(crate) struct HandleCount {
    acquired: AtomicU32,
    released: AtomicU32,
}

impl HandleCount {
    /// One more handle, handed out under the store lock.
    #[inline]
    pub(crate) fn acquire_locked(&self) {
        let a = self.acquired.load(Ordering::Relaxed);
        self.acquired.store(a.wrapping_add(1), Ordering::Relaxed);
    }

    /// One more handle, cloned from an existing one without the lock.
    #[inline]
    pub(crate) fn clone_handle(&self) {
        self.released.fetch_sub(1, Ordering::Relaxed);
    }

    /// Drops a handle if it is certainly not the last; `false` means the
    /// caller must drop it with [`release_locked`](Self::release_locked).
    #[inline]
    pub(crate) fn try_release_fast(&self) -> bool {
        let mut released = self.released.load(Ordering::Relaxed);
        loop {
            let acquired = self.acquired.load(Ordering::Relaxed);
            if acquired.wrapping_sub(released) <= 1 {
                return false;
            }
            match self.released.compare_exchange_weak(
                released,
                released.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => released = now,
            }
        }
    }

    /// Drops a handle under the store lock; `true` if it was the last, in
    /// which case both counters are back at zero.
    #[inline]
    pub(crate) fn release_locked(&self) -> bool {
        let released = self.released.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        if self.acquired.load(Ordering::Relaxed) != released {
            return false;
        }
        self.acquired.store(0, Ordering::Relaxed);
        self.released.store(0, Ordering::Relaxed);
        true
    }

    /// Live handles (exact under the store lock, a snapshot otherwise).
    #[inline]
    pub(crate) fn count(&self) -> u32 {
        let released = self.released.load(Ordering::Acquire);
        self.acquired.load(Ordering::Acquire).wrapping_sub(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_through_acquire_clone_and_release() {
        let h = HandleCount::default();
        h.acquire_locked();
        assert_eq!(h.count(), 1);
        assert!(
            !h.try_release_fast(),
            "the only handle goes through the lock"
        );
        h.clone_handle();
        h.acquire_locked();
        assert_eq!(h.count(), 3);
        assert!(h.try_release_fast());
        assert!(h.try_release_fast());
        assert_eq!(h.count(), 1);
        assert!(!h.try_release_fast());
        assert!(h.release_locked(), "last one");
        assert_eq!(h.count(), 0);
        assert_eq!(h.acquired.load(Ordering::Relaxed), 0);
        assert_eq!(h.released.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn clones_may_wrap_released_below_zero() {
        let h = HandleCount::default();
        h.acquire_locked();
        for _ in 0..5 {
            h.clone_handle();
        }
        assert_eq!(h.count(), 6);
        for _ in 0..5 {
            assert!(h.try_release_fast());
        }
        assert!(h.release_locked());
    }

    #[test]
    fn a_locked_release_that_is_not_the_last_keeps_counting() {
        let h = HandleCount::default();
        h.acquire_locked();
        h.acquire_locked();
        assert!(!h.release_locked());
        assert_eq!(h.count(), 1);
        assert!(h.release_locked());
    }

    #[test]
    fn concurrent_clones_and_drops_leave_exactly_one_last_release() {
        use std::sync::Arc;
        for _ in 0..200 {
            let h = Arc::new(HandleCount::default());
            h.acquire_locked();
            for _ in 0..7 {
                h.clone_handle();
            }
            let lock = Arc::new(parking_lot::Mutex::new(0u32));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let h = Arc::clone(&h);
                    let lock = Arc::clone(&lock);
                    std::thread::spawn(move || {
                        if !h.try_release_fast() {
                            let mut lasts = lock.lock();
                            if h.release_locked() {
                                *lasts += 1;
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(*lock.lock(), 1);
            assert_eq!(h.count(), 0);
        }
    }
}
