//! The optional part of a handle: attachments and touch callbacks.
//!
//! Most handles never carry either, so both live in one box that is only
//! allocated by the first `attach*` or `on_touch` call.

use std::sync::Arc;

use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};

use super::attachments::AttachmentStore;
use crate::SequenceHash;

/// A callback run by [`touch`](super::BlockRegistrationHandle::touch).
pub(super) type TouchCallback = Arc<dyn Fn(SequenceHash) + Send + Sync>;

/// Attachments and callbacks of one handle.
#[derive(Default)]
pub(super) struct Extras {
    pub(super) attachments: AttachmentStore,
    /// Replaced wholesale when a callback is added, so that `touch` can take
    /// a snapshot with one reference-count increment.
    callbacks: Option<Arc<[TouchCallback]>>,
}

/// The lazily allocated [`Extras`] of a handle.
#[derive(Default)]
pub(super) struct LazyExtras(Mutex<Option<Box<Extras>>>);

impl LazyExtras {
    /// Runs `f` on the extras, allocating them if needed.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> R {
        let mut guard = self.0.lock();
        f(guard.get_or_insert_with(Box::default))
    }

    /// The attachments, locked, or `None` if nothing was ever attached or
    /// registered on this handle. Never allocates.
    pub(super) fn attachments(&self) -> Option<MappedMutexGuard<'_, AttachmentStore>> {
        MutexGuard::try_map(self.0.lock(), |extras| {
            extras.as_deref_mut().map(|e| &mut e.attachments)
        })
        .ok()
    }

    /// Adds a touch callback.
    pub(super) fn push_callback(&self, callback: TouchCallback) {
        self.with(|extras| {
            let old = extras.callbacks.take();
            let all = old.iter().flat_map(|c| c.iter().cloned());
            extras.callbacks = Some(all.chain(std::iter::once(callback)).collect());
        });
    }

    /// The callbacks registered so far. The lock is released on return, so
    /// callers may run them freely.
    pub(super) fn callbacks(&self) -> Option<Arc<[TouchCallback]>> {
        self.0.lock().as_ref().and_then(|e| e.callbacks.clone())
    }
}
