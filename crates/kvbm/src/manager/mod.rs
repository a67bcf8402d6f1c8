//! [`BlockManager`]: the facade users hold.
//!
//! ```
//! use kvbm::manager::BlockManager;
//! use kvbm::tokens::TokenBlock;
//!
//! #[derive(Clone)]
//! struct Device;
//!
//! let manager = BlockManager::<Device>::builder()
//!     .block_count(8)
//!     .block_size(4)
//!     .build()?;
//!
//! // Fill a block, register it, let it go: it stays cached.
//! let tokens = TokenBlock::new(vec![1, 2, 3, 4], 0, None)?;
//! let block = manager.allocate_blocks(1).expect("8 blocks are free");
//! let complete = block.into_iter().next().unwrap().complete(&tokens)?;
//! let held = manager.register_block(complete);
//! drop(held);
//!
//! // A later request with the same prefix gets the cached block back.
//! let hits = manager.match_blocks(&[tokens.positional_lineage_hash()]);
//! assert_eq!(hits.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;

use std::collections::HashMap;
use std::sync::Arc;

pub use crate::tinylfu::FrequencyTrackingCapacity;
pub use builder::{
    BlockManagerBuilderError, BlockManagerConfigBuilder, BlockManagerResetError,
    DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE,
};

use crate::blocks::{
    BlockDuplicationPolicy, BlockMetadata, CompleteBlock, ImmutableBlock, MutableBlock,
};
use crate::metrics::BlockPoolMetrics;
use crate::registry::BlockRegistry;
use crate::store::{InvariantViolation, Store};
use crate::BlockId;
use crate::SequenceHash;

/// A pool of KV-cache blocks of one storage tier `T`: allocation, prefix
/// registration, prefix matching and eviction of cached blocks.
///
/// Share it between threads by reference or in an `Arc`; every operation
/// takes the pool's lock once.
pub struct BlockManager<T: BlockMetadata> {
    pub(crate) store: Arc<Store<T>>,
}

impl<T: BlockMetadata> BlockManager<T> {
    /// A builder for a manager.
    pub fn builder() -> BlockManagerConfigBuilder<T> {
        BlockManagerConfigBuilder::new()
    }

    /// Allocates `count` blocks, from the free pool first and then by
    /// evicting cached blocks; `None` (and nothing allocated) when fewer than
    /// `count` blocks are free or cached.
    ///
    /// # Panics
    /// If the manager is poisoned (see [`poisoned`](Self::poisoned)), or
    /// its eviction backend panics or breaks its contract now (which
    /// poisons it).
    pub fn allocate_blocks(&self, count: usize) -> Option<Vec<MutableBlock<T>>> {
        self.store.allocate(count, None)
    }

    /// Like [`allocate_blocks`](Self::allocate_blocks), and also returns the
    /// hashes of the cached blocks evicted to make room.
    ///
    /// # Panics
    /// Like [`allocate_blocks`](Self::allocate_blocks), if the manager is
    /// or becomes poisoned.
    pub fn allocate_blocks_with_evictions(
        &self,
        count: usize,
    ) -> Option<(Vec<MutableBlock<T>>, Vec<SequenceHash>)> {
        let mut evicted = Vec::new();
        let blocks = self.store.allocate(count, Some(&mut evicted))?;
        Some((blocks, evicted))
    }

    /// Registers a staged block under its sequence hash.
    ///
    /// If the hash is already registered, the
    /// [`BlockDuplicationPolicy`] decides: `Reject` returns the existing
    /// block and frees this one, `Allow` keeps this one as a duplicate that
    /// keeps the existing block held (reviving it if it was cached).
    ///
    /// # Panics
    /// If `block` was allocated by another manager (the block goes back to
    /// its own pool); [`try_register_block`](Self::try_register_block)
    /// returns that as an error. Also if the manager is poisoned (see
    /// [`poisoned`](Self::poisoned)).
    pub fn register_block(&self, block: CompleteBlock<T>) -> ImmutableBlock<T> {
        match self.try_register_block(block) {
            Ok(registered) => registered,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`register_block`](Self::register_block), but hands a block of
    /// another manager back in the error instead of panicking.
    ///
    /// # Panics
    /// Only if the manager is poisoned (see [`poisoned`](Self::poisoned)):
    /// that follows a panic of the eviction backend, not a bad argument.
    pub fn try_register_block(
        &self,
        block: CompleteBlock<T>,
    ) -> Result<ImmutableBlock<T>, ForeignBlockError<CompleteBlock<T>>> {
        if !self.owns(&block) {
            return Err(ForeignBlockError {
                block_id: block.block_id(),
                blocks: block,
            });
        }
        Ok(self.store.register_block(block))
    }

    /// Registers staged blocks in order; see
    /// [`register_block`](Self::register_block).
    ///
    /// # Panics
    /// If any block was allocated by another manager (then none is
    /// registered);
    /// [`try_register_blocks`](Self::try_register_blocks) returns that as
    /// an error. Also if the manager is poisoned.
    pub fn register_blocks(&self, blocks: Vec<CompleteBlock<T>>) -> Vec<ImmutableBlock<T>> {
        match self.try_register_blocks(blocks) {
            Ok(registered) => registered,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`register_blocks`](Self::register_blocks), but hands every
    /// block back in the error, none registered, if any of them belongs to
    /// another manager.
    ///
    /// # Panics
    /// Only if the manager is poisoned, as
    /// [`try_register_block`](Self::try_register_block).
    pub fn try_register_blocks(
        &self,
        blocks: Vec<CompleteBlock<T>>,
    ) -> Result<Vec<ImmutableBlock<T>>, ForeignBlockError<Vec<CompleteBlock<T>>>> {
        if let Some(foreign) = blocks.iter().find(|b| !self.owns(b)) {
            return Err(ForeignBlockError {
                block_id: foreign.block_id(),
                blocks,
            });
        }
        let mut out = Vec::with_capacity(blocks.len());
        self.store.register_blocks(blocks, &mut out);
        Ok(out)
    }

    /// Whether `block` was allocated by this manager.
    fn owns(&self, block: &CompleteBlock<T>) -> bool {
        block.belongs_to(&self.store)
    }

    /// The longest prefix of `seq_hash` whose blocks are registered, held or
    /// cached; stops at the first miss. Cached blocks are revived (taken out
    /// of the eviction order) for as long as the returned handles live.
    ///
    /// # Panics
    /// Like [`allocate_blocks`](Self::allocate_blocks), if the manager is
    /// or becomes poisoned.
    pub fn match_blocks(&self, seq_hash: &[SequenceHash]) -> Vec<ImmutableBlock<T>> {
        self.store.match_prefix(seq_hash)
    }

    /// For each hash, in order, its registered block or `None` — no stop at
    /// the first miss, and a hash given twice gets two handles. Takes the
    /// pool's lock once; counts in the `match_*` metrics like
    /// [`match_blocks`](Self::match_blocks).
    ///
    /// # Panics
    /// Like [`allocate_blocks`](Self::allocate_blocks), if the manager is
    /// or becomes poisoned.
    pub fn match_blocks_scattered(
        &self,
        seq_hash: &[SequenceHash],
    ) -> Vec<Option<ImmutableBlock<T>>> {
        self.store.match_scattered(seq_hash)
    }

    /// Every block among `seq_hashes` that is registered, at any position.
    /// `touch` counts the hits for frequency tracking.
    ///
    /// # Panics
    /// Like [`allocate_blocks`](Self::allocate_blocks), if the manager is
    /// or becomes poisoned.
    pub fn scan_matches(
        &self,
        seq_hashes: &[SequenceHash],
        touch: bool,
    ) -> HashMap<SequenceHash, ImmutableBlock<T>> {
        self.store.scan(seq_hashes, touch)
    }

    /// Empties the cache into the free pool, then checks that every block
    /// is back (none held or being filled). The name is kvbm-logical's,
    /// whose "inactive pool" is what kvbm calls the cache.
    ///
    /// # Panics
    /// Like [`allocate_blocks`](Self::allocate_blocks), if the manager is
    /// or becomes poisoned.
    #[doc(alias = "clear_cache")]
    pub fn reset_inactive_pool(&self) -> Result<(), BlockManagerResetError> {
        self.store.free_cached().map_err(|(expected, actual)| {
            BlockManagerResetError::BlockCountMismatch { expected, actual }
        })
    }

    /// The pool's process-unique id.
    pub fn id(&self) -> crate::ManagerId {
        self.store.id()
    }

    /// The number of blocks in the pool.
    pub fn total_blocks(&self) -> usize {
        self.store.block_count()
    }

    /// Blocks that an allocation can get now: free plus cached.
    pub fn available_blocks(&self) -> usize {
        self.store.available()
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.store.block_size()
    }

    /// What registering an already registered hash does.
    pub fn duplication_policy(&self) -> &BlockDuplicationPolicy {
        match self.store.duplication_policy() {
            BlockDuplicationPolicy::Allow => &BlockDuplicationPolicy::Allow,
            BlockDuplicationPolicy::Reject => &BlockDuplicationPolicy::Reject,
        }
    }

    /// The registry the manager reports its hashes to.
    pub fn block_registry(&self) -> &BlockRegistry {
        self.store.registry()
    }

    /// The manager's counters and gauges.
    pub fn metrics(&self) -> &Arc<BlockPoolMetrics> {
        self.store.metrics()
    }

    /// The name of the eviction policy in use (`"lineage"`, `"lru"`, …).
    pub fn eviction_policy(&self) -> &'static str {
        self.store.backend_name()
    }

    /// Why the manager is poisoned, if it is: its eviction backend (or the
    /// frequency tracker it asks) panicked or broke the
    /// [`InactiveBackend`](crate::eviction::InactiveBackend) contract. A
    /// poisoned manager has freed its cached blocks and dropped the backend;
    /// its guards still drop normally, but every call that hands out or
    /// registers blocks (`allocate_blocks*`, `register_block*`,
    /// `match_blocks`, `scan_matches`, `reset_inactive_pool`,
    /// `WeakBlock::upgrade`) panics. Build a new manager.
    pub fn poisoned(&self) -> Option<String> {
        self.store.poisoned()
    }

    /// Checks every internal invariant (free + cached + held = total, the
    /// hash index, the eviction order, the gauges). O(blocks); meant for
    /// tests and debugging.
    pub fn validate(&self) -> Result<(), InvariantViolation> {
        self.store.validate()
    }
}

/// A block offered to a manager that did not allocate it. The blocks come
/// back in the error, unregistered; dropping them returns them to their own
/// pool.
#[derive(Debug, thiserror::Error)]
#[error("block {block_id} was allocated by another BlockManager; register it with that one")]
pub struct ForeignBlockError<B> {
    /// The first block that belongs to another manager.
    pub block_id: BlockId,
    /// Everything that was offered, untouched.
    pub blocks: B,
}

impl<T: BlockMetadata> std::fmt::Debug for BlockManager<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockManager")
            .field("total_blocks", &self.total_blocks())
            .field("block_size", &self.block_size())
            .finish()
    }
}
