"""A tiny pytest-benchmark suite, run for real in a subprocess, for the report and runner tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Named like the real suites: "engine" in a name marks the engine's benchmark, its group-mates are peers.
BENCH_SOURCE = """
import hashlib
import time

import pytest

PAYLOAD = b"x" * 256


@pytest.mark.benchmark(group="digest")
def test_engine_sha256(benchmark):
    digest = benchmark(hashlib.sha256, PAYLOAD)
    assert digest.hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.benchmark(group="digest")
def test_sha256_of_joined_chunks(benchmark):
    benchmark.extra_info["label"] = "sha256 of joined chunks"
    digest = benchmark(lambda: hashlib.sha256(b"".join([PAYLOAD[:128], PAYLOAD[128:]])))
    assert digest.digest() == hashlib.sha256(PAYLOAD).digest()


@pytest.mark.benchmark(group="other group")
def test_explicit_pair(benchmark):
    benchmark.extra_info.update(role="engine", vs=["sha256_of_joined_chunks", "not_in_this_run"])
    assert benchmark(sum, range(10)) == 45


def test_wrong_answer(benchmark):
    result = benchmark(sorted, [3, 1, 2])
    assert result == [3, 2, 1], "a fast wrong answer must show as wrong"


@pytest.mark.benchmark(group="batch", timer=time.process_time)
def test_batch_of_orders(benchmark):
    benchmark.extra_info.update(per_round=50, unit="order")
    digests = benchmark(lambda: [hashlib.sha256(PAYLOAD + bytes([i])) for i in range(50)])
    assert len({d.digest() for d in digests}) == 50


@pytest.mark.parametrize("size", [1, 64])
def test_ungrouped(benchmark, size):
    assert benchmark(bytes, size) == bytes(size)
"""

PYPROJECT = """
[tool.pytest.ini_options]
python_files = ["bench_*.py"]
addopts = "-p no:cacheprovider"
"""


def write_suite(checkout: Path) -> None:
    """A directory laid out like the project for the benchmark runner: benches/ with the real report,
    plugin and callgrind driver beside a tiny benchmark module."""
    benches = checkout / "benches"
    (benches / "callgrind").mkdir(parents=True)
    for name in ("report.py", "_plugin.py", "callgrind/driver.py"):
        (benches / name).write_text((ROOT / "benches" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (benches / "bench_tiny.py").write_text(BENCH_SOURCE, encoding="utf-8")
    (checkout / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")


def run_suite(checkout: Path, json_path: Path) -> subprocess.CompletedProcess[str]:
    """Time the tiny suite with the project's plugin loaded; it fails (test_wrong_answer) by design."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benches",
            "-q",
            "-p",
            "benches._plugin",
            "--benchmark-only",
            f"--benchmark-json={json_path}",
            "--benchmark-max-time=0.05",
            "--benchmark-min-rounds=200",
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
