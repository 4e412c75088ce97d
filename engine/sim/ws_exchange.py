"""The Coinbase Exchange WebSocket feed, served at `/` on the simulator's port as
`wss://ws-feed.exchange.coinbase.com` serves it (https://docs.cdp.coinbase.com/exchange/websocket-feed/channels).

Channels: heartbeat, status, ticker, ticker_batch, level2, level2_batch, matches, full and user. The full
channel is the book order by order, each message numbered by its product's `sequence` (the number the REST
level-3 book reports): the synthetic liquidity is one resting order per price level (ids as the REST book
gives them), and the user's own orders appear as theirs. What the full channel has told is kept per level, so
a client applying it holds exactly the REST level-3 book. The `ws_gap_rate` fault drops a full-channel message
for one connection: its sequence number is skipped, as a lost message would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from engine.sim.auth import AuthFailure, ExchangeKey
from engine.sim.book import ASK, BID, ZERO
from engine.sim.clock import fmt, iso
from engine.sim.orders import FILLED, MARKET, STOP_LIMIT
from engine.sim.rest_exchange_market import exchange_product, level_order_id

if TYPE_CHECKING:
    from engine.sim.app import Simulator
    from engine.sim.exchange_tape import ExchangeTape
    from engine.sim.market import Trade
    from engine.sim.orders import Fill, Order

CHANNELS = frozenset(
    {"heartbeat", "status", "ticker", "ticker_batch", "level2", "level2_batch", "matches", "full", "user"}
)
_AUTH_PREHASH = b"GET/users/self/verify"  # what a feed subscription signs
_QUEUE_LIMIT = 10_000
_BATCH_EVERY = 5  # heartbeats between ticker_batch and status messages (Coinbase: 5 seconds)
_SIDE = {BID: "buy", ASK: "sell"}


class FeedSession:
    __slots__ = ("_writer", "closed", "key", "queue", "remote", "subscriptions", "ws")

    def __init__(self, ws: web.WebSocketResponse, remote: str | None) -> None:
        self.ws = ws
        self.remote = remote
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_LIMIT)
        self.subscriptions: dict[str, set[str]] = {}
        self.key: ExchangeKey | None = None
        self.closed = False
        self._writer: asyncio.Task[None] | None = None

    def wants(self, channel: str, product_id: str) -> bool:
        products = self.subscriptions.get(channel)
        return products is not None and product_id in products


class ExchangeFeed:
    def __init__(self, sim: Simulator, tape: ExchangeTape) -> None:
        self.sim = sim
        self.tape = tape
        self.sessions: set[FeedSession] = set()
        # the synthetic levels as the full channel has told them: (side, price) -> size, per product
        self._told: dict[str, dict[tuple[str, Decimal], Decimal]] = {}
        for product_id, market in sim.markets.items():
            levels = {(BID, p): s for p, s in market.book.bids.levels()}
            levels.update({(ASK, p): s for p, s in market.book.asks.levels()})
            self._told[product_id] = levels
        # the user's orders: what the full channel said last ("received", "open", "done")
        self._announced: dict[str, str] = {}
        self._resting: dict[str, Order] = {}  # received, waiting to be announced open or done
        self._last_trade: dict[str, Trade] = {}
        self._traded_since_batch: set[str] = set()
        self._heartbeats = 0
        self.gaps_injected = 0
        self.messages_sent = 0

    # ---- fan-out --------------------------------------------------------------------------------------
    def _put(self, session: FeedSession, payload: bytes) -> None:
        if session.closed:
            return
        try:
            session.queue.put_nowait(payload)
        except asyncio.QueueFull:  # a reader this slow is cut off, as Coinbase does
            self._close(session)

    def _broadcast(self, channel: str, product_id: str, message: dict[str, Any]) -> None:
        payload: bytes | None = None
        for session in self.sessions:
            if session.wants(channel, product_id):
                payload = payload or orjson.dumps(message)
                self._put(session, payload)

    def _audience(self, product_id: str, user: bool = False) -> bool:
        """Whether any connection takes this product's full (or user) channel: if none, messages are only
        counted, never built (the simulator's own benchmarks run with no feed connected)."""
        for session in self.sessions:
            if session.wants("full", product_id) or (user and session.wants("user", product_id)):
                return True
        return False

    def _full(self, product_id: str, message: dict[str, Any], *, user: bool = False) -> None:
        """One full-channel message (and to the user channel, when it is about the user's order)."""
        message["sequence"] = self.tape.next_sequence(product_id)
        if not self._audience(product_id, user):
            return
        message["product_id"] = product_id
        message["time"] = iso(self.sim.clock.now())
        payload = orjson.dumps(message)
        dice = self.sim.dice
        for session in self.sessions:
            if session.wants("full", product_id) or (user and session.wants("user", product_id)):
                if dice.ws_gap():  # lost on the way to this connection: its sequence number is skipped
                    self.gaps_injected += 1
                    continue
                self._put(session, payload)

    # ---- the synthetic book, order by order -----------------------------------------------------------
    def _sync_level(self, product_id: str, side: str, price: Decimal) -> None:
        """Tell the full channel what one synthetic level now holds, if that differs from what it was told."""
        told = self._told[product_id]
        actual = self.sim.markets[product_id].book.side(side).size_at(price)
        before = told.get((side, price))
        if before == actual or (before is None and actual <= ZERO):
            return
        if not self._audience(product_id):  # told all the same, so a later subscriber's book is right
            if actual <= ZERO:
                del told[(side, price)]
            else:
                told[(side, price)] = actual
            for _ in range(2 if before is None else 1):
                self.tape.next_sequence(product_id)
            return
        order_id = level_order_id(product_id, _SIDE[side], price)
        wire_side, wire_price = _SIDE[side], fmt(price)
        if actual <= ZERO:
            del told[(side, price)]
            self._full(product_id, {
                "type": "done", "order_id": order_id, "side": wire_side, "price": wire_price,
                "remaining_size": fmt(before), "reason": "canceled",
            })  # fmt: skip
            return
        told[(side, price)] = actual
        if before is None:
            self._full(product_id, {
                "type": "received", "order_id": order_id, "side": wire_side, "price": wire_price,
                "size": fmt(actual), "order_type": "limit",
            })  # fmt: skip
            self._full(product_id, {
                "type": "open", "order_id": order_id, "side": wire_side, "price": wire_price,
                "remaining_size": fmt(actual),
            })  # fmt: skip
        else:
            self._full(product_id, {
                "type": "change", "order_id": order_id, "side": wire_side, "price": wire_price,
                "old_size": fmt(before), "new_size": fmt(actual), "reason": "modify_order",
            })  # fmt: skip

    # ---- what the simulator tells the feed ------------------------------------------------------------
    def publish_book(self, product_id: str, changes: list[tuple[str, Decimal, Decimal]]) -> None:
        """After the book changed (its drained level changes) or a request placed or cancelled orders."""
        self._flush_orders()
        for side, price, _ in changes:
            self._sync_level(product_id, side, price)
        if changes and self.sessions:
            update = {
                "type": "l2update",
                "product_id": product_id,
                "changes": [[_SIDE[side], fmt(price), fmt(size)] for side, price, size in changes],
                "time": iso(self.sim.clock.now()),
            }
            payload = orjson.dumps(update)
            for session in self.sessions:
                if session.wants("level2", product_id) or session.wants("level2_batch", product_id):
                    self._put(session, payload)

    def on_trade(self, trade: Trade) -> None:
        product_id = trade.product_id
        fills = self.sim.engine.fills
        fill: Fill | None = fills[-1] if fills else None
        if fill is not None and not (
            fill.trade_time == trade.time
            and fill.price == trade.price
            and fill.size == trade.size
            and fill.product_id == product_id
        ):
            fill = None  # the market's own trade, not one of the user's fills
        synthetic_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{product_id}/{trade.trade_id}"))
        if fill is not None and fill.liquidity_indicator == "MAKER":
            maker_side, maker_id, taker_id = fill.side.lower(), fill.order_id, synthetic_id
            level_side = None
        else:
            level_side = ASK if trade.side == "BUY" else BID
            maker_side = _SIDE[level_side]
            maker_id = level_order_id(product_id, maker_side, trade.price)
            taker_id = fill.order_id if fill is not None else synthetic_id
        match = {
            "type": "match", "product_id": product_id, "time": iso(trade.time),
            "trade_id": int(trade.trade_id), "maker_order_id": maker_id,
            "taker_order_id": taker_id, "side": maker_side, "size": fmt(trade.size),
            "price": fmt(trade.price),
        }  # fmt: skip
        self._full(product_id, match, user=fill is not None)
        if level_side is not None:
            told = self._told[product_id]
            key = (level_side, trade.price)
            if key in told:  # a match takes from the maker: then say what the level really holds
                told[key] = max(ZERO, told[key] - trade.size)
                if told[key] <= ZERO:
                    del told[key]
            self._sync_level(product_id, level_side, trade.price)
        self._last_trade[product_id] = trade
        self._traded_since_batch.add(product_id)
        if self.sessions:
            self._broadcast("matches", product_id, {**match, "type": "match"})
            self._broadcast("ticker", product_id, self._ticker(product_id))

    def on_order(self, order: Order, fill: Fill | None) -> None:
        if order.product_id not in self._told:
            return
        announced = self._announced.get(order.order_id)
        if announced == "done":
            return
        spec = order.spec
        if announced is None:
            if order.is_open and spec.order_type == STOP_LIMIT and not order.triggered:
                return  # a stop is private until it triggers
            self._announced[order.order_id] = "received"
            message: dict[str, Any] = {
                "type": "received", "order_id": order.order_id, "side": order.side.lower(),
                "order_type": "market" if spec.order_type == MARKET else "limit",
                "client_oid": order.client_order_id,
            }  # fmt: skip
            if spec.limit_price is not None:
                message["price"] = fmt(spec.limit_price)
            if spec.base_size is not None:
                message["size"] = fmt(spec.base_size)
            if spec.quote_size is not None:
                message["funds"] = fmt(spec.quote_size)
            self._full(order.product_id, message, user=True)
        if not order.is_open:
            self._done(order)
        elif self._announced[order.order_id] == "received":
            self._resting[order.order_id] = order

    def _done(self, order: Order) -> None:
        self._announced[order.order_id] = "done"
        self._resting.pop(order.order_id, None)
        message: dict[str, Any] = {
            "type": "done", "order_id": order.order_id, "side": order.side.lower(),
            "reason": "filled" if order.status == FILLED else "canceled", "remaining_size": fmt(order.leaves),
        }  # fmt: skip
        if order.spec.limit_price is not None:
            message["price"] = fmt(order.spec.limit_price)
        self._full(order.product_id, message, user=True)

    def _flush_orders(self) -> None:
        """Orders received and still open once their request is done: they rest on the book now."""
        for order_id, order in list(self._resting.items()):
            del self._resting[order_id]
            if not order.is_open:
                self._done(order)
                continue
            self._announced[order_id] = "open"
            self._full(order.product_id, {
                "type": "open", "order_id": order_id, "side": order.side.lower(),
                "price": fmt(order.spec.limit_price or ZERO), "remaining_size": fmt(order.leaves),
            }, user=True)  # fmt: skip

    def resting_user_orders(self, product_id: str) -> list[Order]:
        """The user's orders the full channel has (or is about to have) announced open: the level-3 book
        shows them beside the synthetic ones."""
        return [
            order
            for order in self.sim.engine.orders.values()
            if order.product_id == product_id
            and order.is_open
            and order.spec.limit_price is not None
            and not (order.spec.order_type == STOP_LIMIT and not order.triggered)
        ]

    def heartbeat(self) -> None:
        self._flush_orders()
        self._heartbeats += 1
        batch = self._heartbeats % _BATCH_EVERY == 0
        now = iso(self.sim.clock.now())
        for product_id in self._told if self.sessions else ():
            last = self._last_trade.get(product_id)
            self._broadcast("heartbeat", product_id, {
                "type": "heartbeat", "sequence": self.tape.sequence(product_id),
                "last_trade_id": int(last.trade_id) if last else 0, "product_id": product_id, "time": now,
            })  # fmt: skip
            if batch and product_id in self._traded_since_batch:
                self._broadcast("ticker_batch", product_id, self._ticker(product_id))
        if batch:
            self._traded_since_batch.clear()
            status = self._status()
            for session in self.sessions:
                if "status" in session.subscriptions:
                    self._put(session, status)

    # ---- message shapes -------------------------------------------------------------------------------
    def _ticker(self, product_id: str) -> dict[str, Any]:
        market = self.sim.markets[product_id]
        last = self._last_trade.get(product_id)
        book = market.book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        return {
            "type": "ticker",
            "sequence": self.tape.sequence(product_id),
            "product_id": product_id,
            "price": fmt(market.last_price),
            "open_24h": fmt(market.open_24h),
            "volume_24h": fmt(market.volume_24h),
            "low_24h": fmt(market.low_24h),
            "high_24h": fmt(market.high_24h),
            "volume_30d": fmt(market.volume_24h),
            "best_bid": fmt(best_bid) if best_bid is not None else "",
            "best_bid_size": fmt(book.bids.size_at(best_bid)) if best_bid is not None else "",
            "best_ask": fmt(best_ask) if best_ask is not None else "",
            "best_ask_size": fmt(book.asks.size_at(best_ask)) if best_ask is not None else "",
            "side": last.side.lower() if last else "",
            "time": iso(last.time if last else self.sim.clock.now()),
            "trade_id": int(last.trade_id) if last else 0,
            "last_size": fmt(last.size) if last else "0",
        }

    def _status(self) -> bytes:
        products = [
            {**exchange_product(m, self.sim.product_status[m.spec.product_id]), "type": "spot"}
            for m in self.sim.markets.values()
            if not m.spec.is_future
        ]
        currencies = [{"id": a.currency, "name": a.currency, "status": "online"} for a in self.sim.accounts]
        return orjson.dumps({"type": "status", "products": products, "currencies": currencies})

    # ---- the connection -------------------------------------------------------------------------------
    def _close(self, session: FeedSession) -> None:
        session.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            session.queue.put_nowait(None)
        if session.queue.full() and session._writer is not None:
            session._writer.cancel()

    async def _write(self, session: FeedSession) -> None:
        try:
            while True:
                payload = await session.queue.get()
                if payload is None:
                    break
                await session.ws.send_frame(payload, WSMsgType.TEXT)
                self.messages_sent += 1
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            session.closed = True
            await session.ws.close()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        session = FeedSession(ws, request.remote)
        session._writer = asyncio.create_task(self._write(session))
        self.sessions.add(session)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_message(session, message.data)
                if session.closed:
                    break
        finally:
            self.sessions.discard(session)
            self._close(session)
            with contextlib.suppress(asyncio.CancelledError):
                await session._writer
        return ws

    async def close_all(self) -> None:
        for session in list(self.sessions):
            self._close(session)
            await session.ws.close()

    def _error(self, session: FeedSession, message: str, reason: str) -> None:
        self._put(session, orjson.dumps({"type": "error", "message": message, "reason": reason}))

    def _on_message(self, session: FeedSession, data: str) -> None:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(session, "Failed to subscribe", "malformed JSON")
            return
        if not isinstance(request, dict) or request.get("type") not in ("subscribe", "unsubscribe"):
            self._error(session, "Failed to subscribe", "type must be subscribe or unsubscribe")
            return
        wanted = self._channels(session, request)
        if wanted is None:
            return
        if request["type"] == "unsubscribe":
            for channel, products in wanted.items():
                remaining = session.subscriptions.get(channel, set()) - products
                if remaining and products:
                    session.subscriptions[channel] = remaining
                else:
                    session.subscriptions.pop(channel, None)
        else:
            if "signature" in request:
                try:
                    key = self.sim.keys.verify_hmac(
                        request.get("key"), request.get("signature"), _str(request.get("timestamp")),
                        request.get("passphrase"), _AUTH_PREHASH,
                    )  # fmt: skip
                    self.sim.keys.check_access(key, "view", session.remote)
                except AuthFailure as failure:
                    reason = orjson.loads(failure.body).get("message", failure.reason)
                    self._error(session, "Authentication Failed", str(reason))
                    return
                session.key = key
            if "user" in wanted and session.key is None:
                self._error(session, "Failed to subscribe", "user channel requires authentication")
                return
            for channel, products in wanted.items():
                session.subscriptions.setdefault(channel, set()).update(products)
                self._greet(session, channel, products)
        listed = [{"name": c, "product_ids": sorted(p)} for c, p in sorted(session.subscriptions.items())]
        self._put(session, orjson.dumps({"type": "subscriptions", "channels": listed}))

    def _channels(self, session: FeedSession, request: dict[str, Any]) -> dict[str, set[str]] | None:
        default = request.get("product_ids") or []
        channels = request.get("channels")
        if not isinstance(channels, list) or not channels or not isinstance(default, list):
            self._error(session, "Failed to subscribe", "channels must be a non-empty list")
            return None
        wanted: dict[str, set[str]] = {}
        for entry in channels:
            if isinstance(entry, str):
                name, products = entry, default
            elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
                name, products = entry["name"], entry.get("product_ids") or default
            else:
                self._error(session, "Failed to subscribe", "a channel is a name or {name, product_ids}")
                return None
            if name not in CHANNELS:
                self._error(session, "Failed to subscribe", f"{name} is not a valid channel")
                return None
            if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
                self._error(session, "Failed to subscribe", "product_ids must be a list of strings")
                return None
            for product_id in products:
                if product_id not in self._told or self.sim.markets[product_id].spec.is_future:
                    self._error(session, "Failed to subscribe", f"{product_id} is not a valid product")
                    return None
            if not products and name != "status":
                self._error(session, "Failed to subscribe", f"{name} needs product_ids")
                return None
            wanted.setdefault(name, set()).update(products)
        return wanted

    def _greet(self, session: FeedSession, channel: str, products: set[str]) -> None:
        """What a channel sends on subscribing: the book snapshot, the last match, the latest ticker."""
        if channel == "status":
            self._put(session, self._status())
        for product_id in sorted(products):
            if channel in ("level2", "level2_batch"):
                snapshot = self.sim.markets[product_id].book.snapshot()
                self._put(session, orjson.dumps({
                    "type": "snapshot", "product_id": product_id,
                    "bids": [[fmt(p), fmt(s)] for p, s in snapshot["bids"]],
                    "asks": [[fmt(p), fmt(s)] for p, s in snapshot["asks"]],
                }))  # fmt: skip
            elif channel == "matches" and product_id in self._last_trade:
                last = self._last_trade[product_id]
                self._put(session, orjson.dumps({
                    "type": "last_match", "trade_id": int(last.trade_id), "product_id": product_id,
                    "price": fmt(last.price), "size": fmt(last.size), "time": iso(last.time),
                    "side": "sell" if last.side == "BUY" else "buy",
                    "sequence": self.tape.sequence(product_id),
                }))  # fmt: skip
            elif channel == "ticker":
                self._put(session, orjson.dumps(self._ticker(product_id)))


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
