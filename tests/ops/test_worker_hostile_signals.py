"""Hostile but valid signals, through the webhook into a worker trading on the simulator: every signal the
webhook answers 202 for reaches a recorded outcome (placed, refused or rejected with a reason, or failed with
a reason), no order is placed twice or without a placed outcome, and no log or audit line grows with the
size of a number."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from engine.ops.config import parse_config
from engine.signals.execution import OutcomeStatus, SignalOutcome
from engine.signals.model import signal_client_order_id
from engine.signals.stream import stream_keys
from engine.worker import Worker
from engine.worker.intake import QueueIntake
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import eventually, post_signal
from tests.support.hostile_values import HOSTILE_DECIMALS, OFF_CALENDAR_TIMES
from tests.support.keys import new_es256_key, new_webhook_secret
from tests.support.leaks import observe

NS = "hostile"


def hostile_signals(mid: Decimal) -> list[dict[str, Any]]:
    """Each passes validation; what becomes of it is the risk gate's or the exchange's to say."""
    below = str((mid * Decimal("0.9")).quantize(Decimal("0.01")))
    above = str((mid * Decimal("1.1")).quantize(Decimal("0.01")))
    limit = {
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_type": "limit",
        "size": "0.01",
        "limit_price": below,
    }
    market = {"product_id": "BTC-USD", "order_type": "market"}
    return [
        limit | {"id": "huge-size", "size": "999999999999999"},
        limit | {"id": "tiny-size", "size": "1E-18"},
        limit | {"id": "tiny-price", "limit_price": "0.000000000000000001"},
        limit | {"id": "huge-price-sell", "side": "SELL", "limit_price": "999999999999999"},
        limit | {"id": "most-digits", "size": "0.012345678901234567", "limit_price": "12345.1234567890123"},
        limit | {"id": "gtd-first-day", "time_in_force": "GTD", "end_time": "0001-01-01T00:00:00-14:00"},
        limit | {"id": "gtd-last-moment", "time_in_force": "GTD", "end_time": "9999-12-31T23:59:59.999999Z"},
        limit | {"id": "gtd-last-day-east", "time_in_force": "GTD", "end_time": "9999-12-31T23:59:59+14:00"},
        limit | {"id": "fok-far-below", "time_in_force": "FOK", "limit_price": "0.01"},
        limit | {"id": "ioc-exponent", "time_in_force": "IOC", "size": "1E-2", "limit_price": "1E+4"},
        limit | {"id": "post-only-crossing", "limit_price": above, "post_only": True},
        limit | {"id": "plus-sign", "size": "+0.01"},
        limit | {"id": "lower-case", "side": "buy", "time_in_force": "gtc", "order_type": "LIMIT"},
        limit | {"id": "x" * 128, "tag": "\U0001f4a5" * 16},
        limit | {"id": "unknown-product", "product_id": "ZZZZ-USDC"},
        {"id": "stop-down-tiny", "product_id": "BTC-USD", "side": "SELL", "order_type": "stop_limit",
         "size": "0.01", "limit_price": "1E-18", "stop_price": "1E-18", "stop_direction": "down"},
        {"id": "stop-gtd-edge", "product_id": "BTC-USD", "side": "BUY", "order_type": "stop_limit",
         "size": "0.01", "limit_price": above, "stop_price": above, "time_in_force": "GTD",
         "end_time": "9999-12-31T09:59:59-14:00"},
        market | {"id": "market-quote-max", "side": "BUY", "quote_size": "12345678901234.12345678901234"},
        market | {"id": "market-sell-tiny", "side": "SELL", "size": "0.000000000000000001"},
        market | {"id": "market-fok-float", "side": "BUY", "quote_size": 1e-08, "time_in_force": "FOK"},
    ]  # fmt: skip


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage() + (record.exc_text or ""))


@pytest.fixture
def worker_log() -> Iterator[_Records]:
    handler, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _worker(
    running_sim: RunningSim, tmp_path: Path, *, redis_url: str | None = None, **journal: str
) -> tuple[Worker, str]:
    key = new_es256_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    webhook_secret = new_webhook_secret()
    config = parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "limits": {"max_retries": 0},
            "risk": {"products": ["BTC-USD"]},
            "signals": {"port": 0} | ({"redis_url": redis_url, "redis_namespace": NS} if redis_url else {}),
            "metrics": {"enabled": False},
            "journal": {"path": str(tmp_path / "journal.sqlite"), **journal},
            "worker": {"cancel_open_orders_on_exit": True},
        }
    )
    env = {
        "COINBASE_API_KEY": key.name,
        "COINBASE_API_SECRET": key.private_key,
        "ENGINE_WEBHOOK_SECRET": webhook_secret,
    }
    return Worker(config, environ=env), webhook_secret


class _RecordedOutcomes:
    """Where the worker recorded each signal's outcome: the local queue's record, or the stream's claim
    hashes in Redis."""

    def __init__(self, worker: Worker, redis_url: str | None) -> None:
        self._worker = worker
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None

    async def get(self, signal_id: str) -> SignalOutcome | None:
        if self._redis is None:
            intake = self._worker.intake
            assert isinstance(intake, QueueIntake)
            return intake.outcomes.get(signal_id)
        raw = await self._redis.hget(stream_keys(NS)[1] + signal_id, "outcome")
        return None if raw is None else SignalOutcome.from_json(raw)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


@pytest.mark.parametrize("intake", ["queue", "stream"])
async def test_every_accepted_hostile_signal_reaches_a_recorded_outcome(
    running_sim: RunningSim, tmp_path: Path, worker_log: _Records, intake: str, request: pytest.FixtureRequest
) -> None:
    sim = running_sim.sim
    audit_path = tmp_path / "audit.jsonl"
    redis_url = request.getfixturevalue("redis_server").url if intake == "stream" else None
    worker, webhook_secret = _worker(running_sim, tmp_path, redis_url=redis_url, audit_log=str(audit_path))
    recorded = _RecordedOutcomes(worker, redis_url)
    signals = hostile_signals(sim.markets["BTC-USD"].mid)
    assert len(signals) >= 10
    await worker.start()
    accepted: list[str] = []
    try:
        # and signals that must not get in at all: off-calendar end times, unbounded decimals
        refused = [
            {"id": f"off-calendar-{n}", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
             "size": "0.01", "limit_price": "100", "time_in_force": "GTD", "end_time": end_time}
            for n, end_time in enumerate(OFF_CALENDAR_TIMES)
        ] + [
            {"id": f"unbounded-{n}", "product_id": "BTC-USD", "side": "BUY", "order_type": "market",
             "quote_size": text}
            for n, (text, _) in enumerate(HOSTILE_DECIMALS)
        ]  # fmt: skip
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(
                *(
                    post_signal(session, worker.webhook_url, webhook_secret, orjson.dumps(s))
                    for s in signals + refused
                )
            )
        for signal, status in zip(signals + refused, statuses, strict=True):
            if status == 202:
                accepted.append(str(signal["id"]))
            else:
                assert status == 400, signal["id"]
        assert sorted(accepted) == sorted(str(s["id"]) for s in signals)  # every valid one, only those

        outcomes: dict[str, SignalOutcome] = {}

        async def all_settled() -> bool:
            for signal_id in accepted:
                if signal_id not in outcomes and (outcome := await recorded.get(signal_id)) is not None:
                    outcomes[signal_id] = outcome
            return len(outcomes) == len(accepted)

        await eventually(all_settled, timeout=30)
    finally:
        await worker.stop()
        await recorded.close()

    placed_coids = set()
    for signal_id, outcome in outcomes.items():
        assert outcome.client_order_id == signal_client_order_id(signal_id)
        if outcome.status is OutcomeStatus.PLACED:
            assert outcome.order_id, signal_id
            placed_coids.add(outcome.client_order_id)
        else:
            assert outcome.reason, (signal_id, outcome)
    ledger = running_sim.ledger()
    for coid, statuses_of_coid in ledger.items():
        assert coid in placed_coids, coid  # the exchange holds no order we do not know was placed
        assert len(statuses_of_coid) == 1, coid  # and none twice
    assert placed_coids <= set(ledger)
    by_status = {s: sorted(i for i, o in outcomes.items() if o.status is s) for s in OutcomeStatus}
    assert by_status[OutcomeStatus.PLACED], by_status  # the table exercises the whole path, not only refusals
    assert by_status[OutcomeStatus.REFUSED], by_status
    assert outcomes["unknown-product"].reason == "product"
    assert outcomes["huge-size"].status is OutcomeStatus.REFUSED

    # no line grows with the size of a number: the largest accepted number has 15 digits before the point
    assert max(len(m) for m in worker_log.messages) < 2000, max(worker_log.messages, key=len)[:300]
    assert not any("unexpected error" in m for m in worker_log.messages)
    audit_lines = audit_path.read_bytes().splitlines()
    assert audit_lines
    assert max(len(line) for line in audit_lines) < 1000
    observe("\n".join(worker_log.messages), "worker log")


async def test_a_signal_the_exchange_cannot_take_is_recorded_as_failed_with_the_reason(
    running_sim: RunningSim, tmp_path: Path
) -> None:
    sim = running_sim.sim
    worker, webhook_secret = _worker(running_sim, tmp_path)
    await worker.start()
    try:
        intake = worker.intake
        assert isinstance(intake, QueueIntake)
        sim.faults.update({"error_5xx_rate": 1.0})  # the exchange answers every request with a 5xx
        body = {"id": "into-the-void", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
                "size": "0.01", "limit_price": "1000"}  # fmt: skip
        async with aiohttp.ClientSession() as session:
            assert await post_signal(session, worker.webhook_url, webhook_secret, orjson.dumps(body)) == 202

            async def settled() -> bool:
                return "into-the-void" in intake.outcomes

            await eventually(settled, timeout=30)
        sim.faults.clear()
        outcome = intake.outcomes["into-the-void"]
        assert outcome.status is OutcomeStatus.FAILED
        assert outcome.reason.startswith("not settled: "), outcome.reason
        assert outcome.client_order_id == signal_client_order_id("into-the-void")
    finally:
        sim.faults.clear()
        await worker.stop()
