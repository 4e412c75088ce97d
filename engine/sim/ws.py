"""The Advanced Trade WebSocket: market data (`/ws`) and the authenticated user channel (`/ws/user`).

Each connection has its own `sequence_num`, counting every message sent to it. Messages are queued per
connection and written by one task, so a slow reader never blocks the market; a reader too slow to drain
its queue is disconnected, as Coinbase does. Level2 updates are the book's own drained changes, so a client
that applies snapshot + updates holds exactly the simulator's book.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from engine.sim.auth import AuthFailure, CdpKey
from engine.sim.clock import fmt, iso
from engine.sim.futures import FuturesPositions
from engine.sim.market import Market, Trade
from engine.sim.orders import OPEN, Fill, Order
from engine.sim.trading_status import OFFLINE, ONLINE, product_fields

if TYPE_CHECKING:
    from engine.sim.app import Simulator

log = logging.getLogger(__name__)

MARKET_CHANNELS = frozenset(
    {"heartbeats", "ticker", "ticker_batch", "level2", "market_trades", "status", "candles"}
)
AUTH_CHANNELS = frozenset({"user", "futures_balance_summary"})
_QUEUE_LIMIT = 10_000
CANDLE_CHANNEL_S = 300
TICKER_BATCH_S = 5.0


def _order_event(order: Order) -> dict[str, Any]:
    spec = order.spec
    return {
        "avg_price": fmt(order.average_filled_price),
        "cancel_reason": order.cancel_message,
        "client_order_id": order.client_order_id,
        "completion_percentage": order.completion_percentage(),
        "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "cumulative_quantity": fmt(order.filled_size),
        "filled_value": fmt(order.filled_value),
        "leaves_quantity": fmt(order.leaves if order.is_open else Decimal(0)),
        "limit_price": fmt(spec.limit_price or 0),
        "number_of_fills": str(order.number_of_fills),
        "order_id": order.order_id,
        "order_side": order.side,
        "order_type": spec.order_type,
        "outstanding_hold_amount": fmt(order.hold_amount),
        "post_only": "true" if spec.post_only else "false",
        "product_id": order.product_id,
        "product_type": order.product_type,
        "reject_Reason": "",
        "retail_portfolio_id": order.portfolio_uuid,
        "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
        "status": order.status,
        "stop_price": fmt(spec.stop_price or 0),
        "time_in_force": spec.time_in_force,
        "total_fees": fmt(order.total_fees),
        "total_value_after_fees": fmt(order.filled_value + order.total_fees),
        "trigger_status": order.trigger_status,
        "creation_time": iso(order.created_time),
        "end_time": iso(spec.end_time) if spec.end_time else "0001-01-01T00:00:00Z",
        "start_time": "0001-01-01T00:00:00Z",
    }


def _trade_event(trade: Trade) -> dict[str, str]:
    return {
        "trade_id": trade.trade_id,
        "product_id": trade.product_id,
        "price": fmt(trade.price),
        "size": fmt(trade.size),
        "side": trade.side,
        "time": iso(trade.time),
    }


class WsSession:
    __slots__ = ("_writer", "closed", "key", "queue", "seq", "subscriptions", "ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_LIMIT)
        self.seq = 0
        self.subscriptions: dict[str, set[str]] = {}
        self.key: CdpKey | None = None
        self.closed = False
        self._writer: asyncio.Task[None] | None = None

    def wants(self, channel: str, product_id: str | None) -> bool:
        products = self.subscriptions.get(channel)
        if products is None:
            return False
        return product_id is None or not products or product_id in products


class MarketDataHub:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.sessions: set[WsSession] = set()
        self._heartbeat_counter = 0
        self.messages_sent = 0
        self.gaps_injected = 0
        self.drops_injected = 0
        self._batch_pending: set[str] = set()
        self._batch_at = 0.0

    # ---- sending ------------------------------------------------------------------------------------
    def send(self, session: WsSession, channel: str, events: list[dict[str, Any]]) -> None:
        if session.closed:
            return
        dice = self.sim.dice
        if dice.ws_drop():
            self.drops_injected += 1
            self._close(session)
            return
        seq = session.seq
        session.seq += 1
        if dice.ws_gap():  # the message is lost: its sequence number is skipped
            self.gaps_injected += 1
            return
        envelope = {
            "channel": channel,
            "client_id": "",
            "timestamp": iso(self.sim.clock.now()),
            "sequence_num": seq,
            "events": events,
        }
        try:
            session.queue.put_nowait(orjson.dumps(envelope))
        except asyncio.QueueFull:
            log.info("disconnecting a WebSocket reader that fell %d messages behind", _QUEUE_LIMIT)
            self._close(session)

    def _close(self, session: WsSession) -> None:
        session.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            session.queue.put_nowait(None)
        if session.queue.full() and session._writer is not None:  # writer stuck behind a full queue
            session._writer.cancel()

    async def _write(self, session: WsSession) -> None:
        try:
            while True:
                payload = await session.queue.get()
                if payload is None:
                    break
                await session.ws.send_frame(payload, WSMsgType.TEXT)
                self.messages_sent += 1
        except (ConnectionResetError, RuntimeError):  # the peer went away mid-write
            pass
        finally:
            session.closed = True
            await session.ws.close()

    # ---- the connection -------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        session = WsSession(ws)
        session._writer = asyncio.create_task(self._write(session))
        self.sessions.add(session)
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                self._on_message(session, message.data)
                if session.closed:
                    break
        finally:
            self.sessions.discard(session)
            self._close(session)
            with contextlib.suppress(asyncio.CancelledError):
                await session._writer
        return ws

    def _error(self, session: WsSession, message: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            session.queue.put_nowait(orjson.dumps({"type": "error", "message": message}))

    def _on_message(self, session: WsSession, data: str) -> None:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(session, "failure to parse message")
            return
        if not isinstance(request, dict):
            self._error(session, "failure to parse message")
            return
        kind, channel = request.get("type"), request.get("channel")
        raw_ids = request.get("product_ids") or []
        if not isinstance(raw_ids, list) or not all(isinstance(p, str) for p in raw_ids):
            self._error(session, "product_ids must be a list of strings")
            return
        product_ids: list[str] = raw_ids
        if kind not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
            self._error(session, "message type must be subscribe or unsubscribe, with a channel")
            return
        if channel not in MARKET_CHANNELS and channel not in AUTH_CHANNELS:
            self._error(session, f"unknown channel {channel}")
            return
        unknown = [p for p in product_ids if p not in self.sim.markets]
        if unknown:
            self._error(session, f"unknown product ids {unknown}")
            return
        if kind == "unsubscribe":
            current = session.subscriptions.get(channel, set())
            current.difference_update(product_ids)
            if not product_ids or not current:
                session.subscriptions.pop(channel, None)
            self._ack(session)
            return
        token = request.get("jwt")
        if channel in AUTH_CHANNELS or token:
            if not isinstance(token, str):
                self._error(session, "authentication failure")
                return
            try:
                key = self.sim.keys.verify_jwt(token, None)
                self.sim.keys.check_access(key, "view", None)
            except AuthFailure as failure:
                self.sim.auth_failures[failure.reason] = self.sim.auth_failures.get(failure.reason, 0) + 1
                self._error(session, "authentication failure")
                return
            session.key = key
        session.subscriptions.setdefault(channel, set()).update(product_ids)
        self._ack(session)
        self._snapshot(session, channel, product_ids)

    def _ack(self, session: WsSession) -> None:
        subs = {channel: sorted(products) for channel, products in session.subscriptions.items()}
        self.send(session, "subscriptions", [{"subscriptions": subs}])

    def _snapshot(self, session: WsSession, channel: str, product_ids: list[str]) -> None:
        targets = product_ids or list(self.sim.markets)
        if channel == "level2":
            for product_id in targets:
                book = self.sim.markets[product_id].book.snapshot()
                updates = self._l2_updates(
                    [("bid", p, s) for p, s in book["bids"]] + [("offer", p, s) for p, s in book["asks"]]
                )
                self.send(
                    session, "l2_data", [{"type": "snapshot", "product_id": product_id, "updates": updates}]
                )
        elif channel in ("ticker", "ticker_batch"):
            tickers = [self._ticker(pid) for pid in targets]
            self.send(session, channel, [{"type": "snapshot", "tickers": tickers}])
        elif channel == "market_trades":
            trades = [_trade_event(t) for pid in targets for t in list(self.sim.recent_trades(pid))[::-1]]
            self.send(session, "market_trades", [{"type": "snapshot", "trades": trades}])
        elif channel == "user":
            orders = [
                _order_event(o)
                for o in self.sim.engine.orders.values()
                if o.status == OPEN and (not product_ids or o.product_id in product_ids)
            ]
            positions: dict[str, list[Any]] = {
                "perpetual_futures_positions": [],
                "expiring_futures_positions": self._futures_positions(product_ids),
            }
            self.send(session, "user", [{"type": "snapshot", "orders": orders, "positions": positions}])
        elif channel == "futures_balance_summary":
            self.send(session, channel, [{"type": "snapshot", "fcm_balance_summary": self._fcm_summary()}])
        elif channel == "candles":
            candles = [c for pid in targets if (c := self._candle(pid)) is not None]
            self.send(session, "candles", [{"type": "snapshot", "candles": candles}])
        elif channel == "status":
            products = [self._status_row(self.sim.markets[pid]) for pid in targets]
            self.send(session, "status", [{"type": "snapshot", "products": products}])

    def _status_row(self, m: Market) -> dict[str, str]:
        mode = self.sim.product_status.get(m.spec.product_id, ONLINE)
        return {
            "product_type": m.spec.product_type,
            "id": m.spec.product_id,
            "base_currency": m.spec.base_currency,
            "quote_currency": m.spec.quote_currency,
            "base_increment": fmt(m.spec.base_increment),
            "quote_increment": fmt(m.spec.price_increment),
            "display_name": m.spec.display_name or m.spec.product_id,
            # Coinbase's status is online or offline; a narrower mode (cancel only, ...) is said in words
            "status": product_fields(mode)["status"],
            "status_message": "" if mode in (ONLINE, OFFLINE) else mode.replace("_", " "),
            "min_market_funds": fmt(m.spec.quote_min_size),
        }

    def _futures_positions(self, product_ids: list[str]) -> list[dict[str, str]]:
        engine = self.sim.engine
        rows = []
        for position in engine.positions.open_positions():
            if product_ids and position.product_id not in product_ids:
                continue
            market = self.sim.markets[position.product_id]
            unrealized = FuturesPositions.unrealized_pnl(position, market.spec, market.mid)
            rows.append(
                {
                    "product_id": position.product_id,
                    "side": position.side,
                    "number_of_contracts": fmt(abs(position.contracts)),
                    "realized_pnl": fmt(position.daily_realized_pnl),
                    "unrealized_pnl": fmt(unrealized),
                    "entry_price": fmt(position.avg_entry_price),
                }
            )
        return rows

    def _fcm_summary(self) -> dict[str, Any]:
        summary = self.sim.advanced.balance_summary_json()
        return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in summary.items()}

    def _candle(self, product_id: str) -> dict[str, str] | None:
        """The five-minute candle in progress: the one granularity the channel sends
        (https://docs.cdp.coinbase.com/advanced-trade/docs/ws-channels#candles-channel)."""
        candle = self.sim.candles.current(product_id, CANDLE_CHANNEL_S, self.sim.clock.now())
        return None if candle is None else {**candle.to_json(), "product_id": product_id}

    # ---- publishing (called by the simulator) ---------------------------------------------------------
    @staticmethod
    def _l2_updates(changes: Iterable[tuple[str, Decimal, Decimal]]) -> list[dict[str, str]]:
        return [
            {
                "side": side,
                "event_time": "1970-01-01T00:00:00Z",
                "price_level": fmt(price),
                "new_quantity": fmt(size),
            }
            for side, price, size in changes
        ]

    def publish_l2(self, product_id: str, changes: list[tuple[str, Decimal, Decimal]]) -> None:
        listeners = [s for s in self.sessions if s.wants("level2", product_id)]
        if not listeners or not changes:
            return
        event_time = iso(self.sim.clock.now())
        updates = [
            {"side": side, "event_time": event_time, "price_level": fmt(price), "new_quantity": fmt(size)}
            for side, price, size in changes
        ]
        events = [{"type": "update", "product_id": product_id, "updates": updates}]
        for session in listeners:
            self.send(session, "l2_data", events)

    def _ticker(self, product_id: str) -> dict[str, str]:
        market = self.sim.markets[product_id]
        book = market.book
        return {
            "type": "ticker",
            "product_id": product_id,
            "price": fmt(market.last_price),
            "volume_24_h": fmt(market.volume_24h),
            "low_24_h": fmt(market.low_24h),
            "high_24_h": fmt(market.high_24h),
            "low_52_w": fmt(market.low_24h),
            "high_52_w": fmt(market.high_24h),
            "price_percent_chg_24_h": fmt(market.price_change_pct_24h()),
            "best_bid": fmt(market.best_bid()),
            "best_bid_quantity": fmt(book.bids.size_at(market.best_bid())),
            "best_ask": fmt(market.best_ask()),
            "best_ask_quantity": fmt(book.asks.size_at(market.best_ask())),
        }

    def publish_tickers(self, product_id: str) -> None:
        listeners = [s for s in self.sessions if s.wants("ticker", product_id)]
        if listeners:
            events = [{"type": "update", "tickers": [self._ticker(product_id)]}]
            for session in listeners:
                self.send(session, "ticker", events)
        self._batch_pending.add(product_id)  # ticker_batch sends these on its own schedule

    def flush_ticker_batch(self) -> None:
        """One message per subscriber with the tickers of every product that changed since the last batch:
        Coinbase batches this channel every five seconds."""
        pending, self._batch_pending = self._batch_pending, set()
        self._batch_at = self.sim.clock.now()
        for session in self.sessions:
            products = [pid for pid in sorted(pending) if session.wants("ticker_batch", pid)]
            if products:
                tickers = [self._ticker(pid) for pid in products]
                self.send(session, "ticker_batch", [{"type": "update", "tickers": tickers}])

    def publish_candle(self, product_id: str) -> None:
        listeners = [s for s in self.sessions if s.wants("candles", product_id)]
        candle = self._candle(product_id) if listeners else None
        if candle is not None:
            events = [{"type": "update", "candles": [candle]}]
            for session in listeners:
                self.send(session, "candles", events)

    def publish_futures(self, order: Order) -> None:
        """After a futures fill: the balance summary and the position moved."""
        listeners = [
            s for s in self.sessions if s.key is not None and s.wants("futures_balance_summary", None)
        ]
        if listeners:
            events = [{"type": "update", "fcm_balance_summary": self._fcm_summary()}]
            for session in listeners:
                self.send(session, "futures_balance_summary", events)

    def publish_status(self, product_id: str) -> None:
        """A product's trading status changed."""
        listeners = [s for s in self.sessions if s.wants("status", product_id)]
        if listeners:
            row = self._status_row(self.sim.markets[product_id])
            for session in listeners:
                self.send(session, "status", [{"type": "update", "products": [row]}])

    def publish_trade(self, trade: Trade) -> None:
        listeners = [s for s in self.sessions if s.wants("market_trades", trade.product_id)]
        if listeners:
            events = [{"type": "update", "trades": [_trade_event(trade)]}]
            for session in listeners:
                self.send(session, "market_trades", events)

    def publish_order(self, order: Order, fill: Fill | None) -> None:
        if not self.sessions:  # on every order's path: nobody listening is the common case
            return
        listeners = [s for s in self.sessions if s.key is not None and s.wants("user", order.product_id)]
        if listeners:
            events = [{"type": "update", "orders": [_order_event(order)]}]
            for session in listeners:
                self.send(session, "user", events)
        if fill is not None and order.product_type == "FUTURE":
            self.publish_futures(order)

    def heartbeat(self) -> None:
        if self.sim.clock.now() - self._batch_at >= TICKER_BATCH_S:
            self.flush_ticker_batch()
        self._heartbeat_counter += 1
        listeners = [s for s in self.sessions if s.wants("heartbeats", None)]
        if listeners:
            now = self.sim.clock.now()
            events = [{"current_time": iso(now), "heartbeat_counter": self._heartbeat_counter}]
            for session in listeners:
                self.send(session, "heartbeats", events)

    async def close_all(self) -> None:
        for session in list(self.sessions):
            self._close(session)
            await session.ws.close()
