//! [`ImmutableBlock`] and [`WeakBlock`]: shared handles on registered blocks.

use std::sync::Arc;

use super::BlockMetadata;
use crate::registry::BlockRegistrationHandle;
use crate::store::{Store, StoreRef};
use crate::{BlockId, SequenceHash};

/// A shared handle on a registered block.
///
/// Clones share the block; cloning is an atomic increment. When the last
/// handle drops, the block becomes *cached*: it stays matchable by its hash
/// until the eviction policy reuses it. (A duplicate block — see
/// [`BlockDuplicationPolicy::Allow`](super::BlockDuplicationPolicy::Allow) —
/// goes back to the free pool instead.)
pub struct ImmutableBlock<T: BlockMetadata> {
    store: StoreRef<T>,
    id: BlockId,
    seq_hash: SequenceHash,
}

impl<T: BlockMetadata> ImmutableBlock<T> {
    /// Wraps a block whose handle count the store has already raised for
    /// this handle.
    pub(crate) fn adopt(store: StoreRef<T>, id: BlockId, seq_hash: SequenceHash) -> Self {
        Self {
            store,
            id,
            seq_hash,
        }
    }

    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.id
    }

    /// The sequence hash the block is registered under.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.store.get().block_size()
    }

    /// The number of live handles on this block (this one included).
    pub fn use_count(&self) -> usize {
        self.store.get().use_count(self.id)
    }

    /// A handle that does not keep the block from being evicted.
    pub fn downgrade(&self) -> WeakBlock<T> {
        let (generation, store) = self.store.get().downgrade(self.id);
        WeakBlock {
            store,
            id: self.id,
            seq_hash: self.seq_hash,
            generation,
        }
    }

    /// The registry handle of the block's sequence hash.
    pub fn registration_handle(&self) -> BlockRegistrationHandle {
        self.store.get().registry().handle_for(self.seq_hash)
    }

    /// Whether the block goes straight back to the free pool (`true`) or to
    /// the cache (`false`) when its last handle — of any clone, pin or
    /// match — drops. One flag per block, shared by every handle; it stays
    /// with the block's contents through the cache and is set back to the
    /// manager's default
    /// ([`with_default_reset_on_release`](crate::manager::BlockManagerConfigBuilder::with_default_reset_on_release))
    /// when the block is reused.
    pub fn set_evict_on_reset(&self, value: bool) {
        self.store.get().set_evict_on_reset(self.id, value);
    }

    /// A type-erased keepalive of this block: holds it like a clone of
    /// this handle does, and names its manager, id and hash.
    pub fn pin(&self) -> super::LifecyclePinRef {
        super::LifecyclePinRef::new(self.clone(), self.store.get().id())
    }
}

impl<T: BlockMetadata> Clone for ImmutableBlock<T> {
    fn clone(&self) -> Self {
        self.store.get().retain(self.id);
        Self {
            store: self.store,
            id: self.id,
            seq_hash: self.seq_hash,
        }
    }
}

impl<T: BlockMetadata> Drop for ImmutableBlock<T> {
    fn drop(&mut self) {
        let store = self.store.get();
        // Not the last handle: one atomic operation, no lock. The store is
        // not touched after it, since the other holders may release
        // everything right after.
        if store.handle_count(self.id).try_release_fast() {
            return;
        }
        // Possibly the last: decide under the lock. The lease, if it ends,
        // is dropped after the store call returns: it may free the store.
        let lease = store.release_last_handle(self.id);
        drop(lease);
    }
}

impl<T: BlockMetadata> std::fmt::Debug for ImmutableBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImmutableBlock")
            .field("block_id", &self.id)
            .field("sequence_hash", &self.seq_hash)
            .finish()
    }
}

/// A handle on a registered block that does not keep it from being evicted.
///
/// [`upgrade`](Self::upgrade) succeeds while the block is held or cached and
/// fails once it was evicted (its slot reused).
pub struct WeakBlock<T: BlockMetadata> {
    store: Arc<Store<T>>,
    id: BlockId,
    seq_hash: SequenceHash,
    generation: u32,
}

impl<T: BlockMetadata> WeakBlock<T> {
    /// A strong handle on the block, reviving it from the cache if needed;
    /// `None` once the block was evicted.
    pub fn upgrade(&self) -> Option<ImmutableBlock<T>> {
        self.store
            .upgrade(self.id, self.seq_hash, self.generation)
            .then(|| ImmutableBlock::adopt(StoreRef::new(&self.store), self.id, self.seq_hash))
    }

    /// The sequence hash of the block.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }

    /// The index the block had in its pool.
    pub fn block_id(&self) -> BlockId {
        self.id
    }
}

impl<T: BlockMetadata> Clone for WeakBlock<T> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            id: self.id,
            seq_hash: self.seq_hash,
            generation: self.generation,
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for WeakBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakBlock")
            .field("block_id", &self.id)
            .field("sequence_hash", &self.seq_hash)
            .finish()
    }
}
