"""One tuned aiohttp session: pooled keep-alive connections, a timeout on every request, limiter, signing.

`Transport.send` is one attempt: wait for the limiter, sign, send the exact body bytes, read the response.
It raises aiohttp/asyncio errors as they come; deciding what they mean (retry, confirm, give up) is the
pipeline's job. Everything per-request that can be built ahead is: static headers, URLs of hot paths, the
JWT host, timeout objects.

Requests go out through a `RequestLane` (engine.net.lane): written straight onto the session's pooled
connections, without `session.request`'s per-call machinery. A client given aiohttp `TraceConfig`s sends
through `session.request` instead, since only that path reports to them.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from engine._signer import CdpKey, ExchangeKey
from engine.errors import ConfigError
from engine.net.lane import RequestLane
from engine.ratelimit import EndpointClass, Priority, RateLimiter

__all__ = ["ApiKey", "PoolConfig", "RawResponse", "Timeouts", "Transport"]

USER_AGENT = "coinbase-engine/0.1"


ApiKey = CdpKey | ExchangeKey  # CDP key: JWT per request; Exchange key: HMAC over the exact body


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `total` bounds one attempt end to end; `connect` bounds getting a pooled or new connection."""

    total: float = 10.0
    connect: float = 3.0

    def client_timeout(self, total: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total if total is not None else self.total, connect=self.connect)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Keep-alive pool: `limit` connections overall and per host (one host in practice)."""

    limit: int = 64
    keepalive_s: float = 30.0
    dns_cache_s: int = 300


class RawResponse:
    """Status, undecoded body and headers of one attempt, plus the time it waited for the limiter."""

    __slots__ = ("body", "headers", "limiter_wait_s", "status")

    def __init__(
        self, status: int, body: bytes, headers: CIMultiDictProxy[str], limiter_wait_s: float
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.limiter_wait_s = limiter_wait_s


def _jwt_host(url: URL) -> str:
    """host[:port] exactly as the client connects: what Coinbase checks the token's uri claim against."""
    host = url.raw_host or ""
    return f"{host}:{url.explicit_port}" if url.explicit_port is not None else host


class Transport:
    """The session and the signing of each request. Create, `await open()`, use, `await close()`."""

    def __init__(
        self,
        base_url: str,
        key: ApiKey,
        *,
        limiter: RateLimiter,
        key_id: str,
        timeouts: Timeouts | None = None,
        pool: PoolConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        url = URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise ConfigError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        if url.raw_path not in ("", "/") or url.raw_query_string:
            raise ConfigError(
                f"base_url must not carry a path or query (paths are added per call): {base_url!r}"
            )
        self.base_url = str(url.origin())
        self.host = _jwt_host(url)
        self.key = key
        self.key_id = key_id
        self.limiter = limiter
        self.timeouts = timeouts or Timeouts()
        self._pool = pool or PoolConfig()
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._lane: RequestLane | None = None
        self._urls: dict[str, URL] = {}
        self._default_timeout = self.timeouts.client_timeout()
        self._timeout_cache: dict[float, aiohttp.ClientTimeout] = {}
        # Headers every request carries are the session's defaults (aiohttp copies them in C); a request adds
        # only its own. Small JSON bodies: compression costs more CPU than it saves, so none is offered
        # ("identity": set here rather than through skip_auto_headers, which copies the headers per request).
        self._session_headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": user_agent,
        }
        self._body_headers = {"Content-Type": "application/json"}
        self._no_headers: dict[str, str] = {}
        self._trace_configs = list(trace_configs) if trace_configs else None
        self._jwt_key = key if isinstance(key, CdpKey) else None
        self._hmac_key = key if isinstance(key, ExchangeKey) else None
        if self._jwt_key is None and self._hmac_key is None:
            raise ConfigError("key must be an engine.auth.CdpKey or engine.auth.ExchangeKey")

    def replace_key(self, key: ApiKey, key_id: str) -> None:
        """Sign from now on with `key` (of the same kind); a request already signed goes out as it is."""
        if type(key) is not type(self.key):
            raise ConfigError(f"a {type(self.key).__name__} can only be replaced by another one")
        self.key, self.key_id = key, key_id
        self._jwt_key = key if isinstance(key, CdpKey) else None
        self._hmac_key = key if isinstance(key, ExchangeKey) else None

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the client is not open: use `async with Client(...)`")
        return self._session

    async def open(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._pool.limit,
            limit_per_host=self._pool.limit,
            ttl_dns_cache=self._pool.dns_cache_s,
            keepalive_timeout=self._pool.keepalive_s,
            ssl=self._ssl if self._ssl is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # the API sets no cookies we want; skip the jar's work
            timeout=self._default_timeout,
            headers=self._session_headers,
            trace_configs=self._trace_configs,  # none by default: aiohttp then skips its trace hooks
            auto_decompress=True,
            trust_env=False,
            raise_for_status=False,
        )
        if self._trace_configs is None:
            self._lane = RequestLane(self._session, URL(self.base_url), self._session_headers)

    async def close(self) -> None:
        session, self._session = self._session, None
        self._lane = None
        if session is not None:
            await session.close()

    def url(self, path: str, query: str = "") -> URL:
        """The full URL; paths without a query are cached (the hot ones repeat on every order)."""
        if query:
            return URL(f"{self.base_url}{path}?{query}", encoded=True)
        url = self._urls.get(path)
        if url is None:
            url = URL(f"{self.base_url}{path}", encoded=True)
            if len(self._urls) < 1024:
                self._urls[path] = url
        return url

    def timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        if seconds is None:
            return self._default_timeout
        cached = self._timeout_cache.get(seconds)
        if cached is None:
            cached = self._timeout_cache[seconds] = self.timeouts.client_timeout(seconds)
        return cached

    def sign(self, method: str, path: str, query: str, body: bytes | None) -> dict[str, str]:
        """This request's own headers (the session adds the static ones): a fresh token, or HMAC over the
        exact body bytes; Content-Type when there is a body."""
        jwt_key = self._jwt_key
        if jwt_key is not None:
            # The uri claim covers the path without its query string:
            # https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-auth
            authorization = "Bearer " + jwt_key.rest_jwt(method, path, host=self.host)
            if body is not None:
                return {"Content-Type": "application/json", "Authorization": authorization}
            return {"Authorization": authorization}
        assert self._hmac_key is not None
        headers = self._hmac_key.headers(method, f"{path}?{query}" if query else path, body or b"")
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def public_headers(self, body: bytes | None) -> dict[str, str]:
        return self._body_headers if body is not None else self._no_headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        endpoint: EndpointClass = EndpointClass.PRIVATE,
        priority: Priority = Priority.NORMAL,
        weight: float = 1.0,
        timeout_s: float | None = None,
        signed: bool = True,
    ) -> RawResponse:
        """One attempt. The limiter is waited on first, so a request never holds a connection while queued."""
        waited = 0.0
        limiter = self.limiter
        if not limiter.try_acquire(self.key_id, endpoint, weight):
            waited = await limiter.acquire(self.key_id, endpoint, weight, priority)
        # Sign after the limiter: a token minted before a long wait could be stale on arrival.
        headers = self.sign(method, path, query, body) if signed else self.public_headers(body)
        lane = self._lane
        if lane is not None:
            status, payload, response_headers = await lane.request(
                method,
                f"{path}?{query}" if query else path,
                headers,
                body,
                timeout_s if timeout_s is not None else self.timeouts.total,
            )
            return RawResponse(status, payload, response_headers, waited)
        session = self._session
        if session is None:
            raise RuntimeError("the client is not open: use `async with Client(...)`")
        response = await session.request(
            method,
            self.url(path, query),
            data=body,
            headers=headers,
            timeout=self.timeout(timeout_s),
        )
        try:
            payload = await response.read()
        finally:
            response.release()
        return RawResponse(response.status, payload, response.headers, waited)


def header_number(headers: Mapping[str, Any], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def reset_after_s(headers: Mapping[str, Any]) -> float | None:
    """Seconds until the exchange's limit resets, from `Retry-After` or `x-ratelimit-reset`.

    `x-ratelimit-reset` is read as an epoch time when it is one (seconds or milliseconds), else as a delta.
    """
    retry_after = header_number(headers, "Retry-After")
    if retry_after is not None and retry_after >= 0:
        return retry_after
    reset = header_number(headers, "x-ratelimit-reset")
    if reset is None or reset < 0:
        return None
    if reset > 1e12:  # epoch milliseconds
        reset /= 1000.0
    if reset > 1e9:  # epoch seconds
        return max(0.0, reset - time.time())
    return reset
