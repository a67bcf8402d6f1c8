use super::*;
use crate::tokens::{
    compute_block_hash_for_tokens, compute_next_sequence_hash, PositionalLineageHash,
};
use proptest::prelude::*;

const SALT: SaltHash = 1337;
const HASH_1_4: u64 = 14643705804678351452;
const HASH_5_8: u64 = 16777012769546811212;
const SEQ_HASH_5_8: u64 = 4945711292740353085;
const HASH_9_12: u64 = 483935686894639516;
const SEQ_HASH_9_12: u64 = 12583592247330656132;

fn seq(tokens: &[Token], block_size: u32) -> TokenBlockSequence {
    TokenBlockSequence::from_slice(tokens, block_size, Some(SALT))
}

/// A sequence whose partial block sits at `position`, with no committed
/// blocks held in memory: only the partial block's parent matters for the
/// position checks.
fn positioned_at(position: u64, block_size: u32) -> TokenBlockSequence {
    let parent = PositionalLineageHash::new(1, Some(2), position - 1);
    TokenBlockSequence {
        blocks: Vec::new(),
        current_block: PartialTokenBlock::after(block_size, SALT, Some(parent)),
        salt_hash: SALT,
        block_size: block_size as usize,
    }
}

#[test]
fn known_hash_chain() {
    let s = seq(&(1..=13).collect::<Vec<_>>(), 4);
    let b = s.blocks();
    assert_eq!(b.len(), 3);
    assert_eq!(
        [b[0].block_hash(), b[1].block_hash(), b[2].block_hash()],
        [HASH_1_4, HASH_5_8, HASH_9_12]
    );
    assert_eq!(
        [
            b[0].sequence_hash(),
            b[1].sequence_hash(),
            b[2].sequence_hash()
        ],
        [HASH_1_4, SEQ_HASH_5_8, SEQ_HASH_9_12]
    );
    assert_eq!(b[0].parent_sequence_hash(), None);
    assert_eq!(b[2].parent_sequence_hash(), Some(SEQ_HASH_5_8));
    assert_eq!(
        [b[0].position(), b[1].position(), b[2].position()],
        [0, 1, 2]
    );
    assert_eq!(s.current_block().tokens(), &[13]);
    assert_eq!(s.current_block().position(), 3);
    assert_eq!(
        s.current_block().parent_sequence_hash(),
        Some(SEQ_HASH_9_12)
    );
    assert_eq!(s.last_complete_block(), b.last());
}

#[test]
fn constructors_agree_and_default_salt_is_zero() {
    let tokens = [5, 6, 7];
    let a = TokenBlockSequence::new(Tokens::from(&tokens[..]), 2, None);
    let b = TokenBlockSequence::from_slice(&tokens, 2, Some(0));
    let c = TokenBlockSequence::try_new(tokens.into(), 2, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.salt_hash(), 0);
    assert_eq!(a.block_size(), 2);
    assert_eq!(
        a.blocks()[0].block_hash(),
        compute_block_hash_for_tokens(&[5, 6], 0)
    );
    let (blocks, partial) = TokenBlockSequence::split_tokens(&tokens, 2, 0);
    assert_eq!((blocks, partial), a.into_parts());
}

#[test]
fn exact_multiple_leaves_an_empty_partial_block() {
    let s = seq(&[1, 2, 3, 4], 2);
    assert_eq!(s.blocks().len(), 2);
    assert!(s.current_block().is_empty());
    assert_eq!(s.current_block().remaining(), 2);
    let empty = seq(&[], 3);
    assert!(empty.blocks().is_empty());
    assert_eq!(empty.total_tokens(), 0);
    assert_eq!(empty.last_complete_block(), None);
}

#[test]
fn zero_block_size_is_an_error() {
    assert_eq!(
        TokenBlockSequence::try_from_slice(&[1], 0, None),
        Err(TokenBlockError::ZeroBlockSize)
    );
    assert_eq!(
        TokenBlockSequence::try_new(Tokens::new(), 0, Some(3)),
        Err(TokenBlockError::ZeroBlockSize)
    );
    assert_eq!(
        TokenBlockSequence::try_split_tokens(&[], 0, 0),
        Err(TokenBlockError::ZeroBlockSize)
    );
}

#[test]
#[should_panic(expected = "block size must be greater than zero")]
fn from_slice_panics_on_zero_block_size() {
    let _ = TokenBlockSequence::from_slice(&[1], 0, None);
}

#[test]
#[should_panic(expected = "block size must be greater than zero")]
fn new_panics_on_zero_block_size() {
    let _ = TokenBlockSequence::new(Tokens::new(), 0, None);
}

#[test]
#[should_panic(expected = "block size must be greater than zero")]
fn split_tokens_panics_on_zero_block_size() {
    let _ = TokenBlockSequence::split_tokens(&[], 0, 0);
}

#[test]
fn more_than_2_pow_24_blocks_is_an_error_not_a_panic() {
    let too_many = vec![0u32; MAX_LINEAGE_POSITION as usize + 1];
    let overflow = Err(TokenBlockError::LineagePosition(LineagePositionError {
        position: MAX_LINEAGE_POSITION,
    }));
    assert_eq!(
        TokenBlockSequence::try_from_slice(&too_many, 1, None).map(|_| ()),
        overflow
    );
    let mut s = seq(&[7], 1);
    assert_eq!(s.extend_from_slice(&too_many).map(|_| ()), overflow);
    assert_eq!(s, seq(&[7], 1), "a rejected extend changes nothing");
}

#[test]
fn appends_stop_at_the_last_encodable_position() {
    let mut s = positioned_at(MAX_LINEAGE_POSITION - 1, 2);
    assert_eq!(s.append(1), Ok(None));
    assert_eq!(s.append(2), Ok(Some(0)));
    assert_eq!(s.blocks()[0].position(), MAX_LINEAGE_POSITION - 1);
    // The partial block may fill up to one token short of a commit...
    assert_eq!(s.append(3), Ok(None));
    let before = s.clone();
    // ...but the token that would commit at position 2^24 is refused.
    let err = TokenBlockError::LineagePosition(LineagePositionError {
        position: MAX_LINEAGE_POSITION,
    });
    assert_eq!(s.append(4), Err(err));
    assert_eq!(s.extend(vec![4, 5, 6].into()), Err(err));
    assert_eq!(s, before);
}

#[test]
fn extend_reports_the_completed_range() {
    let mut s = seq(&[1], 4);
    assert_eq!(s.extend(Tokens::new()), Ok(None));
    assert_eq!(s.extend(vec![2, 3].into()), Ok(None));
    assert_eq!(s.extend(vec![4].into()), Ok(Some(0..1)));
    assert_eq!(s.extend((5..=14).collect()), Ok(Some(1..3)));
    assert_eq!(s.total_tokens(), 14);
    assert_eq!(s.current_block().tokens(), &[13, 14]);
    assert_eq!(s, seq(&(1..=14).collect::<Vec<_>>(), 4));
}

#[test]
fn append_reports_the_completed_index() {
    let mut s = seq(&[], 2);
    assert_eq!(s.append(1), Ok(None));
    assert_eq!(s.append(2), Ok(Some(0)));
    assert_eq!(s.append(3), Ok(None));
    assert_eq!(s.append(4), Ok(Some(1)));
    assert_eq!(
        s.blocks()[1].sequence_hash(),
        compute_next_sequence_hash(
            s.blocks()[0].sequence_hash(),
            compute_block_hash_for_tokens(&[3, 4], SALT)
        )
    );
}

#[test]
fn truncate_within_and_across_blocks() {
    let all: Vec<u32> = (1..=11).collect();
    for len in 0..=all.len() + 2 {
        let mut s = seq(&all, 4);
        s.truncate(len).unwrap();
        let kept = &all[..len.min(all.len())];
        assert_eq!(s, seq(kept, 4), "truncate({len})");
    }
}

#[test]
fn truncated_sequence_keeps_growing_with_correct_hashes() {
    let mut s = seq(&(1..=12).collect::<Vec<_>>(), 4);
    s.truncate(6).unwrap();
    assert_eq!(s.blocks().len(), 1);
    assert_eq!(s.current_block().tokens(), &[5, 6]);
    assert_eq!(s.current_block().parent_sequence_hash(), Some(HASH_1_4));
    s.extend(vec![7, 8].into()).unwrap();
    assert_eq!(s.blocks()[1].sequence_hash(), SEQ_HASH_5_8);
}

#[test]
fn unwind_checks_the_count() {
    let mut s = seq(&[1, 2, 3, 4, 5], 2);
    assert_eq!(s.unwind(6), Err(TokenBlockError::InsufficientTokens));
    assert_eq!(s.total_tokens(), 5);
    s.unwind(2).unwrap();
    assert_eq!(s, seq(&[1, 2, 3], 2));
    s.unwind(0).unwrap();
    assert_eq!(s.total_tokens(), 3);
    s.unwind(3).unwrap();
    assert_eq!(s, seq(&[], 2));
}

#[test]
fn pop_walks_back_through_blocks() {
    let mut s = seq(&[1, 2, 3], 2);
    assert_eq!(s.pop(), Some(3));
    assert_eq!(s.blocks().len(), 1);
    assert!(s.current_block().is_empty());
    assert_eq!(s.pop(), Some(2));
    assert!(s.blocks().is_empty());
    assert_eq!(s.current_block().tokens(), &[1]);
    assert_eq!(s.pop(), Some(1));
    assert_eq!(s.pop(), None);
    assert_eq!(s, seq(&[], 2));
}

#[test]
fn reset_empties_but_keeps_settings() {
    let mut s = seq(&[1, 2, 3], 2);
    s.reset();
    assert_eq!(s, seq(&[], 2));
    assert_eq!((s.block_size(), s.salt_hash()), (2, SALT));
}

#[test]
fn tokens_at_reads_across_blocks_and_rejects_bad_ranges() {
    let all: Vec<u32> = (100..111).collect();
    let s = seq(&all, 3);
    for start in 0..=all.len() {
        for end in start..=all.len() {
            assert_eq!(s.tokens_at(start..end), all[start..end].to_vec());
        }
    }
    assert!(s.tokens_at(0..12).is_empty());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..2;
    assert!(s.tokens_at(reversed).is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Append(Token),
    Extend(Vec<Token>),
    Truncate(usize),
    Unwind(usize),
    Pop,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Append),
        4 => prop::collection::vec(any::<u32>(), 0..20).prop_map(Op::Extend),
        2 => (0usize..40).prop_map(Op::Truncate),
        2 => (0usize..12).prop_map(Op::Unwind),
        1 => Just(Op::Pop),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    /// Whatever the edit history, a sequence equals the one built in one go
    /// from the tokens it holds.
    #[test]
    fn edits_match_a_rebuild_from_scratch(
        block_size in 1u32..8,
        salt in any::<Option<u64>>(),
        initial in prop::collection::vec(any::<u32>(), 0..30),
        ops in prop::collection::vec(op(), 0..30),
    ) {
        let mut s = TokenBlockSequence::from_slice(&initial, block_size, salt);
        let mut model = initial;
        for op in ops {
            match op {
                Op::Append(t) => {
                    let before = s.blocks().len();
                    let done = s.append(t).unwrap();
                    model.push(t);
                    prop_assert_eq!(done, (s.blocks().len() > before).then_some(before));
                }
                Op::Extend(ts) => {
                    let before = s.blocks().len();
                    let done = s.extend(ts.clone().into()).unwrap();
                    model.extend(ts);
                    let after = s.blocks().len();
                    prop_assert_eq!(done, (after > before).then_some(before..after));
                }
                Op::Truncate(len) => {
                    s.truncate(len).unwrap();
                    model.truncate(len);
                }
                Op::Unwind(n) => {
                    let r = s.unwind(n);
                    if n > model.len() {
                        prop_assert_eq!(r, Err(TokenBlockError::InsufficientTokens));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.truncate(model.len() - n);
                    }
                }
                Op::Pop => prop_assert_eq!(s.pop(), model.pop()),
                Op::Reset => {
                    s.reset();
                    model.clear();
                }
            }
            prop_assert_eq!(s.total_tokens(), model.len());
            prop_assert!(s.current_block().remaining() > 0);
            prop_assert_eq!(&s, &TokenBlockSequence::from_slice(&model, block_size, salt));
        }
        prop_assert_eq!(s.tokens_at(0..model.len()), model);
    }
}
