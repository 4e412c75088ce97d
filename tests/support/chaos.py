"""The knobs every chaos test obeys, so one `make chaos` drives them all and a failure can be replayed.

`CHAOS_KILL_POINTS`: how many random points a crash test kills its trading process at (each test keeps its
own default for the quick run in `make test`). `CHAOS_SEED`: the seed of everything random in the run. A
failing test marked `chaos` gets both printed with its report (tests/conftest.py), so
`CHAOS_SEED=... CHAOS_KILL_POINTS=... pytest <test>` replays it.
"""

from __future__ import annotations

import os

DEFAULT_SEED = 20260101


def kill_points(default: int) -> int:
    raw = os.environ.get("CHAOS_KILL_POINTS")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError("CHAOS_KILL_POINTS must be a positive whole number")
    return int(raw)


def seed() -> int:
    raw = os.environ.get("CHAOS_SEED")
    if raw is None:
        return DEFAULT_SEED
    try:
        return int(raw)
    except ValueError:
        raise ValueError("CHAOS_SEED must be an integer") from None


def replay_hint() -> str:
    points = os.environ.get("CHAOS_KILL_POINTS")
    return f"replay with CHAOS_SEED={seed()}" + (f" CHAOS_KILL_POINTS={points}" if points else "")
