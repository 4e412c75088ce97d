"""Credit pools per key and request class, on the engine's limiter: locally with a hand-driven clock, and
shared through a real Redis by two clients of one key."""

from __future__ import annotations

import asyncio

import pytest

from engine.clock import ManualClock
from engine.venues.derivatives.credits import (
    CreditLimits,
    CreditPool,
    GatewayCredits,
    RequestClass,
    request_class,
)
from tests.client.clock import settle
from tests.scaleout.conftest import redis_client, redis_server, redis_settings

__all__ = ["redis_client", "redis_server", "redis_settings"]  # the Redis fixtures, used below


def test_methods_fall_into_their_classes() -> None:
    assert request_class("private/buy") is RequestClass.MATCHING
    assert request_class("private/cancel_all_by_instrument") is RequestClass.MATCHING
    assert request_class("private/get_positions") is RequestClass.NON_MATCHING
    assert request_class("public/auth") is RequestClass.NON_MATCHING
    assert request_class("private/subscribe") is RequestClass.SUBSCRIBE


def test_a_pool_needs_sane_numbers() -> None:
    with pytest.raises(ValueError, match="capacity"):
        CreditPool(cost=500, refill=10, capacity=100)


async def test_each_class_spends_its_own_pool_and_waits_for_its_refill() -> None:
    clock = ManualClock()
    limits = CreditLimits(
        matching=CreditPool(cost=1, refill=5, capacity=3),
        non_matching=CreditPool(cost=500, refill=1000, capacity=1000),
    )
    credits = GatewayCredits("key-a", limits, clock=clock)
    assert all([credits.try_spend(RequestClass.MATCHING) for _ in range(3)])
    assert not credits.try_spend(RequestClass.MATCHING)  # the matching pool is empty...
    assert credits.try_spend(RequestClass.NON_MATCHING)  # ...the other one is not
    assert credits.try_spend(RequestClass.NON_MATCHING)
    assert not credits.try_spend(RequestClass.NON_MATCHING)  # 500 of 1000 each

    waiting = asyncio.ensure_future(credits.spend(RequestClass.MATCHING))
    await settle()
    assert not waiting.done()
    clock.advance(0.2)  # one credit at 5/s
    await settle()
    assert waiting.done()


async def test_exhausted_pauses_the_pool_for_the_gateways_hint() -> None:
    clock = ManualClock()
    credits = GatewayCredits("key-a", clock=clock)
    credits.exhausted(RequestClass.MATCHING, 2.0)
    assert not credits.try_spend(RequestClass.MATCHING)
    clock.advance(1.0)
    assert not credits.try_spend(RequestClass.MATCHING)
    clock.advance(1.5)  # past the pause, refilled at 4.5/s
    assert credits.try_spend(RequestClass.MATCHING)


async def test_two_workers_on_one_key_share_the_pool_through_redis(redis_client: object) -> None:
    limits = CreditLimits(matching=CreditPool(cost=1, refill=2, capacity=4))
    first = GatewayCredits.shared("key-a", redis_client, limits, namespace="t")  # type: ignore[arg-type]
    second = GatewayCredits.shared("key-a", redis_client, limits, namespace="t")  # type: ignore[arg-type]
    other_key = GatewayCredits.shared("key-b", redis_client, limits, namespace="t")  # type: ignore[arg-type]
    for credits in (first, second, first, second):  # the burst of 4, between them
        await credits.spend(RequestClass.MATCHING)
    # The fifth on key-a waits for the refill (one credit at 2/s); key-b's pool is its own and full.
    fifth = asyncio.ensure_future(second.spend(RequestClass.MATCHING))
    assert await other_key.spend(RequestClass.MATCHING) < 0.4
    assert await fifth >= 0.2
