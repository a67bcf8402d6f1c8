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
//! This module depends on nothing else in the crate.

mod block;
mod hash;
mod lineage;

pub use block::TokenBlock;
pub use hash::{
    compute_block_hash_for_tokens, compute_next_sequence_hash, compute_salt_hash, BlockHash,
    SaltHash, SequenceHash64, Token, CHAIN_SEED,
};
pub use lineage::{LineagePositionError, PositionalLineageHash, MAX_LINEAGE_POSITION};
