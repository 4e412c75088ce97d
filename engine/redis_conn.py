"""Connections to the Redis that workers share, and the backoff used to probe it while it is away.

Redis is the `[redis]` extra: this module is the one place that imports the `redis` package at run time, and
only when a connection is asked for, so a plain install runs everything that does not use Redis. A config that
does use it without the extra fails at start with a `ConfigError` that names the install command.

Every command gets a short timeout (a worker must notice an outage in well under a second, then fall back)
and at most one immediate retry: after a Redis restart the first command on a pooled connection fails on the
dead socket, and the retry on a fresh connection is what succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.backoff import Backoff, Jitter
from engine.errors import ConfigError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

try:
    from redis.exceptions import RedisError, ResponseError
except ModuleNotFoundError:  # without the extra no Redis client exists, so nothing can raise these

    class RedisError(Exception):  # type: ignore[no-redef]
        """Stands in for `redis.exceptions.RedisError` on an install without the `[redis]` extra."""

    class ResponseError(RedisError):  # type: ignore[no-redef]
        """Stands in for `redis.exceptions.ResponseError` on an install without the `[redis]` extra."""


__all__ = [
    "INSTALL_HINT",
    "ProbeBackoff",
    "RedisError",
    "RedisSettings",
    "ResponseError",
    "connect",
    "require_redis",
]

INSTALL_HINT = "pip install 'coinbase-engine[redis]'"


def require_redis(setting: str) -> None:
    """Refuse, naming `setting` and the extra that provides it, when the `redis` package is not installed."""
    try:
        import redis.asyncio  # noqa: F401 - only whether it imports
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{setting} is set but the redis package is not installed: {INSTALL_HINT}") from exc


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where the shared Redis is and how patient to be with it.

    `timeout_s` bounds every command (blocking reads add their own block time); `namespace` prefixes every
    key, so several engines (or test runs) can share one Redis without meeting.
    """

    url: str = "redis://127.0.0.1:6379/0"
    timeout_s: float = 0.5
    namespace: str = "engine"


def connect(settings: RedisSettings, *, extra_timeout_s: float = 0.0) -> aioredis.Redis:
    """A client (with its own connection pool) for `settings`; `extra_timeout_s` for blocking commands.

    Raises `ConfigError` when the `[redis]` extra is not installed."""
    require_redis("a Redis URL")
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aioredis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_s + extra_timeout_s,
        socket_connect_timeout=settings.timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )


class ProbeBackoff:
    """Exponential backoff with equal jitter (half fixed, half random), capped at `cap_s`: the delay before
    the next probe of an absent Redis. The cap bounds how long after Redis returns every worker notices."""

    __slots__ = ("_attempt", "base_s", "cap_s")

    def __init__(self, base_s: float = 0.05, cap_s: float = 1.0) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self._attempt = 0

    def next_delay(self) -> float:
        delay = Backoff(self.base_s, 2.0, self.cap_s, Jitter.EQUAL).delay(self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return delay

    def reset(self) -> None:
        self._attempt = 0
