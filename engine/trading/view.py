"""`EngineView`: the engine's account and market, as the risk rules read them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, cast

from engine.risk.view import MarginSnapshot
from engine.venues.base import MarginVenue

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

    def _margin_venue(self) -> MarginVenue | None:
        venue = self._engine.venue
        return cast(MarginVenue, venue) if venue.capabilities.margin else None

    def mark_price(self, product_id: str) -> Decimal | None:
        venue = self._margin_venue()
        return None if venue is None else venue.mark_price(product_id)

    def margin(self, product_id: str) -> MarginSnapshot | None:
        venue = self._margin_venue()
        if venue is None:
            return None
        account = venue.margin_account()
        position = venue.position_risk(product_id)
        rate = None
        if position is not None and position.size and position.maintenance_margin and position.mark_price:
            rate = position.maintenance_margin / (abs(position.size) * position.mark_price)
        return MarginSnapshot(
            equity=None if account is None else account.equity,
            initial_margin=None if account is None else account.initial_margin,
            maintenance_margin=None if account is None else account.maintenance_margin,
            available_funds=None if account is None else account.available_funds,
            leverage=venue.leverage(product_id),
            maintenance_rate=rate,
        )
