//! [`LifecyclePinRef`]: a keepalive of a registered block that has
//! forgotten the block's tier type.
//!
//! Code that juggles blocks of several managers (say, transfers between
//! tiers in flight) cannot keep a `Vec<ImmutableBlock<T>>` for different
//! `T`s. A pin holds the block exactly like an `ImmutableBlock` does — it
//! stays held, not cached, while any pin or handle lives — and still says
//! where it lives: `(manager_id, block_id)` names the slot, the sequence
//! hash what it holds.

use std::sync::Arc;

use super::{BlockMetadata, ImmutableBlock};
use crate::registry::BlockRegistrationHandle;
use crate::{BlockId, ManagerId, SequenceHash};

/// A registered block seen without its tier type.
pub trait LifecyclePin: Send + Sync {
    /// The block's index in its pool.
    fn block_id(&self) -> BlockId;
    /// The hash the block is registered under.
    fn sequence_hash(&self) -> SequenceHash;
    /// The manager the block belongs to.
    fn manager_id(&self) -> ManagerId;
    /// The registry handle of the block's hash.
    fn registration_handle(&self) -> BlockRegistrationHandle;
}

/// What a pin holds: one handle on the block and where it lives.
struct Pinned<T: BlockMetadata> {
    block: ImmutableBlock<T>,
    manager: ManagerId,
}

impl<T: BlockMetadata> LifecyclePin for Pinned<T> {
    fn block_id(&self) -> BlockId {
        self.block.block_id()
    }

    fn sequence_hash(&self) -> SequenceHash {
        self.block.sequence_hash()
    }

    fn manager_id(&self) -> ManagerId {
        self.manager
    }

    fn registration_handle(&self) -> BlockRegistrationHandle {
        self.block.registration_handle()
    }
}

/// A shared, type-erased keepalive of a registered block, made by
/// [`ImmutableBlock::pin`]: it holds the block like a handle does (held, not
/// cached, while any pin lives) and names its manager, id and hash, so pins
/// of managers of different tiers fit in one list. Cloning is one
/// reference-count increment.
#[derive(Clone)]
pub struct LifecyclePinRef(Arc<dyn LifecyclePin>);

impl LifecyclePinRef {
    pub(crate) fn new<T: BlockMetadata>(block: ImmutableBlock<T>, manager: ManagerId) -> Self {
        Self(Arc::new(Pinned { block, manager }))
    }

    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.0.block_id()
    }

    /// The hash the block is registered under.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.0.sequence_hash()
    }

    /// The manager the block belongs to.
    pub fn manager_id(&self) -> ManagerId {
        self.0.manager_id()
    }

    /// The registry handle of the block's hash.
    pub fn registration_handle(&self) -> BlockRegistrationHandle {
        self.0.registration_handle()
    }

    /// Clones of this pin alive (this one included). Handles and pins made
    /// by other `pin()` calls are not counted; for tests and metrics.
    pub fn use_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl std::fmt::Debug for LifecyclePinRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecyclePinRef")
            .field("manager_id", &self.manager_id())
            .field("block_id", &self.block_id())
            .field("sequence_hash", &self.sequence_hash())
            .finish()
    }
}
