//! Typed values attached to a registration handle.
//!
//! Each attached type is held in one of two modes, fixed by the first
//! attach of that type: a single *unique* value, or a list of *multiple*
//! values. A handle rarely carries more than a few types, so the store is a
//! short list searched linearly.

use std::any::{Any, TypeId};

/// A value stored on a handle, type-erased.
pub(super) type Erased = Box<dyn Any + Send + Sync>;

/// Why a value could not be attached to a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The type already holds values attached with
    /// [`attach`](super::BlockRegistrationHandle::attach), so it cannot take
    /// a unique value.
    #[error("attachment type {0:?} already holds multiple values")]
    TypeAlreadyRegisteredAsMultiple(TypeId),
    /// The type already holds a unique value (from
    /// [`attach_unique`](super::BlockRegistrationHandle::attach_unique)), so
    /// it takes neither a second unique value nor multiple values.
    #[error("attachment type {0:?} already holds a unique value")]
    TypeAlreadyRegisteredAsUnique(TypeId),
}

/// The values of one attached type.
pub(super) enum AttachedValues {
    /// One value, from `attach_unique`.
    Unique(Erased),
    /// Any number of values, in attach order, from `attach`.
    Multiple(Vec<Erased>),
}

/// Every value attached to one handle, grouped by type.
#[derive(Default)]
pub(super) struct AttachmentStore {
    by_type: Vec<(TypeId, AttachedValues)>,
}

impl AttachmentStore {
    /// The values of type `ty`, if any were attached.
    pub(super) fn values_of(&self, ty: TypeId) -> Option<&AttachedValues> {
        self.by_type.iter().find(|(t, _)| *t == ty).map(|(_, s)| s)
    }

    /// Mutable access to the values of type `ty`.
    pub(super) fn values_of_mut(&mut self, ty: TypeId) -> Option<&mut AttachedValues> {
        self.by_type
            .iter_mut()
            .find(|(t, _)| *t == ty)
            .map(|(_, s)| s)
    }

    /// Stores `value` as the one value of its type.
    pub(super) fn insert_unique(
        &mut self,
        ty: TypeId,
        value: Erased,
    ) -> Result<(), AttachmentError> {
        match self.values_of(ty) {
            None => {
                self.by_type.push((ty, AttachedValues::Unique(value)));
                Ok(())
            }
            Some(AttachedValues::Unique(_)) => {
                Err(AttachmentError::TypeAlreadyRegisteredAsUnique(ty))
            }
            Some(AttachedValues::Multiple(_)) => {
                Err(AttachmentError::TypeAlreadyRegisteredAsMultiple(ty))
            }
        }
    }

    /// Appends `value` to the values of its type.
    pub(super) fn push_multiple(
        &mut self,
        ty: TypeId,
        value: Erased,
    ) -> Result<(), AttachmentError> {
        match self.values_of_mut(ty) {
            None => {
                self.by_type
                    .push((ty, AttachedValues::Multiple(vec![value])));
                Ok(())
            }
            Some(AttachedValues::Multiple(values)) => {
                values.push(value);
                Ok(())
            }
            Some(AttachedValues::Unique(_)) => {
                Err(AttachmentError::TypeAlreadyRegisteredAsUnique(ty))
            }
        }
    }
}
