"""The request pipeline: one logical call = attempts through the transport, retried within a budget, with
every failure mapped to a typed error.

What may be retried depends on the request's `Idempotency`:
- SAFE (reads, cancels, previews): any connection error, timeout, 429 or 5xx is retried.
- KEYED (order creation with a client_order_id): a failure after the bytes may have reached the exchange makes
  the outcome unknown; the pipeline then asks `confirm` (look the order up by client_order_id) and only sends
  again (same bytes, same id: Coinbase returns the existing order) when the order was not found or the lookup
  failed. `OutcomeUnknown` is raised only if the budget runs out while the outcome is still unsettled.
- UNSAFE (edits): retried only when the request provably never left (connect failure, 429).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from engine.errors import (
    AuthError,
    EngineError,
    ExchangeError,
    ExchangeUnavailable,
    NotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    RequestTimeout,
)
from engine.net.clock import SKEW_THRESHOLD_S, ClockSync
from engine.net.diagnose import AuthContext, diagnose
from engine.net.retry import Idempotency, RetryBudget, RetryPolicy
from engine.net.transport import RawResponse, Transport, header_number, reset_after_s
from engine.net.wire import KeyPermissions
from engine.ratelimit import EndpointClass, Priority

__all__ = ["Confirmed", "Pipeline", "error_detail"]

log = logging.getLogger("engine.net.pipeline")

T = TypeVar("T")
KEY_PERMISSIONS_PATH = "/api/v3/brokerage/key_permissions"


@dataclass(frozen=True, slots=True)
class Confirmed:
    """Returned instead of a response body when a lost response was settled by looking the order up."""

    value: Any


def error_detail(body: bytes) -> tuple[str, str]:
    """(code, message) from an error body: Coinbase JSON in its several shapes, bare text, or an HTML page."""
    text = body[:4096]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        stripped = text.decode("utf-8", "replace").strip()
        if stripped[:1] == "<":
            return "", "HTML error page"
        return "", stripped[:200]
    if not isinstance(data, dict):
        return "", str(data)[:200]
    code = data.get("error") or data.get("code") or ""
    message = (
        data.get("message")
        or data.get("error_details")
        or data.get("preview_failure_reason")
        or data.get("new_order_failure_reason")
        or ""
    )
    return str(code)[:64], str(message)[:200]


def _noted(error: EngineError, note: str) -> EngineError:
    """The same error (type and fields kept) with `note` appended to its message."""
    error.args = (f"{error.args[0] if error.args else error}{note}", *error.args[1:])
    return error


class Pipeline:
    """Runs calls through a `Transport` under a `RetryPolicy`."""

    def __init__(
        self,
        transport: Transport,
        retry: RetryPolicy,
        *,
        key_kind: str,
        clock: ClockSync | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.retry = retry
        self.key_kind = key_kind
        self.clock = clock
        self._rng = rng

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        endpoint: EndpointClass = EndpointClass.PRIVATE,
        priority: Priority = Priority.NORMAL,
        idempotency: Idempotency = Idempotency.SAFE,
        timeout_s: float | None = None,
        weight: float = 1.0,
        signed: bool = True,
        confirm: Callable[[], Awaitable[Any | None]] | None = None,
        client_order_id: str | None = None,
        retry: RetryPolicy | None = None,
        with_headers: bool = False,
    ) -> Any:
        """Decoded JSON of the first successful attempt (or a `Confirmed`), else a typed error.

        With `with_headers`, (decoded JSON, response headers): for cursors sent in headers (`CB-AFTER`)."""
        transport = self.transport
        budget = RetryBudget(retry or self.retry, self._rng)
        skew_checked = False
        clock_moved: float | None = None
        unsettled = False  # a keyed send may have landed and nothing since has settled whether it did
        while True:
            budget.attempts += 1
            maybe_sent = False
            try:
                response = await transport.send(
                    method,
                    path,
                    query=query,
                    body=body,
                    endpoint=endpoint,
                    priority=priority,
                    weight=weight,
                    timeout_s=timeout_s,
                    signed=signed,
                )
            except aiohttp.ConnectionTimeoutError:
                failure: EngineError = RequestTimeout(
                    f"{method} {path}: no connection to {transport.host} in time"
                )
            except (TimeoutError, aiohttp.ServerTimeoutError):
                maybe_sent = True
                seconds = timeout_s if timeout_s is not None else transport.timeouts.total
                failure = RequestTimeout(f"{method} {path}: no response within {seconds:g}s")
            except aiohttp.ClientConnectorError as exc:
                reason = exc.os_error.strerror or "refused"
                failure = ExchangeUnavailable(
                    f"{method} {path}: cannot connect to {transport.host} ({reason})"
                )
            except (aiohttp.ClientError, OSError) as exc:
                maybe_sent = True
                failure = ExchangeUnavailable(f"{method} {path}: connection lost ({type(exc).__name__})")
            else:
                status = response.status
                headers = response.headers
                if "x-ratelimit-remaining" in headers:
                    transport.limiter.observe_headers(
                        transport.key_id,
                        endpoint,
                        header_number(headers, "x-ratelimit-remaining"),
                        reset_after_s(headers),
                    )
                if status < 300:
                    if with_headers:
                        return self._decode(method, path, response), headers
                    return self._decode(method, path, response)
                if status == 429:
                    retry_after = reset_after_s(headers)
                    transport.limiter.on_rate_limited(transport.key_id, endpoint, retry_after)
                    code, message = error_detail(response.body)
                    failure = RateLimited(
                        f"{method} {path}: rate limited by the exchange ({message or 'no detail'})",
                        retry_after=retry_after,
                        code=code or None,
                    )
                    if retry_after is not None and retry_after >= budget.remaining_s:
                        raise failure
                elif status >= 500:
                    maybe_sent = True
                    code, message = error_detail(response.body)
                    failure = ExchangeUnavailable(
                        f"{method} {path}: exchange error {status} ({message or code or 'no detail'})",
                        status=status,
                        code=code or None,
                    )
                elif status in (401, 403):
                    if status == 401 and not skew_checked and self.clock is not None:
                        skew_checked = True
                        moved = clock_moved = await self._remeasure_clock()
                        _, message = error_detail(response.body)
                        if moved is not None and (
                            abs(moved) >= SKEW_THRESHOLD_S or "timestamp" in message.lower()
                        ):
                            log.warning(
                                "%s %s refused (401); clock offset moved %+.3fs, retrying once with it",
                                method,
                                path,
                                moved,
                            )
                            continue
                    raise await self._auth_error(method, path, response, clock_moved)
                else:
                    raise self._client_error(method, path, response, client_order_id)

            if maybe_sent and idempotency is Idempotency.UNSAFE:
                raise _noted(failure, "; the request may or may not have been applied")
            if maybe_sent and idempotency is Idempotency.KEYED:
                unsettled = True
                if confirm is not None:
                    try:
                        found = await confirm()
                    except (EngineError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                        log.warning("%s %s: confirming the outcome failed: %s", method, path, exc)
                    else:
                        if found is not None:
                            log.info("%s %s: outcome confirmed by lookup after %s", method, path, failure)
                            return Confirmed(found)
                        unsettled = False  # confirmed absent: sending again cannot duplicate it
            delay = budget.next_delay()
            if delay is None:
                if unsettled:
                    raise OutcomeUnknown(
                        f"{method} {path}: outcome unknown after {budget.attempts} attempts "
                        f"({failure}); confirming by client_order_id failed too",
                        client_order_id=client_order_id or "",
                    ) from failure
                if budget.attempts > 1:
                    raise _noted(
                        failure, f" (gave up after {budget.attempts} attempts in {budget.elapsed_s:.2f}s)"
                    )
                raise failure
            log.warning(
                "retry %d/%d of %s %s in %.0f ms after: %s",
                budget.attempts,
                budget.policy.max_attempts - 1,
                method,
                path,
                delay * 1000.0,
                failure,
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _decode(method: str, path: str, response: RawResponse) -> Any:
        if not response.body:
            return {}
        try:
            return orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise ExchangeError(
                f"{method} {path}: {response.status} with a body that is not JSON", status=response.status
            ) from None

    def _client_error(
        self, method: str, path: str, response: RawResponse, client_order_id: str | None
    ) -> ExchangeError:
        status = response.status
        code, message = error_detail(response.body)
        text = f"{method} {path}: {status} {code or 'error'}" + (f": {message}" if message else "")
        if status == 404:
            return NotFound(text, status=status, code=code or None)
        if client_order_id is not None:
            return OrderRejected(
                text,
                failure_reason=code or message or None,
                client_order_id=client_order_id,
                status=status,
                code=code or None,
            )
        return ExchangeError(text, status=status, code=code or None)

    async def _remeasure_clock(self) -> float | None:
        assert self.clock is not None
        before = self.clock.offset_s
        try:
            sample = await self.clock.measure()
        except (EngineError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("re-measuring the clock offset after a 401 failed: %s", exc)
            return None
        return sample.offset_s - before

    async def _auth_error(
        self, method: str, path: str, response: RawResponse, clock_moved: float | None
    ) -> AuthError:
        code, message = error_detail(response.body)
        permissions: KeyPermissions | None = None
        probe_refused = False
        if self.key_kind == "cdp" and path != KEY_PERMISSIONS_PATH:
            permissions, probe_refused = await self._probe_permissions()
        context = AuthContext(
            method=method,
            path=path,
            status=response.status,
            detail=message or code,
            key_kind=self.key_kind,
            host=self.transport.host,
            clock_moved_s=clock_moved,
            permissions=permissions,
            probe_refused=probe_refused,
        )
        error = diagnose(context)
        log.error("%s", error)
        return error

    async def _probe_permissions(self) -> tuple[KeyPermissions | None, bool]:
        """Does the key authenticate at all? Reading its permissions tells that and what it may do."""
        try:
            response = await self.transport.send("GET", KEY_PERMISSIONS_PATH, timeout_s=3.0)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None, False
        if response.status == 200:
            try:
                return KeyPermissions.parse(orjson.loads(response.body)), False
            except (orjson.JSONDecodeError, AttributeError):
                return None, False
        return None, response.status in (401, 403)
