"""Eager tasks: a coroutine runs inline up to its first wait, as its own task, and finishes like any task."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from engine._eager import await_with_eager_tasks, start_eager

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="caller")


async def test_runs_inline_up_to_the_first_wait_as_its_own_task() -> None:
    steps: list[str] = []
    gate = asyncio.get_running_loop().create_future()
    caller = asyncio.current_task()

    async def strategy() -> str:
        steps.append("inline")
        me = asyncio.current_task()
        assert me is not None
        assert me is not caller
        REQUEST_ID.set("strategy")  # the task's own context, not the caller's
        value = await gate
        assert asyncio.current_task() is me
        steps.append("resumed")
        return f"{value}-{REQUEST_ID.get()}"

    task = start_eager(strategy())
    assert steps == ["inline"]  # before the caller yields once
    assert asyncio.current_task() is caller
    assert REQUEST_ID.get() == "caller"
    gate.set_result("done")
    assert await task == "done-strategy"
    assert steps == ["inline", "resumed"]


async def test_a_coroutine_that_never_waits_or_fails_inline_settles_its_task() -> None:
    async def quick() -> int:
        return 7

    async def broken() -> None:
        raise ValueError("bad signal")

    assert await start_eager(quick()) == 7
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


async def test_tasks_created_before_the_first_wait_start_eagerly_and_the_factory_is_restored() -> None:
    loop = asyncio.get_running_loop()
    started: list[str] = []

    async def writer() -> None:
        started.append("writer")

    async def request() -> str:
        task = asyncio.create_task(writer())
        assert started == ["writer"]  # ran inline, as aiohttp's body writer does on 3.12
        await asyncio.sleep(0)
        later = asyncio.create_task(writer())  # after the first wait: an ordinary task again
        assert started == ["writer"]
        await task
        await later
        return "response"

    assert await await_with_eager_tasks(request()) == "response"
    assert loop.get_task_factory() is None
    assert started == ["writer", "writer"]


async def test_a_program_task_factory_is_left_alone() -> None:
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object) -> asyncio.Task[object]:
        made.append("task")
        return asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:

        async def request() -> None:
            await asyncio.create_task(asyncio.sleep(0))

        await await_with_eager_tasks(request())
        assert made == ["task"]
        assert loop.get_task_factory() is factory
    finally:
        loop.set_task_factory(None)
