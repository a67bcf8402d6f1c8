//! Eviction policies for cached (inactive) blocks.
//!
//! When the last holder of a registered block lets go, the block stays in the
//! pool as a *cached* block: still matchable by its hash, but free to be
//! reused. An [`InactiveBackend`] decides the order in which cached blocks are
//! reused (evicted). The block store owns the blocks and their hash index; a
//! backend only keeps an order over block ids, usually in arrays indexed by
//! [`BlockId`] sized once at construction, so steady-state operation does not
//! allocate.
//!
//! Adding a policy means adding one file that implements the trait.

mod admission;
mod fifo;
mod lineage;
mod list;
mod lru;
mod multi_lru;
mod policy;

pub use admission::AdmissionBackend;
pub use fifo::FifoBackend;
pub use lineage::LineageBackend;
pub use lru::LruBackend;
pub use multi_lru::{MultiLruBackend, MultiLruConfigError, DEFAULT_FREQUENCY_THRESHOLDS};
pub use policy::{EvictionPolicy, UnknownEvictionPolicy};

use crate::{BlockId, SequenceHash};

/// An eviction order over cached blocks.
///
/// The store calls these methods under its lock, with these guarantees:
/// - `insert` is only called for a block that is not in the backend, and
///   `remove` only for a block that is;
/// - block ids are below the `capacity` the backend was built with;
/// - `hash` is the sequence hash the block is registered under, identical in
///   the `insert` and the matching `remove`.
///
/// In return a backend must hold each inserted block until it is removed,
/// popped or drained; return from `pop_victim` only blocks it holds, and
/// `Some` whenever it holds any; report each held block exactly once from
/// `drain`; and never call back into its manager (it runs under the
/// manager's lock; a call back panics with a message saying so).
///
/// The store does not rely on any of this for memory safety or its own
/// accounting: it checks every block id it is given (in range, cached, not
/// reported twice) and counts cached blocks itself. A backend that panics or
/// breaks the contract *poisons* its manager: the manager frees its cached
/// blocks, drops the backend and re-raises the panic (or panics naming the
/// breach); from then on its guards still drop normally, but every call that
/// hands out or registers blocks panics (see
/// [`BlockManager::poisoned`](crate::manager::BlockManager::poisoned)). What
/// the contract buys is good eviction, not safety.
///
/// The name is kvbm-logical's, whose "inactive pool" is what kvbm calls the
/// cache.
#[doc(alias = "cached")]
pub trait InactiveBackend: Send + 'static {
    /// A short name for logs and reports (`"lru"`, `"lineage"`, …).
    fn name(&self) -> &'static str;

    /// A block was released by its last holder and is now cached.
    fn insert(&mut self, block: BlockId, hash: SequenceHash);

    /// A hint given before a batch of [`insert`](Self::insert)s (a batch
    /// release, see
    /// [`ImmutableBlock::release_all`](crate::ImmutableBlock::release_all)):
    /// `block` will be inserted under `hash` soon. A backend whose inserts
    /// miss the CPU caches (caches of millions of blocks) can start loading
    /// what that insert will touch, so that the misses of the batch
    /// overlap. Must not change what the backend holds; the default does
    /// nothing.
    fn prefetch_insert(&self, block: BlockId, hash: SequenceHash) {
        let _ = (block, hash);
    }

    /// A cached block was revived by a match (or otherwise leaves the cache
    /// without being evicted).
    fn remove(&mut self, block: BlockId, hash: SequenceHash);

    /// Chooses, removes and returns the next block to evict.
    fn pop_victim(&mut self) -> Option<BlockId>;

    /// The number of cached blocks held.
    fn len(&self) -> usize;

    /// Whether no block is cached.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every block, calling `sink` for each.
    fn drain(&mut self, sink: &mut dyn FnMut(BlockId));

    /// Checks the backend's internal invariants; `Err` describes the first
    /// violation. Tests call it after every step.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// "No block" in index-linked lists.
pub(crate) const NIL: u32 = u32::MAX;
