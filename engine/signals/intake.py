"""Where accepted signals go: a bounded in-process queue, or (see `engine.signals.stream`) a Redis stream.

The webhook talks to a `SignalSink`; `submit` either takes the signal or raises `IntakeFull`, at once. A full
queue is back-pressure made visible: the webhook answers 503 with Retry-After and the platform retries,
instead of the engine buffering without bound and executing stale signals late.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from engine.errors import EngineError
from engine.signals.model import Signal

__all__ = ["IntakeFull", "SignalQueue", "SignalSink"]


class IntakeFull(EngineError):
    """The intake cannot take a signal now. `retry_after_s` is a hint for the sender."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SignalSink(Protocol):
    async def submit(self, signal: Signal) -> str:
        """Take `signal` or raise `IntakeFull`; returns a receipt (a queue position or a stream entry id)."""
        ...


class SignalQueue:
    """A bounded FIFO of accepted signals, worked by the trading core (`await queue.get()`)."""

    __slots__ = ("_queue", "accepted", "refused_full", "retry_after_s")

    def __init__(self, maxsize: int = 1024, *, retry_after_s: float = 1.0) -> None:
        if maxsize < 1:
            raise ValueError("the signal queue needs room for at least one signal")
        self._queue: asyncio.Queue[Signal] = asyncio.Queue(maxsize)
        self.retry_after_s = retry_after_s
        self.accepted = 0
        self.refused_full = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    async def submit(self, signal: Signal) -> str:
        try:
            self._queue.put_nowait(signal)
        except asyncio.QueueFull:
            self.refused_full += 1
            raise IntakeFull("the signal queue is full", retry_after_s=self.retry_after_s) from None
        self.accepted += 1
        return str(self.accepted)

    async def get(self) -> Signal:
        return await self._queue.get()

    def get_nowait(self) -> Signal:
        return self._queue.get_nowait()

    def task_done(self) -> None:
        self._queue.task_done()
