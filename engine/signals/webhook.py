"""The signal webhook: `POST /signals` with a JSON signal, authenticated as `engine.signals.auth` describes.

Answers, in the order they are checked (a refused signal does nothing at all):

- 413 the body is larger than `max_body_bytes`;
- 401 a missing, stale, future or wrong signature (`{"error": "unauthenticated", "reason": ...}`);
- 400 the body is not a valid signal (`{"error": "invalid signal", "field": <the bad field>, ...}`);
- 409 the signal id was seen before (a replay or a double send);
- 503 with `Retry-After` the intake is full (or Redis, holding the queue, is unreachable); the id is released
  so the platform can retry the same signal;
- 202 `{"status": "accepted", "id": <signal id>, "receipt": ...}`: the signal is queued (or on the stream).

Authentication comes before parsing, so nothing unauthenticated is ever parsed, and before the replay check,
so an unauthenticated sender cannot burn ids. It binds to 127.0.0.1 unless told otherwise: put a
TLS-terminating proxy in front to expose it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from engine.redis_conn import RedisError
from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator, SignalAuthError
from engine.signals.intake import IntakeFull, SignalSink
from engine.signals.model import InvalidSignal, parse_signal
from engine.signals.replay import ReplayGuard

__all__ = ["SignalWebhook"]

log = logging.getLogger("engine.signals.webhook")

DEFAULT_MAX_BODY_BYTES = 16 * 1024


def _json(status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(document), content_type="application/json", headers=headers
    )


class SignalWebhook:
    """An aiohttp app taking signals into a `SignalSink`. `refused` counts refusals by reason."""

    def __init__(
        self,
        authenticator: SignalAuthenticator,
        replay_guard: ReplayGuard,
        sink: SignalSink,
        *,
        path: str = "/signals",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._authenticator = authenticator
        self._replay_guard = replay_guard
        self._sink = sink
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        # aiohttp enforces the cap itself while reading, even for chunked bodies without a Content-Length.
        self.app = web.Application(client_max_size=max_body_bytes)
        self.app.router.add_post(path, self._handle)

    def _refuse(self, reason: str, status: int, document: dict[str, Any], **headers: str) -> web.Response:
        self.refused[reason] += 1
        return _json(status, document, headers or None)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()

        try:
            self._authenticator.verify(
                request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body
            )
        except SignalAuthError as exc:
            log.warning("signal refused: unauthenticated (%s) from %s", exc.reason, request.remote)
            return self._refuse("unauthenticated", 401, {"error": "unauthenticated", "reason": exc.reason})

        try:
            signal = parse_signal(body)
        except InvalidSignal as exc:
            log.warning("signal refused: invalid field %s: %s", exc.field, exc.reason)
            return self._refuse(
                "invalid", 400, {"error": "invalid signal", "field": exc.field, "message": exc.reason}
            )

        try:
            if not await self._replay_guard.first_seen(signal.id):
                log.warning("signal refused: replayed id %s", signal.id)
                return self._refuse("replay", 409, {"error": "replayed signal id", "id": signal.id})
        except RedisError as exc:
            log.error(
                "signal %s refused: the replay guard is unreachable (%s)", signal.id, type(exc).__name__
            )
            return self._refuse(
                "unavailable", 503, {"error": "intake unavailable", "id": signal.id}, **{"Retry-After": "1"}
            )

        try:
            receipt = await self._sink.submit(signal)
        except (IntakeFull, RedisError) as exc:
            retry_after = exc.retry_after_s if isinstance(exc, IntakeFull) else 1.0
            await self._forget(signal.id)
            log.warning("signal %s refused: intake full or unavailable (%s)", signal.id, type(exc).__name__)
            return self._refuse(
                "full",
                503,
                {"error": "intake full", "id": signal.id},
                **{"Retry-After": str(max(1, round(retry_after)))},
            )
        self.accepted += 1
        log.info("signal %s accepted: %s %s %s", signal.id, signal.side.value, signal.product_id, receipt)
        return _json(202, {"status": "accepted", "id": signal.id, "receipt": receipt})

    async def _forget(self, signal_id: str) -> None:
        try:
            await self._replay_guard.forget(signal_id)
        except RedisError:
            log.error("could not release signal id %s after refusing it; a retry will get 409", signal_id)

    def _too_large(self) -> web.Response:
        return self._refuse(
            "too_large",
            413,
            {"error": "body too large", "max_bytes": self.max_body_bytes},
            Connection="close",
        )

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the block exits; yields the base URL (`http://host:port`)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        try:
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            bound_port = sockets[0].getsockname()[1] if sockets else port
            log.info("signal webhook listening on http://%s:%s%s", host, bound_port, self.path)
            yield f"http://{host}:{bound_port}"
        finally:
            await runner.cleanup()
