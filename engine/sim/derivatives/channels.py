"""Channel names the gateway serves, per host: market data on the streams host, `user.*` on the trading
host. A subscribe answers with the channels accepted; anything else is dropped without an error, as the
gateway does.
"""

from __future__ import annotations

from collections.abc import Collection

from engine.sim.derivatives.market_data import RESOLUTIONS

PUBLIC_INTERVALS = frozenset({"100ms", "agg2"})
USER_INTERVALS = frozenset({"raw", "100ms", "agg2"})
BOOK_GROUPS = frozenset({"none", "1", "2", "5", "10", "25", "100", "250"})
BOOK_DEPTHS = frozenset({"1", "10", "20"})
KINDS = frozenset({"future", "any"})
CURRENCIES = frozenset({"USDC", "any"})


def _interval_ok(interval: str, allow_raw: bool) -> bool:
    return interval in PUBLIC_INTERVALS or (allow_raw and interval == "raw")


def accepts_public(
    channel: str, instruments: Collection[str], index_names: Collection[str], allow_raw: bool
) -> bool:
    if channel.startswith("chart.trades."):
        instrument, _, resolution = channel[len("chart.trades.") :].rpartition(".")
        return instrument in instruments and resolution in RESOLUTIONS
    if channel.startswith("deribit_price_index."):
        return channel[len("deribit_price_index.") :] in index_names
    parts = channel.split(".")
    if not parts or len(parts) > 5:
        return False
    name = parts[0]
    if name == "quote":
        return len(parts) == 2 and parts[1] in instruments
    if len(parts) < 3 or parts[1] not in instruments:
        return False
    if name == "book":
        if len(parts) == 3:
            return _interval_ok(parts[2], allow_raw)
        return (
            len(parts) == 5
            and parts[2] in BOOK_GROUPS
            and parts[3] in BOOK_DEPTHS
            and _interval_ok(parts[4], allow_raw)
        )
    if name in ("ticker", "trades", "perpetual"):
        return len(parts) == 3 and _interval_ok(parts[2], allow_raw)
    return False


def accepts_private(channel: str, instruments: Collection[str]) -> bool:
    parts = channel.split(".")
    if len(parts) < 3 or parts[0] != "user":
        return False
    if parts[1] == "portfolio":
        return len(parts) == 3 and parts[2].upper() in ("USDC", "ANY")
    if parts[1] not in ("orders", "trades", "changes"):
        return False
    rest = parts[2:]
    if len(rest) == 2:
        return rest[0] in instruments and rest[1] in USER_INTERVALS
    if len(rest) == 3:
        return rest[0] in KINDS and rest[1] in CURRENCIES and rest[2] in USER_INTERVALS
    return False


def user_channel_matches(channel: str, kind: str, instrument_name: str) -> bool:
    """Whether `channel` (an accepted user.{kind}.… name) covers an event of `instrument_name`."""
    parts = channel.split(".")
    if parts[1] != kind:
        return False
    rest = parts[2:]
    if len(rest) == 2:
        return rest[0] == instrument_name
    return True  # future/any and USDC/any cover every instrument this gateway lists
