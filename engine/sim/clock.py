"""The simulator's idea of the time: the host clock plus a configured and a fault-injected offset.

Coinbase judges token windows and HMAC timestamps by its own clock; a client must measure the offset
from `/time` and apply it. Shifting this clock is how the simulator makes that matter.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from engine.sim.faults import Faults


class SimClock:
    __slots__ = ("_faults", "base_offset_s")

    def __init__(self, base_offset_s: float, faults: Faults) -> None:
        if not math.isfinite(base_offset_s):  # NaN would make every time check pass
            raise ValueError("the clock offset must be a finite number of seconds")
        self.base_offset_s = base_offset_s
        self._faults = faults

    def now(self) -> float:
        return time.time() + self.base_offset_s + self._faults.clock_offset_s


def iso(ts: float) -> str:
    """RFC 3339 with microseconds and a Z, as Coinbase writes times (isoformat: several times faster than
    strftime, and this runs on every response)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def fmt(value: object) -> str:
    """A Decimal as Coinbase writes it: plain notation, never exponent form."""
    return format(value, "f")
