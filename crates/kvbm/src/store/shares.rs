//! Counting the *shares* of a held block — the `ImmutableBlock`s (matches,
//! clones, pins) that keep it — with one atomic operation per share. (Not
//! "handles": that word is the registry's, `BlockRegistrationHandle`.)
//!
//! A block's live share count is `acquired − released`:
//! - `acquired` is only written under the store lock, by matches,
//!   registrations and upgrades, with a plain load and store — handing out
//!   a share costs no atomic read-modify-write;
//! - `released` is only changed by read-modify-writes: a drop adds one, a
//!   clone (which has no lock) subtracts one.
//!
//! Both counters wrap; their difference is read as a *signed* 32-bit
//! number. A drop that is certainly not the last one (difference ≥ 2)
//! compare-exchanges `released` and is done. One that may be the last takes
//! the store lock and decrements there, so the decision to cache the block
//! and its revival by a concurrent match are ordered by the lock, and no
//! dropper is ever on its way to the store after the count reached zero —
//! which is what lets the store's lease (see `lease`) end safely.
//!
//! Why a relaxed read of `acquired` is enough: the dropper holds a share,
//! whose acquisition (under the lock, after the last reset of both counters)
//! happens before the drop, so the value it reads is at least that one and
//! at most the current one. The compare-exchange only succeeds against the
//! current `released`. So the difference it computes is *at most* the true
//! count — possibly negative when `acquired` is stale and other shares
//! were dropped since. Read as signed, a stale read only errs towards
//! taking the lock. (Read as unsigned, a negative difference wraps to a huge
//! one and the last share could leave through the fast path; the loom
//! model `loom_fast_drop_never_skips_the_last_release` checks this.)
//!
//! The signed reading needs the count to stay far below 2³¹, so a share
//! that would take it past [`MAX_SHARES`] aborts the process, as
//! `std::sync::Arc` does on overflow: only a program that leaks shares
//! (`mem::forget` in a loop) gets there.

// std's atomics, or a model checker's in the lib's own test build (see
// `sync`).
use super::sync::{AtomicU32, Ordering};

/// The most live shares one block may have; one more aborts. Half of the
/// signed range, so that a stale `acquired` (lagging by fewer than 2³⁰
/// acquisitions) can never make a difference wrap.
pub(crate) const MAX_SHARES: u32 = 1 << 30;

/// The share count of one block.
#[derive(Debug, Default)]
pub(crate) struct ShareCount {
    acquired: AtomicU32,
    released: AtomicU32,
}

/// The signed difference of the two counters.
#[inline]
fn live(acquired: u32, released: u32) -> i32 {
    acquired.wrapping_sub(released) as i32
}

#[cold]
#[inline(never)]
fn too_many_shares() -> ! {
    eprintln!(
        "kvbm: more than {MAX_SHARES} live shares of one block (leaked ImmutableBlocks?); aborting"
    );
    std::process::abort()
}

impl ShareCount {
    /// One more share, handed out under the store lock.
    #[inline]
    pub(crate) fn acquire_locked(&self) {
        let a = self.acquired.load(Ordering::Relaxed).wrapping_add(1);
        // Under the lock `acquired` is exact; `released` may only be lower
        // than current (clones not yet seen), which overstates the count.
        if live(a, self.released.load(Ordering::Relaxed)) > MAX_SHARES as i32 {
            too_many_shares();
        }
        self.acquired.store(a, Ordering::Relaxed);
    }

    /// One more share, cloned from an existing one without the lock.
    #[inline]
    pub(crate) fn clone_share(&self) {
        let before = self.released.fetch_sub(1, Ordering::Relaxed);
        // `acquired` may be stale (lower), which understates the count by
        // at most the acquisitions in flight; the margin below 2³¹ covers it.
        let acquired = self.acquired.load(Ordering::Relaxed);
        if live(acquired, before.wrapping_sub(1)) > MAX_SHARES as i32 {
            too_many_shares();
        }
    }

    /// Drops a share if it is certainly not the last; `false` means the
    /// caller must drop it with [`release_locked`](Self::release_locked).
    #[inline]
    pub(crate) fn try_release_fast(&self) -> bool {
        let mut released = self.released.load(Ordering::Relaxed);
        loop {
            let acquired = self.acquired.load(Ordering::Relaxed);
            if live(acquired, released) <= 1 {
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

    /// Drops a share under the store lock; `true` if it was the last, in
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

    /// Live shares (exact under the store lock, a snapshot otherwise).
    #[inline]
    pub(crate) fn count(&self) -> u32 {
        let released = self.released.load(Ordering::Acquire);
        live(self.acquired.load(Ordering::Acquire), released).max(0) as u32
    }

    /// Test hook: pretends that `extra` more shares exist, as if leaked,
    /// so that the overflow limit can be reached without 2³⁰ clones.
    /// Call under the store lock; undo with a negative `extra`.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn pretend_leaked(&self, extra: i32) {
        let a = self.acquired.load(Ordering::Relaxed);
        self.acquired
            .store(a.wrapping_add(extra as u32), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_through_acquire_clone_and_release() {
        let h = ShareCount::default();
        h.acquire_locked();
        assert_eq!(h.count(), 1);
        assert!(
            !h.try_release_fast(),
            "the only share goes through the lock"
        );
        h.clone_share();
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
        let h = ShareCount::default();
        h.acquire_locked();
        for _ in 0..5 {
            h.clone_share();
        }
        assert_eq!(h.count(), 6);
        for _ in 0..5 {
            assert!(h.try_release_fast());
        }
        assert!(h.release_locked());
    }

    #[test]
    fn a_locked_release_that_is_not_the_last_keeps_counting() {
        let h = ShareCount::default();
        h.acquire_locked();
        h.acquire_locked();
        assert!(!h.release_locked());
        assert_eq!(h.count(), 1);
        assert!(h.release_locked());
    }

    /// The state the unsigned comparison got wrong: a dropper whose view of
    /// `acquired` lags behind `released` (here simulated by counters that
    /// read acquired < released) must take the lock.
    #[test]
    fn a_stale_acquired_below_released_takes_the_lock() {
        let h = ShareCount::default();
        h.acquired.store(2, Ordering::Relaxed);
        h.released.store(3, Ordering::Relaxed);
        assert!(!h.try_release_fast());
        assert_eq!(h.count(), 0, "a negative snapshot reads as zero");
    }

    #[test]
    fn counters_that_wrapped_still_count() {
        let h = ShareCount::default();
        h.acquired.store(u32::MAX - 1, Ordering::Relaxed);
        h.released.store(u32::MAX - 2, Ordering::Relaxed);
        assert_eq!(h.count(), 1);
        h.acquire_locked();
        h.acquire_locked();
        assert_eq!(h.count(), 3);
        assert!(h.try_release_fast());
        assert!(h.try_release_fast());
        assert!(h.release_locked());
    }

    #[test]
    fn counts_are_exact_up_to_the_limit() {
        let h = ShareCount::default();
        h.acquire_locked();
        h.pretend_leaked(MAX_SHARES as i32 - 3);
        h.clone_share();
        h.acquire_locked();
        assert_eq!(h.count(), MAX_SHARES);
        assert!(h.try_release_fast());
        assert_eq!(h.count(), MAX_SHARES - 1);
    }

    /// One more share than [`MAX_SHARES`] aborts, by clone or by match.
    /// The abort runs in a child process: this test re-runs itself with
    /// `KVBM_OVERFLOW_CHILD` set.
    #[cfg(all(unix, not(miri)))]
    #[test]
    fn one_share_past_the_limit_aborts() {
        use std::os::unix::process::ExitStatusExt;
        const CHILD: &str = "KVBM_OVERFLOW_CHILD";
        if let Some(how) = std::env::var_os(CHILD) {
            let h = ShareCount::default();
            h.acquire_locked();
            h.pretend_leaked(MAX_SHARES as i32 - 1);
            assert_eq!(h.count(), MAX_SHARES);
            if how == "clone" {
                h.clone_share();
            } else {
                h.acquire_locked();
            }
            panic!("survived share {} on one block", h.count());
        }
        for how in ["clone", "acquire"] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::shares::tests::one_share_past_the_limit_aborts",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, how)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.signal(),
                Some(6),
                "{how}: expected SIGABRT, got {:?}; stderr: {stderr}",
                out.status
            );
            assert!(stderr.contains("live shares of one block"), "{stderr}");
        }
    }

    #[test]
    fn concurrent_clones_and_drops_leave_exactly_one_last_release() {
        use std::sync::Arc;
        let rounds = if cfg!(miri) { 5 } else { 200 };
        for _ in 0..rounds {
            let h = Arc::new(ShareCount::default());
            h.acquire_locked();
            for _ in 0..7 {
                h.clone_share();
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

/// Loom models of the fast drop path. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p kvbm --lib loom_`.
///
/// The droppers are spawned threads that never wrote the counters
/// themselves: loom does not let a thread re-read a value it saw before a
/// yield (a spawn, an unlock that wakes a waiter), which would hide exactly
/// the stale reads that matter.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// One block as the store sees it: its share count, and the store
    /// lock guarding the number of last releases (each caches the block).
    struct Block {
        count: ShareCount,
        lasts: Mutex<usize>,
    }

    impl Block {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                count: ShareCount::default(),
                lasts: Mutex::new(0),
            })
        }

        /// A match: shares are acquired under the lock.
        fn acquire(&self, n: usize) {
            let _lock = self.lasts.lock().unwrap();
            for _ in 0..n {
                self.count.acquire_locked();
            }
        }

        /// `Share::drop` (`guard_ops`): the fast path, or the lock.
        fn drop_share(&self) {
            if self.count.try_release_fast() {
                return;
            }
            let mut lasts = self.lasts.lock().unwrap();
            if self.count.release_locked() {
                *lasts += 1;
            }
        }
    }

    fn on_thread(block: &Arc<Block>, f: impl FnOnce(&Block) + 'static) -> thread::JoinHandle<()> {
        let block = Arc::clone(block);
        thread::spawn(move || f(&block))
    }

    /// A share matched before the threads start is dropped on one thread
    /// while another matches two more and drops them. The first may see
    /// `released` advanced by the other's drops but an `acquired` from
    /// before the other's match (nothing orders them). Whatever it sees,
    /// the count reaches zero only through the lock: at least one last
    /// release, and a zero count. Comparing the counters as unsigned fails
    /// this model.
    #[test]
    fn loom_fast_drop_never_skips_the_last_release() {
        loom::model(|| {
            let block = Block::new();
            // Before any thread exists the lock is not needed (and taking
            // it would make loom treat the unlock as a yield).
            block.count.acquire_locked();
            // Spawned first: loom explores the other's reads of its stores
            // more thoroughly in this order.
            let c = on_thread(&block, |b| {
                b.acquire(2);
                b.drop_share();
                b.drop_share();
            });
            let a = on_thread(&block, |b| b.drop_share());
            a.join().unwrap();
            c.join().unwrap();
            let lasts = *block.lasts.lock().unwrap();
            assert!(
                lasts >= 1,
                "all shares dropped, yet no drop took the last-release path"
            );
            assert_eq!(block.count.count(), 0);
        });
    }

    /// A clone racing the drop of another share on another thread: the
    /// final drop, and only it, caches the block.
    #[test]
    fn loom_clone_racing_a_drop() {
        loom::model(|| {
            let block = Block::new();
            let (tx, rx) = loom::sync::mpsc::channel();
            let a = on_thread(&block, move |b| {
                b.acquire(2);
                tx.send(()).unwrap();
                b.drop_share();
            });
            let c = on_thread(&block, move |b| {
                // Takes over the second share, clones it, drops both.
                rx.recv().unwrap();
                b.count.clone_share();
                b.drop_share();
                b.drop_share();
            });
            a.join().unwrap();
            c.join().unwrap();
            assert_eq!(*block.lasts.lock().unwrap(), 1);
            assert_eq!(block.count.count(), 0);
        });
    }
}
