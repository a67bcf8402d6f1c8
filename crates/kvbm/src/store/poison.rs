//! The store's side of running user code: taking the lock (refusing
//! re-entry), calling the backend, and poisoning the store when the backend
//! fails. The generic machinery is in [`user_code`](super::user_code).

use super::sync::MutexGuard;
use super::user_code::{self, AfterUnlock, Inside, Panic};
use super::{State, Store};
use crate::block_slot::SlotState;
use crate::eviction::InactiveBackend;

/// Panics on behalf of an operation that a poisoned store refuses; out of
/// line, so that `lock_healthy` stays a lock and one test in its callers.
#[cold]
#[inline(never)]
fn refuse_poisoned<T>(st: MutexGuard<'_, State<T>>) -> ! {
    let why = st.poisoned.clone().unwrap_or_default();
    drop(st);
    panic!("kvbm: this BlockManager is poisoned and can only release blocks: {why}");
}

/// What went wrong in a backend call.
pub(super) enum Failure {
    /// It panicked.
    Panicked(Panic),
    /// It broke its contract, as described.
    Broke(String),
}

impl<T: super::BlockMetadata> Store<T> {
    /// The address user code is marked with while it runs for this store.
    #[inline]
    pub(super) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Takes the store lock. Only a contended lock checks for re-entry:
    /// a thread that runs this store's backend and asks for its lock again
    /// would wait for itself forever.
    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, State<T>> {
        if let Some(guard) = self.state.try_lock() {
            return guard;
        }
        if Inside::is_inside(self.addr()) {
            user_code::reentered();
        }
        self.state.lock()
    }

    /// Takes the lock for an operation that hands out or registers blocks,
    /// which a poisoned store refuses.
    #[inline]
    pub(super) fn lock_healthy(&self) -> MutexGuard<'_, State<T>> {
        let st = self.lock();
        if st.poisoned.is_some() {
            refuse_poisoned(st);
        }
        st
    }

    /// Calls the backend (user code) with the store's state consistent.
    /// Never called on a poisoned store.
    #[inline]
    pub(super) fn call_backend<R>(
        &self,
        backend: &mut Option<Box<dyn InactiveBackend>>,
        f: impl FnOnce(&mut dyn InactiveBackend) -> R,
    ) -> Result<R, Failure> {
        let Some(backend) = backend.as_deref_mut() else {
            return Err(Failure::Broke("the backend is gone".into()));
        };
        user_code::call(self.addr(), || f(backend)).map_err(Failure::Panicked)
    }

    /// A backend failed: frees every cached block (the order they were kept
    /// in is lost), unregisters them, retires the backend and marks the
    /// store poisoned. The failure is raised by `after` once the lock is
    /// released. Leaves the store consistent.
    #[cold]
    pub(super) fn poison(
        &self,
        st: &mut State<T>,
        failure: Failure,
        after: &mut AfterUnlock<Self>,
    ) {
        let mut freed = Vec::new();
        for (id, slot) in st.slots.iter_mut().enumerate() {
            if slot.state == SlotState::Cached {
                slot.state = SlotState::Free;
                st.index.remove_id(slot.hash(), id as u32);
                freed.push(slot.hash());
                st.free.push(slot, id as u32);
            }
        }
        st.cached = 0;
        self.registry
            .remove_presence_many(&freed, self.tier, &mut after.handles);
        after.retired = st.backend.take();
        let why = match &failure {
            Failure::Panicked(payload) => format!(
                "eviction backend `{}` panicked: {}",
                self.backend_name,
                panic_message(payload.as_ref())
            ),
            Failure::Broke(what) => format!(
                "eviction backend `{}` broke its contract: {what}",
                self.backend_name
            ),
        };
        if after.panic.is_none() {
            after.panic = Some(match failure {
                Failure::Panicked(payload) => payload,
                Failure::Broke(_) => Box::new(format!("kvbm: {why}")),
            });
        }
        st.poisoned.get_or_insert(why);
        self.publish_gauges(st);
    }
}

/// The message of a caught panic, if it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
