//! [`TokenBlockSequence`]: a growing token sequence cut into hashed blocks.

use std::ops::Range;

use super::block::TokenBlock;
use super::block_tokens::BlockTokens;
use super::error::TokenBlockError;
use super::hash::{SaltHash, Token};
use super::lineage::{LineagePositionError, MAX_LINEAGE_POSITION};
use super::partial::PartialTokenBlock;
use super::token_vec::Tokens;

/// A token sequence kept as full, hashed [`TokenBlock`]s followed by one
/// [`PartialTokenBlock`] that collects the tokens of the next block.
///
/// A block is committed, and its hashes computed, the moment its last token
/// arrives, so the partial block is never full. Every block is hashed with the
/// sequence's salt hash, which keeps sequences from different models or
/// adapters apart.
///
/// Semantics follow `dynamo_tokens::TokenBlockSequence` 1.6.1, with two
/// additions: a zero block size or a block position past 2^24 − 1 is reported
/// as a [`TokenBlockError`] by the `try_*` constructors and by
/// [`extend`](Self::extend)/[`append`](Self::append) instead of panicking.
///
/// ```
/// use kvbm::tokens::TokenBlockSequence;
///
/// let mut seq = TokenBlockSequence::from_slice(&[1, 2, 3, 4, 5], 4, Some(1337));
/// assert_eq!(seq.blocks().len(), 1);
/// assert_eq!(seq.blocks()[0].block_hash(), 14643705804678351452);
/// assert_eq!(seq.current_block().tokens(), &[5]);
///
/// // Three more tokens complete the second block, whose index is returned.
/// assert_eq!(seq.extend(vec![6, 7].into()).unwrap(), None);
/// assert_eq!(seq.append(8).unwrap(), Some(1));
/// assert_eq!(seq.total_tokens(), 8);
/// assert_eq!(seq.blocks()[1].parent_sequence_hash(), Some(seq.blocks()[0].sequence_hash()));
///
/// // Cutting back into a committed block turns it into the partial block again.
/// seq.unwind(3).unwrap();
/// assert_eq!(seq.blocks().len(), 1);
/// assert_eq!(seq.current_block().tokens(), &[5]);
/// assert_eq!(seq.pop(), Some(5));
/// assert_eq!(seq.total_tokens(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBlockSequence {
    blocks: Vec<TokenBlock>,
    current_block: PartialTokenBlock,
    salt_hash: SaltHash,
    block_size: usize,
}

/// Checks that blocks at positions `first .. first + count` can all be given
/// a lineage hash.
fn check_positions(first: u64, count: usize) -> Result<(), LineagePositionError> {
    if count == 0 {
        return Ok(());
    }
    let last = first.saturating_add(count as u64 - 1);
    if last >= MAX_LINEAGE_POSITION {
        return Err(LineagePositionError {
            position: first.max(MAX_LINEAGE_POSITION),
        });
    }
    Ok(())
}

impl TokenBlockSequence {
    /// Cuts `tokens` into blocks of `block_size`; the leftover tokens become
    /// the partial block. `salt_hash` defaults to 0.
    ///
    /// # Panics
    /// If `block_size` is 0 or the tokens fill more than 2^24 blocks; use
    /// [`try_new`](Self::try_new) to get an error instead.
    pub fn new(tokens: Tokens, block_size: u32, salt_hash: Option<SaltHash>) -> Self {
        Self::from_slice(&tokens, block_size, salt_hash)
    }

    /// Like [`new`](Self::new), but fails with
    /// [`TokenBlockError::ZeroBlockSize`] or
    /// [`TokenBlockError::LineagePosition`] instead of panicking.
    pub fn try_new(
        tokens: Tokens,
        block_size: u32,
        salt_hash: Option<SaltHash>,
    ) -> Result<Self, TokenBlockError> {
        Self::try_from_slice(&tokens, block_size, salt_hash)
    }

    /// Cuts a slice of tokens into blocks of `block_size`; the leftover
    /// tokens become the partial block. `salt_hash` defaults to 0.
    ///
    /// # Panics
    /// If `block_size` is 0 or the tokens fill more than 2^24 blocks; use
    /// [`try_from_slice`](Self::try_from_slice) to get an error instead.
    pub fn from_slice(tokens: &[Token], block_size: u32, salt_hash: Option<SaltHash>) -> Self {
        Self::try_from_slice(tokens, block_size, salt_hash)
            .unwrap_or_else(|e| panic!("cannot build a token block sequence: {e}"))
    }

    /// Like [`from_slice`](Self::from_slice), but fails with
    /// [`TokenBlockError::ZeroBlockSize`] or
    /// [`TokenBlockError::LineagePosition`] instead of panicking.
    ///
    /// ```
    /// use kvbm::tokens::{TokenBlockError, TokenBlockSequence};
    ///
    /// assert_eq!(
    ///     TokenBlockSequence::try_from_slice(&[1, 2], 0, None),
    ///     Err(TokenBlockError::ZeroBlockSize)
    /// );
    /// let seq = TokenBlockSequence::try_from_slice(&[1, 2], 2, None).unwrap();
    /// assert_eq!(seq.salt_hash(), 0);
    /// ```
    pub fn try_from_slice(
        tokens: &[Token],
        block_size: u32,
        salt_hash: Option<SaltHash>,
    ) -> Result<Self, TokenBlockError> {
        let salt_hash = salt_hash.unwrap_or_default();
        let (blocks, current_block) = Self::try_split_tokens(tokens, block_size, salt_hash)?;
        Ok(Self {
            blocks,
            current_block,
            salt_hash,
            block_size: block_size as usize,
        })
    }

    /// Cuts `tokens` into hashed blocks of `block_size` and the partial block
    /// that follows them, without building a sequence.
    ///
    /// # Panics
    /// If `block_size` is 0 or the tokens fill more than 2^24 blocks; see
    /// [`try_split_tokens`](Self::try_split_tokens).
    pub fn split_tokens(
        tokens: &[Token],
        block_size: u32,
        salt_hash: SaltHash,
    ) -> (Vec<TokenBlock>, PartialTokenBlock) {
        Self::try_split_tokens(tokens, block_size, salt_hash)
            .unwrap_or_else(|e| panic!("cannot split tokens into blocks: {e}"))
    }

    /// Like [`split_tokens`](Self::split_tokens), but fails with
    /// [`TokenBlockError::ZeroBlockSize`] or
    /// [`TokenBlockError::LineagePosition`] instead of panicking.
    pub fn try_split_tokens(
        tokens: &[Token],
        block_size: u32,
        salt_hash: SaltHash,
    ) -> Result<(Vec<TokenBlock>, PartialTokenBlock), TokenBlockError> {
        if block_size == 0 {
            return Err(TokenBlockError::ZeroBlockSize);
        }
        let chunks = tokens.chunks_exact(block_size as usize);
        let leftover = chunks.remainder();
        check_positions(0, chunks.len())?;

        // Every position was checked above, so each block is built
        // infallibly, straight into the list (an exact-size `extend` writes
        // each block in place, with no `Result` to move it through), and
        // the parent's lineage is carried in a register rather than read
        // back from the block just written.
        let mut parent = None;
        let mut blocks: Vec<TokenBlock> = Vec::with_capacity(chunks.len());
        blocks.extend(chunks.map(|chunk| {
            let block =
                TokenBlock::after_checked(BlockTokens::from_slice(chunk), salt_hash, parent);
            parent = Some(block.positional_lineage_hash());
            block
        }));
        let mut current = PartialTokenBlock::after(block_size, salt_hash, parent);
        current.push_tokens(leftover);
        Ok((blocks, current))
    }

    /// Appends `tokens`, committing every block they complete.
    ///
    /// Returns the indices (into [`blocks`](Self::blocks)) of the blocks this
    /// call completed, or `None` if it completed none.
    ///
    /// # Errors
    /// [`TokenBlockError::LineagePosition`] if a completed block would sit at
    /// position 2^24 or later. The check happens up front: on error the
    /// sequence is unchanged.
    pub fn extend(&mut self, tokens: Tokens) -> Result<Option<Range<usize>>, TokenBlockError> {
        self.extend_from_slice(&tokens)
    }

    /// [`extend`](Self::extend) for a borrowed slice.
    pub fn extend_from_slice(
        &mut self,
        tokens: &[Token],
    ) -> Result<Option<Range<usize>>, TokenBlockError> {
        let completing = self.current_block.len().saturating_add(tokens.len()) / self.block_size;
        check_positions(self.current_block.position(), completing)?;

        let start = self.blocks.len();
        let mut rest = tokens;
        while !rest.is_empty() {
            rest = self.current_block.push_tokens(rest);
            if self.current_block.remaining() == 0 {
                let block = self.current_block.commit()?;
                self.blocks.push(block);
            }
        }
        let end = self.blocks.len();
        Ok((end > start).then_some(start..end))
    }

    /// Appends one token; returns the index of the block it completed, if any.
    ///
    /// # Errors
    /// As [`extend`](Self::extend).
    pub fn append(&mut self, token: Token) -> Result<Option<usize>, TokenBlockError> {
        Ok(self.extend_from_slice(&[token])?.map(|range| range.start))
    }

    /// Keeps the first `len` tokens and drops the rest, like `Vec::truncate`;
    /// does nothing if the sequence is not longer than `len`.
    ///
    /// Committed blocks past the cut are dropped; the block the cut falls in
    /// becomes the partial block again, holding its tokens before the cut.
    ///
    /// Never fails in practice; the `Result` matches the reference API.
    pub fn truncate(&mut self, len: usize) -> Result<(), TokenBlockError> {
        let total = self.total_tokens();
        if len >= total {
            return Ok(());
        }
        let to_drop = total - len;
        if to_drop <= self.current_block.len() {
            return self.current_block.pop_tokens(to_drop);
        }
        // The cut lands inside committed block `len / block_size`.
        self.blocks.truncate(len / self.block_size + 1);
        let source = self
            .blocks
            .pop()
            .ok_or(TokenBlockError::InsufficientTokens)?;
        let keep = &source.tokens()[..len % self.block_size];
        let parent = self.blocks.last().map(TokenBlock::positional_lineage_hash);
        self.current_block.reset_to(keep, parent);
        Ok(())
    }

    /// Drops the last `count` tokens.
    ///
    /// # Errors
    /// [`TokenBlockError::InsufficientTokens`] if the sequence holds fewer
    /// than `count` tokens; the sequence is unchanged. Unwinding exactly
    /// [`total_tokens`](Self::total_tokens) empties it.
    pub fn unwind(&mut self, count: usize) -> Result<(), TokenBlockError> {
        let total = self.total_tokens();
        if count > total {
            return Err(TokenBlockError::InsufficientTokens);
        }
        self.truncate(total - count)
    }

    /// Empties the sequence, keeping its block size and salt hash.
    pub fn reset(&mut self) {
        self.blocks.clear();
        self.current_block = PartialTokenBlock::after(self.block_size_u32(), self.salt_hash, None);
    }

    /// Removes and returns the last token, like `Vec::pop`; `None` if the
    /// sequence is empty. Popping the first token of the partial block's
    /// position un-commits the block before it.
    pub fn pop(&mut self) -> Option<Token> {
        let last = match self.current_block.last() {
            Some(&token) => token,
            None => *self.blocks.last()?.tokens().last()?,
        };
        self.truncate(self.total_tokens() - 1).ok()?;
        Some(last)
    }

    /// The committed blocks, in order.
    pub fn blocks(&self) -> &[TokenBlock] {
        &self.blocks
    }

    /// The last committed block, if any.
    pub fn last_complete_block(&self) -> Option<&TokenBlock> {
        self.blocks.last()
    }

    /// The partial block that receives the next tokens.
    pub fn current_block(&self) -> &PartialTokenBlock {
        &self.current_block
    }

    /// Splits the sequence into its committed blocks and its partial block.
    pub fn into_parts(self) -> (Vec<TokenBlock>, PartialTokenBlock) {
        (self.blocks, self.current_block)
    }

    /// The number of tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_size_u32(&self) -> u32 {
        // Built from a u32, so this never saturates.
        u32::try_from(self.block_size).unwrap_or(u32::MAX)
    }

    /// The salt hash every block is hashed with.
    pub fn salt_hash(&self) -> SaltHash {
        self.salt_hash
    }

    /// The number of tokens in committed blocks plus the partial block.
    pub fn total_tokens(&self) -> usize {
        self.blocks.len() * self.block_size + self.current_block.len()
    }

    /// Copies out the tokens at positions `range` of the whole sequence.
    ///
    /// A range that is reversed or reaches past
    /// [`total_tokens`](Self::total_tokens) yields an empty list, as in the
    /// reference crate.
    ///
    /// ```
    /// use kvbm::tokens::TokenBlockSequence;
    ///
    /// let seq = TokenBlockSequence::from_slice(&[10, 11, 12, 13, 14], 2, None);
    /// assert_eq!(seq.tokens_at(1..4), vec![11, 12, 13]);
    /// assert!(seq.tokens_at(3..9).is_empty());
    /// ```
    pub fn tokens_at(&self, range: Range<usize>) -> Tokens {
        if range.start > range.end || range.end > self.total_tokens() {
            return Tokens::new();
        }
        let mut out = Tokens::with_capacity(range.len());
        let committed = self.blocks.len() * self.block_size;
        let mut pos = range.start;
        while pos < range.end.min(committed) {
            let block = &self.blocks[pos / self.block_size];
            let offset = pos % self.block_size;
            let take = (self.block_size - offset).min(range.end - pos);
            out.inner_mut()
                .extend_from_slice(&block.tokens()[offset..offset + take]);
            pos += take;
        }
        if pos < range.end {
            out.inner_mut().extend_from_slice(
                &self.current_block.tokens()[pos - committed..range.end - committed],
            );
        }
        out
    }
}

// Defined here rather than in `token_vec.rs` so that the token vector, the
// lower layer, does not depend on the sequence built from it.
impl Tokens {
    /// Cuts these tokens into a [`TokenBlockSequence`] of `block_size`-token
    /// blocks hashed with `salt_hash` (0 when `None`).
    ///
    /// # Panics
    /// If `block_size` is 0 or the tokens fill more than 2^24 blocks; see
    /// [`try_into_sequence`](Self::try_into_sequence).
    pub fn into_sequence(self, block_size: u32, salt_hash: Option<SaltHash>) -> TokenBlockSequence {
        TokenBlockSequence::new(self, block_size, salt_hash)
    }

    /// Like [`into_sequence`](Self::into_sequence), but reports a zero block
    /// size or an overlong input as an error.
    pub fn try_into_sequence(
        self,
        block_size: u32,
        salt_hash: Option<SaltHash>,
    ) -> Result<TokenBlockSequence, TokenBlockError> {
        TokenBlockSequence::try_new(self, block_size, salt_hash)
    }
}

#[cfg(test)]
mod tests;
