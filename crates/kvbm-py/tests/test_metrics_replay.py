"""metrics() and StatsCollector, and replay() against the CLI binary."""

import pytest

import kvbm


def test_metrics_dict_counts_operations():
    m = kvbm.BlockManager(16, 4)
    s = kvbm.TokenBlockSequence(list(range(16)), 4)
    m.register(m.allocate(4), s.blocks).release()
    m.match(s.sequence_hashes()[:3]).release()
    g = m.metrics()
    assert g["allocations"] == 4 and g["registrations"] == 4 and g["stagings"] == 4
    assert g["match_hashes_requested"] == 3 and g["match_blocks_returned"] == 3
    assert g["inactive_pool_size"] == 4 and g["reset_pool_size"] == 12
    assert all(isinstance(v, int) for v in g.values())


def test_stats_collector_snapshot():
    m = kvbm.BlockManager(16, 4)
    stats = m.stats_collector(window_size=3)
    assert stats.enabled and stats.window_size == 3 and stats.latest() is None
    stats.sample()
    s = kvbm.TokenBlockSequence(list(range(16)), 4)
    m.register(m.allocate(4), s.blocks).release()
    m.match(s.sequence_hashes()).release()
    stats.sample()
    latest = stats.latest()
    assert latest["match_hit_rate"] == 1.0
    assert latest["allocation_rate"] > 0
    assert latest["inactive_pool_size"] == 4
    for _ in range(5):
        stats.sample()
    assert len(stats.window(10)) == 3
    stats.enabled = False
    assert not stats.enabled


def figures(results):
    return [(r["policy"], r["hits"], r["misses"], r["evictions"], r["block_hit_rate"]) for r in results]


def test_replay_equals_the_cli_on_the_built_in_workload(cli_replay):
    py = kvbm.replay(block_size=64, capacity_blocks=400, requests=600)
    cli = cli_replay("--block-size", "64", "--capacity-blocks", "400", "--requests", "600")
    assert figures(py) == figures(cli["results"])
    assert {r["policy"] for r in py} >= set(kvbm.EVICTION_POLICIES) | {"unbounded"}
    full = kvbm.replay(block_size=64, capacity_blocks=400, requests=600, report=True)
    assert full["workload"] == cli["workload"] and full["capacity_blocks"] == 400


def test_replay_one_policy_and_serve_timing(cli_replay):
    py = kvbm.replay(block_size=16, capacity_blocks=100, requests=150, policy="lineage", timing="serve")
    cli = cli_replay("--block-size", "16", "--capacity-blocks", "100", "--requests", "150", "--policy", "lineage", "--timing", "serve")
    assert figures(py) == figures(cli["results"])
    assert [r["policy"] for r in py] == ["lineage", "unbounded"]


def test_replay_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="lfu"):
        kvbm.replay(policy="lfu", requests=10)
    with pytest.raises(ValueError, match="timing|possible values"):
        kvbm.replay(timing="slow", requests=10)
    with pytest.raises(ValueError):
        kvbm.replay(trace=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(ValueError):
        kvbm.replay(trace=str(bad))
