"""One WebSocket to the gateway: JSON-RPC requests multiplexed by id, notifications, heartbeats, reconnects.

Many requests are in flight at once: each gets the next id and a future, and the reader resolves the future
whose id a reply carries. A frame that is not JSON, not JSON-RPC, or names an id nobody waits for is counted
and dropped; a frame over `max_message_bytes` ends the connection (aiohttp refuses it); neither stops the
session. When the connection drops, every request in flight fails at once with `RequestLost` (it may have
run) and is never sent again; the connection comes back with the engine's backoff (`RetryPolicy`), runs its
handshake again (authentication, heartbeat, subscriptions), and only then takes new requests.

Subclasses say what a handshake is (`_handshake`); the streams socket has none beyond subscribing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from engine.errors import (
    EngineError,
    ExchangeUnavailable,
    GatewayAuthError,
    GatewayError,
    GatewayRateLimited,
    RequestLost,
    RequestTimeout,
    SubscriptionRejected,
)
from engine.net.retry import RetryBudget, RetryPolicy
from engine.net.ws_fastpath import route_data_frames
from engine.venues.derivatives.codec import decode_frame, decode_result, encode_request, error_from
from engine.venues.derivatives.credits import GatewayCredits, RequestClass, request_class

__all__ = ["ChannelCallback", "GatewaySocket", "SessionConfig", "SocketStats"]

log = logging.getLogger("engine.venues.derivatives")

ChannelCallback = Callable[[str, msgspec.Raw], None]  # (channel, the notification's raw `data`)
_TEXT = aiohttp.WSMsgType.TEXT


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How a gateway socket behaves. Every field has the default a trader wants; all are configurable.

    `heartbeat_interval_s`: asks the gateway for heartbeats (`public/set_heartbeat`, at least 10 s) and
    answers every `test_request`; a connection silent for three intervals is taken as dead. None: no
    heartbeats asked. `cancel_on_disconnect`: the gateway cancels this connection's orders when it drops.
    `reconnect`: the backoff between attempts and when to give up (then every call raises).
    """

    call_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    heartbeat_interval_s: int | None = 30
    cancel_on_disconnect: bool = True
    cancel_on_disconnect_scope: str = "connection"
    reauth_ratio: float = 0.8
    reconnect: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            max_attempts=12, base_delay_s=0.5, max_delay_s=30.0, budget_s=900.0
        )
    )
    max_message_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s is not None and self.heartbeat_interval_s < 10:
            raise ValueError("the gateway's heartbeat interval is at least 10 seconds")
        if not 0 < self.reauth_ratio < 1:
            raise ValueError("reauth_ratio must be in (0, 1)")
        if self.call_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


@dataclass(slots=True)
class SocketStats:
    connects: int = 0
    disconnects: int = 0
    requests: int = 0
    lost_in_flight: int = 0  # requests failed with RequestLost when a connection dropped
    malformed_frames: int = 0
    unknown_ids: int = 0
    heartbeats_answered: int = 0
    reauths: int = 0
    resubscribed: int = 0
    notifications: int = 0
    callback_errors: int = 0
    routed_frames: bool = False  # data frames reach the session from the socket's data callback


class _Call:
    __slots__ = ("future", "label", "method", "request_class")

    def __init__(
        self, future: asyncio.Future[msgspec.Raw], method: str, request: RequestClass, label: str | None
    ) -> None:
        self.future = future
        self.method = method
        self.request_class = request
        self.label = label


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed heartbeat answer is not an unhandled error


class GatewaySocket:
    """Base of the trading session and the streams socket. `await open()`, use, `await close()`."""

    _subscribe_method = "public/subscribe"
    _unsubscribe_method = "public/unsubscribe"

    def __init__(
        self,
        url: str,
        *,
        config: SessionConfig | None = None,
        credits: GatewayCredits | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.config = config or SessionConfig()
        self.credits = credits
        self.stats = SocketStats()
        self._session = session
        self._own_session = session is None
        self._ssl = ssl_context
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._ready = asyncio.Event()
        self._opened: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: EngineError | None = None
        self._cooldown_s = 0.0
        self._channels: dict[str, list[ChannelCallback]] = {}
        self._disconnect_callbacks: list[Callable[[], None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frames = 0  # frames received, for the idle watchdog
        self._watchdog: asyncio.TimerHandle | None = None
        self._idle_closed: aiohttp.ClientWebSocketResponse | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def ready(self) -> asyncio.Event:
        """Set while a connection is up and its handshake done (cleared when it drops)."""
        return self._ready

    async def open(self) -> None:
        """Connect and run the handshake; raises what the first handshake raised (e.g. `GatewayAuthError`)."""
        if self._supervisor is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
        self._closing = False
        self._opened = self._loop.create_future()
        self._supervisor = self._loop.create_task(self._run(), name=f"gateway socket {self.url}")
        try:
            await self._opened
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        for task in list(self._background):
            task.cancel()
        self._fail_pending("the session was closed")
        self._ready.clear()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> GatewaySocket:
        await self.open()
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.close()

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Called (inline, on the reader's turn) whenever a connection ends."""
        self._disconnect_callbacks.append(callback)

    def drop_connection(self) -> None:
        """Close the current connection as if the network had; the session reconnects by itself."""
        ws = self._ws
        if ws is not None and not ws.closed:
            self._spawn(ws.close())

    # -- requests -----------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        label: str | None = None,
        timeout_s: float | None = None,
        handshake: bool = False,
    ) -> msgspec.Raw:
        """One JSON-RPC call; returns the result's raw bytes. Waits (within the timeout) for a connection."""
        timeout = self.config.call_timeout_s if timeout_s is None else timeout_s
        if not handshake and not self._ready.is_set():
            await self._wait_ready(method, timeout)
        cls = request_class(method)
        credits = self.credits
        if credits is not None and not credits.try_spend(cls):
            await credits.spend(cls)
        ws = self._ws
        if ws is None or ws.closed:
            raise ExchangeUnavailable(f"{method} was not sent: the connection to {self.url} is down")
        request_id = next(self._ids)
        frame = encode_request(request_id, method, params)
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[msgspec.Raw] = loop.create_future()
        call = _Call(future, method, cls, label)
        self._pending[request_id] = call
        self.stats.requests += 1
        try:
            await ws.send_frame(frame, _TEXT)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            # aiohttp refuses to write to a closing transport: nothing left.
            self._pending.pop(request_id, None)
            raise ExchangeUnavailable(f"{method} was not sent: {type(exc).__name__}") from None
        timer = loop.call_later(timeout, self._expire, request_id, timeout)
        try:
            return await future
        except GatewayRateLimited as limited:
            if credits is not None:
                credits.exhausted(cls, limited.retry_after)
            self._cooldown_s = max(self._cooldown_s, limited.retry_after or 0.0)
            raise
        finally:
            timer.cancel()
            if not future.done():  # the caller was cancelled
                self._pending.pop(request_id, None)

    async def _wait_ready(self, method: str, wait_s: float) -> None:
        if self._failure is not None:
            raise self._failure
        if self._supervisor is None:
            raise ExchangeUnavailable(
                f"{method}: the session is not open (use `async with` or `await open()`)"
            )
        try:
            async with asyncio.timeout(wait_s):
                await self._ready.wait()
        except TimeoutError:
            if self._failure is not None:
                raise self._failure from None
            raise ExchangeUnavailable(
                f"{method} was not sent: no connection to {self.url} within {wait_s:g}s"
            ) from None

    def _expire(self, request_id: int, timeout: float) -> None:
        call = self._pending.pop(request_id, None)
        if call is None or call.future.done():
            return
        if call.request_class is RequestClass.MATCHING:
            call.future.set_exception(
                RequestLost(
                    f"no reply to {call.method} within {timeout:g}s: it may have run; look the order up "
                    "(by label) before sending it again",
                    method=call.method,
                    label=call.label,
                )
            )
        else:
            call.future.set_exception(RequestTimeout(f"no reply to {call.method} within {timeout:g}s"))

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for call in pending.values():
            if call.future.done():
                continue
            self.stats.lost_in_flight += 1
            call.future.set_exception(
                RequestLost(
                    f"{call.method} was in flight when {reason}: it may have run and is not sent again"
                    + ("; look the order up by label before resending" if call.label else ""),
                    method=call.method,
                    label=call.label,
                )
            )

    # -- subscriptions ------------------------------------------------------------------------------------

    async def subscribe(self, channels: Iterable[str], callback: ChannelCallback) -> list[str]:
        """Subscribe and route each channel's notifications to `callback`; kept across reconnects.

        Raises `SubscriptionRejected` naming every channel the gateway left out (the others stay on).
        """
        wanted = list(dict.fromkeys(channels))
        for channel in wanted:
            self._channels.setdefault(channel, []).append(callback)
        try:
            raw = await self.request(self._subscribe_method, {"channels": wanted})
            accepted: list[str] = decode_result(raw, list[str])
        except BaseException:
            self._forget(wanted, callback)
            raise
        rejected = [channel for channel in wanted if channel not in accepted]
        if rejected:
            self._forget(rejected, callback)
            raise SubscriptionRejected(
                f"the gateway did not subscribe {', '.join(rejected)} on {self.url}: "
                + self._subscription_hint(),
                rejected=rejected,
                accepted=[channel for channel in wanted if channel not in rejected],
                method=self._subscribe_method,
            )
        return wanted

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        names = list(channels)
        await self.request(self._unsubscribe_method, {"channels": names})
        for channel in names:
            self._channels.pop(channel, None)

    def _forget(self, channels: Iterable[str], callback: ChannelCallback) -> None:
        for channel in channels:
            callbacks = self._channels.get(channel)
            if callbacks is not None and callback in callbacks:
                callbacks.remove(callback)
                if not callbacks:
                    del self._channels[channel]

    def _subscription_hint(self) -> str:
        return "market data is served by the streams host, user.* channels by the trading host"

    async def _resubscribe(self) -> None:
        channels = list(self._channels)
        if not channels:
            return
        raw = await self.request(self._subscribe_method, {"channels": channels}, handshake=True)
        accepted: set[str] = set(decode_result(raw, list[str]))
        self.stats.resubscribed += 1
        lost = [channel for channel in channels if channel not in accepted]
        if lost:
            log.warning("gateway %s did not restore the subscriptions %s after a reconnect", self.url, lost)
            for channel in lost:
                self._channels.pop(channel, None)

    # -- the connection loop ------------------------------------------------------------------------------

    async def _handshake(self) -> None:
        """What runs on every new connection before it takes requests."""
        await self._resubscribe()

    async def _run(self) -> None:
        budget: RetryBudget | None = None
        while not self._closing:
            reason, was_ready = await self._connect_once()
            self._connection_ended(reason, was_ready)
            if self._closing:
                return
            opened = self._opened
            if opened is not None and not opened.done():
                return  # the first connection failed: open() raised it
            if was_ready or budget is None:
                budget = RetryBudget(self.config.reconnect)  # a fresh outage: a fresh budget
            budget.attempts += 1
            delay = budget.next_delay(floor_s=self._cooldown_s)
            self._cooldown_s = 0.0
            if delay is None:
                self._failure = ExchangeUnavailable(
                    f"gave up reconnecting to {self.url} after {budget.attempts} attempts ({reason})"
                )
                log.error("%s", self._failure)
                return
            log.info("gateway %s: %s; reconnecting in %.2fs", self.url, reason, delay)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> tuple[str, bool]:
        """One connection, start to end: (why it ended, whether it had been ready for requests)."""
        session = self._session
        assert session is not None
        try:
            async with asyncio.timeout(
                self.config.connect_timeout_s
            ):  # the HTTP upgrade has no bound of its own
                ws = await session.ws_connect(
                    self.url,
                    autoping=True,
                    max_msg_size=self.config.max_message_bytes,
                    ssl=self._ssl if self._ssl is not None else True,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    compress=0,
                )
        except TimeoutError:
            return self._first_failure(
                ExchangeUnavailable(f"could not connect to {self.url}: timed out")
            ), False
        except (aiohttp.ClientError, OSError) as exc:
            unreachable = ExchangeUnavailable(f"could not connect to {self.url}: {type(exc).__name__}")
            return self._first_failure(unreachable), False
        self._ws = ws
        self.stats.connects += 1
        # Replies resolve their callers from the socket's data callback, not through a reader task's turn;
        # without it (an aiohttp this was not tested with) the reader gets them from `receive()`.
        self.stats.routed_frames = route_data_frames(
            ws, self._on_data_frame, max_msg_size=self.config.max_message_bytes
        )
        reader = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                await self._handshake()
        except (GatewayError, EngineError, TimeoutError, aiohttp.ClientError) as exc:
            failure = (
                exc
                if isinstance(exc, EngineError)
                else ExchangeUnavailable(f"handshake: {type(exc).__name__}")
            )
            if isinstance(exc, GatewayAuthError):
                log.error("gateway %s refused authentication: %s", self.url, exc)
            await ws.close()
            await reader
            return self._first_failure(failure), False
        self._ready.set()
        opened = self._opened
        if opened is not None and not opened.done():
            opened.set_result(None)
        return await reader, True

    def _first_failure(self, failure: EngineError) -> str:
        opened = self._opened
        if opened is not None and not opened.done():
            opened.set_exception(failure)
        return str(failure)

    def _connection_ended(self, reason: str, was_ready: bool) -> None:
        self._ready.clear()
        self._ws = None
        self._fail_pending(f"the connection dropped ({reason})")
        if was_ready:
            self.stats.disconnects += 1
            for callback in self._disconnect_callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("disconnect callback %r failed", callback)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read until the connection ends; returns why it did. What was in flight fails at once."""
        reason = await self._read_frames(ws)
        self._ready.clear()
        self._fail_pending(f"the connection dropped ({reason})")
        return reason

    async def _read_frames(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        interval = self.config.heartbeat_interval_s
        if interval is not None:
            # Silence for three heartbeat intervals means a dead connection. Checked by one timer rather than
            # a timeout on every receive, which would cost a reschedule per frame on the order path.
            self._watch_idle(ws, 3.0 * interval)
        on_data_frame = self._on_data_frame
        receive = ws.receive
        try:
            while True:
                message = await receive()  # data frames only when they are not routed past it
                kind = message.type
                if kind is _TEXT or kind is aiohttp.WSMsgType.BINARY:
                    on_data_frame(message.data)
                    continue
                if self._idle_closed is ws:
                    return f"nothing received for {3.0 * (interval or 0):g}s"
                if kind is aiohttp.WSMsgType.ERROR:
                    return f"websocket error: {type(ws.exception()).__name__}: {str(ws.exception())[:120]}"
                return f"closed by the gateway (code {ws.close_code})" if ws.close_code else "closed"
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    def _watch_idle(self, ws: aiohttp.ClientWebSocketResponse, idle_s: float) -> None:
        loop = self._loop or asyncio.get_running_loop()
        seen = self._frames

        def check() -> None:
            if ws.closed:
                return
            if self._frames == seen:
                self._idle_closed = ws
                self._spawn(ws.close())
                return
            self._watch_idle(ws, idle_s)

        self._watchdog = loop.call_later(idle_s, check)

    def _on_data_frame(self, data: str | bytes) -> None:
        self._frames += 1
        try:
            self._on_frame(data)
        except Exception:  # a bug below must not end the connection: the session outlives one frame
            log.exception("gateway %s: a frame could not be handled", self.url)

    def _on_frame(self, data: str | bytes) -> None:
        try:
            frame = decode_frame(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.stats.malformed_frames += 1
            log.warning(
                "gateway %s sent a frame that is not JSON-RPC (%d bytes): %s", self.url, len(data), exc
            )
            return
        request_id = frame.id
        if request_id is not None:
            call = self._pending.pop(request_id, None)
            if call is None:
                self.stats.unknown_ids += 1
                log.debug("gateway %s answered id %d, which nothing waits for", self.url, request_id)
                return
            future = call.future
            if future.done():
                return
            error = frame.error
            if error is not None:
                future.set_exception(error_from(error, call.method))
            else:
                future.set_result(frame.result)
            return
        method = frame.method
        params = frame.params
        if method == "subscription" and params is not None and params.channel is not None:
            self.stats.notifications += 1
            callbacks = self._channels.get(params.channel)
            if callbacks:
                for callback in callbacks:
                    try:
                        callback(params.channel, params.data)
                    except Exception:
                        self.stats.callback_errors += 1
                        log.exception("callback for %s failed", params.channel)
        elif method == "heartbeat":
            if params is not None and params.type == "test_request":
                self._answer_test_request()
        elif frame.error is not None:
            self.stats.malformed_frames += 1
            log.warning(
                "gateway %s: error without an id: [%d] %s", self.url, frame.error.code, frame.error.message
            )
        else:
            self.stats.malformed_frames += 1
            log.debug("gateway %s sent a frame with neither an id nor a known method", self.url)

    def _answer_test_request(self) -> None:
        """The gateway closes a connection whose heartbeat goes unanswered: answer with `public/test`."""
        ws, loop = self._ws, self._loop
        if ws is None or ws.closed or loop is None:
            return
        request_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = loop.create_future()
        future.add_done_callback(_ignore_result)
        self._pending[request_id] = _Call(future, "public/test", RequestClass.NON_MATCHING, None)
        self.stats.heartbeats_answered += 1
        credits = self.credits
        if credits is not None:
            credits.try_spend(
                RequestClass.NON_MATCHING
            )  # never waits: an unanswered heartbeat ends the session
        self._spawn(ws.send_frame(encode_request(request_id, "public/test", {}), _TEXT))

    def _spawn(self, coroutine: Any) -> None:
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("gateway %s: background send failed: %r", self.url, task.exception())
