//! Regression tests for issue 7: whatever a custom backend, frequency
//! tracker, attachment or caller does, the store stays consistent and no
//! guard outlives its store. Each test ends by dropping the manager before
//! its last guard, which under miri (`cargo +nightly miri test --test
//! soundness`) is where a broken lease shows up as a use-after-free.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use kvbm::blocks::BlockDuplicationPolicy;
use kvbm::eviction::{InactiveBackend, LruBackend, MultiLruBackend, DEFAULT_FREQUENCY_THRESHOLDS};
use kvbm::manager::{BlockManager, BlockManagerConfigBuilder};
use kvbm::registry::BlockRegistry;
use kvbm::testing::{chain, check, fill, staged, store_alive, Device};
use kvbm::tinylfu::FrequencyTracker;
use kvbm::{BlockId, ImmutableBlock, SequenceHash};

/// What an [`Adversary`] does wrong once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Trap {
    Honest,
    PanicOnPop,
    PanicOnInsert,
    PanicOnRemove,
    PanicOnDrain,
    /// `drain` reports its first block twice.
    DrainTwice,
    /// `drain` forgets its last block.
    DrainShort,
    /// `pop_victim` names block 0 whatever its state.
    PopBlockZero,
    /// `pop_victim` names a block past the pool.
    PopOutOfRange,
    /// `pop_victim` claims to be empty.
    PopNone,
    /// `insert` calls back into the manager.
    ReenterOnInsert,
    /// `prefetch_insert` panics.
    PanicOnPrefetch,
    /// `prefetch_insert` calls back into the manager.
    ReenterOnPrefetch,
    /// `evictions_done` panics.
    PanicOnEvictionsDone,
}

/// The switch a test arms its adversary with, and the manager it may call
/// back into.
#[derive(Default)]
struct Switch {
    trap: AtomicU8,
    manager: OnceLock<Weak<BlockManager<Device>>>,
}

impl Switch {
    fn arm(&self, trap: Trap) {
        self.trap.store(trap as u8, Ordering::SeqCst);
    }

    fn is(&self, trap: Trap) -> bool {
        self.trap.load(Ordering::SeqCst) == trap as u8
    }
}

/// An LRU backend that misbehaves on command.
struct Adversary {
    inner: LruBackend,
    switch: Arc<Switch>,
}

impl InactiveBackend for Adversary {
    fn name(&self) -> &'static str {
        "adversary"
    }
    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        assert!(!self.switch.is(Trap::PanicOnInsert), "insert trap");
        if self.switch.is(Trap::ReenterOnInsert) {
            if let Some(m) = self.switch.manager.get().and_then(Weak::upgrade) {
                let _ = m.available_blocks();
            }
        }
        self.inner.insert(block, hash);
    }
    fn prefetch_insert(&self, _block: BlockId, _hash: SequenceHash) {
        assert!(!self.switch.is(Trap::PanicOnPrefetch), "prefetch trap");
        if self.switch.is(Trap::ReenterOnPrefetch) {
            if let Some(m) = self.switch.manager.get().and_then(Weak::upgrade) {
                let _ = m.available_blocks();
            }
        }
    }
    fn remove(&mut self, block: BlockId, hash: SequenceHash) {
        assert!(!self.switch.is(Trap::PanicOnRemove), "remove trap");
        self.inner.remove(block, hash);
    }
    fn pop_victim(&mut self) -> Option<BlockId> {
        assert!(!self.switch.is(Trap::PanicOnPop), "pop_victim trap");
        if self.switch.is(Trap::PopBlockZero) {
            return Some(0);
        }
        if self.switch.is(Trap::PopOutOfRange) {
            return Some(1 << 20);
        }
        if self.switch.is(Trap::PopNone) {
            return None;
        }
        self.inner.pop_victim()
    }
    fn evictions_done(&mut self) {
        assert!(
            !self.switch.is(Trap::PanicOnEvictionsDone),
            "evictions_done trap"
        );
        self.inner.evictions_done();
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        assert!(!self.switch.is(Trap::PanicOnDrain), "drain trap");
        let mut ids = Vec::new();
        self.inner.drain(&mut |id| ids.push(id));
        if self.switch.is(Trap::DrainTwice) {
            ids.push(ids[0]);
        }
        if self.switch.is(Trap::DrainShort) {
            ids.pop();
        }
        ids.into_iter().for_each(sink);
    }
    fn validate(&self) -> Result<(), String> {
        self.inner.validate()
    }
}

/// A manager of `blocks` blocks of 4 tokens ordered by an [`Adversary`].
fn adversarial(blocks: usize) -> (Arc<BlockManager<Device>>, Arc<Switch>) {
    adversarial_with(blocks, BlockDuplicationPolicy::default())
}

/// [`adversarial`] with a duplication policy.
fn adversarial_with(
    blocks: usize,
    duplication: BlockDuplicationPolicy,
) -> (Arc<BlockManager<Device>>, Arc<Switch>) {
    let switch = Arc::new(Switch::default());
    let for_backend = Arc::clone(&switch);
    let m = BlockManager::<Device>::builder()
        .block_count(blocks)
        .block_size(4)
        .duplication_policy(duplication)
        .with_inactive_backend(move |n| {
            Box::new(Adversary {
                inner: LruBackend::new(n),
                switch: for_backend,
            })
        })
        .build()
        .unwrap();
    let m = Arc::new(m);
    switch.manager.set(Arc::downgrade(&m)).unwrap();
    (m, switch)
}

/// A builder for 3 blocks of 4 tokens over a registry counting accesses
/// with `tracker`.
fn with_tracker(tracker: Arc<dyn FrequencyTracker<u128>>) -> BlockManagerConfigBuilder<Device> {
    let registry = BlockRegistry::builder().frequency_tracker(tracker).build();
    BlockManager::<Device>::builder()
        .block_count(3)
        .block_size(4)
        .registry(registry)
}

/// The message a caught panic carries.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Runs `f`, expecting a panic whose message contains `expected`.
fn expect_panic<R>(expected: &str, f: impl FnOnce() -> R) {
    let payload = catch_unwind(AssertUnwindSafe(f))
        .err()
        .unwrap_or_else(|| panic!("expected a panic with {expected:?}"));
    let text = message(payload);
    assert!(text.contains(expected), "panic {text:?} lacks {expected:?}");
}

/// After a failure: the manager is poisoned but consistent, nothing is
/// cached, and it refuses further work loudly.
fn assert_poisoned(m: &BlockManager<Device>, why: &str) {
    let reason = m.poisoned().expect("poisoned");
    assert!(reason.contains(why), "{reason:?} lacks {why:?}");
    check(m);
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 0);
    expect_panic("poisoned", || m.allocate_blocks(1));
    expect_panic("poisoned", || m.match_blocks(&chain(99, 1)));
    check(m);
}

/// Unwraps the only `Arc` of a manager, for tests that drop it.
fn sole(m: Arc<BlockManager<Device>>) -> BlockManager<Device> {
    Arc::try_unwrap(m).unwrap_or_else(|_| panic!("manager still shared"))
}

/// Drops the manager while `held` is its last guard: the guard keeps the
/// store alive as the only handle on its block, and dropping it ends the
/// store.
fn drop_manager_then_last_guard(
    m: Arc<BlockManager<Device>>,
    held: ImmutableBlock<Device>,
    metrics: &Arc<kvbm::metrics::BlockPoolMetrics>,
) {
    drop(sole(m));
    assert!(store_alive(metrics), "the held block keeps the store");
    assert_eq!(held.use_count(), 1);
    drop(held);
    assert!(!store_alive(metrics), "the store went with its last guard");
}

/// Item 1: a panicking `pop_victim` while a free block was about to be
/// handed out. Before, the free block's guard was built before the victim
/// was asked for, and the unwind dropped it uncounted, ending the lease
/// under a live guard.
#[test]
fn a_panicking_pop_victim_leaves_the_lease_intact() {
    let (m, switch) = adversarial(3);
    let metrics = Arc::clone(m.metrics());
    let hashes = chain(1, 2);
    let held = fill(&m, &hashes[..1]).pop().unwrap();
    drop(fill(&m, &hashes[1..]));
    switch.arm(Trap::PanicOnPop);
    let worker = {
        let m = Arc::clone(&m);
        std::thread::spawn(move || m.allocate_blocks(2).map(|b| b.len()))
    };
    let payload = worker.join().unwrap_err();
    assert!(message(payload).contains("pop_victim trap"));
    assert_poisoned(&m, "pop_victim trap");
    assert_eq!(m.available_blocks(), 2, "the cached block was freed");
    assert!(!m.block_registry().is_registered(hashes[1]));
    assert_eq!(held.sequence_hash(), hashes[0]);
    drop_manager_then_last_guard(m, held, &metrics);
}

/// Item 2: a `drain` that reports a block twice used to push it on the
/// free list twice, and the next allocation handed it out twice.
#[test]
fn a_drain_reporting_a_block_twice_is_refused() {
    let (m, switch) = adversarial(3);
    let metrics = Arc::clone(m.metrics());
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    drop(fill(&m, &chain(2, 2)));
    switch.arm(Trap::DrainTwice);
    expect_panic("not cached", || m.reset_inactive_pool());
    assert_poisoned(&m, "drain reported block");
    assert_eq!(m.available_blocks(), 2);
    drop_manager_then_last_guard(m, held, &metrics);
}

#[test]
fn a_drain_that_forgets_a_block_is_refused() {
    let (m, switch) = adversarial(3);
    drop(fill(&m, &chain(2, 2)));
    switch.arm(Trap::DrainShort);
    expect_panic("unreported", || m.reset_inactive_pool());
    assert_poisoned(&m, "left 1 cached");
    assert_eq!(m.available_blocks(), 3);
}

#[test]
fn a_panicking_drain_poisons_the_store() {
    let (m, switch) = adversarial(3);
    let held = fill(&m, &chain(1, 1));
    drop(fill(&m, &chain(2, 2)));
    switch.arm(Trap::PanicOnDrain);
    expect_panic("drain trap", || m.reset_inactive_pool());
    assert_poisoned(&m, "drain trap");
    drop(sole(m));
    drop(held);
}

/// A victim that is not cached (held, out of range, or none at all while
/// blocks are cached) is a contract breach: the allocation fails loudly
/// and hands out nothing twice.
#[test]
fn lying_victims_are_refused() {
    for trap in [Trap::PopBlockZero, Trap::PopOutOfRange, Trap::PopNone] {
        let (m, switch) = adversarial(3);
        let metrics = Arc::clone(m.metrics());
        let held = fill(&m, &chain(1, 1)).pop().unwrap();
        assert_eq!(held.block_id(), 0);
        drop(fill(&m, &chain(2, 2)));
        switch.arm(trap);
        expect_panic("broke its contract", || m.allocate_blocks(2));
        assert_poisoned(&m, "pop_victim returned");
        drop_manager_then_last_guard(m, held, &metrics);
    }
}

/// Item 5: a panicking `insert` while the last handle drops. The block
/// and every cached one are freed; the drop's panic reaches the caller.
#[test]
fn a_panicking_insert_on_the_last_drop_frees_the_block() {
    let (m, switch) = adversarial(4);
    let metrics = Arc::clone(m.metrics());
    drop(fill(&m, &chain(1, 1)));
    let mut held = fill(&m, &chain(2, 2));
    switch.arm(Trap::PanicOnInsert);
    let last = held.pop().unwrap();
    expect_panic("insert trap", move || drop(last));
    assert_poisoned(&m, "insert trap");
    assert_eq!(m.available_blocks(), 3);
    // A poisoned store still takes its guards back, without caching them.
    drop_manager_then_last_guard(m, held.pop().unwrap(), &metrics);
}

/// The same, with the drop happening after the manager is gone: the
/// panicking drop must still end the lease.
#[test]
fn a_panicking_insert_on_the_very_last_guard_ends_the_lease() {
    let (m, switch) = adversarial(2);
    let metrics = Arc::clone(m.metrics());
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    switch.arm(Trap::PanicOnInsert);
    drop(sole(m));
    expect_panic("insert trap", move || drop(held));
    assert!(!store_alive(&metrics), "the store went with its last guard");
}

/// A panicking `insert` in a batch release (`ImmutableBlock::release_all`)
/// of blocks with two shares each: the store is poisoned, every block of
/// the batch is freed (the ones after the failure too) and the panic is
/// raised once, after the lock.
#[test]
fn a_panicking_insert_in_a_batch_release_frees_the_batch() {
    let (m, switch) = adversarial(4);
    let held = fill(&m, &chain(1, 4));
    let mut batch = held.clone();
    batch.extend(held);
    switch.arm(Trap::PanicOnInsert);
    expect_panic("insert trap", || ImmutableBlock::release_all(batch));
    assert_poisoned(&m, "insert trap");
    assert_eq!(m.available_blocks(), 4);
    check(&m);
}

/// A panicking `prefetch_insert` hint before a batch release's inserts
/// poisons the store like any backend failure: the batch is freed, not
/// cached, and the panic reaches the caller after the lock.
#[test]
fn a_panicking_insert_hint_in_a_batch_release_poisons_the_store() {
    let (m, switch) = adversarial(4);
    let batch = fill(&m, &chain(1, 3));
    switch.arm(Trap::PanicOnPrefetch);
    expect_panic("prefetch trap", || ImmutableBlock::release_all(batch));
    assert_poisoned(&m, "prefetch trap");
    assert_eq!(m.available_blocks(), 4);
    check(&m);
}

/// A panicking `evictions_done` after an allocation's victims were
/// chosen: the allocation fails, the store is poisoned, the victims and the
/// rest of the cache are freed, and blocks held elsewhere stay valid.
#[test]
fn a_panicking_evictions_done_fails_the_allocation() {
    let (m, switch) = adversarial(3);
    let hashes = chain(1, 3);
    let held = fill(&m, &hashes[..1]).pop().unwrap();
    drop(fill(&m, &hashes[1..]));
    switch.arm(Trap::PanicOnEvictionsDone);
    expect_panic("evictions_done trap", || m.allocate_blocks(2));
    assert_poisoned(&m, "evictions_done trap");
    assert_eq!(m.available_blocks(), 2, "both cached blocks were freed");
    assert!(!m.block_registry().is_registered(hashes[1]));
    assert_eq!(held.sequence_hash(), hashes[0]);
    drop(held);
    check(&m);
}

/// A large store (2^16 blocks, where registration hints the backend about
/// the inserts its blocks will need) whose `prefetch_insert` panics while
/// a batch registers: the store is poisoned, the registered blocks are
/// handed back by the unwind and freed, and the panic reaches the caller
/// once, after the lock. (Not under miri, where building 2^16 blocks
/// takes minutes; the path has no `unsafe` of its own, and the prefetch it
/// issues is covered by `prefetch::tests` there.)
#[cfg(not(miri))]
#[test]
fn a_panicking_insert_hint_in_a_large_registration_poisons_the_store() {
    let blocks = 1 << 16;
    let (m, switch) = adversarial(blocks);
    let staged: Vec<_> = chain(1, 3).into_iter().map(|h| staged(&m, h)).collect();
    switch.arm(Trap::PanicOnPrefetch);
    expect_panic("prefetch trap", || m.register_blocks(staged));
    assert_poisoned(&m, "prefetch trap");
    assert_eq!(m.available_blocks(), blocks);
    check(&m);
}

/// The same with the manager gone: the batch holds the last guards, and
/// the lease ends with it.
#[test]
fn a_panicking_insert_in_a_batch_of_the_last_guards_ends_the_lease() {
    let (m, switch) = adversarial(4);
    let metrics = Arc::clone(m.metrics());
    let batch = fill(&m, &chain(1, 3));
    switch.arm(Trap::PanicOnInsert);
    drop(sole(m));
    expect_panic("insert trap", move || ImmutableBlock::release_all(batch));
    assert!(
        !store_alive(&metrics),
        "the store went with its last guards"
    );
}

/// A panicking `remove` while a match revives a cached block: the blocks
/// matched before it stay valid, the rest of the cache is freed.
#[test]
fn a_panicking_remove_during_a_match() {
    let (m, switch) = adversarial(4);
    let hashes = chain(1, 3);
    let first = fill(&m, &hashes[..1]);
    drop(fill(&m, &hashes[1..]));
    switch.arm(Trap::PanicOnRemove);
    expect_panic("remove trap", || m.match_blocks(&hashes));
    assert_poisoned(&m, "remove trap");
    assert_eq!(first[0].use_count(), 1, "the unwind released the match");
    drop(sole(m));
    drop(first);
}

/// On a manager of `blocks` blocks with `duplication`, caches the block of
/// `chain(1, 1)`, arms a panicking `remove` and registers a new block under
/// the same hash, which revives the cached one: expects the panic.
fn register_over_a_cached_primary_into_a_remove_trap(
    blocks: usize,
    duplication: BlockDuplicationPolicy,
) -> Arc<BlockManager<Device>> {
    let (m, switch) = adversarial_with(blocks, duplication);
    let h = chain(1, 1);
    drop(fill(&m, &h));
    switch.arm(Trap::PanicOnRemove);
    let staged = staged(&m, h[0]);
    expect_panic("remove trap", || m.register_block(staged));
    m
}

/// A panicking `remove` while `Reject` registration revives the
/// registered block: the new block becomes the primary, then the panic.
#[test]
fn a_panicking_remove_during_a_rejected_registration() {
    let m = register_over_a_cached_primary_into_a_remove_trap(2, BlockDuplicationPolicy::Reject);
    assert_eq!(m.available_blocks(), 2);
    check(&m);
}

/// A panicking `remove` while an `Allow` duplicate's registration revives
/// its cached primary: the primary is freed with the cache, the new block
/// becomes the primary instead (no duplicate without a primary), then the
/// panic; the unwind releases it.
#[test]
fn a_panicking_remove_during_a_duplicate_registration() {
    let m = register_over_a_cached_primary_into_a_remove_trap(3, BlockDuplicationPolicy::Allow);
    assert_poisoned(&m, "remove trap");
    assert_eq!(m.available_blocks(), 3);
    assert!(!m.block_registry().is_registered(chain(1, 1)[0]));
}

/// A panicking `insert` while the last duplicate's drop caches the
/// primary it held: both blocks are freed, and with the manager already
/// gone the drop ends the lease (the nested release must not leave it).
#[test]
fn a_panicking_insert_when_a_duplicate_lets_its_primary_go() {
    for manager_first in [false, true] {
        let (m, switch) = adversarial_with(3, BlockDuplicationPolicy::Allow);
        let metrics = Arc::clone(m.metrics());
        let h = chain(1, 1);
        let primary = fill(&m, &h).pop().unwrap();
        let duplicate = fill(&m, &h).pop().unwrap();
        drop(primary);
        check(&m);
        switch.arm(Trap::PanicOnInsert);
        if manager_first {
            drop(sole(m));
            assert!(store_alive(&metrics), "the duplicate keeps the store");
            expect_panic("insert trap", move || drop(duplicate));
            assert!(!store_alive(&metrics), "the store went with its last guard");
        } else {
            expect_panic("insert trap", move || drop(duplicate));
            assert_poisoned(&m, "insert trap");
            assert_eq!(m.available_blocks(), 3);
            assert!(!m.block_registry().is_registered(h[0]));
        }
    }
}

/// On a poisoned store a duplicate's drop frees the primary it held
/// (nothing is cached any more) and unregisters it.
#[test]
fn a_duplicate_on_a_poisoned_store_frees_its_primary() {
    let (m, switch) = adversarial_with(4, BlockDuplicationPolicy::Allow);
    let h = chain(1, 1);
    let primary = fill(&m, &h).pop().unwrap();
    let duplicate = fill(&m, &h).pop().unwrap();
    drop(primary);
    drop(fill(&m, &chain(2, 1)));
    switch.arm(Trap::PanicOnDrain);
    expect_panic("drain trap", || m.reset_inactive_pool());
    assert_poisoned(&m, "drain trap");
    assert!(m.block_registry().is_registered(h[0]), "still held");
    drop(duplicate);
    assert!(!m.block_registry().is_registered(h[0]));
    assert_eq!(m.available_blocks(), 4);
    check(&m);
}

/// A user frequency tracker that panics when multi-LRU asks it, under the
/// store lock, for a released block's count.
#[test]
fn a_panicking_frequency_tracker_under_the_lock() {
    struct Grumpy(AtomicU8);
    impl FrequencyTracker<u128> for Grumpy {
        fn touch(&self, _: u128) {}
        fn count(&self, _: u128) -> u32 {
            assert_eq!(self.0.load(Ordering::SeqCst), 0, "count trap");
            0
        }
    }
    let tracker = Arc::new(Grumpy(AtomicU8::new(0)));
    let m = with_tracker(Arc::clone(&tracker) as _)
        .with_multi_lru_backend()
        .build()
        .unwrap();
    let metrics = Arc::clone(m.metrics());
    drop(fill(&m, &chain(1, 1)));
    let held = fill(&m, &chain(2, 1)).pop().unwrap();
    tracker.0.store(1, Ordering::SeqCst);
    drop(m);
    expect_panic("count trap", move || drop(held));
    assert!(!store_alive(&metrics));
}

/// The tracker is also touched by matches and registrations, outside the
/// lock: a panic there leaves nothing to repair.
#[test]
fn a_panicking_touch_outside_the_lock() {
    struct Touchy(AtomicU8);
    impl FrequencyTracker<u128> for Touchy {
        fn touch(&self, _: u128) {
            assert_eq!(self.0.load(Ordering::SeqCst), 0, "touch trap");
        }
        fn count(&self, _: u128) -> u32 {
            0
        }
    }
    let tracker = Arc::new(Touchy(AtomicU8::new(0)));
    let m = with_tracker(Arc::clone(&tracker) as _).build().unwrap();
    let hashes = chain(1, 2);
    drop(fill(&m, &hashes));
    tracker.0.store(1, Ordering::SeqCst);
    expect_panic("touch trap", || m.match_blocks(&hashes));
    expect_panic("touch trap", || fill(&m, &chain(7, 1)));
    assert!(m.poisoned().is_none(), "nothing ran under the lock");
    check(&m);
    assert_eq!(m.available_blocks(), 3);
}

/// An attachment whose drop panics, dropped when its block is evicted by
/// an allocation: the allocation unwinds, its blocks go back.
#[test]
fn a_panicking_attachment_drop_on_eviction() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("attachment trap");
        }
    }
    let m = kvbm::testing::manager(2);
    let hash = chain(1, 1)[0];
    let held = fill(&m, &[hash]).pop().unwrap();
    held.registration_handle().attach_unique(Bomb).unwrap();
    drop(held);
    expect_panic("attachment trap", || m.allocate_blocks(2));
    assert!(m.poisoned().is_none());
    check(&m);
    assert_eq!(m.available_blocks(), 2);
    assert!(!m.block_registry().is_registered(hash));
}

/// A touch callback that panics runs outside every lock.
#[test]
fn a_panicking_touch_callback() {
    let m = kvbm::testing::manager(2);
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    let handle = held.registration_handle();
    handle.on_touch(Arc::new(|_| panic!("callback trap")));
    expect_panic("callback trap", || handle.touch());
    check(&m);
    drop(m);
    drop(held);
}

/// A backend that calls back into its manager panics at once, with a
/// message that says what happened, instead of deadlocking.
#[test]
fn a_backend_calling_back_into_its_manager_panics() {
    let (m, switch) = adversarial(2);
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    switch.arm(Trap::ReenterOnInsert);
    expect_panic("called back into", move || drop(held));
    assert_poisoned(&m, "called back into");
}

/// The same from the insert hint of a batch release.
#[test]
fn a_backend_calling_back_from_its_insert_hint_panics() {
    let (m, switch) = adversarial(2);
    let batch = fill(&m, &chain(1, 2));
    switch.arm(Trap::ReenterOnPrefetch);
    expect_panic("called back into", move || {
        ImmutableBlock::release_all(batch)
    });
    assert_poisoned(&m, "called back into");
    assert_eq!(m.available_blocks(), 2);
}

/// A frequency tracker that calls back into the manager from `count`.
#[test]
fn a_tracker_calling_back_into_its_manager_panics() {
    struct Curious(OnceLock<Weak<BlockManager<Device>>>);
    impl FrequencyTracker<u128> for Curious {
        fn touch(&self, _: u128) {}
        fn count(&self, _: u128) -> u32 {
            let m = self.0.get().and_then(Weak::upgrade).expect("manager");
            m.match_blocks(&[]).len() as u32
        }
    }
    let tracker = Arc::new(Curious(OnceLock::new()));
    let m = Arc::new(
        with_tracker(Arc::clone(&tracker) as _)
            .block_count(2)
            .with_multi_lru_backend()
            .build()
            .unwrap(),
    );
    tracker.0.set(Arc::downgrade(&m)).unwrap();
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    expect_panic("called back into", move || drop(held));
    assert_poisoned(&m, "called back into");
}

/// Item 6: sizes that used to abort.
#[test]
fn absurd_sizes_fail_cleanly() {
    let m = kvbm::testing::manager(4);
    assert!(m.allocate_blocks(usize::MAX).is_none());
    assert!(m.allocate_blocks(1 << 40).is_none());
    assert!(m.allocate_blocks_with_evictions(usize::MAX).is_none());
    assert!(m.allocate_blocks(5).is_none());
    assert_eq!(m.allocate_blocks(4).map(|b| b.len()), Some(4));
    check(&m);
}

/// Item 6: a block count this machine cannot hold is a builder error.
/// (Not under miri: it would really try.)
#[cfg(not(miri))]
#[test]
fn a_block_count_too_large_for_memory_is_a_builder_error() {
    let err = BlockManager::<Device>::builder()
        .block_count(u32::MAX as usize - 1)
        .block_size(4)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}

/// Item 6: a custom backend built for fewer blocks than the pool panics
/// on a block id it cannot hold; that is one panic, not an abort, and the
/// pool stays consistent.
#[test]
fn a_backend_smaller_than_the_pool_fails_cleanly() {
    let m = BlockManager::<Device>::builder()
        .block_count(4)
        .block_size(4)
        .with_inactive_backend(|_| Box::new(LruBackend::new(1)))
        .build()
        .unwrap();
    let held = fill(&m, &chain(1, 3));
    expect_panic("", move || drop(held));
    check(&m);
    assert!(m.poisoned().is_some());
    assert_eq!(m.available_blocks(), 4);
}

/// Item 7: a weak handle attached to its own registration used to keep
/// the whole store alive forever.
#[test]
fn a_weak_block_attached_to_its_registration_lets_the_store_go() {
    let m = kvbm::testing::manager(2);
    let metrics = Arc::clone(m.metrics());
    let held = fill(&m, &chain(1, 1)).pop().unwrap();
    held.registration_handle()
        .attach_unique(held.downgrade())
        .unwrap();
    drop(held);
    drop(m);
    assert!(!store_alive(&metrics));
}

/// The multi-LRU backend with an honest tracker still works end to end
/// (the wrapper paths are not only exercised by failures).
#[test]
fn honest_backends_are_unaffected() {
    let tracker: Arc<dyn FrequencyTracker<u128>> =
        Arc::new(kvbm::tinylfu::TinyLFUTracker::<u128>::new(64));
    let mut backend = MultiLruBackend::new(4, DEFAULT_FREQUENCY_THRESHOLDS, tracker).unwrap();
    backend.insert(1, chain(1, 1)[0]);
    assert_eq!(backend.pop_victim(), Some(1));
    let (m, switch) = adversarial(3);
    switch.arm(Trap::Honest);
    let hashes = chain(1, 3);
    drop(fill(&m, &hashes));
    assert_eq!(m.match_blocks(&hashes).len(), 3);
    let (blocks, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
    assert_eq!(evicted.len(), 2);
    m.reset_inactive_pool().unwrap_err();
    drop(blocks);
    m.reset_inactive_pool().unwrap();
    assert!(m.poisoned().is_none());
    check(&m);
}
