"""A price-level order book (level 2): sizes by price per side, with a record of changed levels.

Prices are kept in a sorted list (bisect: O(log n) lookup; insertion shifts a short array of ~depth levels)
and sizes in a dict. Every change is remembered until `drain_changes()`, which is what the WebSocket
`l2_data` updates are made of, so the published stream and this book can never disagree.

Deliberately not `engine.marketdata.book`: this is the ground truth the client's book is tested against, so
the two share no code (a bug in shared code would pass that test on both sides).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from decimal import Decimal

BID = "bid"
ASK = "offer"  # Coinbase's level2 name for the ask side

ZERO = Decimal(0)


class BookSide:
    __slots__ = ("_prices", "_sizes", "is_bid")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self._prices: list[Decimal] = []  # ascending
        self._sizes: dict[Decimal, Decimal] = {}

    def __len__(self) -> int:
        return len(self._prices)

    def best(self) -> Decimal | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.is_bid else self._prices[0]

    def size_at(self, price: Decimal) -> Decimal:
        return self._sizes.get(price, ZERO)

    def set(self, price: Decimal, size: Decimal) -> bool:
        """Set a level's size (0 removes it). Returns whether anything changed."""
        current = self._sizes.get(price)
        if size <= ZERO:
            if current is None:
                return False
            del self._sizes[price]
            del self._prices[bisect_left(self._prices, price)]
            return True
        if current == size:
            return False
        if current is None:
            insort(self._prices, price)
        self._sizes[price] = size
        return True

    def levels(self, depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Best first."""
        prices = reversed(self._prices) if self.is_bid else iter(self._prices)
        out: list[tuple[Decimal, Decimal]] = []
        for price in prices:
            if depth is not None and len(out) >= depth:
                break
            out.append((price, self._sizes[price]))
        return out

    def walk(self) -> Iterator[tuple[Decimal, Decimal]]:
        """Best first. While walking, the caller may resize or remove the level just yielded (as a taker
        does), nothing else. No copy of the price list: a walk that stops at the first level is O(1)."""
        prices, sizes = self._prices, self._sizes
        if self.is_bid:  # from the end: removing the level just yielded leaves the ones below in place
            i = len(prices) - 1
            while i >= 0:
                price = prices[i]
                yield price, sizes[price]
                i -= 1
        else:
            i = 0
            while i < len(prices):
                price = prices[i]
                yield price, sizes[price]
                if i < len(prices) and prices[i] == price:  # still there; else the next level moved up to i
                    i += 1

    def prices(self) -> list[Decimal]:
        return list(self._prices)


class OrderBook:
    __slots__ = ("_changes", "asks", "bids", "product_id")

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self._changes: dict[tuple[str, Decimal], Decimal] = {}

    def side(self, name: str) -> BookSide:
        return self.bids if name == BID else self.asks

    def set_level(self, side: str, price: Decimal, size: Decimal) -> None:
        if self.side(side).set(price, size):
            self._changes[(side, price)] = size if size > ZERO else ZERO

    def best_bid(self) -> Decimal | None:
        return self.bids.best()

    def best_ask(self) -> Decimal | None:
        return self.asks.best()

    def drain_changes(self) -> list[tuple[str, Decimal, Decimal]]:
        """(side, price, new_size) for every level changed since the last drain; new_size 0 means removed."""
        if not self._changes:
            return []
        changes = [(side, price, size) for (side, price), size in self._changes.items()]
        self._changes.clear()
        return changes

    def snapshot(self, depth: int | None = None) -> dict[str, list[tuple[Decimal, Decimal]]]:
        return {"bids": self.bids.levels(depth), "asks": self.asks.levels(depth)}
