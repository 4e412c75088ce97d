"""Venue adapters: one package per Coinbase venue, each behind the `Venue` protocol (engine.venues.base)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.net.transport import ApiKey
    from engine.venues.base import Venue


def default_venue(key: ApiKey, **settings: Any) -> Venue:
    """Advanced Trade, the venue `Engine(key, config)` trades on; `settings` are `AdvancedTradeVenue`'s.
    Imported on use, so the trading core and `engine.venues.base` load no venue."""
    from engine.venues.advanced.venue import AdvancedTradeVenue

    return AdvancedTradeVenue(key, **settings)
