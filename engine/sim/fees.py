"""Fee tiers from the trailing 30-day volume, as Coinbase prices Advanced Trade.

The configured `FeeSchedule` is the entry tier; as the user's 30-day volume crosses a threshold of the
published table (https://help.coinbase.com/en/coinbase/trading-and-funding/advanced-trade/advanced-trade-fees)
the rates step down. A tier never charges more than the configured schedule, so a zero-fee simulator stays
zero. Volume older than 30 days drops out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.sim.book import ZERO
from engine.sim.config import FeeSchedule

WINDOW_S = 30 * 86400


@dataclass(frozen=True, slots=True)
class FeeTier:
    name: str
    usd_from: Decimal
    usd_to: Decimal | None  # None: no upper bound
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal


# (from USD, name, maker, taker) above the entry tier
_TABLE: tuple[tuple[int, str, str, str], ...] = (
    (10_000, "Advanced 2", "0.0025", "0.004"),
    (50_000, "Advanced 3", "0.0015", "0.0025"),
    (100_000, "VIP 1", "0.001", "0.002"),
    (1_000_000, "VIP 2", "0.0008", "0.0018"),
    (15_000_000, "VIP 3", "0.0006", "0.0016"),
    (75_000_000, "VIP 4", "0.0003", "0.0012"),
    (250_000_000, "VIP 5", "0", "0.0008"),
    (400_000_000, "VIP 6", "0", "0.0005"),
)


def tiers_for(schedule: FeeSchedule) -> list[FeeTier]:
    bounds = [Decimal(row[0]) for row in _TABLE]
    tiers = [
        FeeTier(schedule.pricing_tier, ZERO, bounds[0], schedule.maker_fee_rate, schedule.taker_fee_rate)
    ]
    for i, (start, name, maker, taker) in enumerate(_TABLE):
        upper = bounds[i + 1] if i + 1 < len(bounds) else None
        tiers.append(
            FeeTier(
                name,
                Decimal(start),
                upper,
                min(Decimal(maker), schedule.maker_fee_rate),
                min(Decimal(taker), schedule.taker_fee_rate),
            )
        )
    return tiers


class FeeTiers:
    """The rates in force now: `maker_fee_rate` and `taker_fee_rate` follow the 30-day volume."""

    def __init__(self, schedule: FeeSchedule, clock: Callable[[], float]) -> None:
        self.tiers = tiers_for(schedule)
        self._now = clock
        self._trades: deque[tuple[float, Decimal]] = deque()
        self._volume = ZERO
        self._tier = self.tiers[0]

    def record(self, usd_value: Decimal, when: float) -> None:
        self._trades.append((when, usd_value))
        self._volume += usd_value
        self._refresh(when)

    def _refresh(self, now: float) -> None:
        while self._trades and self._trades[0][0] < now - WINDOW_S:
            self._volume -= self._trades.popleft()[1]
        tier = self.tiers[0]
        for candidate in self.tiers:
            if self._volume >= candidate.usd_from:
                tier = candidate
        self._tier = tier

    def volume_30d(self) -> Decimal:
        self._refresh(self._now())
        return self._volume

    def current(self) -> FeeTier:
        self._refresh(self._now())
        return self._tier

    @property
    def maker_fee_rate(self) -> Decimal:
        return self._tier.maker_fee_rate

    @property
    def taker_fee_rate(self) -> Decimal:
        return self._tier.taker_fee_rate
