"""Typed events for every Advanced Trade WebSocket channel, and a consumer that hands them out.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels

`parse_envelope` turns one envelope into its typed events; `ChannelFeed` is an `on_envelope` for a
`CoinbaseSocket` that delivers them to per-channel callbacks and async iterators. Amounts become `Decimal`
at this edge; each event keeps the envelope's `timestamp` and the channel's `type` (snapshot or update).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.marketdata.stream import Stream
from engine.net.wire import Json, as_str, dec

__all__ = [
    "CHANNELS",
    "Candle",
    "ChannelEvent",
    "ChannelFeed",
    "FuturesBalanceSummary",
    "Heartbeat",
    "Level2Update",
    "MarketTrade",
    "ProductStatus",
    "TickerEvent",
    "UserOrder",
    "UserPosition",
    "parse_envelope",
]

log = logging.getLogger(__name__)

# Subscription names; level2 arrives as "l2_data", ticker_batch keeps its name.
CHANNELS = (
    "heartbeats", "candles", "status", "ticker", "ticker_batch", "level2", "market_trades", "user",
    "futures_balance_summary",
)  # fmt: skip
_WIRE_NAMES = {"l2_data": "level2"}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    current_time: str
    heartbeat_counter: int
    timestamp: str


@dataclass(frozen=True, slots=True)
class Candle:
    product_id: str
    start: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal | None
    kind: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class ProductStatus:
    product_id: str
    product_type: str
    base_currency: str
    quote_currency: str
    base_increment: Decimal | None
    quote_increment: Decimal | None
    status: str
    status_message: str
    kind: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class TickerEvent:
    """One ticker row of the `ticker` or `ticker_batch` channel (`channel` says which)."""

    channel: str
    product_id: str
    price: Decimal | None
    volume_24_h: Decimal | None
    low_24_h: Decimal | None
    high_24_h: Decimal | None
    price_percent_chg_24_h: Decimal | None
    best_bid: Decimal | None
    best_bid_quantity: Decimal | None
    best_ask: Decimal | None
    best_ask_quantity: Decimal | None
    kind: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class Level2Update:
    product_id: str
    side: str  # "bid" / "offer"
    price_level: Decimal | None
    new_quantity: Decimal | None
    event_time: str
    kind: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class MarketTrade:
    trade_id: str
    product_id: str
    price: Decimal | None
    size: Decimal | None
    side: str
    time: str
    kind: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class UserOrder:
    order_id: str
    client_order_id: str
    product_id: str
    order_side: str
    order_type: str
    status: str
    cumulative_quantity: Decimal | None
    leaves_quantity: Decimal | None
    avg_price: Decimal | None
    total_fees: Decimal | None
    kind: str
    timestamp: str
    raw: Json = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UserPosition:
    """A futures position from the user channel; `perpetual` tells the two lists Coinbase sends apart."""

    product_id: str
    side: str
    number_of_contracts: Decimal | None
    entry_price: Decimal | None
    unrealized_pnl: Decimal | None
    perpetual: bool
    kind: str
    timestamp: str
    raw: Json = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class FuturesBalanceSummary:
    futures_buying_power: Decimal | None
    total_usd_balance: Decimal | None
    cfm_usd_balance: Decimal | None
    unrealized_pnl: Decimal | None
    daily_realized_pnl: Decimal | None
    initial_margin: Decimal | None
    available_margin: Decimal | None
    liquidation_threshold: Decimal | None
    kind: str
    timestamp: str
    raw: Json = field(repr=False, compare=False)


ChannelEvent = (
    Heartbeat | Candle | ProductStatus | TickerEvent | Level2Update | MarketTrade | UserOrder | UserPosition
    | FuturesBalanceSummary
)  # fmt: skip


def _int(value: Any) -> int:
    text = as_str(value)
    return int(text) if text.isdigit() else 0


def _rows(event: Json, key: str) -> list[Json]:
    rows = event.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _parse_event(channel: str, event: Json, ts: str) -> list[ChannelEvent]:
    kind = as_str(event.get("type"))
    out: list[ChannelEvent] = []
    if channel == "heartbeats":
        out.append(Heartbeat(as_str(event.get("current_time")), _int(event.get("heartbeat_counter")), ts))
    elif channel == "candles":
        for c in _rows(event, "candles"):
            out.append(Candle(
                as_str(c.get("product_id")), _int(c.get("start")), dec(c.get("open")), dec(c.get("high")),
                dec(c.get("low")), dec(c.get("close")), dec(c.get("volume")), kind, ts,
            ))  # fmt: skip
    elif channel == "status":
        for p in _rows(event, "products"):
            out.append(ProductStatus(
                as_str(p.get("id")), as_str(p.get("product_type")), as_str(p.get("base_currency")),
                as_str(p.get("quote_currency")), dec(p.get("base_increment")), dec(p.get("quote_increment")),
                as_str(p.get("status")), as_str(p.get("status_message")), kind, ts,
            ))  # fmt: skip
    elif channel in ("ticker", "ticker_batch"):
        for t in _rows(event, "tickers"):
            out.append(TickerEvent(
                channel, as_str(t.get("product_id")), dec(t.get("price")), dec(t.get("volume_24_h")),
                dec(t.get("low_24_h")), dec(t.get("high_24_h")), dec(t.get("price_percent_chg_24_h")),
                dec(t.get("best_bid")), dec(t.get("best_bid_quantity")), dec(t.get("best_ask")),
                dec(t.get("best_ask_quantity")), kind, ts,
            ))  # fmt: skip
    elif channel == "level2":
        product_id = as_str(event.get("product_id"))
        for u in _rows(event, "updates"):
            out.append(Level2Update(
                product_id, as_str(u.get("side")), dec(u.get("price_level")), dec(u.get("new_quantity")),
                as_str(u.get("event_time")), kind, ts,
            ))  # fmt: skip
    elif channel == "market_trades":
        for t in _rows(event, "trades"):
            out.append(MarketTrade(
                as_str(t.get("trade_id")), as_str(t.get("product_id")), dec(t.get("price")),
                dec(t.get("size")), as_str(t.get("side")), as_str(t.get("time")), kind, ts,
            ))  # fmt: skip
    elif channel == "user":
        for o in _rows(event, "orders"):
            out.append(UserOrder(
                as_str(o.get("order_id")), as_str(o.get("client_order_id")), as_str(o.get("product_id")),
                as_str(o.get("order_side")), as_str(o.get("order_type")), as_str(o.get("status")),
                dec(o.get("cumulative_quantity")), dec(o.get("leaves_quantity")), dec(o.get("avg_price")),
                dec(o.get("total_fees")), kind, ts, o,
            ))  # fmt: skip
        positions = event.get("positions")
        if isinstance(positions, dict):
            for key, perpetual in (
                ("perpetual_futures_positions", True),
                ("expiring_futures_positions", False),
            ):
                for p in _rows(positions, key):
                    out.append(UserPosition(
                        as_str(p.get("product_id")), as_str(p.get("side") or p.get("position_side")),
                        dec(p.get("number_of_contracts") or p.get("net_size")), dec(p.get("entry_price")),
                        dec(p.get("unrealized_pnl")), perpetual, kind, ts, p,
                    ))  # fmt: skip
    elif channel == "futures_balance_summary":
        s = event.get("fcm_balance_summary")
        if isinstance(s, dict):
            out.append(FuturesBalanceSummary(
                dec(s.get("futures_buying_power")), dec(s.get("total_usd_balance")),
                dec(s.get("cfm_usd_balance")), dec(s.get("unrealized_pnl")), dec(s.get("daily_realized_pnl")),
                dec(s.get("initial_margin")),
                dec(s.get("available_margin")), dec(s.get("liquidation_threshold")), kind, ts, s,
            ))  # fmt: skip
    return out


def parse_envelope(envelope: Json) -> tuple[str, list[ChannelEvent]]:
    """(channel, typed events) of one envelope; ("subscriptions", []) and unknown channels give no events."""
    wire = as_str(envelope.get("channel"))
    channel = _WIRE_NAMES.get(wire, wire)
    if channel not in CHANNELS:
        return channel, []
    ts = as_str(envelope.get("timestamp"))
    events: list[ChannelEvent] = []
    for event in envelope.get("events") or ():
        if isinstance(event, dict):
            events.extend(_parse_event(channel, event, ts))
    return channel, events


class ChannelFeed:
    """`on_envelope` for a `CoinbaseSocket`: every channel's typed events, by callback or async iterator.

    Callbacks run inline on the socket reader, in arrival order; one that raises is logged and the rest
    still run, so a faulty consumer cannot stop the feed.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[ChannelEvent], object]]] = {}
        self._streams: dict[str, list[Stream[ChannelEvent]]] = {}
        self.subscriptions: dict[str, list[str]] = {}  # as the exchange last confirmed them

    def on(self, channel: str, callback: Callable[[ChannelEvent], object]) -> None:
        self._callbacks.setdefault(self._known(channel), []).append(callback)

    def stream(self, channel: str, maxlen: int = 4096) -> Stream[ChannelEvent]:
        stream: Stream[ChannelEvent] = Stream(maxlen)
        self._streams.setdefault(self._known(channel), []).append(stream)
        return stream

    @staticmethod
    def _known(channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
        return channel

    def on_envelope(self, envelope: dict[str, Any], received_ns: int) -> None:
        channel, events = parse_envelope(envelope)
        if channel == "subscriptions":
            for event in envelope.get("events") or ():
                subs = event.get("subscriptions") if isinstance(event, dict) else None
                if isinstance(subs, dict):
                    self.subscriptions = {str(k): list(v or ()) for k, v in subs.items()}
            return
        callbacks, streams = self._callbacks.get(channel, ()), self._streams.get(channel, ())
        for item in events:
            for callback in callbacks:
                try:
                    callback(item)
                except Exception:
                    log.exception("%s callback failed", channel)
            for stream in streams:
                stream.push(item)

    def close(self) -> None:
        for streams in self._streams.values():
            for stream in streams:
                stream.close()
