//! Token blocks, token sequences and the hash functions, wrapping
//! `kvbm::tokens` (so every hash is the Rust one, bit for bit).

use kvbm::tokens::{self as rt, PositionalLineageHash, Token};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

use crate::hashes::SequenceHashes;

/// The largest block size a `TokenBlockSequence` takes from Python: its tail
/// block reserves memory for that many tokens when created.
const MAX_SEQUENCE_BLOCK_SIZE: u32 = 1 << 16;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Emits, as a `#[pymethods]` block of its own (pyo3's `multiple-pymethods`
/// feature), the block-shape getters `TokenBlock` and `TokenBlockSequence`
/// share, each with its own docstrings; `$class` wraps the Rust type in
/// `inner`.
macro_rules! block_shape_getters {
    ($class:ident, block_size: $block_size:literal, salt_hash: $salt_hash:literal) => {
        #[pymethods]
        impl $class {
            #[doc = $block_size]
            #[getter]
            fn block_size(&self) -> usize {
                self.inner.block_size()
            }

            #[doc = $salt_hash]
            #[getter]
            fn salt_hash(&self) -> u64 {
                self.inner.salt_hash()
            }
        }
    };
}

block_shape_getters!(TokenBlock,
    block_size: "Tokens in the block.",
    salt_hash: "The salt the block hash is seeded with.");
block_shape_getters!(TokenBlockSequence,
    block_size: "Tokens per block.",
    salt_hash: "The salt every block hash is seeded with.");

/// A full block of tokens and its hashes: the block hash (xxh3-64 of the
/// tokens with the salt as seed), the chained sequence hash, and the 128-bit
/// positional lineage hash that blocks are registered and matched under.
///
/// `TokenBlock(tokens, salt_hash=0, parent=None)`: `parent` is the
/// `TokenBlock` before it in the sequence (`None` for the first block).
#[pyclass(module = "kvbm", frozen)]
pub struct TokenBlock {
    pub(crate) inner: rt::TokenBlock,
}

#[pymethods]
impl TokenBlock {
    #[new]
    #[pyo3(signature = (tokens, salt_hash=0, parent=None))]
    fn py_new(tokens: Vec<Token>, salt_hash: u64, parent: Option<&TokenBlock>) -> PyResult<Self> {
        if tokens.is_empty() {
            return Err(value_error("a token block holds at least one token"));
        }
        let inner = rt::TokenBlock::new(tokens, salt_hash, parent.map(|p| &p.inner))
            .map_err(value_error)?;
        Ok(Self { inner })
    }

    /// The block's tokens.
    #[getter]
    fn tokens(&self) -> Vec<Token> {
        self.inner.tokens().to_vec()
    }

    /// xxh3-64 of the tokens' little-endian bytes, seeded with the salt.
    #[getter]
    fn block_hash(&self) -> u64 {
        self.inner.block_hash()
    }

    /// The 64-bit chained hash of this block and every block before it.
    #[getter]
    fn sequence_hash(&self) -> u64 {
        self.inner.sequence_hash()
    }

    /// The previous block's sequence hash (`None` for the first block).
    #[getter]
    fn parent_sequence_hash(&self) -> Option<u64> {
        self.inner.parent_sequence_hash()
    }

    /// The 128-bit key the block is registered and matched under.
    #[getter]
    fn positional_lineage_hash(&self) -> u128 {
        self.inner.positional_lineage_hash().as_u128()
    }

    /// The block's index in its sequence.
    #[getter]
    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn __len__(&self) -> usize {
        self.inner.block_size()
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenBlock(position={}, block_size={}, sequence_hash={:#018x})",
            self.inner.position(),
            self.inner.block_size(),
            self.inner.sequence_hash()
        )
    }
}

/// A token sequence split into full `TokenBlock`s plus a partial tail
/// block, hashed exactly like `kvbm::tokens::TokenBlockSequence`.
///
/// `TokenBlockSequence(tokens, block_size, salt_hash=None)`. Growing it
/// (`append`, `extend`) hashes each block once as it fills; shrinking it
/// (`truncate`, `unwind`, `pop`) drops whole blocks as needed.
#[pyclass(module = "kvbm")]
pub struct TokenBlockSequence {
    inner: rt::TokenBlockSequence,
}

#[pymethods]
impl TokenBlockSequence {
    #[new]
    #[pyo3(signature = (tokens, block_size, salt_hash=None))]
    fn py_new(tokens: Vec<Token>, block_size: u32, salt_hash: Option<u64>) -> PyResult<Self> {
        // The tail block reserves `block_size` tokens up front.
        if block_size > MAX_SEQUENCE_BLOCK_SIZE {
            return Err(value_error(format!(
                "block_size {block_size} exceeds the Python binding's limit of {MAX_SEQUENCE_BLOCK_SIZE}"
            )));
        }
        let inner = rt::TokenBlockSequence::try_from_slice(&tokens, block_size, salt_hash)
            .map_err(value_error)?;
        Ok(Self { inner })
    }

    /// Appends tokens; returns the `(start, stop)` range of the blocks this
    /// completed, or `None` if none.
    fn extend(&mut self, tokens: Vec<Token>) -> PyResult<Option<(usize, usize)>> {
        let r = self.inner.extend_from_slice(&tokens).map_err(value_error)?;
        Ok(r.map(|r| (r.start, r.end)))
    }

    /// Appends one token; returns the index of the block it completed, or
    /// `None`.
    fn append(&mut self, token: Token) -> PyResult<Option<usize>> {
        self.inner.append(token).map_err(value_error)
    }

    /// Shortens the sequence to `length` tokens (nothing happens if it is
    /// not longer than that).
    fn truncate(&mut self, length: usize) -> PyResult<()> {
        self.inner.truncate(length).map_err(value_error)
    }

    /// Removes the last `count` tokens (`ValueError` if fewer).
    fn unwind(&mut self, count: usize) -> PyResult<()> {
        self.inner.unwind(count).map_err(value_error)
    }

    /// Removes and returns the last token (`None` when empty).
    fn pop(&mut self) -> Option<Token> {
        self.inner.pop()
    }

    /// Empties the sequence.
    fn reset(&mut self) {
        self.inner.reset()
    }

    /// The full blocks, as `TokenBlock` objects.
    #[getter]
    fn blocks(&self) -> Vec<TokenBlock> {
        self.inner
            .blocks()
            .iter()
            .map(|b| TokenBlock { inner: b.clone() })
            .collect()
    }

    /// Full block `index` (negative counts from the end).
    fn block(&self, index: isize) -> PyResult<TokenBlock> {
        let blocks = self.inner.blocks();
        let n = blocks.len() as isize;
        let j = if index < 0 { index + n } else { index };
        if !(0..n).contains(&j) {
            return Err(PyIndexError::new_err("block index out of range"));
        }
        Ok(TokenBlock {
            inner: blocks[j as usize].clone(),
        })
    }

    /// The full blocks' sequence (positional lineage) hashes, kept in Rust:
    /// what `BlockManager.match` and `register` take.
    fn sequence_hashes(&self) -> SequenceHashes {
        SequenceHashes::from_vec(
            self.inner
                .blocks()
                .iter()
                .map(|b| b.positional_lineage_hash())
                .collect(),
        )
    }

    /// The full blocks' 64-bit block hashes.
    fn block_hashes(&self) -> Vec<u64> {
        self.inner.blocks().iter().map(|b| b.block_hash()).collect()
    }

    /// Every token, full blocks and tail.
    fn tokens(&self) -> Vec<Token> {
        self.inner
            .tokens_at(0..self.inner.total_tokens())
            .into_inner()
    }

    /// The tokens of the partial tail block.
    #[getter]
    fn current_block_tokens(&self) -> Vec<Token> {
        self.inner.current_block().tokens().to_vec()
    }

    /// Tokens in the sequence.
    #[getter]
    fn total_tokens(&self) -> usize {
        self.inner.total_tokens()
    }

    fn __len__(&self) -> usize {
        self.inner.total_tokens()
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenBlockSequence(total_tokens={}, block_size={}, full_blocks={})",
            self.inner.total_tokens(),
            self.inner.block_size(),
            self.inner.blocks().len()
        )
    }
}

/// xxh3-64 of the tokens' little-endian bytes, seeded with `salt_hash`.
#[pyfunction]
#[pyo3(signature = (tokens, salt_hash=0))]
pub fn compute_block_hash(tokens: Vec<Token>, salt_hash: u64) -> u64 {
    rt::compute_block_hash_for_tokens(&tokens, salt_hash)
}

/// The seed for block hashes derived from a salt payload (xxh3-64, seed 0).
#[pyfunction]
pub fn compute_salt_hash(payload: &[u8]) -> u64 {
    rt::compute_salt_hash(payload)
}

/// One step of the sequence-hash chain: xxh3-64 of the parent's sequence
/// hash and the block hash (little-endian), seeded with `CHAIN_SEED`.
#[pyfunction]
pub fn compute_next_sequence_hash(parent: u64, block_hash: u64) -> u64 {
    rt::compute_next_sequence_hash(parent, block_hash)
}

/// Packs a 128-bit positional lineage hash from a block's sequence hash,
/// its parent's sequence hash (`None` at position 0) and its position
/// (`ValueError` at 2**24 or beyond).
#[pyfunction]
#[pyo3(signature = (sequence_hash, parent_sequence_hash, position))]
pub fn positional_lineage_hash(
    sequence_hash: u64,
    parent_sequence_hash: Option<u64>,
    position: u64,
) -> PyResult<u128> {
    PositionalLineageHash::try_new(sequence_hash, parent_sequence_hash, position)
        .map(|h| h.as_u128())
        .map_err(value_error)
}
