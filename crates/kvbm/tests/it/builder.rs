//! Building a manager: every bad setting is an error, never a panic.

use kvbm::manager::{BlockManager, BlockManagerBuilderError};
use kvbm::pools::BlockDuplicationPolicy;
use kvbm::testing::Device;

#[test]
fn zero_or_missing_block_count_is_an_error() {
    let err = BlockManager::<Device>::builder().build().unwrap_err();
    assert_eq!(err, BlockManagerBuilderError::InvalidBlockCount);
    let err = BlockManager::<Device>::builder()
        .block_count(0)
        .build()
        .unwrap_err();
    assert_eq!(err, BlockManagerBuilderError::InvalidBlockCount);
}

#[test]
fn bad_block_sizes_are_errors() {
    for size in [0usize, 3, 12, 2048, 1025] {
        let err = BlockManager::<Device>::builder()
            .block_count(4)
            .block_size(size)
            .build()
            .unwrap_err();
        assert_eq!(err, BlockManagerBuilderError::InvalidBlockSize { size });
        assert!(err.to_string().contains("power of two"));
    }
}

#[test]
fn defaults_and_accepted_sizes() {
    let m = BlockManager::<Device>::builder()
        .block_count(3)
        .build()
        .unwrap();
    assert_eq!(m.block_size(), 16);
    assert_eq!(m.total_blocks(), 3);
    assert_eq!(m.available_blocks(), 3);
    assert_eq!(*m.duplication_policy(), BlockDuplicationPolicy::Allow);
    assert_eq!(m.eviction_policy(), "lineage", "documented default");
    for size in [1usize, 2, 64, 1024] {
        let m = BlockManager::<Device>::builder()
            .block_count(1)
            .block_size(size)
            .duplication_policy(BlockDuplicationPolicy::Reject)
            .build()
            .unwrap();
        assert_eq!(m.block_size(), size);
        assert_eq!(*m.duplication_policy(), BlockDuplicationPolicy::Reject);
    }
}

#[test]
fn fresh_manager_publishes_its_gauges() {
    let m = BlockManager::<Device>::builder()
        .block_count(5)
        .build()
        .unwrap();
    let s = m.metrics().snapshot();
    assert_eq!(s.reset_pool_size, 5);
    assert_eq!(s.inactive_pool_size, 0);
    assert_eq!(s.inflight_mutable, 0);
    assert_eq!(s.inflight_immutable, 0);
    m.validate().unwrap();
}

#[test]
fn manager_and_handles_are_send_and_sync() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<BlockManager<Device>>();
    assert_send_sync::<kvbm::ImmutableBlock<Device>>();
    assert_send_sync::<kvbm::WeakBlock<Device>>();
    assert_send_sync::<kvbm::MutableBlock<Device>>();
    assert_send_sync::<kvbm::CompleteBlock<Device>>();
}

#[test]
fn each_backend_builds_under_its_name() {
    use kvbm::eviction::EvictionPolicy as Backend;
    use kvbm::testing::builder;
    let names = [
        (Backend::Lru, "lru"),
        (Backend::MULTI_LRU, "multi-lru"),
        (Backend::Lineage, "lineage"),
        (Backend::Fifo, "fifo"),
    ];
    for (backend, name) in names {
        let m = builder(backend).block_count(4).build().unwrap();
        assert_eq!(m.eviction_policy(), name);
        assert_eq!(backend.name(), name, "policy names match backend names");
        m.validate().unwrap();
    }
}

#[test]
fn multi_lru_gets_a_tracker_unless_the_registry_is_given() {
    let own = BlockManager::<Device>::builder()
        .block_count(4)
        .with_multi_lru_backend()
        .build()
        .unwrap();
    assert!(own.block_registry().has_frequency_tracking());
    let err = BlockManager::<Device>::builder()
        .block_count(4)
        .registry(kvbm::BlockRegistry::new())
        .with_multi_lru_backend()
        .build()
        .unwrap_err();
    assert!(matches!(err, BlockManagerBuilderError::InvalidBackend(_)));
    assert!(err.to_string().contains("frequency tracker"), "{err}");
}

#[test]
fn multi_lru_thresholds_must_increase() {
    use kvbm::eviction::EvictionPolicy;
    use kvbm::manager::FrequencyTrackingCapacity;
    use kvbm::registry::BlockRegistry;
    let with_tracker = || {
        BlockManager::<Device>::builder().block_count(4).registry(
            BlockRegistry::builder()
                .frequency_tracker(FrequencyTrackingCapacity::Small.create_tracker())
                .build(),
        )
    };
    for (t1, t2, t3) in [(3, 3, 15), (8, 3, 15), (3, 8, 16), (5, 4, 3)] {
        let err = with_tracker()
            .with_multi_lru_backend_custom_thresholds(t1, t2, t3)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BlockManagerBuilderError::InvalidBackend(_)),
            "{err}"
        );
        // The same thresholds carried by the policy value are checked alike.
        let by_value = with_tracker()
            .eviction_policy(EvictionPolicy::MultiLru {
                thresholds: [t1, t2, t3],
            })
            .build()
            .unwrap_err();
        assert_eq!(by_value, err);
    }
    let ok = with_tracker()
        .with_multi_lru_backend_custom_thresholds(1, 2, 15)
        .build()
        .unwrap();
    assert_eq!(ok.eviction_policy(), "multi-lru");
    assert!(ok.block_registry().has_frequency_tracking());
}

#[test]
fn metrics_label_names_the_pool() {
    let default = BlockManager::<Device>::builder()
        .block_count(4)
        .build()
        .unwrap();
    assert_eq!(default.metrics().label(), "Device");
    let labelled = BlockManager::<Device>::builder()
        .block_count(4)
        .metrics_label("lru")
        .build()
        .unwrap();
    assert_eq!(labelled.metrics().label(), "lru");
}
