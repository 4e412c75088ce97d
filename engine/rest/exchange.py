"""The Coinbase Exchange REST API (HMAC keys): accounts, orders (create, cancel, list, get) and fills.

Exchange orders carry `client_oid`; the Exchange can look an order up by it
(`GET /orders/client:<client_oid>`), which is how a create whose response was lost is settled before anything
is sent again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from engine.errors import ConfigError, NotFound
from engine.ratelimit import EndpointClass, Priority
from engine.rest.orders import Amount, decimal_str, new_client_order_id
from engine.rest.paths import path_segment
from engine.rest.pipeline import Confirmed
from engine.rest.retry import Idempotency
from engine.rest.types import Json, ServerTime, as_str, dec

if TYPE_CHECKING:
    from engine.rest.pipeline import Pipeline

__all__ = [
    "ExchangeAccount",
    "ExchangeApi",
    "ExchangeFill",
    "ExchangeOrder",
    "ExchangeOrderType",
    "TimeInForce",
]


class ExchangeOrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    GTT = "GTT"
    IOC = "IOC"
    FOK = "FOK"


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    id: str
    currency: str
    balance: Decimal | None
    available: Decimal | None
    hold: Decimal | None
    profile_id: str
    trading_enabled: bool

    @classmethod
    def parse(cls, data: Json) -> ExchangeAccount:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("currency")),
            dec(data.get("balance")),
            dec(data.get("available")),
            dec(data.get("hold")),
            as_str(data.get("profile_id")),
            bool(data.get("trading_enabled", True)),
        )


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    id: str
    client_oid: str
    product_id: str
    side: str
    type: str
    status: str
    price: Decimal | None
    size: Decimal | None
    funds: Decimal | None
    filled_size: Decimal | None
    executed_value: Decimal | None
    fill_fees: Decimal | None
    time_in_force: str
    post_only: bool
    created_at: str
    confirmed_by_lookup: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json, *, confirmed_by_lookup: bool = False) -> ExchangeOrder:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("client_oid")),
            as_str(data.get("product_id")),
            as_str(data.get("side")),
            as_str(data.get("type")),
            as_str(data.get("status")),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("funds")),
            dec(data.get("filled_size")),
            dec(data.get("executed_value")),
            dec(data.get("fill_fees")),
            as_str(data.get("time_in_force")),
            bool(data.get("post_only", False)),
            as_str(data.get("created_at")),
            confirmed_by_lookup,
            data,
        )


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    trade_id: str
    order_id: str
    product_id: str
    side: str
    price: Decimal | None
    size: Decimal | None
    fee: Decimal | None
    liquidity: str
    created_at: str

    @classmethod
    def parse(cls, data: Json) -> ExchangeFill:
        return cls(
            as_str(data.get("trade_id")),
            as_str(data.get("order_id")),
            as_str(data.get("product_id")),
            as_str(data.get("side")),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("fee")),
            as_str(data.get("liquidity")),
            as_str(data.get("created_at")),
        )


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

    async def _get(self, path: str, query: str = "", endpoint: EndpointClass = EndpointClass.PRIVATE) -> Any:
        self._check()
        return await self._pipeline.call("GET", path, query=query, endpoint=endpoint)

    async def time(self) -> ServerTime:
        self._check()
        data = await self._pipeline.call("GET", "/time", endpoint=EndpointClass.PUBLIC, signed=False)
        return ServerTime.parse(data)

    async def accounts(self) -> list[ExchangeAccount]:
        return [ExchangeAccount.parse(a) for a in await self._get("/accounts")]

    async def create_order(
        self,
        product_id: str,
        side: str,
        *,
        type: ExchangeOrderType | str = ExchangeOrderType.LIMIT,
        size: Amount | None = None,
        price: Amount | None = None,
        funds: Amount | None = None,
        time_in_force: TimeInForce | str | None = None,
        post_only: bool | None = None,
        client_oid: str | None = None,
        stp: str | None = None,
        timeout_s: float | None = None,
    ) -> ExchangeOrder:
        """Place an order, keyed by `client_oid` (generated when not given) so it is never placed twice."""
        self._check()
        order_type = ExchangeOrderType(type)
        side = side.lower()
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        client_oid = client_oid or new_client_order_id()
        oid_segment = path_segment(client_oid, "client_oid")  # checked before anything is sent
        body: dict[str, Any] = {
            "client_oid": client_oid,
            "product_id": product_id,
            "side": side,
            "type": order_type,
        }
        if order_type is ExchangeOrderType.LIMIT:
            if size is None or price is None:
                raise ValueError("a limit order needs size and price")
            body["price"] = decimal_str(price, "price")
            body["size"] = decimal_str(size, "size")
            if time_in_force is not None:
                body["time_in_force"] = TimeInForce(time_in_force).value
            if post_only is not None:
                body["post_only"] = bool(post_only)
        else:
            if (size is None) == (funds is None):
                raise ValueError("a market order needs exactly one of size or funds")
            if size is not None:
                body["size"] = decimal_str(size, "size")
            else:
                body["funds"] = decimal_str(funds, "funds")
        if stp is not None:
            body["stp"] = stp

        async def confirm() -> Json | None:
            try:
                found: Json = await self._pipeline.call(
                    "GET", f"/orders/client:{oid_segment}", timeout_s=timeout_s
                )
            except NotFound:
                return None
            return found

        data = await self._pipeline.call(
            "POST",
            "/orders",
            body=orjson.dumps(body),
            idempotency=Idempotency.KEYED,
            confirm=confirm,
            client_order_id=client_oid,
            timeout_s=timeout_s,
        )
        if isinstance(data, Confirmed):
            return ExchangeOrder.parse(data.value, confirmed_by_lookup=True)
        return ExchangeOrder.parse(data)

    async def cancel_order(self, order_id: str, *, product_id: str | None = None) -> str:
        """Cancel one order (by id, or `client:<client_oid>`); returns the cancelled order's id."""
        self._check()
        data = await self._pipeline.call(
            "DELETE",
            f"/orders/{path_segment(order_id, 'order_id')}",
            query=urlencode({"product_id": product_id}) if product_id else "",
            priority=Priority.HIGH,
            idempotency=Idempotency.SAFE,
        )
        return as_str(data)

    async def cancel_all(self, *, product_id: str | None = None) -> list[str]:
        self._check()
        data = await self._pipeline.call(
            "DELETE",
            "/orders",
            query=urlencode({"product_id": product_id}) if product_id else "",
            priority=Priority.HIGH,
        )
        return [as_str(i) for i in data or ()]

    async def get_order(self, order_id: str) -> ExchangeOrder:
        return ExchangeOrder.parse(await self._get(f"/orders/{path_segment(order_id, 'order_id')}"))

    async def get_order_by_client_oid(self, client_oid: str) -> ExchangeOrder:
        oid_segment = path_segment(client_oid, "client_oid")
        return ExchangeOrder.parse(await self._get(f"/orders/client:{oid_segment}"))

    async def list_orders(
        self, *, status: str | list[str] = "all", product_id: str | None = None, limit: int = 100
    ) -> list[ExchangeOrder]:
        statuses = [status] if isinstance(status, str) else status
        pairs = [*(("status", s) for s in statuses), ("limit", str(limit))]
        if product_id:
            pairs.append(("product_id", product_id))
        query = urlencode(pairs)
        return [ExchangeOrder.parse(o) for o in await self._get("/orders", query)]

    async def fills(
        self, *, order_id: str | None = None, product_id: str | None = None
    ) -> list[ExchangeFill]:
        """Fills draw from the Exchange's separate `/fills` rate-limit pool."""
        if order_id is None and product_id is None:
            raise ValueError("fills needs order_id or product_id")
        query = urlencode({"order_id": order_id} if order_id else {"product_id": product_id})
        return [ExchangeFill.parse(f) for f in await self._get("/fills", query, EndpointClass.FILLS)]
