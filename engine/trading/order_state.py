"""The order lifecycle: which moves between the venue-neutral `OrderState`s are legal.

Updates arrive from two sources that race (the REST response to a create, and the WebSocket user channel), so
the machine is monotonic rather than strict: a terminal state is never left, and a late, less advanced update
(an OPEN after a FILLED) is ignored instead of raising.
"""

from __future__ import annotations

from engine.venues.base import TERMINAL_STATES, OrderState

__all__ = ["TERMINAL_STATES", "OrderState", "advance"]


# The states an order may move to from each non-terminal state.
_LEGAL_MOVES: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING_NEW: frozenset(OrderState) - {OrderState.PENDING_NEW},
    OrderState.UNKNOWN: frozenset(OrderState) - {OrderState.PENDING_NEW, OrderState.UNKNOWN},
    OrderState.OPEN: frozenset(
        {OrderState.OPEN, OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.FAILED}
    ),
}


def advance(current: OrderState, update: OrderState) -> OrderState:
    """The state after applying `update` to an order in `current`.

    Stale or impossible updates leave the state unchanged: a terminal state is final, an OPEN order cannot
    become REJECTED or NOT_PLACED, and an UNKNOWN never overwrites knowledge the engine already has.
    """
    if current.is_terminal:
        return current
    if update in _LEGAL_MOVES[current]:
        return update
    return current
