"""SIGKILL a perpetuals trading process at random points of a stream of orders (with answers dropped after
the gateway accepted them), restart it, and prove the journal ends up exactly the simulator's ledger: no order
lost, none duplicated, every state agreed. Labels are the only ids the gateway keeps for us.

`CHAOS_KILL_POINTS` (default 12) sets how many kills; `CHAOS_SEED` the random seed (printed on failure).
The simulator runs as one long-lived subprocess; each trading process is a fresh one on the same journal.
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
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from tests.support import leaks
from tests.support.keys import new_ed25519_key
from tests.support.simproc import running_sim

KILL_POINTS = int(os.environ.get("CHAOS_KILL_POINTS", "12"))
SEED = int(os.environ.get("CHAOS_SEED", str(random.SystemRandom().randrange(2**31))))
SIM_FLAGS = ("--no-rate-limit", "--tick-interval", "0.05", "--funding-interval", "0")
DROP_AFTER_ACCEPT = 0.05  # of order requests: accepted into the ledger, the reply never sent

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
    raise AssertionError(f"no {prefix!r} line from {process.args!r}; stderr: {stderr[-2000:]}")


def _rest_of_output(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    assert process.stdout is not None
    assert process.stderr is not None
    output = process.stdout.read()
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
            "tests.derivatives.engine.crash_worker",
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


def _admin(base_url: str, path: str, body: object | None = None) -> object:
    data = None if body is None else orjson.dumps(body)
    method = "GET" if data is None else "POST"
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback URL)
        return orjson.loads(response.read())


def _perp_ledger(base_url: str) -> dict[str, list[dict[str, object]]]:
    """The simulator's perpetual orders by label."""
    ledger = _admin(base_url, "/sim/ledger")
    assert isinstance(ledger, dict)
    by_label: dict[str, list[dict[str, object]]] = {}
    for entry in ledger["orders"]:
        if entry.get("source") != "derivatives":
            continue
        [terms] = entry["order_configuration"].values()
        by_label.setdefault(str(terms.get("label", "")), []).append(entry)
    return by_label


def _expected_state(entry: dict[str, object]) -> OrderState:
    status = str(entry["status"])
    if status == "OPEN":
        return OrderState.OPEN
    if status == "FILLED":
        return OrderState.FILLED
    [terms] = entry["order_configuration"].values()  # type: ignore[attr-defined]
    full = Decimal(str(entry["filled_size"])) >= Decimal(str(terms["amount"]))
    return OrderState.FILLED if full else OrderState.CANCELLED


def test_sigkill_at_random_points_then_restart_reconciles_to_the_gateway_ledger(
    simulator: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, key_file = simulator
    journal_path = tmp_path / "journal.db"
    rng = random.Random(SEED)
    _admin(base_url, "/sim/faults", {"drop_after_accept_rate": DROP_AFTER_ACCEPT})
    sent = 0
    resolved_after_kill = 0
    try:
        for kill_point in range(KILL_POINTS):
            worker = _worker(base_url, key_file, journal_path, rng.randrange(2**31))
            report = json.loads(_read_line(worker, "ready "))
            resolved_after_kill += len(report["resolved"])
            assert report["unknown_open_orders"] == []  # every open order on the gateway is in the journal
            time.sleep(rng.uniform(0.05, 0.6))
            worker.send_signal(signal.SIGKILL)
            output, errors = _rest_of_output(worker, timeout=10)
            leaks.observe(output + errors)
            assert worker.returncode == -signal.SIGKILL, (kill_point, errors[-2000:])
            sent += output.count("sent ")

        _admin(base_url, "/sim/faults", {"drop_after_accept_rate": 0})
        final = _worker(base_url, key_file, journal_path, 0, "--final")
        report = json.loads(_read_line(final, "ready "))
        output, errors = _rest_of_output(final, timeout=30)
        leaks.observe(output + errors)
        assert final.returncode == 0, errors[-2000:]
        resolved_after_kill += len(report["resolved"])

        ledger = _perp_ledger(base_url)
        assert sent > KILL_POINTS, "the stream was too short to mean anything"
        assert resolved_after_kill > 0, "no kill landed between an intent and its answer"
        twice = {label: len(entries) for label, entries in ledger.items() if len(entries) > 1}
        assert not twice, f"placed more than once: {twice}"
        with OrderJournal(journal_path) as journal:
            entries = {entry.client_order_id: entry for entry in journal.entries()}
            assert not journal.unresolved(), "reconciliation left orders in an unknown state"
        # no order lost: everything the gateway holds was journalled (intent before the frame) ...
        assert set(ledger) <= set(entries)
        # ... and everything the journal says was placed is on the gateway, with its order id and state
        for client_order_id, entry in entries.items():
            if entry.state in (OrderState.NOT_PLACED, OrderState.REJECTED):
                assert client_order_id not in ledger, (
                    f"{client_order_id} is {entry.state.value} but was placed"
                )
                continue
            [placed] = ledger[client_order_id]
            assert entry.order_id == placed["order_id"], client_order_id
            assert entry.state is _expected_state(placed), (client_order_id, entry.state, placed)
        # the position the final engine started with is the one the gateway's fills add up to
        signed = (
            Decimal(str(e["filled_size"])) * (1 if e["side"] == "BUY" else -1)
            for entries_of_label in ledger.values()
            for e in entries_of_label
        )
        assert Decimal(report["position"]) == sum(signed, Decimal(0))
    except AssertionError as failure:
        raise AssertionError(f"{failure} (CHAOS_SEED={SEED}, CHAOS_KILL_POINTS={KILL_POINTS})") from failure
