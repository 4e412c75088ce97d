"""The gateway's instruments: linear `{BASE}_USDC-PERPETUAL` perpetuals, each a market of the simulator's
own matching core, sized in the base coin.

The core's futures arithmetic counts "contracts" times `contract_size`; the gateway counts base coin, so the
core sees contract size 1 and an increment of the instrument's contract size: one unit of the core is one
coin, and a position's notional is amount times price, as it is on a linear perpetual.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from engine.sim.book import ZERO
from engine.sim.config import ProductSpec
from engine.sim.derivatives.config import InstrumentSpec
from engine.sim.market import Market

SETTLEMENT = "USDC"
KIND = "future"


class Instrument:
    """An instrument, its market, and the index the mark is quoted against."""

    __slots__ = ("creation_ms", "id", "index_price", "market", "premium", "spec")

    def __init__(self, spec: InstrumentSpec, instrument_id: int, market: Market, creation_ms: int) -> None:
        self.spec = spec
        self.id = instrument_id
        self.market = market
        self.creation_ms = creation_ms
        self.premium = 0.0  # mark over index, as a fraction
        self.index_price = spec.start_price

    @property
    def name(self) -> str:
        return self.spec.instrument_name

    @property
    def mark_price(self) -> Decimal:
        return self.market.mid

    def step_index(self, rng: random.Random, bound: float) -> None:
        """The index follows the mark, off by a premium that walks inside +-bound."""
        self.premium = max(-bound, min(bound, self.premium + rng.gauss(0.0, bound / 4)))
        raw = self.mark_price / Decimal(repr(1.0 + self.premium))
        self.index_price = raw.quantize(Decimal("0.0001"))

    def amount_ok(self, amount: Decimal) -> bool:
        spec = self.spec
        return amount >= spec.min_trade_amount and amount % spec.contract_size == ZERO

    def to_wire(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "instrument_name": spec.instrument_name,
            "instrument_id": self.id,
            "kind": KIND,
            "instrument_type": "linear",
            "settlement_period": "perpetual",
            "settlement_currency": SETTLEMENT,
            "base_currency": spec.base_currency,
            "quote_currency": SETTLEMENT,
            "counter_currency": SETTLEMENT,
            "price_index": spec.index_name,
            "contract_size": spec.contract_size,
            "tick_size": spec.tick_size,
            "min_trade_amount": spec.min_trade_amount,
            "max_leverage": spec.max_leverage,
            "maker_commission": 0,
            "taker_commission": 0.0005,
            "is_active": True,
            "creation_timestamp": self.creation_ms,
            "expiration_timestamp": 32503708800000,
            "rfq": False,
            "tick_size_steps": [],
        }


def product_spec(spec: InstrumentSpec) -> ProductSpec:
    """The instrument as the matching core knows it (see the module note on units)."""
    return ProductSpec(
        product_id=spec.instrument_name,
        base_currency="",
        quote_currency=SETTLEMENT,
        start_price=spec.start_price,
        price_increment=spec.tick_size,
        base_increment=spec.contract_size,
        base_min_size=spec.min_trade_amount,
        base_max_size=Decimal(1_000_000),
        quote_min_size=ZERO,
        volatility=spec.volatility,
        level_size_min=spec.level_size_min,
        level_size_max=spec.level_size_max,
        level_step_ticks=spec.level_step_ticks,
        product_type="FUTURE",
        contract_size=Decimal(1),
        contract_root_unit=spec.base_currency,
        display_name=spec.instrument_name,
        maintenance_margin_rate=spec.maintenance_margin_rate,
        fee_per_contract=ZERO,
    )
