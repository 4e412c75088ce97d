"""One gateway WebSocket (trading or streams): its subscriptions, its authenticated key, its heartbeat and
cancel-on-disconnect settings, and an outbound queue written by one task, so a slow reader never blocks the
market (a reader too slow to drain its queue is disconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING

from aiohttp import web

from engine.sim.derivatives.rpc import dumps

if TYPE_CHECKING:
    from engine.sim.auth import CdpKey

_QUEUE_LIMIT = 10_000
_TEST_REQUEST = dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
_ids = itertools.count(1)


class Connection:
    __slots__ = (
        "_queue",
        "channels",
        "close_code",
        "close_message",
        "closing",
        "cod_enabled",
        "heard",
        "heartbeat_s",
        "heartbeat_task",
        "id",
        "key",
        "kind",
        "logged_out",
        "remote",
        "transport",
        "ws",
    )

    def __init__(
        self, ws: web.WebSocketResponse, kind: str, remote: str, transport: asyncio.BaseTransport | None
    ) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.transport = transport
        self.kind = kind
        self.remote = remote
        self.key: CdpKey | None = None
        self.channels: set[str] = set()
        self.cod_enabled = False
        self.logged_out = False
        self.heartbeat_s: float | None = None
        self.heartbeat_task: asyncio.Task[None] | None = None
        self.heard = True
        self.closing = False
        self.close_code = 1000
        self.close_message = b""
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(self, frame: bytes) -> None:
        if self.closing:
            return
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self.close_after_pending(1011, b"slow reader")
            return
        self._queue.put_nowait(frame)

    def close_after_pending(self, code: int, message: bytes) -> None:
        """Close once what is queued (a final error reply, say) has been written."""
        if self.closing:
            return
        self.closing = True
        self.close_code, self.close_message = code, message
        self._queue.put_nowait(None)

    def abort(self) -> None:
        """Drop the connection now, with no close handshake (a fault)."""
        self.closing = True
        transport = self.ws._req.transport if self.ws._req is not None else None
        if transport is not None:
            transport.abort()
        self._queue.put_nowait(None)

    async def write_loop(self) -> None:
        ws = self.ws
        while True:
            frame = await self._queue.get()
            if frame is None:
                break
            try:
                await ws.send_str(frame.decode())
            except (ConnectionError, RuntimeError):
                break
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close(code=self.close_code, message=self.close_message)

    def set_heartbeat(self, interval_s: float | None) -> None:
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            self.heartbeat_task = None
        self.heartbeat_s = interval_s
        if interval_s is not None:
            self.heard = True
            self.heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat(interval_s))

    async def _heartbeat(self, interval_s: float) -> None:
        """Send a test_request every interval; a client silent for a whole interval after one is gone."""
        while not self.closing:
            await asyncio.sleep(interval_s)
            if not self.heard:
                self.close_after_pending(1000, b"heartbeat failed")
                return
            self.heard = False
            self.send(_TEST_REQUEST)

    def stop(self) -> None:
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            self.heartbeat_task = None
