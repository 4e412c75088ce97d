"""The fee tier and trading volume behind the user's fees (`GET /transaction_summary`).

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api (Fees)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.net.wire import Json, as_str, dec

__all__ = ["FeeTier", "TransactionSummary"]


def _number(value: Any) -> Decimal | None:
    # total_volume and total_fees come as JSON numbers: through str so a float's binary noise is not kept.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return dec(str(value))
    return dec(value)


@dataclass(frozen=True, slots=True)
class FeeTier:
    pricing_tier: str
    usd_from: Decimal | None
    usd_to: Decimal | None
    taker_fee_rate: Decimal | None
    maker_fee_rate: Decimal | None

    @classmethod
    def parse(cls, data: Json) -> FeeTier:
        return cls(
            as_str(data.get("pricing_tier")),
            dec(data.get("usd_from")),
            dec(data.get("usd_to")),
            dec(data.get("taker_fee_rate")),
            dec(data.get("maker_fee_rate")),
        )


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    total_volume: Decimal | None
    total_fees: Decimal | None
    fee_tier: FeeTier
    advanced_trade_only_volume: Decimal | None
    advanced_trade_only_fees: Decimal | None
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> TransactionSummary:
        return cls(
            _number(data.get("total_volume")),
            _number(data.get("total_fees")),
            FeeTier.parse(data.get("fee_tier") or {}),
            _number(data.get("advanced_trade_only_volume")),
            _number(data.get("advanced_trade_only_fees")),
            data,
        )
