"""A TWAP order's schedule: its size spread evenly over buckets between its start and end times.

By the end of bucket k (of n) the order aims to have filled k/n of its size; each slice trades at or better
than the limit price, and what a bucket could not fill carries into the next. See
https://help.coinbase.com/en/coinbase/trading-and-funding/advanced-trade/order-types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.sim.orders import OrderRefused
from engine.sim.values import InvalidValue, parse_int, parse_time

MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class TwapSchedule:
    start: float
    end: float
    buckets: int

    @classmethod
    def parse(cls, config: dict[str, Any], now: float, end: float) -> TwapSchedule:
        try:
            raw_start = config.get("start_time")
            start = now if raw_start in (None, "") else parse_time(raw_start, "start_time")
            span = max(end - start, 1.0)
            default = max(1, min(MAX_BUCKETS, math.ceil(span / 60)))  # a bucket a minute unless told
            buckets = parse_int(
                config.get("number_buckets") or default, "number_buckets", minimum=1, maximum=MAX_BUCKETS
            )
        except InvalidValue as bad:
            raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", str(bad)) from None
        if start >= end:
            raise OrderRefused(
                "INVALID_ARGUMENT", "PREVIEW_INVALID_END_TIME", "start_time must be before end_time"
            )
        return cls(start, end, buckets)

    def buckets_due(self, now: float) -> int:
        """How many buckets have begun by `now` (a bucket's slice is released when it begins)."""
        if now < self.start:
            return 0
        elapsed = (now - self.start) / (self.end - self.start)
        return min(self.buckets, int(elapsed * self.buckets) + 1)

    def target(self, total: Decimal, now: float, increment: Decimal) -> Decimal:
        """What should have filled by `now`, rounded down to the size increment."""
        due = self.buckets_due(now)
        if due >= self.buckets:
            return total
        share = total * due / self.buckets
        return (share / increment).to_integral_value(rounding=ROUND_DOWN) * increment
