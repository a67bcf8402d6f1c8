"""The type stubs agree with the runtime module (mypy's stubtest), and the
example and the benchmark type-check against them."""

import pathlib
import subprocess
import sys

PKG = pathlib.Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=PKG, capture_output=True, text=True)


def test_stubtest_finds_no_difference():
    # Disjoint bases (PEP 800) are a typing detail of extension classes.
    out = run("mypy.stubtest", "--ignore-disjoint-bases", "kvbm")
    assert out.returncode == 0, out.stdout + out.stderr


def test_example_and_bench_type_check():
    out = run("mypy", "--no-incremental", "examples/engine_loop.py", "benches/bench.py")
    assert out.returncode == 0, out.stdout + out.stderr
