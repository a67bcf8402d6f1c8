//! [`BlockRegistrationHandle`]: a shared, cheap-to-clone view of one
//! registered sequence hash.

use std::sync::{Arc, Weak};

use super::{RegistryInner, TierId};
use crate::SequenceHash;

/// A handle on a sequence hash in a [`BlockRegistry`](super::BlockRegistry).
///
/// Handles are created on demand: the registry tracks hashes without
/// allocating one per block, and materialises a handle the first time one is
/// asked for. While any block holds the hash the registry keeps the handle
/// (and everything attached to it) alive; once no block of any tier holds the
/// hash and no caller holds a handle, the registration goes away.
#[derive(Clone)]
pub struct BlockRegistrationHandle {
    pub(super) inner: Arc<HandleInner>,
}

pub(super) struct HandleInner {
    pub(super) seq_hash: SequenceHash,
    pub(super) registry: Weak<RegistryInner>,
}

impl BlockRegistrationHandle {
    /// The sequence hash this handle stands for.
    pub fn seq_hash(&self) -> SequenceHash {
        self.inner.seq_hash
    }

    /// Whether this handle was issued by `registry`.
    pub fn is_from_registry(&self, registry: &super::BlockRegistry) -> bool {
        std::ptr::eq(self.inner.registry.as_ptr(), Arc::as_ptr(&registry.inner))
    }

    /// Whether a block of tier `T` currently holds this hash (held or cached).
    pub fn has_block<T: 'static>(&self) -> bool {
        self.inner.registry.upgrade().is_some_and(|r| {
            r.tier_of(std::any::TypeId::of::<T>())
                .is_some_and(|tier| r.present_in(self.inner.seq_hash, tier))
        })
    }

    /// Whether a block of any of the tiers `type_ids` holds this hash.
    pub fn has_any_block(&self, type_ids: &[std::any::TypeId]) -> bool {
        self.inner.registry.upgrade().is_some_and(|r| {
            type_ids.iter().any(|t| {
                r.tier_of(*t)
                    .is_some_and(|tier: TierId| r.present_in(self.inner.seq_hash, tier))
            })
        })
    }
}

impl std::fmt::Debug for BlockRegistrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockRegistrationHandle")
            .field("seq_hash", &self.inner.seq_hash)
            .finish()
    }
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        // The last handle is gone: the registration may have been kept only
        // for it.
        if let Some(registry) = self.registry.upgrade() {
            registry.forget_if_unused(self.seq_hash);
        }
    }
}
