"""What the order journal adds per order: the durable intent before the send plus the (batched) outcome after.

Every 50th order also flushes the batch to SQLite, as the engine's flush timer does (with durability `os`
that is where SQLite's work is done; the intent and outcome themselves go to the intent log), so the mean
carries the flushes' share and the median is what an order pays on its own path.

Bar: a median of at most 20 µs per order with durability `os`. The `fsync` figure is for information: it is
the disk's fsync latency, which the engine pays on a worker thread, off the event loop.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from engine.trading.ids import ClientOrderIds
from engine.trading.journal import Durability, OrderJournal
from engine.trading.order_state import OrderState

FLUSH_EVERY = 50
REQUEST = (
    '{"client_order_id":"%s","product_id":"BTC-USD","side":"BUY",'
    '"order_configuration":{"limit_limit_gtc":{"base_size":"0.001","limit_price":"50000.00","post_only":false}}}'
)


@pytest.mark.parametrize("durability", [Durability.OS, Durability.FSYNC], ids=lambda d: d.value)
def test_journal_per_order(benchmark: Any, tmp_path: Path, durability: Durability) -> None:
    journal = OrderJournal(tmp_path / "journal.db", durability)
    ids = ClientOrderIds("bench")
    placed: list[str] = []
    order_ids = itertools.count()

    def one_order() -> None:
        client_order_id = ids.next()
        journal.record_intent(client_order_id, "BTC-USD", "BUY", REQUEST % client_order_id, fresh=True)
        journal.record_outcome(client_order_id, OrderState.OPEN, order_id=f"ord-{next(order_ids)}")
        placed.append(client_order_id)
        if len(placed) % FLUSH_EVERY == 0:
            journal.flush()

    rounds = 2000 if durability is Durability.OS else 200
    benchmark.pedantic(one_order, rounds=rounds, iterations=1, warmup_rounds=10)
    journal.close()

    # correct, not just fast: every order is journalled with its outcome, once
    with OrderJournal(tmp_path / "journal.db") as reopened:
        entries = reopened.entries()
        assert [e.client_order_id for e in entries] == placed
        assert all(e.state is OrderState.OPEN and e.order_id for e in entries)


def test_journal_per_order_own_ids(benchmark: Any, tmp_path: Path) -> None:
    """Durability `os` with the strategy's own client_order_ids: each is checked against the journal (never
    used before) on the order path, where the engine's minted ids skip that check."""
    journal = OrderJournal(tmp_path / "journal.db", Durability.OS)
    placed: list[str] = []
    order_ids = itertools.count()

    def one_order() -> None:
        client_order_id = f"strategy-{len(placed)}"
        journal.record_intent(client_order_id, "BTC-USD", "BUY", REQUEST % client_order_id)
        journal.record_outcome(client_order_id, OrderState.OPEN, order_id=f"ord-{next(order_ids)}")
        placed.append(client_order_id)
        if len(placed) % FLUSH_EVERY == 0:
            journal.flush()

    benchmark.pedantic(one_order, rounds=2000, iterations=1, warmup_rounds=10)
    journal.close()

    with OrderJournal(tmp_path / "journal.db") as reopened:
        assert [e.client_order_id for e in reopened.entries()] == placed
