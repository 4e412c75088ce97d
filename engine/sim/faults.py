"""Fault injection: the failures a trading client must survive, switchable at start and at run time.

`Faults` is plain mutable data (the admin endpoint and tests change it live); `FaultDice` draws the decisions
from its own seeded generator so a run is reproducible under `--seed`.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.sim.values import InvalidValue, parse_number


@dataclass(slots=True)
class Faults:
    """Every fault is off by default. Rates are probabilities per request (or per WebSocket message)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_5xx_rate: float = 0.0
    # answered 200 with an error object instead of the endpoint's body, and not served: a success status is
    # not a success, so a client must read the body
    error_200_rate: float = 0.0
    # a 429 storm: a fraction of requests refused, and/or every request refused until a wall-clock time
    storm_429_rate: float = 0.0
    storm_429_until: float = 0.0
    # the order is accepted into the ledger, then the connection is dropped with no response
    drop_after_accept_rate: float = 0.0
    # the response is held back `slow_response_s` (after the request took effect)
    slow_response_rate: float = 0.0
    slow_response_s: float = 0.0
    clock_offset_s: float = 0.0
    ws_drop_rate: float = 0.0
    ws_gap_rate: float = 0.0

    def __post_init__(self) -> None:
        self.checked(self.to_dict())

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @staticmethod
    def checked(changes: dict[str, Any]) -> dict[str, float]:
        """`changes` as fault values, each a finite number in its range; InvalidValue (a ValueError) names
        the first one that is not. A NaN or infinite offset or delay would stop the clock or every request."""
        parsed: dict[str, float] = {}
        for name, value in changes.items():
            bounds = _RANGES.get(name)
            if bounds is None:
                raise InvalidValue(f"unknown fault {name!r}; known: {sorted(_RANGES)}")
            parsed[name] = parse_number(value, f"fault {name!r}", minimum=bounds[0], maximum=bounds[1])
        return parsed

    def apply(self, checked: dict[str, float]) -> None:
        for name, value in checked.items():
            setattr(self, name, value)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; unknown names or bad values raise ValueError (nothing is applied)."""
        self.apply(self.checked(changes))

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0.0)


_HOUR_MS, _HOUR_S = 3_600_000.0, 3600.0
_YEAR_S = 366 * 86400.0
# each fault's range: rates are probabilities, delays at most an hour, the clock within ten years of the host
_RANGES: dict[str, tuple[float, float]] = {
    f.name: (0.0, 1.0)
    if f.name.endswith("_rate")
    else (0.0, _HOUR_MS)
    if f.name.endswith("_ms")
    else (0.0, _HOUR_S)
    for f in fields(Faults)
}
_RANGES["clock_offset_s"] = (-10 * _YEAR_S, 10 * _YEAR_S)
_RANGES["storm_429_until"] = (0.0, 253402300799.0)  # a wall-clock time, at most the last second of year 9999


class FaultDice:
    """Draws fault decisions. Cheap when a fault is off: no random draw is made for a zero rate."""

    __slots__ = ("_rng", "faults")

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(seed)

    def _roll(self, rate: float) -> bool:
        return rate > 0.0 and (rate >= 1.0 or self._rng.random() < rate)

    def delay_s(self) -> float:
        f = self.faults
        if f.latency_ms <= 0.0 and f.jitter_ms <= 0.0:
            return 0.0
        jitter = self._rng.uniform(0.0, f.jitter_ms) if f.jitter_ms > 0.0 else 0.0
        return (f.latency_ms + jitter) / 1000.0

    def server_error(self) -> bool:
        return self._roll(self.faults.error_5xx_rate)

    def error_200(self) -> bool:
        return self._roll(self.faults.error_200_rate)

    def storm_429(self) -> bool:
        f = self.faults
        return (f.storm_429_until > 0.0 and time.time() < f.storm_429_until) or self._roll(f.storm_429_rate)

    def drop_after_accept(self) -> bool:
        return self._roll(self.faults.drop_after_accept_rate)

    def slow_response_s(self) -> float:
        f = self.faults
        return f.slow_response_s if self._roll(f.slow_response_rate) else 0.0

    def ws_drop(self) -> bool:
        return self._roll(self.faults.ws_drop_rate)

    def ws_gap(self) -> bool:
        return self._roll(self.faults.ws_gap_rate)
