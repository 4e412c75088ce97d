"""Coinbase's global perpetuals on the Deribit-powered gateway: JSON-RPC 2.0 over WebSocket and HTTP.

- `TradingSession`: one authenticated WebSocket to the trading host for orders, account state and the
  user.* channels (the recommended way to trade);
- `GatewayHttpClient`: the same typed methods over HTTP, with a cached bearer token;
- `MarketStreams`: market data from the streams host as the engine's `OrderBook`, `Ticker`, `Trade`, `Candle`;
- `GatewayCredits`: the key's request credits, kept locally or shared over Redis;
- `DerivativesVenue` (`derivatives_venue(key, ...)`): all of it behind the `Venue` protocol, for
  `Engine(venue=...)`, with `PerpLimit` / `PerpMarket` orders.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/derivatives/overview
"""

from engine.venues.derivatives.connection import SessionConfig, SocketStats
from engine.venues.derivatives.credits import CreditLimits, CreditPool, GatewayCredits, RequestClass
from engine.venues.derivatives.http import GATEWAY_URL, GatewayHttpClient
from engine.venues.derivatives.methods import LinkedOrder
from engine.venues.derivatives.orders import PerpLimit, PerpMarket, PerpOrderRequest
from engine.venues.derivatives.session import TRADING_WS_URL, TradingSession
from engine.venues.derivatives.streams import STREAMS_WS_URL, MarketStreams
from engine.venues.derivatives.types import (
    AccountSummary,
    CancelType,
    Direction,
    InstrumentKind,
    LinkedOrderType,
    Order,
    OrderResult,
    OrderState,
    OrderType,
    Position,
    PositionDirection,
    TimeInForce,
    Trigger,
    TriggerFillCondition,
)
from engine.venues.derivatives.venue import DerivativesVenue, derivatives_venue

__all__ = [
    "GATEWAY_URL",
    "STREAMS_WS_URL",
    "TRADING_WS_URL",
    "AccountSummary",
    "CancelType",
    "CreditLimits",
    "CreditPool",
    "DerivativesVenue",
    "Direction",
    "GatewayCredits",
    "GatewayHttpClient",
    "InstrumentKind",
    "LinkedOrder",
    "LinkedOrderType",
    "MarketStreams",
    "Order",
    "OrderResult",
    "OrderState",
    "OrderType",
    "PerpLimit",
    "PerpMarket",
    "PerpOrderRequest",
    "Position",
    "PositionDirection",
    "RequestClass",
    "SessionConfig",
    "SocketStats",
    "TimeInForce",
    "TradingSession",
    "Trigger",
    "TriggerFillCondition",
    "derivatives_venue",
]
