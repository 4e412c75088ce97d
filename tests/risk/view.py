"""An account and market the rules can be checked against: plain values a test sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.risk.view import MarginSnapshot


@dataclass
class AccountView:
    bid: Decimal | None = Decimal("100")
    ask: Decimal | None = Decimal("101")
    positions: dict[str, Decimal] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {"USD": Decimal("1000000"), "BTC": Decimal("100")}
    )
    open_orders: dict[str, int] = field(default_factory=dict)
    pnl: Decimal = Decimal("0")
    marks: dict[str, Decimal] = field(default_factory=dict)
    margins: dict[str, MarginSnapshot] = field(default_factory=dict)

    def best_bid_ask(self, product_id: str) -> tuple[Decimal | None, Decimal | None]:
        return self.bid, self.ask

    def position(self, product_id: str) -> Decimal:
        return self.positions.get(product_id, Decimal("0"))

    def available(self, currency: str) -> Decimal | None:
        return self.balances.get(currency)

    def currencies(self, product_id: str) -> tuple[str, str] | None:
        if product_id.endswith(("-CDE", "-PERPETUAL")):
            return None
        base, quote = product_id.split("-")
        return base, quote

    def open_order_count(self, product_id: str | None = None) -> int:
        if product_id is None:
            return sum(self.open_orders.values())
        return self.open_orders.get(product_id, 0)

    def daily_pnl(self) -> Decimal:
        return self.pnl

    def mark_price(self, product_id: str) -> Decimal | None:
        return self.marks.get(product_id)

    def margin(self, product_id: str) -> MarginSnapshot | None:
        return self.margins.get(product_id)
