"""One product's market: a seeded random walk of the mid price and a synthetic book that follows it.

The walk and the book refresh run on the simulator's timer (`step()`), never on a request. Taker orders
consume the book's liquidity (`take()`); the consumed levels come back on the next refresh.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from engine.sim.book import ASK, BID, ZERO, BookSide, OrderBook
from engine.sim.config import ProductSpec


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: str
    product_id: str
    price: Decimal
    size: Decimal
    side: str  # the taker's side, "BUY" or "SELL"
    time: float


class Market:
    __slots__ = (
        "_rng",
        "_trade_seq",
        "book",
        "depth",
        "high_24h",
        "last_price",
        "low_24h",
        "mid",
        "open_24h",
        "spec",
        "volume_24h",
    )

    def __init__(self, spec: ProductSpec, rng: random.Random, depth: int) -> None:
        self.spec = spec
        self._rng = rng
        self.depth = depth
        self.book = OrderBook(spec.product_id)
        self.mid = spec.start_price
        self.last_price = spec.start_price
        self.open_24h = spec.start_price
        self.high_24h = spec.start_price
        self.low_24h = spec.start_price
        self.volume_24h = ZERO
        self._trade_seq = 0
        self._refresh_book()
        self.book.drain_changes()  # the initial book is the snapshot, not an update

    # ---- prices -------------------------------------------------------------------------------------
    def round_price(self, price: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        inc = self.spec.price_increment
        return (price / inc).to_integral_value(rounding=rounding) * inc

    def round_size(self, size: Decimal) -> Decimal:
        inc = self.spec.base_increment
        return (size / inc).to_integral_value(rounding=ROUND_DOWN) * inc

    def best_bid(self) -> Decimal:
        return self.book.best_bid() or self.mid - self.spec.price_increment

    def best_ask(self) -> Decimal:
        return self.book.best_ask() or self.mid + self.spec.price_increment

    # ---- the timer's work ---------------------------------------------------------------------------
    def step(self, now: float) -> Trade | None:
        """Move the mid one tick of the walk, refresh the book, and sometimes print a trade."""
        shock = math.exp(self._rng.gauss(0.0, self.spec.volatility))
        self.set_mid(self.mid * Decimal(repr(shock)), refresh=True)
        if self._rng.random() < 0.5:
            side = "BUY" if self._rng.random() < 0.5 else "SELL"
            price = self.best_ask() if side == "BUY" else self.best_bid()
            size = self._level_size() / 10
            return self.record_trade(price, max(self.round_size(size), self.spec.base_increment), side, now)
        return None

    def set_mid(self, price: Decimal, refresh: bool = True) -> None:
        floor = self.spec.price_increment * 10
        self.mid = max(self.round_price(price), floor)
        if refresh:
            self._refresh_book()

    def _level_size(self) -> Decimal:
        lo, hi = self.spec.level_size_min, self.spec.level_size_max
        return self.round_size(lo + (hi - lo) * Decimal(repr(self._rng.random())))

    def _refresh_book(self) -> None:
        """Re-centre the synthetic levels on the mid; a surviving level keeps its size (or is topped up)."""
        inc = self.spec.price_increment
        step = inc * self.spec.level_step_ticks
        half_spread = max(inc, self.round_price(step / 2, ROUND_DOWN))
        best_bid = self.round_price(self.mid - half_spread, ROUND_DOWN)
        best_ask = self.round_price(self.mid + half_spread, "ROUND_UP")
        if best_ask <= best_bid:
            best_ask = best_bid + inc
        self._refresh_side(self.book.bids, BID, [best_bid - step * i for i in range(self.depth)])
        self._refresh_side(self.book.asks, ASK, [best_ask + step * i for i in range(self.depth)])

    def _refresh_side(self, side: BookSide, name: str, wanted: list[Decimal]) -> None:
        wanted_set = set(wanted)
        for price in side.prices():
            if price not in wanted_set:
                self.book.set_level(name, price, ZERO)
        for price in wanted:
            if price <= ZERO:
                continue
            current = side.size_at(price)
            # consumed or new levels are replenished; a fifth of the rest change size, so updates keep flowing
            if current < self.spec.level_size_min or self._rng.random() < 0.2:
                self.book.set_level(name, price, self._level_size() or self.spec.level_size_min)

    # ---- liquidity taken by orders --------------------------------------------------------------------
    def take(
        self,
        side: str,
        limit_price: Decimal | None,
        base_size: Decimal | None,
        quote_budget: Decimal | None,
        dry_run: bool = False,
    ) -> list[tuple[Decimal, Decimal]]:
        """Walk the opposite side for a taker `side` ("BUY"/"SELL"); return the (price, size) fills.

        Stops at `limit_price`, at `base_size` filled, or when `quote_budget` (a quote-sized buy, fees
        already taken out) is spent. With `dry_run` the book is left untouched (used for FOK checks).
        """
        book_side, name = (self.book.asks, ASK) if side == "BUY" else (self.book.bids, BID)
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = base_size
        budget = quote_budget
        for price, size in book_side.walk():
            if limit_price is not None and (price > limit_price if side == "BUY" else price < limit_price):
                break
            take = size
            if remaining is not None:
                take = min(take, remaining)
            if budget is not None:
                take = min(take, self.round_size(budget / price))
            if take <= ZERO:
                break
            fills.append((price, take))
            if not dry_run:
                self.book.set_level(name, price, size - take)
            if remaining is not None:
                remaining -= take
                if remaining <= ZERO:
                    break
            if budget is not None:
                budget -= take * price
        return fills

    def record_trade(self, price: Decimal, size: Decimal, side: str, now: float) -> Trade:
        self._trade_seq += 1
        self.last_price = price
        self.high_24h = max(self.high_24h, price)
        self.low_24h = min(self.low_24h, price)
        self.volume_24h += size
        return Trade(str(self._trade_seq), self.spec.product_id, price, size, side, now)

    def price_change_pct_24h(self) -> Decimal:
        if self.open_24h == ZERO:
            return ZERO
        return ((self.last_price - self.open_24h) / self.open_24h * 100).quantize(Decimal("0.00000001"))
