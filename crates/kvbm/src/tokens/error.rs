//! [`TokenBlockError`]: what can go wrong while building or editing blocks.

use super::lineage::LineagePositionError;

/// Failure of an operation on a [`PartialTokenBlock`](super::PartialTokenBlock)
/// or a [`TokenBlockSequence`](super::TokenBlockSequence).
///
/// The first four variants carry the same meaning (and display text) as their
/// namesakes in `dynamo-tokens` 1.6.1; the last two report input that the
/// reference crate would have panicked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenBlockError {
    /// A token was pushed onto a block that already holds `block_size` tokens.
    #[error("TokenBlock is full")]
    Full,

    /// A block was committed before it held exactly `block_size` tokens.
    #[error("TokenBlock is incomplete")]
    Incomplete,

    /// A token was popped from a block that holds none.
    #[error("TokenBlock is empty")]
    Empty,

    /// More tokens were asked to be removed than are present.
    #[error("TokenBlock has insufficient tokens")]
    InsufficientTokens,

    /// A block size of zero was requested.
    #[error("block size must be greater than zero")]
    ZeroBlockSize,

    /// Completing a block would place it at a position a
    /// [`PositionalLineageHash`](super::PositionalLineageHash) cannot encode.
    #[error(transparent)]
    LineagePosition(#[from] LineagePositionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_reference_wording() {
        assert_eq!(TokenBlockError::Full.to_string(), "TokenBlock is full");
        assert_eq!(
            TokenBlockError::Incomplete.to_string(),
            "TokenBlock is incomplete"
        );
        assert_eq!(TokenBlockError::Empty.to_string(), "TokenBlock is empty");
        assert_eq!(
            TokenBlockError::InsufficientTokens.to_string(),
            "TokenBlock has insufficient tokens"
        );
    }

    #[test]
    fn lineage_errors_convert_and_keep_their_message() {
        let inner = LineagePositionError { position: 1 << 24 };
        let err: TokenBlockError = inner.into();
        assert_eq!(err, TokenBlockError::LineagePosition(inner));
        assert_eq!(err.to_string(), inner.to_string());
        assert!(TokenBlockError::ZeroBlockSize.to_string().contains("zero"));
    }
}
