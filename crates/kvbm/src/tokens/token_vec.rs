//! [`Tokens`]: an owned run of token ids.

use std::ops::Deref;

use super::hash::Token;

/// An owned list of token ids.
///
/// A thin wrapper around `Vec<Token>` that mirrors `dynamo_tokens::Tokens`, so
/// code written against that crate keeps compiling. It dereferences to
/// `[Token]`, so every slice method is available, and compares equal to
/// vectors and slices holding the same ids.
///
/// ```
/// use kvbm::tokens::Tokens;
///
/// let tokens = Tokens::from(vec![1, 2, 3]);
/// assert_eq!(tokens.len(), 3);
/// assert_eq!(tokens, vec![1, 2, 3]);
/// assert_eq!(&tokens[1..], &[2, 3]);
/// let back: Vec<u32> = tokens.into();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty list with room for `capacity` tokens.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// The token ids as a slice.
    pub fn as_slice(&self) -> &[Token] {
        &self.0
    }

    /// Gives back the underlying vector.
    pub fn into_inner(self) -> Vec<Token> {
        self.0
    }

    pub(crate) fn inner_mut(&mut self) -> &mut Vec<Token> {
        &mut self.0
    }
}

impl Deref for Tokens {
    type Target = [Token];

    fn deref(&self) -> &[Token] {
        &self.0
    }
}

impl AsRef<[Token]> for Tokens {
    fn as_ref(&self) -> &[Token] {
        &self.0
    }
}

impl std::borrow::Borrow<[Token]> for Tokens {
    fn borrow(&self) -> &[Token] {
        &self.0
    }
}

impl From<Vec<Token>> for Tokens {
    fn from(tokens: Vec<Token>) -> Self {
        Self(tokens)
    }
}

impl From<&[Token]> for Tokens {
    fn from(tokens: &[Token]) -> Self {
        Self(tokens.to_vec())
    }
}

impl<const N: usize> From<[Token; N]> for Tokens {
    fn from(tokens: [Token; N]) -> Self {
        Self(tokens.to_vec())
    }
}

/// Reinterprets each `i32` as the `u32` with the same bits, as tokenizers
/// that hand out signed ids expect.
impl From<Vec<i32>> for Tokens {
    fn from(tokens: Vec<i32>) -> Self {
        Self(tokens.into_iter().map(|t| t as Token).collect())
    }
}

/// Reinterprets each `i32` as the `u32` with the same bits.
impl From<&[i32]> for Tokens {
    fn from(tokens: &[i32]) -> Self {
        Self(tokens.iter().map(|&t| t as Token).collect())
    }
}

impl From<Tokens> for Vec<Token> {
    fn from(tokens: Tokens) -> Self {
        tokens.0
    }
}

impl FromIterator<Token> for Tokens {
    fn from_iter<I: IntoIterator<Item = Token>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for Tokens {
    type Item = Token;
    type IntoIter = std::vec::IntoIter<Token>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Tokens {
    type Item = &'a Token;
    type IntoIter = std::slice::Iter<'a, Token>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq<Vec<Token>> for Tokens {
    fn eq(&self, other: &Vec<Token>) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Tokens> for Vec<Token> {
    fn eq(&self, other: &Tokens) -> bool {
        *self == other.0
    }
}

impl PartialEq<[Token]> for Tokens {
    fn eq(&self, other: &[Token]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[Token]> for Tokens {
    fn eq(&self, other: &&[Token]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Tokens> for &[Token] {
    fn eq(&self, other: &Tokens) -> bool {
        *self == other.0
    }
}

impl<const N: usize> PartialEq<[Token; N]> for Tokens {
    fn eq(&self, other: &[Token; N]) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenBlockError;

    #[test]
    fn conversions_preserve_ids() {
        let v = vec![7u32, 8, 9];
        assert_eq!(Tokens::from(v.clone()).into_inner(), v);
        assert_eq!(Tokens::from(v.as_slice()), v);
        assert_eq!(Tokens::from([7u32, 8, 9]), v);
        assert_eq!(Vec::<u32>::from(Tokens::from(v.clone())), v);
        assert_eq!(v.iter().copied().collect::<Tokens>(), v);
        assert_eq!(Tokens::from(v.clone()).into_iter().collect::<Vec<_>>(), v);
        let t = Tokens::from(v.clone());
        assert_eq!((&t).into_iter().sum::<u32>(), 24);
    }

    #[test]
    fn signed_ids_keep_their_bits() {
        assert_eq!(Tokens::from(vec![-1i32, 5]), vec![u32::MAX, 5]);
        assert_eq!(Tokens::from(&[-2i32][..]), vec![u32::MAX - 1]);
    }

    #[test]
    fn compares_with_vectors_slices_and_arrays_both_ways() {
        let t = Tokens::from(vec![1, 2]);
        let s: &[u32] = &[1, 2];
        assert!(t == vec![1, 2]);
        assert!(vec![1, 2] == t);
        assert!(t == *s);
        assert!(t == s);
        assert!(s == t);
        assert!(t == [1, 2]);
        assert!(t != vec![2, 1]);
    }

    #[test]
    fn derefs_and_borrows_as_a_slice() {
        let mut t = Tokens::with_capacity(4);
        assert!(t.is_empty());
        assert!(t.capacity_hint() >= 4);
        t.inner_mut().extend([3, 4]);
        assert_eq!(t.as_slice(), &[3, 4]);
        assert_eq!(t.as_ref(), &[3, 4]);
        assert_eq!(std::borrow::Borrow::<[u32]>::borrow(&t), &[3, 4]);
        assert_eq!(t.first(), Some(&3));
        assert_eq!(Tokens::new(), Tokens::default());
    }

    impl Tokens {
        fn capacity_hint(&self) -> usize {
            self.0.capacity()
        }
    }

    #[test]
    fn into_sequence_splits_into_blocks() {
        let seq = Tokens::from(vec![1, 2, 3, 4, 5]).into_sequence(2, Some(9));
        assert_eq!(seq.blocks().len(), 2);
        assert_eq!(seq.current_block().tokens(), &[5]);
        assert_eq!(seq.salt_hash(), 9);
        assert_eq!(
            Tokens::from(vec![1]).try_into_sequence(0, None),
            Err(TokenBlockError::ZeroBlockSize)
        );
    }
}
