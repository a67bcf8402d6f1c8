//! A hasher for keys that already are well-mixed hashes.
//!
//! Sequence hashes are xxh3 outputs; running them through SipHash again
//! would cost more than the table lookup itself. The fold hasher keeps the
//! key's own bits (folding a `u128` to 64 bits).

use std::hash::{BuildHasherDefault, Hasher};

/// Passes pre-hashed keys through, folding wide integers to 64 bits.
#[derive(Debug, Default, Clone, Copy)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for key types other than the integers below; mix
        // byte-wise so that such keys still spread (FNV-1a step).
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
        // The low bits of a lineage hash hold the parent fragment, the middle
        // the block's own sequence hash; folding keeps both.
        self.0 ^= (n as u64) ^ ((n >> 64) as u64).rotate_left(29);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// `BuildHasher` for [`FoldHasher`].
pub type FoldBuildHasher = BuildHasherDefault<FoldHasher>;

/// A `HashMap` keyed by pre-hashed values.
pub type FoldHashMap<K, V> = std::collections::HashMap<K, V, FoldBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SequenceHash;
    use std::hash::BuildHasher;

    #[test]
    fn distinct_lineage_hashes_spread() {
        let build = FoldBuildHasher::default();
        let mut seen = std::collections::HashSet::new();
        let mut h = SequenceHash::root(1);
        for i in 0..10_000u64 {
            seen.insert(build.hash_one(h) >> 50);
            h = h.extend(i);
        }
        // 14 high bits, 10k keys: a good spread fills most buckets.
        assert!(seen.len() > 6_000, "only {} of 16384 buckets", seen.len());
    }
}
