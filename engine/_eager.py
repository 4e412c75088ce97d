"""Eager tasks on 3.11: run a coroutine inline up to its first suspension, then let a `Task` carry it on.

Two places on the tick-to-wire path would otherwise wait a turn of the event loop for a new task to be
scheduled: a strategy's coroutine callback (`start_eager`, used by the market-data feed) and aiohttp's task
that writes a request's body after its headers (`await_with_eager_tasks`, used by the REST transport).
Python 3.12 does this natively: `asyncio.Task(coro, eager_start=True)`, which aiohttp already uses for its
body writer there. On 3.11 it is done here: the Task is created first and made the loop's current task while
its coroutine runs inline (so `asyncio.current_task()`, and aiohttp's timeouts that cancel it, see the task
that owns the coroutine, not the caller), in the task's own context; the task's first step then hands back
whatever the coroutine is waiting on. Semantics otherwise match a task created the usual way: its result,
error or cancellation is the task's, observed by whoever awaits it or its done callbacks.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["await_with_eager_tasks", "resume", "start_eager"]

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


if sys.version_info >= (3, 12):  # pragma: no cover - the interpreter under test is 3.11

    def start_eager(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` now up to its first suspension; the returned task carries on from there."""
        return asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)

    async def await_with_eager_tasks(coro: Coroutine[Any, Any, T]) -> T:
        """`await coro` (aiohttp starts its body writer eagerly itself on 3.12+)."""
        return await coro

else:
    from asyncio.tasks import _enter_task, _leave_task

    class _InlineRun:
        """How the inline run of a coroutine ended: a result, an error, or the awaitable it waits on."""

        __slots__ = ("error", "finished", "result", "waiting_on")

        def __init__(self) -> None:
            self.finished = False
            self.result: Any = None
            self.error: BaseException | None = None
            self.waiting_on: Any = None

    async def _carry_on(coro: Coroutine[Any, Any, T], run: _InlineRun) -> T:
        """The eager task's body: settle what the inline run ended with, else keep driving `coro`."""
        error = run.error
        if error is not None:
            run.error = None
            try:
                raise error
            finally:
                del error  # no frame -> exception -> traceback -> frame cycle to keep the strategy alive
        if run.finished:
            finished: T = run.result
            return finished
        waiting_on, run.waiting_on = run.waiting_on, None
        return await resume(coro, waiting_on)

    def _start_eager(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], context: contextvars.Context | None
    ) -> asyncio.Task[T]:
        run = _InlineRun()
        if context is None:
            context = contextvars.copy_context()
        # asyncio.Task directly, not loop.create_task: this also runs as the loop's task factory
        task: asyncio.Task[T] = asyncio.Task(_carry_on(coro, run), loop=loop, context=context)
        caller = asyncio.current_task(loop)
        if caller is not None:
            _leave_task(loop, caller)
        _enter_task(loop, task)
        try:
            run.waiting_on = context.run(coro.send, None)
        except StopIteration as stop:
            run.finished, run.result = True, stop.value
        except BaseException as error:  # raised again by the task: its owner sees it
            # Without this frame in its traceback (the frame holds the task, which will hold the error), and
            # without a local holding the traceback (a frame <-> traceback cycle keeping the strategy alive).
            run.error = error.with_traceback(error.__traceback__.tb_next if error.__traceback__ else None)
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise
        finally:
            _leave_task(loop, task)
            if caller is not None:
                _enter_task(loop, caller)
        return task

    def start_eager(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` now up to its first suspension; the returned task carries on from there."""
        return _start_eager(asyncio.get_running_loop(), coro, None)

    def _eager_task_factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        *,
        context: contextvars.Context | None = None,
        **_: Any,
    ) -> asyncio.Task[Any]:
        return _start_eager(loop, coro, context)

    async def await_with_eager_tasks(coro: Coroutine[Any, Any, T]) -> T:
        """`await coro`, except that a task it creates before its first suspension starts eagerly (as on
        3.12, where aiohttp writes a request body that way). The loop's task factory is swapped only while
        `coro` runs inline, and not at all if the program set its own."""
        loop = asyncio.get_running_loop()
        if loop.get_task_factory() is not None:
            return await coro
        loop.set_task_factory(_eager_task_factory)  # type: ignore[arg-type]
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            loop.set_task_factory(None)
        return await resume(coro, waiting_on)
