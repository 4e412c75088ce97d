"""The local level2 order book: sizes by price per side, kept exactly equal to the exchange's.

Prices and sizes are `Decimal`, parsed once from the wire strings, so the book compares exactly with the
exchange's (no float rounding). Each side keeps its prices in an ascending list (bisect: O(log n) search,
O(depth) insert of a small array) and sizes in a dict, so the best price is an index away and an update is
a dict write plus, only when a level appears or disappears, a list insert or delete.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from decimal import Decimal

_ZERO = Decimal(0)

BID = "bid"
OFFER = "offer"  # Coinbase's level2 name for the ask side


class BookSide:
    __slots__ = ("_prices", "_sizes", "is_bid")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self._prices: list[Decimal] = []  # ascending
        self._sizes: dict[Decimal, Decimal] = {}

    def __len__(self) -> int:
        return len(self._prices)

    def clear(self) -> None:
        self._prices.clear()
        self._sizes.clear()

    def set(self, price: Decimal, size: Decimal) -> None:
        """Set a level's size; zero removes the level."""
        sizes = self._sizes
        if size == _ZERO:
            if sizes.pop(price, None) is not None:
                del self._prices[bisect_left(self._prices, price)]
            return
        if price not in sizes:
            insort(self._prices, price)
        sizes[price] = size

    def best(self) -> tuple[Decimal, Decimal] | None:
        if not self._prices:
            return None
        price = self._prices[-1] if self.is_bid else self._prices[0]
        return price, self._sizes[price]

    def best_price(self) -> Decimal | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.is_bid else self._prices[0]

    def size_at(self, price: Decimal) -> Decimal:
        return self._sizes.get(price, _ZERO)

    def levels(self, depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """(price, size), best first."""
        prices = self._prices[::-1] if self.is_bid else self._prices
        if depth is not None:
            prices = prices[:depth]
        sizes = self._sizes
        return [(price, sizes[price]) for price in prices]

    def depth_within(self, price_limit: Decimal) -> Decimal:
        """Total size at prices at least as good as `price_limit`."""
        if self.is_bid:
            return sum(
                (self._sizes[p] for p in self._prices[bisect_left(self._prices, price_limit) :]), _ZERO
            )
        end = bisect_right(self._prices, price_limit)
        return sum((self._sizes[p] for p in self._prices[:end]), _ZERO)


class OrderBook:
    """One product's level2 book. `ready` is False until a snapshot has been applied (and after a gap)."""

    __slots__ = ("asks", "bids", "product_id", "ready", "updates_applied")

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.ready = False
        self.updates_applied = 0

    def apply_snapshot(self, levels: Iterable[Mapping[str, str]]) -> None:
        """Replace the whole book with a level2 `snapshot` event's `updates`."""
        self.bids.clear()
        self.asks.clear()
        self._apply(levels)
        self.ready = True

    def apply_update(self, levels: Iterable[Mapping[str, str]]) -> bool:
        """Apply a level2 `update` event's `updates`. Ignored (returns False) until a snapshot has arrived."""
        if not self.ready:
            return False
        self._apply(levels)
        return True

    def _apply(self, levels: Iterable[Mapping[str, str]]) -> None:
        bids, asks = self.bids, self.asks
        for level in levels:
            side = bids if level["side"] == BID else asks
            side.set(Decimal(level["price_level"]), Decimal(level["new_quantity"]))
        self.updates_applied += 1

    def invalidate(self) -> None:
        """Messages were lost: the book can no longer be trusted until the next snapshot."""
        self.ready = False

    def best_bid(self) -> Decimal | None:
        return self.bids.best_price()

    def best_ask(self) -> Decimal | None:
        return self.asks.best_price()

    def mid(self) -> Decimal | None:
        bid, ask = self.bids.best_price(), self.asks.best_price()
        if bid is None or ask is None:
            return None
        return (bid + ask) / 2

    def spread(self) -> Decimal | None:
        bid, ask = self.bids.best_price(), self.asks.best_price()
        if bid is None or ask is None:
            return None
        return ask - bid

    def snapshot(self, depth: int | None = None) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """{"bids": [...], "asks": [...]}, each (price, size) best first."""
        return {"bids": self.bids.levels(depth), "asks": self.asks.levels(depth)}

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.product_id!r}, ready={self.ready}, levels={len(self.bids)}/{len(self.asks)}, "
            f"best={self.best_bid()}/{self.best_ask()})"
        )
