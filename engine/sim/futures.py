"""CFM futures positions: signed contract counts, average entry, realized PnL, margin.

Collateral is the portfolio's USD account (Coinbase sweeps between the spot and futures balances; the
simulator keeps one pool and reports both views of it). Initial margin is `initial_margin_rate` of the
notional.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.sim.book import ZERO
from engine.sim.config import ProductSpec


@dataclass(slots=True)
class Position:
    product_id: str
    contracts: Decimal = ZERO  # > 0 long, < 0 short
    avg_entry_price: Decimal = ZERO
    daily_realized_pnl: Decimal = ZERO

    @property
    def side(self) -> str:
        return "LONG" if self.contracts > ZERO else "SHORT"


class FuturesPositions:
    def __init__(self) -> None:
        self._positions: dict[str, Position] = {}

    def get(self, product_id: str) -> Position | None:
        position = self._positions.get(product_id)
        return position if position is not None and position.contracts != ZERO else None

    def open_positions(self) -> list[Position]:
        return [p for p in self._positions.values() if p.contracts != ZERO]

    def reducing_contracts(self, product_id: str, side: str, contracts: Decimal) -> Decimal:
        """How many of `contracts` on `side` would close existing exposure (and so need no new margin)."""
        position = self.get(product_id)
        if position is None:
            return ZERO
        if (side == "BUY") == (position.contracts < ZERO):
            return min(contracts, abs(position.contracts))
        return ZERO

    def apply_fill(self, spec: ProductSpec, side: str, contracts: Decimal, price: Decimal) -> Decimal:
        """Apply a fill; return the realized PnL in USD."""
        position = self._positions.setdefault(spec.product_id, Position(spec.product_id))
        signed = contracts if side == "BUY" else -contracts
        realized = ZERO
        if position.contracts == ZERO or (position.contracts > ZERO) == (signed > ZERO):
            total = abs(position.contracts) + contracts
            position.avg_entry_price = (
                position.avg_entry_price * abs(position.contracts) + price * contracts
            ) / total
            position.contracts += signed
        else:
            closing = min(contracts, abs(position.contracts))
            direction = Decimal(1) if position.contracts > ZERO else Decimal(-1)
            realized = (price - position.avg_entry_price) * closing * spec.contract_size * direction
            position.contracts += signed
            if position.contracts == ZERO:
                position.avg_entry_price = ZERO
            elif (position.contracts > ZERO) == (signed > ZERO):  # flipped: the rest opens at this price
                position.avg_entry_price = price
        position.daily_realized_pnl += realized
        return realized

    def daily_realized_pnl(self) -> Decimal:
        """Realized today over every product, including positions since closed."""
        return sum((p.daily_realized_pnl for p in self._positions.values()), ZERO)

    @staticmethod
    def unrealized_pnl(position: Position, spec: ProductSpec, mark: Decimal) -> Decimal:
        return (mark - position.avg_entry_price) * position.contracts * spec.contract_size

    @staticmethod
    def notional(contracts: Decimal, spec: ProductSpec, price: Decimal) -> Decimal:
        return abs(contracts) * spec.contract_size * price

    def initial_margin(self, specs: dict[str, ProductSpec], marks: dict[str, Decimal]) -> Decimal:
        return sum(
            (
                self.notional(p.contracts, specs[p.product_id], marks[p.product_id])
                * specs[p.product_id].initial_margin_rate
                for p in self.open_positions()
            ),
            ZERO,
        )

    def maintenance_margin(self, specs: dict[str, ProductSpec], marks: dict[str, Decimal]) -> Decimal:
        return sum(
            (
                self.notional(p.contracts, specs[p.product_id], marks[p.product_id])
                * specs[p.product_id].maintenance_margin_rate
                for p in self.open_positions()
            ),
            ZERO,
        )
