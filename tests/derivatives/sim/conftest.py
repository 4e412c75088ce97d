"""Fixtures for the derivatives gateway's simulator suite: a served simulator with a registered key, CDP JWTs
minted by PyJWT (no `uri`, as the official SDK builds them), and small JSON-RPC clients over HTTP and over
the two WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest

from engine.sim import Simulator
from engine.sim.derivatives.config import DerivativesConfig
from engine.sim.faults import Faults
from tests.sim.conftest import mint, quiet_config
from tests.sim.conftest import tls as tls  # the session TLS fixture, for the SDK acceptance test
from tests.support.keys import TestKey, new_es256_key


class Socket:
    """A JSON-RPC client on one gateway WebSocket: replies by id, notifications by channel."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.replies: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.answer_test_requests = True

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = orjson.loads(message.data)
                if frame.get("method") == "heartbeat":
                    self.heartbeats.append(frame)
                    if self.answer_test_requests and frame["params"]["type"] == "test_request":
                        await self.ws.send_str('{"jsonrpc":"2.0","id":0,"method":"public/test","params":{}}')
                elif frame.get("method") == "subscription":
                    self.notifications.append(frame["params"])
                else:
                    self.replies[frame.get("id")] = frame
                async with self._arrived:
                    self._arrived.notify_all()
        finally:
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole reply frame (result or error)."""
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        await self.ws.send_str(orjson.dumps(body).decode())
        return await self.reply(request_id)

    async def reply(self, request_id: Any, timeout: float = 10.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            async with self._arrived:
                await self._arrived.wait_for(lambda: request_id in self.replies or self.closed.is_set())
            if request_id not in self.replies:
                raise ConnectionError("socket closed before the reply")
            return self.replies.pop(request_id)

        return await asyncio.wait_for(wait(), timeout)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        frame = await self.request(method, params)
        assert "result" in frame, frame
        return frame["result"]

    async def notification(self, channel_prefix: str, where: Any = None, timeout: float = 10.0) -> Any:
        """The first notification (already received or to come) on a channel starting with the prefix."""

        def found() -> dict[str, Any] | None:
            for n in self.notifications:
                if n["channel"].startswith(channel_prefix) and (where is None or where(n["data"])):
                    return n
            return None

        async def wait() -> Any:
            async with self._arrived:
                await self._arrived.wait_for(lambda: found() is not None or self.closed.is_set())
            hit = found()
            if hit is None:
                raise ConnectionError("socket closed before the notification")
            return hit["data"]

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


@dataclass
class Gateway:
    sim: Simulator
    base_url: str
    http: aiohttp.ClientSession
    key: TestKey
    sockets: list[Socket] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    def jwt(self, key: TestKey | None = None, **kw: Any) -> str:
        return mint(key or self.key, None, **kw)

    async def post(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        body: Any = None,
        path: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = body if body is not None else {"jsonrpc": "2.0", "method": method, "params": params or {}}
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        url = self.base_url + (path if path is not None else f"/api/v2/{method}")
        async with self.http.post(
            url, data=data, headers={**headers, "Content-Type": "application/json"}
        ) as r:
            return r.status, await r.json(content_type=None)

    async def rpc(self, method: str, params: dict[str, Any] | None = None, token: str | None = None) -> Any:
        status, body = await self.post(method, params, token)
        assert status == 200, (status, body)
        assert "result" in body, body
        return body["result"]

    async def token(self, key: TestKey | None = None) -> str:
        result = await self.rpc("public/auth", {"grant_type": "coinbase_cdp", "token": self.jwt(key)})
        return str(result["access_token"])

    async def socket(self, path: str = "/ws/api/v2") -> Socket:
        ws = await self.http.ws_connect(self.base_url + path, max_msg_size=0)
        socket = Socket(ws)
        self.sockets.append(socket)
        return socket

    async def trading(self, key: TestKey | None = None) -> Socket:
        socket = await self.socket()
        await socket.call("public/auth", {"grant_type": "coinbase_cdp", "token": self.jwt(key)})
        return socket

    async def streams(self) -> Socket:
        return await self.socket("/streams/ws/api/v2")


@contextlib.asynccontextmanager
async def serve_gateway(
    faults: Faults | None = None, tick_interval_s: float = 0, **derivatives: Any
) -> AsyncIterator[Gateway]:
    """A served simulator whose gateway config takes `derivatives` overrides, with one registered key."""
    config = quiet_config(
        derivatives=DerivativesConfig(**derivatives),
        faults=faults or Faults(),
        tick_interval_s=tick_interval_s,
    )
    sim = Simulator(config)
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url, aiohttp.ClientSession() as http:
        served = Gateway(sim, base_url, http, key)
        try:
            yield served
        finally:
            for socket in served.sockets:
                await socket.close()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with serve_gateway() as served:
        yield served
