//! The lock and atomics the store is built on, and the model checkers'
//! stand-ins for them.
//!
//! Normally: parking_lot's `Mutex` (no poisoning, `try_lock` returning an
//! `Option`) and std's atomics. Only the lib's own unit-test build swaps
//! them, so that a model checker runs the real store code:
//! - with the `shuttle` feature, the store's lock and share counts use
//!   shuttle's primitives, and the models of `store::models` explore how
//!   threads interleave around them (randomly and with PCT). Shuttle runs
//!   every thread on one OS thread and switches only at its own
//!   primitives, so everything else (the registry's parking_lot locks, the
//!   `Arc`/`Weak` of the lease, std atomics in metrics) stays real and is
//!   never contended mid-section;
//! - under `--cfg loom`, the share counts use loom's atomics for the models
//!   of `store::shares`, which also explore weak-memory reorderings (loom
//!   cannot stand in for the `Weak` of the store, so only the counts run
//!   under it).

#[cfg(all(test, loom, feature = "shuttle"))]
compile_error!("the loom and shuttle models need separate builds");

#[cfg(not(all(test, feature = "shuttle")))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(all(test, feature = "shuttle"))]
pub(crate) use shuttle_lock::{Mutex, MutexGuard};

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(all(test, feature = "shuttle"))]
pub(crate) use shuttle::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(all(test, any(loom, feature = "shuttle"))))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

/// Shuttle's mutex behind parking_lot's interface.
#[cfg(all(test, feature = "shuttle"))]
mod shuttle_lock {
    use std::sync::{PoisonError, TryLockError};

    pub(crate) use shuttle::sync::MutexGuard;

    /// A shuttle mutex that, like parking_lot's, ignores poisoning: the
    /// store never unwinds with its lock held mid-change (user code runs
    /// under `catch_unwind`).
    #[derive(Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(shuttle::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        }
    }
}
