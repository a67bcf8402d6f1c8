//! `ManagerId`, `LifecyclePin` / `LifecyclePinRef`: type-erased keepalives.

use kvbm::manager::BlockManager;
use kvbm::testing::{chain, check, fill, manager, staged, Host};
use kvbm::{LifecyclePinRef, ManagerId};

#[test]
fn manager_ids_are_unique_and_never_null() {
    let a = manager(4);
    let b = manager(4);
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id(), ManagerId::NULL);
    let held = fill(&a, &chain(1, 1));
    let pin = held[0].pin();
    assert_eq!(pin.manager_id(), a.id());
    assert_eq!(pin.clone().manager_id(), held[0].clone().pin().manager_id());
}

#[test]
fn pin_holds_the_block_until_the_last_clone_drops() {
    let m = manager(4);
    let hashes = chain(3, 1);
    let held = fill(&m, &hashes).pop().unwrap();
    let (id, hash) = (held.block_id(), held.sequence_hash());
    let pin = held.pin();
    assert_eq!((pin.block_id(), pin.sequence_hash()), (id, hash));
    assert_eq!(pin.registration_handle().seq_hash(), hash);
    drop(held);
    // Still held, not cached: not available to allocation.
    assert_eq!(m.available_blocks(), 3);
    let copy = pin.clone();
    assert_eq!(pin.use_count(), 2);
    drop(pin);
    assert_eq!(m.available_blocks(), 3);
    drop(copy);
    assert_eq!(m.available_blocks(), 4);
    assert_eq!(
        m.match_blocks(&hashes).len(),
        1,
        "cached after the last pin"
    );
    check(&m);
}

#[test]
fn pins_of_different_tiers_live_in_one_list() {
    let device = manager(2);
    let host: BlockManager<Host> = BlockManager::builder()
        .block_count(2)
        .block_size(4)
        .build()
        .unwrap();
    let hash = chain(5, 1)[0];
    let d = fill(&device, &[hash]);
    let h = staged(&host, hash);
    let h = host.register_block(h);
    let pins: Vec<LifecyclePinRef> = vec![d[0].pin(), h.pin()];
    drop((d, h));
    assert_ne!(pins[0].manager_id(), pins[1].manager_id());
    assert!(pins.iter().all(|p| p.sequence_hash() == hash));
    assert_eq!((device.available_blocks(), host.available_blocks()), (1, 1));
    // Dropping the manager first is fine: the pins keep the pool alive.
    drop(device);
    drop(pins);
    assert_eq!(host.available_blocks(), 2);
}
