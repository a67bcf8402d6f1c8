//! Running user code under the store lock, and what happens after the lock.
//!
//! The store calls its eviction backend (a user's own, or a built-in one
//! that asks a user's frequency tracker) under its lock. That code may
//! panic, lie, or call back into the manager. The store's memory safety and
//! block accounting must survive all three:
//!
//! - every backend call goes through [`call`], which catches a panic and
//!   hands it back as a value, so no unwind ever crosses code that is midway
//!   through a state change;
//! - while the backend runs, the thread is marked as being inside the store
//!   ([`Inside`]); a call back into the same store finds its lock taken and
//!   the mark set, and panics with a clear message instead of deadlocking
//!   (the check costs nothing unless the lock is contended);
//! - the work that must wait until the lock is released — dropping
//!   registry handles (whose attachments are user code), the store's lease
//!   (which may free the store), and re-raising a caught panic — is
//!   collected in an [`AfterUnlock`] and done by
//!   [`finish`](AfterUnlock::finish), in that order.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::registry::BlockRegistrationHandle;

/// A panic caught in user code.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// How deeply stores can nest (a backend calling another manager whose
/// backend calls a third …) and still have re-entry detected.
const DEPTH: usize = 4;

/// The stores whose backend this thread is running, innermost last, and
/// how many there are; one thread-local, so that entering and leaving user
/// code costs one lookup of the thread's block each.
struct InsideStack {
    depth: Cell<usize>,
    addrs: [Cell<usize>; DEPTH],
}

thread_local! {
    static INSIDE: InsideStack = const {
        InsideStack {
            depth: Cell::new(0),
            addrs: [const { Cell::new(0) }; DEPTH],
        }
    };
}

/// Marks the current thread as running user code for the store at `addr`
/// until dropped.
pub(crate) struct Inside(());

impl Inside {
    #[inline]
    pub(crate) fn enter(addr: usize) -> Self {
        INSIDE.with(|s| {
            let depth = s.depth.get();
            s.depth.set(depth + 1);
            if depth < DEPTH {
                s.addrs[depth].set(addr);
            }
        });
        Inside(())
    }

    /// Whether this thread is running user code for the store at `addr`.
    pub(crate) fn is_inside(addr: usize) -> bool {
        INSIDE.with(|s| {
            let depth = s.depth.get().min(DEPTH);
            s.addrs[..depth].iter().any(|c| c.get() == addr)
        })
    }
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        INSIDE.with(|s| s.depth.set(s.depth.get() - 1));
    }
}

/// Runs `f` (user code) for the store at `addr`, catching a panic.
#[inline]
pub(crate) fn call<R>(addr: usize, f: impl FnOnce() -> R) -> Result<R, Panic> {
    let _inside = Inside::enter(addr);
    // The store's own state is consistent whenever user code runs, and the
    // backend's is discarded after a panic (the store is poisoned), so
    // nothing observes what the panic may have left half-done.
    catch_unwind(AssertUnwindSafe(f))
}

/// Panics because user code re-entered the store at `addr`.
#[cold]
#[inline(never)]
pub(crate) fn reentered() -> ! {
    panic!(
        "kvbm: an eviction backend or frequency tracker called back into the BlockManager \
         that is calling it; backends run under the manager's lock and must not use it \
         (or its blocks' slow paths)"
    )
}

/// Work that must wait until the store lock is released.
pub(crate) struct AfterUnlock<S> {
    /// Registry handles of evicted blocks: dropping the last one drops the
    /// attachments, which is user code.
    pub(crate) handles: Vec<BlockRegistrationHandle>,
    /// The store's lease, if the operation ended it; dropping it may free
    /// the store.
    pub(crate) lease: Option<Arc<S>>,
    /// A backend that broke its contract (or was dropped after one), to be
    /// dropped outside the lock.
    pub(crate) retired: Option<Box<dyn crate::eviction::InactiveBackend>>,
    /// A panic caught in user code, or a contract breach, to raise once the
    /// store is consistent and unlocked.
    pub(crate) panic: Option<Panic>,
}

impl<S> Default for AfterUnlock<S> {
    fn default() -> Self {
        Self {
            handles: Vec::new(),
            lease: None,
            retired: None,
            panic: None,
        }
    }
}

impl<S> AfterUnlock<S> {
    /// Does the deferred work: drops the handles and the retired backend,
    /// then the lease (after which the store may be gone), then raises the
    /// caught panic — unless the thread is already unwinding, where a second
    /// panic would abort; the store is poisoned either way, so the failure
    /// is not lost.
    #[inline]
    pub(crate) fn finish(self) {
        // Nearly every operation has nothing to do after the lock: an empty
        // `Vec` and `None`s own nothing, so forgetting them leaks nothing.
        if self.handles.capacity() == 0
            && self.lease.is_none()
            && self.retired.is_none()
            && self.panic.is_none()
        {
            std::mem::forget(self);
            return;
        }
        self.finish_slow();
    }

    #[inline(never)]
    fn finish_slow(self) {
        let Self {
            handles,
            lease,
            retired,
            panic,
        } = self;
        drop(handles);
        if let Some(backend) = retired {
            // Its `Drop` is user code too; a second panic from a backend
            // that already failed adds nothing.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(backend)));
        }
        drop(lease);
        if let Some(payload) = panic {
            if !std::thread::panicking() {
                std::panic::resume_unwind(payload);
            }
        }
    }
}
