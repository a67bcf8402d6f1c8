//! The two hash functions every other hash in kvbm is built from.
//!
//! Both are xxh3-64 and bit-identical to `dynamo-tokens` 1.6.1, so block and
//! sequence hashes computed here can be exchanged with Dynamo routers and
//! workers.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

/// A token id as produced by a tokenizer.
pub type Token = u32;

/// Hash of a salt payload (model name, LoRA adapter, ...); seeds every block hash.
pub type SaltHash = u64;

/// Hash of one block's tokens alone, independent of what precedes it.
pub type BlockHash = u64;

/// Hash of a block together with everything before it in its sequence.
///
/// Not the key the block manager uses: that is the 128-bit
/// [`SequenceHash`](crate::SequenceHash) (a positional lineage hash), which
/// holds this value as its
/// [`current_sequence_hash`](super::PositionalLineageHash::current_sequence_hash).
pub type SequenceHash64 = u64;

/// Seed of the chaining step `(parent sequence hash, block hash) → sequence hash`.
///
/// Fixed by the wire format shared with Dynamo's router; changing it breaks
/// interoperability.
pub const CHAIN_SEED: u64 = 1337;

/// Hashes one block of tokens: xxh3-64 over the tokens' little-endian bytes,
/// seeded with `salt`.
///
/// ```
/// use kvbm::tokens::compute_block_hash_for_tokens;
/// assert_eq!(compute_block_hash_for_tokens(&[1, 2, 3, 4], 1337), 14643705804678351452);
/// ```
#[inline]
pub fn compute_block_hash_for_tokens(tokens: &[Token], salt: SaltHash) -> BlockHash {
    #[cfg(target_endian = "little")]
    {
        xxh3_64_with_seed(le_bytes(tokens), salt)
    }
    #[cfg(not(target_endian = "little"))]
    {
        hash_encoded(tokens, salt)
    }
}

/// The tokens' memory, which on a little-endian host already is their
/// little-endian encoding: hashing it needs no copy.
#[cfg(target_endian = "little")]
#[inline]
fn le_bytes(tokens: &[Token]) -> &[u8] {
    // SAFETY: the pointer and length describe exactly the memory of
    // `tokens`, which is initialised; `u8` has no invalid bit patterns and
    // alignment 1, and `u32` has no padding, so every byte is a valid `u8`;
    // the returned slice borrows `tokens`, so it cannot outlive or alias a
    // mutation of it. Checked under miri in CI (`.ci/run`, the soundness
    // block) by `le_bytes_is_the_little_endian_encoding` and `known_vector`;
    // where miri cannot be installed, CI runs the same tests under valgrind.
    unsafe {
        std::slice::from_raw_parts(tokens.as_ptr().cast::<u8>(), std::mem::size_of_val(tokens))
    }
}

/// Encodes the tokens little-endian through a stack buffer and hashes the
/// bytes; the portable path for big-endian hosts.
#[cfg_attr(target_endian = "little", allow(dead_code))]
fn hash_encoded(tokens: &[Token], salt: SaltHash) -> BlockHash {
    let mut buf = [0u8; 1024];
    if tokens.len() <= buf.len() / 4 {
        let len = encode_le(tokens, &mut buf);
        return xxh3_64_with_seed(&buf[..len], salt);
    }
    // Streaming xxh3 gives the same digest as the one-shot function.
    let mut hasher = Xxh3::with_seed(salt);
    for chunk in tokens.chunks(buf.len() / 4) {
        let len = encode_le(chunk, &mut buf);
        hasher.update(&buf[..len]);
    }
    hasher.digest()
}

#[cfg_attr(target_endian = "little", allow(dead_code))]
#[inline]
fn encode_le(tokens: &[Token], buf: &mut [u8]) -> usize {
    for (dst, token) in buf.chunks_exact_mut(4).zip(tokens) {
        dst.copy_from_slice(&token.to_le_bytes());
    }
    tokens.len() * 4
}

/// Hashes a salt payload into the seed used for block hashes (xxh3-64, seed 0).
#[inline]
pub fn compute_salt_hash(payload: &[u8]) -> SaltHash {
    xxh3_64_with_seed(payload, 0)
}

/// One step of the sequence-hash chain: xxh3-64 over
/// `[parent sequence hash LE, block hash LE]` with seed [`CHAIN_SEED`].
#[inline]
pub fn compute_next_sequence_hash(parent: SequenceHash64, block: BlockHash) -> SequenceHash64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&parent.to_le_bytes());
    buf[8..].copy_from_slice(&block.to_le_bytes());
    xxh3_64_with_seed(&buf, CHAIN_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            compute_block_hash_for_tokens(&[1, 2, 3, 4], 1337),
            14643705804678351452
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn le_bytes_is_the_little_endian_encoding() {
        let tokens: Vec<u32> = (0..37u32).map(|i| i.wrapping_mul(2654435761)).collect();
        let explicit: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        assert_eq!(le_bytes(&tokens), explicit.as_slice());
        assert_eq!(le_bytes(&[]), &[] as &[u8]);
        assert_eq!(le_bytes(&tokens[3..5]), &explicit[12..20]);
    }

    #[test]
    fn the_portable_path_gives_the_same_digests() {
        for len in [0usize, 1, 16, 255, 256, 257, 2048] {
            let tokens: Vec<u32> = (0..len as u32).map(|i| i.wrapping_mul(40503)).collect();
            assert_eq!(
                hash_encoded(&tokens, 3),
                compute_block_hash_for_tokens(&tokens, 3)
            );
        }
    }

    #[test]
    fn every_buffer_size_gives_the_one_shot_digest() {
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 2048] {
            let tokens: Vec<u32> = (0..len as u32)
                .map(|i| i.wrapping_mul(2654435761))
                .collect();
            let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
            assert_eq!(
                compute_block_hash_for_tokens(&tokens, 7),
                xxh3_64_with_seed(&bytes, 7),
                "{len} tokens"
            );
        }
    }

    #[test]
    fn salt_changes_block_hash() {
        assert_ne!(
            compute_block_hash_for_tokens(&[1, 2, 3, 4], 0),
            compute_block_hash_for_tokens(&[1, 2, 3, 4], 1)
        );
    }

    #[test]
    fn chain_depends_on_order() {
        assert_ne!(
            compute_next_sequence_hash(1, 2),
            compute_next_sequence_hash(2, 1)
        );
    }
}
