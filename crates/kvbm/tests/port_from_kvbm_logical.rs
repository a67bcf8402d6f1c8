//! Client code written against kvbm-logical 1.6.1's manager API, ported by
//! changing only the crate path (`kvbm_logical` → `kvbm`, `dynamo_tokens` →
//! `kvbm::tokens`). If this stops compiling, porting broke.

use kvbm as kvbm_logical;
use kvbm::tokens as dynamo_tokens;

use std::sync::Arc;

use dynamo_tokens::{PositionalLineageHash, TokenBlockSequence};
use kvbm_logical::blocks::{BlockError, CompleteBlock, ImmutableBlock, MutableBlock, WeakBlock};
use kvbm_logical::manager::{BlockManager, BlockManagerBuilderError, FrequencyTrackingCapacity};
use kvbm_logical::metrics::{BlockPoolMetrics, MetricsAggregator, StatsCollector, StatsConfig};
use kvbm_logical::pools::BlockDuplicationPolicy;
use kvbm_logical::registry::{BlockRegistrationHandle, BlockRegistry};
use kvbm_logical::SequenceHash;

#[derive(Clone, Debug)]
struct G1;

fn build() -> Result<BlockManager<G1>, BlockManagerBuilderError> {
    let registry = BlockRegistry::builder()
        .frequency_tracker(FrequencyTrackingCapacity::default().create_tracker())
        .build();
    BlockManager::<G1>::builder()
        .block_count(32)
        .block_size(16)
        .registry(registry)
        .duplication_policy(BlockDuplicationPolicy::Reject)
        .with_lru_backend()
        .aggregator(MetricsAggregator::new())
        .build()
}

#[test]
fn typical_request_flow_ports_unchanged() {
    let manager = build().unwrap();
    let tokens: Vec<u32> = (0..64).collect();
    let seq = TokenBlockSequence::from_slice(&tokens, 16, Some(1337));
    let hashes: Vec<SequenceHash> = seq
        .blocks()
        .iter()
        .map(|b| b.positional_lineage_hash())
        .collect();

    let mutable: Vec<MutableBlock<G1>> = manager.allocate_blocks(4).unwrap();
    let complete: Vec<CompleteBlock<G1>> = mutable
        .into_iter()
        .zip(seq.blocks())
        .map(|(b, t)| b.complete(t).unwrap())
        .collect();
    let immutable: Vec<ImmutableBlock<G1>> = manager.register_blocks(complete);
    let weak: Vec<WeakBlock<G1>> = immutable.iter().map(|b| b.downgrade()).collect();
    let handle: BlockRegistrationHandle = immutable[0].registration_handle();
    assert_eq!(handle.seq_hash(), hashes[0]);
    drop(immutable);

    let matched = manager.match_blocks(&hashes);
    assert_eq!(matched.len(), 4);
    assert!(weak.iter().all(|w| w.upgrade().is_some()));
    let scanned = manager.scan_matches(&hashes[2..], true);
    assert_eq!(scanned.len(), 2);
    drop((matched, scanned));

    let wrong = manager.allocate_blocks(1).unwrap().pop().unwrap();
    match wrong.stage(PositionalLineageHash::root(1), 8) {
        Err(BlockError::BlockSizeMismatch { block, .. }) => drop(block),
        Ok(_) => panic!("size mismatch accepted"),
    }

    let (blocks, evicted) = manager.allocate_blocks_with_evictions(32).unwrap();
    assert_eq!(evicted.len(), 4);
    drop(blocks);
    manager.reset_inactive_pool().unwrap();

    let metrics: &Arc<BlockPoolMetrics> = manager.metrics();
    let stats = StatsCollector::new(metrics.clone(), StatsConfig::default());
    stats.set_enabled(true);
    stats.sample();
    assert!(stats.latest().is_some());
    assert_eq!(manager.total_blocks(), 32);
    assert_eq!(manager.available_blocks(), 32);
    assert_eq!(manager.block_size(), 16);
    assert_eq!(
        *manager.duplication_policy(),
        BlockDuplicationPolicy::Reject
    );
    assert!(manager.block_registry().has_frequency_tracking());
}
