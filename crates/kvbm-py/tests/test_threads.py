"""Several Python threads share one manager and hand blocks to each other:
the pool stays consistent and every block comes back."""

import queue
import random
import threading

import kvbm


def test_threads_share_a_manager_and_pass_blocks_around():
    m = kvbm.BlockManager(256, 4, policy="lru")
    prompts = [kvbm.TokenBlockSequence([p] * 4 + list(range(40)), 4) for p in range(6)]
    handoff: "queue.Queue[kvbm.ImmutableBlockList]" = queue.Queue()
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for _ in range(300):
                hashes = rng.choice(prompts).sequence_hashes()
                held = m.match(hashes)
                fresh = m.allocate(len(hashes) - len(held))
                if fresh is not None:
                    held.extend(m.register(fresh, hashes[len(held):]))
                if rng.random() < 0.3:
                    handoff.put(held)  # released by another thread
                else:
                    held.release()
                try:
                    handoff.get_nowait().release()
                except queue.Empty:
                    pass
        except Exception as e:  # reported below, with the thread's failure
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not handoff.empty():
        handoff.get().release()
    assert errors == []
    m.validate()
    assert m.available_blocks == 256
    assert m.metrics()["inflight_immutable"] == 0
