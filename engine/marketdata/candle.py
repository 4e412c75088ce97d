"""A candle: one interval's open, high, low, close and volume, venue-neutral like `Ticker` and `Trade`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Candle"]


@dataclass(frozen=True, slots=True)
class Candle:
    product_id: str
    start: int  # the interval's start, Unix seconds
    granularity_s: int  # the interval's length in seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # in the base asset
    received_ns: int = 0  # perf_counter_ns() as the engine got it; 0 for history fetched on request
