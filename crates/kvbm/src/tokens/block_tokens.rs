//! Where a full block keeps its tokens: inline for blocks of up to 16 tokens
//! (the usual KV block size), on the heap beyond. Cutting a prompt into
//! blocks then allocates once for the block list instead of once per block.

use std::fmt;

use super::hash::Token;

/// Blocks up to this many tokens store them inline.
const INLINE: usize = 16;

#[derive(Clone)]
pub(crate) enum BlockTokens {
    Inline { len: u8, buf: [Token; INLINE] },
    Heap(Box<[Token]>),
}

impl BlockTokens {
    #[inline]
    pub(crate) fn from_slice(tokens: &[Token]) -> Self {
        if let Ok(full) = <[Token; INLINE]>::try_from(tokens) {
            // The common case, copied with fixed-size moves.
            return BlockTokens::Inline {
                len: INLINE as u8,
                buf: full,
            };
        }
        if tokens.len() <= INLINE {
            let mut buf = [0; INLINE];
            for (dst, src) in buf.iter_mut().zip(tokens) {
                *dst = *src;
            }
            BlockTokens::Inline {
                len: tokens.len() as u8,
                buf,
            }
        } else {
            BlockTokens::Heap(tokens.into())
        }
    }

    /// Keeps `tokens`' allocation when the block is too large to go inline.
    pub(crate) fn from_vec(tokens: Vec<Token>) -> Self {
        if tokens.len() <= INLINE {
            Self::from_slice(&tokens)
        } else {
            BlockTokens::Heap(tokens.into_boxed_slice())
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Token] {
        match self {
            BlockTokens::Inline { len, buf } => &buf[..*len as usize],
            BlockTokens::Heap(tokens) => tokens,
        }
    }
}

impl PartialEq for BlockTokens {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for BlockTokens {}

impl fmt::Debug for BlockTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_hold_the_same_tokens() {
        for len in [0usize, 1, 15, 16, 17, 64] {
            let tokens: Vec<Token> = (0..len as u32).collect();
            let a = BlockTokens::from_slice(&tokens);
            let b = BlockTokens::from_vec(tokens.clone());
            assert_eq!(a.as_slice(), tokens.as_slice());
            assert_eq!(a, b);
            assert_eq!(matches!(a, BlockTokens::Inline { .. }), len <= INLINE);
        }
    }
}
