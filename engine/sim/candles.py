"""Candles built from the simulator's own trades, at every granularity Advanced Trade offers.

Trades are folded into one-minute buckets as they print; a coarser candle is the fold of the minutes it
spans, so every granularity agrees with the same trades (open of the first, close of the last, the extremes,
the summed size). See https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getcandles.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

from engine.sim.clock import fmt
from engine.sim.market import Trade

GRANULARITIES: dict[str, int] = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
MAX_CANDLES = 350  # Coinbase refuses a range wider than this many candles
_KEPT_MINUTES = 30 * 24 * 60  # a month of minutes per product: memory stays bounded in long runs


@dataclass(slots=True)
class Candle:
    start: int  # UNIX seconds, a multiple of the granularity
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def absorb(self, other: Candle) -> None:
        """Fold a later candle (or trade) into this one."""
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.volume += other.volume

    def to_json(self) -> dict[str, str]:
        return {
            "start": str(self.start),
            "low": fmt(self.low),
            "high": fmt(self.high),
            "open": fmt(self.open),
            "close": fmt(self.close),
            "volume": fmt(self.volume),
        }


class CandleBook:
    def __init__(self) -> None:
        self._minutes: dict[str, OrderedDict[int, Candle]] = {}

    def on_trade(self, trade: Trade) -> Candle:
        """Fold a trade into its minute; returns that minute's candle as it now stands."""
        minutes = self._minutes.setdefault(trade.product_id, OrderedDict())
        start = int(trade.time) // 60 * 60
        candle = minutes.get(start)
        if candle is None:
            candle = Candle(start, trade.price, trade.price, trade.price, trade.price, trade.size)
            minutes[start] = candle
            if len(minutes) > _KEPT_MINUTES:
                minutes.popitem(last=False)
        else:
            candle.absorb(Candle(start, trade.price, trade.price, trade.price, trade.price, trade.size))
        return candle

    def candles(self, product_id: str, start: float, end: float, granularity: int) -> list[Candle]:
        """Candles whose bucket starts in [start, end], newest first, as Coinbase lists them; buckets with no
        trade are left out."""
        buckets: dict[int, Candle] = {}
        for minute, candle in self._minutes.get(product_id, OrderedDict()).items():
            bucket = minute // granularity * granularity
            if bucket < start // granularity * granularity or bucket > end:
                continue
            folded = buckets.get(bucket)
            if folded is None:
                buckets[bucket] = Candle(
                    bucket, candle.open, candle.high, candle.low, candle.close, candle.volume
                )
            else:
                folded.absorb(candle)
        return [buckets[b] for b in sorted(buckets, reverse=True)]

    def current(self, product_id: str, granularity: int, now: float) -> Candle | None:
        """The candle of the bucket holding `now` (the WebSocket channel's five-minute candle)."""
        found = self.candles(product_id, now, now, granularity)
        return found[0] if found else None
