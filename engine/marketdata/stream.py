"""A bounded, single-consumer async stream: what `async for` over market data reads from.

The producer never waits: when the consumer falls behind, the oldest items are dropped (and counted), because
a strategy wants the latest market, not a backlog. A conflating stream (maxlen=1) keeps only the newest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Stream(Generic[T]):
    __slots__ = ("_closed", "_items", "_waiter", "dropped")

    def __init__(self, maxlen: int = 1024) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def push(self, item: T) -> None:
        items = self._items
        if len(items) == items.maxlen:
            self.dropped += 1
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.popleft()
