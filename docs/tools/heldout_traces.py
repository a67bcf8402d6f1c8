#!/usr/bin/env python3
"""Held-out traces for checking eviction policies (docs/eviction.md).

Writes six Mooncake-shaped JSONL traces (timestamp, input_length,
output_length, hash_ids) into the directory given as the only argument:
sessions over shared contexts (documents, system prompts) with Zipf
popularity, multi-turn prefix growth, one-shot requests, interleaved by a
think-time queue. The parameter sets differ in skew, number and length of
contexts, turns, share of one-shot requests and concurrency, so a policy
tuned to one trace is checked on shapes it was not tuned on. Deterministic
for a given Python version (random.Random with fixed seeds).

    python3 docs/tools/heldout_traces.py /tmp/held [SEED_SHIFT]
    kvbm replay --trace /tmp/held/h1.jsonl --capacity 3% --policy lru,multi-lru,admission
"""
import json, random, math, sys, heapq

def gen(seed, out, requests=10000, zipf=0.9, contexts=3000, ctx_mean=12,
        turns_mean=3.0, turn_blocks=3, one_shot=0.35, concurrency=200,
        sys_prompts=1, sys_len=1, deep_docs=0.0):
    rnd = random.Random(seed)
    nid = [0]
    def fresh(n):
        s = nid[0]; nid[0] += n; return list(range(s, s + n))
    sysp = [fresh(sys_len) for _ in range(sys_prompts)]
    weights = [1.0 / (i + 1) ** zipf for i in range(contexts)]
    ctx = [None] * contexts
    def ctx_blocks(c):
        if ctx[c] is None:
            n = max(1, int(rnd.lognormvariate(math.log(ctx_mean), 0.8)))
            base = rnd.choice(sysp) if sys_prompts else []
            ctx[c] = base + fresh(n)
        return ctx[c]
    cum = []; t = 0
    for w in weights: t += w; cum.append(t)
    import bisect
    def pick():
        return bisect.bisect_left(cum, rnd.random() * t)
    # active sessions: heap of (time, id, prefix, turns_left)
    heap = []; now = 0.0; sid = 0; lines = []
    def new_session(at):
        nonlocal sid
        if rnd.random() < one_shot:
            n = max(1, int(rnd.lognormvariate(math.log(ctx_mean), 1.0)))
            prefix = (rnd.choice(sysp) if sys_prompts else []) + fresh(n)
            turns = 1
        else:
            prefix = list(ctx_blocks(pick()))
            turns = 1 + int(rnd.expovariate(1.0 / max(turns_mean - 1, 1e-9))) if turns_mean > 1 else 1
        sid += 1
        heapq.heappush(heap, (at, sid, prefix, turns))
    for _ in range(concurrency):
        new_session(rnd.expovariate(1.0) * concurrency / 10)
    while len(lines) < requests:
        at, s, prefix, turns = heapq.heappop(heap)
        ids = prefix + fresh(max(1, int(rnd.expovariate(1.0 / turn_blocks)) + 1))
        ids = ids[:400]
        tokens = 512 * (len(ids) - 1) + rnd.randint(1, 512)
        lines.append((at, ids, tokens))
        if turns > 1:
            # the next turn extends this prompt plus an answer block
            heapq.heappush(heap, (at + rnd.expovariate(1.0) * concurrency / 10, s, ids + fresh(1), turns - 1))
        else:
            new_session(at + rnd.expovariate(1.0))
    lines.sort(key=lambda x: x[0])
    with open(out, 'w') as f:
        for at, ids, tokens in lines:
            f.write(json.dumps({"timestamp": int(at * 1000), "input_length": tokens,
                                "output_length": rnd.randint(1, 400), "hash_ids": ids}) + "\n")

if __name__ == '__main__':
    P = {
        'h1': dict(seed=1, zipf=0.9, contexts=3000, turns_mean=3, one_shot=0.35, concurrency=200),
        'h2': dict(seed=2, zipf=1.2, contexts=10000, turns_mean=2, one_shot=0.5, concurrency=400, ctx_mean=20),
        'h3': dict(seed=3, zipf=0.7, contexts=2000, turns_mean=5, one_shot=0.2, concurrency=100, turn_blocks=2),
        'h4': dict(seed=4, zipf=1.0, contexts=500, turns_mean=1.5, one_shot=0.6, concurrency=300, ctx_mean=30, sys_prompts=3, sys_len=4),
        'h5': dict(seed=5, zipf=0.8, contexts=6000, turns_mean=4, one_shot=0.3, concurrency=600, ctx_mean=8, turn_blocks=4),
        'h6': dict(seed=6, zipf=1.1, contexts=1500, turns_mean=2.5, one_shot=0.4, concurrency=150, ctx_mean=40, requests=6000),
    }
    # An optional second argument shifts every seed: the same shapes with
    # other random draws.
    shift = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    for name, p in P.items():
        p = dict(p, seed=p['seed'] + shift)
        gen(out=f'{sys.argv[1]}/{name}.jsonl', **p)
