"""The REST side of the engine: `Client` and its typed requests and responses."""

from engine.rest.client import Client
from engine.rest.exchange import ExchangeOrderType, TimeInForce
from engine.rest.futures import IntradayMarginSetting
from engine.rest.orders import (
    LimitFok,
    LimitGtc,
    LimitGtd,
    MarginType,
    MarketFok,
    MarketIoc,
    OrderConfiguration,
    OrderRequest,
    PriceDistribution,
    ScaledLimitGtc,
    Side,
    SizeDistribution,
    SorLimitIoc,
    StopDirection,
    StopLimitGtc,
    StopLimitGtd,
    TriggerBracketGtc,
    TriggerBracketGtd,
    TwapLimitGtd,
)
from engine.rest.retry import RetryPolicy
from engine.rest.transport import Timeouts

__all__ = [
    "Client",
    "ExchangeOrderType",
    "IntradayMarginSetting",
    "LimitFok",
    "LimitGtc",
    "LimitGtd",
    "MarginType",
    "MarketFok",
    "MarketIoc",
    "OrderConfiguration",
    "OrderRequest",
    "PriceDistribution",
    "RetryPolicy",
    "ScaledLimitGtc",
    "Side",
    "SizeDistribution",
    "SorLimitIoc",
    "StopDirection",
    "StopLimitGtc",
    "StopLimitGtd",
    "TimeInForce",
    "Timeouts",
    "TriggerBracketGtc",
    "TriggerBracketGtd",
    "TwapLimitGtd",
]
