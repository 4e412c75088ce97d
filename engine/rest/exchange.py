"""`client.exchange`: the Coinbase Exchange REST API. It lives in `engine.venues.exchange`; these names stay
importable from here."""

from engine.venues.exchange import (
    ExchangeAccount,
    ExchangeApi,
    ExchangeFill,
    ExchangeOrder,
    ExchangeOrderType,
    ExchangePage,
    TimeInForce,
)

__all__ = [
    "ExchangeAccount",
    "ExchangeApi",
    "ExchangeFill",
    "ExchangeOrder",
    "ExchangeOrderType",
    "ExchangePage",
    "TimeInForce",
]
