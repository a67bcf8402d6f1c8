//! Shuttle models of the store's races, run on the real store code (its
//! lock and share counts swapped for shuttle's, see `sync`): each model is
//! explored by shuttle's random scheduler and by its PCT scheduler, which
//! finds bugs that need a few preemptions at the right places.
//!
//! `cargo test -p kvbm --lib --features shuttle -- shuttle_`; the number of
//! schedules per scheduler is `KVBM_SHUTTLE_ITERATIONS` (default 1000).
//!
//! Shuttle explores interleavings with sequentially consistent memory; the
//! weak-memory reorderings of the share count's fast path are loom's job
//! (`shares::loom_tests`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shuttle::thread;

use super::BlockDuplicationPolicy;
use crate::eviction::EvictionPolicy;
use crate::metrics::BlockPoolMetrics;
use crate::testing::{builder, chain, check, fill, manager, staged, store_alive, Device};
use crate::{BlockId, BlockManager, ImmutableBlock, SequenceHash};

/// Schedules per scheduler and model.
fn iterations() -> usize {
    std::env::var("KVBM_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Runs `model` under the random scheduler, then under PCT (depth 3).
fn explore(model: fn()) {
    let n = iterations();
    shuttle::check_random(model, n);
    shuttle::check_pct(model, n, 3);
}

/// The last shares of a block are dropped on two threads (so one drop may
/// take the fast path and the other the lock, in either order) while a
/// third thread matches the same block. The match must find the block
/// (held or cached, never lost in between), the store must be consistent
/// whenever its lock is free, and the block ends up cached exactly when
/// the matched handle goes too.
///
/// Fails if the last drop decides "last" before taking the lock (the
/// revival by the match is then overwritten by caching a held block).
fn last_drop_racing_a_match() {
    let m = Arc::new(manager(2));
    let hash = chain(1, 1);
    let held = fill(&m, &hash).pop().unwrap();
    let clone = held.clone();
    let droppers = [held, clone].map(|block| thread::spawn(move || drop(block)));
    let matcher = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let found = m.match_blocks(&hash);
            assert_eq!(found.len(), 1, "a registered block stays matchable");
            assert!(found[0].use_count() >= 1);
            check(&m);
            found
        })
    };
    for dropper in droppers {
        dropper.join().unwrap();
    }
    let found = matcher.join().unwrap();
    check(&m);
    let gauges = m.metrics().snapshot();
    assert_eq!(
        (gauges.inflight_immutable, gauges.inactive_pool_size),
        (1, 0)
    );
    drop(found);
    check(&m);
    let gauges = m.metrics().snapshot();
    assert_eq!(
        (gauges.inflight_immutable, gauges.inactive_pool_size),
        (0, 1)
    );
}

#[test]
fn shuttle_last_drop_racing_a_match() {
    explore(last_drop_racing_a_match);
}

/// Registers a block staged under `hash` on one thread while another drops
/// the only handle of `hash`'s registered primary; returns what the
/// registration gave (checked on its thread right after) and the
/// primary's id.
fn register_racing_the_last_drop(
    m: &Arc<BlockManager<Device>>,
    hash: SequenceHash,
) -> (ImmutableBlock<Device>, BlockId) {
    let held = fill(m, &[hash]).pop().unwrap();
    let primary = held.block_id();
    let staged = staged(m, hash);
    let dropper = thread::spawn(move || drop(held));
    let registrar = {
        let m = Arc::clone(m);
        thread::spawn(move || {
            let registered = m.register_block(staged);
            check(&m);
            registered
        })
    };
    dropper.join().unwrap();
    (registrar.join().unwrap(), primary)
}

/// Registering a block under a hash whose primary is losing its last share
/// on another thread, with the `Reject` duplication policy: the
/// registration gets the primary (held, or revived from the cache the
/// other thread just put it in), the new block goes back to the free pool,
/// and the primary is cached once the returned handle drops.
fn reject_registration_racing_the_last_drop() {
    let m = Arc::new(
        builder(EvictionPolicy::Lru)
            .block_count(3)
            .block_size(4)
            .duplication_policy(BlockDuplicationPolicy::Reject)
            .build()
            .expect("valid settings"),
    );
    let hash = chain(1, 1)[0];
    let (registered, primary) = register_racing_the_last_drop(&m, hash);
    assert_eq!(registered.block_id(), primary, "the primary is shared");
    assert_eq!(registered.use_count(), 1);
    check(&m);
    drop(registered);
    check(&m);
    let gauges = m.metrics().snapshot();
    assert_eq!((gauges.inactive_pool_size, gauges.reset_pool_size), (1, 2));
}

#[test]
fn shuttle_reject_registration_racing_the_last_drop() {
    explore(reject_registration_racing_the_last_drop);
}

/// Registering an `Allow` duplicate while its primary loses its last share
/// on another thread: the duplicate holds the primary (held still, or
/// revived from the cache the other thread just put it in), and the
/// primary is cached once the duplicate drops. Then the duplicate's drop —
/// which lets the primary go from inside the store — races a match of the
/// primary on another thread: the match finds it, held or cached.
fn duplicate_registration_and_drop_racing_the_primary() {
    let m = Arc::new(manager(3));
    let hash = chain(1, 1)[0];
    let (duplicate, primary) = register_racing_the_last_drop(&m, hash);
    assert_ne!(duplicate.block_id(), primary);
    let gauges = m.metrics().snapshot();
    assert_eq!(
        (gauges.inactive_pool_size, gauges.inflight_immutable),
        (0, 2),
        "the duplicate holds its primary"
    );
    let dropper = thread::spawn(move || drop(duplicate));
    let matcher = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let found = m.match_blocks(&[hash]);
            assert_eq!(found.len(), 1, "the primary stays matchable");
            assert_eq!(found[0].block_id(), primary);
            check(&m);
            found
        })
    };
    dropper.join().unwrap();
    let found = matcher.join().unwrap();
    assert_eq!(found[0].use_count(), 1);
    drop(found);
    check(&m);
    let gauges = m.metrics().snapshot();
    assert_eq!((gauges.inactive_pool_size, gauges.reset_pool_size), (1, 2));
}

#[test]
fn shuttle_duplicate_registration_and_drop_racing_the_primary() {
    explore(duplicate_registration_and_drop_racing_the_primary);
}

/// A weak upgrade races an allocation that evicts the (only) block and
/// registers its slot under another hash. Exactly one of them gets the
/// block, and each sees its own hash.
///
/// Fails if an upgrade trusts the slot without checking its generation
/// and hash: it then shares the reused block under the old hash.
fn weak_upgrade_racing_a_reuse() {
    let m = Arc::new(manager(1));
    let [old, new] = [chain(1, 1)[0], chain(2, 1)[0]];
    let weak = fill(&m, &[old]).pop().unwrap().downgrade();
    let upgrader = thread::spawn(move || weak.upgrade());
    let reuser = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            m.allocate_blocks(1).map(|mut blocks| {
                let block = blocks.pop().unwrap();
                m.register_block(block.stage(new, 4).unwrap())
            })
        })
    };
    let upgraded = upgrader.join().unwrap();
    let reused = reuser.join().unwrap();
    match (&upgraded, &reused) {
        (Some(u), None) => {
            assert_eq!(u.sequence_hash(), old);
            assert_eq!(m.match_blocks(&[old]).len(), 1);
        }
        (None, Some(r)) => {
            assert_eq!(r.sequence_hash(), new);
            assert!(m.match_blocks(&[old]).is_empty(), "old was evicted");
        }
        (None, None) => panic!("the block was lost"),
        (Some(_), Some(_)) => panic!("one block handed out twice"),
    }
    check(&m);
    drop((upgraded, reused));
    check(&m);
}

#[test]
fn shuttle_weak_upgrade_racing_a_reuse() {
    explore(weak_upgrade_racing_a_reuse);
}

/// Drops `guard` if its store is still alive; else records the failure and
/// leaks the guard, so that the model fails by its assertion rather than by
/// the use-after-free a drop into a freed store would be.
fn drop_while_alive<G>(guard: G, metrics: &Arc<BlockPoolMetrics>, outlived: &AtomicBool) {
    if store_alive(metrics) {
        drop(guard);
    } else {
        outlived.store(true, Ordering::SeqCst);
        std::mem::forget(guard);
    }
}

/// The manager is dropped while guards of every kind die on other threads
/// and a weak handle upgrades: the store holds its lease exactly while
/// guards exist (checked by `validate` on a thread that races the others
/// and may be the one to drop the manager), a thread that still holds a
/// guard always finds the store alive, and the store is freed once the
/// last guard is gone.
///
/// Fails if the lease ends while held blocks remain (it ends when the
/// checked-out ones are gone, say), or if an upgrade after the lease ended
/// does not take it again. Such a bug may also crash the model outright,
/// when a thread is inside the store that another thread frees.
fn manager_dropped_while_guards_die() {
    let m = Arc::new(manager(6));
    let metrics = Arc::clone(m.metrics());
    let outlived = Arc::new(AtomicBool::new(false));
    let hashes = chain(1, 2);
    let held = fill(&m, &hashes);
    let matched = m.match_blocks(&hashes);
    let mutable = m.allocate_blocks(1).unwrap();
    let staged = staged(&m, chain(9, 1)[0]);
    let weak = held[0].downgrade();
    let mut threads = Vec::new();
    for blocks in [held, matched] {
        let (metrics, outlived) = (Arc::clone(&metrics), Arc::clone(&outlived));
        threads.push(thread::spawn(move || {
            for block in blocks {
                drop_while_alive(block, &metrics, &outlived);
            }
        }));
    }
    {
        let (metrics, outlived) = (Arc::clone(&metrics), Arc::clone(&outlived));
        threads.push(thread::spawn(move || {
            drop_while_alive(mutable, &metrics, &outlived);
            drop_while_alive(staged, &metrics, &outlived);
        }));
    }
    {
        let (metrics, outlived) = (Arc::clone(&metrics), Arc::clone(&outlived));
        let first = hashes[0];
        threads.push(thread::spawn(move || {
            if let Some(block) = weak.upgrade() {
                assert_eq!(block.sequence_hash(), first);
                thread::yield_now();
                drop_while_alive(block, &metrics, &outlived);
            }
        }));
    }
    threads.push(thread::spawn({
        let m = Arc::clone(&m);
        move || check(&m)
    }));
    drop(m);
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        !outlived.load(Ordering::SeqCst),
        "a guard outlived its store"
    );
    assert!(!store_alive(&metrics), "the store outlived its last guard");
}

#[test]
fn shuttle_manager_dropped_while_guards_die() {
    explore(manager_dropped_while_guards_die);
}
