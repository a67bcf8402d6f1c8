//! Registry extension points seen through block managers: attachments that
//! follow the data, touch callbacks, and presence across tiers.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use kvbm::manager::BlockManager;
use kvbm::registry::AttachmentError;
use kvbm::testing::{chain, check, fill, manager, Device, DropFlag, Host};
use kvbm::{BlockRegistry, SequenceHash};

fn dropped(f: &AtomicBool) -> bool {
    f.load(Ordering::SeqCst)
}

fn host_manager(blocks: usize, registry: &BlockRegistry) -> BlockManager<Host> {
    BlockManager::<Host>::builder()
        .block_count(blocks)
        .block_size(4)
        .registry(registry.clone())
        .build()
        .expect("valid settings")
}

fn device_manager(blocks: usize, registry: &BlockRegistry) -> BlockManager<Device> {
    BlockManager::<Device>::builder()
        .block_count(blocks)
        .block_size(4)
        .registry(registry.clone())
        .build()
        .expect("valid settings")
}

fn register_host(m: &BlockManager<Host>, hash: SequenceHash) -> kvbm::ImmutableBlock<Host> {
    let block = m.allocate_blocks(1).expect("a block").pop().expect("one");
    m.register_block(block.stage(hash, 4).expect("right size"))
}

#[test]
fn attachments_stay_while_cached_and_go_on_eviction() {
    let m = manager(1);
    let hash = chain(1, 1)[0];
    let block = fill(&m, &[hash]).pop().expect("one block");
    let (gone, value) = DropFlag::new();
    block.registration_handle().attach_unique(value).unwrap();
    drop(block);
    assert!(!dropped(&gone), "the cached block keeps its attachments");

    // A later match sees the same attachments.
    let matched = m.match_blocks(&[hash]);
    assert_eq!(matched.len(), 1);
    let handle = matched[0].registration_handle();
    assert_eq!(handle.get::<DropFlag>().with_unique(|_| ()), Some(()));
    assert!(matches!(
        handle.attach_unique(DropFlag::new().1),
        Err(AttachmentError::TypeAlreadyRegisteredAsUnique(_))
    ));
    drop((handle, matched));

    // Evicting the block to make room ends the registration.
    let (_blocks, evicted) = m.allocate_blocks_with_evictions(1).expect("evicts");
    assert_eq!(evicted, vec![hash]);
    assert!(dropped(&gone));
    assert!(!m.block_registry().is_registered(hash));
    check(&m);
}

#[test]
fn a_callers_handle_outlives_eviction() {
    let m = manager(1);
    let hash = chain(2, 1)[0];
    let block = fill(&m, &[hash]).pop().expect("one block");
    let handle = block.registration_handle();
    let (gone, value) = DropFlag::new();
    handle.attach(value).unwrap();
    drop(block);
    let _evictor = m.allocate_blocks(1).expect("evicts");
    assert!(!dropped(&gone));
    assert!(!handle.has_block::<Device>());
    assert_eq!(handle.get::<DropFlag>().with_multiple(|v| v.len()), 1);
    drop(handle);
    assert!(dropped(&gone));
    assert_eq!(m.block_registry().registered_count(), 0);
}

#[test]
fn resetting_the_cache_drops_attachments() {
    let m = manager(2);
    let hashes = chain(3, 2);
    let blocks = fill(&m, &hashes);
    let flags: Vec<_> = blocks
        .iter()
        .map(|b| {
            let (gone, value) = DropFlag::new();
            b.registration_handle().attach(value).unwrap();
            gone
        })
        .collect();
    drop(blocks);
    assert!(flags.iter().all(|f| !dropped(f)));
    m.reset_inactive_pool().unwrap();
    assert!(flags.iter().all(|f| dropped(f)));
    check(&m);
}

#[test]
fn attachments_follow_the_hash_across_tiers() {
    let registry = BlockRegistry::new();
    let device = device_manager(1, &registry);
    let host = host_manager(1, &registry);
    let hash = chain(4, 1)[0];

    let on_device = fill(&device, &[hash]).pop().expect("one block");
    let (gone, value) = DropFlag::new();
    on_device.registration_handle().attach(value).unwrap();
    let on_host = register_host(&host, hash);
    assert!(
        on_host
            .registration_handle()
            .get::<DropFlag>()
            .with_multiple(|v| v.len())
            == 1
    );
    drop((on_device, on_host));

    assert_eq!(
        registry.check_presence::<Device>(&[hash]),
        vec![(hash, true)]
    );
    assert_eq!(registry.check_presence::<Host>(&[hash]), vec![(hash, true)]);

    let _device_evictor = device.allocate_blocks(1).expect("evicts");
    assert!(!dropped(&gone), "the host tier still holds the hash");
    assert_eq!(
        registry.check_presence::<Device>(&[hash]),
        vec![(hash, false)]
    );
    let any = [TypeId::of::<Device>(), TypeId::of::<Host>()];
    assert_eq!(
        registry.check_presence_any(&[hash], &any),
        vec![(hash, true)]
    );

    let _host_evictor = host.allocate_blocks(1).expect("evicts");
    assert!(dropped(&gone));
    assert_eq!(
        registry.check_presence_any(&[hash], &any),
        vec![(hash, false)]
    );
    assert_eq!(registry.registered_count(), 0);
}

#[test]
fn presence_is_reported_per_tier_for_many_hashes() {
    let registry = BlockRegistry::new();
    let device = device_manager(4, &registry);
    let host = host_manager(4, &registry);
    let hashes = chain(5, 4);
    let _device_blocks = fill(&device, &hashes[..2]);
    let _host_blocks: Vec<_> = hashes[1..3]
        .iter()
        .map(|h| register_host(&host, *h))
        .collect();

    let flags = |v: Vec<(SequenceHash, bool)>| {
        assert!(v.iter().zip(&hashes).all(|(p, h)| p.0 == *h));
        v.into_iter().map(|p| p.1).collect::<Vec<_>>()
    };
    assert_eq!(
        flags(registry.check_presence::<Device>(&hashes)),
        [true, true, false, false]
    );
    assert_eq!(
        flags(registry.check_presence::<Host>(&hashes)),
        [false, true, true, false]
    );
    assert_eq!(
        flags(
            registry.check_presence_any(&hashes, &[TypeId::of::<Device>(), TypeId::of::<Host>()])
        ),
        [true, true, true, false]
    );
    let handle = registry.match_sequence_hash(hashes[1], false).unwrap();
    assert!(handle.has_block::<Device>() && handle.has_block::<Host>());
}

#[test]
fn touch_callbacks_may_use_the_manager() {
    let m = Arc::new(manager(2));
    let hash = chain(6, 1)[0];
    let block = fill(&m, &[hash]).pop().expect("one block");
    let handle = block.registration_handle();
    let hits = Arc::new(AtomicUsize::new(0));
    let (manager, seen) = (Arc::downgrade(&m), hits.clone());
    handle.on_touch(Arc::new(move |touched| {
        let Some(manager) = manager.upgrade() else {
            return;
        };
        assert!(manager.block_registry().is_registered(touched));
        let matched = manager.match_blocks(&[touched]);
        assert_eq!(matched.len(), 1);
        // Allocating takes the store lock (and may evict): no deadlock.
        drop(manager.allocate_blocks(1));
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    handle.touch();
    drop(block);
    handle.touch();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    drop(handle);
    check(&m);
}
