"""What the risk gate sees, kept fresh by polling the exchange: best bid/ask, balances, open orders, fills.

Polling REST (a few requests a second, well inside the private budget) keeps the worker to one dependency,
the REST client. Position and daily P&L are measured as the change in the account's balances since the
worker started, valued at the mid: what this worker (and anything else trading the same portfolio) did today.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal

from engine.errors import EngineError
from engine.rest.client import Client

__all__ = ["ExchangeRiskView"]

log = logging.getLogger("engine.worker.view")
_ZERO = Decimal(0)


class ExchangeRiskView:
    """An `engine.risk.RiskView` over the exchange, refreshed by `refresh()` (run on a timer)."""

    def __init__(self, client: Client, products: Iterable[str], *, client_order_prefix: str) -> None:
        self.client = client  # replaced on key rotation
        self.products = tuple(products)
        self._prefix = f"{client_order_prefix}-"
        self._quotes: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._currencies: dict[str, tuple[str, str] | None] = {}
        self._available: dict[str, Decimal] = {}
        self._total: dict[str, Decimal] = {}
        self._start_total: dict[str, Decimal] | None = None
        self._reserved: dict[str, tuple[str, Decimal]] = {}  # client_order_id -> (currency, amount)
        self.open_orders: dict[str, str] = {}  # order_id -> product_id, the engine's own open orders
        self.placed: set[str] = set()  # order ids this worker placed
        self._seen_fills: set[str] = set()
        self.on_fill: Callable[[int], None] | None = None

    # -- RiskView ---------------------------------------------------------------------------------------

    def best_bid_ask(self, product_id: str) -> tuple[Decimal | None, Decimal | None]:
        return self._quotes.get(product_id, (None, None))

    def position(self, product_id: str) -> Decimal:
        pair = self._currencies.get(product_id)
        if pair is None or self._start_total is None:
            return _ZERO
        base = pair[0]
        return self._total.get(base, _ZERO) - self._start_total.get(base, _ZERO)

    def available(self, currency: str) -> Decimal | None:
        if currency not in self._available:
            return None
        reserved = sum((amount for c, amount in self._reserved.values() if c == currency), _ZERO)
        return self._available[currency] - reserved

    def currencies(self, product_id: str) -> tuple[str, str] | None:
        return self._currencies.get(product_id)

    def open_order_count(self, product_id: str | None = None) -> int:
        if product_id is None:
            return len(self.open_orders)
        return sum(1 for p in self.open_orders.values() if p == product_id)

    def daily_pnl(self) -> Decimal:
        if self._start_total is None:
            return _ZERO
        pnl = _ZERO
        counted: set[str] = set()
        for product_id in self.products:
            pair = self._currencies.get(product_id)
            if pair is None:
                continue
            base, quote = pair
            bid, ask = self.best_bid_ask(product_id)
            mid = (bid + ask) / 2 if bid is not None and ask is not None else None
            if base not in counted and mid is not None:
                pnl += (self._total.get(base, _ZERO) - self._start_total.get(base, _ZERO)) * mid
                counted.add(base)
            if quote not in counted:
                pnl += self._total.get(quote, _ZERO) - self._start_total.get(quote, _ZERO)
                counted.add(quote)
        return pnl

    # -- the worker's bookkeeping -----------------------------------------------------------------------

    def reserve(self, client_order_id: str, currency: str, amount: Decimal) -> None:
        """Hold funds for an order in flight until the exchange's balances show its hold."""
        self._reserved[client_order_id] = (currency, amount)

    def release(self, client_order_id: str) -> None:
        self._reserved.pop(client_order_id, None)

    def order_placed(self, order_id: str, product_id: str) -> None:
        self.placed.add(order_id)
        self.open_orders[order_id] = product_id

    async def start(self) -> None:
        """Product currencies once, then a first refresh (the gate fails closed until quotes exist)."""
        for product_id in self.products:
            product = await self.client.product(product_id)
            base = product.raw.get("base_currency_id") or product_id.split("-")[0]
            quote = product.raw.get("quote_currency_id") or product_id.split("-")[-1]
            is_future = product.product_type.upper() == "FUTURE"
            self._currencies[product_id] = None if is_future else (str(base), str(quote))
        await self.refresh()
        self._start_total = dict(self._total)

    async def refresh(self) -> None:
        results = await asyncio.gather(
            self._refresh_quotes(),
            self._refresh_balances(),
            self._refresh_open_orders(),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, EngineError | OSError | TimeoutError):
                log.warning("risk view refresh failed: %s", type(result).__name__)
            elif isinstance(result, BaseException):
                raise result
        await self._refresh_fills()

    async def _refresh_quotes(self) -> None:
        if not self.products:
            return
        for book in await self.client.best_bid_ask(list(self.products)):
            bid, ask = book.best_bid, book.best_ask
            self._quotes[book.product_id] = (
                bid.price if bid is not None else None,
                ask.price if ask is not None else None,
            )

    async def _refresh_balances(self) -> None:
        available: dict[str, Decimal] = {}
        total: dict[str, Decimal] = {}
        cursor: str | None = None
        while True:
            page = await self.client.accounts(limit=250, cursor=cursor)
            for account in page.items:
                free = account.available_balance.value if account.available_balance else _ZERO
                hold = account.hold.value if account.hold else _ZERO
                available[account.currency] = available.get(account.currency, _ZERO) + free
                total[account.currency] = total.get(account.currency, _ZERO) + free + hold
            if not page.has_next or not page.cursor:
                break
            cursor = page.cursor
        self._available, self._total = available, total

    async def _refresh_open_orders(self) -> None:
        if not self.products:
            return
        page = await self.client.list_orders(product_ids=list(self.products), order_status="OPEN", limit=1000)
        self.open_orders = {
            order.order_id: order.product_id
            for order in page.items
            if order.client_order_id.startswith(self._prefix)
        }

    async def _refresh_fills(self) -> None:
        if not self.placed:
            return
        page = await self.client.fills(product_ids=list(self.products), limit=250)
        fresh = [f for f in page.items if f.order_id in self.placed and f.entry_id not in self._seen_fills]
        self._seen_fills.update(f.entry_id for f in fresh)
        if fresh and self.on_fill is not None:
            self.on_fill(len(fresh))

    async def list_own_open_orders(self) -> list[str]:
        """The engine's open orders as the exchange sees them now (for cancel-on-exit)."""
        await self._refresh_open_orders()
        return list(self.open_orders)
