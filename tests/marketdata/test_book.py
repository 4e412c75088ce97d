from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.marketdata.book import OrderBook

D = Decimal


def level(side: str, price: str, size: str) -> dict[str, str]:
    return {"side": side, "event_time": "2026-01-01T00:00:00Z", "price_level": price, "new_quantity": size}


def test_snapshot_then_updates() -> None:
    book = OrderBook("BTC-USD")
    assert not book.apply_update([level("bid", "1", "1")])  # nothing before the snapshot
    book.apply_snapshot(
        [
            level("bid", "99.50", "1"),
            level("bid", "100.00", "2"),
            level("offer", "101", "3"),
            level("offer", "102", "4"),
        ]
    )
    assert book.ready
    assert (book.best_bid(), book.best_ask(), book.spread(), book.mid()) == (
        D("100"),
        D("101"),
        D("1"),
        D("100.5"),
    )
    assert book.apply_update(
        [level("offer", "101.0", "0"), level("bid", "100.5", "0.25"), level("bid", "99.5", "7")]
    )
    assert book.snapshot() == {
        "bids": [(D("100.5"), D("0.25")), (D("100"), D("2")), (D("99.5"), D("7"))],
        "asks": [(D("102"), D("4"))],
    }
    assert book.bids.best() == (D("100.5"), D("0.25"))
    assert book.snapshot(depth=1)["bids"] == [(D("100.5"), D("0.25"))]
    assert book.bids.depth_within(D("100")) == D("2.25")
    assert book.asks.depth_within(D("102")) == D("4")
    assert book.asks.depth_within(D("101.99")) == D("0")
    book.apply_update([level("offer", "150", "0")])  # removing an absent level is a no-op
    assert len(book.asks) == 1


def test_a_new_snapshot_replaces_the_book_and_invalidate_blocks_updates() -> None:
    book = OrderBook("ETH-USD")
    book.apply_snapshot([level("bid", "10", "1"), level("offer", "11", "1")])
    book.invalidate()
    assert not book.apply_update([level("bid", "10.5", "1")])
    book.apply_snapshot([level("bid", "20", "1")])
    assert book.snapshot() == {"bids": [(D("20"), D("1"))], "asks": []}
    assert book.best_ask() is None
    assert book.mid() is None
    assert book.spread() is None


prices = st.integers(min_value=1, max_value=60).map(lambda i: f"{i / 4:.2f}")
sizes = st.sampled_from(["0", "0.5", "1", "2.25", "10"])
updates = st.lists(st.tuples(st.sampled_from(["bid", "offer"]), prices, sizes), max_size=40)


@settings(max_examples=200, deadline=None)
@given(snapshot=updates, batches=st.lists(updates, max_size=10))
def test_the_book_matches_a_plain_model(
    snapshot: list[tuple[str, str, str]], batches: list[list[tuple[str, str, str]]]
) -> None:
    book = OrderBook("BTC-USD")
    model: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "offer": {}}

    def apply(changes: list[tuple[str, str, str]]) -> None:
        for side, price, size in changes:
            if D(size) == 0:
                model[side].pop(D(price), None)
            else:
                model[side][D(price)] = D(size)

    book.apply_snapshot([level(*u) for u in snapshot])
    apply(snapshot)
    for batch in batches:
        book.apply_update([level(*u) for u in batch])
        apply(batch)
        assert book.snapshot() == {
            "bids": sorted(model["bid"].items(), reverse=True),
            "asks": sorted(model["offer"].items()),
        }
        assert book.best_bid() == (max(model["bid"]) if model["bid"] else None)
        assert book.best_ask() == (min(model["offer"]) if model["offer"] else None)
