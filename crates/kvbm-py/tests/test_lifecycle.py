"""Block objects follow the Rust guards' life cycle and return their blocks
on release(), on leaving a with block, and on garbage collection."""

import gc

import pytest

import kvbm


def seq(n_tokens, block_size=4, start=0):
    return kvbm.TokenBlockSequence(list(range(start, start + n_tokens)), block_size)


def fill(m, s):
    """Allocates, stages and registers every full block of `s`."""
    blocks = m.allocate(len(s.blocks))
    assert blocks is not None
    return m.register(blocks, s.blocks)


def test_full_cycle_and_prefix_reuse(manager):
    s = seq(10)
    assert len(manager.match(s.sequence_hashes())) == 0
    held = fill(manager, s)
    assert len(held) == 2
    assert manager.available_blocks == 30
    ids = held.block_ids()
    held.release()
    assert manager.available_blocks == 32  # cached blocks count as available
    hits = manager.match(s.sequence_hashes())
    assert hits.block_ids() == ids
    assert manager.block_ids(hits) == ids
    assert [b.block_id for b in hits] == ids
    m = manager.metrics()
    assert m["registrations"] == 2 and m["inflight_immutable"] == 2
    hits.release()
    manager.validate()


def test_every_transition(manager):
    s = seq(8)
    (b,) = manager.allocate(1)
    assert b.block_size == 4 and not b.released
    c = b.complete(s.blocks[0])
    assert b.released and c.sequence_hash == s.blocks[0].positional_lineage_hash
    b2 = c.reset()
    assert c.released
    c2 = b2.stage(s.blocks[0].positional_lineage_hash)
    held = manager.register([c2])
    h = held[0]
    assert h.use_count == 2  # the list's handle and this one
    w = h.downgrade()
    assert w.block_id == h.block_id
    h2 = h.clone()
    assert h2.use_count == 3
    held.release()
    h.release()
    h2.release()
    up = w.upgrade()  # cached, still registered
    assert up is not None and up.block_id == w.block_id
    up.release()
    manager.validate()
    assert manager.available_blocks == 32


def test_wrong_size_keeps_block_usable(manager):
    (b,) = manager.allocate(1)
    other = kvbm.TokenBlockSequence(list(range(8)), 8).blocks[0]
    with pytest.raises(ValueError, match="size"):
        b.complete(other)
    assert not b.released
    with pytest.raises(ValueError):
        b.stage(1, block_size=3)
    b.release()
    assert manager.available_blocks == 32


def test_use_after_release_raises(manager):
    s = seq(4)
    (b,) = manager.allocate(1)
    b.release()
    b.release()  # idempotent
    for op in (lambda: b.block_id, lambda: b.complete(s.blocks[0]), lambda: b.stage(5)):
        with pytest.raises(kvbm.BlockReleasedError):
            op()
    held = fill(manager, s)
    h = held[0]
    held.release()
    for op in (lambda: len(held), lambda: held.block_ids(), lambda: held[0], lambda: list(held)):
        with pytest.raises(kvbm.BlockReleasedError):
            op()
    h.release()
    for op in (lambda: h.block_id, lambda: h.downgrade(), lambda: h.clone(), lambda: h.sequence_hash):
        with pytest.raises(kvbm.BlockReleasedError):
            op()
    with pytest.raises(kvbm.BlockReleasedError):
        manager.block_ids([h])
    assert issubclass(kvbm.BlockReleasedError, RuntimeError)
    manager.validate()


def test_context_managers_release(manager):
    s = seq(8)
    with manager.allocate(1)[0] as b:
        assert manager.available_blocks == 31
    assert b.released and manager.available_blocks == 32
    with pytest.raises(KeyError):
        with manager.allocate(2)[0] as b:
            raise KeyError("boom")
    assert manager.available_blocks == 32
    with fill(manager, s) as held:
        assert manager.available_blocks == 30
    assert held.released
    with manager.match(s.sequence_hashes())[1] as h:
        assert h.use_count == 1
    manager.validate()
    assert manager.metrics()["inflight_immutable"] == 0


def test_garbage_collection_releases(manager):
    s = seq(8)
    blocks = manager.allocate(5)
    assert manager.available_blocks == 27
    del blocks
    gc.collect()
    assert manager.available_blocks == 32
    held = fill(manager, s)
    h = held[0]
    del held
    assert manager.metrics()["inflight_immutable"] == 1  # h still holds block 0
    del h
    gc.collect()
    assert manager.metrics()["inflight_immutable"] == 0
    assert manager.metrics()["inactive_pool_size"] == 2
    # A reference cycle is collected by the cycle collector.
    cycle = [manager.allocate(3)]
    cycle.append(cycle)
    del cycle
    gc.collect()
    assert manager.available_blocks == 32
    manager.validate()


def test_blocks_outlive_their_manager():
    m = kvbm.BlockManager(8, 4)
    blocks = m.allocate(3)
    held = m.register(blocks[:1], [7])
    del m
    gc.collect()
    assert blocks[1].block_size == 4
    assert held.block_ids() == [blocks_id for blocks_id in held.block_ids()]
    blocks[1].release()
    held.release()
    del blocks


def test_register_is_all_or_nothing(manager):
    s = seq(12)
    blocks = manager.allocate(3)
    with pytest.raises(ValueError, match="3 blocks but 2"):
        manager.register(blocks, s.blocks[:2])
    blocks[2].release()
    with pytest.raises(kvbm.BlockReleasedError):
        manager.register(blocks, s.blocks)
    assert not blocks[0].released and not blocks[1].released
    with pytest.raises(TypeError):
        manager.register([blocks[0], "x"], s.blocks[:2])
    assert not blocks[0].released
    with pytest.raises(ValueError, match="token_blocks"):
        manager.register(blocks[:2])
    other = kvbm.BlockManager(4, 4)
    with pytest.raises(ValueError, match="another BlockManager"):
        other.register(blocks[:2], s.blocks[:2])
    big = kvbm.TokenBlockSequence(list(range(8)), 8).blocks
    with pytest.raises(ValueError, match="size"):
        manager.register(blocks[:1], big)
    # The same block twice: the second entry finds it taken; nothing changes.
    with pytest.raises(kvbm.BlockReleasedError):
        manager.register([blocks[0], blocks[0]], s.blocks[:2])
    held = manager.register(blocks[:2], s.sequence_hashes()[:2])
    assert len(held) == 2
    held.release()
    manager.validate()
    assert manager.available_blocks == 32


def test_duplication_policies():
    s = seq(4)
    for dup, expect_same in (("allow", False), ("reject", True)):
        m = kvbm.BlockManager(8, 4, duplication=dup)
        assert m.duplication == dup
        a = m.register(m.allocate(1), s.blocks)
        b = m.register(m.allocate(1), s.blocks)
        assert (a.block_ids() == b.block_ids()) == expect_same
        m.validate()


def test_every_policy_by_name():
    assert set(kvbm.EVICTION_POLICIES) == set(kvbm.BlockManager.policies())
    assert "lineage" in kvbm.EVICTION_POLICIES
    for name in kvbm.EVICTION_POLICIES:
        m = kvbm.BlockManager(4, 4, policy=name.upper())
        assert m.policy == name
        # Fill past capacity so the policy evicts.
        for i in range(6):
            m.register(m.allocate(1), [kvbm.TokenBlock([i, i, i, i])]).release()
        assert m.metrics()["evictions"] == 2
        m.validate()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(block_count=0), "block count"),
        (dict(block_count=8, block_size=3), "power of two"),
        (dict(block_count=8, block_size=0), "block size"),
        (dict(block_count=8, policy="lfu"), "unknown eviction policy `lfu`"),
        (dict(block_count=8, duplication="maybe"), "duplication"),
        (dict(block_count=-5), "block_count"),
        (dict(block_count=2**70), "block_count"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kvbm.BlockManager(**kwargs)


def test_hostile_inputs_raise_not_crash(manager):
    with pytest.raises(ValueError):
        manager.allocate(-1)
    assert manager.allocate(33) is None
    assert manager.allocate(2**40) is None  # never reaches an allocation sized by n
    assert manager.allocate(2**64 - 1) is None
    with pytest.raises(ValueError, match="limit"):
        kvbm.BlockManager(2**32)
    with pytest.raises(ValueError, match="limit"):
        kvbm.TokenBlockSequence([1], 2**31)
    s = kvbm.TokenBlockSequence([1, 2, 3], 2)
    s.truncate(10)  # longer than the sequence: nothing to cut
    assert s.tokens() == [1, 2, 3]
    with pytest.raises(ValueError):
        kvbm.TokenBlockSequence([1, 2, 3], 2).unwind(10)
    spent = manager.allocate(1)[0]
    spent.release()
    with pytest.raises(kvbm.BlockReleasedError):
        spent.stage(0)
    assert manager.allocate(0) == []
    with pytest.raises(ValueError):
        manager.match([-1])
    with pytest.raises(ValueError):
        manager.match([2**128])
    with pytest.raises(TypeError):
        manager.match("abc")
    with pytest.raises(TypeError):
        manager.block_ids([1, 2])
    with pytest.raises(TypeError):
        manager.release([object()])
    assert len(manager.match([0, 1, 2**128 - 1])) == 0
    with pytest.raises(ValueError):
        kvbm.TokenBlockSequence([1, 2], 0)
    with pytest.raises(ValueError):
        kvbm.positional_lineage_hash(1, 2, 2**24)
    with pytest.raises(ValueError):
        kvbm.TokenBlock([])
    with pytest.raises(OverflowError):
        kvbm.TokenBlock([-1])
    held = manager.register(manager.allocate(1), [5])
    with pytest.raises(ValueError):
        held.extend(held)
    manager.validate()


def test_list_extend_and_batch_release(manager):
    s = seq(16)
    first = fill(manager, kvbm.TokenBlockSequence(list(range(8)), 4))
    first.release()
    hashes = s.sequence_hashes()
    held = manager.match(hashes)
    assert len(held) == 2
    new = manager.register(manager.allocate(2), hashes[2:])
    held.extend(new)
    assert new.released and len(held) == 4
    assert held.sequence_hashes() == hashes
    loose = manager.allocate(3)
    manager.release([held, *loose])
    assert held.released and all(b.released for b in loose)
    assert manager.available_blocks == 32
    manager.validate()
