"""A worker killed with orders in flight, then restarted on the same journal: the Engine's reconciliation
looks every journalled intent up by client_order_id, and a signal that was journalled is never placed twice,
even when the platform sends it again to the new process (whose webhook has never seen its id)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson

from engine.ops.config import parse_config
from engine.signals.model import signal_client_order_id
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.worker import Worker
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import (
    WorkerProcess,
    eventually,
    metric,
    post_signal,
    resting_buy,
    worker_toml,
)
from tests.support.keys import new_es256_key, new_webhook_secret


async def test_restart_after_sigkill_reconciles_and_places_nothing_twice(
    running_sim: RunningSim, tmp_path: Path
) -> None:
    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    key.write_portal_file(tmp_path / "cdp_api_key.json")
    webhook_secret = new_webhook_secret()
    config = tmp_path / "worker.toml"
    config.write_text(worker_toml(running_sim.base_url))
    mid = sim.markets["BTC-USD"].mid
    in_flight = [f"crash-{i}" for i in range(3)]
    coids = [signal_client_order_id(s) for s in in_flight]

    first = await WorkerProcess.start(config, webhook_secret)
    try:
        # the exchange takes each order but holds its answer back: the worker has journalled the intent,
        # sent the order, and is waiting when it is killed
        sim.faults.update({"slow_response_rate": 1.0, "slow_response_s": 3.0})
        async with aiohttp.ClientSession() as session:
            for signal_id in in_flight:
                assert (
                    await post_signal(session, first.webhook_url, webhook_secret, resting_buy(signal_id, mid))
                    == 202
                )

            async def on_the_exchange() -> bool:
                return set(coids) <= running_sim.ledger().keys()

            await eventually(on_the_exchange)
    finally:
        await first.kill()  # SIGKILL: no drain, no cancel, no journal flush
        sim.faults.clear()

    second = await WorkerProcess.start(config, webhook_secret)
    try:
        async with aiohttp.ClientSession() as session:
            # the platform, never told, sends them again; the new webhook has not seen the ids
            for signal_id in in_flight:
                assert (
                    await post_signal(
                        session, second.webhook_url, webhook_secret, resting_buy(signal_id, mid)
                    )
                    == 202
                )
            assert (
                await post_signal(session, second.webhook_url, webhook_secret, resting_buy("after", mid))
                == 202
            )

            async def settled() -> bool:
                duplicates = await metric(session, second.ops_url, 'engine_orders_total{outcome="duplicate"}')
                acked = await metric(session, second.ops_url, 'engine_orders_total{outcome="acknowledged"}')
                return duplicates == 3 and acked == 1

            await eventually(settled)
        code = await second.stop()
    finally:
        await second.kill()
    assert code == 0, "\n".join(second.logs.raw[-20:])
    messages = second.logs.messages()
    assert any(m.startswith("reconciled the journal") for m in messages), messages
    assert "cancelled 4 open orders on exit" in messages  # the reconciled three and the new one

    ledger = running_sim.ledger()
    for coid in [*coids, signal_client_order_id("after")]:
        assert ledger.get(coid) == ["CANCELLED"], coid  # exactly one order each
    assert len(ledger) == 4


async def test_an_intent_journalled_but_never_sent_is_not_sent_after_a_restart(
    running_sim: RunningSim, tmp_path: Path
) -> None:
    """The crash between the journal's intent and the request: reconciliation finds no such order and marks it
    NOT_PLACED; the signal arriving again is not sent (a decision from before a crash may be stale)."""
    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    journal_path = tmp_path / "journal.sqlite"
    coid = signal_client_order_id("never-sent")
    with OrderJournal(journal_path) as journal:  # what a process killed right after the intent leaves
        journal.record_intent(coid, "BTC-USD", "BUY", orjson.dumps({"client_order_id": coid}).decode())
    webhook_secret = new_webhook_secret()
    config = parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "risk": {"products": ["BTC-USD"], "max_order_size": "1"},
            "signals": {"port": 0},
            "metrics": {"enabled": False},
            "journal": {"path": str(journal_path)},
        }
    )
    env = {
        "COINBASE_API_KEY": key.name,
        "COINBASE_API_SECRET": key.private_key,
        "ENGINE_WEBHOOK_SECRET": webhook_secret,
    }
    worker = Worker(config, environ=env)
    await worker.start()
    try:
        assert worker.engine is not None
        report = worker.engine.reconcile_report
        assert report is not None
        assert report.not_placed == [coid]
        mid = sim.markets["BTC-USD"].mid
        async with aiohttp.ClientSession() as session:
            body = resting_buy("never-sent", mid)
            assert await post_signal(session, worker.webhook_url, webhook_secret, body) == 202
            fresh = orjson.loads(resting_buy("fresh", mid))
            assert await post_signal(session, worker.webhook_url, webhook_secret, orjson.dumps(fresh)) == 202

        async def settled() -> bool:
            metrics = worker.metrics
            return (
                metrics.value("engine_orders_total", {"outcome": "duplicate"}) == 1
                and metrics.value("engine_orders_total", {"outcome": "acknowledged"}) == 1
            )

        await eventually(settled)
    finally:
        await worker.stop()
    assert worker.stats.duplicates == 1
    ledger = running_sim.ledger()
    assert coid not in ledger
    assert ledger == {signal_client_order_id("fresh"): ["CANCELLED"]}
    with OrderJournal(journal_path) as journal:
        entry = journal.get(coid)
        assert entry is not None
        assert entry.state is OrderState.NOT_PLACED
