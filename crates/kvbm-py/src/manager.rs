//! `kvbm.BlockManager`: the pool, with batch calls for the hot paths.

use kvbm::blocks::BlockDuplicationPolicy;
use kvbm::eviction::EvictionPolicy;
use kvbm::{ManagerId, SequenceHash};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::blocks::{
    CompleteBlock, ImmutableBlock, ImmutableBlockList, MutableBlock, RComplete, RMutable, WeakBlock,
};
use crate::hashes::{hash_from_int, read_hashes, SequenceHashes};
use crate::metrics::StatsCollector;
use crate::tokens::TokenBlock;
use crate::Python as Tier;

/// A pool of KV-cache blocks: allocation, prefix registration, prefix
/// matching and eviction of cached blocks.
///
/// `BlockManager(block_count, block_size=None, policy="lineage",
/// duplication="allow")`. `policy` is any name in `kvbm.EVICTION_POLICIES`
/// (case-insensitive; `multi_lru` and `hashmap` are accepted too);
/// `duplication` is `"allow"` (a second block registered under a known hash
/// is kept as an unmatchable duplicate) or `"reject"` (the registered block
/// is returned instead). Bad arguments raise `ValueError` with the Rust
/// library's message.
///
/// The hot paths take whole batches: `allocate(n)`, `match(hashes)`,
/// `register(blocks, token_blocks)`, `block_ids(blocks)`.
#[pyclass(module = "kvbm", frozen)]
pub struct BlockManager {
    inner: kvbm::BlockManager<Tier>,
    id: ManagerId,
    duplication: BlockDuplicationPolicy,
}

/// The largest pool the bindings build. The pool's tables are allocated up
/// front in proportion to the block count, and a failed allocation aborts
/// the process; 2^27 blocks (2^31 tokens at 16 per block) is past any real
/// KV cache and well inside what a host can reserve.
const MAX_BLOCK_COUNT: usize = 1 << 27;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A non-negative count from Python; anything else is a `ValueError`.
fn count_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    let n: i128 = obj
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be an int")))?;
    usize::try_from(n).map_err(|_| {
        value_error(format!(
            "{what} must be between 0 and {}, got {n}",
            usize::MAX
        ))
    })
}

/// One entry of `register`'s `blocks`, its guard taken out of its object.
enum Taken<'py> {
    Mutable(Bound<'py, MutableBlock>, RMutable),
    Complete(Bound<'py, CompleteBlock>, RComplete),
}

impl Taken<'_> {
    /// Hands the guard back to its Python object (a failed `register`).
    fn put_back(self) {
        match self {
            Taken::Mutable(obj, g) => obj.get().slot.put_back(g),
            Taken::Complete(obj, g) => obj.get().slot.put_back(g),
        }
    }
}

/// A block staged for registration and the object it came from, to hand it
/// back if the registration is abandoned.
enum Staged<'py> {
    FromMutable(Bound<'py, MutableBlock>, RComplete),
    Complete(Bound<'py, CompleteBlock>, RComplete),
}

impl Staged<'_> {
    /// Returns the block to its object in the state it was passed in.
    fn undo(self) {
        match self {
            Staged::FromMutable(obj, c) => obj.get().slot.put_back(c.reset()),
            Staged::Complete(obj, c) => obj.get().slot.put_back(c),
        }
    }

    fn into_complete(self) -> RComplete {
        match self {
            Staged::FromMutable(_, c) | Staged::Complete(_, c) => c,
        }
    }
}

/// Puts every taken guard back and returns `err`.
fn undo(taken: Vec<Taken<'_>>, err: PyErr) -> PyErr {
    for t in taken {
        t.put_back();
    }
    err
}

impl BlockManager {
    /// Reads `token_blocks` (TokenBlocks, ints or a SequenceHashes) as
    /// `(hash, tokens in the block)` pairs.
    fn staging_hashes(
        &self,
        token_blocks: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<(SequenceHash, usize)>> {
        let size = self.inner.block_size();
        if let Ok(h) = token_blocks.downcast::<SequenceHashes>() {
            return Ok(h.get().hashes.iter().map(|&h| (h, size)).collect());
        }
        let mut out = Vec::new();
        for item in token_blocks.try_iter()? {
            let item = item?;
            if let Ok(tb) = item.downcast::<TokenBlock>() {
                let tb = &tb.get().inner;
                out.push((tb.positional_lineage_hash(), tb.block_size()));
            } else {
                out.push((hash_from_int(&item)?, size));
            }
        }
        Ok(out)
    }
}

#[pymethods]
impl BlockManager {
    #[new]
    #[pyo3(signature = (block_count, block_size=None, policy="lineage", duplication="allow"))]
    fn py_new(
        block_count: &Bound<'_, PyAny>,
        block_size: Option<&Bound<'_, PyAny>>,
        policy: &str,
        duplication: &str,
    ) -> PyResult<Self> {
        let block_count = count_arg(block_count, "block_count")?;
        if block_count > MAX_BLOCK_COUNT {
            return Err(value_error(format!(
                "block_count {block_count} exceeds the Python binding's limit of {MAX_BLOCK_COUNT}"
            )));
        }
        let block_size = match block_size {
            Some(b) => count_arg(b, "block_size")?,
            None => kvbm::manager::DEFAULT_BLOCK_SIZE,
        };
        let policy: EvictionPolicy = policy.parse().map_err(value_error)?;
        let duplication = match duplication.to_ascii_lowercase().as_str() {
            "allow" => BlockDuplicationPolicy::Allow,
            "reject" => BlockDuplicationPolicy::Reject,
            _ => {
                return Err(value_error(format!(
                    "unknown duplication policy `{duplication}` (known: allow, reject)"
                )))
            }
        };
        let inner = kvbm::BlockManager::<Tier>::builder()
            .block_count(block_count)
            .block_size(block_size)
            .duplication_policy(duplication)
            .eviction_policy(policy)
            .build()
            .map_err(value_error)?;
        Ok(Self {
            id: inner.id(),
            inner,
            duplication,
        })
    }

    /// The names of the built-in eviction policies.
    #[staticmethod]
    fn policies() -> Vec<&'static str> {
        EvictionPolicy::ALL.iter().map(|p| p.name()).collect()
    }

    /// Allocates `n` blocks (free blocks first, then by evicting cached
    /// ones) as a list of `MutableBlock`; `None`, with nothing allocated,
    /// when fewer than `n` are free or cached.
    fn allocate<'py>(
        &self,
        py: Python<'py>,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let n = count_arg(n, "n")?;
        // More than the pool can never succeed; answering here also keeps
        // an absurd `n` from reaching an allocation sized by it.
        if n > self.inner.total_blocks() {
            return Ok(None);
        }
        let Some(blocks) = self.inner.allocate_blocks(n) else {
            return Ok(None);
        };
        let id = self.id;
        let list = PyList::empty(py);
        for b in blocks {
            list.append(Py::new(py, MutableBlock::new(b, id))?)?;
        }
        Ok(Some(list))
    }

    /// The longest registered prefix of `hashes` (a `SequenceHashes` or an
    /// iterable of int sequence hashes), as an `ImmutableBlockList`. Cached
    /// blocks it returns are taken out of the eviction order while held.
    #[pyo3(name = "match")]
    fn match_prefix(&self, hashes: &Bound<'_, PyAny>) -> PyResult<ImmutableBlockList> {
        let blocks = if let Ok(h) = hashes.downcast::<SequenceHashes>() {
            self.inner.match_blocks(&h.get().hashes)
        } else {
            let mut v = Vec::new();
            read_hashes(hashes, &mut v)?;
            self.inner.match_blocks(&v)
        };
        Ok(ImmutableBlockList::new(blocks, self.id))
    }

    /// Registers blocks and returns their handles as an `ImmutableBlockList`.
    ///
    /// Either `blocks` are `MutableBlock`s and `token_blocks` says what each
    /// holds, one entry per block: a `TokenBlock`, an int sequence hash, or
    /// a whole `SequenceHashes`; or `token_blocks` is omitted and `blocks`
    /// are `CompleteBlock`s. All-or-nothing: on any error (`ValueError`,
    /// `BlockReleasedError`) every block is left as it was. The block
    /// objects passed in are spent afterwards.
    #[pyo3(signature = (blocks, token_blocks=None))]
    fn register(
        &self,
        blocks: &Bound<'_, PyAny>,
        token_blocks: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ImmutableBlockList> {
        let objects: Vec<Bound<'_, PyAny>> = blocks.try_iter()?.collect::<PyResult<_>>()?;
        let staging = token_blocks.map(|t| self.staging_hashes(t)).transpose()?;
        let size = self.inner.block_size();
        if let Some(s) = &staging {
            if s.len() != objects.len() {
                return Err(value_error(format!(
                    "{} blocks but {} token blocks",
                    objects.len(),
                    s.len()
                )));
            }
            if let Some((_, bad)) = s.iter().find(|(_, n)| *n != size) {
                return Err(value_error(format!(
                    "block size mismatch: the blocks hold {size} tokens, got a token block of {bad}"
                )));
            }
        }
        // Take every guard out first, so that a bad entry leaves all as
        // they were.
        let mut taken: Vec<Taken<'_>> = Vec::with_capacity(objects.len());
        for obj in &objects {
            let next = if let Ok(m) = obj.downcast::<MutableBlock>() {
                if staging.is_none() {
                    Err(value_error("MutableBlocks need token_blocks to register"))
                } else if m.get().manager != self.id {
                    Err(value_error("a block belongs to another BlockManager"))
                } else {
                    m.get()
                        .slot
                        .take("MutableBlock")
                        .map(|g| Taken::Mutable(m.clone(), g))
                }
            } else if let Ok(c) = obj.downcast::<CompleteBlock>() {
                if staging.is_some() {
                    Err(value_error(
                        "CompleteBlocks are staged already; pass no token_blocks",
                    ))
                } else if c.get().manager != self.id {
                    Err(value_error("a block belongs to another BlockManager"))
                } else {
                    c.get()
                        .slot
                        .take("CompleteBlock")
                        .map(|g| Taken::Complete(c.clone(), g))
                }
            } else {
                Err(PyTypeError::new_err(format!(
                    "register takes MutableBlock or CompleteBlock objects, got {}",
                    obj.get_type().name()?
                )))
            };
            match next {
                Ok(t) => taken.push(t),
                Err(e) => return Err(undo(taken, e)),
            }
        }
        // Stage the mutable blocks. Sizes and counts were checked above, so
        // this does not fail; if it ever did, every step is undone and the
        // caller still holds every block in its object.
        let mut hashes = staging.into_iter().flatten();
        let mut staged: Vec<Staged<'_>> = Vec::with_capacity(taken.len());
        let mut failure = None;
        for t in taken {
            if failure.is_some() {
                t.put_back();
                continue;
            }
            match t {
                Taken::Complete(obj, g) => staged.push(Staged::Complete(obj, g)),
                Taken::Mutable(obj, g) => match hashes.next() {
                    Some((hash, n)) => match g.stage(hash, n) {
                        Ok(c) => staged.push(Staged::FromMutable(obj, c)),
                        Err(e) => {
                            failure = Some(value_error(e.to_string()));
                            obj.get().slot.put_back(e.into_block());
                        }
                    },
                    None => {
                        failure = Some(PyRuntimeError::new_err("token blocks ran out"));
                        obj.get().slot.put_back(g);
                    }
                },
            }
        }
        if let Some(err) = failure {
            staged.into_iter().for_each(Staged::undo);
            return Err(err);
        }
        let complete = staged.into_iter().map(Staged::into_complete).collect();
        Ok(ImmutableBlockList::new(
            self.inner.register_blocks(complete),
            self.id,
        ))
    }

    /// The block ids of `blocks` in order, as a list of ints: an
    /// `ImmutableBlockList` or an iterable of block objects (lists are
    /// flattened). Raises `BlockReleasedError` for a released block.
    fn block_ids(&self, blocks: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let mut out = Vec::new();
        if let Ok(l) = blocks.downcast::<ImmutableBlockList>() {
            l.get().block_ids_into(&mut out)?;
            return Ok(out);
        }
        for item in blocks.try_iter()? {
            let item = item?;
            if let Ok(b) = item.downcast::<ImmutableBlock>() {
                out.push(b.get().slot.with("ImmutableBlock", |g| g.block_id())?);
            } else if let Ok(b) = item.downcast::<MutableBlock>() {
                out.push(b.get().slot.with("MutableBlock", |g| g.block_id())?);
            } else if let Ok(b) = item.downcast::<CompleteBlock>() {
                out.push(b.get().slot.with("CompleteBlock", |g| g.block_id())?);
            } else if let Ok(b) = item.downcast::<WeakBlock>() {
                out.push(b.get().id());
            } else if let Ok(l) = item.downcast::<ImmutableBlockList>() {
                l.get().block_ids_into(&mut out)?;
            } else {
                return Err(PyTypeError::new_err(format!(
                    "not a block: {}",
                    item.get_type().name()?
                )));
            }
        }
        Ok(out)
    }

    /// Releases every block object (or `ImmutableBlockList`) in `blocks`
    /// in one call. Already released objects are skipped.
    fn release(&self, blocks: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(l) = blocks.downcast::<ImmutableBlockList>() {
            l.get().slot.release();
            return Ok(());
        }
        for item in blocks.try_iter()? {
            let item = item?;
            if let Ok(b) = item.downcast::<ImmutableBlock>() {
                b.get().slot.release();
            } else if let Ok(b) = item.downcast::<MutableBlock>() {
                b.get().slot.release();
            } else if let Ok(b) = item.downcast::<CompleteBlock>() {
                b.get().slot.release();
            } else if let Ok(l) = item.downcast::<ImmutableBlockList>() {
                l.get().slot.release();
            } else {
                return Err(PyTypeError::new_err(format!(
                    "not a releasable block: {}",
                    item.get_type().name()?
                )));
            }
        }
        Ok(())
    }

    /// Every counter and gauge of the pool, as a dict of ints (see the
    /// Rust `MetricsSnapshot`: allocations, evictions, registrations,
    /// match and scan counts, inflight and pool-size gauges, …).
    fn metrics(&self, py: Python<'_>) -> PyResult<PyObject> {
        crate::json::serialize(py, &self.inner.metrics().snapshot())
    }

    /// A `StatsCollector` over this pool's metrics, keeping the last
    /// `window_size` samples. It starts enabled.
    #[pyo3(signature = (window_size=60))]
    fn stats_collector(&self, window_size: usize) -> StatsCollector {
        StatsCollector::over(self.inner.metrics().clone(), window_size)
    }

    /// Checks every internal invariant of the pool (free + cached + held =
    /// total, the hash index, the eviction order, the gauges); raises
    /// `RuntimeError` describing the first violation. O(blocks).
    fn validate(&self) -> PyResult<()> {
        self.inner
            .validate()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Empties the cache into the free pool; raises `RuntimeError` if some
    /// blocks are still held or being filled.
    fn reset_inactive_pool(&self) -> PyResult<()> {
        self.inner
            .reset_inactive_pool()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Blocks in the pool.
    #[getter]
    fn total_blocks(&self) -> usize {
        self.inner.total_blocks()
    }

    /// Blocks an allocation can get now: free plus cached.
    #[getter]
    fn available_blocks(&self) -> usize {
        self.inner.available_blocks()
    }

    /// Tokens per block.
    #[getter]
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    /// The eviction policy's name.
    #[getter]
    fn policy(&self) -> &'static str {
        self.inner.eviction_policy()
    }

    /// `"allow"` or `"reject"`.
    #[getter]
    fn duplication(&self) -> &'static str {
        match self.duplication {
            BlockDuplicationPolicy::Allow => "allow",
            BlockDuplicationPolicy::Reject => "reject",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "BlockManager(block_count={}, block_size={}, policy={:?}, duplication={:?})",
            self.inner.total_blocks(),
            self.inner.block_size(),
            self.inner.eviction_policy(),
            self.duplication()
        )
    }
}
