"""Which futures margin window is in force: intraday rates from 8 AM to 4 PM New York time on weekdays,
overnight rates otherwise (https://help.coinbase.com/en/coinbase/trading-and-funding/futures/intraday-margin).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
INTRADAY, OVERNIGHT = "FCM_MARGIN_WINDOW_TYPE_INTRADAY", "FCM_MARGIN_WINDOW_TYPE_OVERNIGHT"
_OPEN_HOUR, _CLOSE_HOUR = 8, 16


def current_window(now: float) -> tuple[str, float]:
    """(window type, when it ends) at UNIX time `now`."""
    local = datetime.fromtimestamp(now, NEW_YORK)
    weekday = local.weekday() < 5
    opens = local.replace(hour=_OPEN_HOUR, minute=0, second=0, microsecond=0)
    closes = local.replace(hour=_CLOSE_HOUR, minute=0, second=0, microsecond=0)
    if weekday and opens <= local < closes:
        return INTRADAY, closes.timestamp()
    start = opens if local < opens else opens + timedelta(days=1)
    while start.weekday() >= 5:  # the weekend is overnight through to Monday morning
        start += timedelta(days=1)
    # rebuild from the date in New York, so a DST change in between keeps 8 AM local
    start = datetime(start.year, start.month, start.day, _OPEN_HOUR, tzinfo=NEW_YORK)
    return OVERNIGHT, start.timestamp()
