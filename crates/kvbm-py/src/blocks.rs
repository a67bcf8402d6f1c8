//! The block guards as Python objects: `MutableBlock → CompleteBlock →
//! ImmutableBlock ⇄ WeakBlock`, plus `ImmutableBlockList`, the batch form
//! that `match` and `register` return.
//!
//! Each object owns its guard in a [`GuardCell`]; the guard leaves the slot when
//! the block is released or moves on to its next state, so every object is
//! used at most once per state and a stale object raises instead of
//! touching the pool.

use kvbm::{ManagerId, SequenceHash};
use parking_lot::Mutex;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::hashes::{hash_from_int, SequenceHashes};
use crate::tokens::TokenBlock;
use crate::{released, Python as Tier};

pub(crate) type RMutable = kvbm::MutableBlock<Tier>;
pub(crate) type RComplete = kvbm::CompleteBlock<Tier>;
pub(crate) type RImmutable = kvbm::ImmutableBlock<Tier>;
type RWeak = kvbm::WeakBlock<Tier>;

/// A guard owned by a Python object, or nothing once released.
pub(crate) struct GuardCell<G>(Mutex<Option<G>>);

impl<G> GuardCell<G> {
    pub(crate) fn new(guard: G) -> Self {
        Self(Mutex::new(Some(guard)))
    }

    /// Takes the guard out (the object is released from now on).
    pub(crate) fn take(&self, what: &str) -> PyResult<G> {
        self.0.lock().take().ok_or_else(|| released(what))
    }

    /// Puts a guard back after a failed transition.
    pub(crate) fn put_back(&self, guard: G) {
        *self.0.lock() = Some(guard);
    }

    /// Reads from the guard.
    pub(crate) fn with<R>(&self, what: &str, f: impl FnOnce(&G) -> R) -> PyResult<R> {
        self.0.lock().as_ref().map(f).ok_or_else(|| released(what))
    }

    /// Drops the guard, if any, outside the slot's lock; `true` if there
    /// was one.
    pub(crate) fn release(&self) -> bool {
        let guard = self.0.lock().take();
        let had = guard.is_some();
        drop(guard);
        had
    }

    pub(crate) fn is_released(&self) -> bool {
        self.0.lock().is_none()
    }
}

/// A block handed out by `BlockManager.allocate`, to be filled with KV data
/// and then registered.
///
/// Releasing it (`release()`, leaving its `with` block, or dropping the last
/// reference) returns it to the free pool. `complete()` / `stage()` turn it
/// into a `CompleteBlock`; `BlockManager.register` does that and registers
/// in one call. After either, this object is spent.
#[pyclass(module = "kvbm", frozen)]
pub struct MutableBlock {
    pub(crate) slot: GuardCell<RMutable>,
    pub(crate) manager: ManagerId,
    pub(crate) id: usize,
}

/// A block filled and identified by its sequence hash, waiting for
/// `BlockManager.register`. Releasing it returns it to the free pool
/// (unregistered data is never cached).
#[pyclass(module = "kvbm", frozen)]
pub struct CompleteBlock {
    pub(crate) slot: GuardCell<RComplete>,
    pub(crate) manager: ManagerId,
    pub(crate) id: usize,
}

/// A handle on a registered block, from `match` or `register` (often
/// through an `ImmutableBlockList`). While any handle lives the block is
/// not evicted; when the last is released the block stays cached and
/// matchable until evicted.
#[pyclass(module = "kvbm", frozen)]
pub struct ImmutableBlock {
    pub(crate) slot: GuardCell<RImmutable>,
    pub(crate) manager: ManagerId,
    pub(crate) id: usize,
}

/// A weak reference to a registered block: holds nothing, and `upgrade()`
/// gives a new `ImmutableBlock` while the block is still registered (held or
/// cached), `None` once it was evicted.
#[pyclass(module = "kvbm", frozen)]
pub struct WeakBlock {
    weak: RWeak,
    manager: ManagerId,
}

impl MutableBlock {
    fn transition(
        &self,
        py: Python<'_>,
        hash: SequenceHash,
        size: usize,
    ) -> PyResult<Py<CompleteBlock>> {
        let guard = self.slot.take("MutableBlock")?;
        match guard.stage(hash, size) {
            Ok(complete) => Py::new(py, CompleteBlock::new(complete, self.manager)),
            Err(e) => {
                let msg = e.to_string();
                self.slot.put_back(e.into_block());
                Err(PyValueError::new_err(msg))
            }
        }
    }
}

impl WeakBlock {
    pub(crate) fn id(&self) -> usize {
        self.weak.block_id()
    }
}

#[pymethods]
impl MutableBlock {
    /// Stages the block with a full `TokenBlock`'s sequence hash; the block
    /// moves into the returned `CompleteBlock`. A token block of another
    /// size raises `ValueError` and leaves this block usable.
    fn complete(&self, py: Python<'_>, token_block: &TokenBlock) -> PyResult<Py<CompleteBlock>> {
        let tb = &token_block.inner;
        self.transition(py, tb.positional_lineage_hash(), tb.block_size())
    }

    /// Stages the block under `sequence_hash` (a 128-bit positional lineage
    /// hash) holding `block_size` tokens (default: the block's size).
    #[pyo3(signature = (sequence_hash, block_size=None))]
    fn stage(
        &self,
        py: Python<'_>,
        sequence_hash: &Bound<'_, PyAny>,
        block_size: Option<usize>,
    ) -> PyResult<Py<CompleteBlock>> {
        let hash = hash_from_int(sequence_hash)?;
        let size = match block_size {
            Some(s) => s,
            None => self.block_size()?,
        };
        self.transition(py, hash, size)
    }
}

#[pymethods]
impl CompleteBlock {
    /// The sequence hash the block was staged with.
    #[getter]
    fn sequence_hash(&self) -> PyResult<u128> {
        self.slot
            .with("CompleteBlock", |g| g.sequence_hash().as_u128())
    }

    /// Discards the staged identity; the block moves into the returned
    /// `MutableBlock` for rewriting.
    fn reset(&self, py: Python<'_>) -> PyResult<Py<MutableBlock>> {
        let guard = self.slot.take("CompleteBlock")?;
        Py::new(py, MutableBlock::new(guard.reset(), self.manager))
    }
}

#[pymethods]
impl ImmutableBlock {
    /// The sequence hash the block is registered under.
    #[getter]
    fn sequence_hash(&self) -> PyResult<u128> {
        self.slot
            .with("ImmutableBlock", |g| g.sequence_hash().as_u128())
    }

    /// Live handles on the block, this one included.
    #[getter]
    fn use_count(&self) -> PyResult<usize> {
        self.slot.with("ImmutableBlock", |g| g.use_count())
    }

    /// A weak reference to the block.
    fn downgrade(&self) -> PyResult<WeakBlock> {
        let weak = self.slot.with("ImmutableBlock", |g| g.downgrade())?;
        Ok(WeakBlock {
            weak,
            manager: self.manager,
        })
    }

    /// Another handle on the same block (released independently).
    fn clone(&self) -> PyResult<ImmutableBlock> {
        let g = self.slot.with("ImmutableBlock", |g| g.clone())?;
        Ok(ImmutableBlock::new(g, self.manager))
    }

    /// Whether the block goes back to the free pool instead of the cache
    /// when its last handle is released.
    fn set_evict_on_reset(&self, value: bool) -> PyResult<()> {
        self.slot
            .with("ImmutableBlock", |g| g.set_evict_on_reset(value))
    }
}

#[pymethods]
impl WeakBlock {
    /// The block's index in its pool.
    #[getter]
    fn block_id(&self) -> usize {
        self.weak.block_id()
    }

    /// The sequence hash the block was registered under.
    #[getter]
    fn sequence_hash(&self) -> u128 {
        self.weak.sequence_hash().as_u128()
    }

    /// A new handle if the block is still registered, else `None`.
    fn upgrade(&self) -> Option<ImmutableBlock> {
        self.weak
            .upgrade()
            .map(|g| ImmutableBlock::new(g, self.manager))
    }

    fn __repr__(&self) -> String {
        format!("WeakBlock(block_id={})", self.weak.block_id())
    }
}

fn repr(class: &str, id: usize, released: bool) -> String {
    if released {
        format!("{class}(block_id={id}, released)")
    } else {
        format!("{class}(block_id={id})")
    }
}

/// Emits, as a `#[pymethods]` block of its own, the methods every guard
/// object shares, so each class's main `#[pymethods]` block holds only what
/// is its own. (A second `#[pymethods]` block per class needs pyo3's
/// `multiple-pymethods` feature; pyo3 reads `#[pymethods]` before macros
/// expand, so the shared methods cannot be spliced into the main block.)
///
/// `guard_methods!(Class, released: "doc", release: "doc")` gives the
/// `released` getter, `release()` and the context-manager pair (leaving a
/// `with` block releases); the class keeps its guard in a `slot:
/// GuardCell<_>`. `guard_methods!(block Class(Guard), block_id: "doc",
/// ...)` is for an object holding one block guard of type `Guard` (fields
/// `slot`, `manager`, `id`): it adds the Rust constructor `Class::new(guard, manager)`, the
/// `block_id` / `block_size` getters, which raise `BlockReleasedError` once
/// released, and `__repr__`.
macro_rules! guard_methods {
    (block $class:ident($guard:ty), block_id: $block_id:literal, released: $released:literal, release: $release:literal) => {
        guard_methods!($class, released: $released, release: $release);

        impl $class {
            pub(crate) fn new(guard: $guard, manager: ManagerId) -> Self {
                let id = guard.block_id();
                Self {
                    slot: GuardCell::new(guard),
                    manager,
                    id,
                }
            }
        }

        #[pymethods]
        impl $class {
            #[doc = $block_id]
            #[getter]
            fn block_id(&self) -> PyResult<usize> {
                self.slot.with(stringify!($class), |_| self.id)
            }

            /// Tokens the block holds.
            #[getter]
            fn block_size(&self) -> PyResult<usize> {
                self.slot.with(stringify!($class), |g| g.block_size())
            }

            fn __repr__(&self) -> String {
                repr(stringify!($class), self.id, self.slot.is_released())
            }
        }
    };
    ($class:ident, released: $released:literal, release: $release:literal) => {
        #[pymethods]
        impl $class {
            #[doc = $released]
            #[getter]
            fn released(&self) -> bool {
                self.slot.is_released()
            }

            #[doc = $release]
            fn release(&self) {
                self.slot.release();
            }

            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (*_args))]
            fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
                self.slot.release();
                false
            }
        }
    };
}

guard_methods!(block MutableBlock(RMutable),
    block_id: "The block's index in its pool (its slot in the engine's KV memory).",
    released: "Whether the block was released or moved on to another state.",
    release: "Returns the block to the free pool. Idempotent.");
guard_methods!(block CompleteBlock(RComplete),
    block_id: "The block's index in its pool.",
    released: "Whether the block was released or moved on to another state.",
    release: "Returns the block to the free pool. Idempotent.");
guard_methods!(block ImmutableBlock(RImmutable),
    block_id: "The block's index in its pool.",
    released: "Whether this handle was released.",
    release: "Releases this handle; the last one caches the block. Idempotent.");
guard_methods!(ImmutableBlockList,
    released: "Whether the list was released.",
    release: "Releases every handle in the list (the last handle on a block caches\nit). Idempotent.");

/// A request's registered blocks in order, held in Rust: what `match` and
/// `register` return, so a batch of blocks costs one Python object.
///
/// It behaves like a list of `ImmutableBlock` (`len()`, indexing and
/// iteration give new handles on the blocks) and adds `block_ids()` for a
/// paged-attention block table. `release()`, leaving a `with` block or
/// garbage collection releases every handle it holds; after `release()` any
/// other use raises `BlockReleasedError`.
#[pyclass(module = "kvbm", frozen, sequence)]
pub struct ImmutableBlockList {
    pub(crate) slot: GuardCell<Vec<RImmutable>>,
    pub(crate) manager: ManagerId,
}

impl ImmutableBlockList {
    pub(crate) fn new(blocks: Vec<RImmutable>, manager: ManagerId) -> Self {
        Self {
            slot: GuardCell::new(blocks),
            manager,
        }
    }

    pub(crate) fn block_ids_into(&self, out: &mut Vec<usize>) -> PyResult<()> {
        self.slot.with("ImmutableBlockList", |v| {
            out.extend(v.iter().map(|b| b.block_id()))
        })
    }

    fn handles(&self) -> PyResult<Vec<ImmutableBlock>> {
        let manager = self.manager;
        self.slot.with("ImmutableBlockList", |v| {
            v.iter()
                .map(|b| ImmutableBlock::new(b.clone(), manager))
                .collect()
        })
    }
}

#[pymethods]
impl ImmutableBlockList {
    fn __len__(&self) -> PyResult<usize> {
        self.slot.with("ImmutableBlockList", |v| v.len())
    }

    fn __getitem__(&self, index: isize) -> PyResult<ImmutableBlock> {
        let manager = self.manager;
        self.slot
            .with("ImmutableBlockList", |v| {
                let n = v.len() as isize;
                let j = if index < 0 { index + n } else { index };
                (0..n)
                    .contains(&j)
                    .then(|| ImmutableBlock::new(v[j as usize].clone(), manager))
            })?
            .ok_or_else(|| PyIndexError::new_err("ImmutableBlockList index out of range"))
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<PyObject> {
        let list = PyList::new(slf.py(), slf.get().handles()?)?;
        Ok(list.as_any().try_iter()?.into_any().unbind())
    }

    /// The blocks' ids in order, as a list of ints.
    fn block_ids(&self) -> PyResult<Vec<usize>> {
        let mut out = Vec::new();
        self.block_ids_into(&mut out)?;
        Ok(out)
    }

    /// The blocks' sequence hashes in order.
    fn sequence_hashes(&self) -> PyResult<SequenceHashes> {
        self.slot.with("ImmutableBlockList", |v| {
            SequenceHashes::from_vec(v.iter().map(|b| b.sequence_hash()).collect())
        })
    }

    /// Moves every handle of `other` (an `ImmutableBlockList` of the same
    /// manager) to the end of this list; `other` ends up released.
    fn extend(&self, other: &Bound<'_, ImmutableBlockList>) -> PyResult<()> {
        let other = other.get();
        if std::ptr::eq(self, other) {
            return Err(PyValueError::new_err("cannot extend a list with itself"));
        }
        self.slot.with("ImmutableBlockList", |_| ())?;
        if self.manager != other.manager {
            return Err(PyValueError::new_err(
                "the blocks belong to another BlockManager",
            ));
        }
        let moved = other.slot.take("ImmutableBlockList")?;
        let mut mine = self.slot.0.lock();
        match mine.as_mut() {
            Some(v) => {
                v.extend(moved);
                Ok(())
            }
            None => {
                drop(mine);
                other.slot.put_back(moved);
                Err(released("ImmutableBlockList"))
            }
        }
    }

    fn __repr__(&self) -> String {
        match self.slot.with("", |v| v.len()) {
            Ok(n) => format!("ImmutableBlockList(<{n} blocks>)"),
            Err(_) => "ImmutableBlockList(released)".to_string(),
        }
    }
}
