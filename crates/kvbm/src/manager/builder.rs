//! [`BlockManagerConfigBuilder`]: validated construction of a manager.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use super::BlockManager;
use crate::blocks::{BlockDuplicationPolicy, BlockMetadata};
use crate::eviction::{
    AdmissionBackend, EvictionPolicy, FifoBackend, InactiveBackend, LineageBackend, LruBackend,
    MultiLruBackend,
};
use crate::metrics::{BlockPoolMetrics, MetricsAggregator};
use crate::registry::BlockRegistry;
use crate::store::{Reserved, Store, StoreConfig};
use crate::tinylfu::FrequencyTrackingCapacity;

/// Block size used when none is set.
pub const DEFAULT_BLOCK_SIZE: usize = 16;

/// Largest supported block size in tokens.
pub const MAX_BLOCK_SIZE: usize = 1024;

/// Builds the built-in backend for `policy`.
fn builtin_backend(
    policy: EvictionPolicy,
    block_count: usize,
    registry: &BlockRegistry,
) -> Result<Box<dyn InactiveBackend>, BlockManagerBuilderError> {
    Ok(match policy {
        EvictionPolicy::Lru => Box::new(LruBackend::new(block_count)),
        EvictionPolicy::Lineage => Box::new(LineageBackend::new(block_count)),
        EvictionPolicy::Fifo => Box::new(FifoBackend::new(block_count)),
        EvictionPolicy::Admission => Box::new(AdmissionBackend::new(block_count)),
        EvictionPolicy::MultiLru { thresholds } => {
            let tracker = registry.frequency_tracker().ok_or_else(|| {
                BlockManagerBuilderError::InvalidBackend(
                    "the multi-LRU backend needs a registry with a frequency tracker".into(),
                )
            })?;
            let backend = MultiLruBackend::new(block_count, thresholds, tracker)
                .map_err(|e| BlockManagerBuilderError::InvalidBackend(e.to_string()))?;
            Box::new(backend)
        }
    })
}

/// Why a [`BlockManager`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockManagerBuilderError {
    /// `block_count` was not set or was zero.
    #[error("block count must be set and greater than 0")]
    InvalidBlockCount,
    /// `block_size` was zero, above 1024 or not a power of two.
    #[error("invalid block size {size}: must be a power of two between 1 and {MAX_BLOCK_SIZE}")]
    InvalidBlockSize {
        /// The rejected size.
        size: usize,
    },
    /// The eviction backend cannot be built as configured.
    #[error("invalid inactive backend configuration: {0}")]
    InvalidBackend(String),
    /// Any other invalid setting.
    #[error("invalid configuration: {0}")]
    ValidationError(String),
}

/// Why [`BlockManager::reset_inactive_pool`] did not get every block back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockManagerResetError {
    /// Blocks are still held (or being filled) after the cache was emptied.
    #[error(
        "after emptying the cache {actual} of {expected} blocks are free; the rest are still held"
    )]
    BlockCountMismatch {
        /// Blocks in the pool.
        expected: usize,
        /// Blocks free after the reset.
        actual: usize,
    },
}

/// Builder for a [`BlockManager`]; start from [`BlockManager::builder`].
///
/// Every setting is checked in [`build`](Self::build), which reports bad
/// values as errors rather than panicking.
pub struct BlockManagerConfigBuilder<T: BlockMetadata> {
    block_count: Option<usize>,
    block_size: usize,
    registry: Option<BlockRegistry>,
    duplication_policy: BlockDuplicationPolicy,
    /// The built-in policy, with its settings.
    policy: EvictionPolicy,
    custom_backend: Option<BackendFactory>,
    aggregator: Option<MetricsAggregator>,
    /// The metrics' `pool` label; the tier type's short name when unset.
    metrics_label: Option<String>,
    /// Size of the tracker the builder gives its own registry.
    tracker_capacity: FrequencyTrackingCapacity,
    default_evict_on_reset: bool,
    _tier: PhantomData<fn() -> T>,
}

/// Builds a caller-supplied backend for a pool of the given block count.
type BackendFactory = Box<dyn FnOnce(usize) -> Box<dyn InactiveBackend>>;

impl<T: BlockMetadata> Default for BlockManagerConfigBuilder<T> {
    fn default() -> Self {
        Self {
            block_count: None,
            block_size: DEFAULT_BLOCK_SIZE,
            registry: None,
            duplication_policy: BlockDuplicationPolicy::default(),
            policy: EvictionPolicy::default(),
            custom_backend: None,
            aggregator: None,
            metrics_label: None,
            tracker_capacity: FrequencyTrackingCapacity::default(),
            default_evict_on_reset: false,
            _tier: PhantomData,
        }
    }
}

impl<T: BlockMetadata> BlockManagerConfigBuilder<T> {
    /// A builder with default settings (block size 16, lineage eviction,
    /// duplicates allowed, a private registry without frequency tracking).
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of blocks in the pool (required, > 0).
    pub fn block_count(mut self, count: usize) -> Self {
        self.block_count = Some(count);
        self
    }

    /// Tokens per block: a power of two in 1..=1024 (default 16). A bad
    /// value makes [`build`](Self::build) fail.
    pub fn block_size(mut self, size: usize) -> Self {
        self.block_size = size;
        self
    }

    /// What registering an already registered hash does (default
    /// [`BlockDuplicationPolicy::Allow`]).
    pub fn duplication_policy(mut self, policy: BlockDuplicationPolicy) -> Self {
        self.duplication_policy = policy;
        self
    }

    /// The registry to report hashes to, for sharing one between the
    /// managers of several tiers. Without it the manager gets its own, with
    /// a frequency tracker (see
    /// [`frequency_tracking_capacity`](Self::frequency_tracking_capacity))
    /// when the eviction policy needs one. A registry given here is used as is:
    /// multi-LRU over a registry without a tracker fails to build.
    pub fn registry(mut self, registry: BlockRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Chooses the eviction policy by value, with its settings (multi-LRU's
    /// thresholds travel in [`EvictionPolicy::MultiLru`]); the matching
    /// `with_*_backend` methods are shorthands for this.
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Orders cached blocks with a backend of your own: `make` gets the
    /// pool's block count and returns the backend (block ids passed to it
    /// are below that count). Overrides the built-in policies.
    ///
    /// ```
    /// use kvbm::eviction::{InactiveBackend, LruBackend};
    /// use kvbm::manager::BlockManager;
    ///
    /// let m = BlockManager::<()>::builder()
    ///     .block_count(8)
    ///     .with_inactive_backend(|blocks| Box::new(LruBackend::new(blocks)))
    ///     .build()?;
    /// assert_eq!(m.eviction_policy(), "lru");
    /// # Ok::<(), kvbm::manager::BlockManagerBuilderError>(())
    /// ```
    pub fn with_inactive_backend(
        mut self,
        make: impl FnOnce(usize) -> Box<dyn InactiveBackend> + 'static,
    ) -> Self {
        self.custom_backend = Some(Box::new(make));
        self
    }

    /// Evicts the least recently released cached block first.
    pub fn with_lru_backend(self) -> Self {
        self.eviction_policy(EvictionPolicy::Lru)
    }

    /// Evicts from four LRU tiers split by the blocks' TinyLFU access counts
    /// at thresholds 3, 8 and 15, coldest tier first. Counts accesses with
    /// the registry's frequency tracker: the manager's own registry gets one;
    /// a registry passed to [`registry`](Self::registry) must have one (see
    /// [`BlockRegistryBuilder::frequency_tracker`](crate::registry::BlockRegistryBuilder::frequency_tracker)).
    pub fn with_multi_lru_backend(self) -> Self {
        self.eviction_policy(EvictionPolicy::MULTI_LRU)
    }

    /// Multi-LRU with custom tier thresholds; they must strictly increase,
    /// start above 0 and not exceed 15, or [`build`](Self::build) fails.
    pub fn with_multi_lru_backend_custom_thresholds(self, t1: u8, t2: u8, t3: u8) -> Self {
        self.eviction_policy(EvictionPolicy::MultiLru {
            thresholds: [t1, t2, t3],
        })
    }

    /// Evicts only leaves of the cached prefix tree — a cached parent stays
    /// while a cached child depends on it — least recently released leaf
    /// first (a parent whose last child left keeps its own release time).
    /// The default: a prefix is only useful from its root, so dropping a
    /// root while its descendants stay cached would waste all of them.
    pub fn with_lineage_backend(self) -> Self {
        self.eviction_policy(EvictionPolicy::Lineage)
    }

    /// Evicts in release order, first released first (kvbm-logical's
    /// "hashmap" backend with FIFO reuse).
    pub fn with_hashmap_backend(self) -> Self {
        self.eviction_policy(EvictionPolicy::Fifo)
    }

    /// Evicts with frequency-gated admission: released blocks enter a small
    /// recency window and move on to the main (segmented LRU) cache only if
    /// their hash was seen more often than the block they would displace,
    /// so blocks used once leave before shared prefixes. The backend keeps
    /// its own bounded access-count sketch (it needs no frequency tracker)
    /// and tunes the window's share to the hit rate it observes.
    pub fn with_admission_backend(self) -> Self {
        self.eviction_policy(EvictionPolicy::Admission)
    }

    /// The size of the frequency tracker the builder creates when the
    /// policy needs one and no [`registry`](Self::registry) is given
    /// (default [`FrequencyTrackingCapacity::Medium`]); otherwise unused.
    pub fn frequency_tracking_capacity(mut self, capacity: FrequencyTrackingCapacity) -> Self {
        self.tracker_capacity = capacity;
        self
    }

    /// The `pool` label of the manager's metrics (default: the short name
    /// of the tier type `T`, e.g. `Device`). Lets managers of one tier type
    /// export distinct series through one aggregator.
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.metrics_label = Some(label.into());
        self
    }

    /// Registers the manager's metrics with `aggregator` for Prometheus
    /// export.
    pub fn aggregator(mut self, aggregator: MetricsAggregator) -> Self {
        self.aggregator = Some(aggregator);
        self
    }

    /// Whether registered blocks go back to the free pool instead of the
    /// cache when their last handle drops, unless
    /// [`ImmutableBlock::set_evict_on_reset`](crate::ImmutableBlock::set_evict_on_reset)
    /// says otherwise for a block. Default `false`: blocks are cached.
    pub fn with_default_reset_on_release(mut self, value: bool) -> Self {
        self.default_evict_on_reset = value;
        self
    }

    /// Checks the settings and builds the manager.
    pub fn build(self) -> Result<BlockManager<T>, BlockManagerBuilderError> {
        let block_count = match self.block_count {
            Some(n) if n > 0 => n,
            _ => return Err(BlockManagerBuilderError::InvalidBlockCount),
        };
        if block_count >= u32::MAX as usize {
            return Err(BlockManagerBuilderError::ValidationError(format!(
                "block count {block_count} exceeds the supported maximum of {}",
                u32::MAX - 1
            )));
        }
        let size = self.block_size;
        if !(1..=MAX_BLOCK_SIZE).contains(&size) || !size.is_power_of_two() {
            return Err(BlockManagerBuilderError::InvalidBlockSize { size });
        }
        let registry = match self.registry {
            Some(registry) => registry,
            // A registry of our own: give it what the built-in policy needs.
            None if self.custom_backend.is_none() && self.policy.needs_frequency_tracker() => {
                BlockRegistry::builder()
                    .frequency_tracker(self.tracker_capacity.create_tracker())
                    .build()
            }
            None => BlockRegistry::default(),
        };
        let tier = registry
            .tier_for(TypeId::of::<T>())
            .map_err(|e| BlockManagerBuilderError::ValidationError(e.to_string()))?;
        // The store's own memory first, fallibly: it is the largest part,
        // so a block count too large for this machine is an error here
        // rather than an abort in the backend or the index.
        let memory = Reserved::try_new(block_count).map_err(|e| {
            BlockManagerBuilderError::ValidationError(format!(
                "block count {block_count} is too large for this machine: {e}"
            ))
        })?;
        // With an events manager the registry counts every block-held hash:
        // room for them now, so filling the cache never rehashes its map
        // (without one it keeps no per-block entry and this is a no-op).
        registry.reserve_presence(block_count).map_err(|e| {
            BlockManagerBuilderError::ValidationError(format!(
                "block count {block_count} is too large for this machine: {e}"
            ))
        })?;
        let backend: Box<dyn InactiveBackend> = match self.custom_backend {
            Some(make) => make(block_count),
            None => builtin_backend(self.policy, block_count, &registry)?,
        };
        let label = self
            .metrics_label
            .unwrap_or_else(|| crate::metrics::short_type_name::<T>());
        let metrics = Arc::new(BlockPoolMetrics::new(label));

        if let Some(aggregator) = &self.aggregator {
            aggregator.register_source(Arc::clone(&metrics));
        }
        let store = Store::new(
            memory,
            StoreConfig {
                block_size: size,
                duplication_policy: self.duplication_policy,
                backend,
                registry,
                tier,
                metrics,
                default_evict_on_reset: self.default_evict_on_reset,
            },
        );
        Ok(BlockManager { store })
    }
}
