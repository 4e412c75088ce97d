"""`EngineView`: the engine's account and market, as the risk rules read them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.trading.engine import Engine


class EngineView:
    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def best_bid_ask(self, product_id: str) -> tuple[Decimal | None, Decimal | None]:
        return self._engine.feed.best_bid_ask(product_id)

    def position(self, product_id: str) -> Decimal:
        return self._engine.portfolio.position(product_id)

    def available(self, currency: str) -> Decimal | None:
        return self._engine.portfolio.available(currency)

    def currencies(self, product_id: str) -> tuple[str, str] | None:
        currencies = self._engine.portfolio.currencies
        if product_id in currencies:
            return currencies[product_id]
        base, _, quote = product_id.partition("-")  # not listed yet: spot naming
        return (base, quote) if quote and "-" not in quote else None

    def open_order_count(self, product_id: str | None = None) -> int:
        engine = self._engine
        if product_id is None:
            return engine._open_total
        return engine._open_by_product.get(product_id, 0)

    def daily_pnl(self) -> Decimal:
        feed = self._engine.feed

        def mark(product_id: str) -> Decimal | None:
            bid, ask = feed.best_bid_ask(product_id)
            return (bid + ask) / 2 if bid is not None and ask is not None else None

        return self._engine.portfolio.daily_pnl(mark)
