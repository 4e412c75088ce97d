"""What the risk rules need to know about the account and the market, as a Protocol the engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MarginSnapshot:
    """A margined account as one product's orders see it (every figure None when the venue has not said).

    `leverage` is the product's: new exposure needs 1/leverage of its notional as initial margin.
    `maintenance_rate` is the maintenance margin per unit of the product's notional.
    """

    equity: Decimal | None
    initial_margin: Decimal | None
    maintenance_margin: Decimal | None
    available_funds: Decimal | None
    leverage: Decimal | None
    maintenance_rate: Decimal | None


class RiskView(Protocol):
    def best_bid_ask(self, product_id: str) -> tuple[Decimal | None, Decimal | None]:
        """The current best bid and ask, None for a side that is empty or unknown."""
        ...

    def position(self, product_id: str) -> Decimal:
        """Signed base-unit position (negative is short)."""
        ...

    def available(self, currency: str) -> Decimal | None:
        """Balance not on hold (the engine's own open orders included), or None when unknown."""
        ...

    def currencies(self, product_id: str) -> tuple[str, str] | None:
        """(base, quote) of a spot product; None for products whose orders are margined (futures)."""
        ...

    def open_order_count(self, product_id: str | None = None) -> int:
        """Open orders, in one product or in all."""
        ...

    def daily_pnl(self) -> Decimal:
        """Profit and loss since the start of the trading day, in quote currency (realized + unrealized)."""
        ...

    def mark_price(self, product_id: str) -> Decimal | None:
        """The venue's mark price of a margined product (perpetuals); None on spot or when unknown."""
        ...

    def margin(self, product_id: str) -> MarginSnapshot | None:
        """The margined account behind a product's orders; None when the product is not margined here."""
        ...
