"""Tasks for strategies' coroutines: on 3.12+ a coroutine runs inline up to its first wait, as its own task;
on 3.11 (no eager tasks) on the loop's next turn. Either way it finishes like any task. `resume` carries on
a coroutine that was run by hand, inside the awaiting task, as the simulator's server does."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any

import pytest

from engine._eager import resume, start_eager

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="caller")
EAGER = sys.version_info >= (3, 12)


async def test_runs_as_its_own_task_inline_where_asyncio_has_eager_tasks() -> None:
    steps: list[str] = []
    gate = asyncio.get_running_loop().create_future()
    caller = asyncio.current_task()

    async def strategy() -> str:
        steps.append("started")
        me = asyncio.current_task()
        assert me is not None
        assert me is not caller
        REQUEST_ID.set("strategy")  # the task's own context, not the caller's
        value = await gate
        assert asyncio.current_task() is me
        steps.append("resumed")
        return f"{value}-{REQUEST_ID.get()}"

    task = start_eager(strategy())
    assert steps == (["started"] if EAGER else [])  # before the caller yields once
    assert asyncio.current_task() is caller
    await asyncio.sleep(0)
    assert steps == ["started"]
    assert REQUEST_ID.get() == "caller"
    gate.set_result("done")
    assert await task == "done-strategy"
    assert steps == ["started", "resumed"]


async def test_a_coroutine_that_never_waits_or_fails_settles_its_task() -> None:
    async def quick() -> int:
        return 7

    async def broken() -> None:
        raise ValueError("bad signal")

    done = start_eager(quick())
    assert done.done() is EAGER
    assert await done == 7
    failed = start_eager(broken())
    with pytest.raises(ValueError, match="bad signal"):
        await failed


async def test_cancelling_the_task_reaches_the_coroutine_where_it_waits() -> None:
    cleaned: list[bool] = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    task = start_eager(waits_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned == [True]


def _run_by_hand(coro: Coroutine[Any, Any, Any]) -> Any:
    """What the simulator's server does: run a handler inline up to its first suspension."""
    return coro.send(None)


async def _carry_on(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    return await resume(coro, waiting_on)


async def test_resume_carries_on_a_coroutine_run_by_hand() -> None:
    gate = asyncio.get_running_loop().create_future()

    async def handler() -> str:
        value = await gate
        await asyncio.sleep(0)
        return f"answered {value}"

    coro = handler()
    waiting_on = _run_by_hand(coro)
    assert waiting_on is gate
    task = asyncio.get_running_loop().create_task(_carry_on(coro, waiting_on))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result("now")
    assert await task == "answered now"


async def test_resume_passes_a_cancellation_in_where_the_coroutine_waits() -> None:
    cleaned: list[str] = []

    async def handler() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("cleaned")

    coro = handler()
    task = asyncio.get_running_loop().create_task(_carry_on(coro, _run_by_hand(coro)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned"]
