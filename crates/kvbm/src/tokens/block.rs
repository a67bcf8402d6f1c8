//! [`TokenBlock`]: a full block of tokens with its hashes.

use super::block_tokens::BlockTokens;
use super::hash::{compute_block_hash_for_tokens, BlockHash, SaltHash, SequenceHash64, Token};
use super::lineage::{LineagePositionError, PositionalLineageHash};

/// A full block of tokens at a known position, with its block hash, its
/// chained sequence hash and its lineage hash.
///
/// Blocks are normally produced by a
/// [`TokenBlockSequence`](super::TokenBlockSequence); [`TokenBlock::new`]
/// builds one directly from its parent.
///
/// ```
/// use kvbm::tokens::{compute_next_sequence_hash, TokenBlock};
///
/// let first = TokenBlock::new(vec![1, 2, 3, 4], 1337, None).unwrap();
/// assert_eq!(first.block_hash(), 14643705804678351452);
/// assert_eq!(first.sequence_hash(), first.block_hash());
///
/// let second = TokenBlock::new(vec![5, 6, 7, 8], 1337, Some(&first)).unwrap();
/// assert_eq!(second.position(), 1);
/// assert_eq!(second.parent_sequence_hash(), Some(first.sequence_hash()));
/// assert_eq!(
///     second.sequence_hash(),
///     compute_next_sequence_hash(first.sequence_hash(), second.block_hash())
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBlock {
    tokens: BlockTokens,
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
        Self::after(
            BlockTokens::from_vec(tokens),
            salt_hash,
            parent.map(|p| p.lineage),
        )
    }

    /// Hashes `tokens` as the block that follows the block whose lineage hash
    /// is `parent`; this is all a child needs to know about its parent.
    #[inline]
    pub(crate) fn after(
        tokens: BlockTokens,
        salt_hash: SaltHash,
        parent: Option<PositionalLineageHash>,
    ) -> Result<Self, LineagePositionError> {
        Self::hashed(tokens, salt_hash, parent, |p, h| p.try_extend(h))
    }

    /// [`after`](Self::after) for a block whose position the caller has
    /// already checked (see `check_positions` in the sequence module).
    #[inline]
    pub(crate) fn after_checked(
        tokens: BlockTokens,
        salt_hash: SaltHash,
        parent: Option<PositionalLineageHash>,
    ) -> Self {
        let extend = |p: PositionalLineageHash, h| Ok::<_, std::convert::Infallible>(p.extend(h));
        match Self::hashed(tokens, salt_hash, parent, extend) {
            Ok(block) => block,
            Err(never) => match never {},
        }
    }

    /// Hashes `tokens` and extends `parent`'s lineage with `extend` (the
    /// checked or the unchecked form).
    #[inline(always)]
    fn hashed<E>(
        tokens: BlockTokens,
        salt_hash: SaltHash,
        parent: Option<PositionalLineageHash>,
        extend: impl FnOnce(PositionalLineageHash, BlockHash) -> Result<PositionalLineageHash, E>,
    ) -> Result<Self, E> {
        let block_hash = compute_block_hash_for_tokens(tokens.as_slice(), salt_hash);
        let lineage = match parent {
            None => PositionalLineageHash::root(block_hash),
            Some(p) => extend(p, block_hash)?,
        };
        Ok(Self {
            tokens,
            salt_hash,
            block_hash,
            lineage,
            parent_sequence_hash: parent.map(|p| p.current_sequence_hash()),
        })
    }

    /// The block's tokens.
    pub fn tokens(&self) -> &[Token] {
        self.tokens.as_slice()
    }

    /// The salt hash the block was hashed with.
    pub fn salt_hash(&self) -> SaltHash {
        self.salt_hash
    }

    /// Hash of this block's tokens alone.
    pub fn block_hash(&self) -> BlockHash {
        self.block_hash
    }

    /// Hash of this block and every block before it: the 64-bit
    /// [`SequenceHash64`], not the manager's 128-bit key (that is
    /// [`positional_lineage_hash`](Self::positional_lineage_hash), which
    /// holds this value).
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
        self.tokens.as_slice().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::block_tokens::BlockTokens;
    use crate::tokens::{compute_next_sequence_hash, MAX_LINEAGE_POSITION};

    #[test]
    fn chained_blocks_link_hashes_and_positions() {
        let a = TokenBlock::new(vec![1, 2, 3, 4], 1337, None).unwrap();
        assert_eq!(a.block_hash(), 14643705804678351452);
        assert_eq!(a.sequence_hash(), a.block_hash());
        assert_eq!(a.parent_sequence_hash(), None);
        assert_eq!(
            a.positional_lineage_hash(),
            PositionalLineageHash::root(a.block_hash())
        );
        assert_eq!((a.position(), a.block_size(), a.salt_hash()), (0, 4, 1337));
        assert_eq!(a.tokens(), &[1, 2, 3, 4]);

        let b = TokenBlock::new(vec![5, 6, 7, 8], 1337, Some(&a)).unwrap();
        assert_eq!(b.block_hash(), 16777012769546811212);
        assert_eq!(b.sequence_hash(), 4945711292740353085);
        assert_eq!(
            b.sequence_hash(),
            compute_next_sequence_hash(a.sequence_hash(), b.block_hash())
        );
        assert_eq!(b.parent_sequence_hash(), Some(a.sequence_hash()));
        assert_eq!(b.position(), 1);
    }

    #[test]
    fn next_block_inherits_size_salt_and_parent() {
        let a = TokenBlock::new(vec![1, 2, 3], 9, None).unwrap();
        let next = a.next_block();
        assert!(next.is_empty());
        assert_eq!((next.block_size(), next.salt_hash()), (3, 9));
        assert_eq!(next.position(), 1);
        assert_eq!(next.parent_sequence_hash(), Some(a.sequence_hash()));
    }

    #[test]
    fn child_past_the_position_limit_is_an_error() {
        let parent = PositionalLineageHash::new(5, Some(6), MAX_LINEAGE_POSITION - 1);
        assert_eq!(
            TokenBlock::after(BlockTokens::from_slice(&[1]), 0, Some(parent)),
            Err(LineagePositionError {
                position: MAX_LINEAGE_POSITION
            })
        );
    }
}
