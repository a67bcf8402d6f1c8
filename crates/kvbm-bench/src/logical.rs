//! The workload adapter for kvbm-logical 1.6.1.

use crate::workloads::{Backend, BenchTier, Pool, BLOCK_SIZE};
use dynamo_tokens::PositionalLineageHash;
use kvbm_logical::manager::FrequencyTrackingCapacity;
use kvbm_logical::{BlockManager, BlockRegistry, ImmutableBlock};

/// The kvbm-logical manager the workloads run on.
pub type Logical = BlockManager<BenchTier>;

impl Pool for Logical {
    type Hash = PositionalLineageHash;
    type Held = ImmutableBlock<BenchTier>;

    fn build(backend: Backend, blocks: usize) -> Self {
        let registry = match backend {
            // Same tracker size as the kvbm side.
            Backend::MultiLru { .. } => BlockRegistry::builder()
                .frequency_tracker(FrequencyTrackingCapacity::Small.create_tracker())
                .build(),
            _ => BlockRegistry::new(),
        };
        let builder = BlockManager::<BenchTier>::builder()
            .block_count(blocks)
            .block_size(BLOCK_SIZE)
            .registry(registry);
        let builder = match backend {
            Backend::Lru => builder.with_lru_backend(),
            Backend::MultiLru { .. } => builder.with_multi_lru_backend(),
            Backend::Lineage => builder.with_lineage_backend(),
            Backend::Fifo => builder.with_hashmap_backend(),
            // `main` skips workloads on backends kvbm-logical lacks.
            Backend::Admission => unreachable!("kvbm-logical has no admission backend"),
        };
        builder.build().expect("valid benchmark manager")
    }

    fn root(block_hash: u64) -> Self::Hash {
        PositionalLineageHash::root(block_hash)
    }

    fn extend(parent: &Self::Hash, block_hash: u64) -> Self::Hash {
        parent.extend(block_hash)
    }

    fn match_prefix(&self, hashes: &[Self::Hash]) -> Vec<Self::Held> {
        self.match_blocks(hashes)
    }

    fn fill(&self, hashes: &[Self::Hash]) -> Option<Vec<Self::Held>> {
        let blocks = self.allocate_blocks(hashes.len())?;
        let staged = blocks
            .into_iter()
            .zip(hashes)
            .map(|(b, h)| b.stage(*h, BLOCK_SIZE).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(self.register_blocks(staged))
    }

    fn hash_tokens(tokens: &[u32]) -> u64 {
        let seq = dynamo_tokens::TokenBlockSequence::from_slice(tokens, BLOCK_SIZE as u32, None);
        seq.blocks()
            .last()
            .map_or(0, |b| b.positional_lineage_hash().as_u128() as u64)
    }
}
