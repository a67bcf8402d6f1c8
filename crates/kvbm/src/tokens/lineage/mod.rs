//! [`PositionalLineageHash`]: the 128-bit identity of a block in a sequence.
//!
//! It packs the block's position, its full 64-bit sequence hash and a
//! fragment of its parent's sequence hash into one `u128`, so that a child's
//! identity can be derived from the parent's alone and a router can walk a
//! prefix tree backwards by `(position, parent fragment)`.
//!
//! Layout, from the most significant bit down:
//! `[mode:2][position:P][current sequence hash:64][parent fragment:R]` with
//! `(P, R)` = (8, 54) for positions below 2^8 (mode 0), (16, 46) below 2^16
//! (mode 1) and (24, 38) below 2^24 (mode 2). Bit-identical to
//! `dynamo-tokens` 1.6.1.

use std::cmp::Ordering;
use std::fmt;

use super::hash::{compute_next_sequence_hash, BlockHash, SequenceHash64};

/// The largest block position a lineage hash can encode, plus one.
pub const MAX_LINEAGE_POSITION: u64 = 1 << 24;

/// A position that does not fit in a [`PositionalLineageHash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block position {position} exceeds the lineage hash limit of {max}", max = MAX_LINEAGE_POSITION - 1)]
pub struct LineagePositionError {
    /// The rejected position.
    pub position: u64,
}

/// Identity of a block: position + sequence hash + parent fragment in 128 bits.
///
/// Ordered by position, then sequence hash, then the packed value. Serialises
/// as 16 big-endian bytes (a msgpack `bin`, a JSON array of bytes).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PositionalLineageHash(u128);

#[inline]
const fn mode_for(position: u64) -> u32 {
    if position < (1 << 8) {
        0
    } else if position < (1 << 16) {
        1
    } else {
        2
    }
}

/// `(position bits, parent fragment bits)` of a mode.
#[inline]
const fn layout(mode: u32) -> (u32, u32) {
    match mode {
        0 => (8, 54),
        1 => (16, 46),
        // Mode 3 is never produced; values from the wire that carry it are
        // read with the widest layout rather than panicking.
        _ => (24, 38),
    }
}

/// `(mode, parent fragment bits)` of the layout of a block at `position`;
/// the position field takes the other `62 - fragment bits`.
#[inline]
pub(crate) const fn lineage_fragment_layout(position: u64) -> (u32, u32) {
    let mode = mode_for(position);
    (mode, layout(mode).1)
}

impl PositionalLineageHash {
    /// Packs a lineage hash.
    ///
    /// `parent` is the parent block's full sequence hash (`None` at a root);
    /// only its low bits are kept, as many as the position's mode allows.
    ///
    /// # Panics
    /// If `position` ≥ 2^24. Use [`try_new`](Self::try_new) for positions that
    /// come from outside the program.
    #[inline]
    pub fn new(current: SequenceHash64, parent: Option<SequenceHash64>, position: u64) -> Self {
        match Self::try_new(current, parent, position) {
            Ok(hash) => hash,
            Err(e) => panic!("{e}"),
        }
    }

    /// Packs a lineage hash, rejecting positions ≥ 2^24.
    #[inline]
    pub fn try_new(
        current: SequenceHash64,
        parent: Option<SequenceHash64>,
        position: u64,
    ) -> Result<Self, LineagePositionError> {
        if position >= MAX_LINEAGE_POSITION {
            return Err(LineagePositionError { position });
        }
        let mode = mode_for(position);
        let (_, parent_bits) = layout(mode);
        let parent_mask = (1u128 << parent_bits) - 1;
        let packed = ((mode as u128) << 126)
            | ((position as u128) << (64 + parent_bits))
            | ((current as u128) << parent_bits)
            | (parent.unwrap_or(0) as u128 & parent_mask);
        Ok(Self(packed))
    }

    /// The lineage hash of a first block: its sequence hash is its block hash.
    #[inline]
    pub fn root(block_hash: BlockHash) -> Self {
        Self::new(block_hash, None, 0)
    }

    /// The lineage hash of the block that follows this one.
    ///
    /// # Panics
    /// If this block is at position 2^24 − 1; see [`try_extend`](Self::try_extend).
    #[inline]
    pub fn extend(&self, child_block_hash: BlockHash) -> Self {
        match self.try_extend(child_block_hash) {
            Ok(hash) => hash,
            Err(e) => panic!("{e}"),
        }
    }

    /// The lineage hash of the block that follows this one, or an error when
    /// the child's position would not fit.
    #[inline]
    pub fn try_extend(&self, child_block_hash: BlockHash) -> Result<Self, LineagePositionError> {
        let parent = self.current_sequence_hash();
        let child = compute_next_sequence_hash(parent, child_block_hash);
        Self::try_new(child, Some(parent), self.position() + 1)
    }

    /// The encoding mode: 0 for positions below 2^8, 1 below 2^16, 2 below
    /// 2^24. It decides how many bits the position and the parent fragment
    /// get.
    #[inline]
    pub fn mode(&self) -> u8 {
        (self.0 >> 126) as u8
    }

    /// The block's position in its sequence (0 for the first block).
    #[inline]
    pub fn position(&self) -> u64 {
        let (position_bits, parent_bits) = layout(self.mode() as u32);
        ((self.0 >> (64 + parent_bits)) & ((1u128 << position_bits) - 1)) as u64
    }

    /// The block's full 64-bit sequence hash.
    #[inline]
    pub fn current_sequence_hash(&self) -> SequenceHash64 {
        let (_, parent_bits) = layout(self.mode() as u32);
        (self.0 >> parent_bits) as u64
    }

    /// The low bits of the parent's sequence hash that this hash carries
    /// (54, 46 or 38 of them, by position); 0 at a root.
    #[inline]
    pub fn parent_hash_fragment(&self) -> u64 {
        let (_, parent_bits) = layout(self.mode() as u32);
        (self.0 & ((1u128 << parent_bits) - 1)) as u64
    }

    /// This block's sequence hash cut to the fragment width a child at
    /// `child_position` stores, so `child.parent_hash_fragment() ==
    /// parent.parent_fragment_for_child_position(child.position())` for a true
    /// parent/child pair.
    #[inline]
    pub fn parent_fragment_for_child_position(&self, child_position: u64) -> u64 {
        let (_, parent_bits) = layout(mode_for(child_position));
        self.current_sequence_hash() & ((1u64 << parent_bits) - 1)
    }

    /// The packed 128-bit value.
    #[inline]
    pub fn as_u128(&self) -> u128 {
        self.0
    }

    /// Rebuilds a lineage hash from its packed value (as read from the wire).
    #[inline]
    pub const fn from_u128(value: u128) -> Self {
        Self(value)
    }
}

impl std::hash::Hash for PositionalLineageHash {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0);
    }
}

impl Ord for PositionalLineageHash {
    fn cmp(&self, other: &Self) -> Ordering {
        self.position()
            .cmp(&other.position())
            .then_with(|| {
                self.current_sequence_hash()
                    .cmp(&other.current_sequence_hash())
            })
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for PositionalLineageHash {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for PositionalLineageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{:016x}:{:x}",
            self.position(),
            self.current_sequence_hash(),
            self.parent_hash_fragment()
        )
    }
}

impl fmt::Display for PositionalLineageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl serde::Serialize for PositionalLineageHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0.to_be_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for PositionalLineageHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = PositionalLineageHash;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("16 big-endian bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                let bytes: [u8; 16] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(PositionalLineageHash(u128::from_be_bytes(bytes)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut bytes = [0u8; 16];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(17, &self));
                }
                Ok(PositionalLineageHash(u128::from_be_bytes(bytes)))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

#[cfg(test)]
mod tests;
