"""The streams book: snapshot, chained changes, a gap found by change ids, resync from the next snapshot.

Driven with the channel's own frames, decoded as the socket decodes them; no connection is needed for what
these check (the resync request of a gap fails here, for want of one, and is logged).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from engine.marketdata.book import OrderBook
from engine.venues.derivatives.streams import MarketStreams
from engine.venues.derivatives.types import BookMessage

CHANNEL = "book.BTC_USDC-PERPETUAL.100ms"


def _message(raw: str) -> BookMessage:
    return msgspec.json.decode(raw.encode(), type=BookMessage)


SNAPSHOT = _message(
    '{"type":"snapshot","instrument_name":"BTC_USDC-PERPETUAL","change_id":10,"timestamp":1,'
    '"bids":[["new",50000.5,0.1],["new",49999,2]],"asks":[["new",50001,0.30000000000000004]]}'
)


async def test_snapshot_then_chained_changes_build_the_book() -> None:
    streams = MarketStreams("ws://127.0.0.1:9/unused")
    book = OrderBook("BTC_USDC-PERPETUAL")
    assert streams._apply_book(CHANNEL, book, SNAPSHOT)
    assert book.ready
    assert book.best_bid() == Decimal("50000.5")
    assert book.asks.size_at(Decimal(50001)) == Decimal("0.30000000000000004")
    change = _message(
        '{"type":"change","instrument_name":"BTC_USDC-PERPETUAL","change_id":11,"prev_change_id":10,'
        '"bids":[["delete",50000.5,0],["change",49999,1.5]],"asks":[["new",50000.9,1]]}'
    )
    assert streams._apply_book(CHANNEL, book, change)
    assert book.best_bid() == Decimal(49999)
    assert book.bids.size_at(Decimal(49999)) == Decimal("1.5")
    assert book.best_ask() == Decimal("50000.9")
    assert streams.book_stats.changes == 1
    assert streams.book_stats.gaps == 0


async def test_a_gap_invalidates_the_book_until_the_next_snapshot() -> None:
    streams = MarketStreams("ws://127.0.0.1:9/unused")

    book = OrderBook("BTC_USDC-PERPETUAL")
    streams._apply_book(CHANNEL, book, SNAPSHOT)
    skipped = _message(
        '{"type":"change","instrument_name":"BTC_USDC-PERPETUAL","change_id":13,"prev_change_id":12,'
        '"bids":[["new",50002,1]],"asks":[]}'
    )
    assert not streams._apply_book(CHANNEL, book, skipped)
    assert not book.ready
    assert streams.book_stats.gaps == 1
    assert book.bids.size_at(Decimal(50002)) == 0  # nothing applied after the gap
    follow_on = _message(
        '{"type":"change","instrument_name":"BTC_USDC-PERPETUAL","change_id":14,"prev_change_id":13,'
        '"bids":[["new",50003,1]],"asks":[]}'
    )
    assert not streams._apply_book(CHANNEL, book, follow_on)  # still waiting for a snapshot
    assert streams.book_stats.ignored == 1
    fresh = _message(
        '{"type":"snapshot","instrument_name":"BTC_USDC-PERPETUAL","change_id":20,'
        '"bids":[["new",50004,1]],"asks":[["new",50005,1]]}'
    )
    assert streams._apply_book(CHANNEL, book, fresh)
    assert book.ready
    assert book.best_bid() == Decimal(50004)
    assert len(book.bids) == 1  # the snapshot replaced the old levels
    await streams.close()
