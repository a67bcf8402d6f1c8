//! A hasher for keys that already are hashes.
//!
//! Lineage hashes are xxh3 outputs packed with a position; hashing them again
//! with SipHash would cost more than the table probe. [`PreHashed`] folds the
//! 128 bits to 64 and spends one multiply so that both the table's bucket
//! index (low bits) and its control tag (top bits) see every input bit.

use std::hash::{BuildHasherDefault, Hasher};

/// Odd 64-bit constant (2^64 / golden ratio): a multiply by it spreads every
/// input bit into the high half of the product.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hasher for pre-hashed integer keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(MIX).rotate_left(26)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached by key types other than the integers below; an FNV-1a
        // step per byte keeps such keys spread.
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// `BuildHasher` of [`PreHashed`].
pub type PreHashedBuild = BuildHasherDefault<PreHashed>;

#[cfg(test)]
mod tests {
    use super::*;
    use kvbm::tokens::PositionalLineageHash;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn chained_lineage_hashes_spread_over_buckets() {
        let build = PreHashedBuild::default();
        let mut h = PositionalLineageHash::root(7);
        let mut low_buckets = HashSet::new();
        let mut tags = HashSet::new();
        for i in 0..4096u64 {
            h = h.extend(i * 31 + 5);
            let v = build.hash_one(h);
            low_buckets.insert(v & 1023);
            tags.insert(v >> 57);
        }
        // 4096 random values fill nearly all of 1024 buckets and all 128 tags.
        assert!(low_buckets.len() > 950, "{}", low_buckets.len());
        assert_eq!(tags.len(), 128);
    }
}
