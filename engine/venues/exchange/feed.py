"""The Coinbase Exchange WebSocket feed (https://docs.cdp.coinbase.com/exchange/websocket-feed/overview): one
connection, kept up, its values handed on as the venue-neutral `Ticker`, `Trade` and `OrderBook` of
`engine.marketdata` through a `MarketFeed`.

    feed = ExchangeFeed(["BTC-USD"], ["heartbeat", "ticker", "matches", "full"], rest=client.exchange)
    feed.market.on_ticker(print)
    feed.start()

Channels: heartbeat, status, ticker, ticker_batch, level2, level2_batch, matches, full and user (the last
two carry the HMAC signature fields, signed in Rust by the `ExchangeKey`, as Coinbase asks of an
authenticated subscribe). A level2 book starts from the snapshot the channel sends on subscribing. A full
book starts from the REST level-3 book and then applies each product's messages in `sequence`: a number
skipped (or a heartbeat ahead of what was applied) means messages were lost, and the book is rebuilt from a
fresh level-3 snapshot, the messages that arrived meanwhile replayed on top. A dropped connection is
reconnected after the client's one backoff (`RetryPolicy.backoff`); every book then starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from engine.errors import ConfigError, EngineError
from engine.marketdata.book import OrderBook
from engine.marketdata.feed import MarketFeed, Ticker, Trade
from engine.net.diagnose import AuthContext, diagnose
from engine.net.retry import RetryPolicy

if TYPE_CHECKING:
    from engine._signer import ExchangeKey
    from engine.venues.exchange.rest import ExchangeApi

__all__ = ["CHANNELS", "FEED_URLS", "ExchangeFeed", "FeedStats", "OrderEvent"]

log = logging.getLogger(__name__)

FEED_URLS = {
    "production": "wss://ws-feed.exchange.coinbase.com",
    "sandbox": "wss://ws-feed-public.sandbox.exchange.coinbase.com",
}
CHANNELS = frozenset(
    {"heartbeat", "status", "ticker", "ticker_batch", "level2", "level2_batch", "matches", "full", "user"}
)
_AUTHENTICATED = frozenset({"user", "full", "level2"})  # full and level2 accept (Coinbase may require) it
_VERIFY_PATH = "/users/self/verify"  # what an authenticated subscribe signs
_BOOK_MESSAGES = frozenset({"received", "open", "done", "match", "change", "activate"})
_ZERO = Decimal(0)
_TAKER = {"buy": "SELL", "sell": "BUY"}  # a match names the maker's side; the taker took the other


@dataclass(slots=True)
class FeedStats:
    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    gaps: int = 0
    rebuilds: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A full- or user-channel message about one of the key's own orders."""

    type: str  # received, open, done, match, change, activate
    order_id: str
    client_oid: str
    product_id: str
    side: str
    sequence: int
    price: Decimal | None
    size: Decimal | None  # received: the order's size; match: the fill's size
    remaining_size: Decimal | None
    reason: str  # done: filled or canceled
    time: str


def _dec(value: Any) -> Decimal | None:
    return Decimal(value) if value not in (None, "") else None


class _FullBook:
    """One product's level-3 book from the full channel, summed into the venue-neutral `OrderBook`."""

    __slots__ = ("book", "orders", "pending", "rebuilding", "sequence")

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.orders: dict[str, tuple[bool, Decimal, Decimal]] = {}  # order id -> (is_bid, price, size)
        self.sequence = -1  # the last sequence applied; -1: no snapshot yet
        self.pending: list[dict[str, Any]] = []  # messages held while a snapshot is fetched
        self.rebuilding = False

    def load(self, sequence: int, bids: Sequence[Any], asks: Sequence[Any]) -> None:
        self.orders.clear()
        self.book.bids.clear()
        self.book.asks.clear()
        for is_bid, entries in ((True, bids), (False, asks)):
            for entry in entries:
                self._add(entry.order_id, is_bid, entry.price, entry.size)
        self.sequence = sequence
        self.book.ready = True

    def _add(self, order_id: str, is_bid: bool, price: Decimal, size: Decimal) -> None:
        previous = self.orders.get(order_id)
        if previous is not None:
            self._remove(order_id)
        self.orders[order_id] = (is_bid, price, size)
        side = self.book.bids if is_bid else self.book.asks
        side.set(price, side.size_at(price) + size)

    def _remove(self, order_id: str) -> None:
        entry = self.orders.pop(order_id, None)
        if entry is None:
            return
        is_bid, price, size = entry
        side = self.book.bids if is_bid else self.book.asks
        side.set(price, max(_ZERO, side.size_at(price) - size))

    def _resize(self, order_id: str, size: Decimal) -> None:
        entry = self.orders.get(order_id)
        if entry is None:
            return
        if size > _ZERO:
            self._add(order_id, entry[0], entry[1], size)
        else:
            self._remove(order_id)

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "open":
            self._add(
                message["order_id"], message["side"] == "buy", Decimal(message["price"]),
                Decimal(message["remaining_size"]),
            )  # fmt: skip
        elif kind == "done":
            self._remove(message["order_id"])
        elif kind == "change":
            self._resize(message["order_id"], Decimal(message["new_size"]))
        elif kind == "match":
            maker = message["maker_order_id"]
            entry = self.orders.get(maker)
            if entry is not None:
                self._resize(maker, entry[2] - Decimal(message["size"]))
        self.sequence = message["sequence"]
        self.book.updates_applied += 1


class ExchangeFeed:
    """Run with `start()` (a background task) or `await run()`, until `close()`.

    Args:
        product_ids: the products of every channel.
        channels: channel names (see `CHANNELS`); heartbeat is always added, so quiet products say so.
        key: an `ExchangeKey`, for the user channel (and an authenticated full or level2 subscribe).
        rest: `client.exchange`: the full channel's books are built from its level-3 snapshots.
        environment: "production" or "sandbox"; or give `url` (the simulator's base URL works as is).
        retry: the backoff between reconnects.
    """

    def __init__(
        self,
        product_ids: Sequence[str],
        channels: Sequence[str] = ("ticker", "matches", "level2_batch"),
        *,
        key: ExchangeKey | None = None,
        rest: ExchangeApi | None = None,
        environment: str = "production",
        url: str | None = None,
        retry: RetryPolicy | None = None,
        idle_timeout_s: float = 10.0,
        market: MarketFeed | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        unknown = sorted(set(channels) - CHANNELS)
        if unknown:
            raise ConfigError(f"unknown Exchange feed channels {unknown}; known: {sorted(CHANNELS)}")
        if not product_ids:
            raise ConfigError("the Exchange feed needs at least one product id")
        if url is None:
            if environment not in FEED_URLS:
                raise ConfigError(f"environment must be one of {sorted(FEED_URLS)}, got {environment!r}")
            url = FEED_URLS[environment]
        elif url.startswith("http"):
            url = "ws" + url[4:]
        if "user" in channels and key is None:
            raise ConfigError("the user channel needs an Exchange key (key=ExchangeKey(...))")
        if "full" in channels and rest is None:
            raise ConfigError("the full channel builds its books from REST level-3 snapshots: pass rest=")
        if "full" in channels and ("level2" in channels or "level2_batch" in channels):
            raise ConfigError("subscribe to full or to level2, not both: each builds the same books")
        self.url = url
        self.product_ids = tuple(product_ids)
        self.channels = tuple(dict.fromkeys(("heartbeat", *channels)))
        self.market = market or MarketFeed()
        self.stats = FeedStats()
        self.retry = retry or RetryPolicy(base_delay_s=0.1, max_delay_s=5.0)
        self.idle_timeout_s = idle_timeout_s
        self.connected = asyncio.Event()
        self._key = key
        self._rest = rest
        self._full = "full" in channels
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._books: dict[str, _FullBook] = {}
        self._last_trade: dict[str, int] = {}
        self._mine: set[str] = set()  # order ids the user channel told us are ours
        self._client_oids: dict[str, str] = {}
        self._event_sequence: dict[str, int] = {}  # per product: the last order event's sequence
        self._order_callbacks: list[Callable[[OrderEvent], Any]] = []
        self._subscribed_callbacks: list[Callable[[], Any]] = []
        self._rebuilds: set[asyncio.Task[None]] = set()
        self._fatal: EngineError | None = None

    def on_order_event(self, callback: Callable[[OrderEvent], Any]) -> None:
        """Called with every received/open/done/match/change message about the key's own orders."""
        self._order_callbacks.append(callback)

    def on_subscribed(self, callback: Callable[[], Any]) -> None:
        """Called each time a (re)subscribe is confirmed: messages sent while disconnected are lost, so
        whoever follows the key's orders looks at them again from here."""
        self._subscribed_callbacks.append(callback)

    def track(self, order_id: str, client_oid: str) -> None:
        """Count `order_id` among the key's own orders: one placed before this connection subscribed (its
        `received` message went by unseen) is reported from its next message on."""
        self._mine.add(order_id)
        self._client_oids[order_id] = client_oid

    def replace_key(self, key: ExchangeKey) -> None:
        """Sign the next (re)subscribe with `key`; the open connection stays up."""
        self._key = key

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"exchange feed {self.url}")
        return self._task

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        for task in [self._task, *self._rebuilds]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def drop_connection(self) -> None:
        """Close the current connection; `run()` reconnects after the backoff."""
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    async def run(self) -> None:
        """Connect, subscribe, read; reconnect after the backoff. Raises AuthError if the subscribe is
        refused for its credentials (reconnecting cannot fix that)."""
        attempt = 0
        while not self._closing:
            try:
                delivered = await self._connect_and_read()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                delivered = False
                self._note_error(f"{type(exc).__name__}: {exc}")
            self.connected.clear()
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                return
            self.stats.disconnects += 1
            attempt = 0 if delivered else attempt + 1
            await asyncio.sleep(self.retry.backoff(max(1, attempt), self._rng))

    def _subscribe_message(self) -> bytes:
        message: dict[str, Any] = {
            "type": "subscribe",
            "product_ids": list(self.product_ids),
            "channels": list(self.channels),
        }
        if self._key is not None and _AUTHENTICATED.intersection(self.channels):
            headers = self._key.headers("GET", _VERIFY_PATH, b"")
            message["signature"] = headers["CB-ACCESS-SIGN"]
            message["key"] = headers["CB-ACCESS-KEY"]
            message["passphrase"] = headers["CB-ACCESS-PASSPHRASE"]
            message["timestamp"] = headers["CB-ACCESS-TIMESTAMP"]
        return orjson.dumps(message)

    async def _connect_and_read(self) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.ws_connect(
            self.url, autoping=True, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws:
            self._ws = ws
            self.stats.connects += 1
            self._start_over()
            await ws.send_str(self._subscribe_message().decode())
            delivered = False
            while True:
                msg = await ws.receive(timeout=self.idle_timeout_s)
                if msg.type is not aiohttp.WSMsgType.TEXT and msg.type is not aiohttp.WSMsgType.BINARY:
                    return delivered
                received_ns = time.perf_counter_ns()
                message = orjson.loads(msg.data)
                kind = message.get("type")
                if kind == "subscriptions":
                    self.connected.set()
                    for subscribed in self._subscribed_callbacks:
                        try:
                            subscribed()
                        except Exception:
                            log.exception("subscribed callback %r failed", subscribed)
                    for product_id, full in self._books.items():
                        if full.sequence < 0:  # subscribed: the messages from here on apply to a snapshot
                            self._rebuild(product_id, full)
                    continue
                if kind == "error":
                    self._on_error(message)
                    if self._fatal is not None:
                        return delivered
                    continue
                self.stats.messages += 1
                delivered = True
                self._dispatch(kind, message, received_ns)

    def _start_over(self) -> None:
        """A new connection: every book waits for its snapshot again."""
        for product_id in self.product_ids:
            self.market.book(product_id).invalidate()
            if self._full:
                full = self._books.get(product_id)
                if full is None:
                    full = self._books[product_id] = _FullBook(self.market.book(product_id))
                full.sequence, full.pending = -1, []

    def _on_error(self, message: dict[str, Any]) -> None:
        text, reason = str(message.get("message", "")), str(message.get("reason", ""))
        self._note_error(f"exchange error: {text} ({reason})")
        if text == "Authentication Failed":
            context = AuthContext(
                "GET", _VERIFY_PATH, 401, reason or text, "exchange", self.url.split("://", 1)[-1]
            )
            self._fatal = diagnose(context)

    def _note_error(self, text: str) -> None:
        log.warning("exchange feed %s: %s", self.url, text)
        errors = self.stats.errors
        errors.append(text)
        if len(errors) > 100:
            del errors[:50]

    # ---- messages -------------------------------------------------------------------------------------
    def _dispatch(self, kind: str, message: dict[str, Any], received_ns: int) -> None:
        product_id = message.get("product_id", "")
        if kind == "ticker":
            self.market.publish_ticker(
                Ticker(
                    product_id, Decimal(message["price"]), _dec(message.get("best_bid")),
                    _dec(message.get("best_bid_size")), _dec(message.get("best_ask")),
                    _dec(message.get("best_ask_size")), _dec(message.get("volume_24h")),
                    message.get("time", ""), received_ns,
                )
            )  # fmt: skip
        elif kind == "snapshot":
            book = self.market.book(product_id)
            book.apply_snapshot(
                [
                    *({"side": "bid", "price_level": p, "new_quantity": s} for p, s in message["bids"]),
                    *({"side": "offer", "price_level": p, "new_quantity": s} for p, s in message["asks"]),
                ]
            )
            self.market.snapshots += 1
            self.market.publish_book(book)
        elif kind == "l2update":
            book = self.market.book(product_id)
            changes = [
                {"side": "bid" if side == "buy" else "offer", "price_level": price, "new_quantity": size}
                for side, price, size in message["changes"]
            ]
            if book.apply_update(changes):
                self.market.publish_book(book)
        elif kind == "heartbeat":
            self.market.last_heartbeat = message.get("time")
            full = self._books.get(product_id)
            if (
                full is not None
                and full.sequence >= 0
                and not full.rebuilding
                and message["sequence"] > full.sequence
            ):
                self._gap(product_id, full, message["sequence"])  # quiet, but messages were lost
        elif kind in _BOOK_MESSAGES:
            if kind == "match":
                self._trade(product_id, message, received_ns)
            self._order_event(kind, product_id, message)
            if self._full and product_id in self._books:
                self._book_message(product_id, message)
        elif kind == "last_match":
            self._trade(product_id, message, received_ns)

    def _trade(self, product_id: str, message: dict[str, Any], received_ns: int) -> None:
        trade_id = int(message["trade_id"])
        if trade_id <= self._last_trade.get(product_id, 0):
            return  # the same match on a second channel (matches and full both carry it)
        self._last_trade[product_id] = trade_id
        self.market.publish_trade(
            Trade(
                str(trade_id), product_id, Decimal(message["price"]), Decimal(message["size"]),
                _TAKER.get(message.get("side", ""), ""), message.get("time", ""), received_ns,
            )
        )  # fmt: skip

    def _order_event(self, kind: str, product_id: str, message: dict[str, Any]) -> None:
        if not self._order_callbacks:
            return
        sequence = int(message.get("sequence", 0))
        if sequence <= self._event_sequence.get(product_id, 0):
            return  # the same message on a second channel (full and user both carry the user's orders)
        self._event_sequence[product_id] = sequence
        order_id = message.get("order_id", "")
        if kind == "received" and message.get("client_oid"):
            self._mine.add(order_id)
            self._client_oids[order_id] = message["client_oid"]
        if kind == "match":
            order_id = next(
                (
                    o
                    for o in (message.get("taker_order_id"), message.get("maker_order_id"))
                    if o in self._mine
                ),
                "",
            )
        if order_id not in self._mine:
            return
        event = OrderEvent(
            kind, order_id, self._client_oids.get(order_id, ""), product_id, message.get("side", ""),
            sequence, _dec(message.get("price")), _dec(message.get("size")),
            _dec(message.get("remaining_size")), message.get("reason", ""), message.get("time", ""),
        )  # fmt: skip
        if kind == "done":
            self._mine.discard(order_id)
            self._client_oids.pop(order_id, None)
        for callback in self._order_callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("order event callback %r failed", callback)

    # ---- the full channel's books ---------------------------------------------------------------------
    def _book_message(self, product_id: str, message: dict[str, Any]) -> None:
        full = self._books[product_id]
        sequence = message["sequence"]
        if full.sequence < 0 or full.rebuilding:
            full.pending.append(message)
            self._rebuild(product_id, full)
            return
        if sequence <= full.sequence:
            return  # already in the snapshot
        if sequence != full.sequence + 1:
            full.pending.append(message)
            self._gap(product_id, full, sequence)
            return
        full.apply(message)
        self.market.publish_book(full.book)

    def _gap(self, product_id: str, full: _FullBook, seen: int) -> None:
        self.stats.gaps += 1
        log.warning(
            "exchange feed %s: sequence gap (applied %d, saw %d); rebuilding from level 3",
            product_id, full.sequence, seen,
        )  # fmt: skip
        full.book.invalidate()
        self._rebuild(product_id, full)

    def _rebuild(self, product_id: str, full: _FullBook) -> None:
        if full.rebuilding:
            return
        full.rebuilding = True
        task = asyncio.get_running_loop().create_task(self._fetch_snapshot(product_id, full))
        self._rebuilds.add(task)
        task.add_done_callback(self._rebuilds.discard)

    async def _fetch_snapshot(self, product_id: str, full: _FullBook) -> None:
        assert self._rest is not None
        attempt = 0
        while True:
            try:
                snapshot = await self._rest.book(product_id, level=3)
                break
            except EngineError as exc:
                attempt += 1
                self._note_error(f"level-3 snapshot of {product_id} failed: {exc}")
                await asyncio.sleep(self.retry.backoff(attempt, self._rng))
        self.stats.rebuilds += 1
        full.load(snapshot.sequence, snapshot.bids, snapshot.asks)
        pending, full.pending = sorted(full.pending, key=lambda m: m["sequence"]), []
        full.rebuilding = False
        for message in pending:
            if message["sequence"] <= full.sequence:
                continue
            if message["sequence"] != full.sequence + 1:
                self._gap(product_id, full, message["sequence"])
                full.pending.extend(m for m in pending if m["sequence"] >= message["sequence"])
                return
            full.apply(message)
        self.market.publish_book(full.book)
