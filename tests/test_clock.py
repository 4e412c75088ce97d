"""engine.clock: the system clock is the stdlib's own functions; the manual clock moves only when told, wall
and monotonic together, and runs its timers in due order at their due times."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from engine.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from engine.ratelimit import TokenBucket


def test_the_system_clock_reads_the_stdlib_clocks_without_a_wrapper() -> None:
    # what keeps a token bucket's clock read at one attribute lookup over time.monotonic()
    assert SystemClock.monotonic is time.monotonic
    assert SystemClock.now is time.time
    clock: Clock = SYSTEM_CLOCK
    assert clock.monotonic() <= time.monotonic()


def test_a_manual_clock_starts_at_midnight_utc_and_moves_only_when_told() -> None:
    clock = ManualClock()
    assert datetime.fromtimestamp(clock.now(), UTC).time().isoformat() == "00:00:00"
    wall, monotonic = clock.now(), clock.monotonic()
    assert (clock.now(), clock.monotonic()) == (wall, monotonic)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (wall + 2.5, monotonic + 2.5)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    clock.set_wall(wall - 3600)  # the host's clock stepped back an hour: intervals do not notice
    assert (clock.now(), clock.monotonic()) == (wall - 3600, monotonic + 2.5)


def test_timers_run_in_due_order_each_at_its_own_time() -> None:
    clock = ManualClock(monotonic=0.0)
    ran: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: ran.append(("b", clock.monotonic())))
    clock.call_later(1.0, lambda: ran.append(("a", clock.monotonic())))
    cancelled = clock.call_later(1.5, lambda: ran.append(("cancelled", clock.monotonic())))
    clock.call_later(5.0, lambda: ran.append(("later", clock.monotonic())))
    cancelled.cancel()
    assert clock.armed == 3
    clock.advance(3.0)
    assert ran == [("a", 1.0), ("b", 2.0)]
    assert clock.monotonic() == 3.0
    assert clock.armed == 1


def test_a_bucket_refills_on_the_manual_clock() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=4, capacity=2, clock=clock)
    assert bucket.try_acquire()
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(0.25)  # one token at 4/s
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(60)  # capped at the capacity
    assert bucket.tokens == 2
