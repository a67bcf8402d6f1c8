use std::any::TypeId;

use super::*;

#[derive(Clone)]
struct G1;
#[derive(Clone)]
struct G2;

fn h(i: u64) -> SequenceHash {
    SequenceHash::root(i)
}

/// Stands in for the stores of one tier: how many of them hold each hash.
pub(super) struct TestSource {
    pub(super) tier: TierId,
    held: Mutex<std::collections::HashMap<SequenceHash, u32>>,
}

struct TestView<'a>(&'a std::collections::HashMap<SequenceHash, u32>);

impl PresenceView for TestView<'_> {
    fn count(&self, hash: SequenceHash) -> u32 {
        self.0.get(&hash).copied().unwrap_or(0)
    }

    fn for_each_hash(&self, f: &mut dyn FnMut(SequenceHash)) {
        self.0.keys().for_each(|&h| f(h));
    }
}

impl PresenceSource for TestSource {
    fn with_locked(&self, f: &mut dyn FnMut(&dyn PresenceView)) {
        f(&TestView(&self.held.lock()));
    }
}

impl TestSource {
    pub(super) fn new(tier: TierId) -> Self {
        Self {
            tier,
            held: Mutex::default(),
        }
    }

    /// Changes the count of `hash` by `delta` (not below zero) and runs
    /// `report` with the source still locked, as a store reports its
    /// changes under its own lock.
    pub(super) fn change(&self, hash: SequenceHash, delta: i32, report: impl FnOnce()) {
        let mut held = self.held.lock();
        let n = held.entry(hash).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            held.remove(&hash);
        }
        report();
    }
}

#[test]
fn a_handle_keeps_its_registration_alive() {
    let r = BlockRegistry::new();
    assert!(!r.is_registered(h(1)));
    let handle = r.register_sequence_hash(h(1));
    assert!(r.is_registered(h(1)));
    assert_eq!(r.registered_count(), 1);
    let again = r.register_sequence_hash(h(1));
    assert!(
        Arc::ptr_eq(&handle.inner, &again.inner),
        "one handle per hash"
    );
    assert_eq!(r.match_sequence_hash(h(1), true).unwrap().seq_hash(), h(1));
    assert!(r.match_sequence_hash(h(2), true).is_none());
    drop((handle, again));
    assert!(!r.is_registered(h(1)));
    assert_eq!(r.registered_count(), 0);
}

#[test]
fn presence_is_counted_per_tier() {
    let r = BlockRegistry::new();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(r.tier_for(TypeId::of::<G1>()).unwrap(), t1, "stable");
    r.add_presence(h(5), t1);
    r.add_presence(h(5), t2);
    let handle = r.match_sequence_hash(h(5), false).unwrap();
    assert!(handle.has_block::<G1>() && handle.has_block::<G2>());
    assert!(handle.has_any_block(&[TypeId::of::<u8>(), TypeId::of::<G2>()]));
    assert!(!handle.has_any_block(&[TypeId::of::<u8>()]));
    assert!(r.remove_presence(h(5), t1).is_none(), "G2 still holds it");
    assert!(!handle.has_block::<G1>());
    drop(handle);
    assert!(r.is_registered(h(5)));
    assert!(
        r.remove_presence(h(5), t2).is_some(),
        "the kept handle comes back"
    );
    assert!(!r.is_registered(h(5)));
}

#[test]
fn tiers_are_bounded() {
    let r = BlockRegistry::new();
    macro_rules! tiers { ($($t:ty),*) => { $( r.tier_for(TypeId::of::<$t>()).unwrap(); )* } }
    tiers!(u8, u16, u32, u64, i8, i16, i32, i64);
    assert_eq!(r.tier_for(TypeId::of::<u128>()), Err(TooManyTiers));
}

#[test]
fn handles_from_blocks_survive_while_blocks_hold_the_hash() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    r.add_presence(h(9), t);
    let first = r.register_sequence_hash(h(9));
    let weak = Arc::downgrade(&first.inner);
    drop(first);
    assert!(
        weak.upgrade().is_some(),
        "the registry keeps it for the block"
    );
    let kept = r.remove_presence(h(9), t).expect("kept handle");
    // Only the registry's own copy was left, so the registration ends now;
    // the copy is handed back to be dropped outside the caller's locks.
    assert!(!r.is_registered(h(9)));
    drop(kept);
    assert!(weak.upgrade().is_none());
    assert!(!r.is_registered(h(9)));
}

#[test]
fn removing_an_unknown_hash_is_harmless() {
    let r = BlockRegistry::new();
    assert!(r.remove_presence(h(1), 0).is_none());
    assert_eq!(r.registered_count(), 0);
}

// ---- attachments -------------------------------------------------------

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flag() -> (Arc<AtomicBool>, DropFlag) {
    let f = Arc::new(AtomicBool::new(false));
    (f.clone(), DropFlag(f))
}

fn dropped(f: &AtomicBool) -> bool {
    f.load(Ordering::SeqCst)
}

#[test]
fn a_second_unique_value_is_refused_and_the_first_kept() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    assert_eq!(handle.attach_unique(1_u32), Ok(()));
    assert_eq!(
        handle.attach_unique(2_u32),
        Err(AttachmentError::TypeAlreadyRegisteredAsUnique(
            TypeId::of::<u32>()
        ))
    );
    assert_eq!(handle.get::<u32>().with_unique(|v| *v), Some(1));

    // The refused value is dropped at once, not stored.
    let (gone, value) = flag();
    let (kept, first) = flag();
    handle.attach_unique(first).unwrap();
    assert!(handle.attach_unique(value).is_err());
    assert!(dropped(&gone));
    assert!(!dropped(&kept));
}

#[test]
fn a_type_holds_values_in_one_mode_only() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    handle.attach_unique(String::from("one")).unwrap();
    assert_eq!(
        handle.attach(String::from("two")),
        Err(AttachmentError::TypeAlreadyRegisteredAsUnique(
            TypeId::of::<String>()
        ))
    );
    handle.attach(1_i64).unwrap();
    handle.attach(2_i64).unwrap();
    assert_eq!(
        handle.attach_unique(3_i64),
        Err(AttachmentError::TypeAlreadyRegisteredAsMultiple(
            TypeId::of::<i64>()
        ))
    );
    // Failures change nothing.
    assert_eq!(handle.get::<String>().with_multiple(|v| v.len()), 0);
    assert_eq!(handle.get::<i64>().with_unique(|v| *v), None);
    assert_eq!(handle.get::<i64>().with_multiple(|v| v.len()), 2);
}

#[test]
fn attachment_errors_describe_themselves() {
    let multiple = AttachmentError::TypeAlreadyRegisteredAsMultiple(TypeId::of::<u8>());
    let unique = AttachmentError::TypeAlreadyRegisteredAsUnique(TypeId::of::<u8>());
    assert!(multiple.to_string().contains("multiple"));
    assert!(unique.to_string().contains("unique"));
    let as_error: &dyn std::error::Error = &unique;
    assert!(as_error.source().is_none());
}

#[test]
fn accessors_see_each_mode() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    handle.attach_unique(10_u32).unwrap();
    handle.attach(1_u64).unwrap();
    handle.attach(2_u64).unwrap();

    let unique = handle.get::<u32>();
    assert_eq!(unique.with_unique(|v| *v), Some(10));
    assert_eq!(unique.with_multiple(|v| v.len()), 0);
    assert_eq!(unique.with_all(|u, m| (u.copied(), m.len())), (Some(10), 0));

    let many = handle.get::<u64>();
    assert_eq!(many.with_unique(|v| *v), None);
    assert_eq!(many.with_unique_mut(|v| *v), None);
    assert_eq!(
        many.with_multiple(|v| v.iter().map(|x| **x).sum::<u64>()),
        3
    );
    assert_eq!(
        many.with_all(|u, m| (u.is_some(), m.iter().map(|x| **x).collect::<Vec<_>>())),
        (false, vec![1, 2])
    );

    let absent = handle.get::<i8>();
    assert_eq!(absent.with_unique(|v| *v), None);
    assert_eq!(absent.with_multiple(|v| v.len()), 0);
    assert_eq!(absent.with_all(|u, m| (u.is_none(), m.len())), (true, 0));
    assert_eq!(
        absent.with_all_mut(|u, m| (u.is_none(), m.len())),
        (true, 0)
    );
    assert_eq!(absent.with_multiple_mut(|m| m.len()), 0);
    assert!(format!("{absent:?}").contains("i8"));
}

#[test]
fn mutable_accessors_update_values_in_place() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    handle.attach_unique(vec![1_u8]).unwrap();
    handle.attach(10_u32).unwrap();
    handle.attach(20_u32).unwrap();

    assert_eq!(
        handle.get::<Vec<u8>>().with_unique_mut(|v| {
            v.push(2);
            v.len()
        }),
        Some(2)
    );
    handle
        .get::<u32>()
        .with_multiple_mut(|m| m.iter_mut().for_each(|x| **x += 1));
    handle.get::<Vec<u8>>().with_all_mut(|u, m| {
        assert!(m.is_empty());
        u.expect("unique value").push(3);
    });
    handle.get::<u32>().with_all_mut(|u, m| {
        assert!(u.is_none());
        *m[1] *= 2;
    });

    assert_eq!(
        handle.get::<Vec<u8>>().with_unique(|v| v.clone()),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        handle
            .get::<u32>()
            .with_multiple(|m| m.iter().map(|x| **x).collect::<Vec<_>>()),
        vec![11, 42]
    );
}

#[test]
fn every_handle_of_a_hash_sees_the_same_attachments() {
    let r = BlockRegistry::new();
    let a = r.register_sequence_hash(h(1));
    let b = r.register_sequence_hash(h(1));
    let c = r.match_sequence_hash(h(1), false).unwrap();
    a.attach("from a").unwrap();
    b.clone().attach("from b").unwrap();
    assert_eq!(c.get::<&str>().with_multiple(|v| v.len()), 2);
    let other = r.register_sequence_hash(h(2));
    assert_eq!(other.get::<&str>().with_multiple(|v| v.len()), 0);
}

#[test]
fn reading_attachments_allocates_nothing() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    assert_eq!(handle.get::<u8>().with_unique(|v| *v), None);
    handle.get::<u8>().with_all(|_, _| ());
    handle.touch();
    assert!(handle.inner.extras.attachments().is_none());
    handle.attach(1_u8).unwrap();
    assert!(handle.inner.extras.attachments().is_some());
}

#[test]
fn attachments_live_while_a_block_holds_the_hash() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    let (gone, value) = flag();
    r.add_presence(h(1), t);
    r.register_sequence_hash(h(1)).attach_unique(value).unwrap();
    assert!(
        !dropped(&gone),
        "the registry keeps the handle for the block"
    );
    let again = r.match_sequence_hash(h(1), false).unwrap();
    assert_eq!(again.get::<DropFlag>().with_unique(|_| ()), Some(()));
    drop(again);

    let kept = r.remove_presence(h(1), t).expect("the kept handle");
    assert!(!r.is_registered(h(1)));
    assert!(!dropped(&gone), "dropped by the caller, outside its locks");
    drop(kept);
    assert!(dropped(&gone));

    let fresh = r.register_sequence_hash(h(1));
    assert_eq!(fresh.get::<DropFlag>().with_unique(|_| ()), None);
}

#[test]
fn attachments_live_while_a_caller_holds_a_handle() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    let (gone, value) = flag();
    r.add_presence(h(1), t);
    let handle = r.register_sequence_hash(h(1));
    handle.attach(value).unwrap();
    drop(r.remove_presence(h(1), t));
    assert!(!dropped(&gone));
    assert!(r.is_registered(h(1)));
    assert!(!handle.has_block::<G1>());
    drop(handle);
    assert!(dropped(&gone));
    assert!(!r.is_registered(h(1)));

    // Without any block, the caller's handle is all that keeps them.
    let (gone, value) = flag();
    r.register_sequence_hash(h(2)).attach(value).unwrap();
    assert!(dropped(&gone));
    assert!(!r.is_registered(h(2)));
}

#[test]
fn attachments_live_while_any_tier_holds_the_hash() {
    let r = BlockRegistry::new();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    let (gone, value) = flag();
    r.add_presence(h(1), t1);
    r.register_sequence_hash(h(1)).attach(value).unwrap();
    r.add_presence(h(1), t2);
    assert!(r.remove_presence(h(1), t1).is_none());
    assert!(!dropped(&gone));
    r.add_presence(h(1), t1);
    r.add_presence(h(1), t1);
    assert!(r.remove_presence(h(1), t2).is_none());
    assert!(r.remove_presence(h(1), t1).is_none());
    assert!(!dropped(&gone));
    drop(r.remove_presence(h(1), t1));
    assert!(dropped(&gone));
    assert_eq!(r.registered_count(), 0);
}

/// Uses the registry from its `Drop`.
struct Reentrant {
    registry: BlockRegistry,
    seq_hash: SequenceHash,
    seen: Arc<AtomicUsize>,
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        assert!(!self.registry.is_registered(self.seq_hash));
        let handle = self.registry.register_sequence_hash(h(99));
        drop(handle);
        self.seen
            .store(self.registry.registered_count() + 1, Ordering::SeqCst);
    }
}

#[test]
fn an_attachment_may_use_the_registry_when_dropped() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    r.add_presence(h(1), t);
    r.register_sequence_hash(h(1))
        .attach_unique(Reentrant {
            registry: r.clone(),
            seq_hash: h(1),
            seen: seen.clone(),
        })
        .unwrap();
    drop(r.remove_presence(h(1), t));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "ran, and saw an empty registry"
    );
}

#[test]
fn closures_may_use_the_registry_and_other_handles() {
    let r = BlockRegistry::new();
    let a = r.register_sequence_hash(h(1));
    a.attach_unique(5_u32).unwrap();
    let n = a.get::<u32>().with_unique(|v| {
        let b = r.register_sequence_hash(h(2));
        b.attach(*v).unwrap();
        assert!(r.is_registered(h(1)));
        r.registered_count()
    });
    assert_eq!(n, Some(2));
}

#[test]
fn concurrent_attaches_all_land() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    std::thread::scope(|s| {
        for t in 0..4_u32 {
            let handle = handle.clone();
            s.spawn(move || {
                for i in 0..100 {
                    handle.attach(t * 1000 + i).unwrap();
                }
            });
        }
    });
    assert_eq!(handle.get::<u32>().with_multiple(|v| v.len()), 400);
}

// ---- touch -------------------------------------------------------------

type Log = Arc<Mutex<Vec<SequenceHash>>>;
type Callback = Arc<dyn Fn(SequenceHash) + Send + Sync>;

fn recorder() -> (Log, Callback) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    (log, Arc::new(move |hash| sink.lock().push(hash)))
}

#[test]
fn touch_runs_each_callback_once_with_the_hash() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(7));
    handle.touch(); // no callbacks yet: nothing to run
    let (log, callback) = recorder();
    handle.on_touch(callback);
    handle.touch();
    assert_eq!(*log.lock(), vec![h(7)]);
    handle.touch();
    assert_eq!(*log.lock(), vec![h(7), h(7)]);
    // Other hashes have their own callbacks.
    r.register_sequence_hash(h(8)).touch();
    assert_eq!(log.lock().len(), 2);
}

#[test]
fn callbacks_run_in_registration_order_from_any_handle() {
    let r = BlockRegistry::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let a = r.register_sequence_hash(h(1));
    for i in 0..3 {
        let order = order.clone();
        a.on_touch(Arc::new(move |_| order.lock().push(i)));
    }
    let b = r.match_sequence_hash(h(1), true).unwrap();
    b.touch();
    assert_eq!(*order.lock(), vec![0, 1, 2]);
    // Lookups, even touching ones, do not run callbacks.
    let _ = r.match_sequence_hash(h(1), true);
    assert_eq!(order.lock().len(), 3);
}

#[test]
fn callbacks_run_without_locks_held() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    r.add_presence(h(1), t);
    let handle = r.register_sequence_hash(h(1));
    handle.attach_unique(3_u32).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (registry, seen, me) = (r.clone(), calls.clone(), handle.clone());
    handle.on_touch(Arc::new(move |hash| {
        assert!(registry.is_registered(hash));
        let again = registry.match_sequence_hash(hash, true).unwrap();
        assert!(again.has_block::<G1>());
        assert_eq!(registry.check_presence::<G1>(&[hash]), vec![(hash, true)]);
        assert_eq!(me.get::<u32>().with_unique(|v| *v), Some(3));
        me.attach(hash).unwrap();
        // Registering more callbacks while touching is allowed too.
        me.on_touch(Arc::new(|_| ()));
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    handle.touch();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(handle.get::<SequenceHash>().with_multiple(|v| v.len()), 1);
    // `me` inside the callback is a cycle (handle → callback → handle);
    // the test does not care that it leaks.
    drop(r.remove_presence(h(1), t));
}

#[test]
fn callbacks_run_after_the_registry_is_gone() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    let (log, callback) = recorder();
    handle.on_touch(callback);
    drop(r);
    handle.touch();
    assert_eq!(*log.lock(), vec![h(1)]);
    assert!(!handle.has_block::<G1>());
}

#[test]
fn concurrent_touches_are_each_seen_once() {
    let r = BlockRegistry::new();
    let handle = r.register_sequence_hash(h(1));
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    handle.on_touch(Arc::new(move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    }));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let handle = handle.clone();
            s.spawn(move || (0..250).for_each(|_| handle.touch()));
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), 1000);
}

// ---- presence ----------------------------------------------------------

#[test]
fn presence_is_checked_per_tier_in_batches() {
    let r = BlockRegistry::new();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    r.add_presence(h(1), t1);
    r.add_presence(h(2), t2);
    r.add_presence(h(3), t1);
    r.add_presence(h(3), t2);
    let _only_a_handle = r.register_sequence_hash(h(4));
    let all = [h(1), h(2), h(3), h(4), h(5), h(1)];

    let g1 = r.check_presence::<G1>(&all);
    let g2 = r.check_presence::<G2>(&all);
    let flags = |v: &[(SequenceHash, bool)]| v.iter().map(|p| p.1).collect::<Vec<_>>();
    assert!(g1.iter().zip(&all).all(|(p, h)| p.0 == *h), "input order");
    assert_eq!(flags(&g1), [true, false, true, false, false, true]);
    assert_eq!(flags(&g2), [false, true, true, false, false, false]);

    let both = [TypeId::of::<G1>(), TypeId::of::<G2>()];
    let any = r.check_presence_any(&all, &both);
    assert_eq!(flags(&any), [true, true, true, false, false, true]);
    let with_unknown = r.check_presence_any(&all, &[TypeId::of::<u8>(), TypeId::of::<G2>()]);
    assert_eq!(flags(&with_unknown), flags(&g2));
    assert_eq!(
        flags(&r.check_presence_any(&all, &[])),
        [false; 6],
        "no tiers"
    );
    assert_eq!(flags(&r.check_presence::<u8>(&all)), [false; 6]);
    assert!(r.check_presence::<G1>(&[]).is_empty());

    assert!(r.remove_presence(h(3), t1).is_none());
    assert_eq!(r.check_presence::<G1>(&[h(3)]), vec![(h(3), false)]);
    assert_eq!(r.check_presence::<G2>(&[h(3)]), vec![(h(3), true)]);
    assert_eq!(r.registered_count(), 4, "checks create no entries");
}

#[test]
fn handles_report_presence_across_tiers() {
    let r = BlockRegistry::new();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    let handle = r.register_sequence_hash(h(1));
    let both = [TypeId::of::<G1>(), TypeId::of::<G2>()];
    assert!(!handle.has_any_block(&both));
    assert!(!handle.has_any_block(&[]));
    r.add_presence(h(1), t2);
    assert!(!handle.has_block::<G1>() && handle.has_block::<G2>());
    assert!(handle.has_any_block(&both));
    r.add_presence(h(1), t1);
    assert!(r.remove_presence(h(1), t2).is_none());
    assert!(handle.has_block::<G1>() && !handle.has_block::<G2>());
    assert!(handle.has_any_block(&[TypeId::of::<G1>()]));
    assert!(!handle.has_any_block(&[TypeId::of::<G2>(), TypeId::of::<u8>()]));
    // The registry's own copy comes back; the caller's keeps the entry.
    assert!(r.remove_presence(h(1), t1).is_some());
    assert!(r.is_registered(h(1)));
    assert!(!handle.has_any_block(&both));
}

#[test]
fn counts_past_a_spill_and_come_back_exactly() {
    // Hundreds of managers of one tier holding one hash: the per-tier count
    // outgrows its bits and must still reach zero exactly.
    let r = BlockRegistry::new();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    // Counts are tracked for hashes with a handle.
    let handle = r.register_sequence_hash(h(7));
    r.add_presence(h(7), t2);
    for _ in 0..600 {
        r.add_presence(h(7), t1);
    }
    {
        let tables = r.inner.tables.lock();
        assert_eq!(tables.count(h(7), t1), 600);
        assert_eq!(tables.count(h(7), t2), 1);
        assert_eq!(tables.spilled_len(), 1);
    }
    assert!(r.remove_presence(h(7), t2).is_none());
    for left in (0..600).rev() {
        let kept = r.remove_presence(h(7), t1);
        assert_eq!(kept.is_some(), left == 0, "the kept handle comes back last");
        assert_eq!(r.inner.tables.lock().count(h(7), t1), left);
        assert_eq!(r.check_presence::<G1>(&[h(7)])[0].1, left > 0);
    }
    assert_eq!(r.inner.tables.lock().spilled_len(), 0);
    drop(handle);
    assert!(!r.is_registered(h(7)));
    assert_eq!(r.registered_count(), 0);
}

#[test]
fn an_announced_bit_follows_its_hash_between_blocks_and_handles() {
    use crate::events::{EventEmissionPolicy, EventsManager, KvCacheEvent};
    use std::sync::atomic::AtomicU32;

    /// Announces every other hash it is asked about, so a bit that were
    /// asked for again, or lost on the way, would show in the stream.
    struct EveryOther(AtomicU32);
    impl EventEmissionPolicy for EveryOther {
        fn should_emit(&self, _: SequenceHash) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) % 2 == 0
        }
    }

    let events = Arc::new(
        EventsManager::builder()
            .policy(Arc::new(EveryOther(AtomicU32::new(0))))
            .build(),
    );
    let mut stream = events.subscribe();
    let r = BlockRegistry::builder().event_manager(events).build();
    let t1 = r.tier_for(TypeId::of::<G1>()).unwrap();
    let t2 = r.tier_for(TypeId::of::<G2>()).unwrap();
    let announced = |r: &BlockRegistry| {
        let mut v = r.announced_hashes();
        v.sort_by_key(|h| h.as_u128());
        v
    };

    // Registered by a handle alone (announced), then held by blocks of two
    // tiers, then by the handle alone again: one Create, one Remove.
    let handle = r.register_sequence_hash(h(1));
    assert_eq!(announced(&r), [h(1)]);
    r.add_presence(h(1), t1);
    r.add_presence(h(1), t2);
    r.validate_presence().unwrap();
    assert_eq!(announced(&r), [h(1)]);
    assert!(r.remove_presence(h(1), t1).is_none());
    drop(r.remove_presence(h(1), t2));
    r.validate_presence().unwrap();
    assert_eq!(announced(&r), [h(1)]);
    assert_eq!(stream.try_recv(), Some(KvCacheEvent::Create(h(1))));
    assert_eq!(stream.try_recv(), None);
    drop(handle);
    assert_eq!(stream.try_recv(), Some(KvCacheEvent::Remove(h(1))));
    assert!(announced(&r).is_empty());

    // Entering with a block, not announced: silent on the way out too.
    r.add_presence(h(2), t1);
    assert!(announced(&r).is_empty());
    drop(r.remove_presence(h(2), t1));
    assert!(!r.is_registered(h(2)));

    // Entering with a block (announced), its count spilled past the
    // per-tier bits, outlived by a handle.
    for _ in 0..20 {
        r.add_presence(h(3), t2);
    }
    let handle = r.register_sequence_hash(h(3));
    assert_eq!(r.inner.tables.lock().spilled_len(), 1);
    r.validate_presence().unwrap();
    for _ in 0..20 {
        drop(r.remove_presence(h(3), t2));
    }
    assert_eq!(r.inner.tables.lock().spilled_len(), 0);
    r.validate_presence().unwrap();
    assert_eq!(announced(&r), [h(3)]);
    assert_eq!(stream.try_recv(), Some(KvCacheEvent::Create(h(3))));
    drop(handle);
    assert_eq!(stream.try_recv(), Some(KvCacheEvent::Remove(h(3))));
    assert_eq!(stream.try_recv(), None);
    assert!(announced(&r).is_empty());
    assert_eq!(r.registered_count(), 0);
}

#[test]
fn registered_count_counts_block_and_handle_hashes_once() {
    let r = BlockRegistry::new();
    let t = r.tier_for(TypeId::of::<G1>()).unwrap();
    r.add_presence(h(1), t);
    r.add_presence(h(2), t);
    let both = r.register_sequence_hash(h(2));
    let handle_only = r.register_sequence_hash(h(3));
    assert_eq!(r.registered_count(), 3);
    // The registry's own reference comes back; the caller's keeps h(2).
    assert!(r.remove_presence(h(2), t).is_some());
    assert!(r.is_registered(h(2)));
    assert_eq!(r.registered_count(), 3);
    drop((both, handle_only));
    assert_eq!(r.registered_count(), 1);
    assert!(r.is_registered(h(1)) && !r.is_registered(h(2)) && !r.is_registered(h(3)));
}

// ---- presence answered by the stores -------------------------------------

mod with_stores {
    use super::*;
    use crate::manager::BlockManager;

    fn manager<T: crate::blocks::BlockMetadata>(r: &BlockRegistry, n: usize) -> BlockManager<T> {
        BlockManager::<T>::builder()
            .block_count(n)
            .block_size(4)
            .registry(r.clone())
            .build()
            .unwrap()
    }

    /// Registers `hashes` in `m` and drops the blocks: they end up cached.
    fn cache<T: crate::blocks::BlockMetadata>(m: &BlockManager<T>, hashes: &[SequenceHash]) {
        let blocks = m.allocate_blocks(hashes.len()).unwrap();
        let staged = blocks
            .into_iter()
            .zip(hashes)
            .map(|(b, &h)| b.stage(h, 4).unwrap())
            .collect();
        drop(m.register_blocks(staged));
    }

    fn tracked(r: &BlockRegistry) -> usize {
        r.inner.tables.lock().tracked_len()
    }

    #[test]
    fn cached_blocks_cost_the_registry_nothing_and_are_still_found() {
        let r = BlockRegistry::new();
        let m1 = manager::<G1>(&r, 8);
        let m2 = manager::<G2>(&r, 8);
        cache(&m1, &[h(1), h(2), h(3)]);
        cache(&m2, &[h(3), h(4)]);
        assert_eq!(tracked(&r), 0, "no handle, no events: nothing counted");
        let all = [h(1), h(2), h(3), h(4), h(5)];
        let flags = |v: Vec<(SequenceHash, bool)>| v.into_iter().map(|p| p.1).collect::<Vec<_>>();
        assert_eq!(
            flags(r.check_presence::<G1>(&all)),
            [true, true, true, false, false]
        );
        assert_eq!(
            flags(r.check_presence::<G2>(&all)),
            [false, false, true, true, false]
        );
        assert!(r.is_registered(h(4)) && !r.is_registered(h(5)));
        assert_eq!(r.registered_count(), 4);
        let mut hashes = r.registered_hashes();
        hashes.sort_by_key(|h| h.as_u128());
        let mut expected = vec![h(1), h(2), h(3), h(4)];
        expected.sort_by_key(|h| h.as_u128());
        assert_eq!(hashes, expected);
        m1.validate().unwrap();
        m2.validate().unwrap();
    }

    #[test]
    fn a_handle_taken_after_caching_tracks_its_hash_across_tiers() {
        let r = BlockRegistry::new();
        let m1 = manager::<G1>(&r, 2);
        let m2 = manager::<G2>(&r, 2);
        cache(&m1, &[h(1)]);
        cache(&m2, &[h(1)]);
        let (f, flag) = flag();
        {
            let handle = r
                .match_sequence_hash(h(1), false)
                .expect("cached blocks register");
            assert!(handle.has_block::<G1>() && handle.has_block::<G2>());
            handle.attach_unique(flag).unwrap();
        }
        assert_eq!(tracked(&r), 1, "counted for its handle");
        m1.validate().unwrap();
        // Evicting the G1 copy: the G2 block keeps the attachment alive.
        cache(&m1, &[h(8), h(9)]);
        assert!(!dropped(&f));
        let handle = r.match_sequence_hash(h(1), false).unwrap();
        assert!(!handle.has_block::<G1>() && handle.has_block::<G2>());
        drop(handle);
        m2.validate().unwrap();
        // The last block goes: the registration and its attachment with it.
        cache(&m2, &[h(8), h(9)]);
        assert!(dropped(&f));
        assert!(!r.is_registered(h(1)));
        assert_eq!(tracked(&r), 0);
        m1.validate().unwrap();
    }

    #[test]
    fn a_handle_of_an_unregistered_hash_is_counted_once_blocks_arrive() {
        let r = BlockRegistry::new();
        let m = manager::<G1>(&r, 2);
        let handle = r.register_sequence_hash(h(3));
        assert!(!handle.has_block::<G1>());
        cache(&m, &[h(3)]);
        assert!(handle.has_block::<G1>());
        m.validate().unwrap();
        drop(handle);
        // The store's cached block keeps the registration (and so the entry).
        assert!(r.is_registered(h(3)));
        assert_eq!(tracked(&r), 1);
        m.validate().unwrap();
        cache(&m, &[h(4), h(5)]);
        assert!(!r.is_registered(h(3)));
        assert_eq!(tracked(&r), 0);
        m.validate().unwrap();
    }

    #[test]
    fn with_events_every_block_held_hash_is_counted() {
        let events = Arc::new(crate::events::EventsManager::builder().try_build().unwrap());
        let r = BlockRegistry::builder().event_manager(events).build();
        let m = manager::<G1>(&r, 4);
        cache(&m, &[h(1), h(2)]);
        assert_eq!(tracked(&r), 2);
        m.validate().unwrap();
    }

    #[test]
    fn validate_finds_a_wrong_count() {
        let r = BlockRegistry::new();
        let m = manager::<G1>(&r, 2);
        cache(&m, &[h(1)]);
        let _handle = r.register_sequence_hash(h(1));
        m.validate().unwrap();
        r.inner
            .tables
            .lock()
            .set_counts(h(1), &[2, 0, 0, 0, 0, 0, 0, 0]);
        let err = m.validate().unwrap_err();
        assert!(err.to_string().contains("the stores hold"), "{err}");
    }
}

mod concurrent_handles {
    use super::*;
    use crate::manager::BlockManager;

    /// Two tiers churn their caches while other threads take and drop
    /// handles of the same hashes and check presence: handle entries are
    /// created with every store locked while stores report under their own
    /// locks, so the counts must come out exact and nothing deadlocks.
    #[test]
    fn handles_taken_while_stores_churn_keep_exact_counts() {
        let r = BlockRegistry::new();
        let m1 = BlockManager::<G1>::builder()
            .block_count(16)
            .block_size(4)
            .registry(r.clone())
            .build()
            .unwrap();
        let m2 = BlockManager::<G2>::builder()
            .block_count(16)
            .block_size(4)
            .registry(r.clone())
            .build()
            .unwrap();
        fn churn<T: crate::blocks::BlockMetadata>(m: &BlockManager<T>, seed: u64) {
            for round in 0..1500u64 {
                let hashes: Vec<SequenceHash> =
                    (0..4).map(|i| h((round * 7 + i * 3 + seed) % 40)).collect();
                let matched = m.match_blocks(&hashes);
                let fresh = m.allocate_blocks(hashes.len() - matched.len()).unwrap();
                let staged = fresh
                    .into_iter()
                    .zip(&hashes[matched.len()..])
                    .map(|(b, &hash)| b.stage(hash, 4).unwrap())
                    .collect();
                drop(m.register_blocks(staged));
                drop(matched);
            }
        }
        std::thread::scope(|s| {
            s.spawn(|| churn(&m1, 0));
            s.spawn(|| churn(&m2, 5));
            for t in 0..2u64 {
                let r = &r;
                s.spawn(move || {
                    for i in 0..3000u64 {
                        let hash = h((i * 11 + t) % 40);
                        let handle = if i % 3 == 0 {
                            Some(r.register_sequence_hash(hash))
                        } else {
                            r.match_sequence_hash(hash, false)
                        };
                        if let Some(handle) = handle {
                            let _ = handle.has_any_block(&[TypeId::of::<G1>(), TypeId::of::<G2>()]);
                        }
                        let _ = r.check_presence::<G1>(&[hash]);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..50 {
                    m1.validate().unwrap();
                }
            });
        });
        m1.validate().unwrap();
        m2.validate().unwrap();
        // The callers' handles are gone: the registered hashes are the
        // stores' (the registry keeps handles only for hashes blocks hold).
        let held: std::collections::HashSet<SequenceHash> =
            r.registered_hashes().into_iter().collect();
        for i in 0..40 {
            let in_stores =
                r.check_presence_any(&[h(i)], &[TypeId::of::<G1>(), TypeId::of::<G2>()])[0].1;
            assert_eq!(held.contains(&h(i)), in_stores, "hash {i}");
        }
    }
}

/// The tables against a model of what they stand for: blocks and handles
/// per hash, with an events manager whose policy answers differently on
/// each call (so an announced bit asked for twice, or lost while it moves
/// between a hash's counts and the handle-only set, shows in the stream).
mod announced_model {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::AtomicU32;

    use proptest::prelude::*;

    use super::*;
    use crate::events::{EventEmissionPolicy, EventStream, EventsManager, KvCacheEvent};

    struct EveryOther(AtomicU32);
    impl EventEmissionPolicy for EveryOther {
        fn should_emit(&self, _: SequenceHash) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) % 2 == 0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A block of tier 0 or 1 holds hash `h`, `n` times over.
        Add {
            h: u64,
            tier: usize,
            n: u32,
        },
        /// `n` blocks of the tier stop holding it (at most as many as do).
        Remove {
            h: u64,
            tier: usize,
            n: u32,
        },
        Take {
            h: u64,
        },
        Drop {
            h: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        // Up to 9 blocks per step, so tier counts cross the spill at 7.
        let h = 0u64..3;
        prop_oneof![
            (h.clone(), 0usize..2, 1u32..10).prop_map(|(h, tier, n)| Op::Add { h, tier, n }),
            (h.clone(), 0usize..2, 1u32..10).prop_map(|(h, tier, n)| Op::Remove { h, tier, n }),
            h.clone().prop_map(|h| Op::Take { h }),
            h.prop_map(|h| Op::Drop { h }),
        ]
    }

    #[derive(Default)]
    struct Model {
        counts: BTreeMap<(u64, usize), u32>,
        handles: BTreeMap<u64, Vec<BlockRegistrationHandle>>,
        announced: BTreeSet<u64>,
        policy_calls: u32,
        expected: Vec<KvCacheEvent>,
    }

    impl Model {
        fn registered(&self, h: u64) -> bool {
            (0..2).any(|t| self.counts.get(&(h, t)).copied().unwrap_or(0) > 0)
                || self.handles.get(&h).is_some_and(|v| !v.is_empty())
        }

        /// Records the events of `h`'s registration changing from `was`.
        fn changed(&mut self, h: u64, was: bool) {
            match (was, self.registered(h)) {
                (false, true) => {
                    let announced = self.policy_calls % 2 == 0;
                    self.policy_calls += 1;
                    if announced {
                        self.announced.insert(h);
                        self.expected.push(KvCacheEvent::Create(super::h(h)));
                    }
                }
                (true, false) if self.announced.remove(&h) => {
                    self.expected.push(KvCacheEvent::Remove(super::h(h)));
                }
                _ => {}
            }
        }
    }

    fn run(ops: &[Op]) {
        let events = Arc::new(
            EventsManager::builder()
                .policy(Arc::new(EveryOther(AtomicU32::new(0))))
                .build(),
        );
        let mut stream: EventStream = events.subscribe();
        let r = BlockRegistry::builder().event_manager(events).build();
        let tiers = [
            r.tier_for(TypeId::of::<G1>()).unwrap(),
            r.tier_for(TypeId::of::<G2>()).unwrap(),
        ];
        let mut m = Model::default();
        for op in ops {
            match *op {
                Op::Add { h: i, tier, n } => {
                    for _ in 0..n {
                        let was = m.registered(i);
                        r.add_presence(h(i), tiers[tier]);
                        *m.counts.entry((i, tier)).or_default() += 1;
                        m.changed(i, was);
                    }
                }
                Op::Remove { h: i, tier, n } => {
                    let held = m.counts.get(&(i, tier)).copied().unwrap_or(0);
                    for _ in 0..n.min(held) {
                        let was = m.registered(i);
                        drop(r.remove_presence(h(i), tiers[tier]));
                        *m.counts.entry((i, tier)).or_default() -= 1;
                        m.changed(i, was);
                    }
                }
                Op::Take { h: i } => {
                    let was = m.registered(i);
                    let handle = r.register_sequence_hash(h(i));
                    m.handles.entry(i).or_default().push(handle);
                    m.changed(i, was);
                }
                Op::Drop { h: i } => {
                    let was = m.registered(i);
                    let handle = m.handles.get_mut(&i).and_then(Vec::pop);
                    drop(handle);
                    m.changed(i, was);
                }
            }
            r.validate_presence().unwrap();
            for i in 0..3 {
                for (tier, &id) in tiers.iter().enumerate() {
                    let want = m.counts.get(&(i, tier)).copied().unwrap_or(0);
                    assert_eq!(r.inner.tables.lock().count(h(i), id), want, "{op:?}");
                }
                assert_eq!(r.is_registered(h(i)), m.registered(i), "{op:?}");
            }
            let mut announced = r.announced_hashes();
            announced.sort_by_key(|h| h.as_u128());
            let want: Vec<SequenceHash> = m.announced.iter().map(|&i| h(i)).collect();
            assert_eq!(announced, want, "{op:?}");
        }
        let mut seen = Vec::new();
        while let Some(event) = stream.try_recv() {
            seen.push(event);
        }
        assert_eq!(seen, m.expected);
    }

    proptest! {
        #[test]
        fn announced_bits_and_counts_follow_blocks_and_handles(
            ops in prop::collection::vec(op(), 1..60),
        ) {
            run(&ops);
        }
    }
}
