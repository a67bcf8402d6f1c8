//! The Dynamo KV router exporter against dynamo-kv-router 1.6.1 itself (a
//! dev-dependency used only here): events from several managers doing
//! random work with evictions are encoded (JSON and MessagePack in turn),
//! decoded with the router's own types and applied to its `RadixTree`; at
//! every checkpoint `find_matches` on the router's token hashes of each
//! query reports every worker's true cached depth, read from the worker's
//! own registry.

use std::collections::HashSet;
use std::sync::Arc;

use dynamo_kv_router::protocols::{
    compute_block_hash_for_seq, BlockHashOptions, LocalBlockHash, RouterEvent as TheirEvent,
    WorkerWithDpRank,
};
use dynamo_kv_router::radix_tree::RadixTree;
use kvbm::events::dynamo::{DynamoKvExporter, RouterEvent};
use kvbm::events::{BlockEventStream, EventStreamRecvError, EventsManager};
use kvbm::eviction::EvictionPolicy;
use kvbm::manager::BlockManager;
use kvbm::tokens::TokenBlockSequence;
use kvbm::{BlockRegistry, ImmutableBlock, SequenceHash};
use proptest::prelude::*;

const BLOCK_SIZE: usize = 4;
const SALT: u64 = 1337;

#[derive(Clone, Debug)]
struct Device;

/// The tokens of query `q` (blocks of 4): queries share a 2-block prefix in
/// pairs, then diverge.
fn tokens(q: u8, blocks: usize) -> Vec<u32> {
    (0..blocks * BLOCK_SIZE)
        .map(|i| {
            let block = (i / BLOCK_SIZE) as u32;
            if block < 2 {
                1_000 * (u32::from(q) % 2) + i as u32
            } else {
                100_000 * (u32::from(q) + 1) + i as u32
            }
        })
        .collect()
}

/// Query `q`'s full token sequence as the router's own block hashes (its
/// default hashing options).
fn router_query(q: u8) -> Vec<LocalBlockHash> {
    compute_block_hash_for_seq(
        &tokens(q, MAX_BLOCKS),
        BLOCK_SIZE as u32,
        BlockHashOptions::default(),
    )
}

const QUERIES: u8 = 5;
const MAX_BLOCKS: usize = 7;

struct Worker {
    id: u64,
    manager: BlockManager<Device>,
    registry: BlockRegistry,
    feed: BlockEventStream,
    exporter: DynamoKvExporter,
    held: Vec<Vec<ImmutableBlock<Device>>>,
    /// Hashes that entered the registry without tokens (still registered).
    bare: HashSet<SequenceHash>,
}

impl Worker {
    fn new(id: u64, blocks: usize, backend: EvictionPolicy) -> Self {
        Self::with_capacity(id, blocks, backend, 1 << 16)
    }

    fn with_capacity(id: u64, blocks: usize, backend: EvictionPolicy, capacity: usize) -> Self {
        let events = Arc::new(EventsManager::builder().channel_capacity(capacity).build());
        let feed = events.subscribe_blocks();
        let registry = kvbm::testing::registry_with_events(backend, events);
        let manager = BlockManager::<Device>::builder()
            .eviction_policy(backend)
            .block_count(blocks)
            .block_size(BLOCK_SIZE)
            .registry(registry.clone())
            .build()
            .expect("valid settings");
        Self {
            id,
            manager,
            registry,
            feed,
            exporter: DynamoKvExporter::new(id),
            held: Vec::new(),
            bare: HashSet::new(),
        }
    }

    /// A request for the first `len` blocks of query `q`: match the cached
    /// prefix, fill the rest (from tokens, or from bare hashes when `bare`),
    /// register, and hold everything.
    fn request(&mut self, q: u8, len: usize, bare: bool) {
        let seq =
            TokenBlockSequence::try_from_slice(&tokens(q, len), BLOCK_SIZE as u32, Some(SALT))
                .expect("valid tokens");
        let hashes: Vec<SequenceHash> = seq
            .blocks()
            .iter()
            .map(|b| b.positional_lineage_hash())
            .collect();
        let mut blocks = self.manager.match_blocks(&hashes);
        let have = blocks.len();
        let fresh = self.manager.allocate_blocks(len - have);
        self.forget_evicted_bare();
        let Some(fresh) = fresh else {
            self.held.push(blocks);
            return;
        };
        let staged = fresh
            .into_iter()
            .zip(&seq.blocks()[have..])
            .map(|(block, token_block)| {
                if bare {
                    let h = token_block.positional_lineage_hash();
                    if !self.registry.is_registered(h) {
                        self.bare.insert(h);
                    }
                    block.stage(h, BLOCK_SIZE)
                } else {
                    block.complete(token_block)
                }
                .expect("right size")
            })
            .collect();
        blocks.extend(self.manager.register_blocks(staged));
        self.held.push(blocks);
    }

    /// Allocation may have evicted bare blocks; a hash that comes back
    /// later may come back with tokens.
    fn forget_evicted_bare(&mut self) {
        let registry = &self.registry;
        self.bare.retain(|&h| registry.is_registered(h));
    }

    /// Drains the feed through the exporter; the router events it makes.
    fn export(&mut self) -> Vec<RouterEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.feed.try_recv() {
            self.exporter
                .apply(event.expect("no loss at this capacity"), &mut out);
        }
        self.exporter.flush(&mut out);
        out
    }

    /// Leading blocks of query `q` that the worker holds, stopping at the
    /// first block it does not hold or holds without tokens.
    fn true_depth(&self, q: u8) -> u32 {
        let seq = TokenBlockSequence::try_from_slice(
            &tokens(q, MAX_BLOCKS),
            BLOCK_SIZE as u32,
            Some(SALT),
        )
        .expect("valid tokens");
        seq.blocks()
            .iter()
            .map(|b| b.positional_lineage_hash())
            .take_while(|&h| self.registry.is_registered(h) && !self.bare.contains(&h))
            .count() as u32
    }
}

#[derive(Debug, Clone)]
enum Op {
    Request {
        worker: u8,
        q: u8,
        len: u8,
        bare: bool,
    },
    Drop {
        worker: u8,
        i: u8,
    },
    /// Allocate and drop blocks: evicts cached ones.
    Churn {
        worker: u8,
        n: u8,
    },
    Checkpoint,
}

fn op(bare: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4u8, 0..QUERIES, 1..=MAX_BLOCKS as u8, prop::bool::weighted(if bare { 0.3 } else { 0.0 }))
            .prop_map(|(worker, q, len, bare)| Op::Request { worker, q, len, bare }),
        4 => (0..4u8, any::<u8>()).prop_map(|(worker, i)| Op::Drop { worker, i }),
        2 => (0..4u8, 1..8u8).prop_map(|(worker, n)| Op::Churn { worker, n }),
        2 => Just(Op::Checkpoint),
    ]
}

fn run(ops: &[Op]) {
    // One worker per eviction backend: they orphan blocks differently (LRU
    // evicts roots before their cached children, lineage leaves first).
    let mut workers: Vec<Worker> = EvictionPolicy::ALL
        .iter()
        .enumerate()
        .map(|(i, &backend)| Worker::new(100 + i as u64, 10, backend))
        .collect();
    let mut tree = RadixTree::new();
    let mut json = false;
    let mut checkpoint = |workers: &mut [Worker], tree: &mut RadixTree| {
        for w in workers.iter_mut() {
            for event in w.export() {
                json = !json;
                let theirs: TheirEvent = if json {
                    serde_json::from_slice(&event.to_json().unwrap())
                        .expect("router reads our JSON")
                } else {
                    rmp_serde::from_slice(&event.to_msgpack().unwrap())
                        .expect("router reads our MessagePack")
                };
                tree.apply_event(theirs)
                    .unwrap_or_else(|e| panic!("router rejected {event:?}: {e}"));
            }
        }
        for q in 0..QUERIES {
            let query = router_query(q);
            let scores = tree.find_matches(query, false).scores;
            for w in workers.iter() {
                let router = scores
                    .get(&WorkerWithDpRank::new(w.id, 0))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(router, w.true_depth(q), "worker {} query {q}", w.id);
            }
        }
    };
    for op in ops {
        match *op {
            Op::Request {
                worker,
                q,
                len,
                bare,
            } => workers[worker as usize].request(q, len as usize, bare),
            Op::Drop { worker, i } => {
                let held = &mut workers[worker as usize].held;
                if !held.is_empty() {
                    let i = i as usize % held.len();
                    held.swap_remove(i);
                }
            }
            Op::Churn { worker, n } => {
                let w = &mut workers[worker as usize];
                drop(w.manager.allocate_blocks(n as usize));
                w.forget_evicted_bare();
            }
            Op::Checkpoint => checkpoint(&mut workers, &mut tree),
        }
    }
    for w in workers.iter_mut() {
        w.held.clear();
    }
    checkpoint(&mut workers, &mut tree);
    // A worker that clears is gone from the router.
    let mut out = Vec::new();
    workers[0].exporter.clear(&mut out);
    for event in out {
        tree.apply_event(rmp_serde::from_slice(&event.to_msgpack().unwrap()).unwrap())
            .unwrap();
    }
    for q in 0..QUERIES {
        let query = router_query(q);
        let scores = tree.find_matches(query, false).scores;
        assert!(!scores.contains_key(&WorkerWithDpRank::new(100, 0)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn router_depth_equals_each_workers_cached_depth(ops in prop::collection::vec(op(false), 1..80)) {
        run(&ops);
    }

    /// Blocks registered from bare hashes are not exported, nor are the
    /// blocks below them: the router's depth stops there.
    #[test]
    fn blocks_without_tokens_cut_the_exported_prefix(ops in prop::collection::vec(op(true), 1..80)) {
        run(&ops);
    }
}

#[test]
fn tokens_hash_is_the_routers_block_hash_with_salt_1337() {
    let t = tokens(3, MAX_BLOCKS);
    let ours: Vec<u64> = TokenBlockSequence::try_from_slice(&t, BLOCK_SIZE as u32, Some(SALT))
        .unwrap()
        .blocks()
        .iter()
        .map(|b| b.block_hash())
        .collect();
    let theirs: Vec<u64> =
        compute_block_hash_for_seq(&t, BLOCK_SIZE as u32, BlockHashOptions::default())
            .into_iter()
            .map(|h| h.0)
            .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn event_ids_increase_per_worker_and_fields_are_named() {
    let mut w = Worker::new(7, 8, EvictionPolicy::Lru);
    w.request(0, 3, false);
    w.held.clear();
    drop(w.manager.allocate_blocks(8));
    let events = w.export();
    let ids: Vec<u64> = events.iter().map(|e| e.event.event_id).collect();
    assert_eq!(ids, (0..events.len() as u64).collect::<Vec<_>>());
    let json: serde_json::Value = serde_json::from_slice(&events[0].to_json().unwrap()).unwrap();
    let stored = &json["event"]["data"]["stored"];
    assert_eq!(json["worker_id"], 7);
    assert!(stored["parent_hash"].is_null());
    assert_eq!(stored["start_position"], 0);
    assert_eq!(stored["blocks"].as_array().unwrap().len(), 3);
    assert!(stored["blocks"][0]["mm_extra_info"].is_null());
    assert!(json["event"]["data"].get("stored").is_some());
    let removed = serde_json::to_value(&events.last().unwrap().event.data).unwrap();
    assert!(removed.get("removed").is_some());
}

/// A root evicted while its children stay cached, then registered again:
/// the children still cached are exported again below it.
#[test]
fn orphaned_children_come_back_with_their_parent() {
    let request = Op::Request {
        worker: 0,
        q: 0,
        len: 3,
        bare: false,
    };
    let ops = [
        request.clone(),
        Op::Checkpoint,
        Op::Drop { worker: 0, i: 0 },
        // Ten blocks, three cached: allocating eight evicts the oldest
        // released, the root.
        Op::Churn { worker: 0, n: 8 },
        Op::Checkpoint,
        request,
        Op::Checkpoint,
    ];
    run(&ops);
}

/// After lost events the exporter resyncs from the registry: the router
/// again holds exactly the registered blocks it knows the tokens of, and
/// blocks registered during the loss are treated as registered without
/// tokens (not exported).
#[test]
fn resync_after_lost_events() {
    let mut w = Worker::with_capacity(9, 16, EvictionPolicy::Lru, 4);
    let mut tree = RadixTree::new();
    let apply = |tree: &mut RadixTree, events: Vec<RouterEvent>| {
        for event in events {
            let theirs: TheirEvent = rmp_serde::from_slice(&event.to_msgpack().unwrap()).unwrap();
            tree.apply_event(theirs).unwrap();
        }
    };
    let depth = |tree: &RadixTree, q: u8| {
        let query = router_query(q);
        tree.find_matches(query, false)
            .scores
            .get(&WorkerWithDpRank::new(9, 0))
            .copied()
            .unwrap_or(0)
    };
    w.request(0, 3, false);
    let events = w.export();
    apply(&mut tree, events);
    assert_eq!(depth(&tree, 0), 3);

    // Six Creates while nobody reads: the feed (capacity 4) loses the
    // first two, query 1's first blocks (query 3 shares them).
    w.request(1, 4, false);
    w.request(3, 4, false);
    let mut out = Vec::new();
    let mut lost = 0;
    while let Some(event) = w.feed.try_recv() {
        match event {
            Ok(event) => w.exporter.apply(event, &mut out),
            Err(EventStreamRecvError::Lagged(n)) => {
                lost += n;
                w.exporter.resync(&w.registry, &mut out);
            }
        }
    }
    w.exporter.flush(&mut out);
    assert_eq!(lost, 2);
    apply(&mut tree, out);
    // Known and still registered: exported again after the clear.
    assert_eq!((w.true_depth(0), depth(&tree, 0)), (3, 3));
    // Below blocks registered during the loss (tokens unknown): not exported.
    assert_eq!((w.true_depth(1), depth(&tree, 1)), (4, 0));
    assert_eq!((w.true_depth(3), depth(&tree, 3)), (4, 0));
}
