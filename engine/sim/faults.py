"""Fault injection: the failures a trading client must survive, switchable at start and at run time.

`Faults` is plain mutable data (the admin endpoint and tests change it live); `FaultDice` draws the decisions
from its own seeded generator so a run is reproducible under `--seed`.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(slots=True)
class Faults:
    """Every fault is off by default. Rates are probabilities per request (or per WebSocket message)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_5xx_rate: float = 0.0
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

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; unknown names or non-numbers raise ValueError (nothing is applied)."""
        known = {f.name for f in fields(self)}
        parsed: dict[str, float] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {sorted(known)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"fault {name!r} must be a number")
            if name.endswith("_rate") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault {name!r} is a probability in [0, 1]")
            parsed[name] = float(value)
        for name, value in parsed.items():
            setattr(self, name, value)

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0.0)


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
