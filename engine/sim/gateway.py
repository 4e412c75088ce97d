"""What stands between a request and its handler, in Coinbase's order: injected latency and 5xx, then
authentication (JWT or HMAC) and access (scope, IP allowlist), then the rate limit, then the handler, then an
injected slow response. One closure per route, built once, so the per-request path is a few attribute reads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from engine.sim.auth import AuthFailure
from engine.sim.messages import Handler, SimRequest, SimResponse
from engine.sim.ratelimit import EXCHANGE_PRIVATE, EXCHANGE_PUBLIC, PRIVATE, PUBLIC, Admission
from engine.sim.responses import BadRequest, DropConnection, advanced_error, json_response

if TYPE_CHECKING:
    from engine.sim.app import Simulator

log = logging.getLogger(__name__)

HTML_429 = (
    b"<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n"
    b"<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _too_many(
    sim: Simulator, admission: Admission | None, exchange: bool, public: bool = False
) -> SimResponse:
    if sim.config.html_429:
        response = SimResponse(HTML_429, 429, "text/html")
    elif exchange:
        pool = "Public" if public else "Private"
        response = json_response({"message": f"{pool} rate limit exceeded"}, 429)
    else:
        response = json_response(
            {
                "error": "rate_limit_exceeded",
                "message": "Too many requests",
                "error_details": "Too many requests",
            },
            429,
        )
    if admission is not None and admission.limit:
        _rate_headers(response, admission)
    return response


def _rate_headers(response: SimResponse, admission: Admission) -> None:
    response.headers["x-ratelimit-limit"] = str(admission.limit)
    response.headers["x-ratelimit-remaining"] = str(admission.remaining)
    response.headers["x-ratelimit-reset"] = str(admission.reset_epoch)


def _refused(sim: Simulator, failure: AuthFailure) -> SimResponse:
    sim.auth_failures[failure.reason] = sim.auth_failures.get(failure.reason, 0) + 1
    response = SimResponse(failure.body, failure.status, failure.content_type)
    response.headers["x-sim-auth-failure"] = failure.reason
    return response


def guard(sim: Simulator, handler: Handler, access: str, api: str, bucket: str | None = None) -> Handler:
    """Wrap `handler`. `api` is "advanced" (JWT) or "exchange" (HMAC); `access` "public"/"exchange_public"
    or the scope the key must hold; `bucket` names the rate-limit pool when it is not the API's default."""
    dice = sim.dice
    keys = sim.keys
    limiter = sim.limiter
    exchange = api == "exchange"
    public = access in ("public", "exchange_public")
    bucket = bucket or (
        (EXCHANGE_PUBLIC if public else EXCHANGE_PRIVATE) if exchange else (PUBLIC if public else PRIVATE)
    )

    async def guarded(request: SimRequest) -> SimResponse:
        delay = dice.delay_s()
        if delay:
            sim.injected["latency"] += 1
            await asyncio.sleep(delay)
        if dice.server_error():
            sim.injected["error_5xx"] += 1
            return advanced_error(503, "UNAVAILABLE", "service unavailable")
        if public:
            key_id = f"ip:{request.remote}"
        else:
            try:
                if exchange:
                    # the path's bytes as sent: a non-UTF-8 byte arrives as a surrogate and goes back as such
                    target = request.raw_path.encode("utf-8", "surrogateescape")
                    prehash = request.method.encode() + target + request.body
                    headers = request.headers
                    exchange_key = keys.verify_hmac(
                        headers.get("CB-ACCESS-KEY"),
                        headers.get("CB-ACCESS-SIGN"),
                        headers.get("CB-ACCESS-TIMESTAMP"),
                        headers.get("CB-ACCESS-PASSPHRASE"),
                        prehash,
                    )
                    keys.check_access(exchange_key, access, request.remote)
                    request.exchange_key = exchange_key
                    key_id = exchange_key.key
                else:
                    authorization = request.headers.get("Authorization", "")
                    if not authorization.startswith("Bearer "):
                        raise AuthFailure(401, b"Unauthorized", "missing_token", "text/plain")
                    path = request.raw_path.split("?", 1)[0]
                    cdp_key = keys.verify_jwt(authorization[7:], f"{request.method} {request.host}{path}")
                    keys.check_access(cdp_key, access, request.remote)
                    request.cdp_key = cdp_key
                    key_id = cdp_key.name
            except AuthFailure as failure:
                return _refused(sim, failure)
        if dice.storm_429():
            sim.injected["storm_429"] += 1
            limiter.key_stats(key_id).requests += 1
            limiter.count_refusal(key_id)
            return _too_many(sim, None, exchange, public)
        admission = limiter.admit(bucket, key_id)
        if not admission.admitted:
            return _too_many(sim, admission, exchange, public)
        if dice.error_200():
            sim.injected["error_200"] += 1
            return json_response({"error": "INTERNAL", "message": "internal error", "details": []}, 200)
        try:
            response = await handler(request)
        except BadRequest as bad:
            if exchange:
                response = json_response({"message": str(bad)}, bad.status)
            else:
                response = advanced_error(bad.status, bad.error, str(bad))
        except DropConnection:
            sim.injected["drop_after_accept"] += 1
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError from None
        slow = dice.slow_response_s()
        if slow:
            sim.injected["slow_response"] += 1
            await asyncio.sleep(slow)
        if admission.limit:
            _rate_headers(response, admission)
        return response

    return guarded
