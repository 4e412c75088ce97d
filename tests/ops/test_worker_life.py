"""A worker's whole life as ops run it: `engine worker` in a subprocess against the simulator, real signals
through the webhook, SIGHUP rotation (to a good key, then a bad one that must be refused), SIGTERM drain;
then the simulator's ledger is checked: every accepted signal became exactly one order, and the open ones
were cancelled on exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson

from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator
from engine.signals.model import signal_client_order_id
from tests.ops.conftest import RunningSim
from tests.support.keys import SECRETS, TestKey, new_ed25519_key, new_es256_key
from tests.support.leaks import observe

ROOT = Path(__file__).resolve().parents[2]


def _write_key(path: Path, key: TestKey) -> None:
    path.write_text(json.dumps(key.portal_json()))
    path.chmod(0o600)


class _Logs:
    """Collects the worker's JSON log lines from stderr as they come."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._stream = stream
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(text))
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, object]], bool], timeout: float = 20.0
    ) -> dict[str, object]:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                self._changed.clear()
                await self._changed.wait()


async def _metric(session: aiohttp.ClientSession, ops_url: str, sample: str) -> float:
    async with session.get(f"{ops_url}/metrics") as response:
        text = await response.text()
    observe(text, "worker /metrics")
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def _eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # type: ignore[misc]
            await asyncio.sleep(0.05)


async def test_worker_life_start_rotate_drain(running_sim: RunningSim, tmp_path: Path) -> None:
    sim = running_sim.sim
    first, second, unregistered = new_es256_key(), new_ed25519_key(), new_es256_key()
    sim.register_cdp_key(first.name, first.public_key_pem, {"view", "trade"})
    key_file = tmp_path / "cdp_api_key.json"
    _write_key(key_file, first)
    webhook_secret = secrets.token_urlsafe(24)
    SECRETS.add(webhook_secret)
    config = tmp_path / "worker.toml"
    config.write_text(
        f"""
[exchange]
base_url = "{running_sim.base_url}"
[credentials]
source = "file"
file = "cdp_api_key.json"
[risk]
products = ["BTC-USD"]
max_order_size = "1"
[signals]
port = 0
[metrics]
port = 0
[journal]
path = "journal.sqlite"
[worker]
cancel_open_orders_on_exit = true
"""
    )
    env = {**os.environ, "ENGINE_WEBHOOK_SECRET": webhook_secret, "PYTHONPATH": str(ROOT)}
    for name in ("COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_API_KEY_FILE"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "worker", "--config", str(config),
        env=env, cwd=str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    logs = _Logs(process.stderr)
    auth = SignalAuthenticator([webhook_secret])
    accepted: list[str] = []
    try:
        started = await logs.wait_for(lambda line: str(line.get("msg", "")).startswith("worker started"))
        message = str(started["msg"])
        webhook_url = message.split("webhook ")[1].split(",")[0]
        ops_url = message.split("ops ")[1].split(" ")[0]
        mid = sim.markets["BTC-USD"].mid

        async with aiohttp.ClientSession() as session:

            async def send(signal_id: str, size: str = "0.01") -> int:
                # a resting buy well under the market: open until the worker cancels it on exit
                body = orjson.dumps(
                    {"id": signal_id, "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
                     "size": size, "limit_price": str((mid * Decimal("0.9")).quantize(Decimal("0.01")))}
                )  # fmt: skip
                timestamp, signature = auth.sign(body)
                headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
                async with session.post(f"{webhook_url}/signals", data=body, headers=headers) as response:
                    observe(await response.text(), "webhook response")
                    if response.status == 202:
                        accepted.append(signal_id)
                    return response.status

            async def placed(count: int) -> bool:
                return await _metric(session, ops_url, 'engine_orders_total{outcome="acknowledged"}') >= count

            async with session.get(f"{ops_url}/healthz") as response:
                assert response.status == 200
                observe(await response.text(), "worker /healthz")

            for i in range(3):
                assert await send(f"life-{i}") == 202
            assert await send("life-0") == 409  # the platform resending: refused, never a second order
            assert await send("life-big", size="5") == 202  # accepted, then refused by the size rule
            await _eventually(lambda: placed(3))

            # rotation to a good key: registered at the exchange, then the file replaced and SIGHUP
            sim.register_cdp_key(second.name, second.public_key_pem, {"view", "trade"})
            _write_key(key_file, second)
            process.send_signal(signal.SIGHUP)
            rotated = 'engine_credential_reloads_total{result="rotated"}'

            async def has_rotated() -> bool:
                return await _metric(session, ops_url, rotated) == 1

            await _eventually(has_rotated)
            for i in range(3, 5):
                assert await send(f"life-{i}") == 202
            await _eventually(lambda: placed(5))
            assert sim.request_count(second.name) > 0  # the new key signs now

            # rotation to a key the exchange does not know: refused, the current key stays
            _write_key(key_file, unregistered)
            process.send_signal(signal.SIGHUP)
            kept = 'engine_credential_reloads_total{result="kept_old_key"}'

            async def kept_old() -> bool:
                return await _metric(session, ops_url, kept) == 1

            await _eventually(kept_old)
            assert await send("life-5") == 202
            await _eventually(lambda: placed(6))
            refusals = await _metric(session, ops_url, 'engine_risk_refusals_total{rule="order_size"}')
            assert refusals == 1

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await process.wait()
        await logs.task
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        observe("\n".join(logs.raw), "worker stderr")
    assert code == 0, "\n".join(logs.raw[-20:])
    assert any(str(line.get("msg", "")) == "cancelled 6 open orders on exit" for line in logs.lines)
    assert any("keeping the current key" in str(line.get("msg", "")) for line in logs.lines)

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
    webhook_secret = secrets.token_urlsafe(24)
    SECRETS.add(webhook_secret)
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
    worker = Worker(config, environ=env, poll_interval_s=0.1)
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

        await _eventually(counted)
    finally:
        await worker.stop()
    assert len(sim.ledger) == 0
