"""Cost per request of the Python bindings next to the Rust library.

Two workloads, the same as the Rust benches (crates/kvbm/benches/workloads):
- match_revive/lineage/128: match a prefix of 128 cached blocks and release
  the handles (each block leaves the eviction order and goes back);
- churn/lineage: serving-like churn on a 1024-block pool — 8 shared system
  prompts of 16 blocks plus a fresh suffix of 4-28 blocks per request, 16
  requests in flight; each request releases the oldest in-flight request,
  matches its prefix, allocates and registers the rest.

Run after `maturin develop --release`:
    python benches/bench.py --rounds 5
which alternates the Rust benches (`cargo bench -p kvbm --bench block_ops --
match_revive/lineage/128`, `--bench churn -- churn/lineage`) with the Python
workloads, so both see the same machine load, and prints medians. Without
`--rounds`, Rust figures are read from criterion's last estimates.
"""

import argparse
import collections
import gc
import json
import pathlib
import random
import subprocess
import time

import kvbm

BLOCK = 16
CAPACITY = 1024


def per_call_us(fn, min_time=1.0, rounds=7):
    """Median over `rounds` of the mean time of `fn` in µs."""
    n = 1
    while True:  # calibrate
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t > min_time / rounds:
            break
        n *= 2
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t) / n * 1e6)
    out.sort()
    return out[len(out) // 2]


def match_revive(n=128):
    m = kvbm.BlockManager(CAPACITY, BLOCK, policy="lineage")
    seq = kvbm.TokenBlockSequence(list(range(n * BLOCK)), BLOCK)
    hashes = seq.sequence_hashes()
    m.register(m.allocate(n), hashes).release()
    assert len(m.match(hashes)) == n

    def explicit():
        m.match(hashes).release()

    def by_gc():
        m.match(hashes)  # dropped at once: refcount release

    def with_ids():
        held = m.match(hashes)
        held.block_ids()
        held.release()

    return {
        "match+release()": per_call_us(explicit),
        "match+drop": per_call_us(by_gc),
        "match+block_ids+release()": per_call_us(with_ids),
    }


def churn(seed=7, requests=2048, in_flight=16):
    rng = random.Random(seed)
    m = kvbm.BlockManager(CAPACITY, BLOCK, policy="lineage")
    stream = []
    for _ in range(requests):
        p = rng.randrange(8)
        prompt = [p * 1000 + i for i in range(16 * BLOCK)]
        suffix = [rng.randrange(2**32) for _ in range(rng.randrange(4, 28) * BLOCK)]
        stream.append(kvbm.TokenBlockSequence(prompt + suffix, BLOCK).sequence_hashes())
    flight = collections.deque()
    state = {"next": 0, "reused": 0, "filled": 0}

    def step():
        if len(flight) >= in_flight:
            flight.popleft().release()
        hashes = stream[state["next"]]
        state["next"] = (state["next"] + 1) % requests
        held = m.match(hashes)
        k = len(held)
        state["reused"] += k
        if k < len(hashes):
            fresh = m.allocate(len(hashes) - k)
            held.extend(m.register(fresh, hashes[k:]))
            state["filled"] += len(hashes) - k
        flight.append(held)

    for _ in range(requests // 4):
        step()
    m.validate()
    us = per_call_us(step)
    reuse = state["reused"] / max(1, state["reused"] + state["filled"])
    return us, reuse


def rust_estimate(root, name):
    """Criterion's median estimate for benchmark `name`, in µs, if recorded."""
    if not root.exists():
        return None
    for p in root.glob("*/new/estimates.json"):
        bench = json.loads((p.parent / "benchmark.json").read_text())
        if bench.get("full_id") == name:
            return json.loads(p.read_text())["median"]["point_estimate"] / 1000
    return None


def run_rust_benches(repo):
    """Runs the two Rust benches (criterion, short) so their figures are taken
    under the same machine load as the Python ones."""
    for bench, name in (("block_ops", "match_revive/lineage/128"), ("churn", "churn/lineage")):
        subprocess.run(
            ["cargo", "bench", "-q", "-p", "kvbm", "--bench", bench, "--", name,
             "--warm-up-time", "1", "--measurement-time", "2", "--noplot"],
            cwd=repo, check=True, capture_output=True,
        )


def main():
    repo = pathlib.Path(__file__).resolve().parents[3]
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust-dir", type=pathlib.Path, default=repo / "target" / "criterion")
    ap.add_argument("--rounds", type=int, default=0,
                    help="alternate N rounds of the Rust benches (cargo bench) and the Python ones; "
                         "report medians (0: Python only, Rust figures from --rust-dir)")
    args = ap.parse_args()
    gc.disable()  # the workloads make no cycles; keep the collector out of the timings
    rows = collections.defaultdict(list)
    for _ in range(max(1, args.rounds)):
        if args.rounds:
            run_rust_benches(repo)
        rust_mr = rust_estimate(args.rust_dir, "match_revive/lineage/128")
        rust_ch = rust_estimate(args.rust_dir, "churn/lineage")
        for name, us in match_revive().items():
            rows["match_revive/lineage/128 " + name].append((us, rust_mr))
        ch, reuse = churn()
        rows["churn/lineage (per request)"].append((ch, rust_ch))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(f"{'workload':46} {'python µs':>10} {'rust µs':>9} {'ratio':>6}")
    for name, pairs in rows.items():
        py = med([p for p, _ in pairs])
        have = [r for _, r in pairs if r]
        rust = med(have) if have else None
        ratio = med([p / r for p, r in pairs if r]) if have else None
        print(f"{name:46} {py:10.2f} {rust if rust is None else f'{rust:9.2f}'!s:>9} "
              f"{'-' if ratio is None else f'{ratio:.2f}x':>6}")
    print(f"churn: {100 * reuse:.1f}% of blocks reused; {max(1, args.rounds)} round(s), medians")


if __name__ == "__main__":
    main()
