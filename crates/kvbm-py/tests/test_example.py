"""examples/engine_loop.py runs to the end with preemptions and an intact pool."""

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "engine_loop.py"


def test_engine_loop_example():
    out = subprocess.run([sys.executable, str(EXAMPLE)], check=True, capture_output=True, text=True).stdout
    assert "served 36 requests" in out
    assert "0 preemptions" not in out
    assert "pool intact" in out
