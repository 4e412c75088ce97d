"""`/healthz` and `/metrics` over HTTP, bound to 127.0.0.1 unless the config says otherwise.

`/healthz` answers 200 while the worker is healthy and 503 otherwise (starting, draining, kill switch
engaged, no usable key), with a small JSON body saying why; a supervisor or load balancer reads the status,
a human reads the body. Neither page ever includes key material: health reports booleans and counts, and
the metrics registry only has closed-set labels.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from engine.ops.metrics import CONTENT_TYPE, EngineMetrics

__all__ = ["Health", "OpsServer"]


@dataclass(frozen=True, slots=True)
class Health:
    """What `/healthz` reports: `ok` decides the status code, `status` and `checks` explain it."""

    ok: bool
    status: str  # "ok", "starting", "draining", "stopped", "degraded"
    checks: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps({"ok": self.ok, "status": self.status, "checks": self.checks})


class OpsServer:
    """The worker's operations endpoints. `port=0` picks a free port (read `.port` after `start()`)."""

    def __init__(
        self,
        metrics: EngineMetrics,
        health: Callable[[], Health],
        *,
        host: str = "127.0.0.1",
        port: int = 9464,
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._render_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # bind the socket ourselves so port 0 yields a port we can report
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self._health()
        return web.Response(
            body=health.to_json(), status=200 if health.ok else 503, content_type="application/json"
        )

    async def _render_metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
