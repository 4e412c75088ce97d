"""US futures (CFM) endpoints of Advanced Trade: balance summary, positions, sweeps, intraday margin."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import ConfigError
from engine.net.paths import path_segment
from engine.net.retry import Idempotency
from engine.net.wire import Amount, Json, as_str, dec, decimal_str
from engine.venues.advanced.types import Money

if TYPE_CHECKING:
    from engine.net.pipeline import Pipeline

__all__ = [
    "FuturesApi",
    "FuturesBalanceSummary",
    "FuturesPosition",
    "IntradayMarginSetting",
    "MarginWindow",
    "Sweep",
]

CFM = "/api/v3/brokerage/cfm"


class IntradayMarginSetting(enum.StrEnum):
    STANDARD = "INTRADAY_MARGIN_SETTING_STANDARD"
    INTRADAY = "INTRADAY_MARGIN_SETTING_INTRADAY"


@dataclass(frozen=True, slots=True)
class FuturesBalanceSummary:
    futures_buying_power: Money | None
    total_usd_balance: Money | None
    cfm_usd_balance: Money | None
    unrealized_pnl: Money | None
    daily_realized_pnl: Money | None
    initial_margin: Money | None
    available_margin: Money | None
    liquidation_threshold: Money | None
    liquidation_buffer_percentage: Decimal | None
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> FuturesBalanceSummary:
        def m(name: str) -> Money | None:
            return Money.parse(data.get(name))

        return cls(
            m("futures_buying_power"),
            m("total_usd_balance"),
            m("cfm_usd_balance"),
            m("unrealized_pnl"),
            m("daily_realized_pnl"),
            m("initial_margin"),
            m("available_margin"),
            m("liquidation_threshold"),
            dec(data.get("liquidation_buffer_percentage")),
            data,
        )


@dataclass(frozen=True, slots=True)
class FuturesPosition:
    product_id: str
    side: str  # "LONG" / "SHORT"
    number_of_contracts: Decimal | None
    current_price: Decimal | None
    avg_entry_price: Decimal | None
    unrealized_pnl: Decimal | None
    daily_realized_pnl: Decimal | None
    expiration_time: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> FuturesPosition:
        return cls(
            as_str(data.get("product_id")),
            as_str(data.get("side")),
            dec(data.get("number_of_contracts")),
            dec(data.get("current_price")),
            dec(data.get("avg_entry_price")),
            dec(data.get("unrealized_pnl")),
            dec(data.get("daily_realized_pnl")),
            as_str(data.get("expiration_time")),
            data,
        )


@dataclass(frozen=True, slots=True)
class Sweep:
    id: str
    requested_amount: Money | None
    should_sweep_all: bool
    status: str
    scheduled_time: str

    @classmethod
    def parse(cls, data: Json) -> Sweep:
        return cls(
            as_str(data.get("id")),
            Money.parse(data.get("requested_amount")),
            bool(data.get("should_sweep_all")),
            as_str(data.get("status")),
            as_str(data.get("scheduled_time")),
        )


@dataclass(frozen=True, slots=True)
class MarginWindow:
    margin_window_type: str
    end_time: str
    is_intraday_margin_killswitch_enabled: bool
    is_intraday_margin_enrollment_killswitch_enabled: bool

    @classmethod
    def parse(cls, data: Json) -> MarginWindow:
        window = data.get("margin_window") or {}
        return cls(
            as_str(window.get("margin_window_type")),
            as_str(window.get("end_time")),
            bool(data.get("is_intraday_margin_killswitch_enabled")),
            bool(data.get("is_intraday_margin_enrollment_killswitch_enabled")),
        )


class FuturesApi:
    """`client.futures`: CFM endpoints. Needs a CDP key."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None, query: str = "") -> Any:
        if self._pipeline.key_kind != "cdp":
            raise ConfigError("futures (CFM) endpoints need a CDP key (engine.auth.CdpKey)")
        return await self._pipeline.call(
            method,
            f"{CFM}{path}",
            query=query,
            body=orjson.dumps(body) if body is not None else None,
            # schedule/setting writes are idempotent in effect (same target state); a second sweep is not,
            # so scheduling is retried only when it provably never left.
            idempotency=Idempotency.UNSAFE if path == "/sweeps/schedule" else Idempotency.SAFE,
        )

    async def balance_summary(self) -> FuturesBalanceSummary:
        data = await self._call("GET", "/balance_summary")
        return FuturesBalanceSummary.parse(data.get("balance_summary") or {})

    async def positions(self) -> list[FuturesPosition]:
        data = await self._call("GET", "/positions")
        return [FuturesPosition.parse(p) for p in data.get("positions") or () if p]

    async def position(self, product_id: str) -> FuturesPosition | None:
        """The open position in `product_id`, or None when flat."""
        data = await self._call("GET", f"/positions/{path_segment(product_id, 'product_id')}")
        position = data.get("position") or {}
        return FuturesPosition.parse(position) if position.get("product_id") else None

    async def sweeps(self) -> list[Sweep]:
        data = await self._call("GET", "/sweeps")
        return [Sweep.parse(s) for s in data.get("sweeps") or ()]

    async def schedule_sweep(self, usd_amount: Amount | None = None) -> bool:
        """Schedule a sweep of futures USD to spot; no amount sweeps all available."""
        body = {"usd_amount": decimal_str(usd_amount, "usd_amount")} if usd_amount is not None else {}
        data = await self._call("POST", "/sweeps/schedule", body)
        # Only an explicit `"success": true` is a scheduled sweep; any other 2xx body is not.
        return data.get("success") is True

    async def cancel_sweep(self) -> bool:
        """Cancel the pending sweep, if any."""
        data = await self._call("DELETE", "/sweeps")
        return data.get("success") is True

    async def intraday_margin_setting(self) -> IntradayMarginSetting:
        data = await self._call("GET", "/intraday/margin_setting")
        return IntradayMarginSetting(data.get("setting", IntradayMarginSetting.STANDARD))

    async def set_intraday_margin_setting(self, setting: IntradayMarginSetting | str) -> None:
        await self._call(
            "POST", "/intraday/margin_setting", {"setting": IntradayMarginSetting(setting).value}
        )

    async def current_margin_window(
        self, margin_profile_type: str = "MARGIN_PROFILE_TYPE_RETAIL_REGULAR"
    ) -> MarginWindow:
        data = await self._call(
            "GET", "/intraday/current_margin_window", query=f"margin_profile_type={margin_profile_type}"
        )
        return MarginWindow.parse(data)
