"""Which client_order_ids a journal holds, answered from memory: the order path must not wait on SQLite to
learn whether a strategy's own id was used before.

Exact for a recent window (the last `window` ids recorded: every id of a run up to that many), then a Bloom
filter over every older id the journal holds (an id enters it when it leaves the window, so the order path
pays for the filter only in runs of more than `window` orders). A miss is certain ("never used"); a hit in
the filter is only likely (under 1 % false positives) and is settled by the journal with a lookup in SQLite
off the event loop.
A set of every id would be exact, but a journal of ten million orders would hold ~1 GB of strings; the filter
takes ~34 MB (sized for twice the journal, at least 10 bits an id, rounded up to a power of two) and a window
of 100,000 ids ~15 MB. Loading it scans the journal once when it opens (~5 s for a million orders).
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["UsedIds"]

_HASHES: Final = 7  # bit positions an id sets; with 10 bits an id, ~0.8 % false positives when full
_BITS_PER_ID: Final = 10
_MIN_CAPACITY: Final = 1 << 16
_MASK64: Final = (1 << 64) - 1


class _Bloom:
    """A Bloom filter of a fixed capacity; positions by double hashing Python's own (per-process) str hash,
    which is fine for a filter that lives only as long as the process."""

    __slots__ = ("_bits", "_mask", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        size = 1 << max(3, (capacity * _BITS_PER_ID - 1).bit_length())  # bits, a power of two
        self._bits = bytearray(size >> 3)
        self._mask = size - 1
        self.capacity = capacity
        self.count = 0

    def add(self, item: str) -> None:
        h = hash(item) & _MASK64
        step = (h >> 32) | 1
        bits, mask = self._bits, self._mask
        for _ in range(_HASHES):
            position = h & mask
            bits[position >> 3] |= 1 << (position & 7)
            h += step
        self.count += 1

    def __contains__(self, item: str) -> bool:
        h = hash(item) & _MASK64
        step = (h >> 32) | 1
        bits, mask = self._bits, self._mask
        for _ in range(_HASHES):
            position = h & mask
            if not bits[position >> 3] & (1 << (position & 7)):
                return False
            h += step
        return True


class UsedIds:
    """The ids recorded, as a recent window (exact) and Bloom filters (likely). One thread uses it."""

    def __init__(self, expected: int = 0, *, window: int = 100_000) -> None:
        """`expected`: how many ids the journal holds now (the first filter is sized for twice that)."""
        self._window = window
        self._recent: set[str] = set()
        self._order: deque[str] = deque()
        # A full filter is kept and a new one twice its size started, so false positives stay bounded.
        self._filters = [_Bloom(max(_MIN_CAPACITY, 2 * expected))]

    def add(self, client_order_id: str) -> None:
        """An id just recorded: into the window (the oldest there moves to the filter)."""
        recent = self._recent
        if client_order_id in recent:
            return
        recent.add(client_order_id)
        order = self._order
        order.append(client_order_id)
        if len(order) > self._window:
            oldest = order.popleft()
            recent.discard(oldest)
            self.add_old(oldest)

    def add_old(self, client_order_id: str) -> None:
        """An id journalled earlier (loading the journal): into the filter only."""
        bloom = self._filters[-1]
        if bloom.count >= bloom.capacity:
            bloom = _Bloom(2 * bloom.capacity)
            self._filters.append(bloom)
        bloom.add(client_order_id)

    def seen(self, client_order_id: str) -> bool | None:
        """True: used. False: never used. None: perhaps (a filter's hit outside the window): look it up."""
        if client_order_id in self._recent:
            return True
        for bloom in self._filters:
            if client_order_id in bloom:
                return None
        return False

    def __len__(self) -> int:
        return len(self._order) + sum(bloom.count for bloom in self._filters)
