//! The hasher of every map keyed by an already-hashed value.
//!
//! Lineage hashes and the lineage backend's `(position, fragment)` keys are
//! built from xxh3 outputs, so SipHash would be wasted work. They are not
//! uniform bit strings though: a [`SequenceHash`](crate::SequenceHash) packs
//! mode and position bits above the block's sequence hash and a parent
//! fragment below it, and the parent fragment is all zeros for first blocks.
//! Passing such a key through (or XOR-folding its halves) leaves some of the
//! low bits a hash table indexes its buckets with constant for whole
//! families of keys — all first blocks, say — and probe sequences grow with
//! the table. So every key goes through one folded multiply: the product of
//! its two halves (each offset by a constant) as a 128-bit value, high half
//! XOR low half. Every output bit then depends on every input bit, at the
//! cost of one widening multiply.

use std::hash::{BuildHasherDefault, Hasher};

/// Offsets of the two halves, so that a zero half does not zero the
/// product; odd, with set bits spread over the word.
const LOW_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;
const HIGH_OFFSET: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// Mixes a 128-bit key to 64 well-spread bits with one widening multiply.
#[inline]
pub(crate) fn mix128(key: u128) -> u64 {
    let product =
        u128::from(key as u64 ^ LOW_OFFSET) * u128::from((key >> 64) as u64 ^ HIGH_OFFSET);
    (product as u64) ^ ((product >> 64) as u64)
}

/// A [`Hasher`] for keys that are already hashes (or pack hashes with small
/// integers): one folded multiply per key, so that every output bit depends
/// on every key bit. Public for crates that index kvbm's hashes in maps of
/// their own (kvbm-router), so that all such maps hash alike.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.0 ^= mix128(n);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 ^= mix128(u128::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    /// Only reached by key types other than the integers above: mixes the
    /// bytes in 16-byte words, chaining the state through each.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(16) {
            let mut word = [0u8; 16];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix128(u128::from_le_bytes(word) ^ u128::from(self.0));
        }
    }
}

/// A 128-bit key stored as four `u32` words. With 4-byte alignment a map
/// entry of such a key and a `u32` value takes 20 bytes, where a `u128` key
/// pads it to 32 and two `u64` words to 24; it hashes like the `u128` it
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedKey([u32; 4]);

impl From<crate::SequenceHash> for PackedKey {
    #[inline]
    fn from(hash: crate::SequenceHash) -> Self {
        let value = hash.as_u128();
        PackedKey([
            value as u32,
            (value >> 32) as u32,
            (value >> 64) as u32,
            (value >> 96) as u32,
        ])
    }
}

impl PackedKey {
    /// The `u128` the key holds.
    #[inline]
    fn value(self) -> u128 {
        let [a, b, c, d] = self.0.map(u128::from);
        a | b << 32 | c << 64 | d << 96
    }
}

impl From<PackedKey> for crate::SequenceHash {
    #[inline]
    fn from(key: PackedKey) -> Self {
        crate::SequenceHash::from_u128(key.value())
    }
}

impl std::hash::Hash for PackedKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.value());
    }
}

/// `BuildHasher` for [`PrehashedHasher`].
pub type PrehashedBuildHasher = BuildHasherDefault<PrehashedHasher>;

/// A `HashMap` keyed by pre-hashed values.
pub(crate) type PrehashedMap<K, V> = std::collections::HashMap<K, V, PrehashedBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SequenceHash;
    use std::hash::BuildHasher;

    /// Bucket-index bits of a table of 2^22 slots (hashbrown indexes its
    /// buckets with the low bits of the hash).
    const INDEX_BITS: u32 = 22;
    /// Keys per family: a sixteenth of the table, enough to show a family
    /// that leaves index bits unused, few enough for debug builds.
    const KEYS: usize = 1 << 18;

    /// Checks that the hashes of `keys` use the bucket-index bits of a
    /// 2^22-slot table like random values would: every index bit is set in
    /// about half of the keys, and the keys land in about as many distinct
    /// buckets as random ones.
    fn assert_spreads(family: &str, keys: impl Iterator<Item = SequenceHash>) {
        let build = PrehashedBuildHasher::default();
        let mask = (1u64 << INDEX_BITS) - 1;
        let mut occupied = vec![0u64; 1 << (INDEX_BITS - 6)];
        let mut ones = [0usize; INDEX_BITS as usize];
        let mut n = 0usize;
        let mut distinct = 0usize;
        for key in keys {
            let bucket = build.hash_one(key) & mask;
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += (bucket >> bit & 1) as usize;
            }
            let (word, bit) = ((bucket >> 6) as usize, bucket & 63);
            if occupied[word] & 1 << bit == 0 {
                occupied[word] |= 1 << bit;
                distinct += 1;
            }
            n += 1;
        }
        assert_eq!(n, KEYS, "{family}: wrong key count");
        for (bit, &count) in ones.iter().enumerate() {
            let share = count as f64 / n as f64;
            assert!(
                (0.48..=0.52).contains(&share),
                "{family}: index bit {bit} set in {share:.3} of keys"
            );
        }
        // Random keys: n - n²/(2·slots) distinct buckets, to first order
        // (253,952 for 2^18 keys in 2^22 slots); allow 1% less.
        let slots = (1u64 << INDEX_BITS) as f64;
        let expected = n as f64 * (1.0 - n as f64 / (2.0 * slots));
        assert!(
            distinct as f64 >= 0.99 * expected,
            "{family}: {distinct} distinct buckets, random keys give {expected:.0}"
        );
    }

    #[test]
    fn first_blocks_spread() {
        // Block hashes as small integers, the worst case for a pass-through.
        assert_spreads("first blocks", (0..KEYS as u64).map(SequenceHash::root));
    }

    #[test]
    fn one_long_chain_spreads() {
        let chain = (0..KEYS as u64).scan(None::<SequenceHash>, |last, i| {
            let next = match *last {
                None => SequenceHash::root(i),
                Some(parent) => parent.extend(i),
            };
            *last = Some(next);
            Some(next)
        });
        assert_spreads("one long chain", chain);
    }

    #[test]
    fn many_short_chains_spread() {
        let chains = (0..(KEYS / 32) as u64).flat_map(|c| {
            (0..32u64).scan(None::<SequenceHash>, move |last, i| {
                let block = c << 8 | i;
                let next = match *last {
                    None => SequenceHash::root(block),
                    Some(parent) => parent.extend(block),
                };
                *last = Some(next);
                Some(next)
            })
        });
        assert_spreads("short chains", chains);
    }

    #[test]
    fn keys_differing_only_in_position_spread() {
        let keys = (0..KEYS as u64)
            .map(|position| SequenceHash::new(0x0123_4567_89AB_CDEF, Some(42), position));
        assert_spreads("positions", keys);
    }

    #[test]
    fn lineage_node_keys_spread() {
        // The lineage backend's `position << 64 | fragment` keys: positions
        // 0..32 of many chains, fragments of small integers.
        let build = PrehashedBuildHasher::default();
        let mask = (1u64 << INDEX_BITS) - 1;
        let buckets: std::collections::HashSet<u64> = (0..KEYS as u128)
            .map(|k| build.hash_one(((k % 32) << 64) | (k / 32)) & mask)
            .collect();
        assert!(buckets.len() > KEYS * 9 / 10, "{} buckets", buckets.len());
    }

    #[test]
    fn byte_keys_spread() {
        let build = PrehashedBuildHasher::default();
        let hashes: std::collections::HashSet<u64> = (0..1000u32)
            .map(|i| build.hash_one(format!("key {i}")) >> 40)
            .collect();
        assert_eq!(hashes.len(), 1000);
    }

    #[test]
    fn packed_keys_round_trip_hash_like_u128_and_pack_tightly() {
        let build = PrehashedBuildHasher::default();
        for value in [
            0u128,
            1,
            u128::MAX,
            0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210,
        ] {
            let hash = SequenceHash::from_u128(value);
            let key = PackedKey::from(hash);
            assert_eq!(SequenceHash::from(key), hash);
            assert_eq!(build.hash_one(key), build.hash_one(value));
        }
        // The registry's count entries: key and a `u32`, no padding.
        assert_eq!(std::mem::size_of::<(PackedKey, u32)>(), 20);
    }
}
