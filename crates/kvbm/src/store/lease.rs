//! How block guards reach their store without one `Arc` per guard.
//!
//! A guard (`MutableBlock`, `CompleteBlock`, `ImmutableBlock`) holds a
//! [`StoreRef`]: a plain pointer to its store. What keeps that pointer valid
//! is the store's *lease*: while any block is checked out or held, the store
//! keeps an `Arc` to itself (`State::lease`), and it lets go of it only under
//! its lock, when the last guard goes. So a live guard implies a live store,
//! and cloning or moving a guard costs no reference-count traffic on the
//! store — one atomic operation per block instead of two on the hot paths.
//!
//! The release that ends the lease hands the `Arc` back to the guard's
//! `Drop`, which drops it after the store's lock and every borrow of the
//! store have ended: the store may be freed right there.

use std::ptr::NonNull;
use std::sync::Arc;

use super::Store;

/// A guard's pointer to its store; valid while the guard accounts for a
/// checked-out block or a handle on a held block (see the module docs).
pub(crate) struct StoreRef<T> {
    ptr: NonNull<Store<T>>,
}

impl<T> StoreRef<T> {
    /// Points at `store`. The caller creates it for a guard whose block the
    /// store counts as checked out or held, under the store lock, with the
    /// lease in place.
    #[inline]
    pub(crate) fn new(store: &Arc<Store<T>>) -> Self {
        Self {
            ptr: NonNull::from(store.as_ref()),
        }
    }

    /// The store.
    #[inline]
    pub(crate) fn get(&self) -> &Store<T> {
        // SAFETY: a `StoreRef` lives only inside a guard that accounts for
        // one checked-out block or one handle on a held block. While such a
        // block exists the store's lease holds an `Arc` to the store (the
        // lease is dropped only once, under the store lock, when no block is
        // checked out or held), so the pointee is alive for as long as
        // `self` is borrowed. The store is only ever accessed through shared
        // references. Exercised by every test that holds guards, including
        // the threaded stress tests that drop the manager before its guards
        // (`crates/kvbm/tests/stress.rs`, `lease.rs`).
        unsafe { self.ptr.as_ref() }
    }

    /// Whether two references point at the same store.
    #[inline]
    pub(crate) fn same_store(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}

impl<T> Clone for StoreRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for StoreRef<T> {}

// SAFETY: a `StoreRef<T>` is a shared reference to a `Store<T>` in all but
// lifetime; the store is `Sync` (all mutation goes through its mutex and
// atomics), so sharing or sending the pointer across threads is as safe as
// sending `&Store<T>`.
unsafe impl<T: Send + Sync> Send for StoreRef<T> {}
// SAFETY: as for `Send` above.
unsafe impl<T: Send + Sync> Sync for StoreRef<T> {}
