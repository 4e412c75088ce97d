"""What the gateway publishes about a perpetual's market: the book (with change ids), ticker, quote, public
trades and candles. The same renderings answer the HTTP methods and feed the streams channels, so the two
can never disagree.

A book change is numbered (`change_id`) and names the number before it (`prev_change_id`): a client that
sees a `prev_change_id` other than the last `change_id` it holds has missed a message.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.sim.book import ASK, BID, ZERO
from engine.sim.derivatives.funding import Funding
from engine.sim.derivatives.instruments import Instrument

_TRADES = 10_000
RESOLUTIONS = {
    "1": 60,
    "3": 180,
    "5": 300,
    "10": 600,
    "15": 900,
    "30": 1800,
    "60": 3600,
    "120": 7200,
    "180": 10800,
    "360": 21600,
    "720": 43200,
    "1D": 86400,
}


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_seq: int
    trade_id: str
    timestamp_ms: int
    price: Decimal
    amount: Decimal
    direction: str
    mark_price: Decimal
    index_price: Decimal
    instrument_name: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "trade_seq": self.trade_seq,
            "trade_id": self.trade_id,
            "timestamp": self.timestamp_ms,
            "tick_direction": 0 if self.direction == "buy" else 2,
            "price": self.price,
            "mark_price": self.mark_price,
            "index_price": self.index_price,
            "instrument_name": self.instrument_name,
            "direction": self.direction,
            "amount": self.amount,
            "contracts": self.amount,
        }


class BookFeed:
    """The published book of one instrument: levels as last published, and the change counter."""

    __slots__ = ("change_id", "levels")

    def __init__(self, instrument: Instrument) -> None:
        self.change_id = 1
        book = instrument.market.book
        self.levels: dict[str, dict[Decimal, Decimal]] = {
            BID: dict(book.bids.levels()),
            ASK: dict(book.asks.levels()),
        }

    def apply(
        self, changes: list[tuple[str, Decimal, Decimal]], timestamp_ms: int, name: str
    ) -> dict[str, Any]:
        """Advance by the book's drained changes; return the `change` message."""
        entries: dict[str, list[list[Any]]] = {BID: [], ASK: []}
        for side, price, size in changes:
            levels = self.levels[side]
            if size <= ZERO:
                if levels.pop(price, None) is not None:
                    entries[side].append(["delete", price, 0])
            else:
                entries[side].append(["change" if price in levels else "new", price, size])
                levels[price] = size
        previous = self.change_id
        self.change_id += 1
        return {
            "type": "change",
            "timestamp": timestamp_ms,
            "instrument_name": name,
            "change_id": self.change_id,
            "prev_change_id": previous,
            "bids": sorted(entries[BID], key=lambda e: -e[1]),
            "asks": sorted(entries[ASK], key=lambda e: e[1]),
        }

    def snapshot(self, timestamp_ms: int, name: str) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "timestamp": timestamp_ms,
            "instrument_name": name,
            "change_id": self.change_id,
            "bids": [["new", p, s] for p, s in sorted(self.levels[BID].items(), reverse=True)],
            "asks": [["new", p, s] for p, s in sorted(self.levels[ASK].items())],
        }


class MarketData:
    def __init__(self, instruments: dict[str, Instrument], funding: Funding) -> None:
        self.instruments = instruments
        self.funding = funding
        self.books = {name: BookFeed(i) for name, i in instruments.items()}
        self.trades: dict[str, deque[PublicTrade]] = {name: deque(maxlen=_TRADES) for name in instruments}
        self._seq = itertools.count(1)

    def record_trade(
        self,
        instrument: Instrument,
        trade_id: str,
        timestamp_ms: int,
        price: Decimal,
        amount: Decimal,
        side: str,
    ) -> PublicTrade:
        trade = PublicTrade(
            next(self._seq),
            trade_id,
            timestamp_ms,
            price,
            amount,
            "buy" if side == "BUY" else "sell",
            instrument.mark_price,
            instrument.index_price,
            instrument.name,
        )
        self.trades[instrument.name].append(trade)
        return trade

    def order_book(self, instrument: Instrument, depth: int, timestamp_ms: int) -> dict[str, Any]:
        book = instrument.market.book
        ticker = self.ticker(instrument, timestamp_ms)
        ticker.update(
            {
                "bids": [[p, s] for p, s in book.bids.levels(depth)],
                "asks": [[p, s] for p, s in book.asks.levels(depth)],
                "change_id": self.books[instrument.name].change_id,
            }
        )
        return ticker

    def quote(self, instrument: Instrument, timestamp_ms: int) -> dict[str, Any]:
        book = instrument.market.book
        bid, ask = book.bids.levels(1), book.asks.levels(1)
        return {
            "instrument_name": instrument.name,
            "timestamp": timestamp_ms,
            "best_bid_price": bid[0][0] if bid else None,
            "best_bid_amount": bid[0][1] if bid else 0,
            "best_ask_price": ask[0][0] if ask else None,
            "best_ask_amount": ask[0][1] if ask else 0,
        }

    def ticker(self, instrument: Instrument, timestamp_ms: int) -> dict[str, Any]:
        market = instrument.market
        rate = self.funding.current_rate(instrument)
        quote = self.quote(instrument, timestamp_ms)
        band = instrument.mark_price * Decimal("0.05")
        tick = instrument.spec.tick_size
        quote.update(
            {
                "state": "open",
                "last_price": market.last_price,
                "mark_price": instrument.mark_price,
                "index_price": instrument.index_price,
                "settlement_price": instrument.mark_price,
                "estimated_delivery_price": instrument.index_price,
                "min_price": ((instrument.mark_price - band) / tick).to_integral_value() * tick,
                "max_price": ((instrument.mark_price + band) / tick).to_integral_value() * tick,
                "open_interest": ZERO,
                "current_funding": rate,
                "funding_8h": rate * 8,
                "interest_value": ZERO,
                "stats": {
                    "high": market.high_24h,
                    "low": market.low_24h,
                    "volume": market.volume_24h,
                    "volume_usd": market.volume_24h * market.last_price,
                    "price_change": market.price_change_pct_24h(),
                },
            }
        )
        return quote

    def perpetual(self, instrument: Instrument, timestamp_ms: int) -> dict[str, Any]:
        return {
            "timestamp": timestamp_ms,
            "index_price": instrument.index_price,
            "interest": self.funding.current_rate(instrument),
        }

    def candles(
        self, instrument: Instrument, start_ms: int, end_ms: int, resolution_s: int
    ) -> list[dict[str, Any]]:
        width = resolution_s * 1000
        buckets: dict[int, dict[str, Any]] = {}
        for trade in self.trades[instrument.name]:
            if not start_ms <= trade.timestamp_ms <= end_ms:
                continue
            tick = trade.timestamp_ms - trade.timestamp_ms % width
            candle = buckets.get(tick)
            if candle is None:
                buckets[tick] = {
                    "tick": tick,
                    "open": trade.price,
                    "high": trade.price,
                    "low": trade.price,
                    "close": trade.price,
                    "volume": trade.amount,
                    "cost": trade.amount * trade.price,
                }
            else:
                candle["high"] = max(candle["high"], trade.price)
                candle["low"] = min(candle["low"], trade.price)
                candle["close"] = trade.price
                candle["volume"] += trade.amount
                candle["cost"] += trade.amount * trade.price
        return [buckets[t] for t in sorted(buckets)]

    def chart_data(
        self, instrument: Instrument, start_ms: int, end_ms: int, resolution_s: int
    ) -> dict[str, Any]:
        candles = self.candles(instrument, start_ms, end_ms, resolution_s)
        out: dict[str, Any] = {"status": "ok" if candles else "no_data"}
        for field in ("tick", "open", "high", "low", "close", "volume", "cost"):
            out["ticks" if field == "tick" else field] = [c[field] for c in candles]
        return out
