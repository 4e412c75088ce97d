"""Cross margin on the gateway: one USDC collateral pool behind every perpetual, positions marked to the
mark price, initial margin at 1/leverage of the notional (plus what open orders hold), maintenance margin at
the instrument's rate.

The matching core is the spot simulator's own (`MatchingEngine`); `PerpetualMatching` changes only what a
perpetual does differently: fees are a rate of the notional, and what an order may spend is the account's
available funds (equity, unrealized PnL included, less initial margin).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from engine.sim.accounts import Accounts
from engine.sim.book import ZERO
from engine.sim.config import ProductSpec
from engine.sim.derivatives.instruments import SETTLEMENT, Instrument
from engine.sim.futures import FuturesPositions, Position
from engine.sim.matching import MatchingEngine

_PRICE = Decimal("0.00000001")
_UNLIMITED = Decimal(10) ** 18


class CollateralPool(Accounts):
    """The cross-margin account: every hold and credit the matching core makes lands in the USDC pool,
    whatever currency the core names (it names its futures collateral USD)."""

    def available(self, currency: str) -> Decimal:
        return super().available(SETTLEMENT)

    def place_hold(self, currency: str, amount: Decimal) -> None:
        super().place_hold(SETTLEMENT, amount)

    def release_hold(self, currency: str, amount: Decimal) -> None:
        super().release_hold(SETTLEMENT, amount)

    def credit(self, currency: str, amount: Decimal) -> None:
        super().credit(SETTLEMENT, amount)

    @property
    def balance(self) -> Decimal:
        account = self.get(SETTLEMENT)
        return account.balance if account is not None else ZERO

    @property
    def held(self) -> Decimal:
        account = self.get(SETTLEMENT)
        return account.hold if account is not None else ZERO


class PerpetualMatching(MatchingEngine):
    """The matching core with a perpetual's fees and cross-margin buying power."""

    def _fee(self, spec: ProductSpec, price: Decimal, size: Decimal, rate: Decimal) -> Decimal:
        # the core charges futures per contract; a perpetual charges its fee rate on the notional
        return (price * size * rate).quantize(_PRICE)

    # set while the account is being liquidated: closing orders go through whatever the margin
    liquidating = False

    def futures_buying_power(self) -> Decimal:
        if self.liquidating:
            return _UNLIMITED
        specs, marks = self.specs(), self.marks()
        unrealized = sum(
            (
                FuturesPositions.unrealized_pnl(p, specs[p.product_id], marks[p.product_id])
                for p in self.positions.open_positions()
            ),
            ZERO,
        )
        return self.accounts.available(SETTLEMENT) + unrealized - self.positions.initial_margin(specs, marks)


@dataclass(frozen=True, slots=True)
class MarginFigures:
    balance: Decimal
    unrealized: Decimal
    realized: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    open_orders_margin: Decimal

    @property
    def equity(self) -> Decimal:
        return self.balance + self.unrealized

    @property
    def available_funds(self) -> Decimal:
        return self.equity - self.initial_margin


class CrossMargin:
    """Reads the account through the matching core; sets leverage on an instrument's core spec."""

    def __init__(
        self,
        core: PerpetualMatching,
        pool: CollateralPool,
        instruments: dict[str, Instrument],
        default_leverage: Decimal,
    ) -> None:
        self.core = core
        self.pool = pool
        self.instruments = instruments
        self.leverage: dict[str, Decimal] = {}
        for name in instruments:
            self.set_leverage(name, default_leverage)
        self.funding_paid = ZERO

    def set_leverage(self, instrument_name: str, leverage: Decimal) -> None:
        instrument = self.instruments[instrument_name]
        self.leverage[instrument_name] = leverage
        market = instrument.market
        market.spec = replace(market.spec, initial_margin_rate=1 / leverage)

    def position(self, instrument_name: str) -> Position | None:
        return self.core.positions.get(instrument_name)

    def figures(self) -> MarginFigures:
        specs, marks = self.core.specs(), self.core.marks()
        positions = self.core.positions
        unrealized = ZERO
        realized = ZERO
        for p in positions.open_positions():
            unrealized += FuturesPositions.unrealized_pnl(p, specs[p.product_id], marks[p.product_id])
        for name in self.instruments:
            record = positions._positions.get(name)
            if record is not None:
                realized += record.daily_realized_pnl
        orders_margin = self.pool.held
        return MarginFigures(
            balance=self.pool.balance,
            unrealized=unrealized,
            realized=realized,
            initial_margin=positions.initial_margin(specs, marks) + orders_margin,
            maintenance_margin=positions.maintenance_margin(specs, marks),
            open_orders_margin=orders_margin,
        )

    def position_wire(self, instrument_name: str) -> dict[str, Any]:
        instrument = self.instruments[instrument_name]
        spec = instrument.market.spec
        record = self.core.positions._positions.get(instrument_name)
        size = record.contracts if record is not None else ZERO
        average = record.avg_entry_price if record is not None else ZERO
        realized = record.daily_realized_pnl if record is not None else ZERO
        mark = instrument.mark_price
        floating = (mark - average) * size if size != ZERO else ZERO
        notional = abs(size) * mark
        initial = notional * spec.initial_margin_rate
        maintenance = notional * spec.maintenance_margin_rate
        direction = "zero" if size == ZERO else ("buy" if size > ZERO else "sell")
        figures = self.figures()
        liquidation = ZERO
        if size != ZERO:
            # the price at which equity would fall to maintenance margin, all else held
            cushion = figures.equity - figures.maintenance_margin
            liquidation = max(ZERO, mark - cushion / size)
        return {
            "instrument_name": instrument_name,
            "kind": "future",
            "direction": direction,
            "size": size,
            "size_currency": size,
            "average_price": average.quantize(_PRICE),
            "mark_price": mark,
            "index_price": instrument.index_price,
            "floating_profit_loss": floating.quantize(_PRICE),
            "realized_profit_loss": realized.quantize(_PRICE),
            "total_profit_loss": (floating + realized).quantize(_PRICE),
            "initial_margin": initial.quantize(_PRICE),
            "maintenance_margin": maintenance.quantize(_PRICE),
            "open_orders_margin": ZERO,
            "estimated_liquidation_price": liquidation.quantize(_PRICE),
            "leverage": int(self.leverage[instrument_name]),
            "delta": size,
            "settlement_price": mark,
            "interest_value": ZERO,
            "realized_funding": ZERO,
        }

    def summary_wire(self, extended: bool, limits: dict[str, Any]) -> dict[str, Any]:
        f = self.figures()
        summary: dict[str, Any] = {
            "currency": SETTLEMENT,
            "balance": f.balance.quantize(_PRICE),
            "equity": f.equity.quantize(_PRICE),
            "margin_balance": f.equity.quantize(_PRICE),
            "available_funds": f.available_funds.quantize(_PRICE),
            "available_withdrawal_funds": max(ZERO, min(f.balance, f.available_funds)).quantize(_PRICE),
            "initial_margin": f.initial_margin.quantize(_PRICE),
            "maintenance_margin": f.maintenance_margin.quantize(_PRICE),
            "projected_initial_margin": f.initial_margin.quantize(_PRICE),
            "projected_maintenance_margin": f.maintenance_margin.quantize(_PRICE),
            "session_upl": f.unrealized.quantize(_PRICE),
            "session_rpl": f.realized.quantize(_PRICE),
            "total_pl": (f.unrealized + f.realized).quantize(_PRICE),
            "futures_pl": (f.unrealized + f.realized).quantize(_PRICE),
            "fee_balance": ZERO,
            "margin_model": "cross_sm",
            "cross_collateral_enabled": True,
            "portfolio_margining_enabled": False,
            "delta_total": sum(
                (
                    p.contracts * self.instruments[p.product_id].mark_price
                    for p in self.core.positions.open_positions()
                ),
                ZERO,
            ).quantize(_PRICE),
            "limits": limits,
        }
        if extended:
            summary["fees"] = []
        return summary
