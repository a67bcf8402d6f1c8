"""Hashes from Python are bit-identical to the Rust library's: vectors on
random inputs are computed by a Rust program (examples/hash_vectors.rs) and
compared with what the bindings compute from the same inputs."""

import random

from hypothesis import given, settings, strategies as st

import kvbm


def test_sequences_match_rust_vectors(rust_hash_vectors):
    assert len(rust_hash_vectors) == 120
    checked_blocks = 0
    for v in rust_hash_vectors:
        salt = kvbm.compute_salt_hash(bytes(v["salt_payload"])) if v["salt_payload"] else None
        assert (salt or 0) == v["salt_hash"]
        seq = kvbm.TokenBlockSequence(v["tokens"], v["block_size"], salt)
        assert seq.block_hashes() == v["block_hashes"]
        assert [b.sequence_hash for b in seq.blocks] == v["sequence_hashes"]
        lineage = [int(x) for x in v["lineage_hashes"]]
        assert seq.sequence_hashes().to_list() == lineage
        assert [b.positional_lineage_hash for b in seq.blocks] == lineage
        assert kvbm.compute_block_hash(v["tokens"], v["salt_hash"]) == v["whole_hash"]
        a, b, chained = v["chain"]
        assert kvbm.compute_next_sequence_hash(a, b) == chained
        checked_blocks += len(lineage)
    assert checked_blocks > 200


def test_chain_is_consistent_with_the_hash_functions():
    rng = random.Random(5)
    for _ in range(50):
        bs = rng.choice([1, 2, 4, 16])
        tokens = [rng.randrange(2**32) for _ in range(rng.randrange(1, 100))]
        salt = rng.randrange(2**64)
        seq = kvbm.TokenBlockSequence(tokens, bs, salt)
        parent = None
        for i, blk in enumerate(seq.blocks):
            expect_block = kvbm.compute_block_hash(tokens[i * bs:(i + 1) * bs], salt)
            assert blk.block_hash == expect_block
            expect_seq = expect_block if parent is None else kvbm.compute_next_sequence_hash(parent, expect_block)
            assert blk.sequence_hash == expect_seq
            assert blk.positional_lineage_hash == kvbm.positional_lineage_hash(expect_seq, parent, i)
            assert kvbm.TokenBlock(blk.tokens, salt, seq.block(i - 1) if i else None).positional_lineage_hash == blk.positional_lineage_hash
            parent = expect_seq


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.integers(0, 2**32 - 1), max_size=80),
    bs=st.sampled_from([1, 2, 4, 8]),
    cut=st.integers(0, 80),
)
def test_growing_and_shrinking_hash_like_building_at_once(tokens, bs, cut):
    whole = kvbm.TokenBlockSequence(tokens, bs)
    grown = kvbm.TokenBlockSequence([], bs)
    for t in tokens:
        grown.append(t)
    assert grown.sequence_hashes() == whole.sequence_hashes()
    assert grown.tokens() == tokens and len(grown) == len(tokens)
    cut = min(cut, len(tokens))
    grown.truncate(cut)
    assert grown.sequence_hashes() == kvbm.TokenBlockSequence(tokens[:cut], bs).sequence_hashes()
    assert grown.current_block_tokens == tokens[: cut][len(tokens[:cut]) // bs * bs:]


def test_sequence_hashes_behaves_like_a_list():
    seq = kvbm.TokenBlockSequence(list(range(40)), 4)
    h = seq.sequence_hashes()
    as_list = h.to_list()
    assert len(h) == 10 and list(h) == as_list
    assert h[-1] == as_list[-1] and h[2:5].to_list() == as_list[2:5]
    assert h[::-2].to_list() == as_list[::-2]
    assert kvbm.SequenceHashes(as_list) == h
    assert kvbm.SequenceHashes() == kvbm.SequenceHashes([])
