"""What the risk rules need to know about the account and the market, as a Protocol the engine implements."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol


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
