"""Funding on the perpetuals, on an accelerated clock: every `funding_interval_s` of wall time is one funding
hour. The hour's rate is the mark's premium over the index, capped; longs pay it to shorts when positive.
Each accrual is paid from (or to) the collateral pool and kept as a history point, which is what
`public/get_funding_rate_history` and `_value` read and what the `perpetual` channel publishes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.sim.book import ZERO
from engine.sim.derivatives.instruments import Instrument
from engine.sim.derivatives.margin import CollateralPool, CrossMargin

_RATE = Decimal("0.00000001")
_HISTORY = 10_000


@dataclass(frozen=True, slots=True)
class FundingPoint:
    timestamp_ms: int
    index_price: Decimal
    prev_index_price: Decimal
    interest_1h: Decimal

    def to_wire(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp_ms,
            "index_price": self.index_price,
            "prev_index_price": self.prev_index_price,
            "interest_1h": self.interest_1h,
            "interest_8h": (self.interest_1h * 8).quantize(_RATE),
        }


class Funding:
    def __init__(self, instruments: dict[str, Instrument], margin: CrossMargin, cap: Decimal) -> None:
        self.instruments = instruments
        self.margin = margin
        self.cap = cap
        self.history: dict[str, deque[FundingPoint]] = {name: deque(maxlen=_HISTORY) for name in instruments}
        self.paid: dict[str, Decimal] = {name: ZERO for name in instruments}

    def current_rate(self, instrument: Instrument) -> Decimal:
        premium = Decimal(repr(instrument.premium))
        return max(-self.cap, min(self.cap, premium)).quantize(_RATE)

    def accrue(self, now_ms: int, pool: CollateralPool) -> list[tuple[Instrument, FundingPoint]]:
        """One funding hour for every instrument: pay the open positions, record the point."""
        points = []
        for name, instrument in self.instruments.items():
            rate = self.current_rate(instrument)
            history = self.history[name]
            previous = history[-1].index_price if history else instrument.index_price
            point = FundingPoint(now_ms, instrument.index_price, previous, rate)
            history.append(point)
            position = self.margin.position(name)
            if position is not None and rate != ZERO:
                payment = (-position.contracts * instrument.mark_price * rate).quantize(_RATE)
                pool.credit(name, payment)
                position.daily_realized_pnl += payment
                self.paid[name] += payment
            points.append((instrument, point))
        return points

    def between(self, name: str, start_ms: int, end_ms: int) -> list[FundingPoint]:
        return [p for p in self.history[name] if start_ms <= p.timestamp_ms <= end_ms]

    def value(self, name: str, start_ms: int, end_ms: int) -> Decimal:
        return sum((p.interest_1h for p in self.between(name, start_ms, end_ms)), ZERO)
