"""`TrackedOrder`: the engine's live picture of one order, the handle a strategy holds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from engine.risk.terms import OrderTerms
from engine.trading.order_state import OrderState
from engine.venues.base import OrderIntent

_ZERO = Decimal(0)


class TrackedOrder:
    """State, fills and ids of one order, updated from REST responses and the user channel.

    `await order.done()` waits for a terminal state (filled, cancelled, expired, failed, rejected).
    """

    __slots__ = (
        "_done",
        "client_order_id",
        "failure_reason",
        "filled_size",
        "filled_value",
        "order_id",
        "product_id",
        "request",
        "side",
        "state",
        "terms",
        "total_fees",
    )

    def __init__(
        self,
        client_order_id: str,
        product_id: str,
        side: str,
        *,
        request: OrderIntent | None = None,
        terms: OrderTerms | None = None,
        state: OrderState = OrderState.PENDING_NEW,
        order_id: str | None = None,
    ) -> None:
        self.client_order_id = client_order_id
        self.product_id = product_id
        self.side = side
        self.request = request
        self.terms = terms
        self.state = state
        self.order_id = order_id
        self.filled_size = _ZERO
        self.filled_value = _ZERO
        self.total_fees = _ZERO
        self.failure_reason: str | None = None
        self._done: asyncio.Event | None = None

    @property
    def is_open(self) -> bool:
        return not self.state.is_terminal

    @property
    def average_price(self) -> Decimal | None:
        return self.filled_value / self.filled_size if self.filled_size else None

    def _mark_done(self) -> None:
        if self._done is not None:
            self._done.set()

    async def done(self, timeout: float | None = None) -> OrderState:  # noqa: ASYNC109 (a convenience)
        """Wait until the order reaches a terminal state; returns it."""
        if not self.state.is_terminal:
            if self._done is None:
                self._done = asyncio.Event()
            await asyncio.wait_for(self._done.wait(), timeout)
        return self.state

    def __repr__(self) -> str:
        return (
            f"TrackedOrder({self.client_order_id!r}, {self.product_id} {self.side}, {self.state.value}, "
            f"filled={self.filled_size}, order_id={self.order_id!r})"
        )
