//! [`ImmutableBlock`] and [`WeakBlock`]: shared handles on registered blocks.

use super::BlockMetadata;
use crate::registry::BlockRegistrationHandle;
use crate::store::{FromShare, Share, WeakShare};
use crate::{BlockId, SequenceHash};

/// A shared handle on a registered block.
///
/// Clones share the block; cloning is an atomic increment. When the last
/// handle drops, the block becomes *cached*: it stays matchable by its hash
/// until the eviction policy reuses it. (A duplicate block — see
/// [`BlockDuplicationPolicy::Allow`](super::BlockDuplicationPolicy::Allow) —
/// goes back to the free pool instead, and until then keeps the registered
/// block of its hash held.)
pub struct ImmutableBlock<T: BlockMetadata> {
    /// Its clone and drop count the block's shares (see `store::guard_ops`).
    share: Share<T>,
    seq_hash: SequenceHash,
}

impl<T: BlockMetadata> ImmutableBlock<T> {
    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.share.id()
    }

    /// The sequence hash the block is registered under.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.share.store().block_size()
    }

    /// The number of live handles on this block (this one included): its
    /// clones, matches and pins, plus one for each live duplicate of it
    /// (see [`BlockDuplicationPolicy::Allow`](super::BlockDuplicationPolicy::Allow)).
    pub fn use_count(&self) -> usize {
        self.share.count()
    }

    /// A handle that does not keep the block from being evicted.
    pub fn downgrade(&self) -> WeakBlock<T> {
        WeakBlock {
            weak: self.share.downgrade(self.seq_hash),
        }
    }

    /// The registry handle of the block's sequence hash.
    pub fn registration_handle(&self) -> BlockRegistrationHandle {
        self.share.store().registry().handle_for(self.seq_hash)
    }

    /// Whether the block goes straight back to the free pool (`true`) or to
    /// the cache (`false`) when its last handle — of any clone, pin or
    /// match — drops. One flag per block, shared by every handle; it stays
    /// with the block's contents through the cache and is set back to the
    /// manager's default
    /// ([`with_default_reset_on_release`](crate::manager::BlockManagerConfigBuilder::with_default_reset_on_release))
    /// when the block is reused.
    pub fn set_evict_on_reset(&self, value: bool) {
        self.share.set_evict_on_reset(value);
    }

    /// A type-erased keepalive of this block: holds it like a clone of
    /// this handle does, and names its manager, id and hash.
    pub fn pin(&self) -> super::LifecyclePinRef {
        super::LifecyclePinRef::new(self.clone(), self.share.store().id())
    }
}

impl<T: BlockMetadata> ImmutableBlock<T> {
    /// Drops `blocks` in order, exactly as dropping them one by one would,
    /// but faster: the blocks of each run of consecutive blocks from one
    /// manager are given back under one lock, and with caches far larger
    /// than the CPU's, their memory accesses overlap instead of waiting for
    /// each other. What a request or sequence that gives back all its
    /// blocks at once (a finished or preempted request) should call.
    ///
    /// ```
    /// use kvbm::{BlockManager, ImmutableBlock, SequenceHash};
    ///
    /// let manager = BlockManager::<()>::builder().block_count(4).block_size(4).build()?;
    /// let hashes = [SequenceHash::root(1), SequenceHash::root(2)];
    /// let staged = manager
    ///     .allocate_blocks(2)
    ///     .unwrap()
    ///     .into_iter()
    ///     .zip(hashes)
    ///     .map(|(block, hash)| block.stage(hash, 4).unwrap())
    ///     .collect();
    /// let blocks = manager.register_blocks(staged);
    /// ImmutableBlock::release_all(blocks);
    /// // Cached, not freed: a match finds them again.
    /// assert_eq!(manager.match_blocks(&hashes).len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_all(blocks: Vec<ImmutableBlock<T>>) {
        Self::release_iter(blocks.into_iter());
    }

    /// [`release_all`](Self::release_all) of an iterator of the crate's
    /// own (it is advanced under the store lock, where no user code may
    /// run).
    pub(crate) fn release_iter(blocks: impl Iterator<Item = ImmutableBlock<T>>) {
        crate::store::release_shares(blocks.map(|b| b.share));
    }
}

impl<T: BlockMetadata> Clone for ImmutableBlock<T> {
    fn clone(&self) -> Self {
        Self {
            share: self.share.clone(),
            seq_hash: self.seq_hash,
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for ImmutableBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImmutableBlock")
            .field("block_id", &self.block_id())
            .field("sequence_hash", &self.seq_hash)
            .finish()
    }
}

/// A handle on a registered block that does not keep it from being evicted.
///
/// [`upgrade`](Self::upgrade) succeeds while the block is held or cached and
/// fails once it was evicted (its slot reused), or once its manager and
/// every guard of it are gone: a weak handle does not keep the pool alive.
pub struct WeakBlock<T: BlockMetadata> {
    /// Knows the block's id and hash (see `store::guard_ops`).
    weak: WeakShare<T>,
}

impl<T: BlockMetadata> WeakBlock<T> {
    /// A strong handle on the block, reviving it from the cache if needed;
    /// `None` once the block was evicted or its pool is gone.
    ///
    /// # Panics
    /// If the manager is poisoned (see
    /// [`BlockManager::poisoned`](crate::manager::BlockManager::poisoned)).
    pub fn upgrade(&self) -> Option<ImmutableBlock<T>> {
        let share = self.weak.upgrade()?;
        Some(ImmutableBlock {
            share,
            seq_hash: self.weak.hash(),
        })
    }

    /// The sequence hash of the block.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.weak.hash()
    }

    /// The index the block had in its pool.
    pub fn block_id(&self) -> BlockId {
        self.weak.id()
    }
}

impl<T: BlockMetadata> Clone for WeakBlock<T> {
    fn clone(&self) -> Self {
        Self {
            weak: self.weak.clone(),
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for WeakBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakBlock")
            .field("block_id", &self.block_id())
            .field("sequence_hash", &self.sequence_hash())
            .finish()
    }
}

// The guards are as small as before the store took over their protocol:
// a store pointer, an id and a hash (and a generation for the weak one).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<ImmutableBlock<()>>() == 32);
    assert!(std::mem::size_of::<WeakBlock<()>>() == 48);
};

impl<T: BlockMetadata> FromShare<T> for ImmutableBlock<T> {
    fn from_share(share: Share<T>, seq_hash: SequenceHash) -> Self {
        Self { share, seq_hash }
    }

    fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }
}
