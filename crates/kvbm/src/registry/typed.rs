//! [`TypedAttachments`]: read and update the values of one attached type.

use std::any::{Any, TypeId};
use std::marker::PhantomData;

use super::attachments::{AttachedValues, Erased};
use super::BlockRegistrationHandle;

/// Access to the values of type `V` attached to a handle.
///
/// Obtained from [`BlockRegistrationHandle::get`]. Every method locks the
/// handle's attachments for the duration of the closure, so the closure
/// must not attach to, or read attachments of, the same handle (that would
/// deadlock); it may use the registry and other handles.
///
/// ```
/// use kvbm::{BlockRegistry, SequenceHash};
///
/// let registry = BlockRegistry::new();
/// let handle = registry.register_sequence_hash(SequenceHash::root(1));
/// handle.attach_unique(String::from("owner")).unwrap();
/// handle.attach(7_u32).unwrap();
/// handle.attach(8_u32).unwrap();
///
/// assert_eq!(handle.get::<String>().with_unique(|s| s.len()), Some(5));
/// assert_eq!(handle.get::<u32>().with_multiple(|v| v.len()), 2);
/// handle.get::<u32>().with_multiple_mut(|v| v.iter_mut().for_each(|x| **x += 1));
/// let sum = handle.get::<u32>().with_all(|unique, many| {
///     assert!(unique.is_none());
///     many.iter().copied().sum::<u32>()
/// });
/// assert_eq!(sum, 17);
/// ```
pub struct TypedAttachments<'a, V> {
    pub(super) handle: &'a BlockRegistrationHandle,
    pub(super) _type: PhantomData<fn() -> V>,
}

impl<V: Any + Send + Sync> TypedAttachments<'_, V> {
    /// Runs `f` on the unique value of type `V`; `None` if there is none.
    pub fn with_unique<R>(&self, f: impl FnOnce(&V) -> R) -> Option<R> {
        let store = self.handle.inner.extras.attachments()?;
        match store.values_of(TypeId::of::<V>())? {
            AttachedValues::Unique(value) => value.downcast_ref::<V>().map(f),
            AttachedValues::Multiple(_) => None,
        }
    }

    /// Runs `f` on the unique value of type `V`, mutably; `None` if there is
    /// none.
    pub fn with_unique_mut<R>(&self, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut store = self.handle.inner.extras.attachments()?;
        match store.values_of_mut(TypeId::of::<V>())? {
            AttachedValues::Unique(value) => value.downcast_mut::<V>().map(f),
            AttachedValues::Multiple(_) => None,
        }
    }

    /// Runs `f` on the values of type `V` added with
    /// [`attach`](BlockRegistrationHandle::attach), in attach order (empty if
    /// there are none).
    pub fn with_multiple<R>(&self, f: impl FnOnce(&[&V]) -> R) -> R {
        self.with_all(|_, many| f(many))
    }

    /// Runs `f` on the values of type `V` added with
    /// [`attach`](BlockRegistrationHandle::attach), mutably.
    pub fn with_multiple_mut<R>(&self, f: impl FnOnce(&mut [&mut V]) -> R) -> R {
        self.with_all_mut(|_, many| f(many))
    }

    /// Runs `f` on the unique value and the multiple values of type `V`.
    ///
    /// A type is held in one mode only, so at most one of the two arguments
    /// is non-empty.
    pub fn with_all<R>(&self, f: impl FnOnce(Option<&V>, &[&V]) -> R) -> R {
        let store = self.handle.inner.extras.attachments();
        match store
            .as_deref()
            .and_then(|s| s.values_of(TypeId::of::<V>()))
        {
            Some(AttachedValues::Unique(value)) => f(value.downcast_ref::<V>(), &[]),
            Some(AttachedValues::Multiple(values)) => f(None, &refs::<V>(values)),
            None => f(None, &[]),
        }
    }

    /// Runs `f` on the unique value and the multiple values of type `V`,
    /// mutably.
    pub fn with_all_mut<R>(&self, f: impl FnOnce(Option<&mut V>, &mut [&mut V]) -> R) -> R {
        let mut store = self.handle.inner.extras.attachments();
        match store
            .as_deref_mut()
            .and_then(|s| s.values_of_mut(TypeId::of::<V>()))
        {
            Some(AttachedValues::Unique(value)) => f(value.downcast_mut::<V>(), &mut []),
            Some(AttachedValues::Multiple(values)) => f(None, &mut refs_mut::<V>(values)),
            None => f(None, &mut []),
        }
    }
}

impl<V> std::fmt::Debug for TypedAttachments<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedAttachments")
            .field("type", &std::any::type_name::<V>())
            .field("seq_hash", &self.handle.seq_hash())
            .finish()
    }
}

fn refs<V: Any>(values: &[Erased]) -> Vec<&V> {
    values
        .iter()
        .filter_map(|v| v.downcast_ref::<V>())
        .collect()
}

fn refs_mut<V: Any>(values: &mut [Erased]) -> Vec<&mut V> {
    values
        .iter_mut()
        .filter_map(|v| v.downcast_mut::<V>())
        .collect()
}
