//! [`TokenBlock`]: a full block of tokens with its hashes.

use super::hash::{compute_block_hash_for_tokens, BlockHash, SaltHash, SequenceHash64, Token};
use super::lineage::{LineagePositionError, PositionalLineageHash};

/// A full block of tokens at a known position, with its block hash, its
/// chained sequence hash and its lineage hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBlock {
    tokens: Vec<Token>,
    salt_hash: SaltHash,
    block_hash: BlockHash,
    lineage: PositionalLineageHash,
    parent_sequence_hash: Option<SequenceHash64>,
}

impl TokenBlock {
    /// Hashes `tokens` as the block that follows `parent` (`None` for the
    /// first block of a sequence).
    ///
    /// Fails only when the block's position would not fit in a lineage hash.
    pub fn new(
        tokens: Vec<Token>,
        salt_hash: SaltHash,
        parent: Option<&TokenBlock>,
    ) -> Result<Self, LineagePositionError> {
        let block_hash = compute_block_hash_for_tokens(&tokens, salt_hash);
        let lineage = match parent {
            None => PositionalLineageHash::root(block_hash),
            Some(p) => p.lineage.try_extend(block_hash)?,
        };
        Ok(Self {
            tokens,
            salt_hash,
            block_hash,
            lineage,
            parent_sequence_hash: parent.map(|p| p.sequence_hash()),
        })
    }

    /// The block's tokens.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The salt hash the block was hashed with.
    pub fn salt_hash(&self) -> SaltHash {
        self.salt_hash
    }

    /// Hash of this block's tokens alone.
    pub fn block_hash(&self) -> BlockHash {
        self.block_hash
    }

    /// Hash of this block and every block before it.
    pub fn sequence_hash(&self) -> SequenceHash64 {
        self.lineage.current_sequence_hash()
    }

    /// The previous block's sequence hash; `None` for the first block.
    pub fn parent_sequence_hash(&self) -> Option<SequenceHash64> {
        self.parent_sequence_hash
    }

    /// The block's lineage hash: what the block manager keys blocks by.
    pub fn positional_lineage_hash(&self) -> PositionalLineageHash {
        self.lineage
    }

    /// The block's index in its sequence (0 for the first block).
    pub fn position(&self) -> u64 {
        self.lineage.position()
    }

    /// The number of tokens in the block.
    pub fn block_size(&self) -> usize {
        self.tokens.len()
    }
}
