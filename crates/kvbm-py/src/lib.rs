//! Python bindings of kvbm, importable as `kvbm` (the extension module is
//! `kvbm._kvbm`; `python/kvbm/__init__.py` re-exports it beside the stubs).
//!
//! Design rules that hold in every module here:
//! - A Python block object owns its Rust guard in a `Mutex<Option<_>>`:
//!   `release()` (or `__exit__`, or garbage collection dropping the object)
//!   takes the guard out and drops it, which returns the block exactly as
//!   dropping the guard does in Rust. Any later use finds `None` and raises
//!   `BlockReleasedError`.
//! - No Python code runs while a block's mutex or the store's lock is held:
//!   arguments are converted first, Python objects are built after.
//! - Hot paths cross once per request: batch calls take and return whole
//!   lists, and `SequenceHashes` / `ImmutableBlockList` keep per-block data
//!   in Rust so no per-block Python object is made unless asked for.
//! - Bad input raises (`ValueError`, `TypeError`, `BlockReleasedError`);
//!   PyO3 turns any panic into a Python exception at the boundary, and the
//!   code avoids the panicking kvbm entry points (`try_*` everywhere).
#![deny(missing_docs)]

mod blocks;
mod hashes;
mod json;
mod manager;
mod metrics;
mod replay;
mod tokens;

use pyo3::prelude::*;

/// The storage tier of the blocks of a Python-side manager. Python has one
/// kind of manager, so one marker type serves them all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Python;

pyo3::create_exception!(
    kvbm,
    BlockReleasedError,
    pyo3::exceptions::PyRuntimeError,
    "A block object was used after it was released (explicitly, by its context manager, or by a transition that consumed it)."
);

/// Raises `BlockReleasedError` for a block of class `what`.
pub(crate) fn released(what: &str) -> PyErr {
    BlockReleasedError::new_err(format!(
        "this {what} was released and can no longer be used"
    ))
}

#[pymodule]
fn _kvbm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add(
        "BlockReleasedError",
        m.py().get_type::<BlockReleasedError>(),
    )?;
    m.add_class::<manager::BlockManager>()?;
    m.add_class::<blocks::MutableBlock>()?;
    m.add_class::<blocks::CompleteBlock>()?;
    m.add_class::<blocks::ImmutableBlock>()?;
    m.add_class::<blocks::WeakBlock>()?;
    m.add_class::<blocks::ImmutableBlockList>()?;
    m.add_class::<hashes::SequenceHashes>()?;
    m.add_class::<tokens::TokenBlock>()?;
    m.add_class::<tokens::TokenBlockSequence>()?;
    m.add_class::<metrics::StatsCollector>()?;
    m.add_function(wrap_pyfunction!(tokens::compute_block_hash, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::compute_salt_hash, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::compute_next_sequence_hash, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::positional_lineage_hash, m)?)?;
    m.add_function(wrap_pyfunction!(replay::replay, m)?)?;
    m.add(
        "EVICTION_POLICIES",
        kvbm::eviction::EvictionPolicy::ALL
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>(),
    )?;
    m.add("CHAIN_SEED", kvbm::tokens::CHAIN_SEED)?;
    Ok(())
}
