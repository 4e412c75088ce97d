"""`engine.rest`: the names users import for REST trading, from where they live now.

The Advanced Trade client is `engine.venues.advanced`, the Exchange client `engine.venues.exchange`, the
plumbing they share (transport, retries, clock offset) `engine.net`; these names stay importable from here.
"""

from engine.net.retry import RetryPolicy
from engine.net.transport import Timeouts
from engine.venues.advanced.client import Client
from engine.venues.advanced.futures import IntradayMarginSetting
from engine.venues.advanced.orders import (
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
from engine.venues.exchange import ExchangeOrderType, TimeInForce

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
