"""A toy continuous-batching engine driven from Python.

Requests share a few system prompts, so later requests reuse the cached
prefix blocks of earlier ones. Each step every running request decodes one
token; a request whose new token starts a block needs a fresh block, and when
the pool is out of blocks the youngest running request is preempted: its
blocks are released (registered ones stay cached, so its prefix is likely
still there when it is rescheduled) and it goes back to the waiting queue.

    python examples/engine_loop.py
"""

import collections
import random

import kvbm

BLOCK = 16
rng = random.Random(0)
manager = kvbm.BlockManager(block_count=40, block_size=BLOCK, policy="lineage")
system_prompts = [[1000 * p + i for i in range(3 * BLOCK)] for p in range(3)]


class Request:
    def __init__(self, rid):
        self.rid = rid
        prompt = rng.choice(system_prompts) + [rng.randrange(50_000) for _ in range(rng.randrange(5, 40))]
        self.tokens = kvbm.TokenBlockSequence(prompt, BLOCK)
        self.to_generate = rng.randrange(10, 60)
        self.held = None  # ImmutableBlockList of registered (full) blocks
        self.tail = None  # MutableBlock being filled by decode

    def schedule(self):
        """Match the cached prefix, allocate the rest; False if out of blocks."""
        hashes = self.tokens.sequence_hashes()
        held = manager.match(hashes)
        fresh = manager.allocate(len(hashes) - len(held) + 1)  # + the tail block
        if fresh is None:
            held.release()
            return False
        *full, self.tail = fresh
        held.extend(manager.register(full, hashes[len(held):]))
        self.held = held
        return len(held) - len(full)  # blocks reused

    def decode(self):
        """One generated token; False if a block was needed and none was free."""
        completed = self.tokens.append(rng.randrange(50_000))
        self.to_generate -= 1
        if completed is None:
            return True
        self.held.extend(manager.register([self.tail], [self.tokens.block(completed)]))
        fresh = manager.allocate(1)
        if fresh is None:
            self.tail = None
            return False
        self.tail = fresh[0]
        return True

    def block_table(self):
        return manager.block_ids([self.held, self.tail] if self.tail else [self.held])

    def release(self):
        manager.release([b for b in (self.held, self.tail) if b is not None])
        self.held = self.tail = None


waiting = collections.deque(Request(i) for i in range(36))
running: list = []
done, preemptions, reused, steps = 0, 0, 0, 0
while waiting or running:
    steps += 1
    while waiting and len(running) < 10:
        r = waiting[0]
        got = r.schedule()
        if got is False:
            break
        reused += got
        running.append(waiting.popleft())
    for r in list(running):
        if r not in running:  # preempted earlier in this step
            continue
        assert len(r.block_table()) * BLOCK >= r.tokens.total_tokens
        if not r.decode():
            # Out of blocks: preempt the youngest until this request has a tail.
            while r.tail is None:
                victim = running.pop()
                victim.release()
                waiting.appendleft(victim)
                preemptions += 1
                if victim is r:
                    break
                fresh = manager.allocate(1)
                if fresh is not None:
                    r.tail = fresh[0]
            if r not in running:
                continue
        if r.to_generate <= 0:
            r.release()
            running.remove(r)
            done += 1
    manager.validate()

m = manager.metrics()
print(f"served {done} requests in {steps} steps, {preemptions} preemptions")
print(f"prefix blocks reused: {reused}, registrations: {m['registrations']}, evictions: {m['evictions']}")
assert done == 36 and manager.available_blocks == manager.total_blocks
print("pool intact: every block free or cached")
