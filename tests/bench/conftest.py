from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.bench.tiny_suite import run_suite, write_suite

# These tests start benchmark runs of their own. Under pytest-xdist they would inherit the worker's marker,
# and pytest-benchmark then turns timing off in them as if they were xdist workers too.
for _name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
    os.environ.pop(_name, None)


@dataclass(frozen=True)
class TinyRun:
    checkout: Path
    json_path: Path
    process: subprocess.CompletedProcess[str]

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.json_path.read_text(encoding="utf-8"))
        return document


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One real, timed pytest-benchmark run of the tiny suite, shared by the report tests."""
    checkout = tmp_path_factory.mktemp("tiny-checkout")
    write_suite(checkout)
    json_path = checkout / "results.json"
    process = run_suite(checkout, json_path)
    assert json_path.is_file(), process.stdout + process.stderr
    return TinyRun(checkout, json_path, process)
