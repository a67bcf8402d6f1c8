"""Conservation under random operations: whatever a Python caller does, every
block is free, cached or held by a live object, and the pool's own
invariant check passes after every step."""

import gc

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import kvbm

BLOCKS = 12
SIZE = 2
# A few overlapping prompts, so matches find shared prefixes.
PROMPTS = [kvbm.TokenBlockSequence([p % 3, 1, p, 2, p, 3, p, 4], SIZE) for p in range(5)]


class PoolMachine(RuleBasedStateMachine):
    @initialize(policy=st.sampled_from(kvbm.EVICTION_POLICIES), dup=st.sampled_from(["allow", "reject"]))
    def setup(self, policy, dup):
        self.m = kvbm.BlockManager(BLOCKS, SIZE, policy=policy, duplication=dup)
        self.objects = []  # every live block object (or list) we hold

    def live_ids(self):
        ids = set()
        hashes = set()
        for o in self.objects:
            if o.released:
                continue
            if isinstance(o, kvbm.ImmutableBlockList):
                ids.update(o.block_ids())
                hashes.update(o.sequence_hashes())
            else:
                ids.add(o.block_id)
                if isinstance(o, kvbm.ImmutableBlock):
                    hashes.add(o.sequence_hash)
        # A duplicate ("allow") keeps the primary of its hash held too,
        # whoever else holds it; the primary is what a match finds (held
        # already, so matching it changes no pool).
        for h in hashes:
            with self.m.match([h]) as primary:
                ids.update(primary.block_ids())
        return ids

    @rule(n=st.integers(0, 6))
    def allocate(self, n):
        before = self.m.available_blocks
        got = self.m.allocate(n)
        if got is None:
            assert n > before
        else:
            assert len(got) == n
            self.objects.extend(got)

    @rule(p=st.integers(0, 4), upto=st.integers(0, 4))
    def match(self, p, upto):
        hashes = PROMPTS[p].sequence_hashes()[:upto]
        self.objects.append(self.m.match(hashes))

    @rule(p=st.integers(0, 4), data=st.data())
    def register(self, p, data):
        mutable = [o for o in self.objects if isinstance(o, kvbm.MutableBlock) and not o.released]
        if not mutable:
            return
        k = data.draw(st.integers(1, min(len(mutable), 4)))
        blocks = PROMPTS[p].blocks[:k]
        held = self.m.register(mutable[:k], blocks)
        assert all(b.released for b in mutable[:k])
        self.objects.append(held)

    @rule(data=st.data())
    def stage_then_register(self, data):
        mutable = [o for o in self.objects if isinstance(o, kvbm.MutableBlock) and not o.released]
        if not mutable:
            return
        b = data.draw(st.sampled_from(mutable))
        c = b.stage(data.draw(st.integers(0, 2**128 - 1)))
        if data.draw(st.booleans()):
            self.objects.append(self.m.register([c]))
        else:
            self.objects.append(c)

    @rule(data=st.data())
    def clone_or_roundtrip(self, data):
        lists = [o for o in self.objects if isinstance(o, kvbm.ImmutableBlockList) and not o.released and len(o)]
        if not lists:
            return
        lst = data.draw(st.sampled_from(lists))
        h = lst[data.draw(st.integers(0, len(lst) - 1))]
        w = h.downgrade()
        h2 = w.upgrade()
        assert h2 is not None and h2.block_id == h.block_id
        self.objects.extend([h, h2])

    @rule(data=st.data(), how=st.sampled_from(["release", "drop", "exit", "batch"]))
    def let_go(self, data, how):
        if not self.objects:
            return
        i = data.draw(st.integers(0, len(self.objects) - 1))
        o = self.objects[i]
        if how == "release":
            o.release()
        elif how == "exit":
            o.__exit__(None, None, None)
        elif how == "batch":
            self.m.release([o])
        del self.objects[i]
        del o
        gc.collect()

    @rule()
    def release_after_release_raises_or_noops(self):
        for o in self.objects:
            if o.released:
                o.release()  # idempotent

    @invariant()
    def conserved(self):
        if not hasattr(self, "m"):
            return
        self.m.validate()
        held = len(self.live_ids())
        assert self.m.available_blocks == BLOCKS - held
        g = self.m.metrics()
        assert g["reset_pool_size"] + g["inactive_pool_size"] + g["inflight_mutable"] + g["inflight_immutable"] == BLOCKS

    def teardown(self):
        if hasattr(self, "m"):
            self.objects.clear()
            gc.collect()
            self.m.validate()
            assert self.m.available_blocks == BLOCKS


PoolMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestConservation = PoolMachine.TestCase
