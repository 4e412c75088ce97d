"""Whatever fails, no order is placed twice; timeouts and drops recover; 429 storms stay within our budget.

Every test checks the simulator's ledger (what the exchange actually holds), not just what the client says.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from engine.errors import ExchangeUnavailable, OutcomeUnknown, RateLimited, RequestTimeout
from engine.net.retry import RetryPolicy
from engine.ratelimit import BucketLimit, RateLimits
from engine.rest import LimitGtc, Side
from engine.sim import RateLimits as SimRateLimits
from engine.venues.advanced.types import CreateOrderResult
from tests.client.conftest import UNLIMITED, SimEnv

RESTING = LimitGtc(base_size="0.001", limit_price="1000.00")


def assert_ledger_consistent(env: SimEnv, outcomes: dict[str, Any]) -> None:
    """One ledger entry per client_order_id; every success is the ledger's order; nothing unaccounted."""
    placed = Counter(env.ledger_client_order_ids())
    assert all(count == 1 for count in placed.values()), f"placed twice: {placed.most_common(3)}"
    assert set(placed) <= set(outcomes), "the ledger holds an order no call knows about"
    for coid, outcome in outcomes.items():
        if isinstance(outcome, CreateOrderResult):
            order = env.sim.ledger.by_client_order_id(coid)
            assert order is not None, f"reported placed but absent: {coid}"
            assert order.order_id == outcome.order_id


async def place_many(env: SimEnv, n: int, **client_options: Any) -> dict[str, Any]:
    coids = [f"fault-test-{i:03d}" for i in range(n)]
    async with env.client(**client_options) as client:
        results = await asyncio.gather(
            *(client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id=c) for c in coids),
            return_exceptions=True,
        )
    return dict(zip(coids, results, strict=True))


async def test_no_order_is_placed_twice_under_drops_5xx_and_slow_responses(env: SimEnv) -> None:
    env.sim.faults.update(
        {
            "drop_after_accept_rate": 0.25,
            "error_5xx_rate": 0.15,
            "slow_response_rate": 0.1,
            "slow_response_s": 0.4,
        }
    )
    outcomes = await place_many(env, 30, timeout_s=0.2, rate_limits=UNLIMITED)
    unexpected = [o for o in outcomes.values() if not isinstance(o, CreateOrderResult | OutcomeUnknown)]
    assert not unexpected, unexpected
    assert_ledger_consistent(env, outcomes)
    assert env.sim.injected["drop_after_accept"] > 0, "the fault under test did happen"
    confirmed = [o for o in outcomes.values() if isinstance(o, CreateOrderResult) and o.confirmed_by_lookup]
    assert confirmed, "dropped responses were settled by looking the order up"


async def test_dropped_response_is_confirmed_by_lookup_not_resent(env: SimEnv) -> None:
    env.sim.faults.update({"drop_after_accept_rate": 1.0})
    async with env.client() as client:
        result = await client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id="drop-1")
        requests_before = env.sim.request_count(env.cdp.name)
        assert result.confirmed_by_lookup
        # the exchange saw: the POST, then one lookup; no second POST
    assert env.ledger_client_order_ids() == ["drop-1"]
    assert env.sim.ledger.by_client_order_id("drop-1").order_id == result.order_id  # type: ignore[union-attr]
    assert requests_before == 2


async def test_outcome_unknown_only_when_confirmation_also_fails(env: SimEnv) -> None:
    # Every response is held back past our timeout, lookups included: the order lands but nobody can tell.
    env.sim.faults.update({"slow_response_rate": 1.0, "slow_response_s": 0.5})
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.005, max_delay_s=0.01, budget_s=5.0)
    async with env.client(timeout_s=0.1, retry=policy) as client:
        with pytest.raises(OutcomeUnknown) as unknown:
            await client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id="unknown-1")
        assert unknown.value.client_order_id == "unknown-1"
        assert "confirming by client_order_id failed" in str(unknown.value)
        env.sim.faults.clear()
        # Once the exchange answers again, the caller can settle it, and the order exists exactly once.
        found = await client.find_order("unknown-1")
        assert found is not None
    assert env.ledger_client_order_ids() == ["unknown-1"]


async def test_5xx_then_recovery_places_exactly_once(env: SimEnv) -> None:
    env.sim.faults.update({"error_5xx_rate": 1.0})
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.005, max_delay_s=0.01, budget_s=5.0)
    async with env.client(retry=policy) as client:
        with pytest.raises(ExchangeUnavailable, match=r"503.*gave up after 3 attempts"):
            await client.accounts()
        with pytest.raises(OutcomeUnknown):
            await client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id="5xx-1")
        assert len(env.sim.ledger) == 0, "injected 5xx answer before the handler"
        env.sim.faults.clear()
        # The same client_order_id again: placed now, once.
        placed = await client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id="5xx-1")
        again = await client.create_order("BTC-USD", Side.BUY, RESTING, client_order_id="5xx-1")
        assert again.order_id == placed.order_id, "Coinbase idempotency: the existing order comes back"
    assert env.ledger_client_order_ids() == ["5xx-1"]


async def test_timeouts_raise_request_timeout_then_recover(env: SimEnv) -> None:
    env.sim.faults.update({"slow_response_rate": 1.0, "slow_response_s": 0.5})
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.005, max_delay_s=0.01, budget_s=5.0)
    async with env.client(timeout_s=0.1, retry=policy) as client:
        with pytest.raises(RequestTimeout, match=r"no response within 0.1s"):
            await client.key_permissions()
        env.sim.faults.update({"slow_response_rate": 0.5})
        # half the attempts time out; retries get through
        results = await asyncio.gather(*(client.key_permissions() for _ in range(6)), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) >= 1
        env.sim.faults.clear()
        assert (await client.key_permissions()).can_trade


async def test_a_429_storm_never_pushes_past_our_budget(env: SimEnv) -> None:
    env.sim.faults.update({"storm_429_rate": 1.0})
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.005, max_delay_s=0.01, budget_s=5.0)
    limits = RateLimits(private=BucketLimit(20, 5), default_pause_s=0.05)
    calls = 8
    async with env.client(retry=policy, rate_limits=limits) as client:
        results = await asyncio.gather(*(client.accounts() for _ in range(calls)), return_exceptions=True)
        stats = client.limiter_stats()
    assert all(isinstance(r, RateLimited) for r in results), results
    assert "rate limited by the exchange" in str(results[0])
    sent = env.sim.request_count(env.cdp.name)
    assert sent <= calls * policy.max_attempts, "each call stays within its attempts"
    assert env.sim.rate_limited_count(env.cdp.name) == sent
    assert stats.rate_limited == sent
    # and within our own rate: no window of 1 s saw more than burst + rate requests
    stamps = sorted(env.sim.request_timestamps(env.cdp.name))
    for i, start in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t - start < 1.0)
        assert in_window <= 5 + 20


@pytest.mark.parametrize(
    "sim_config",
    [{"html_429": True, "rate_limits": SimRateLimits(private_per_s=4, private_burst=2)}],
)
async def test_html_429_bodies_pause_and_retry_until_through(env: SimEnv) -> None:
    policy = RetryPolicy(max_attempts=8, base_delay_s=0.005, max_delay_s=0.02, budget_s=10.0)
    async with env.client(retry=policy, rate_limits=UNLIMITED) as client:
        results = await asyncio.gather(*(client.accounts() for _ in range(6)))
        stats = client.limiter_stats()
    assert all(r.items for r in results)
    assert stats.rate_limited > 0, "the exchange's limit was hit (our own was lifted)"
    assert stats.pauses > 0, "each 429 paused the pool until the exchange's reset"
