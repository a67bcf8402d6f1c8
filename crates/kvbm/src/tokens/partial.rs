//! [`PartialTokenBlock`]: the block a sequence is still filling.

use std::ops::Deref;

use super::block::TokenBlock;
use super::block_tokens::BlockTokens;
use super::error::TokenBlockError;
use super::hash::{SaltHash, SequenceHash64, Token};
use super::lineage::PositionalLineageHash;
use super::token_vec::Tokens;

/// A block that has not yet received all of its tokens.
///
/// It already knows where it will sit: its size, its salt and the lineage hash
/// of the block before it. Once it holds exactly `block_size` tokens it can be
/// [`commit`](Self::commit)ted into a [`TokenBlock`], after which it starts
/// over, empty, as the block that follows.
///
/// It dereferences to [`Tokens`], so the tokens gathered so far can be read
/// like a slice.
///
/// ```
/// use kvbm::tokens::{TokenBlock, TokenBlockError};
///
/// let first = TokenBlock::new(vec![1, 2, 3], 0, None).unwrap();
/// let mut partial = first.next_block();
/// assert_eq!(partial.position(), 1);
/// assert_eq!(partial.remaining(), 3);
///
/// let rest = partial.push_tokens(&[4, 5, 6, 7]);
/// assert_eq!(rest, &[7]);
/// assert_eq!(partial.push_token(7), Err(TokenBlockError::Full));
///
/// let second = partial.commit().unwrap();
/// assert_eq!(second.tokens(), &[4, 5, 6]);
/// assert!(partial.is_empty());
/// assert_eq!(partial.position(), 2);
/// assert_eq!(partial.parent_sequence_hash(), Some(second.sequence_hash()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialTokenBlock {
    tokens: Tokens,
    block_size: u32,
    salt_hash: SaltHash,
    parent: Option<PositionalLineageHash>,
}

/// Most tokens a new partial block reserves room for (the largest block
/// size a [`BlockManager`](crate::BlockManager) accepts).
const PREALLOCATED_TOKENS: usize = 1024;

// Defined here rather than in `block.rs` so that a block, the lower layer,
// does not depend on the partial block that follows it.
impl TokenBlock {
    /// An empty [`PartialTokenBlock`] for the block that follows this one:
    /// same size and salt, parented on this block.
    ///
    /// ```
    /// use kvbm::tokens::TokenBlock;
    ///
    /// let block = TokenBlock::new(vec![1, 2], 0, None).unwrap();
    /// let mut next = block.next_block();
    /// next.push_token(3).unwrap();
    /// next.push_token(4).unwrap();
    /// let child = next.commit().unwrap();
    /// assert_eq!(child, TokenBlock::new(vec![3, 4], 0, Some(&block)).unwrap());
    /// ```
    pub fn next_block(&self) -> PartialTokenBlock {
        // A block holds at most u32::MAX tokens when it comes from a
        // sequence; a hand-built oversized block saturates instead.
        let block_size = u32::try_from(self.block_size()).unwrap_or(u32::MAX);
        PartialTokenBlock::after(
            block_size,
            self.salt_hash(),
            Some(self.positional_lineage_hash()),
        )
    }
}

impl PartialTokenBlock {
    /// An empty block that will follow `parent` (`None`: the first block).
    pub(crate) fn after(
        block_size: u32,
        salt_hash: SaltHash,
        parent: Option<PositionalLineageHash>,
    ) -> Self {
        Self {
            // Room for a whole block up front, so that filling it does not
            // reallocate; capped, because `block_size` is the caller's and a
            // block of 2^32 tokens must grow as tokens come, not abort here.
            tokens: Tokens::with_capacity((block_size as usize).min(PREALLOCATED_TOKENS)),
            block_size,
            salt_hash,
            parent,
        }
    }

    /// Replaces the contents and the parent; used when a sequence is cut back.
    pub(crate) fn reset_to(&mut self, tokens: &[Token], parent: Option<PositionalLineageHash>) {
        let inner = self.tokens.inner_mut();
        inner.clear();
        inner.extend_from_slice(tokens);
        self.parent = parent;
    }

    /// Adds one token.
    ///
    /// Fails with [`TokenBlockError::Full`] when the block already holds
    /// `block_size` tokens; the block is left unchanged.
    pub fn push_token(&mut self, token: Token) -> Result<(), TokenBlockError> {
        if self.remaining() == 0 {
            return Err(TokenBlockError::Full);
        }
        self.tokens.inner_mut().push(token);
        Ok(())
    }

    /// Adds as many of `tokens` as fit and returns the ones that did not.
    pub fn push_tokens<'a>(&mut self, tokens: &'a [Token]) -> &'a [Token] {
        let (taken, rest) = tokens.split_at(tokens.len().min(self.remaining()));
        self.tokens.inner_mut().extend_from_slice(taken);
        rest
    }

    /// Removes and returns the last token, or fails with
    /// [`TokenBlockError::Empty`] when there is none.
    pub fn pop_token(&mut self) -> Result<Token, TokenBlockError> {
        self.tokens.inner_mut().pop().ok_or(TokenBlockError::Empty)
    }

    /// Removes the last `count` tokens, or fails with
    /// [`TokenBlockError::InsufficientTokens`] (changing nothing) when the
    /// block holds fewer.
    pub fn pop_tokens(&mut self, count: usize) -> Result<(), TokenBlockError> {
        let len = self.len();
        if count > len {
            return Err(TokenBlockError::InsufficientTokens);
        }
        self.tokens.inner_mut().truncate(len - count);
        Ok(())
    }

    /// Turns the gathered tokens into a hashed [`TokenBlock`] and resets this
    /// block to be the (empty) one after it.
    ///
    /// # Errors
    /// - [`TokenBlockError::Incomplete`] unless the block holds exactly
    ///   `block_size` tokens;
    /// - [`TokenBlockError::LineagePosition`] when the block would sit at
    ///   position 2^24 or later.
    ///
    /// On error the block is left unchanged.
    pub fn commit(&mut self) -> Result<TokenBlock, TokenBlockError> {
        if self.tokens.len() != self.block_size() {
            return Err(TokenBlockError::Incomplete);
        }
        if let Some(parent) = self.parent {
            // Check before giving the tokens away, so a failure loses nothing.
            parent.try_extend(0)?;
        }
        let block = TokenBlock::after(
            BlockTokens::from_slice(&self.tokens),
            self.salt_hash,
            self.parent,
        )?;
        self.tokens.inner_mut().clear();
        self.parent = Some(block.positional_lineage_hash());
        Ok(block)
    }

    /// How many more tokens the block needs to be full.
    pub fn remaining(&self) -> usize {
        self.block_size().saturating_sub(self.tokens.len())
    }

    /// How many tokens the block holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the block holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens gathered so far.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The number of tokens the block holds once full.
    pub fn block_size(&self) -> usize {
        self.block_size as usize
    }

    /// The salt hash the block will be hashed with.
    pub fn salt_hash(&self) -> SaltHash {
        self.salt_hash
    }

    /// The position the block will have once committed.
    pub fn position(&self) -> u64 {
        self.parent.map_or(0, |p| p.position() + 1)
    }

    /// The sequence hash of the block before this one; `None` for the first
    /// block of a sequence.
    pub fn parent_sequence_hash(&self) -> Option<SequenceHash64> {
        self.parent.map(|p| p.current_sequence_hash())
    }
}

impl Deref for PartialTokenBlock {
    type Target = Tokens;

    fn deref(&self) -> &Tokens {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{
        compute_block_hash_for_tokens, LineagePositionError, MAX_LINEAGE_POSITION,
    };

    #[test]
    fn root_block_commits_to_a_root_lineage() {
        let mut p = PartialTokenBlock::after(2, 5, None);
        assert_eq!(p.position(), 0);
        assert_eq!(p.parent_sequence_hash(), None);
        assert_eq!((p.block_size(), p.salt_hash()), (2, 5));
        p.push_token(1).unwrap();
        assert_eq!(p.commit(), Err(TokenBlockError::Incomplete));
        assert_eq!(p.tokens(), &[1], "failed commit keeps the tokens");
        p.push_token(2).unwrap();
        let b = p.commit().unwrap();
        assert_eq!(b.block_hash(), compute_block_hash_for_tokens(&[1, 2], 5));
        assert_eq!(b.position(), 0);
        assert_eq!(p.position(), 1);
        assert!(p.is_empty());
        assert_eq!(p.remaining(), 2);
    }

    #[test]
    fn full_and_empty_are_reported() {
        let mut p = PartialTokenBlock::after(1, 0, None);
        assert_eq!(p.pop_token(), Err(TokenBlockError::Empty));
        p.push_token(9).unwrap();
        assert_eq!(p.push_token(10), Err(TokenBlockError::Full));
        assert_eq!(p.len(), 1);
        assert_eq!(p.pop_token(), Ok(9));
        assert!(p.is_empty());
    }

    #[test]
    fn push_tokens_returns_the_overflow() {
        let mut p = PartialTokenBlock::after(3, 0, None);
        assert_eq!(p.push_tokens(&[1]), &[] as &[u32]);
        assert_eq!(p.push_tokens(&[2, 3, 4, 5]), &[4, 5]);
        assert_eq!(p.push_tokens(&[6]), &[6]);
        assert_eq!(&p[..], &[1, 2, 3]);
    }

    #[test]
    fn pop_tokens_checks_the_count() {
        let mut p = PartialTokenBlock::after(4, 0, None);
        p.push_tokens(&[1, 2, 3]);
        assert_eq!(p.pop_tokens(4), Err(TokenBlockError::InsufficientTokens));
        assert_eq!(p.len(), 3);
        p.pop_tokens(2).unwrap();
        assert_eq!(p.tokens(), &[1]);
        p.pop_tokens(0).unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn last_encodable_position_commits_and_the_next_fails() {
        let last = MAX_LINEAGE_POSITION - 1;
        let parent = PositionalLineageHash::new(11, Some(22), last - 1);
        let mut p = PartialTokenBlock::after(1, 0, Some(parent));
        assert_eq!(p.position(), last);
        p.push_token(1).unwrap();
        let b = p.commit().unwrap();
        assert_eq!(b.position(), last);
        assert_eq!(b.parent_sequence_hash(), Some(11));

        p.push_token(2).unwrap();
        assert_eq!(
            p.commit(),
            Err(TokenBlockError::LineagePosition(LineagePositionError {
                position: MAX_LINEAGE_POSITION
            }))
        );
        assert_eq!(p.tokens(), &[2], "failed commit keeps the tokens");
        assert_eq!(p.position(), MAX_LINEAGE_POSITION);
    }

    #[test]
    fn reset_to_replaces_tokens_and_parent() {
        let parent = PositionalLineageHash::root(3);
        let mut p = PartialTokenBlock::after(4, 0, None);
        p.push_tokens(&[1, 2, 3]);
        p.reset_to(&[9], Some(parent));
        assert_eq!(p.tokens(), &[9]);
        assert_eq!(p.position(), 1);
        assert_eq!(p.parent_sequence_hash(), Some(3));
    }

    #[test]
    fn reserves_a_whole_block_up_to_the_cap() {
        let mut small = PartialTokenBlock::after(16, 0, None);
        assert!(small.tokens.inner_mut().capacity() >= 16);
        let mut huge = PartialTokenBlock::after(u32::MAX, 0, None);
        assert!(huge.tokens.inner_mut().capacity() <= PREALLOCATED_TOKENS);
        assert_eq!(huge.push_tokens(&[1, 2, 3]), &[] as &[u32]);
        assert_eq!(huge.remaining(), u32::MAX as usize - 3);
    }
}
