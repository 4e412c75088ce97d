from __future__ import annotations

import pytest

from engine.trading.order_state import TERMINAL_STATES, OrderState, advance
from engine.venues.advanced.venue import from_exchange_status


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("OPEN", OrderState.OPEN),
        ("PENDING", OrderState.OPEN),
        ("QUEUED", OrderState.OPEN),
        ("CANCEL_QUEUED", OrderState.OPEN),
        ("EDIT_QUEUED", OrderState.OPEN),
        ("FILLED", OrderState.FILLED),
        ("CANCELLED", OrderState.CANCELLED),
        ("EXPIRED", OrderState.EXPIRED),
        ("FAILED", OrderState.FAILED),
        ("UNKNOWN_ORDER_STATUS", OrderState.UNKNOWN),
        ("SOMETHING_NEW", OrderState.UNKNOWN),
        ("filled", OrderState.FILLED),
    ],
)
def test_exchange_statuses_map_to_local_states(status: str, state: OrderState) -> None:
    assert from_exchange_status(status) is state


def test_the_happy_path() -> None:
    state = OrderState.PENDING_NEW
    for update in (OrderState.OPEN, OrderState.OPEN, OrderState.FILLED):
        state = advance(state, update)
    assert state is OrderState.FILLED


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES, key=lambda s: s.value))
def test_terminal_states_are_final(terminal: OrderState) -> None:
    for update in OrderState:
        assert advance(terminal, update) is terminal


def test_a_fill_seen_on_the_user_channel_before_the_rest_response_is_kept() -> None:
    state = advance(OrderState.PENDING_NEW, OrderState.FILLED)
    assert advance(state, OrderState.OPEN) is OrderState.FILLED


def test_an_open_order_cannot_be_rejected_or_forgotten() -> None:
    for update in (OrderState.REJECTED, OrderState.NOT_PLACED, OrderState.PENDING_NEW, OrderState.UNKNOWN):
        assert advance(OrderState.OPEN, update) is OrderState.OPEN


def test_unknown_resolves_either_way() -> None:
    assert advance(OrderState.UNKNOWN, OrderState.OPEN) is OrderState.OPEN
    assert advance(OrderState.UNKNOWN, OrderState.NOT_PLACED) is OrderState.NOT_PLACED
    assert advance(OrderState.PENDING_NEW, OrderState.UNKNOWN) is OrderState.UNKNOWN
    assert OrderState.UNKNOWN.is_unresolved
    assert OrderState.PENDING_NEW.is_unresolved
    assert not OrderState.OPEN.is_unresolved
