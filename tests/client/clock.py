"""Letting woken tasks run, for the tests that drive time by hand (engine.clock.ManualClock)."""

from __future__ import annotations

import asyncio


async def settle(rounds: int = 5) -> None:
    """Let woken tasks run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
