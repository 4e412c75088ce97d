"""Portfolios: list, create, rename, delete, move funds between them, and a portfolio's breakdown.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api (Portfolios)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import ConfigError, InvalidValue
from engine.net.paths import path_segment
from engine.net.retry import Idempotency
from engine.net.wire import Amount, Json, as_str, dec, decimal_str
from engine.venues.advanced.query import query_string
from engine.venues.advanced.types import Money

if TYPE_CHECKING:
    from engine.net.pipeline import Pipeline

__all__ = ["FundsMoved", "Portfolio", "PortfolioBreakdown", "PortfoliosApi", "SpotPosition"]

PORTFOLIOS = "/api/v3/brokerage/portfolios"


@dataclass(frozen=True, slots=True)
class Portfolio:
    uuid: str
    name: str
    type: str  # DEFAULT, CONSUMER, INTX
    deleted: bool

    @classmethod
    def parse(cls, data: Json) -> Portfolio:
        return cls(
            as_str(data.get("uuid")), as_str(data.get("name")), as_str(data.get("type")),
            bool(data.get("deleted")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpotPosition:
    asset: str
    account_uuid: str
    total_balance_fiat: Decimal | None
    total_balance_crypto: Decimal | None
    available_to_trade_fiat: Decimal | None
    available_to_trade_crypto: Decimal | None
    allocation: Decimal | None
    cost_basis: Money | None
    is_cash: bool

    @classmethod
    def parse(cls, data: Json) -> SpotPosition:
        # Coinbase sends these as JSON numbers: through str so a float's binary noise is not kept.
        def num(name: str) -> Decimal | None:
            value = data.get(name)
            return dec(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            as_str(data.get("asset")),
            as_str(data.get("account_uuid")),
            num("total_balance_fiat"),
            num("total_balance_crypto"),
            num("available_to_trade_fiat"),
            num("available_to_trade_crypto"),
            num("allocation"),
            Money.parse(data.get("cost_basis")),
            bool(data.get("is_cash")),
        )


@dataclass(frozen=True, slots=True)
class PortfolioBreakdown:
    portfolio: Portfolio
    total_balance: Money | None
    total_cash_equivalent_balance: Money | None
    total_crypto_balance: Money | None
    futures_unrealized_pnl: Money | None
    perp_unrealized_pnl: Money | None
    spot_positions: list[SpotPosition]
    futures_positions: list[Json]
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> PortfolioBreakdown:
        balances = data.get("portfolio_balances") or {}
        return cls(
            Portfolio.parse(data.get("portfolio") or {}),
            Money.parse(balances.get("total_balance")),
            Money.parse(balances.get("total_cash_equivalent_balance")),
            Money.parse(balances.get("total_crypto_balance")),
            Money.parse(balances.get("futures_unrealized_pnl")),
            Money.parse(balances.get("perp_unrealized_pnl")),
            [SpotPosition.parse(p) for p in data.get("spot_positions") or ()],
            list(data.get("futures_positions") or ()),
            data,
        )


@dataclass(frozen=True, slots=True)
class FundsMoved:
    source_portfolio_uuid: str
    target_portfolio_uuid: str


class PortfoliosApi:
    """`client.portfolios`. Needs a CDP key."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def _call(
        self,
        method: str,
        path: str = "",
        body: dict[str, Any] | None = None,
        query: str = "",
        idempotency: Idempotency = Idempotency.SAFE,
    ) -> Any:
        if self._pipeline.key_kind != "cdp":
            raise ConfigError("portfolio endpoints need a CDP key (engine.auth.CdpKey)")
        return await self._pipeline.call(
            method,
            f"{PORTFOLIOS}{path}",
            query=query,
            body=orjson.dumps(body) if body is not None else None,
            idempotency=idempotency,
        )

    @staticmethod
    def _name(name: str) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise InvalidValue("name", "must be 1 to 128 characters")
        return name

    async def list(self, *, portfolio_type: str | None = None) -> list[Portfolio]:
        data = await self._call("GET", query=query_string({"portfolio_type": portfolio_type}))
        return [Portfolio.parse(p) for p in data.get("portfolios") or ()]

    async def create(self, name: str) -> Portfolio:
        # A second create would make a second portfolio: retried only when it provably never left.
        data = await self._call("POST", body={"name": self._name(name)}, idempotency=Idempotency.UNSAFE)
        return Portfolio.parse(data.get("portfolio") or {})

    async def edit(self, portfolio_uuid: str, name: str) -> Portfolio:
        path = f"/{path_segment(portfolio_uuid, 'portfolio_uuid')}"
        data = await self._call("PUT", path, {"name": self._name(name)})
        return Portfolio.parse(data.get("portfolio") or {})

    async def delete(self, portfolio_uuid: str) -> None:
        await self._call("DELETE", f"/{path_segment(portfolio_uuid, 'portfolio_uuid')}")

    async def breakdown(self, portfolio_uuid: str, *, currency: str | None = None) -> PortfolioBreakdown:
        path = f"/{path_segment(portfolio_uuid, 'portfolio_uuid')}"
        data = await self._call("GET", path, query=query_string({"currency": currency}))
        return PortfolioBreakdown.parse(data.get("breakdown") or {})

    async def move_funds(
        self, value: Amount, currency: str, source_portfolio_uuid: str, target_portfolio_uuid: str
    ) -> FundsMoved:
        """Move `value` of `currency` between two portfolios. Not retried once it may have been sent: a
        second move would move the funds twice."""
        body = {
            "funds": {"value": decimal_str(value, "value"), "currency": currency},
            "source_portfolio_uuid": source_portfolio_uuid,
            "target_portfolio_uuid": target_portfolio_uuid,
        }
        data = await self._call("POST", "/move_funds", body, idempotency=Idempotency.UNSAFE)
        return FundsMoved(
            as_str(data.get("source_portfolio_uuid")), as_str(data.get("target_portfolio_uuid"))
        )
