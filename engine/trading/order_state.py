"""The order lifecycle: local states, how Coinbase's order statuses map onto them, and which moves are legal.

Updates arrive from two sources that race (the REST response to a create, and the WebSocket user channel), so
the machine is monotonic rather than strict: a terminal state is never left, and a late, less advanced update
(an OPEN after a FILLED) is ignored instead of raising.
"""

from __future__ import annotations

import enum


class OrderState(enum.Enum):
    PENDING_NEW = "PENDING_NEW"  # intent journalled; the create request may be in flight
    UNKNOWN = "UNKNOWN"  # the create's outcome could not be established: reconcile by client_order_id
    OPEN = "OPEN"  # the exchange holds the order (including its PENDING/QUEUED/EDIT_QUEUED/CANCEL_QUEUED)
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"  # accepted, then failed on the exchange
    REJECTED = "REJECTED"  # the create was refused: no order exists
    NOT_PLACED = "NOT_PLACED"  # reconciliation found no order with its client_order_id: it never left

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_unresolved(self) -> bool:
        """Whether the order's existence on the exchange is still unknown."""
        return self is OrderState.PENDING_NEW or self is OrderState.UNKNOWN


TERMINAL_STATES = frozenset(
    {
        OrderState.FILLED,
        OrderState.CANCELLED,
        OrderState.EXPIRED,
        OrderState.FAILED,
        OrderState.REJECTED,
        OrderState.NOT_PLACED,
    }
)

# Coinbase Advanced Trade `status` values (REST and the WS user channel) -> local state.
_EXCHANGE_STATUS = {
    "PENDING": OrderState.OPEN,
    "QUEUED": OrderState.OPEN,
    "OPEN": OrderState.OPEN,
    "EDIT_QUEUED": OrderState.OPEN,
    "CANCEL_QUEUED": OrderState.OPEN,
    "FILLED": OrderState.FILLED,
    "CANCELLED": OrderState.CANCELLED,
    "EXPIRED": OrderState.EXPIRED,
    "FAILED": OrderState.FAILED,
    "UNKNOWN_ORDER_STATUS": OrderState.UNKNOWN,
}


def from_exchange_status(status: str) -> OrderState:
    """The local state for a Coinbase order status; an unrecognised status is UNKNOWN, to be reconciled."""
    return _EXCHANGE_STATUS.get(status.upper(), OrderState.UNKNOWN)


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
