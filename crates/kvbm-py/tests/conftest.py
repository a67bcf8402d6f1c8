"""Shared helpers: run Rust programs of the workspace for reference values."""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def cargo_run(package: str, target: list, args: list) -> str:
    """Runs a workspace binary or example through cargo (built if needed)."""
    cmd = ["cargo", "run", "-q", "-p", package, *target, "--", *args]
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="session")
def rust_hash_vectors():
    """Hash vectors computed by the Rust library (examples/hash_vectors.rs)."""
    text = cargo_run("kvbm-py", ["--example", "hash_vectors"], ["7", "120"])
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def cli_replay():
    """`kvbm replay --json` from the CLI binary, for given arguments."""

    def run(*args):
        return json.loads(cargo_run("kvbm-cli", ["--bin", "kvbm"], ["replay", "--json", "-q", *args]))

    return run


@pytest.fixture
def manager():
    return __import__("kvbm").BlockManager(32, 4)


def pytest_report_header(config):
    return f"kvbm tests, repo {REPO}, CI={os.environ.get('CI', '')}"
