"""Driving `engine worker` as ops run it: a subprocess from a config file, its JSON logs, its webhook and its
/metrics, for the life and restart tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson

from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator
from tests.support.leaks import observe

ROOT = Path(__file__).resolve().parents[2]


def worker_toml(base_url: str, extra: str = "", *, signals: str = "", journal: str = "journal.sqlite") -> str:
    """A worker config for the simulator: key file beside it, ephemeral ports, journal beside it. `signals`
    adds lines to the [signals] table (a Redis stream, say); `extra` adds tables."""
    return f"""
[exchange]
base_url = "{base_url}"
[credentials]
source = "file"
file = "cdp_api_key.json"
[risk]
products = ["BTC-USD"]
max_order_size = "1"
[signals]
port = 0
{signals}
[metrics]
port = 0
[journal]
path = "{journal}"
[worker]
cancel_open_orders_on_exit = true
{extra}
"""


class WorkerLogs:
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

    def messages(self) -> list[str]:
        return [str(line.get("msg", "")) for line in self.lines]

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


class WorkerProcess:
    """`python -m engine worker --config FILE` with its stderr read; `urls()` once it has started."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stderr is not None
        self.logs = WorkerLogs(process.stderr)
        self.webhook_url = ""
        self.ops_url = ""

    @classmethod
    async def start(
        cls, config: Path, webhook_secret: str, *, pythonpath: Sequence[Path] = ()
    ) -> WorkerProcess:
        """`pythonpath` goes before the checkout on the worker's PYTHONPATH (a `sitecustomize`, say)."""
        path = os.pathsep.join(str(entry) for entry in (*pythonpath, ROOT))
        env = {**os.environ, "ENGINE_WEBHOOK_SECRET": webhook_secret, "PYTHONPATH": path}
        for name in ("COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_API_KEY_FILE"):
            env.pop(name, None)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "worker", "--config", str(config),
            env=env, cwd=str(config.parent), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        worker = cls(process)
        try:
            started = await worker.logs.wait_for(
                lambda line: str(line.get("msg", "")).startswith("worker started")
            )
        except BaseException:
            await worker.kill()
            raise
        message = str(started["msg"])
        worker.webhook_url = message.split("webhook ")[1].split(",")[0]
        worker.ops_url = message.split("ops ")[1].split(" ")[0]
        return worker

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code."""
        self.process.terminate()
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
        await self.logs.task
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(Exception):
            await self.logs.task
        observe("\n".join(self.logs.raw), "worker stderr")


def resting_buy(signal_id: str, mid: Decimal, size: str = "0.01") -> bytes:
    """A limit buy well under the market: it rests until cancelled."""
    price = str((mid * Decimal("0.9")).quantize(Decimal("0.01")))
    return orjson.dumps(
        {"id": signal_id, "product_id": "BTC-USD", "side": "BUY", "order_type": "limit", "size": size,
         "limit_price": price}
    )  # fmt: skip


async def post_signal(session: aiohttp.ClientSession, webhook_url: str, secret: str, body: bytes) -> int:
    """Sign and send one signal; the webhook's status code."""
    timestamp, signature = SignalAuthenticator([secret]).sign(body)
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
    async with session.post(f"{webhook_url}/signals", data=body, headers=headers) as response:
        observe(await response.text(), "webhook response")
        return response.status


async def metric(session: aiohttp.ClientSession, ops_url: str, sample: str) -> float:
    async with session.get(f"{ops_url}/metrics") as response:
        text = await response.text()
    observe(text, "worker /metrics")
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
