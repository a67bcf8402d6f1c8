//! Token blocks and their hashes, bit-compatible with `dynamo-tokens` 1.6.1.
//!
//! A sequence of tokens is cut into blocks of `block_size` tokens. Each full
//! block gets
//! - a **block hash**: xxh3-64 of its tokens, seeded with the salt hash;
//! - a **sequence hash**: the block hash at position 0, afterwards
//!   xxh3-64 of `[parent sequence hash, block hash]` with seed 1337, so equal
//!   sequence hashes mean equal prefixes;
//! - a [`PositionalLineageHash`]: position + sequence hash + parent fragment,
//!   the key the block manager uses.
//!
//! [`TokenBlockSequence`] does the cutting: it keeps the full blocks of a
//! growing sequence plus the [`PartialTokenBlock`] being filled, and commits
//! each block as soon as its last token arrives.
//!
//! ```
//! use kvbm::tokens::TokenBlockSequence;
//!
//! let seq = TokenBlockSequence::from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 4, Some(1337));
//! let [first, second] = seq.blocks() else { unreachable!() };
//! assert_eq!(first.block_hash(), 14643705804678351452);
//! assert_eq!(second.positional_lineage_hash(), first.positional_lineage_hash().extend(second.block_hash()));
//! assert_eq!(seq.current_block().tokens(), &[9]);
//! ```
//!
//! This module depends on nothing else in the crate.

mod block;
mod block_tokens;
mod error;
mod hash;
mod lineage;
mod partial;
mod sequence;
mod token_vec;

pub use block::TokenBlock;
pub use error::TokenBlockError;
pub use hash::{
    compute_block_hash_for_tokens, compute_next_sequence_hash, compute_salt_hash, BlockHash,
    SaltHash, SequenceHash64, Token, CHAIN_SEED,
};
pub(crate) use lineage::lineage_fragment_layout;
pub use lineage::{LineagePositionError, PositionalLineageHash, MAX_LINEAGE_POSITION};
pub use partial::PartialTokenBlock;
pub use sequence::TokenBlockSequence;
pub use token_vec::Tokens;
