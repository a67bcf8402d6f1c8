//! Model test of `kvbm::events`: random register / match / drop / evict /
//! handle sequences on a small manager. At every quiescent point the hashes
//! with a Create and no Remove equal what the registry holds (filtered by
//! the emission policy), for every eviction backend, both duplication
//! policies and both built-in emission policies.

use std::collections::HashSet;
use std::sync::Arc;

use kvbm::blocks::BlockDuplicationPolicy;
use kvbm::events::{
    AllEventsPolicy, EventEmissionPolicy, EventsManager, KvCacheEvent, PowerOfTwoPolicy,
};
use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::manager::BlockManager;
use kvbm::testing::{chain, Device};
use kvbm::{BlockRegistry, ImmutableBlock, SequenceHash};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Allocate, stage and register the first `len` blocks of sequence `seq`.
    Register { seq: u8, len: u8 },
    /// Match sequence `seq`, keeping what matched.
    Match { seq: u8 },
    /// Drop the `i`-th group of held blocks.
    Drop { i: u8 },
    /// Allocate `n` blocks and drop them at once: evicts cached blocks.
    Churn { n: u8 },
    /// Register a bare handle for block `pos` of sequence `seq`.
    Handle { seq: u8, pos: u8 },
    /// Drop the `i`-th bare handle.
    DropHandle { i: u8 },
    /// Empty the cache.
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, 1..7u8).prop_map(|(seq, len)| Op::Register { seq, len }),
        2 => (0..3u8).prop_map(|seq| Op::Match { seq }),
        4 => any::<u8>().prop_map(|i| Op::Drop { i }),
        2 => (1..9u8).prop_map(|n| Op::Churn { n }),
        1 => (0..3u8, 0..6u8).prop_map(|(seq, pos)| Op::Handle { seq, pos }),
        1 => any::<u8>().prop_map(|i| Op::DropHandle { i }),
        1 => Just(Op::Reset),
    ]
}

fn sequence(seq: u8) -> Vec<SequenceHash> {
    // Sequences 0 and 1 share their first two blocks; 2 is unrelated.
    let mut hashes = chain(10, 2);
    match seq {
        0 => {
            let mut h = hashes[1];
            for i in 0..4 {
                h = h.extend(100 + i);
                hashes.push(h);
            }
        }
        1 => {
            let mut h = hashes[1];
            for i in 0..4 {
                h = h.extend(200 + i);
                hashes.push(h);
            }
        }
        _ => hashes = chain(30, 6),
    }
    hashes
}

struct Harness {
    manager: BlockManager<Device>,
    registry: BlockRegistry,
    policy: Arc<dyn EventEmissionPolicy>,
    announced: kvbm::events::LossAwareEventStream,
    blocks: kvbm::events::BlockEventStream,
    /// Hashes with a Create and no Remove, per subscription.
    model_announced: HashSet<SequenceHash>,
    model_all: HashSet<SequenceHash>,
    held: Vec<Vec<ImmutableBlock<Device>>>,
    handles: Vec<kvbm::registry::BlockRegistrationHandle>,
}

impl Harness {
    fn new(
        backend: Backend,
        duplication: BlockDuplicationPolicy,
        policy: Arc<dyn EventEmissionPolicy>,
    ) -> Self {
        let events = Arc::new(
            EventsManager::builder()
                .policy(Arc::clone(&policy))
                .channel_capacity(4096)
                .build(),
        );
        let announced = events.subscribe_loss_aware();
        let blocks = events.subscribe_blocks();
        let registry = kvbm::testing::registry_with_events(backend, events);
        let manager = BlockManager::<Device>::builder()
            .eviction_policy(backend)
            .duplication_policy(duplication)
            .registry(registry.clone())
            .block_count(8)
            .block_size(4)
            .build()
            .expect("valid settings");
        Self {
            manager,
            registry,
            policy,
            announced,
            blocks,
            model_announced: HashSet::new(),
            model_all: HashSet::new(),
            held: Vec::new(),
            handles: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Register { seq, len } => {
                let hashes = &sequence(seq)[..len as usize];
                if let Some(blocks) = self.manager.allocate_blocks(hashes.len()) {
                    let staged = blocks
                        .into_iter()
                        .zip(hashes)
                        .map(|(b, &h)| b.stage(h, 4).expect("right size"))
                        .collect();
                    self.held.push(self.manager.register_blocks(staged));
                }
            }
            Op::Match { seq } => {
                let matched = self.manager.match_blocks(&sequence(seq));
                self.held.push(matched);
            }
            Op::Drop { i } => {
                if !self.held.is_empty() {
                    let i = i as usize % self.held.len();
                    self.held.swap_remove(i);
                }
            }
            Op::Churn { n } => {
                drop(self.manager.allocate_blocks(n as usize));
            }
            Op::Handle { seq, pos } => {
                let h = sequence(seq)[pos as usize];
                self.handles.push(self.registry.register_sequence_hash(h));
            }
            Op::DropHandle { i } => {
                if !self.handles.is_empty() {
                    let i = i as usize % self.handles.len();
                    self.handles.swap_remove(i);
                }
            }
            Op::Reset => {
                let _ = self.manager.reset_inactive_pool();
            }
        }
    }

    /// Drains both subscriptions into the models, checking the protocol on
    /// the way, then compares the models with the registry.
    fn check(&mut self) {
        while let Some(event) = self.announced.try_recv() {
            let event = event.expect("no loss at this capacity");
            apply_to_model(&mut self.model_announced, event);
        }
        while let Some(event) = self.blocks.try_recv() {
            let event = event.expect("no loss at this capacity");
            if let KvCacheEvent::Remove(_) = event.event {
                assert!(event.lineage.is_none());
            }
            apply_to_model(&mut self.model_all, event.event);
        }
        let registered: HashSet<SequenceHash> =
            self.registry.registered_hashes().into_iter().collect();
        assert_eq!(self.model_all, registered, "all-blocks stream vs registry");
        let expected: HashSet<SequenceHash> = registered
            .iter()
            .copied()
            .filter(|&h| self.policy.should_emit(h))
            .collect();
        assert_eq!(
            self.model_announced, expected,
            "announced stream vs registry"
        );
        let snapshot: HashSet<SequenceHash> =
            self.registry.announced_hashes().into_iter().collect();
        assert_eq!(snapshot, expected, "announced_hashes vs registry");
        self.manager.validate().expect("manager invariants");
    }
}

fn apply_to_model(model: &mut HashSet<SequenceHash>, event: KvCacheEvent) {
    match event {
        KvCacheEvent::Create(h) => assert!(model.insert(h), "second Create of {h:?}"),
        KvCacheEvent::Remove(h) => assert!(model.remove(&h), "Remove of {h:?} without Create"),
    }
}

fn run(ops: &[Op], policy: Arc<dyn EventEmissionPolicy>) {
    for backend in Backend::ALL {
        for duplication in [
            BlockDuplicationPolicy::Allow,
            BlockDuplicationPolicy::Reject,
        ] {
            let mut h = Harness::new(backend, duplication, Arc::clone(&policy));
            for op in ops {
                h.apply(op);
                h.check();
            }
            // Quiescent end: everything released, then the cache emptied.
            h.held.clear();
            h.handles.clear();
            h.check();
            h.manager.reset_inactive_pool().expect("all blocks back");
            h.check();
            assert!(
                h.model_all.is_empty(),
                "{backend:?}: hashes left after reset"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn all_events_policy_stream_equals_registry(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops, Arc::new(AllEventsPolicy));
    }

    #[test]
    fn power_of_two_policy_stream_equals_filtered_registry(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops, Arc::new(PowerOfTwoPolicy::with_range(1, 4)));
    }
}

/// A policy that changes its mind: the Remove of a hash is announced exactly
/// when its Create was, whatever the policy answers by then.
#[test]
fn fickle_policy_never_announces_an_unmatched_remove() {
    use std::sync::atomic::{AtomicU64, Ordering};
    struct EveryOther(AtomicU64);
    impl EventEmissionPolicy for EveryOther {
        fn should_emit(&self, _: SequenceHash) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) % 2 == 0
        }
    }
    let ops: Vec<Op> = (0..30)
        .map(|i| match i % 5 {
            0 => Op::Register {
                seq: (i % 3) as u8,
                len: 6,
            },
            1 => Op::Drop { i: i as u8 },
            2 => Op::Churn { n: 5 },
            3 => Op::Match { seq: 1 },
            _ => Op::Handle {
                seq: 2,
                pos: (i % 6) as u8,
            },
        })
        .collect();
    let mut h = Harness::new(
        Backend::Lru,
        BlockDuplicationPolicy::Allow,
        Arc::new(EveryOther(AtomicU64::new(0))),
    );
    let mut creates = 0;
    for op in &ops {
        h.apply(op);
        while let Some(event) = h.announced.try_recv() {
            let event = event.expect("no loss");
            creates += usize::from(event.is_create());
            apply_to_model(&mut h.model_announced, event);
        }
        let snapshot: HashSet<SequenceHash> = h.registry.announced_hashes().into_iter().collect();
        assert_eq!(h.model_announced, snapshot);
    }
    assert!(creates > 0, "the policy announced something");
}

/// A policy that panics leaves the registry and the block manager intact:
/// the panic is caught, counted, and the hash is not announced.
#[test]
fn panicking_policy_does_not_break_the_registry() {
    struct Grumpy;
    impl EventEmissionPolicy for Grumpy {
        fn should_emit(&self, h: SequenceHash) -> bool {
            assert!(h.position() % 2 == 0, "odd position");
            true
        }
    }
    let mut h = Harness::new(
        Backend::Lru,
        BlockDuplicationPolicy::Allow,
        Arc::new(AllEventsPolicy),
    );
    // Swap in the panicking policy with a fresh manager of the same shape.
    let events = Arc::new(EventsManager::builder().policy(Arc::new(Grumpy)).build());
    let mut announced = events.subscribe();
    h.registry = BlockRegistry::builder()
        .event_manager(Arc::clone(&events))
        .build();
    h.manager = BlockManager::<Device>::builder()
        .registry(h.registry.clone())
        .block_count(8)
        .block_size(4)
        .build()
        .unwrap();
    h.apply(&Op::Register { seq: 2, len: 6 });
    assert_eq!(h.registry.registered_count(), 6);
    h.manager.validate().expect("manager invariants");
    assert_eq!(events.policy_panics(), 3);
    let creates: Vec<u64> = std::iter::from_fn(|| announced.try_recv())
        .map(|e| e.sequence_hash().position())
        .collect();
    assert_eq!(creates, [0, 2, 4]);
    h.held.clear();
    h.manager.reset_inactive_pool().unwrap();
    let removes: Vec<u64> = std::iter::from_fn(|| announced.try_recv())
        .map(|e| e.sequence_hash().position())
        .collect();
    let mut sorted = removes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 2, 4]);
}

/// Threads registering, matching, dropping and evicting the same hashes at
/// once: every hash's events still alternate Create, Remove, …, and the
/// stream ends equal to the registry.
#[test]
fn concurrent_changes_keep_each_hash_alternating() {
    let events = Arc::new(EventsManager::builder().channel_capacity(1 << 20).build());
    let mut all = events.subscribe_loss_aware();
    let registry = BlockRegistry::builder().event_manager(events).build();
    let manager = Arc::new(
        BlockManager::<Device>::builder()
            .eviction_policy(Backend::Lru)
            .registry(registry.clone())
            .block_count(16)
            .block_size(4)
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let manager = Arc::clone(&manager);
            let registry = registry.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..1500u64 {
                    let seq = ((i * 7 + t) % 3) as u8;
                    let hashes = sequence(seq);
                    match (i + t) % 5 {
                        0 | 1 => {
                            let len = 1 + (i % 6) as usize;
                            if let Some(blocks) = manager.allocate_blocks(len) {
                                let staged = blocks
                                    .into_iter()
                                    .zip(&hashes)
                                    .map(|(b, &h)| b.stage(h, 4).unwrap())
                                    .collect();
                                held.push(manager.register_blocks(staged));
                            }
                        }
                        2 => held.push(manager.match_blocks(&hashes)),
                        3 => drop(registry.register_sequence_hash(hashes[(i % 6) as usize])),
                        _ => drop(manager.allocate_blocks(4)),
                    }
                    if held.len() > 2 {
                        held.remove(0);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut model = HashSet::new();
    let mut count = 0;
    while let Some(event) = all.try_recv() {
        apply_to_model(&mut model, event.expect("no loss at this capacity"));
        count += 1;
    }
    assert!(
        count > 100,
        "the threads changed the registry ({count} events)"
    );
    let registered: HashSet<SequenceHash> = registry.registered_hashes().into_iter().collect();
    assert_eq!(model, registered);
    manager.validate().unwrap();
}
