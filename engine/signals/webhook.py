"""The signal webhook: `POST /signals` with a JSON signal, authenticated as `engine.signals.auth` describes.

Answers, in the order they are checked (a refused signal does nothing at all):

- 413 the body is larger than `max_body_bytes`;
- 408 the body did not arrive within `body_timeout_s` (a client trickling bytes holds no handler for long);
- 401 a missing, stale, future or wrong signature (`{"error": "unauthenticated", "reason": ...}`);
- 400 the body is not a valid signal (`{"error": "invalid signal", "field": <the bad field>, ...}`);
- 409 the signal id was seen before (a replay or a double send);
- 503 with `Retry-After` the intake is full (or Redis, holding the queue, is unreachable); the id is released
  so the platform can retry the same signal;
- 202 `{"status": "accepted", "id": <signal id>, "receipt": ...}`: the signal is queued (or on the stream).

A client that hangs up before its body is in, or sends bytes that are not HTTP, gets nothing and costs at
most one log line a minute (counted in `refused["disconnected"]`); unauthenticated requests, too, cost one
line a minute at most (counted in `refused["unauthenticated"]`): anyone who reaches the port can send them.

Authentication comes before parsing, so nothing unauthenticated is ever parsed, and before the replay check,
so an unauthenticated sender cannot burn ids. It binds to 127.0.0.1 unless told otherwise: put a
TLS-terminating proxy in front to expose it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from engine.ops.logs import LogThrottle
from engine.redis_conn import RedisError
from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator, SignalAuthError
from engine.signals.intake import IntakeFull, SignalSink
from engine.signals.model import InvalidSignal, parse_signal
from engine.signals.replay import ReplayGuard

__all__ = ["SignalWebhook"]

log = logging.getLogger("engine.signals.webhook")

DEFAULT_MAX_BODY_BYTES = 16 * 1024
DEFAULT_BODY_TIMEOUT_S = 10.0


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
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self._authenticator = authenticator
        self._replay_guard = replay_guard
        self._sink = sink
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        # Anyone who can reach the port can break a request, or send unsigned ones, at will: a throttled
        # line for each kind (the first at once, with its reason), never one line per request.
        self._client_faults = LogThrottle(log, interval_s=60.0)
        self._unauthenticated = LogThrottle(log, level=logging.WARNING, interval_s=60.0)
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
            async with asyncio.timeout(self.body_timeout_s):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except TimeoutError:
            self._client_faults.log("signal client %s took over %g s to send its body", request.remote,
                                    self.body_timeout_s)  # fmt: skip
            return self._refuse("slow", 408, {"error": "body not received in time"}, Connection="close")
        except ConnectionResetError:
            # The client hung up mid-body: not an error of ours, so no traceback. The answer goes nowhere.
            self.refused["disconnected"] += 1
            self._client_faults.log("signal client %s hung up before sending the whole body", request.remote)
            return web.Response(status=400)

        try:
            self._authenticator.verify(
                request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body
            )
        except SignalAuthError as exc:
            remote = request.remote
            self._unauthenticated.log("signal refused: unauthenticated (%s) from %s", exc.reason, remote)
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

    def runner(self, **kwargs: Any) -> web.AppRunner:
        """An `aiohttp.web.AppRunner` for the app (`kwargs` are the runner's), whose server logs a request
        the client broke (malformed HTTP, a hang-up) as a throttled line, not a traceback each."""
        return web.AppRunner(self.app, access_log=None, logger=_ServerLog(self._client_faults), **kwargs)

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the block exits; yields the base URL (`http://host:port`)."""
        runner = self.runner()
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


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger for the webhook. aiohttp logs every request it could not read with a
    traceback at ERROR; when the client caused it (bytes that are not HTTP, a connection dropped) that is
    the client's fault, so it becomes one throttled line. Anything else is logged as aiohttp meant."""

    def __init__(self, throttle: LogThrottle) -> None:
        super().__init__(log, {})
        self._throttle = throttle

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if isinstance(error, HttpProcessingError | ConnectionError):
            remote = args[0] if args else "?"
            kind = type(error).__name__
            self._throttle.log("signal client %s sent a request we could not read (%s)", remote, kind)
            return
        super().log(level, msg, *args, **kwargs)
