"""Advanced Trade: the REST client, its order configurations, CFM futures and typed responses.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api
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

__all__ = [
    "Client",
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
    "Timeouts",
    "TriggerBracketGtc",
    "TriggerBracketGtd",
    "TwapLimitGtd",
]
