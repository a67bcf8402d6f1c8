//! [`SequenceHashes`]: a list of 128-bit sequence (positional lineage)
//! hashes kept in Rust.
//!
//! A 128-bit Python int costs several Python operations to convert under the
//! stable ABI, more than a block match itself. Hash lists made by
//! `TokenBlockSequence.sequence_hashes()` therefore stay in Rust and are
//! handed to `match` / `register` without any per-hash conversion; plain
//! lists of ints are accepted too, at that conversion cost.

use kvbm::tokens::PositionalLineageHash;
use kvbm::SequenceHash;
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};

/// An immutable list of sequence hashes (the 128-bit positional lineage
/// hashes blocks are registered and matched under), stored in Rust.
///
/// Build one from ints with `SequenceHashes([h1, h2, ...])` or get one from
/// `TokenBlockSequence.sequence_hashes()`. It supports `len()`, indexing
/// (an int), slicing (a `SequenceHashes`), iteration, `==` and `to_list()`.
#[pyclass(module = "kvbm", frozen, sequence, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct SequenceHashes {
    pub(crate) hashes: Vec<SequenceHash>,
}

impl SequenceHashes {
    pub(crate) fn from_vec(hashes: Vec<SequenceHash>) -> Self {
        Self { hashes }
    }
}

/// Converts one Python int to a hash; out of range → `ValueError`.
pub(crate) fn hash_from_int(obj: &Bound<'_, PyAny>) -> PyResult<SequenceHash> {
    match obj.extract::<u128>() {
        Ok(v) => Ok(PositionalLineageHash::from_u128(v)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) => Err(
            PyValueError::new_err("a sequence hash is an int in 0 .. 2**128"),
        ),
        Err(e) => Err(e),
    }
}

/// Reads hashes from a `SequenceHashes` (no conversion) or an iterable of
/// ints, into `out` (cleared first).
pub(crate) fn read_hashes(obj: &Bound<'_, PyAny>, out: &mut Vec<SequenceHash>) -> PyResult<()> {
    out.clear();
    if let Ok(h) = obj.downcast::<SequenceHashes>() {
        out.extend_from_slice(&h.get().hashes);
        return Ok(());
    }
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>()
    {
        return Err(PyTypeError::new_err(
            "expected SequenceHashes or an iterable of int hashes",
        ));
    }
    for item in obj.try_iter()? {
        out.push(hash_from_int(&item?)?);
    }
    Ok(())
}

#[pymethods]
impl SequenceHashes {
    #[new]
    #[pyo3(signature = (hashes=None))]
    fn py_new(hashes: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut out = Vec::new();
        if let Some(h) = hashes {
            read_hashes(h, &mut out)?;
        }
        Ok(Self { hashes: out })
    }

    fn __len__(&self) -> usize {
        self.hashes.len()
    }

    fn __getitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if let Ok(slice) = index.downcast::<PySlice>() {
            let ind = slice.indices(self.hashes.len() as isize)?;
            let mut out = Vec::with_capacity(ind.slicelength);
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                out.push(self.hashes[i as usize]);
                i += ind.step;
            }
            return Ok(Py::new(py, Self { hashes: out })?.into_any());
        }
        let i: isize = index.extract()?;
        let n = self.hashes.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(PyIndexError::new_err("SequenceHashes index out of range"));
        }
        Ok(self.hashes[j as usize]
            .as_u128()
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<PyObject> {
        let list = slf.get().to_list(slf.py())?;
        Ok(list.as_any().try_iter()?.into_any().unbind())
    }

    /// The hashes as a list of ints.
    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.hashes.iter().map(|h| h.as_u128()))
    }

    fn __repr__(&self) -> String {
        format!("SequenceHashes(<{} hashes>)", self.hashes.len())
    }
}
