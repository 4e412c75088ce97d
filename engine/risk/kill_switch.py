"""The kill switch: once engaged, no new order passes until a human resets it.

Engaging it here only refuses new orders; the engine's `kill()` engages it and cancels every open order.
"""

from __future__ import annotations

from engine.risk.refusal import OrderRefused, RiskRule


class KillSwitch:
    __slots__ = ("engaged", "reason")

    def __init__(self) -> None:
        self.engaged = False
        self.reason = ""

    def engage(self, reason: str) -> None:
        self.engaged = True
        self.reason = reason

    def reset(self) -> None:
        self.engaged = False
        self.reason = ""

    def check(self) -> None:
        if self.engaged:
            raise OrderRefused(RiskRule.KILL_SWITCH, f"kill switch engaged: {self.reason}")
