"""Advanced Trade: the REST client, its order configurations, CFM futures and typed responses.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api
"""

from engine.net.retry import RetryPolicy
from engine.net.transport import Timeouts
from engine.venues.advanced.client import Client
from engine.venues.advanced.converts import ConvertTrade
from engine.venues.advanced.fees import FeeTier, TransactionSummary
from engine.venues.advanced.futures import IntradayMarginSetting
from engine.venues.advanced.market import Candle, Granularity, MarketTrade, MarketTrades, ProductBook
from engine.venues.advanced.orders import (
    ClosePositionRequest,
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
from engine.venues.advanced.payments import PaymentMethod
from engine.venues.advanced.portfolios import FundsMoved, Portfolio, PortfolioBreakdown, SpotPosition
from engine.venues.advanced.types import EditPreview

__all__ = [
    "Candle",
    "Client",
    "ClosePositionRequest",
    "ConvertTrade",
    "EditPreview",
    "FeeTier",
    "FundsMoved",
    "Granularity",
    "IntradayMarginSetting",
    "LimitFok",
    "LimitGtc",
    "LimitGtd",
    "MarginType",
    "MarketFok",
    "MarketIoc",
    "MarketTrade",
    "MarketTrades",
    "OrderConfiguration",
    "OrderRequest",
    "PaymentMethod",
    "Portfolio",
    "PortfolioBreakdown",
    "PriceDistribution",
    "ProductBook",
    "RetryPolicy",
    "ScaledLimitGtc",
    "Side",
    "SizeDistribution",
    "SorLimitIoc",
    "SpotPosition",
    "StopDirection",
    "StopLimitGtc",
    "StopLimitGtd",
    "Timeouts",
    "TransactionSummary",
    "TriggerBracketGtc",
    "TriggerBracketGtd",
    "TwapLimitGtd",
]
