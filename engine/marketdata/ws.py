"""A Coinbase Advanced Trade WebSocket connection that stays up and says when it lost something.

One `CoinbaseSocket` is one connection (market data or the user channel). It subscribes to each channel with
a fresh token (Coinbase wants one per subscribe message), always includes `heartbeats` so quiet channels are
not closed on us, reconnects with capped exponential backoff and full jitter, and checks `sequence_num`:
every message on a connection carries the next number, so a jump means messages were lost. On a gap it tells
its owner (`on_gap`, which invalidates what it built from the lost stream) and resubscribes the channels that
need a fresh snapshot; on a reconnect every channel starts over from a snapshot.

Envelopes are handed to `on_envelope(envelope, received_ns)` as parsed dicts, with the `perf_counter_ns()`
taken as the reader got the message from aiohttp (after it read and parsed the frame). The tick-to-wire
benchmark starts its clock earlier, when the bytes reach the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from engine.net.retry import Backoff as Backoff  # re-exported: imported from here before engine.net held it

log = logging.getLogger(__name__)

EnvelopeHandler = Callable[[dict[str, Any], int], None]

# Coinbase closes a connection that has not subscribed within 5 seconds (so every connection subscribes at
# once, heartbeats included), and allows an unauthenticated connection 8 messages a second:
# https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits
MAX_UNAUTHENTICATED_PER_S = 8.0


@dataclass(frozen=True, slots=True)
class Subscription:
    channel: str  # "level2", "ticker", "market_trades", "user", ...
    product_ids: tuple[str, ...] = ()
    resync_on_gap: bool = False  # resubscribe after a sequence gap (its state is rebuilt from a snapshot)


@dataclass(slots=True)
class SocketStats:
    connects: int = 0
    disconnects: int = 0
    gaps: int = 0
    resubscribes: int = 0
    messages: int = 0
    paced: int = 0  # unauthenticated messages held back to stay within Coinbase's rate
    errors: list[str] = field(default_factory=list)


class CoinbaseSocket:
    """Run with `await socket.run()` (until `close()`), or `start()` for a background task."""

    def __init__(
        self,
        url: str,
        subscriptions: Sequence[Subscription],
        on_envelope: EnvelopeHandler,
        *,
        token: Callable[[], str] | None = None,
        on_gap: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        heartbeats: bool = True,
        idle_timeout: float = 10.0,
        backoff: Backoff | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        subs = list(subscriptions)
        if heartbeats and not any(s.channel == "heartbeats" for s in subs):
            subs.append(Subscription("heartbeats"))
        self.subscriptions = tuple(subs)
        self._on_envelope = on_envelope
        self._token = token
        self._on_gap = on_gap
        self._on_disconnect = on_disconnect
        self.idle_timeout = idle_timeout
        self.backoff = backoff or Backoff()
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_seq = -1
        self._next_send = 0.0  # loop time before which an unauthenticated message may not go out
        self.connected = asyncio.Event()
        self.stats = SocketStats()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"ws {self.url}")
        return self._task

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                delivered = await self._connect_and_read()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
                delivered = False
                self._note_error(f"{type(exc).__name__}: {exc}")
            self.connected.clear()
            if self._closing:
                return
            self.stats.disconnects += 1
            if self._on_disconnect is not None:
                self._on_disconnect()
            attempt = 0 if delivered else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))

    # -- one connection --------------------------------------------------------------------------------

    async def _connect_and_read(self) -> bool:
        """Connect, subscribe, read until the connection ends. Returns whether any data arrived."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.ws_connect(
            self.url, autoping=True, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws:
            self._ws = ws
            self.stats.connects += 1
            self._last_seq = -1
            for subscription in self.subscriptions:
                await self._send_subscribe(ws, "subscribe", subscription)
            self.connected.set()
            delivered = False
            receive = ws.receive
            on_envelope = self._on_envelope
            perf_counter_ns = time.perf_counter_ns
            while True:
                msg = await receive(timeout=self.idle_timeout)
                received_ns = perf_counter_ns()
                if msg.type is not aiohttp.WSMsgType.TEXT and msg.type is not aiohttp.WSMsgType.BINARY:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        self._note_error(f"websocket error: {ws.exception()!r}")
                    return delivered
                envelope = orjson.loads(msg.data)
                seq = envelope.get("sequence_num")
                if seq is None:
                    self._on_control(envelope)
                    continue
                self.stats.messages += 1
                delivered = True
                last = self._last_seq
                if seq != last + 1 and last >= 0:
                    if seq <= last:
                        continue  # a duplicate or a replay: already applied
                    self.stats.gaps += 1
                    log.warning("sequence gap on %s: expected %d, got %d; resyncing", self.url, last + 1, seq)
                    self._last_seq = seq
                    if self._on_gap is not None:
                        self._on_gap()
                    await self._resync(ws)
                    # deliver the message after the gap (a level2 update to an invalidated book is ignored)
                else:
                    self._last_seq = seq
                on_envelope(envelope, received_ns)

    async def _resync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for subscription in self.subscriptions:
            if subscription.resync_on_gap:
                await self._send_subscribe(ws, "unsubscribe", subscription)
                await self._send_subscribe(ws, "subscribe", subscription)
                self.stats.resubscribes += 1

    async def _send_subscribe(
        self, ws: aiohttp.ClientWebSocketResponse, kind: str, subscription: Subscription
    ) -> None:
        message: dict[str, Any] = {"type": kind, "channel": subscription.channel}
        if subscription.product_ids:
            message["product_ids"] = list(subscription.product_ids)
        if self._token is not None:
            message["jwt"] = self._token()  # a fresh token for every subscribe
        else:
            await self._pace()
        await ws.send_str(orjson.dumps(message).decode())

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = self._next_send - now
        self._next_send = max(now, self._next_send) + 1.0 / MAX_UNAUTHENTICATED_PER_S
        if wait > 0:
            self.stats.paced += 1
            await asyncio.sleep(wait)

    async def subscribe(self, subscription: Subscription) -> None:
        """Subscribe at run time (now if connected); kept for every reconnect after."""
        self.subscriptions = (*(s for s in self.subscriptions if s != subscription), subscription)
        ws = self._ws
        if ws is not None and not ws.closed and self.connected.is_set():
            await self._send_subscribe(ws, "subscribe", subscription)

    async def unsubscribe(self, channel: str, product_ids: Sequence[str] = ()) -> None:
        """Unsubscribe `product_ids` of `channel` (all of it when none are given), now and on reconnects."""
        dropped = set(product_ids)
        kept: list[Subscription] = []
        for s in self.subscriptions:
            if s.channel != channel:
                kept.append(s)
            elif dropped and set(s.product_ids) - dropped:
                remaining = tuple(p for p in s.product_ids if p not in dropped)
                kept.append(Subscription(s.channel, remaining, s.resync_on_gap))
        self.subscriptions = tuple(kept)
        ws = self._ws
        if ws is not None and not ws.closed and self.connected.is_set():
            await self._send_subscribe(ws, "unsubscribe", Subscription(channel, tuple(product_ids)))

    def _on_control(self, envelope: dict[str, Any]) -> None:
        if envelope.get("type") == "error":
            # e.g. "authentication failure": the message names the problem, never the token
            self._note_error(f"exchange error: {envelope.get('message', '')}")

    def _note_error(self, text: str) -> None:
        log.warning("websocket %s: %s", self.url, text)
        errors = self.stats.errors
        errors.append(text)
        if len(errors) > 100:
            del errors[:50]

    async def resubscribe(self) -> None:
        """Resubscribe every resync channel now (e.g. the owner found its state inconsistent)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            await self._resync(ws)

    def drop_connection(self) -> None:
        """Close the current connection; `run()` reconnects after the backoff."""
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())
