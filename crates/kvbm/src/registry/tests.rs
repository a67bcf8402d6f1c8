use std::any::TypeId;

use super::*;

#[derive(Clone)]
struct G1;
#[derive(Clone)]
struct G2;

fn h(i: u64) -> SequenceHash {
    SequenceHash::root(i)
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
