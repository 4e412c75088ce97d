"""A worker's whole life as ops run it: `engine worker` in a subprocess against the simulator, real signals
through the webhook, SIGHUP rotation (to a good key, then a bad one that must be refused), SIGTERM drain;
then the simulator's ledger is checked: every accepted signal became exactly one order, and the open ones
were cancelled on exit."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import orjson

from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator
from engine.signals.model import signal_client_order_id
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import (
    WorkerProcess,
    eventually,
    metric,
    post_signal,
    resting_buy,
    worker_toml,
)
from tests.support.keys import new_ed25519_key, new_es256_key, new_webhook_secret


async def test_worker_life_start_rotate_drain(running_sim: RunningSim, tmp_path: Path) -> None:
    sim = running_sim.sim
    first, second, unregistered = new_es256_key(), new_ed25519_key(), new_es256_key()
    sim.register_cdp_key(first.name, first.public_key_pem, {"view", "trade"})
    key_file = tmp_path / "cdp_api_key.json"
    first.write_portal_file(key_file)
    webhook_secret = new_webhook_secret()
    config = tmp_path / "worker.toml"
    config.write_text(worker_toml(running_sim.base_url))
    worker = await WorkerProcess.start(config, webhook_secret)
    process, logs, ops_url = worker.process, worker.logs, worker.ops_url
    accepted: list[str] = []
    try:
        mid = sim.markets["BTC-USD"].mid
        async with aiohttp.ClientSession() as session:

            async def send(signal_id: str, size: str = "0.01") -> int:
                status = await post_signal(
                    session, worker.webhook_url, webhook_secret, resting_buy(signal_id, mid, size)
                )
                if status == 202:
                    accepted.append(signal_id)
                return status

            async def placed(count: int) -> bool:
                return await metric(session, ops_url, 'engine_orders_total{outcome="acknowledged"}') >= count

            async with session.get(f"{ops_url}/healthz") as response:
                assert response.status == 200
                health = await response.json()
                assert health["checks"]["kill_switch"] is False

            for i in range(3):
                assert await send(f"life-{i}") == 202
            assert await send("life-0") == 409  # the platform resending: refused, never a second order
            assert await send("life-big", size="5") == 202  # accepted, then refused by the size rule
            await eventually(lambda: placed(3))

            # the Engine's WebSocket and journal counters are exported beside the worker's own
            async with session.get(f"{ops_url}/metrics") as response:
                page = await response.text()
            for name in ("engine_websocket_gaps_total", "engine_websocket_disconnects_total",
                         "engine_journal_pending", "engine_kill_switch"):  # fmt: skip
                assert f"\n{name} " in page, name
            assert "engine_limiter_fallback_active" not in page  # a local limiter has no fallback

            async def open_orders_seen() -> bool:  # the Engine tracks the acknowledged orders as open
                return await metric(session, ops_url, "engine_open_orders") == 3

            await eventually(open_orders_seen)

            # rotation to a good key: registered at the exchange, then the file replaced and SIGHUP
            sim.register_cdp_key(second.name, second.public_key_pem, {"view", "trade"})
            second.write_portal_file(key_file)
            process.send_signal(signal.SIGHUP)
            rotated = 'engine_credential_reloads_total{result="rotated"}'

            async def has_rotated() -> bool:
                return await metric(session, ops_url, rotated) == 1

            await eventually(has_rotated)
            for i in range(3, 5):
                assert await send(f"life-{i}") == 202
            await eventually(lambda: placed(5))
            assert sim.request_count(second.name) > 0  # the new key signs now

            # rotation to a key the exchange does not know: refused, the current key stays
            unregistered.write_portal_file(key_file)
            process.send_signal(signal.SIGHUP)
            kept = 'engine_credential_reloads_total{result="kept_old_key"}'

            async def kept_old() -> bool:
                return await metric(session, ops_url, kept) == 1

            await eventually(kept_old)
            assert await send("life-5") == 202
            await eventually(lambda: placed(6))
            refusals = await metric(session, ops_url, 'engine_risk_refusals_total{rule="order_size"}')
            assert refusals == 1

        code = await worker.stop()
    finally:
        await worker.kill()
    assert code == 0, "\n".join(logs.raw[-20:])
    assert "cancelled 6 open orders on exit" in logs.messages()
    assert any("keeping the current key" in message for message in logs.messages())

    # the ledger: one order per accepted signal that passed risk, none for the refused one, all cancelled
    by_coid: dict[str, list[str]] = {}
    for order in sim.ledger:
        by_coid.setdefault(order.client_order_id, []).append(order.status)
    placed_ids = [s for s in accepted if s != "life-big"]
    assert sorted(accepted) == sorted([*(f"life-{i}" for i in range(6)), "life-big"])
    for signal_id in placed_ids:
        assert by_coid.get(signal_client_order_id(signal_id)) == ["CANCELLED"], signal_id
    assert signal_client_order_id("life-big") not in by_coid
    assert len(by_coid) == len(placed_ids)


async def test_dry_run_places_nothing(running_sim: RunningSim, tmp_path: Path) -> None:
    from engine.ops.config import parse_config
    from engine.worker import Worker

    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view"})  # a view-only key is enough for a dry run
    webhook_secret = new_webhook_secret()
    config = parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "risk": {"products": ["BTC-USD"]},
            "signals": {"port": 0},
            "metrics": {"enabled": False},
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "worker": {"dry_run": True},
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
        auth = SignalAuthenticator([webhook_secret])
        body = orjson.dumps(
            {"id": "dry-1", "product_id": "BTC-USD", "side": "BUY", "order_type": "market", "size": "0.01"}
        )
        timestamp, signature = auth.sign(body)
        async with aiohttp.ClientSession() as session:
            headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
            async with session.post(f"{worker.webhook_url}/signals", data=body, headers=headers) as response:
                assert response.status == 202

        async def counted() -> bool:
            return worker.metrics.value("engine_orders_total", {"outcome": "dry_run"}) == 1

        await eventually(counted)
    finally:
        await worker.stop()
    assert len(sim.ledger) == 0
