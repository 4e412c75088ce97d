"""The one backoff (engine.net.retry.Backoff): request retries, WebSocket reconnects and Redis probes wait by
it, each with its own jitter and bounds."""

from __future__ import annotations

import random

import pytest

from engine.marketdata import ws
from engine.net.retry import Backoff, Jitter, RetryPolicy
from engine.redis_conn import ProbeBackoff


def test_full_jitter_stays_under_a_capped_exponential_ceiling() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, maximum=1.0)
    rng = random.Random(7)
    assert [backoff.ceiling(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for attempt in range(12):
        draws = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= backoff.ceiling(attempt) for d in draws)
        assert min(draws) < backoff.ceiling(attempt) / 2  # full jitter reaches down towards zero


def test_equal_jitter_never_waits_less_than_half_the_ceiling() -> None:
    backoff = Backoff(initial=0.05, maximum=1.0, jitter=Jitter.EQUAL)
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = backoff.ceiling(attempt)
        assert all(ceiling / 2 <= backoff.delay(attempt, rng) <= ceiling for _ in range(200))


def test_the_retry_policy_and_the_socket_wait_by_the_same_backoff() -> None:
    policy = RetryPolicy(base_delay_s=0.05, max_delay_s=2.0)
    same = Backoff(initial=0.05, factor=2.0, maximum=2.0)
    for retry_number in range(1, 8):  # retry n waits like attempt n - 1
        assert policy.backoff(retry_number, random.Random(retry_number)) == same.delay(
            retry_number - 1, random.Random(retry_number)
        )
    assert ws.Backoff is Backoff
    socket = ws.CoinbaseSocket("ws://127.0.0.1:9/ws", [], lambda envelope, received_ns: None)
    assert isinstance(socket.backoff, Backoff)


def test_the_redis_probe_backs_off_with_equal_jitter_and_starts_over_on_reset() -> None:
    probe = ProbeBackoff(base_s=0.05, cap_s=0.4)
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all(c / 2 <= probe.next_delay() <= c for c in ceilings)
    probe.reset()
    assert 0.025 <= probe.next_delay() <= 0.05
    with pytest.raises(ValueError, match="0 < base_s <= cap_s"):
        ProbeBackoff(base_s=1.0, cap_s=0.5)
