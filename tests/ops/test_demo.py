"""`engine demo` end to end, as `make demo` runs it: a subprocess, exit 0, the summary printed."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.leaks import observe


def test_engine_demo_runs_end_to_end() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "demo", "--duration", "3"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    observe(completed.stdout, "engine demo stdout")
    observe(completed.stderr, "engine demo stderr")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "engine demo:" in out
    acknowledged = re.search(r"orders .*acknowledged (\d+)", out)
    assert acknowledged is not None, out
    assert int(acknowledged.group(1)) > 0
    assert re.search(r"refusals +.*order_size \d+", out), out
    assert re.search(r"429s +\d+", out)
    assert re.search(r"signal -> order acknowledged: +p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms", out), out
    assert re.search(r"order placed \(risk, journal, request\): p50 [\d.]+ ms", out), out
    # not a terminal: periodic progress lines, never carriage returns
    assert "\r" not in out
