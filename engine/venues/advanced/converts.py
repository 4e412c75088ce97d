"""Converts: quote a conversion between two of the user's accounts, look it up, commit it.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api (Convert)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import ConfigError
from engine.net.paths import path_segment
from engine.net.retry import Idempotency
from engine.net.wire import Amount, Json, as_str, dec, decimal_str
from engine.venues.advanced.query import query_string
from engine.venues.advanced.types import Money

if TYPE_CHECKING:
    from engine.net.pipeline import Pipeline

__all__ = ["ConvertTrade", "ConvertsApi"]

CONVERT = "/api/v3/brokerage/convert"


@dataclass(frozen=True, slots=True)
class ConvertTrade:
    """A convert quote or trade. `amount` is what the target account receives, `total` what the source
    pays (fee included)."""

    id: str
    status: str
    source_currency: str
    target_currency: str
    source_id: str
    target_id: str
    user_entered_amount: Money | None
    amount: Money | None
    subtotal: Money | None
    total: Money | None
    total_fee: Money | None
    source_to_target: Decimal | None
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> ConvertTrade:
        fee = data.get("total_fee") or {}
        unit = data.get("unit_price") or {}
        rate = unit.get("source_to_target") or {}
        return cls(
            as_str(data.get("id")),
            as_str(data.get("status")),
            as_str(data.get("source_currency")),
            as_str(data.get("target_currency")),
            as_str(data.get("source_id")),
            as_str(data.get("target_id")),
            Money.parse(data.get("user_entered_amount")),
            Money.parse(data.get("amount")),
            Money.parse(data.get("subtotal")),
            Money.parse(data.get("total")),
            Money.parse(fee.get("amount")) if isinstance(fee, dict) else None,
            dec(rate.get("value")) if isinstance(rate, dict) else None,
            data,
        )


class ConvertsApi:
    """`client.converts`. Needs a CDP key."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: str = "",
        idempotency: Idempotency = Idempotency.SAFE,
    ) -> ConvertTrade:  # fmt: skip
        if self._pipeline.key_kind != "cdp":
            raise ConfigError("convert endpoints need a CDP key (engine.auth.CdpKey)")
        data = await self._pipeline.call(
            method,
            f"{CONVERT}{path}",
            query=query,
            body=orjson.dumps(body) if body is not None else None,
            idempotency=idempotency,
        )
        return ConvertTrade.parse(data.get("trade") or {})

    async def quote(
        self,
        from_account: str,
        to_account: str,
        amount: Amount,
        *,
        user_incentive_id: str | None = None,
        code_val: str | None = None,
    ) -> ConvertTrade:
        """Quote converting `amount` from one account (its currency) to another; commit it with `commit`."""
        body: dict[str, Any] = {
            "from_account": from_account,
            "to_account": to_account,
            "amount": decimal_str(amount, "amount"),
        }
        incentive = {k: v for k, v in (("user_incentive_id", user_incentive_id), ("code_val", code_val)) if v}
        if incentive:
            body["trade_incentive_metadata"] = incentive
        # A quote moves nothing, so a second one is harmless; each is a fresh trade id.
        return await self._call("POST", "/quote", body)

    async def get(self, trade_id: str, from_account: str, to_account: str) -> ConvertTrade:
        query = query_string({"from_account": from_account, "to_account": to_account})
        return await self._call("GET", f"/trade/{path_segment(trade_id, 'trade_id')}", query=query)

    async def commit(self, trade_id: str, from_account: str, to_account: str) -> ConvertTrade:
        """Commit a quoted trade. Not retried once it may have been sent: the funds may already have moved
        (look the trade up with `get` to learn its status)."""
        body = {"from_account": from_account, "to_account": to_account}
        path = f"/trade/{path_segment(trade_id, 'trade_id')}"
        return await self._call("POST", path, body, idempotency=Idempotency.UNSAFE)
