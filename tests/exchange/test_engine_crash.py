"""Kill -9 a process trading on Coinbase Exchange at random points of a stream of orders, restart it, and
prove the journal ends up exactly the simulator's ledger: no order lost, none duplicated, every state agreed.

The simulator runs as one long-lived subprocess (`engine sim`, with an Exchange key); each trading process is
a fresh subprocess (`tests.exchange.crash_worker`) on the same journal, so each start reconciles what the
last kill left behind. `CHAOS_KILL_POINTS` sets how many kills (12 by default; `make chaos` runs 60+),
`CHAOS_SEED` the random seed (a fresh one by default), which a failure names.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.advanced.venue import from_exchange_status
from tests.support import leaks
from tests.support.keys import new_ed25519_key, new_exchange_key
from tests.support.simproc import running_sim

KILL_POINTS = int(os.environ.get("CHAOS_KILL_POINTS", "12"))
SEED = int(os.environ.get("CHAOS_SEED") or secrets.randbelow(2**32))
SIM_FLAGS = ("--no-rate-limit", "--tick-interval", "0.05")

pytestmark = pytest.mark.chaos


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
    raise AssertionError(f"no {prefix!r} line from {process.args!r} (CHAOS_SEED={SEED}); {stderr[-2000:]}")


def _rest_of_output(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """What is left of stdout and stderr once the process ends, through the streams `_read_line` used."""
    assert process.stdout is not None
    assert process.stderr is not None
    output = process.stdout.read()
    errors = process.stderr.read()
    process.wait(timeout=timeout)
    return output, errors


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cdp_key_file = new_ed25519_key().write_portal_file(tmp_path / "key.json")
    exchange_key_file = tmp_path / "exchange-key.json"
    exchange_key_file.write_text(json.dumps(asdict(new_exchange_key())))
    exchange_key_file.chmod(0o600)
    flags = ("--exchange-key-file", str(exchange_key_file), "--seed", "5", *SIM_FLAGS)
    with running_sim(cdp_key_file, *flags) as sim:
        yield sim.base_url, exchange_key_file


def _worker(base_url: str, key_file: Path, journal: Path, seed: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.exchange.crash_worker",
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


def test_sigkill_while_trading_on_exchange_then_restart_reconciles_to_the_ledger(
    simulator: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, key_file = simulator
    journal_path = tmp_path / "journal.db"
    rng = random.Random(SEED)
    seeded = f"CHAOS_SEED={SEED} CHAOS_KILL_POINTS={KILL_POINTS}"
    sent = 0
    resolved_after_kill = 0
    for kill_point in range(KILL_POINTS):
        worker = _worker(base_url, key_file, journal_path, rng.randrange(2**32))
        report = json.loads(_read_line(worker, "ready "))
        resolved_after_kill += len(report["resolved"])
        # every open order on the exchange is in the journal
        assert report["unknown_open_orders"] == [], f"kill {kill_point}, {seeded}"
        time.sleep(rng.uniform(0.05, 0.6))
        worker.send_signal(signal.SIGKILL)
        output, errors = _rest_of_output(worker, timeout=10)
        leaks.observe(output + errors)
        assert worker.returncode == -signal.SIGKILL, f"{seeded}: {errors[-2000:]}"
        sent += output.count("sent ")

    final = _worker(base_url, key_file, journal_path, 0, "--final")
    report = json.loads(_read_line(final, "ready "))
    output, errors = _rest_of_output(final, timeout=30)
    leaks.observe(output + errors)
    assert final.returncode == 0, f"{seeded}: {errors[-2000:]}"
    resolved_after_kill += len(report["resolved"])

    ledger = _ledger(base_url)
    ledger_ids = [str(entry["client_order_id"]) for entry in ledger]
    assert sent > KILL_POINTS, f"the stream was too short to mean anything ({seeded})"
    assert resolved_after_kill > 0, f"no kill landed between an intent and its answer ({seeded})"
    assert len(ledger_ids) == len(set(ledger_ids)), f"an order was placed twice ({seeded})"
    by_id = {str(entry["client_order_id"]): entry for entry in ledger}
    with OrderJournal(journal_path) as journal:
        entries = {entry.client_order_id: entry for entry in journal.entries()}
        assert not journal.unresolved(), f"reconciliation left orders in an unknown state ({seeded})"
    # no order lost: everything the exchange holds was journalled (intent before send) ...
    assert set(by_id) <= set(entries), seeded
    # ... and everything the journal says was placed is on the exchange: same id, state and filled size
    for client_order_id, entry in entries.items():
        if entry.state in (OrderState.NOT_PLACED, OrderState.REJECTED):
            assert client_order_id not in by_id, f"{client_order_id} is {entry.state.value} but was placed"
            continue
        exchange = by_id[client_order_id]
        assert entry.order_id == exchange["order_id"], seeded
        assert entry.state is from_exchange_status(str(exchange["status"])), f"{client_order_id} ({seeded})"
        assert entry.filled_size == Decimal(str(exchange["filled_size"])), f"{client_order_id} ({seeded})"
