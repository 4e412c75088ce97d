"""The Coinbase Exchange REST API for HMAC keys (https://docs.cdp.coinbase.com/exchange/reference), reached as
`client.exchange` on a `Client` holding an `ExchangeKey`.

Requests go through the client's one pipeline: its transport (HMAC signed in Rust over the exact bytes sent),
rate limiter (Exchange's public, private and `/fills` pools), retries and typed errors. An order is keyed by
`client_oid`: a create whose response was lost is settled by `GET /orders/client:{client_oid}` before
anything is sent again, and a retry resends the same bytes under the same `client_oid`, so an order is never
placed twice.

Lists run newest first. A page call returns one `ExchangePage` with its `before`/`after` cursors (Coinbase's
`CB-BEFORE`/`CB-AFTER` headers); `iter_*` walks every page as an async iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import orjson

from engine.errors import ConfigError, NotFound
from engine.net.paths import path_segment
from engine.net.pipeline import Confirmed
from engine.net.retry import Idempotency
from engine.net.wire import Amount, Json, ServerTime, as_str, decimal_str, new_client_order_id, timestamp_str
from engine.ratelimit import EndpointClass, Priority
from engine.venues.exchange.orders import order_body
from engine.venues.exchange.types import (
    CancelAfter,
    Candle,
    Conversion,
    Currency,
    ExchangeAccount,
    ExchangeBook,
    ExchangeFill,
    ExchangeOrder,
    ExchangeOrderType,
    ExchangeProduct,
    ExchangeTicker,
    ExchangeTrade,
    Fees,
    Hold,
    LedgerEntry,
    OrderSide,
    ProductStats,
    Profile,
    SelfTradePrevention,
    StopType,
    TimeInForce,
)

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from engine.net.pipeline import Pipeline

__all__ = ["REST_URLS", "ExchangeApi", "ExchangePage"]

REST_URLS = {  # a Client's base_url for each Exchange environment
    "production": "https://api.exchange.coinbase.com",
    "sandbox": "https://api-public.sandbox.exchange.coinbase.com",
}

T = TypeVar("T")

_PUBLIC, _PRIVATE, _FILLS = EndpointClass.PUBLIC, EndpointClass.PRIVATE, EndpointClass.FILLS
_OPEN_STATUSES = ("open", "pending", "active")
_MAX_PAGE = 1000  # Coinbase's largest `limit`


@dataclass(frozen=True, slots=True)
class ExchangePage(Generic[T]):
    """One page of a list, newest first. `after` fetches the next older page, `before` the newer one; either
    is None when Coinbase sent no cursor. Iterable and indexable like the list it holds."""

    items: tuple[T, ...]
    before: str | None
    after: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


def _query(params: dict[str, Any]) -> str:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((name, str(v)) for v in value)
        else:
            pairs.append((name, str(value)))
    return urlencode(pairs)


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
        raise ValueError(f"limit must be an int from 1 to {_MAX_PAGE}, got {limit!r}")
    return limit


class ExchangeApi:
    """`client.exchange`: the Exchange API. Needs an Exchange (HMAC) key."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def _check(self) -> None:
        if self._pipeline.key_kind != "exchange":
            raise ConfigError(
                "Exchange API endpoints need an Exchange key (engine.auth.ExchangeKey); "
                "this client holds a CDP key"
            )

    async def _get(
        self,
        path: str,
        query: str = "",
        endpoint: EndpointClass = _PRIVATE,
        priority: Priority = Priority.NORMAL,
    ) -> Any:
        self._check()
        public = endpoint is _PUBLIC
        return await self._pipeline.call(
            "GET", path, query=query, endpoint=endpoint, signed=not public, priority=priority
        )

    async def _page(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Json], T],
        endpoint: EndpointClass = _PRIVATE,
    ) -> ExchangePage[T]:
        self._check()
        data, headers = await self._pipeline.call(
            "GET", path, query=_query(params), endpoint=endpoint, signed=endpoint is not _PUBLIC,
            with_headers=True,
        )  # fmt: skip
        return _page_of(data, headers, parse)

    async def _walk(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Json], T],
        endpoint: EndpointClass = _PRIVATE,
    ) -> AsyncIterator[T]:
        limit = params.get("limit") or 100
        while True:
            page = await self._page(path, params, parse, endpoint)
            for item in page.items:
                yield item
            if page.after is None or len(page.items) < limit:
                return
            params = {**params, "after": page.after, "before": None}

    # ---- public market data ---------------------------------------------------------------------------
    async def time(self) -> ServerTime:
        return ServerTime.parse(await self._get("/time", endpoint=_PUBLIC))

    async def products(self) -> list[ExchangeProduct]:
        return [ExchangeProduct.parse(p) for p in await self._get("/products", endpoint=_PUBLIC)]

    async def product(self, product_id: str) -> ExchangeProduct:
        path = f"/products/{path_segment(product_id, 'product_id')}"
        return ExchangeProduct.parse(await self._get(path, endpoint=_PUBLIC))

    async def book(self, product_id: str, *, level: int = 2) -> ExchangeBook:
        """The order book: level 1 (best bid and ask), 2 (every price level) or 3 (every order)."""
        if level not in (1, 2, 3):
            raise ValueError(f"level must be 1, 2 or 3, got {level!r}")
        path = f"/products/{path_segment(product_id, 'product_id')}/book"
        return ExchangeBook.parse(product_id, await self._get(path, f"level={level}", _PUBLIC))

    async def ticker(self, product_id: str) -> ExchangeTicker:
        path = f"/products/{path_segment(product_id, 'product_id')}/ticker"
        return ExchangeTicker.parse(product_id, await self._get(path, endpoint=_PUBLIC))

    async def trades(
        self, product_id: str, *, limit: int = 100, before: str | None = None, after: str | None = None
    ) -> ExchangePage[ExchangeTrade]:
        """The latest trades, newest first; `side` is the maker's (Exchange's convention)."""
        path = f"/products/{path_segment(product_id, 'product_id')}/trades"
        params = {"limit": _limit(limit), "before": before, "after": after}
        return await self._page(path, params, lambda t: ExchangeTrade.parse(product_id, t), _PUBLIC)

    async def candles(
        self,
        product_id: str,
        *,
        granularity: int = 60,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> list[Candle]:
        """Candles newest first; `granularity` in seconds (60, 300, 900, 3600, 21600 or 86400), at most
        300 of them per call."""
        if granularity not in (60, 300, 900, 3600, 21600, 86400):
            raise ValueError(f"granularity must be 60, 300, 900, 3600, 21600 or 86400, got {granularity!r}")
        params: dict[str, Any] = {"granularity": granularity}
        if start is not None:
            params["start"] = timestamp_str(start, "start")
        if end is not None:
            params["end"] = timestamp_str(end, "end")
        path = f"/products/{path_segment(product_id, 'product_id')}/candles"
        return [Candle.parse(row) for row in await self._get(path, _query(params), _PUBLIC)]

    async def stats(self, product_id: str) -> ProductStats:
        path = f"/products/{path_segment(product_id, 'product_id')}/stats"
        return ProductStats.parse(await self._get(path, endpoint=_PUBLIC))

    async def currencies(self) -> list[Currency]:
        return [Currency.parse(c) for c in await self._get("/currencies", endpoint=_PUBLIC)]

    async def currency(self, currency_id: str) -> Currency:
        path = f"/currencies/{path_segment(currency_id, 'currency_id')}"
        return Currency.parse(await self._get(path, endpoint=_PUBLIC))

    # ---- accounts -------------------------------------------------------------------------------------
    async def accounts(self) -> list[ExchangeAccount]:
        return [ExchangeAccount.parse(a) for a in await self._get("/accounts")]

    async def account(self, account_id: str) -> ExchangeAccount:
        return ExchangeAccount.parse(await self._get(f"/accounts/{path_segment(account_id, 'account_id')}"))

    async def holds_page(
        self, account_id: str, *, limit: int = 100, before: str | None = None, after: str | None = None
    ) -> ExchangePage[Hold]:
        path = f"/accounts/{path_segment(account_id, 'account_id')}/holds"
        return await self._page(path, {"limit": _limit(limit), "before": before, "after": after}, Hold.parse)

    def iter_holds(self, account_id: str, *, page_size: int = 100) -> AsyncIterator[Hold]:
        path = f"/accounts/{path_segment(account_id, 'account_id')}/holds"
        return self._walk(path, {"limit": _limit(page_size)}, Hold.parse)

    async def ledger_page(
        self, account_id: str, *, limit: int = 100, before: str | None = None, after: str | None = None
    ) -> ExchangePage[LedgerEntry]:
        path = f"/accounts/{path_segment(account_id, 'account_id')}/ledger"
        params = {"limit": _limit(limit), "before": before, "after": after}
        return await self._page(path, params, LedgerEntry.parse)

    def iter_ledger(self, account_id: str, *, page_size: int = 100) -> AsyncIterator[LedgerEntry]:
        path = f"/accounts/{path_segment(account_id, 'account_id')}/ledger"
        return self._walk(path, {"limit": _limit(page_size)}, LedgerEntry.parse)

    # ---- orders ---------------------------------------------------------------------------------------
    async def create_order(
        self,
        product_id: str,
        side: OrderSide | str,
        *,
        type: ExchangeOrderType | str = ExchangeOrderType.LIMIT,
        size: Amount | None = None,
        price: Amount | None = None,
        funds: Amount | None = None,
        time_in_force: TimeInForce | str | None = None,
        cancel_after: CancelAfter | str | None = None,
        post_only: bool | None = None,
        stop: StopType | str | None = None,
        stop_price: Amount | None = None,
        stp: SelfTradePrevention | str | None = None,
        max_floor: Amount | None = None,
        client_oid: str | None = None,
        timeout_s: float | None = None,
    ) -> ExchangeOrder:
        """Place an order, keyed by `client_oid` (a UUID, generated when not given) so it is never placed
        twice.

        limit: `size` and `price`, with `time_in_force` GTC (default), GTT (+ `cancel_after` min/hour/day),
        IOC or FOK, `post_only`, `max_floor`. market: exactly one of `size` or `funds`. A stop: a limit order
        with `stop` (loss or entry) and `stop_price`. Raises OrderRejected (Coinbase's message),
        OutcomeUnknown (the order may exist: look it up by `client_oid` later), AuthError, RateLimited,
        ExchangeUnavailable.
        """
        self._check()
        client_oid = client_oid or new_client_order_id()
        body = order_body(
            client_oid, product_id, side, type=type, size=size, price=price, funds=funds,
            time_in_force=time_in_force, cancel_after=cancel_after, post_only=post_only, stop=stop,
            stop_price=stop_price, stp=stp, max_floor=max_floor,
        )  # fmt: skip
        return await self.submit_order(orjson.dumps(body), client_oid, timeout_s=timeout_s)

    async def submit_order(
        self, body: bytes, client_oid: str, *, timeout_s: float | None = None
    ) -> ExchangeOrder:
        """Send a rendered order body (carrying `client_oid`): the same bytes on every attempt."""
        self._check()
        pipeline = self._pipeline
        lookup = f"/orders/client:{path_segment(client_oid, 'client_oid')}"

        async def confirm() -> Json | None:
            try:
                found: Json = await pipeline.call("GET", lookup, timeout_s=timeout_s)
            except NotFound:
                return None
            return found

        data = await pipeline.call(
            "POST",
            "/orders",
            body=body,
            idempotency=Idempotency.KEYED,
            confirm=confirm,
            client_order_id=client_oid,
            timeout_s=timeout_s,
        )
        if isinstance(data, Confirmed):
            return ExchangeOrder.parse(data.value, confirmed_by_lookup=True)
        return ExchangeOrder.parse(data)

    async def get_order(self, order_id: str, *, priority: Priority = Priority.NORMAL) -> ExchangeOrder:
        """One order by id; `priority` LOW for a background read that must not delay orders."""
        path = f"/orders/{path_segment(order_id, 'order_id')}"
        return ExchangeOrder.parse(await self._get(path, priority=priority))

    async def get_order_by_client_oid(self, client_oid: str) -> ExchangeOrder:
        segment = path_segment(client_oid, "client_oid")
        return ExchangeOrder.parse(await self._get(f"/orders/client:{segment}"))

    async def find_order(self, client_oid: str) -> ExchangeOrder | None:
        """The order placed under `client_oid`, or None if the Exchange has none."""
        try:
            return await self.get_order_by_client_oid(client_oid)
        except NotFound:
            return None

    def _order_params(
        self, status: str | Sequence[str], product_id: str | None, limit: int
    ) -> dict[str, Any]:
        statuses = [status] if isinstance(status, str) else list(status)
        for value in statuses:
            if value not in ("open", "pending", "active", "done", "rejected", "received", "all"):
                raise ValueError(f"unknown order status {value!r}")
        return {"status": statuses, "product_id": product_id, "limit": _limit(limit)}

    async def list_orders(
        self,
        *,
        status: str | Sequence[str] = _OPEN_STATUSES,
        product_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
        after: str | None = None,
    ) -> ExchangePage[ExchangeOrder]:
        """One page of orders, newest first (by default the open ones: open, pending, active)."""
        params = self._order_params(status, product_id, limit)
        params.update(before=before, after=after)
        return await self._page("/orders", params, ExchangeOrder.parse)

    def iter_orders(
        self,
        *,
        status: str | Sequence[str] = _OPEN_STATUSES,
        product_id: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[ExchangeOrder]:
        """Every matching order, newest first, page after page."""
        self._check()
        return self._walk("/orders", self._order_params(status, product_id, page_size), ExchangeOrder.parse)

    async def cancel_order(self, order_id: str, *, product_id: str | None = None) -> str:
        """Cancel one order (by id, or `client:<client_oid>`); returns the cancelled order's id."""
        self._check()
        data = await self._pipeline.call(
            "DELETE",
            f"/orders/{path_segment(order_id, 'order_id')}",
            query=_query({"product_id": product_id}),
            priority=Priority.HIGH,
            idempotency=Idempotency.SAFE,
        )
        return as_str(data)

    async def cancel_order_by_client_oid(self, client_oid: str, *, product_id: str | None = None) -> str:
        return await self.cancel_order(f"client:{client_oid}", product_id=product_id)

    async def cancel_all(self, *, product_id: str | None = None) -> list[str]:
        """Cancel every open order (of one product, if given); returns the cancelled orders' ids."""
        self._check()
        data = await self._pipeline.call(
            "DELETE",
            "/orders",
            query=_query({"product_id": product_id}),
            priority=Priority.HIGH,
            idempotency=Idempotency.SAFE,
        )
        return [as_str(i) for i in data or ()]

    # ---- fills, fees, profiles, conversions -----------------------------------------------------------
    def _fill_params(self, order_id: str | None, product_id: str | None, limit: int) -> dict[str, Any]:
        if order_id is None and product_id is None:
            raise ValueError("fills needs order_id or product_id")
        return {"order_id": order_id, "product_id": product_id, "limit": _limit(limit)}

    async def fills(
        self,
        *,
        order_id: str | None = None,
        product_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
        after: str | None = None,
    ) -> ExchangePage[ExchangeFill]:
        """One page of fills, newest first. Fills draw from the Exchange's separate `/fills` pool."""
        params = self._fill_params(order_id, product_id, limit)
        params.update(before=before, after=after)
        return await self._page("/fills", params, ExchangeFill.parse, _FILLS)

    def iter_fills(
        self, *, order_id: str | None = None, product_id: str | None = None, page_size: int = 100
    ) -> AsyncIterator[ExchangeFill]:
        self._check()
        return self._walk(
            "/fills", self._fill_params(order_id, product_id, page_size), ExchangeFill.parse, _FILLS
        )

    async def fees(self) -> Fees:
        return Fees.parse(await self._get("/fees"))

    async def profiles(self) -> list[Profile]:
        return [Profile.parse(p) for p in await self._get("/profiles")]

    async def profile(self, profile_id: str) -> Profile:
        return Profile.parse(await self._get(f"/profiles/{path_segment(profile_id, 'profile_id')}"))

    async def convert(
        self, from_currency: str, to_currency: str, amount: Amount, *, profile_id: str | None = None
    ) -> Conversion:
        """Convert between USD and USDC (1:1). Not keyed: a lost response is not retried (it may have
        converted); look at the ledger to settle it."""
        if {from_currency, to_currency} != {"USD", "USDC"}:
            raise ValueError("conversions run between USD and USDC")
        self._check()
        body: dict[str, Any] = {
            "from": from_currency,
            "to": to_currency,
            "amount": decimal_str(amount, "amount"),
        }
        if profile_id is not None:
            body["profile_id"] = profile_id
        data = await self._pipeline.call(
            "POST", "/conversions", body=orjson.dumps(body), idempotency=Idempotency.UNSAFE
        )
        return Conversion.parse(data)

    async def conversion(self, conversion_id: str) -> Conversion:
        segment = path_segment(conversion_id, "conversion_id")
        return Conversion.parse(await self._get(f"/conversions/{segment}"))


def _page_of(data: Any, headers: CIMultiDictProxy[str], parse: Callable[[Json], T]) -> ExchangePage[T]:
    return ExchangePage(
        tuple(parse(item) for item in data or ()),
        headers.get("cb-before") or None,
        headers.get("cb-after") or None,
    )
