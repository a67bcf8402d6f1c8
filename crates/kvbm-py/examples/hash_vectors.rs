//! Prints hash test vectors computed by the Rust library, one JSON object
//! per line, for the Python tests to compare the bindings against:
//! `cargo run -q -p kvbm-py --example hash_vectors -- SEED COUNT`.
//!
//! Inputs come from a seeded xorshift generator, so the Python side needs
//! only the printed tokens, not the generator.

use kvbm::tokens::{
    compute_block_hash_for_tokens, compute_next_sequence_hash, compute_salt_hash,
    TokenBlockSequence,
};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().unwrap_or_else(|| "1".into()).parse()?;
    let count: usize = args.next().unwrap_or_else(|| "50".into()).parse()?;
    let mut rng = XorShift(seed.max(1));
    for _ in 0..count {
        let block_size = 1u32 << (rng.next() % 6);
        let len = (rng.next() % 200) as usize;
        let tokens: Vec<u32> = (0..len).map(|_| rng.next() as u32).collect();
        let salt_payload: Vec<u8> = (0..rng.next() % 12).map(|_| rng.next() as u8).collect();
        let salt = if salt_payload.is_empty() {
            None
        } else {
            Some(compute_salt_hash(&salt_payload))
        };
        let seq = TokenBlockSequence::try_from_slice(&tokens, block_size, salt)?;
        let blocks = seq.blocks();
        let list = |f: &dyn Fn(&kvbm::tokens::TokenBlock) -> String| {
            blocks.iter().map(f).collect::<Vec<_>>().join(",")
        };
        let (a, b) = (rng.next(), rng.next());
        println!(
            "{{\"tokens\":{:?},\"block_size\":{},\"salt_payload\":{:?},\"salt_hash\":{},\"block_hashes\":[{}],\"sequence_hashes\":[{}],\"lineage_hashes\":[{}],\"whole_hash\":{},\"chain\":[{},{},{}]}}",
            tokens,
            block_size,
            salt_payload,
            salt.unwrap_or(0),
            list(&|b| b.block_hash().to_string()),
            list(&|b| b.sequence_hash().to_string()),
            // As strings: 128-bit ints overflow some JSON readers.
            list(&|b| format!("\"{}\"", b.positional_lineage_hash().as_u128())),
            compute_block_hash_for_tokens(&tokens, salt.unwrap_or(0)),
            a,
            b,
            compute_next_sequence_hash(a, b),
        );
    }
    Ok(())
}
