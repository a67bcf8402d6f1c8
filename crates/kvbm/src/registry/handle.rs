//! [`BlockRegistrationHandle`]: a shared, cheap-to-clone view of one
//! registered sequence hash.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use super::attachments::AttachmentError;
use super::extras::LazyExtras;
use super::typed::TypedAttachments;
use super::{BlockRegistry, RegistryInner};
use crate::SequenceHash;

/// A handle on a sequence hash in a [`BlockRegistry`].
///
/// Handles are created on demand: the registry tracks hashes without
/// allocating one per block, and materialises a handle the first time one is
/// asked for. While any block holds the hash the registry keeps the handle
/// (and everything attached to it) alive; once no block of any tier holds the
/// hash and no caller holds a handle, the registration goes away and the
/// attached values are dropped.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use kvbm::{BlockRegistry, SequenceHash};
///
/// let registry = BlockRegistry::new();
/// let handle = registry.register_sequence_hash(SequenceHash::root(3));
///
/// // Values of a type are attached either once, as a unique value, …
/// handle.attach_unique(42_u64).unwrap();
/// assert!(handle.attach_unique(43_u64).is_err());
/// // … or any number of times.
/// handle.attach("first").unwrap();
/// handle.attach("second").unwrap();
/// let names = handle.get::<&str>().with_multiple(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
/// assert_eq!(names, ["first", "second"]);
///
/// // Callbacks run on every touch, with the handle's hash.
/// let touched = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&touched);
/// handle.on_touch(Arc::new(move |_hash| {
///     counter.fetch_add(1, Ordering::Relaxed);
/// }));
/// handle.touch();
/// assert_eq!(touched.load(Ordering::Relaxed), 1);
/// ```
#[derive(Clone)]
pub struct BlockRegistrationHandle {
    pub(super) inner: Arc<HandleInner>,
}

pub(super) struct HandleInner {
    pub(super) seq_hash: SequenceHash,
    pub(super) registry: Weak<RegistryInner>,
    pub(super) extras: LazyExtras,
}

impl HandleInner {
    pub(super) fn new(seq_hash: SequenceHash, registry: Weak<RegistryInner>) -> Self {
        Self {
            seq_hash,
            registry,
            extras: LazyExtras::default(),
        }
    }
}

impl BlockRegistrationHandle {
    /// The sequence hash this handle stands for.
    pub fn seq_hash(&self) -> SequenceHash {
        self.inner.seq_hash
    }

    /// Whether this handle was issued by `registry`.
    pub fn is_from_registry(&self, registry: &BlockRegistry) -> bool {
        std::ptr::eq(self.inner.registry.as_ptr(), Arc::as_ptr(&registry.inner))
    }

    /// Whether a block of tier `T` currently holds this hash (held or cached).
    pub fn has_block<T: 'static>(&self) -> bool {
        self.has_any_block(&[TypeId::of::<T>()])
    }

    /// Whether a block of any of the tiers `type_ids` holds this hash.
    pub fn has_any_block(&self, type_ids: &[TypeId]) -> bool {
        self.inner.registry.upgrade().is_some_and(|r| {
            let tiers = r.tier_mask(type_ids);
            r.present_in_any(self.inner.seq_hash, tiers)
        })
    }

    /// Attaches `value` as the one value of type `V`.
    ///
    /// Fails if a value of type `V` is already attached, whether unique
    /// ([`AttachmentError::TypeAlreadyRegisteredAsUnique`]) or through
    /// [`attach`](Self::attach)
    /// ([`AttachmentError::TypeAlreadyRegisteredAsMultiple`]); `value` is
    /// dropped in that case.
    ///
    /// The value lives as long as the registration. A value that holds a
    /// handle of this same hash (directly or through a block) keeps the
    /// registration alive for good, like any reference cycle.
    pub fn attach_unique<V: Any + Send + Sync>(&self, value: V) -> Result<(), AttachmentError> {
        let ty = TypeId::of::<V>();
        self.inner
            .extras
            .with(|e| e.attachments.insert_unique(ty, Box::new(value)))
    }

    /// Adds `value` to the values of type `V`; a type may hold any number of
    /// them.
    ///
    /// Fails with [`AttachmentError::TypeAlreadyRegisteredAsUnique`] if `V`
    /// holds a value from [`attach_unique`](Self::attach_unique); `value` is
    /// dropped in that case.
    pub fn attach<V: Any + Send + Sync>(&self, value: V) -> Result<(), AttachmentError> {
        let ty = TypeId::of::<V>();
        self.inner
            .extras
            .with(|e| e.attachments.push_multiple(ty, Box::new(value)))
    }

    /// Access to the values of type `V` attached to this handle.
    pub fn get<V: Any + Send + Sync>(&self) -> TypedAttachments<'_, V> {
        TypedAttachments {
            handle: self,
            _type: PhantomData,
        }
    }

    /// Registers `callback` to run, with this handle's hash, on every
    /// [`touch`](Self::touch) of any handle of the same registration.
    pub fn on_touch(&self, callback: Arc<dyn Fn(SequenceHash) + Send + Sync>) {
        self.inner.extras.push_callback(callback);
    }

    /// Signals a use of this hash: counts it in the registry's frequency
    /// tracker, where one is configured, and runs the callbacks registered
    /// with [`on_touch`](Self::on_touch), in registration order.
    ///
    /// No lock is held while the callbacks run, so they may use the
    /// registry and this handle. Callbacks registered while a touch is
    /// running are first run by the next touch.
    pub fn touch(&self) {
        let seq_hash = self.inner.seq_hash;
        if let Some(registry) = self.inner.registry.upgrade() {
            registry.touch_hash(seq_hash);
        }
        if let Some(callbacks) = self.inner.extras.callbacks() {
            for callback in callbacks.iter() {
                callback(seq_hash);
            }
        }
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
        // for it. The attachments are dropped after this, with no registry
        // lock held.
        if let Some(registry) = self.registry.upgrade() {
            registry.forget_if_unused(self.seq_hash);
        }
    }
}
