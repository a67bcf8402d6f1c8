//! Bit-for-bit comparison of `kvbm::tokens` against `dynamo-tokens` 1.6.1.

use dynamo_tokens as reference;
use kvbm::tokens::{
    compute_block_hash_for_tokens, PositionalLineageHash, TokenBlock, TokenBlockSequence, Tokens,
    MAX_LINEAGE_POSITION,
};
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator for the long, non-proptest runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn assert_same_block(ours: &TokenBlock, theirs: &reference::TokenBlock, index: usize) {
    assert_eq!(
        ours.tokens(),
        &theirs.tokens()[..],
        "tokens of block {index}"
    );
    assert_eq!(
        ours.salt_hash(),
        theirs.salt_hash(),
        "salt of block {index}"
    );
    assert_eq!(
        ours.block_hash(),
        theirs.block_hash(),
        "block hash of block {index}"
    );
    assert_eq!(
        ours.sequence_hash(),
        theirs.sequence_hash(),
        "sequence hash of block {index}"
    );
    assert_eq!(
        ours.parent_sequence_hash(),
        theirs.parent_sequence_hash(),
        "parent sequence hash of block {index}"
    );
    assert_eq!(
        ours.positional_lineage_hash().as_u128(),
        theirs.positional_lineage_hash().as_u128(),
        "lineage hash of block {index}"
    );
    assert_eq!(
        ours.position(),
        theirs.position(),
        "position of block {index}"
    );
    assert_eq!(
        ours.block_size(),
        theirs.block_size(),
        "size of block {index}"
    );
}

fn assert_same_sequence(ours: &TokenBlockSequence, theirs: &reference::TokenBlockSequence) {
    assert_eq!(ours.blocks().len(), theirs.blocks().len(), "block count");
    for (i, (a, b)) in ours.blocks().iter().zip(theirs.blocks()).enumerate() {
        assert_same_block(a, b, i);
    }
    assert_eq!(ours.total_tokens(), theirs.total_tokens(), "total tokens");
    assert_eq!(ours.block_size(), theirs.block_size(), "block size");
    assert_eq!(ours.salt_hash(), theirs.salt_hash(), "salt hash");
    let (p, q) = (ours.current_block(), theirs.current_block());
    assert_eq!(
        p.tokens().as_slice(),
        &q.tokens()[..],
        "partial block tokens"
    );
    assert_eq!(
        (p.len(), p.remaining(), p.is_empty()),
        (q.len(), q.remaining(), q.is_empty())
    );
    assert_eq!(
        ours.last_complete_block().map(TokenBlock::sequence_hash),
        theirs.last_complete_block().map(|b| b.sequence_hash())
    );
}

fn assert_same_lineage(ours: PositionalLineageHash, theirs: reference::PositionalLineageHash) {
    assert_eq!(ours.as_u128(), theirs.as_u128());
    assert_eq!(ours.position(), theirs.position());
    assert_eq!(ours.mode(), theirs.mode());
    assert_eq!(ours.current_sequence_hash(), theirs.current_sequence_hash());
    assert_eq!(ours.parent_hash_fragment(), theirs.parent_hash_fragment());
    for child in [
        ours.position() + 1,
        255,
        256,
        65535,
        65536,
        MAX_LINEAGE_POSITION - 1,
    ] {
        assert_eq!(
            ours.parent_fragment_for_child_position(child),
            theirs.parent_fragment_for_child_position(child)
        );
    }
}

#[test]
fn known_vector() {
    assert_eq!(
        compute_block_hash_for_tokens(&[1, 2, 3, 4], 1337),
        14643705804678351452
    );
    assert_eq!(
        reference::compute_block_hash_for_tokens(&[1, 2, 3, 4], 1337),
        14643705804678351452
    );
    let ours = TokenBlockSequence::from_slice(&[1, 2, 3, 4], 4, Some(1337));
    let theirs = reference::TokenBlockSequence::from_slice(&[1, 2, 3, 4], 4, Some(1337));
    assert_eq!(ours.blocks()[0].block_hash(), 14643705804678351452);
    assert_same_sequence(&ours, &theirs);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Building from a slice gives the same blocks, hashes and partial block.
    #[test]
    fn from_slice_matches(
        block_size in 1u32..64,
        salt in any::<Option<u64>>(),
        tokens in prop::collection::vec(any::<u32>(), 0..400),
    ) {
        let ours = TokenBlockSequence::from_slice(&tokens, block_size, salt);
        let theirs = reference::TokenBlockSequence::from_slice(&tokens, block_size, salt);
        assert_same_sequence(&ours, &theirs);

        let ours_new = TokenBlockSequence::new(Tokens::from(tokens.clone()), block_size, salt);
        let theirs_new = reference::TokenBlockSequence::new(tokens.clone().into(), block_size, salt);
        assert_same_sequence(&ours_new, &theirs_new);
    }

    /// Lineage hashes packed from arbitrary fields agree in every mode.
    #[test]
    fn lineage_new_matches(
        current in any::<u64>(),
        parent in any::<Option<u64>>(),
        position in prop_oneof![0u64..256, 256u64..65536, 65536u64..MAX_LINEAGE_POSITION],
    ) {
        let ours = PositionalLineageHash::new(current, parent, position);
        let theirs = reference::PositionalLineageHash::new(current, parent, position);
        assert_same_lineage(ours, theirs);
        assert_eq!(PositionalLineageHash::from_u128(theirs.as_u128()), ours);
    }

    /// Serialised lineage hashes are byte-identical and decode across crates.
    #[test]
    fn lineage_serde_matches(
        current in any::<u64>(),
        parent in any::<Option<u64>>(),
        position in 0u64..MAX_LINEAGE_POSITION,
    ) {
        let ours = PositionalLineageHash::new(current, parent, position);
        let theirs = reference::PositionalLineageHash::new(current, parent, position);
        let ours_mp = rmp_serde::to_vec(&ours).unwrap();
        let theirs_mp = rmp_serde::to_vec(&theirs).unwrap();
        prop_assert_eq!(&ours_mp, &theirs_mp);
        prop_assert_eq!(rmp_serde::from_slice::<PositionalLineageHash>(&theirs_mp).unwrap(), ours);
        let back: reference::PositionalLineageHash = rmp_serde::from_slice(&ours_mp).unwrap();
        prop_assert_eq!(back, theirs);

        let ours_json = serde_json::to_string(&ours).unwrap();
        prop_assert_eq!(&ours_json, &serde_json::to_string(&theirs).unwrap());
        prop_assert_eq!(serde_json::from_str::<PositionalLineageHash>(&ours_json).unwrap(), ours);
    }
}

/// Block size 1 over ~70k tokens walks through all three lineage modes.
#[test]
fn long_sequence_crosses_every_mode() {
    let mut rng = Rng(7);
    let tokens: Vec<u32> = (0..70_000).map(|_| rng.next() as u32).collect();
    let ours = TokenBlockSequence::from_slice(&tokens, 1, Some(42));
    let theirs = reference::TokenBlockSequence::from_slice(&tokens, 1, Some(42));
    assert_same_sequence(&ours, &theirs);
    for i in [0, 255, 256, 257, 65535, 65536, 65537, 69_999] {
        assert_same_lineage(
            ours.blocks()[i].positional_lineage_hash(),
            theirs.blocks()[i].positional_lineage_hash(),
        );
    }
}

/// `extend` chains from random roots, across mode boundaries and up to the
/// last encodable position.
#[test]
fn lineage_extend_chains_match() {
    let mut rng = Rng(99);
    // From the root past 2^16.
    let mut ours = PositionalLineageHash::root(rng.next());
    let mut theirs = reference::PositionalLineageHash::root(ours.current_sequence_hash());
    for _ in 0..70_000 {
        let block_hash = rng.next();
        ours = ours.extend(block_hash);
        theirs = theirs.extend(block_hash);
        assert_eq!(
            ours.as_u128(),
            theirs.as_u128(),
            "at position {}",
            ours.position()
        );
    }
    assert_same_lineage(ours, theirs);

    // Short chains that start just below each boundary and at the very end.
    for start in [250u64, 65_530, MAX_LINEAGE_POSITION - 300] {
        let (current, parent) = (rng.next(), rng.next());
        let mut ours = PositionalLineageHash::new(current, Some(parent), start);
        let mut theirs = reference::PositionalLineageHash::new(current, Some(parent), start);
        while ours.position() < MAX_LINEAGE_POSITION - 1 && ours.position() < start + 300 {
            let block_hash = rng.next();
            ours = ours.extend(block_hash);
            theirs = theirs.extend(block_hash);
            assert_same_lineage(ours, theirs);
        }
    }
}

/// Where the reference panics at the position limit, we return an error.
#[test]
fn position_limit_is_an_error_where_the_reference_panics() {
    let last = MAX_LINEAGE_POSITION - 1;
    let ours = PositionalLineageHash::new(1, Some(2), last);
    let theirs = reference::PositionalLineageHash::new(1, Some(2), last);
    assert_same_lineage(ours, theirs);
    assert!(ours.try_extend(3).is_err());
    assert!(std::panic::catch_unwind(|| theirs.extend(3)).is_err());
    assert!(PositionalLineageHash::try_new(1, None, MAX_LINEAGE_POSITION).is_err());
}

/// A zero block size is an error for us and a panic for the reference.
#[test]
fn zero_block_size_is_an_error_where_the_reference_panics() {
    assert!(TokenBlockSequence::try_from_slice(&[1, 2], 0, None).is_err());
    assert!(std::panic::catch_unwind(|| {
        reference::TokenBlockSequence::from_slice(&[1, 2], 0, None)
    })
    .is_err());
}

/// One edit applied to both implementations.
#[derive(Debug, Clone)]
enum Op {
    Append(u32),
    Extend(Vec<u32>),
    Truncate(usize),
    Unwind(usize),
    Pop,
    Reset,
    TokensAt(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Append),
        4 => prop::collection::vec(any::<u32>(), 0..150).prop_map(Op::Extend),
        2 => (0usize..400).prop_map(Op::Truncate),
        2 => (0usize..80).prop_map(Op::Unwind),
        1 => Just(Op::Pop),
        1 => Just(Op::Reset),
        1 => (0usize..300, 0usize..300).prop_map(|(a, b)| Op::TokensAt(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Random edit histories give the same results and the same state.
    #[test]
    fn edit_histories_match(
        block_size in 1u32..64,
        salt in any::<Option<u64>>(),
        initial in prop::collection::vec(any::<u32>(), 0..200),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut ours = TokenBlockSequence::from_slice(&initial, block_size, salt);
        let mut theirs = reference::TokenBlockSequence::from_slice(&initial, block_size, salt);
        for op in ops {
            match op {
                Op::Append(t) => prop_assert_eq!(ours.append(t).unwrap(), theirs.append(t).unwrap()),
                Op::Extend(ts) => prop_assert_eq!(
                    ours.extend(Tokens::from(ts.clone())).unwrap(),
                    theirs.extend(ts.into()).unwrap()
                ),
                Op::Truncate(len) => {
                    prop_assert!(ours.truncate(len).is_ok());
                    prop_assert!(theirs.truncate(len).is_ok());
                }
                Op::Unwind(n) => {
                    let (a, b) = (ours.unwind(n), theirs.unwind(n));
                    prop_assert_eq!(a.map_err(|e| e.to_string()), b.map_err(|e| e.to_string()));
                }
                Op::Pop => prop_assert_eq!(ours.pop(), theirs.pop()),
                Op::Reset => {
                    ours.reset();
                    theirs.reset();
                }
                Op::TokensAt(start, end) => prop_assert_eq!(
                    ours.tokens_at(start..end).into_inner(),
                    Vec::<u32>::from(theirs.tokens_at(start..end))
                ),
            }
            assert_same_sequence(&ours, &theirs);
        }
        let (blocks, partial) = ours.into_parts();
        let (ref_blocks, ref_partial) = theirs.into_parts();
        prop_assert_eq!(blocks.len(), ref_blocks.len());
        prop_assert_eq!(partial.tokens().as_slice(), &ref_partial.tokens()[..]);
    }
}

/// Salt hashing: the seed of every block hash of a salted sequence (a LoRA
/// name, a model revision) must be the reference's, byte for byte.
#[test]
fn salt_hash_matches_the_reference() {
    let mut rng = Rng(0x5a17);
    let mut payloads: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"lora:adapter-7".to_vec(),
        vec![0u8; 1],
        vec![0xff; 4096],
    ];
    for len in [1usize, 3, 8, 16, 17, 64, 129, 240, 241, 1000] {
        payloads.push((0..len).map(|_| rng.next() as u8).collect());
    }
    for p in &payloads {
        assert_eq!(
            kvbm::tokens::compute_salt_hash(p),
            reference::compute_salt_hash_from_bytes(p),
            "payload of {} bytes",
            p.len()
        );
    }
    // A salted sequence hashes like the reference's salted sequence.
    let salt = kvbm::tokens::compute_salt_hash(b"model-rev-3");
    let tokens: Vec<u32> = (0..70).map(|_| rng.next() as u32).collect();
    let ours = TokenBlockSequence::from_slice(&tokens, 16, Some(salt));
    let theirs = reference::TokenBlockSequence::from_slice(&tokens, 16, Some(salt));
    assert_same_sequence(&ours, &theirs);
}

proptest! {
    #[test]
    fn salt_hash_matches_for_any_payload(p in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert_eq!(
            kvbm::tokens::compute_salt_hash(&p),
            reference::compute_salt_hash_from_bytes(&p)
        );
    }
}
