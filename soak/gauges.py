"""What the soak watches in its own process (the engines' process): resident memory, open descriptors, and
order latency and throughput per sampling window."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of values already sorted; 0 for none."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(fraction * len(sorted_values))  # the smallest value with that fraction at or below it
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


@dataclass(frozen=True)
class Sample:
    at_s: float  # since the run started
    orders: int  # placed so far
    rss: int
    fds: int
    throughput: float  # orders per second over the window
    p50_ms: float
    p99_ms: float
    max_ms: float


class LatencyWindow:
    """Ack latencies of the orders answered since the last sample; emptied by every sample."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: list[float] = []

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def take(self) -> list[float]:
        values, self._values = self._values, []
        values.sort()
        return values
