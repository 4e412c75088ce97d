"""Positions rebuilt from the journal's past fills at start."""

from __future__ import annotations

from decimal import Decimal as D

from engine.trading.portfolio import Portfolio


def test_positions_are_rebuilt_from_past_fills_oldest_first() -> None:
    portfolio = Portfolio()
    portfolio.restore([("BIT-28NOV26", "BUY", D("3"), D("300")), ("BIT-28NOV26", "SELL", D("1"), D("110"))])
    assert portfolio.positions["BIT-28NOV26"].size == D("2")
    assert portfolio.realized_today == D(0)  # history is not today's trading


def test_a_journalled_close_moves_the_position_toward_flat_whichever_side_it_was() -> None:
    # a position close is journalled with side CLOSE: the venue chose the side
    portfolio = Portfolio()
    portfolio.restore(
        [
            ("BIT-28NOV26", "SELL", D("2"), D("200")),  # short 2
            ("BIT-28NOV26", "CLOSE", D("2"), D("190")),  # bought back
            ("ET-28NOV26", "BUY", D("5"), D("50")),  # long 5
            ("ET-28NOV26", "CLOSE", D("3"), D("33")),  # sold 3 of it
        ]
    )
    assert portfolio.positions["BIT-28NOV26"].size == D(0)
    assert portfolio.positions["ET-28NOV26"].size == D("2")
