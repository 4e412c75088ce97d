"""Eager tasks where asyncio has them, as aiohttp does: a coroutine runs inline up to its first suspension.

A strategy's coroutine callback (`start_eager`, used by the market-data feed) would otherwise wait a turn
of the event loop before its first line runs. Python 3.12 added eager tasks (`asyncio.Task(coro,
eager_start=True)`); on 3.11 the task starts on the next turn of the loop, exactly as aiohttp starts its own
tasks there (its request-body writer, its WebSocket pings). No private asyncio API is used on any version.

`resume` carries on, inside the awaiting task, a coroutine that was run by hand up to a suspension: the
simulator's server runs each request handler inline that way and only makes a task of the ones that wait.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["resume", "start_eager"]

T = TypeVar("T")


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], waiting_on: Any) -> Generator[Any, None, T]:
    """Carry on a coroutine that was run by hand up to a suspension on `waiting_on`, inside the awaiting task:
    the task waits on what the coroutine yielded, and whatever it throws in (a cancellation) is passed on."""
    while True:
        try:
            yield waiting_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as error:  # thrown in by the task, e.g. CancelledError
            try:
                waiting_on = coro.throw(error)
            except StopIteration as stop:
                thrown_result: T = stop.value
                return thrown_result
        else:
            try:
                waiting_on = coro.send(None)
            except StopIteration as stop:
                result: T = stop.value
                return result


if sys.version_info >= (3, 12):

    def start_eager(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` now up to its first suspension; the returned task carries on from there."""
        return asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)

else:

    def start_eager(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task for `coro`, first run on the loop's next turn (3.11 has no eager tasks)."""
        return asyncio.get_running_loop().create_task(coro)
