"""An order-rate cap with a cooldown: a strategy that floods orders is stopped, then made to wait.

At most `max_orders` in any `window` seconds; the order that would exceed the cap is refused and starts a
`cooldown` during which every order is refused. A runaway loop thus gets a pause, not a trickle.
"""

from __future__ import annotations

from collections import deque

from engine.risk.refusal import OrderRefused, RiskRule


class OrderRateLimit:
    __slots__ = ("_cooldown_until", "_sent", "cooldown", "max_orders", "window")

    def __init__(self, max_orders: int, window: float, cooldown: float = 0.0) -> None:
        if max_orders < 1 or window <= 0 or cooldown < 0:
            raise ValueError("order rate: max_orders >= 1, window > 0, cooldown >= 0")
        self.max_orders = max_orders
        self.window = window
        self.cooldown = cooldown
        self._sent: deque[float] = deque()
        self._cooldown_until = float("-inf")

    def check(self, now: float) -> None:
        """Refuse if the order would break the cap or a cooldown is running. Does not count the order."""
        if now < self._cooldown_until:
            raise OrderRefused(RiskRule.COOLDOWN, f"cooling down for {self._cooldown_until - now:.3f}s more")
        sent = self._sent
        horizon = now - self.window
        while sent and sent[0] <= horizon:
            sent.popleft()
        if len(sent) >= self.max_orders:
            if self.cooldown > 0:
                self._cooldown_until = now + self.cooldown
            raise OrderRefused(
                RiskRule.ORDER_RATE, f"{len(sent)} orders in {self.window}s, max {self.max_orders}"
            )

    def record(self, now: float) -> None:
        """Count an order that passed every rule."""
        self._sent.append(now)
