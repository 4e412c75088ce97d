"""Payment methods linked to the user's Coinbase account.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api (Payment Methods)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError
from engine.net.paths import path_segment
from engine.net.wire import Json, as_str

if TYPE_CHECKING:
    from engine.net.pipeline import Pipeline

__all__ = ["PaymentMethod", "PaymentMethodsApi"]

PAYMENT_METHODS = "/api/v3/brokerage/payment_methods"


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    id: str
    type: str
    name: str
    currency: str
    verified: bool
    allow_buy: bool
    allow_sell: bool
    allow_deposit: bool
    allow_withdraw: bool
    created_at: str
    updated_at: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> PaymentMethod:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("type")),
            as_str(data.get("name")),
            as_str(data.get("currency")),
            bool(data.get("verified")),
            bool(data.get("allow_buy")),
            bool(data.get("allow_sell")),
            bool(data.get("allow_deposit")),
            bool(data.get("allow_withdraw")),
            as_str(data.get("created_at")),
            as_str(data.get("updated_at")),
            data,
        )


class PaymentMethodsApi:
    """`client.payment_methods`. Needs a CDP key."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def _get(self, path: str) -> Any:
        if self._pipeline.key_kind != "cdp":
            raise ConfigError("payment method endpoints need a CDP key (engine.auth.CdpKey)")
        return await self._pipeline.call("GET", f"{PAYMENT_METHODS}{path}")

    async def list(self) -> list[PaymentMethod]:
        data = await self._get("")
        return [PaymentMethod.parse(m) for m in data.get("payment_methods") or ()]

    async def get(self, payment_method_id: str) -> PaymentMethod:
        data = await self._get(f"/{path_segment(payment_method_id, 'payment_method_id')}")
        return PaymentMethod.parse(data.get("payment_method") or {})
