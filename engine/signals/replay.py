"""Seen signal ids: a replayed signal id is refused at the door.

`LocalReplayGuard` remembers ids in this process (one webhook); `RedisReplayGuard` remembers them in Redis
with `SET NX PX`, one atomic round trip, so several webhooks behind a load balancer refuse each other's
replays too. Ids are kept for `ttl_s` (default a day), far longer than the 30-second signature window.

This is the first line. The second is the execution claim in `engine.signals.stream` and the third the
signal-derived `client_order_id`, so even an id that slips past here (a guard restarted empty) is not
executed twice.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from engine.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    import redis.asyncio as aioredis


__all__ = ["LocalReplayGuard", "RedisReplayGuard", "ReplayGuard"]

DEFAULT_TTL_S = 24 * 3600.0


class ReplayGuard(Protocol):
    async def first_seen(self, signal_id: str) -> bool:
        """Record `signal_id`; True the first time within the TTL, False for a replay."""
        ...

    async def forget(self, signal_id: str) -> None:
        """Un-record an id whose signal was not taken after all (queue full), so the sender may retry it."""
        ...


class LocalReplayGuard:
    """In-process seen-id set with a TTL, bounded to `max_ids` (the oldest are dropped first)."""

    __slots__ = ("_clock", "_seen", "max_ids", "ttl_s")

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_ids: int = 1_000_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_ids = max_ids
        self._clock = clock.monotonic
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> expiry, in insertion (= expiry) order

    def __len__(self) -> int:
        return len(self._seen)

    async def first_seen(self, signal_id: str) -> bool:
        now = self._clock()
        seen = self._seen
        while seen:
            oldest, expiry = next(iter(seen.items()))
            if expiry > now and len(seen) < self.max_ids:
                break
            del seen[oldest]
        known = seen.get(signal_id)
        if known is not None and known > now:
            return False
        seen[signal_id] = now + self.ttl_s
        return True

    async def forget(self, signal_id: str) -> None:
        self._seen.pop(signal_id, None)


class RedisReplayGuard:
    """Seen-id set in Redis, shared by every webhook: `SET <namespace>:seen:<id> 1 NX PX <ttl>`."""

    __slots__ = ("_redis", "namespace", "ttl_ms")

    def __init__(
        self, redis: aioredis.Redis, *, namespace: str = "engine", ttl_s: float = DEFAULT_TTL_S
    ) -> None:
        self._redis = redis
        self.namespace = namespace
        self.ttl_ms = int(ttl_s * 1000)

    def _key(self, signal_id: str) -> str:
        return f"{self.namespace}:seen:{signal_id}"

    async def first_seen(self, signal_id: str) -> bool:
        return bool(await self._redis.set(self._key(signal_id), b"1", nx=True, px=self.ttl_ms))

    async def forget(self, signal_id: str) -> None:
        await self._redis.delete(self._key(signal_id))
