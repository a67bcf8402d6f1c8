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

use crate::block_slot::Slot;
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
/// # Reading hashes from the store
/// The store calls the `_with_hashes` forms of the methods, which also give
/// read access to the hash of every block the backend holds
/// ([`BlockHashes`]), so that a backend that needs a block's hash after
/// `insert` (the lineage backend resolves parents and children through
/// them) can read it from the store instead of keeping a copy per block.
/// Each defaults to the plain method, so a backend that keeps what it needs
/// itself implements only the plain ones. A backend that wraps another must
/// forward either all `_with_hashes` forms or none.
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
    /// [`ImmutableBlock::release_all`](crate::ImmutableBlock::release_all)),
    /// and, in pools of 2^16 blocks or more, when blocks are registered
    /// (they are inserted when their last holder lets go): `block` will be
    /// inserted under `hash` soon. A backend whose inserts
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

    /// Called after the last [`pop_victim`](Self::pop_victim) of one
    /// allocation, which may evict many blocks in a row. A backend may put
    /// off bookkeeping of its evictions that the next choice does not need
    /// (so that its cache misses overlap those of the next victims) and
    /// finish it here — and before any other call that needs it, since a
    /// caller without a store need not call this. The default does nothing.
    fn evictions_done(&mut self) {}

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

    /// [`insert`](Self::insert), with the hashes of the blocks held (this
    /// one included).
    fn insert_with_hashes(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        let _ = hashes;
        self.insert(block, hash);
    }

    /// [`remove`](Self::remove), with the hashes of the blocks held (this
    /// one included).
    fn remove_with_hashes(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        let _ = hashes;
        self.remove(block, hash);
    }

    /// [`pop_victim`](Self::pop_victim), with the hashes of the blocks held.
    fn pop_victim_with_hashes(&mut self, hashes: BlockHashes<'_>) -> Option<BlockId> {
        let _ = hashes;
        self.pop_victim()
    }

    /// [`drain`](Self::drain), with the hashes of the blocks held; they
    /// stay readable until `drain` returns.
    fn drain_with_hashes(&mut self, sink: &mut dyn FnMut(BlockId), hashes: BlockHashes<'_>) {
        let _ = hashes;
        self.drain(sink);
    }

    /// [`validate`](Self::validate), with the hashes of the blocks held.
    fn validate_with_hashes(&self, hashes: BlockHashes<'_>) -> Result<(), String> {
        let _ = hashes;
        self.validate()
    }
}

/// Read access to the sequence hashes of the blocks an [`InactiveBackend`]
/// holds: what the store passes to the `_with_hashes` methods, valid for
/// the duration of the call.
///
/// ```
/// use kvbm::eviction::BlockHashes;
/// use kvbm::SequenceHash;
///
/// // A backend's tests can stand in for the store with a slice by block id.
/// let hashes = [SequenceHash::root(1), SequenceHash::root(2)];
/// let view = BlockHashes::from_slice(&hashes);
/// assert_eq!(view.get(1), Some(hashes[1]));
/// assert_eq!(view.get(2), None);
/// ```
#[derive(Clone, Copy)]
pub struct BlockHashes<'a> {
    source: HashSource<'a>,
}

/// Read straight from the store's slots, not through a trait object: the
/// lineage backend reads a hash on every key-table probe, and an inlined
/// read there is what keeps it as fast as when it kept its own copy.
#[derive(Clone, Copy)]
enum HashSource<'a> {
    Store(&'a [Slot]),
    Slice(&'a [SequenceHash]),
}

impl<'a> BlockHashes<'a> {
    /// The hashes of a store's cached blocks.
    pub(crate) fn from_store(slots: &'a [Slot]) -> Self {
        BlockHashes {
            source: HashSource::Store(slots),
        }
    }

    /// Hashes by block id, for a backend used without a store (tests, or
    /// a backend that wraps another and keeps the hashes itself).
    pub fn from_slice(hashes: &'a [SequenceHash]) -> Self {
        BlockHashes {
            source: HashSource::Slice(hashes),
        }
    }

    /// The hash `block` is cached under. `None` for a block the store does
    /// not hold as cached (never for a block the backend holds); a slice
    /// answers for every id it covers.
    #[inline]
    pub fn get(&self, block: BlockId) -> Option<SequenceHash> {
        match self.source {
            HashSource::Store(slots) => slots.get(block).and_then(Slot::cached_hash),
            HashSource::Slice(hashes) => hashes.get(block).copied(),
        }
    }

    /// Hints that `block`'s hash will be read soon (a large cache's
    /// backend knowing its next victim's parent, say).
    #[inline]
    pub(crate) fn prefetch(&self, block: BlockId) {
        match self.source {
            HashSource::Store(slots) => {
                if let Some(slot) = slots.get(block) {
                    crate::prefetch::prefetch(slot);
                }
            }
            HashSource::Slice(hashes) => {
                if let Some(hash) = hashes.get(block) {
                    crate::prefetch::prefetch(hash);
                }
            }
        }
    }
}

impl std::fmt::Debug for BlockHashes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            HashSource::Store(_) => "store",
            HashSource::Slice(_) => "slice",
        };
        f.debug_struct("BlockHashes")
            .field("source", &source)
            .finish()
    }
}

/// "No block" in index-linked lists.
pub(crate) const NIL: u32 = u32::MAX;
