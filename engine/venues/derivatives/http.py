"""JSON-RPC over HTTP (`POST /api/v2/{method}`): the same typed methods as the trading session.

Private calls carry `Authorization: Bearer <access token>`; the token comes from `public/auth` (a fresh CDP
JWT in the POST body, never in a URL), is cached in memory and refreshed at 80% of its `expires_in`. When
the gateway refuses it anyway (13004/13009: the call did not run), the client refreshes it and sends the call
once more. Nothing else is retried: an order whose reply was lost fails with `RequestLost`, to be settled by
its label (https://docs.cdp.coinbase.com/api-reference/coinbase-deribit-app-api/rest-api/authentication/
post-publicauth). The token never reaches a log, a repr or an exception.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from engine._signer import CdpKey
from engine.errors import (
    ConfigError,
    ExchangeError,
    ExchangeUnavailable,
    GatewayAuthError,
    GatewayRateLimited,
    RequestLost,
    RequestTimeout,
)
from engine.venues.derivatives.codec import (
    TOKEN_REJECTED,
    UNAUTHORIZED,
    decode_frame,
    decode_result,
    encode_request,
    error_from,
)
from engine.venues.derivatives.credits import GatewayCredits, RequestClass, request_class
from engine.venues.derivatives.methods import GatewayMethods
from engine.venues.derivatives.types import AuthResult

__all__ = ["GATEWAY_URL", "GatewayHttpClient"]

GATEWAY_URL = "https://drb.coinbase.com"
API_PREFIX = "/api/v2"
USER_AGENT = "coinbase-engine/0.1"


class _AccessToken:
    """The cached bearer token; its text is never part of a repr."""

    __slots__ = ("expires_in", "refresh_at", "scope", "value")

    def __init__(self, value: str, expires_in: float, refresh_at: float, scope: str) -> None:
        self.value = value
        self.expires_in = expires_in
        self.refresh_at = refresh_at
        self.scope = scope

    def __repr__(self) -> str:
        return f"_AccessToken(expires_in={self.expires_in}, scope={self.scope!r})"


class GatewayHttpClient(GatewayMethods):
    """`async with GatewayHttpClient(key, base_url) as client: await client.get_positions()`.

    `key` may be None for public methods only. `base_url` is scheme://host[:port] (the simulator's in tests).
    """

    def __init__(
        self,
        key: CdpKey | None,
        base_url: str = GATEWAY_URL,
        *,
        credits: GatewayCredits | None = None,
        timeout_s: float = 10.0,
        refresh_ratio: float = 0.8,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        pool_size: int = 16,
    ) -> None:
        url = URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.raw_host or url.raw_path not in ("", "/"):
            raise ConfigError(f"base_url must be http(s)://host[:port] without a path, got {base_url!r}")
        if not 0 < refresh_ratio < 1:
            raise ConfigError("refresh_ratio must be in (0, 1)")
        self.base_url = str(url.origin())
        self.key = key
        self.credits = (
            credits if credits is not None else GatewayCredits(key.name if key is not None else "public")
        )
        self.timeout_s = timeout_s
        self.refresh_ratio = refresh_ratio
        self._session = session
        self._own_session = session is None
        self._ssl = ssl_context
        self._pool_size = pool_size
        self._token: _AccessToken | None = None
        self._token_lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._urls: dict[str, str] = {}
        self.token_exchanges = 0  # public/auth calls made, for the curious and the tests

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size, ssl=self._ssl if self._ssl is not None else True
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                trust_env=False,
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        self._token = None
        if session is not None and self._own_session:
            await session.close()

    async def __aenter__(self) -> GatewayHttpClient:
        await self.open()
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.close()

    @property
    def scope(self) -> str:
        """The scopes the gateway granted with the current token ("" before the first private call)."""
        return self._token.scope if self._token is not None else ""

    def _url(self, method: str) -> str:
        url = self._urls.get(method)
        if url is None:
            url = self._urls[method] = f"{self.base_url}{API_PREFIX}/{method}"
        return url

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        label: str | None = None,
        timeout_s: float | None = None,
    ) -> msgspec.Raw:
        private = method.startswith("private/")
        if private and self.key is None:
            raise GatewayAuthError(
                f"{method} is private and this client has no key: pass a CdpKey",
                rpc_code=UNAUTHORIZED,
                method=method,
                hint="create the client with the CDP key that should trade",
            )
        cls = request_class(method)
        if not self.credits.try_spend(cls):
            await self.credits.spend(cls)
        body = encode_request(next(self._ids), method, params)
        try:
            return await self._post(method, body, cls, label, private, timeout_s, refresh=False)
        except GatewayAuthError as refused:
            if not (private and refused.rpc_code in TOKEN_REJECTED):
                raise
            # Refused before it ran: a fresh token, and the same call once more.
            return await self._post(method, body, cls, label, private, timeout_s, refresh=True)

    async def _post(
        self,
        method: str,
        body: bytes,
        cls: RequestClass,
        label: str | None,
        private: bool,
        timeout_s: float | None,
        *,
        refresh: bool,
    ) -> msgspec.Raw:
        session = self._session
        if session is None:
            raise ExchangeUnavailable(f"{method}: the client is not open (use `async with`)")
        headers = {"Content-Type": "application/json"}
        if private:
            headers["Authorization"] = "Bearer " + await self.access_token(force_refresh=refresh)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            async with session.post(
                self._url(method), data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                status = response.status
                payload = await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise ExchangeUnavailable(f"{method} was not sent: {type(exc).__name__}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            if cls is RequestClass.MATCHING:
                raise RequestLost(
                    f"{method}: no reply ({type(exc).__name__}); it may have run: look it up, then resend",
                    method=method,
                    label=label,
                ) from None
            if isinstance(exc, TimeoutError):
                raise RequestTimeout(f"no reply to {method} within {timeout:g}s") from None
            raise ExchangeUnavailable(f"{method} failed: {type(exc).__name__}") from None
        return self._result(method, status, payload, cls)

    def _result(self, method: str, status: int, payload: bytes, cls: RequestClass) -> msgspec.Raw:
        try:
            frame = decode_frame(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            if status >= 500:
                raise ExchangeUnavailable(
                    f"{method}: HTTP {status} from the gateway", status=status
                ) from None
            raise ExchangeError(f"{method}: HTTP {status}, not a JSON-RPC reply", status=status) from None
        error = frame.error
        if error is not None:
            failure = error_from(error, method, status=status)
            if isinstance(failure, GatewayRateLimited):
                self.credits.exhausted(cls, failure.retry_after)
            raise failure
        if status >= 400:
            raise ExchangeError(f"{method}: HTTP {status} without a JSON-RPC error", status=status)
        return frame.result

    async def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid bearer token: the cached one, or a new one from `public/auth`. Never log it."""
        token = self._token
        if token is not None and not force_refresh and time.monotonic() < token.refresh_at:
            return token.value
        async with self._token_lock:
            current = self._token
            if current is not None and current is not token and time.monotonic() < current.refresh_at:
                return current.value  # another request refreshed it while this one waited
            self._token = await self._exchange()
            return self._token.value

    async def _exchange(self) -> _AccessToken:
        key = self.key
        assert key is not None
        session = self._session
        if session is None:
            raise ExchangeUnavailable("public/auth: the client is not open (use `async with`)")
        body = encode_request(
            next(self._ids), "public/auth", {"grant_type": "coinbase_cdp", "token": key.ws_jwt()}
        )
        self.token_exchanges += 1
        try:
            async with session.post(
                self._url("public/auth"),
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                status, payload = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ExchangeUnavailable(f"public/auth failed: {type(exc).__name__}") from None
        raw = self._result("public/auth", status, payload, RequestClass.NON_MATCHING)
        auth: AuthResult = decode_result(raw, AuthResult)
        if not auth.access_token or auth.expires_in <= 0:
            raise ExchangeError("public/auth answered without an access token or an expiry")
        refresh_at = time.monotonic() + auth.expires_in * self.refresh_ratio
        return _AccessToken(auth.access_token, auth.expires_in, refresh_at, auth.scope)
