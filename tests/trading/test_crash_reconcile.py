"""Kill -9 a trading process at random points of a stream of orders, restart it, and prove the journal ends up
exactly the simulator's ledger: no order lost, none duplicated, every state agreed.

The simulator runs as one long-lived subprocess (`engine sim`); each trading process is a fresh subprocess
(`tests.trading.crash_worker`) on the same journal, so each start reconciles what the last kill left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.advanced.venue import from_exchange_status
from tests.support import chaos, leaks
from tests.support.keys import new_ed25519_key
from tests.support.simproc import running_sim

# `make chaos` runs 60 kill points (CHAOS_KILL_POINTS); the default run keeps 12. CHAOS_SEED draws the
# pauses between kills and each worker's order stream: a failure prints it (tests/support/chaos.py).
KILL_POINTS = chaos.kill_points(12)
SIM_FLAGS = ("--no-rate-limit", "--tick-interval", "0.05")


def _read_line(process: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        leaks.observe(line)
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    stderr = process.stderr.read() if process.stderr is not None and process.poll() is not None else ""
    leaks.observe(stderr)
    raise AssertionError(f"no {prefix!r} line from {process.args!r}; stderr: {stderr[-2000:]}")


def _rest_of_output(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """What is left of stdout and stderr once the process ends, read through the streams `_read_line` used:
    communicate() would read the pipes' descriptors directly and miss lines already read ahead. (The worker
    writes a few lines to stdout and nothing to stderr unless it fails, so neither pipe fills meanwhile.)"""
    assert process.stdout is not None
    assert process.stderr is not None
    output = process.stdout.read()  # to EOF: the process has exited or been killed
    errors = process.stderr.read()
    process.wait(timeout=timeout)
    return output, errors


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key_file = new_ed25519_key().write_portal_file(tmp_path / "key.json")
    with running_sim(key_file, "--seed", "5", *SIM_FLAGS) as sim:
        yield sim.base_url, key_file


def _worker(base_url: str, key_file: Path, journal: Path, seed: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.trading.crash_worker",
            base_url,
            str(key_file),
            str(journal),
            str(seed),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _ledger(base_url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{base_url}/sim/ledger", timeout=10) as response:  # noqa: S310 (loopback URL)
        return list(orjson.loads(response.read())["orders"])


@pytest.mark.chaos
@pytest.mark.timeout(120 + 10 * KILL_POINTS)  # each kill point starts a process that imports and reconciles
def test_sigkill_at_random_points_then_restart_reconciles_to_the_ledger(
    simulator: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, key_file = simulator
    journal_path = tmp_path / "journal.db"
    chaos_seed = chaos.seed()
    rng = random.Random(chaos_seed)
    sent = 0
    resolved_after_kill = 0
    for kill_point in range(KILL_POINTS):
        worker = _worker(base_url, key_file, journal_path, chaos_seed + kill_point)
        report = json.loads(_read_line(worker, "ready "))
        resolved_after_kill += len(report["resolved"])
        assert report["unknown_open_orders"] == []  # every open order on the exchange is in the journal
        time.sleep(rng.uniform(0.05, 0.6))
        worker.send_signal(signal.SIGKILL)
        output, errors = _rest_of_output(worker, timeout=10)
        leaks.observe(output + errors)
        assert worker.returncode == -signal.SIGKILL
        sent += output.count("sent ")

    final = _worker(base_url, key_file, journal_path, 0, "--final")
    report = json.loads(_read_line(final, "ready "))
    output, errors = _rest_of_output(final, timeout=30)
    leaks.observe(output + errors)
    assert final.returncode == 0, errors[-2000:]
    resolved_after_kill += len(report["resolved"])

    ledger = _ledger(base_url)
    ledger_ids = [str(entry["client_order_id"]) for entry in ledger]
    assert sent > KILL_POINTS, "the stream was too short to mean anything"
    assert resolved_after_kill > 0, "no kill landed between an intent and its answer"
    assert len(ledger_ids) == len(set(ledger_ids)), "an order was placed twice"
    by_id = {str(entry["client_order_id"]): entry for entry in ledger}
    with OrderJournal(journal_path) as journal:
        entries = {entry.client_order_id: entry for entry in journal.entries()}
        assert not journal.unresolved(), "reconciliation left orders in an unknown state"
    # no order lost: everything the exchange holds was journalled (intent before send) ...
    assert set(by_id) <= set(entries)
    # ... and everything the journal says was placed is on the exchange, with the same id and state
    for client_order_id, entry in entries.items():
        if entry.state in (OrderState.NOT_PLACED, OrderState.REJECTED):
            assert client_order_id not in by_id, f"{client_order_id} is {entry.state.value} but was placed"
            continue
        exchange = by_id[client_order_id]
        assert entry.order_id == exchange["order_id"]
        assert entry.state is from_exchange_status(str(exchange["status"])), client_order_id
